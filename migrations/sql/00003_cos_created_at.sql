-- +goose Up
-- When a class of service was (last) created; updated_at alone said when it last changed.
ALTER TABLE rm_cos ADD COLUMN created_at timestamptz;
UPDATE rm_cos SET created_at = updated_at;
ALTER TABLE rm_cos ALTER COLUMN created_at SET NOT NULL;

-- +goose Down
ALTER TABLE rm_cos DROP COLUMN created_at;
