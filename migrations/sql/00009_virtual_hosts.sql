-- +goose Up
-- Virtual hosts and their certificates (API.md "Virtual hosts and certificates").

-- A host name is unique across all domains: claimed by the command that adds it, in the
-- transaction of its append (write side, like address_claims), released when it is removed.
CREATE TABLE virtual_host_claims (
    host   text PRIMARY KEY, -- A-labels, lower case
    domain text NOT NULL,
    owner  text NOT NULL     -- the virtual host's stream
);
CREATE INDEX virtual_host_claims_domain_idx ON virtual_host_claims (domain);

-- Read model of the admin projection: one row per virtual host stream. state is the aggregate
-- without the sealed private key (the stream has it); the other columns are what lists, the
-- renewal job and the deletion preview filter on.
CREATE TABLE rm_virtual_hosts (
    domain          text        NOT NULL,
    host            text        NOT NULL,
    version         integer     NOT NULL,
    deleted         boolean     NOT NULL DEFAULT false,
    state           jsonb       NOT NULL,
    source          text,        -- custom | acme | NULL without a certificate
    not_after       timestamptz,
    renewal_due_at  timestamptz, -- ACME certificates only
    next_attempt_at timestamptz, -- after a failed renewal
    issuing_since   timestamptz, -- the ACME request in flight, if any
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (domain, host)
);
CREATE INDEX rm_virtual_hosts_renewal_idx ON rm_virtual_hosts (renewal_due_at)
    WHERE NOT deleted AND source = 'acme';

-- The ACME account mailplane orders certificates with, one per directory URL. Its key is sealed
-- with the keyring's "acme" scope (a scope no domain can have: domain names have a dot).
CREATE TABLE acme_accounts (
    directory  text        PRIMARY KEY,
    email      text        NOT NULL,
    key_secret text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Pending HTTP-01 challenges: the token → key authorization answers mailplane serves on
-- /.well-known/acme-challenge/, in the database so that whichever process the CA reaches
-- answers (DESIGN.md §8: nothing assumes one process).
CREATE TABLE acme_challenges (
    token      text        PRIMARY KEY,
    host       text        NOT NULL,
    key_auth   text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE acme_challenges;
DROP TABLE acme_accounts;
DROP TABLE rm_virtual_hosts;
DROP TABLE virtual_host_claims;
