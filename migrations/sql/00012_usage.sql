-- +goose Up
-- Service tokens: credentials for programs (the mail store), made by a global administrator.
-- The token is shown once and only its SHA-256 is kept; the stream service-token-<id> records
-- who made and who revoked it. Written in the command's transaction, after its append.
CREATE TABLE service_tokens (
    id         text        PRIMARY KEY,
    name       text        NOT NULL,
    role       text        NOT NULL,
    token_hash bytea       NOT NULL UNIQUE,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

-- Mailbox usage as the mail store reports it (POST /api/v1/usage). Measurements, not decisions:
-- kept here, outside the event stream, one row per account, rewritten by every report.
-- over_warn is whether the usage was at or over the account's effective warning line when last
-- judged (by a report, or by a change of the limits); crossings counts the times it went from
-- under to over, and numbers the warnings. crossed_xact is the transaction that judged the
-- last crossing: a statement tells the crossings it made itself from those of a concurrent
-- batch by comparing it with pg_current_xact_id(), so each crossing is warned of exactly once.
CREATE TABLE mailbox_usage (
    address             text        PRIMARY KEY,
    domain              text        NOT NULL,
    used_bytes          bigint      NOT NULL CHECK (used_bytes >= 0),
    previous_used_bytes bigint      NOT NULL DEFAULT 0, -- before the last report: the domain total moves by the difference
    over_warn           boolean     NOT NULL DEFAULT false,
    crossings           bigint      NOT NULL DEFAULT 0,
    crossed_xact        xid8,
    reported_at         timestamptz NOT NULL
) WITH (fillfactor = 70); -- every report rewrites its row: room on the page keeps that a HOT update
CREATE INDEX mailbox_usage_domain_idx ON mailbox_usage (domain);

-- A domain's total usage, kept up to date by each batch (by the difference it makes), and its
-- crossing state as for one mailbox. limit_bytes and warn_percent are the domain's effective
-- ones when last judged.
CREATE TABLE domain_usage (
    domain       text    PRIMARY KEY,
    used_bytes   bigint  NOT NULL,
    limit_bytes  bigint  NOT NULL DEFAULT 0,
    warn_percent integer NOT NULL DEFAULT 0,
    over_warn    boolean NOT NULL DEFAULT false,
    crossings    bigint  NOT NULL DEFAULT 0,
    crossed_xact xid8
);

-- The admin projection judges the usage again when limits change; replaying old limit changes
-- in a rebuild must not: events at or below replayed_until are not judged again.
CREATE TABLE quota_recheck_mark (
    id             integer PRIMARY KEY CHECK (id = 1),
    replayed_until bigint  NOT NULL
);

-- +goose Down
DROP TABLE quota_recheck_mark;
DROP TABLE domain_usage;
DROP TABLE mailbox_usage;
DROP TABLE service_tokens;
