-- +goose Up
-- Which class of service each object refers to: written by the commands in the transaction of
-- the change that sets, moves or clears the reference (write side, like address_claims), so that
-- deleting a COS can ask who uses it without waiting for the read models and without missing
-- what a projection has not projected, or parked.
CREATE TABLE cos_references (
    -- An account's address, 'domain:<name>' for a domain's default COS, or 'global:default_cos':
    -- the names the in-use refusal lists.
    referrer text PRIMARY KEY,
    cos      text NOT NULL
);
-- The in-use check: one lookup by COS.
CREATE INDEX cos_references_cos_idx ON cos_references (cos, referrer);

-- Backfill from the events, the source of truth (the read models may lag behind them). In each
-- stream the last event that sets or clears the reference decides it, as the aggregates' Evolve
-- does: AccountCreated gives the account its cos or none; AccountUpdated sets cos when it carries
-- one and removes it when "cos" is in cleared (applied after the set); AccountDeleted leaves no
-- account. DomainCreated gives the domain its default_cos; DomainUpdated as AccountUpdated, with
-- "default_cos"; DomainClosed keeps it (the domain and its objects stay). GlobalConfigUpdated
-- carries default_cos whenever it changes (clearing records the built-in name); until one does,
-- the built-in 'default' is the global default. Every event is still at schema version 1.
INSERT INTO cos_references (referrer, cos)
SELECT referrer, cos FROM (
    SELECT DISTINCT ON (stream_id)
        substr(stream_id, length('account-') + 1) AS referrer,
        CASE WHEN event_type = 'AccountDeleted' THEN NULL
             WHEN event_type = 'AccountUpdated' AND coalesce(data->'cleared' ? 'cos', false) THEN NULL
             ELSE data->>'cos' END AS cos
    FROM events
    WHERE stream_type = 'account'
      AND (event_type IN ('AccountCreated', 'AccountDeleted')
           OR event_type = 'AccountUpdated'
              AND (data->>'cos' IS NOT NULL OR coalesce(data->'cleared' ? 'cos', false)))
    ORDER BY stream_id, stream_version DESC
) accounts
WHERE cos IS NOT NULL
UNION ALL
SELECT referrer, cos FROM (
    SELECT DISTINCT ON (stream_id)
        'domain:' || substr(stream_id, length('domain-') + 1) AS referrer,
        CASE WHEN event_type = 'DomainUpdated' AND coalesce(data->'cleared' ? 'default_cos', false) THEN NULL
             ELSE data->>'default_cos' END AS cos
    FROM events
    WHERE stream_type = 'domain'
      AND (event_type = 'DomainCreated'
           OR event_type = 'DomainUpdated'
              AND (data->>'default_cos' IS NOT NULL OR coalesce(data->'cleared' ? 'default_cos', false)))
    ORDER BY stream_id, stream_version DESC
) domains
WHERE cos IS NOT NULL
UNION ALL
SELECT 'global:default_cos', coalesce(
    (SELECT data->>'default_cos' FROM events
     WHERE stream_id = 'config-global' AND event_type = 'GlobalConfigUpdated' AND data->>'default_cos' IS NOT NULL
     ORDER BY stream_version DESC LIMIT 1),
    'default');

-- +goose Down
DROP TABLE cos_references;
