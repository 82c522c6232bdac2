-- +goose Up
-- Bulk imports of accounts (POST /api/v1/domains/{domain}/imports). An import is known by its
-- domain and the SHA-256 of its file: sending the same file again finds the first import and
-- starts nothing. Its rows are stored as parsed and validated when the file arrives; the job
-- applies the pending ones in batches, and each row's state changes in the transaction that
-- appends its events, so a job started again after a crash goes on where the last commit left.
CREATE TABLE imports (
    id           text        PRIMARY KEY,
    domain       text        NOT NULL,
    sha256       text        NOT NULL,
    format       text        NOT NULL,
    job_id       bigint,
    requested_by text        NOT NULL,
    rows_total   integer     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    UNIQUE (domain, sha256)
);

-- state: pending (valid, not applied yet), applied, failed (problem says why: found when the
-- file arrived, or when the row was applied). secret is the row's password or password hash
-- sealed with the domain's key; it is cleared once the row is done.
CREATE TABLE import_rows (
    import_id text    NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    line      integer NOT NULL,
    address   text,
    data      jsonb   NOT NULL,
    secret    text,
    state     text    NOT NULL,
    problem   text,
    PRIMARY KEY (import_id, line)
);
CREATE INDEX import_rows_pending_idx ON import_rows (import_id, line) WHERE state = 'pending';

-- +goose Down
DROP TABLE import_rows;
DROP TABLE imports;
