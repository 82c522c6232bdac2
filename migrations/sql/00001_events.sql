-- +goose Up
-- The event store: the single source of truth. See DESIGN.md §2.
CREATE TABLE events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Taken at the transaction's first write; readers never pass a transaction still in flight.
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text        NOT NULL,
    stream_type     text        NOT NULL,
    stream_version  integer     NOT NULL CHECK (stream_version > 0),
    -- The mail domain the stream belongs to (NULL for global streams): domain history and
    -- crypto-shredding select by it.
    domain          text,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL DEFAULT 1,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    recorded_at     timestamptz NOT NULL,
    prev_hash       bytea       NOT NULL,
    hash            bytea       NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_transaction_position_idx ON events (transaction_id, position);
CREATE INDEX events_domain_idx ON events (domain, transaction_id, position) WHERE domain IS NOT NULL;
CREATE INDEX events_recorded_at_idx ON events (recorded_at);

-- Rows are append-only: history is evidence.
-- +goose StatementBegin
CREATE FUNCTION events_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();
CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

-- A command carrying an idempotency key records its outcome here in the append's transaction.
CREATE TABLE idempotency_keys (
    scope           text        NOT NULL,
    key             text        NOT NULL,
    request_hash    bytea,
    stream_id       text        NOT NULL,
    first_version   integer     NOT NULL,
    last_version    integer     NOT NULL,
    transaction_id  xid8        NOT NULL,
    last_position   bigint      NOT NULL,
    response_status integer,
    response_body   bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Envelope encryption: one data key per mail domain, wrapped with the master key.
-- Destroying a key (wrapped_key NULL) shreds every secret encrypted with it.
CREATE TABLE data_keys (
    -- Chosen at random by the keyring: the id is bound into the wrapping, so it is known first.
    id           bigint      PRIMARY KEY,
    scope        text        NOT NULL,
    wrapped_key  bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz
);
CREATE UNIQUE INDEX data_keys_live_scope_idx ON data_keys (scope) WHERE destroyed_at IS NULL;

-- Where each named consumer stands in the (transaction_id, position) order.
CREATE TABLE projection_checkpoints (
    name           text        PRIMARY KEY,
    transaction_id xid8        NOT NULL DEFAULT '0',
    position       bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Events a projection could not handle after its retries: parked, not retried forever.
CREATE TABLE projection_dead_letters (
    projection  text        NOT NULL,
    position    bigint      NOT NULL,
    stream_id   text        NOT NULL,
    event_type  text        NOT NULL,
    error       text        NOT NULL,
    attempts    integer     NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, position)
);

-- +goose Down
DROP TABLE projection_dead_letters;
DROP TABLE projection_checkpoints;
DROP TABLE data_keys;
DROP TABLE idempotency_keys;
DROP TABLE events;
DROP FUNCTION events_reject_change();
