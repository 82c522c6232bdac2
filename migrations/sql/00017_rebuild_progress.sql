-- +goose Up
-- Where a rebuild of the Postgres read models into shadow tables (schema "rebuild", see
-- projections/postgres/shadow.go) has got to, written in the transaction that writes each page
-- of the shadow tables: a rebuild killed midway goes on from there instead of from position 0.
-- One row per shadow schema; projections names what it rebuilds, so that a rerun for another set
-- starts afresh. The row and the schema go together in the swap.
CREATE TABLE rebuild_progress (
    schema_name    text        PRIMARY KEY,
    projections    text[]      NOT NULL,
    transaction_id xid8        NOT NULL DEFAULT '0',
    position       bigint      NOT NULL DEFAULT 0,
    events         bigint      NOT NULL DEFAULT 0,
    started_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE rebuild_progress;
