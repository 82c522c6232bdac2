-- +goose Up
-- The Global Address List (API.md "GAL"): the GALSync account's settings (admin projection),
-- and the address book's entries with their search tokens.

-- Read model of the admin projection: one row per GAL stream. state is the aggregate without
-- the sealed bind password (the stream has it); the other columns are what the due-resync job
-- filters on.
CREATE TABLE rm_gal (
    domain                   text        PRIMARY KEY,
    version                  integer     NOT NULL,
    deleted                  boolean     NOT NULL DEFAULT false,
    state                    jsonb       NOT NULL,
    has_external             boolean     NOT NULL DEFAULT false,
    polling_interval_seconds integer     NOT NULL DEFAULT 0, -- 0: the global setting's
    last_sync_at             timestamptz,                    -- the latest resync's end, failed or not
    source_changed_at        timestamptz,                    -- the external source set or changed
    created_at               timestamptz NOT NULL,
    updated_at               timestamptz NOT NULL
);

-- The address book. Internal entries (source 'internal': accounts, lists not hidden from the GAL,
-- resources) are kept by the admin projection from the events; external ones (source
-- 'external') by the resync command, in the transaction that records its GALSynced event: they
-- are a copy of another directory, not decisions of this one's administrators, so they live
-- outside the event stream, and a projection rebuild leaves them alone. digest is what the
-- directory said of an external entry, to tell a changed entry from an unchanged one.
CREATE TABLE gal_entries (
    id           bigserial PRIMARY KEY,
    domain       text      NOT NULL,
    source       text      NOT NULL CHECK (source IN ('internal', 'external')),
    address      text      NOT NULL,
    display_name text      NOT NULL DEFAULT '',
    kind         text      NOT NULL CHECK (kind IN ('account', 'list', 'resource', 'external')),
    digest       text      NOT NULL DEFAULT '',
    UNIQUE (domain, source, address)
);

-- Search tokens, folded in Go (domain.FoldGAL: lower case, accents dropped). weight 0: a whole
-- address, local part or display name (exact match); 1: the whole address (prefix of the
-- address); 2: a word of a name (prefix of a word). COLLATE "C" makes the btree serve both a
-- prefix's byte range and ORDER BY token, so a prefix search reads the first rows of one index
-- range however many entries the domain has. source and the entry's address are included so
-- that a mode's filter, the ranking and the removal of duplicates need no visit to a table:
-- only the page's entries are read from gal_entries (about 25 % more searches/s than joining
-- every candidate, at 100,000 entries). No foreign key: tokens are deleted with their entry by the same
-- statements, and a bulk load need not check a million references.
CREATE TABLE gal_tokens (
    entry_id bigint   NOT NULL,
    domain   text     NOT NULL,
    source   text     NOT NULL,
    weight   smallint NOT NULL,
    token    text     COLLATE "C" NOT NULL,
    address  text     COLLATE "C" NOT NULL -- the entry's, so that a page is ranked from the index alone
);
CREATE INDEX gal_tokens_search_idx ON gal_tokens (domain, weight, token) INCLUDE (source, entry_id, address);
CREATE INDEX gal_tokens_entry_idx ON gal_tokens (entry_id);

-- The search (projections/postgres GALSearch): the GAL's mode picks the sources (a domain
-- without a GALSync account shows its internal entries); then each group is one range of
-- gal_tokens_search_idx read from its start and cut at the page's end, so the cost follows the
-- page, not the domain's size: exact matches of an address, local part or display name (rank
-- 0), prefixes of an address (1), prefixes of a word of a name (2), each group in token order,
-- then by address; one entry once, an address in both sources once (the internal one).
-- p_q_end closes the prefix's range (p_q || U+10FFFF), p_n is offset + limit.
--
-- Each group fetches enough rows to fill the page once the rows of entries already found by an
-- earlier group, and of an address held by both sources, are dropped: an entry has up to three
-- exact tokens, one address token (twice over with both sources), and words that rarely share a
-- prefix, hence 3n, 2n and 2n. (An entry with more words of the prefix than that could push the
-- last of a page to the next.)
--
-- A function, and one with plan_cache_mode = force_generic_plan, because planning this
-- statement costs several times its execution (0.3-0.5 ms against about 0.1 ms at 100,000
-- entries), and PostgreSQL, estimating the generic plan dearer than the custom ones, would
-- otherwise plan it again on every call. Its plan is made once per connection; the ranges
-- bound the index scans at run time, whatever the prefix.
-- +goose StatementBegin
CREATE FUNCTION gal_search(p_domain text, p_q text, p_q_end text, p_n bigint, p_offset bigint, p_limit bigint)
RETURNS TABLE (address text, display_name text, kind text, rank integer)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH src AS (
        SELECT CASE (SELECT state->>'Mode' FROM rm_gal WHERE domain = p_domain AND NOT deleted)
            WHEN 'internal' THEN '{internal}'::text[]
            WHEN 'external' THEN '{external}'::text[]
            WHEN 'both' THEN '{internal,external}'::text[]
            ELSE '{internal}'::text[] END AS sources
    ), m AS (
        (SELECT entry_id, 0 AS rank, token, address, source FROM gal_tokens
            WHERE domain = p_domain AND weight = 0 AND token = p_q
                AND source = ANY((SELECT sources FROM src)::text[])
            LIMIT p_n * 3)
        UNION ALL
        (SELECT entry_id, 1, token, address, source FROM gal_tokens
            WHERE domain = p_domain AND weight = 1 AND token >= p_q AND token <= p_q_end
                AND source = ANY((SELECT sources FROM src)::text[])
            ORDER BY token LIMIT p_n * 2)
        UNION ALL
        (SELECT entry_id, 2, token, address, source FROM gal_tokens
            WHERE domain = p_domain AND weight = 2 AND token >= p_q AND token <= p_q_end
                AND source = ANY((SELECT sources FROM src)::text[])
            ORDER BY token LIMIT p_n * 2)
    ), best AS (
        -- One row per address: its best match, the internal entry's when both sources have it.
        SELECT DISTINCT ON (address) entry_id, rank, token, address FROM m
        ORDER BY address, rank, source = 'external', token
    ), page AS (
        SELECT * FROM best ORDER BY rank, token, address OFFSET p_offset LIMIT p_limit
    )
    SELECT p.address::text, e.display_name, e.kind, p.rank FROM page p JOIN gal_entries e ON e.id = p.entry_id
    ORDER BY p.rank, p.token, p.address;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION gal_search(text, text, text, bigint, bigint, bigint);
DROP TABLE gal_tokens;
DROP TABLE gal_entries;
DROP TABLE rm_gal;
