-- +goose Up
-- What the API shows of a River job beyond River's own row (GET /api/v1/jobs/{id}): who asked for
-- it and for which domain (to decide who may see it), and how far it has come. Written in the
-- transaction that inserts the job (workers.Enqueue); progress by the worker as it goes.
CREATE TABLE job_progress (
    job_id       bigint      PRIMARY KEY,
    kind         text        NOT NULL,
    domain       text,
    requested_by text        NOT NULL,
    done         bigint      NOT NULL DEFAULT 0,
    total        bigint      NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_progress_domain_idx ON job_progress (domain, job_id);

-- +goose Down
DROP TABLE job_progress;
