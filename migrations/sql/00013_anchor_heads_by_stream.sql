-- +goose Up
-- A domain's history export looks up the anchors that signed its streams' heads
-- (eventstore.AnchorsCovering); without this it scans every head of every anchor.
CREATE INDEX anchor_heads_stream_idx ON anchor_heads (stream_id, seq);

-- +goose Down
DROP INDEX anchor_heads_stream_idx;
