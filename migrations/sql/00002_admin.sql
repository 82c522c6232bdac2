-- +goose Up
-- Write-side reservations: taken in a command's transaction, after its append.

-- One address is unique across accounts, aliases, lists and resources.
CREATE TABLE address_claims (
    address text PRIMARY KEY,
    kind    text NOT NULL,  -- account | alias | list | resource
    owner   text NOT NULL,  -- the stream the address belongs to
    domain  text NOT NULL   -- the domain of the address itself
);
CREATE INDEX address_claims_domain_idx ON address_claims (domain, kind);
CREATE INDEX address_claims_owner_idx ON address_claims (owner);

-- Login sessions. The token is only ever stored hashed.
CREATE TABLE sessions (
    id           text        PRIMARY KEY,
    token_hash   bytea       NOT NULL UNIQUE,
    account      text        NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    ip           text        NOT NULL DEFAULT '',
    user_agent   text        NOT NULL DEFAULT '',
    ended_at     timestamptz,
    ended_by     text
);
CREATE INDEX sessions_account_idx ON sessions (account, created_at);

-- Failed logins per account and per source IP, for rate limiting.
CREATE TABLE login_failures (
    key          text        PRIMARY KEY,
    failures     integer     NOT NULL,
    window_start timestamptz NOT NULL
);

-- Read models of the "admin" projection. Each row keeps the aggregate's state (jsonb) at the
-- stream version it has seen, plus the columns lists filter and sort on.
CREATE TABLE rm_config (
    id      integer PRIMARY KEY CHECK (id = 1),
    version integer NOT NULL,
    state   jsonb   NOT NULL
);

CREATE TABLE rm_cos (
    name       text        PRIMARY KEY,
    version    integer     NOT NULL,
    deleted    boolean     NOT NULL DEFAULT false,
    state      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE rm_domains (
    name         text        PRIMARY KEY,
    unicode_name text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    status       text        NOT NULL,
    default_cos  text,
    version      integer     NOT NULL,
    state        jsonb       NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE rm_accounts (
    address      text        PRIMARY KEY,
    domain       text        NOT NULL,
    display_name text        NOT NULL DEFAULT '',
    status       text        NOT NULL,
    cos          text,
    version      integer     NOT NULL,
    deleted      boolean     NOT NULL DEFAULT false,
    state        jsonb       NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX rm_accounts_domain_idx ON rm_accounts (domain, address) WHERE NOT deleted;
CREATE INDEX rm_accounts_cos_idx ON rm_accounts (cos) WHERE NOT deleted;

CREATE TABLE rm_aliases (
    alias   text PRIMARY KEY,
    target  text NOT NULL,
    kind    text NOT NULL, -- account (lists and resources later)
    domain  text NOT NULL  -- the alias's own domain
);
CREATE INDEX rm_aliases_target_idx ON rm_aliases (target);
CREATE INDEX rm_aliases_domain_idx ON rm_aliases (domain);

-- +goose Down
DROP TABLE rm_aliases;
DROP TABLE rm_accounts;
DROP TABLE rm_domains;
DROP TABLE rm_cos;
DROP TABLE rm_config;
DROP TABLE login_failures;
DROP TABLE sessions;
DROP TABLE address_claims;
