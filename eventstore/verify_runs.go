package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// VerifyRun is the recorded outcome of one verification: of the hash chains and anchors
// (VerifyChains) or of the read models against the events (VerifyReadModels).
type VerifyRun struct {
	ID         int64     `json:"id"`
	Kind       string    `json:"kind"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	OK         bool      `json:"ok"`
	Summary    string    `json:"summary"`
	Problems   []string  `json:"problems"`
	Host       string    `json:"host"`
}

// The kinds of verification a VerifyRun records.
const (
	VerifyChains     = "chains"
	VerifyReadModels = "read_models"
)

// maxRecordedProblems bounds what one run keeps of its problems: the first ones name where to
// look; the summary gives the count.
const maxRecordedProblems = 100

// RecordVerifyRun stores a verification's outcome and returns its id.
func (s *Postgres) RecordVerifyRun(ctx context.Context, run VerifyRun) (int64, error) {
	if len(run.Problems) > maxRecordedProblems {
		run.Problems = run.Problems[:maxRecordedProblems]
	}
	if run.Problems == nil {
		run.Problems = []string{}
	}
	problems, err := json.Marshal(run.Problems)
	if err != nil {
		return 0, err
	}
	var id int64
	err = s.pool.QueryRow(ctx, `INSERT INTO verify_runs (kind, started_at, finished_at, ok, summary, problems, host)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		run.Kind, run.StartedAt, run.FinishedAt, run.OK, run.Summary, problems, run.Host).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("eventstore: record verify run: %w", err)
	}
	return id, nil
}

// VerifyRuns returns the latest runs, newest first: at most limit, of kind unless it is empty.
func (s *Postgres) VerifyRuns(ctx context.Context, kind string, limit int) ([]VerifyRun, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, kind, started_at, finished_at, ok, summary, problems, host
		FROM verify_runs WHERE $1 = '' OR kind = $1 ORDER BY finished_at DESC, id DESC LIMIT $2`, kind, limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore: verify runs: %w", err)
	}
	defer rows.Close()
	out := []VerifyRun{}
	for rows.Next() {
		var r VerifyRun
		if err := rows.Scan(&r.ID, &r.Kind, &r.StartedAt, &r.FinishedAt, &r.OK, &r.Summary, &r.Problems, &r.Host); err != nil {
			return nil, fmt.Errorf("eventstore: verify runs: %w", err)
		}
		r.StartedAt, r.FinishedAt = r.StartedAt.UTC(), r.FinishedAt.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}
