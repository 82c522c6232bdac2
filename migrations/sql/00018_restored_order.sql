-- +goose Up
-- A logical dump restored into another cluster (pg_dump → pg_restore) keeps the old cluster's
-- transaction ids, which the new cluster's counter is far from: `mailplane after-restore`
-- rewrites the events' transaction ids into small numbers below anything the new cluster will
-- assign, keeping the old (transaction_id, position) order. An anchor's signature covers the
-- position it was taken at in the old order, so that stays as signed; these columns say where
-- the anchor's window ends in the rewritten order (NULL: never rewritten, the signed one holds).
ALTER TABLE anchors
    ADD COLUMN order_transaction_id xid8,
    ADD COLUMN order_position       bigint;

-- Each rewrite: when, how many events and transactions, and the highest id given out.
CREATE TABLE order_rewrites (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    events        bigint      NOT NULL,
    transactions  bigint      NOT NULL,
    max_rewritten xid8        NOT NULL,
    rewritten_by  text        NOT NULL,
    rewritten_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE order_rewrites;
ALTER TABLE anchors
    DROP COLUMN order_position,
    DROP COLUMN order_transaction_id;
