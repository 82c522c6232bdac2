-- +goose Up
-- The outcome of each `mailplane verify` (the hash chains and anchors) and `mailplane verify
-- --read-models`: what operators and auditors read back through GET /api/v1/verify-runs and the
-- panel's Operations page, so that "when did it last pass, and what did it find" needs no shell
-- on the server. A row, not an event: a check of the store is not a change to any object.
CREATE TABLE verify_runs (
    id          bigserial   PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('chains', 'read_models')),
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    ok          boolean     NOT NULL,
    summary     text        NOT NULL,
    problems    jsonb       NOT NULL DEFAULT '[]',
    host        text        NOT NULL DEFAULT ''
);
CREATE INDEX verify_runs_latest ON verify_runs (kind, finished_at DESC);

-- +goose Down
DROP TABLE verify_runs;
