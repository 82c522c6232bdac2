-- +goose Up
-- Scoped API tokens for scripts (POST /api/v1/api-tokens). Creation and revocation are events on
-- the token's own stream (apitoken-<domain>/<id>); this table is the write side's lookup: the
-- token only as its SHA-256 hash, its scope and the account it acts as, written after the append
-- in the same transaction (like sessions and service tokens). last_used_at is a measurement,
-- updated at most once a minute per token, not an event.
CREATE TABLE api_tokens (
    id           text        PRIMARY KEY,
    token_hash   bytea       NOT NULL UNIQUE,
    account      text        NOT NULL,
    name         text        NOT NULL,
    -- domains the token may touch (A-labels); all_domains: every domain and the routes bound
    -- to none (a global administrator's token only).
    domains      text[]      NOT NULL,
    all_domains  boolean     NOT NULL,
    -- access: object kind (an API tag, or "*") -> "read" | "write".
    access       jsonb       NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    revoked_by   text
);
CREATE INDEX api_tokens_account_idx ON api_tokens (account, created_at);

-- +goose Down
DROP TABLE api_tokens;
