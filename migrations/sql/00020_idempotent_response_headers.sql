-- +goose Up
-- A repeat of a request with the same Idempotency-Key returns the first response (API.md
-- "Conventions"): its body was kept, and now the headers that belong to it too — Location (the
-- created object or the started job) and ETag. Records kept before this have none, and their
-- replays answer without them, as before.
ALTER TABLE idempotency_keys ADD COLUMN response_headers jsonb;

-- +goose Down
ALTER TABLE idempotency_keys DROP COLUMN response_headers;
