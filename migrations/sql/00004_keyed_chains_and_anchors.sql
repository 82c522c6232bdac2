-- +goose Up
-- Tamper evidence that holds against a database superuser (DESIGN.md §2): keyed hash chains,
-- signed anchors of the global head, and no clear-text-confirming request hashes.

-- An append's inserts call this once, before their first row. It fails if the transaction
-- already holds a transaction id (some write came first: readers order by the id taken at the
-- first write, so the events could sort ahead of the version they were decided on), and while
-- chains from before this migration wait to be re-keyed (appending onto them would mix schemes).
-- +goose StatementBegin
CREATE FUNCTION events_first_write() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'an append must be the first write of its transaction'
            USING ERRCODE = 'MP001',
                  HINT = 'read first, then append, then write the rest (DESIGN.md §2)';
    END IF;
    IF EXISTS (SELECT 1 FROM event_chain_rekeys WHERE state = 'pending') THEN
        RAISE EXCEPTION 'the event chains have not been re-keyed yet'
            USING ERRCODE = 'MP002', HINT = 'run mailplane migrate with the master key';
    END IF;
    RETURN true;
END;
$$;
-- +goose StatementEnd

-- Chains written before this migration are plain SHA-256 over another canonical form. They are
-- re-keyed once, by `mailplane migrate` (or serve's start), which holds the master key: it
-- verifies the old chains, rewrites every hash with the keyed chain, verifies again and marks the
-- row done, all in one transaction. Until then appends are refused (events_first_write).
CREATE TABLE event_chain_rekeys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state       text        NOT NULL CHECK (state IN ('pending', 'done')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz,
    streams     bigint,
    events      bigint
);
INSERT INTO event_chain_rekeys (state) SELECT 'pending' WHERE EXISTS (SELECT 1 FROM events);

-- Signed anchors of the global head (eventstore/anchor.go). Each covers every event up to its
-- position in the (transaction_id, position) order; heads_digest chains the heads of the
-- streams that changed since the previous anchor onto that anchor's digest, and prev_hash links
-- the anchors, so that a deleted tail, a deleted stream and a deleted anchor all show.
CREATE TABLE anchors (
    seq            bigint      PRIMARY KEY CHECK (seq > 0),
    transaction_id xid8        NOT NULL,
    position       bigint      NOT NULL,
    events         bigint      NOT NULL,
    streams        bigint      NOT NULL,
    heads_digest   bytea       NOT NULL,
    prev_hash      bytea       NOT NULL,
    recorded_at    timestamptz NOT NULL,
    public_key     bytea       NOT NULL,
    signature      bytea       NOT NULL
);

-- The stream heads each anchor covers (the changed ones), so that verify can name the stream
-- that lost events. Their digest is what the anchor signs.
CREATE TABLE anchor_heads (
    seq       bigint  NOT NULL REFERENCES anchors (seq),
    stream_id text    NOT NULL,
    version   integer NOT NULL,
    hash      bytea   NOT NULL,
    PRIMARY KEY (seq, stream_id)
);

CREATE TRIGGER anchors_append_only
    BEFORE UPDATE OR DELETE ON anchors
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();
CREATE TRIGGER anchors_no_truncate
    BEFORE TRUNCATE ON anchors
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();
CREATE TRIGGER anchor_heads_append_only
    BEFORE UPDATE OR DELETE ON anchor_heads
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();

-- Request hashes were unsalted SHA-256 of the raw body, which held clear passwords: gone. A
-- record without a hash still answers a repeat with its first result (never applies it twice).
UPDATE idempotency_keys SET request_hash = NULL;
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- +goose Down
DROP INDEX idempotency_keys_created_at_idx;
DROP TABLE anchor_heads;
DROP TABLE anchors;
DROP TABLE event_chain_rekeys;
DROP FUNCTION events_first_write();
