-- +goose Up
-- Removing a domain (API.md "DELETE /api/v1/domains/{domain}"; the remove_domain job).

-- Write side, like address_claims: one row per domain whose removal was started, written in the
-- transaction of its DomainRemovalStarted. While finished_at is NULL no address or virtual host
-- of the domain can be claimed (the claims' INSERTs check it), which closes the window in which a
-- command that read the domain before the removal began would still create something in it.
-- job_id is the removal's job, so that a repeated DELETE answers with it.
CREATE TABLE domain_removals (
    domain      text        PRIMARY KEY,
    job_id      bigint      NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

-- Admin projection: the streams whose rows a removal purged from the read model, with the
-- version they had reached. A name created again continues its stream at the next version,
-- and the projection must still see that as the next event rather than a gap. Only the stream
-- id and a number stay; no state of the removed object does.
CREATE TABLE rm_tombstones (
    stream_id text    PRIMARY KEY,
    version   integer NOT NULL
);

-- The removal takes a domain's claims owner by owner, a batch at a time: this index hands it the
-- next batch of owners in order without reading and sorting every claim the domain has left.
CREATE INDEX address_claims_domain_owner_idx ON address_claims (domain, owner);

-- +goose Down
DROP INDEX address_claims_domain_owner_idx;
DROP TABLE rm_tombstones;
DROP TABLE domain_removals;
