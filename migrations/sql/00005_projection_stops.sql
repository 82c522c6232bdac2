-- +goose Up
-- A projection that meets lost order (a version gap, a version going backwards) or unknown
-- meaning (an unknown event type, a newer schema version) on a stream type it handles stops
-- here: every process refuses to run it, across restarts and failover, until an operator
-- resumes it (mailplane projections resume). Nothing is parked for these. See DESIGN.md §3.
CREATE TABLE projection_stops (
    projection       text        PRIMARY KEY,
    -- The event it stopped at; its checkpoint stays before it.
    position         bigint      NOT NULL,
    transaction_id   xid8        NOT NULL,
    stream_id        text        NOT NULL,
    stream_type      text        NOT NULL,
    stream_version   integer     NOT NULL,
    -- For lost order: the version that should have come next.
    expected_version integer,
    event_type       text        NOT NULL,
    schema_version   integer     NOT NULL,
    -- version_gap | version_backwards | unknown_event_type | newer_schema_version |
    -- projection_refused | consecutive_parks
    kind             text        NOT NULL,
    error            text        NOT NULL,
    stopped_by       text        NOT NULL,
    stopped_at       timestamptz NOT NULL DEFAULT now()
);

-- Events an operator chose not to hand to a projection (resume --skip). Kept by position, so a
-- skip holds however far behind the checkpoint is, and across rebuilds.
CREATE TABLE projection_skips (
    projection text        NOT NULL,
    position   bigint      NOT NULL,
    stream_id  text        NOT NULL,
    event_type text        NOT NULL,
    skipped_by text        NOT NULL,
    skipped_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, position)
);

-- Every operator action on a projection: who, when, what.
CREATE TABLE projection_actions (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection text        NOT NULL,
    action     text        NOT NULL, -- resume | resolve
    actor      text        NOT NULL,
    detail     jsonb       NOT NULL DEFAULT '{}',
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projection_actions_projection_idx ON projection_actions (projection, id);

-- A dead letter stays until an operator resolves it (or a rebuild clears it).
ALTER TABLE projection_dead_letters
    ADD COLUMN resolved_at timestamptz,
    ADD COLUMN resolved_by text;

ALTER TABLE projection_checkpoints
    -- Bumped by each process that takes the projection over. A batch reads events only while
    -- the lease it started with is current, and the bump conflicts with any batch in flight
    -- (its checkpoint update fails under repeatable read), so a process that lost its lock
    -- can neither start a batch nor commit one once another has taken over.
    ADD COLUMN lease             bigint  NOT NULL DEFAULT 0,
    ADD COLUMN leased_by         text,
    ADD COLUMN leased_at         timestamptz,
    -- Events parked in a row, reset by the next event handled: too many stop the projection.
    ADD COLUMN consecutive_parks integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE projection_checkpoints
    DROP COLUMN consecutive_parks,
    DROP COLUMN leased_at,
    DROP COLUMN leased_by,
    DROP COLUMN lease;
ALTER TABLE projection_dead_letters
    DROP COLUMN resolved_by,
    DROP COLUMN resolved_at;
DROP TABLE projection_actions;
DROP TABLE projection_skips;
DROP TABLE projection_stops;
