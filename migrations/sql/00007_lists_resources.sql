-- +goose Up
-- Read models of mailing lists and resources (admin projection). As for accounts, a row keeps
-- the aggregate's state at the stream version it has seen, plus the columns lists filter and
-- sort on. A list's members are rows of their own, not part of its state: a list may have tens
-- of thousands, paged by address, and a change of its settings must not rewrite them all.
CREATE TABLE rm_lists (
    address      text        PRIMARY KEY,
    domain       text        NOT NULL,
    display_name text        NOT NULL DEFAULT '',
    dynamic      boolean     NOT NULL DEFAULT false,
    hide_in_gal  boolean     NOT NULL DEFAULT false,
    member_count integer     NOT NULL DEFAULT 0, -- explicit members (static lists)
    version      integer     NOT NULL,
    deleted      boolean     NOT NULL DEFAULT false,
    state        jsonb       NOT NULL,           -- domain.MailingList without its members
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX rm_lists_domain_idx ON rm_lists (domain, address) WHERE NOT deleted;

CREATE TABLE rm_list_members (
    list   text NOT NULL,
    member text NOT NULL,
    PRIMARY KEY (list, member)
);

CREATE TABLE rm_resources (
    address        text        PRIMARY KEY,
    domain         text        NOT NULL,
    display_name   text        NOT NULL DEFAULT '',
    type           text        NOT NULL,
    booking_policy text        NOT NULL,
    version        integer     NOT NULL,
    deleted        boolean     NOT NULL DEFAULT false,
    state          jsonb       NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX rm_resources_domain_idx ON rm_resources (domain, address) WHERE NOT deleted;

-- rm_aliases.kind now also says list or resource; the index finds the aliases of an object.
CREATE INDEX rm_aliases_kind_target_idx ON rm_aliases (kind, target);

-- +goose Down
DROP INDEX rm_aliases_kind_target_idx;
DROP TABLE rm_resources;
DROP TABLE rm_list_members;
DROP TABLE rm_lists;
