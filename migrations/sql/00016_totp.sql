-- +goose Up
-- A session that may do less than its account: one opened by an administrator who must have a
-- second factor and has none yet may only enrol and confirm it (reason 'totp-enrolment').
-- Confirming the enrolment deletes the rows of the account's sessions.
CREATE TABLE session_restrictions (
    session_id text PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    reason     text NOT NULL
);

-- +goose Down
DROP TABLE session_restrictions;
