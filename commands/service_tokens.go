package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
)

// serviceTokenPrefix tells a service token from a session token (mpt_) at a glance, in logs and
// in Authenticate, which looks it up in its own table.
const serviceTokenPrefix = "mps_"

func serviceTokenStream(id string) eventstore.Stream {
	return eventstore.Stream{ID: domain.ServiceTokenStreamID(id), Type: domain.StreamTypeServiceToken}
}

// ServiceToken is a service token as its creator sees it once.
type ServiceToken struct {
	ID    string
	Token string
	domain.ServiceToken
}

// CreateServiceToken makes a service token (for the mail store: role mailstore). The token is
// returned once and stored only as its hash, written after the append in the same transaction.
func (s *Service) CreateServiceToken(ctx context.Context, req Request, name, role string) (ServiceToken, Outcome, error) {
	token, hash, id, err := newToken()
	if err != nil {
		return ServiceToken{}, Outcome{}, err
	}
	token = serviceTokenPrefix + strings.TrimPrefix(token, "mpt_")
	hash = hashToken(token)
	now := s.now()
	var made domain.ServiceToken
	out, err := run(ctx, s, req, step[domain.ServiceToken]{
		stream: serviceTokenStream(id),
		decide: func(_ context.Context, _ pgx.Tx, t domain.ServiceToken, _ int) ([]domain.Event, error) {
			return t.DecideCreate(domain.CreateServiceToken{ID: id, Name: name, Role: role, By: req.Meta.Actor, At: now})
		},
		after: func(ctx context.Context, tx pgx.Tx, t domain.ServiceToken, _ []domain.Event) error {
			made = t
			_, err := tx.Exec(ctx, `INSERT INTO service_tokens (id, name, role, token_hash, created_by, created_at)
				VALUES ($1, $2, $3, $4, $5, $6)`, t.ID, t.Name, t.Role, hash, t.CreatedBy, t.CreatedAt)
			return err
		},
	})
	if err != nil {
		return ServiceToken{}, out, err
	}
	return ServiceToken{ID: id, Token: token, ServiceToken: made}, out, nil
}

// RevokeServiceToken ends a service token: it is refused from the next request on.
func (s *Service) RevokeServiceToken(ctx context.Context, req Request, id string) (Outcome, error) {
	if id == "" || len(id) > 64 {
		return Outcome{}, fmt.Errorf("service token %q: %w", id, domain.ErrNotFound)
	}
	now := s.now()
	return run(ctx, s, req, step[domain.ServiceToken]{
		stream: serviceTokenStream(id),
		decide: func(_ context.Context, _ pgx.Tx, t domain.ServiceToken, _ int) ([]domain.Event, error) {
			return t.DecideRevoke(domain.RevokeServiceToken{By: req.Meta.Actor, At: now})
		},
		after: func(ctx context.Context, tx pgx.Tx, _ domain.ServiceToken, _ []domain.Event) error {
			_, err := tx.Exec(ctx, `UPDATE service_tokens SET revoked_at = $2 WHERE id = $1`, id, now)
			return err
		},
	})
}

// authenticateService resolves a service token: a principal with its role and no account.
func (s *Service) authenticateService(ctx context.Context, token string) (Principal, error) {
	var p Principal
	err := s.pool.QueryRow(ctx, `SELECT id, role FROM service_tokens WHERE token_hash = $1 AND revoked_at IS NULL`,
		hashToken(token)).Scan(&p.ServiceToken, &p.Role)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	return p, nil
}
