package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
)

// apiTokenPrefix tells an API token from a session token (mpt_) and a service token (mps_) at
// a glance, in logs and in Authenticate, which looks it up in its own table.
const apiTokenPrefix = "mpa_"

// APITokenSessionPrefix marks, in eventstore.Metadata.SessionID, the events an API token's
// requests appended: "api-token:<id>" where a login's session id stands otherwise. The actor
// is still the account the token acts as, so the history names both.
const APITokenSessionPrefix = "api-token:"

// APITokenGrant is what a request made with an API token may touch: its id and its scope.
// The principal's roles are its owner's, read at each request; the scope narrows them.
type APITokenGrant struct {
	ID    string
	Scope domain.APITokenScope
}

// IsAPIToken reports whether the request came with an API token.
func (p Principal) IsAPIToken() bool { return p.APIToken != nil }

// InTokenScope reports whether the principal's token (if any) covers the domain (A-label form).
// Every other principal is bounded by its roles alone.
func (p Principal) InTokenScope(domainName string) bool {
	return p.APIToken == nil || p.APIToken.Scope.AllowsDomain(domainName)
}

// APIToken is an API token as its owner and the administrators see it. Token is set only in
// the answer to its creation.
type APIToken struct {
	ID         string
	Token      string
	Name       string
	Account    string
	Scope      domain.APITokenScope
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt *time.Time
}

func apiTokenStream(owner domain.Address, id string) eventstore.Stream {
	return eventstore.Stream{ID: domain.APITokenStreamID(owner.Domain, id), Type: domain.StreamTypeAPIToken, Domain: owner.Domain}
}

// CreateAPIToken makes an API token for owner (the caller: a token always acts as the account
// that made it). The scope must already be checked against the owner's rights. The token is
// returned once and stored only as its hash, written after the append in the same transaction.
func (s *Service) CreateAPIToken(ctx context.Context, req Request, owner domain.Address, name string,
	scope domain.APITokenScope, expiresAt time.Time) (APIToken, Outcome, error) {
	token, _, id, err := newToken()
	if err != nil {
		return APIToken{}, Outcome{}, err
	}
	token = apiTokenPrefix + strings.TrimPrefix(token, "mpt_")
	hash := hashToken(token)
	now := s.now()
	expiresAt = expiresAt.UTC().Truncate(time.Microsecond)
	var made domain.APIToken
	out, err := run(ctx, s, req, step[domain.APIToken]{
		stream: apiTokenStream(owner, id),
		decide: func(_ context.Context, _ pgx.Tx, t domain.APIToken, _ int) ([]domain.Event, error) {
			return t.DecideCreate(domain.CreateAPIToken{ID: id, Name: name, Owner: owner, Scope: scope, ExpiresAt: expiresAt, At: now})
		},
		after: func(ctx context.Context, tx pgx.Tx, t domain.APIToken, _ []domain.Event) error {
			made = t
			_, err := tx.Exec(ctx, `INSERT INTO api_tokens (id, token_hash, account, name, domains, all_domains, access, created_at, expires_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, t.ID, hash, t.Account, t.Name, t.Scope.Domains, t.Scope.AllDomains,
				t.Scope.Access, t.CreatedAt, t.ExpiresAt)
			return err
		},
	})
	if err != nil {
		return APIToken{}, out, err
	}
	return APIToken{ID: id, Token: token, Name: made.Name, Account: made.Account, Scope: made.Scope,
		CreatedAt: made.CreatedAt, ExpiresAt: made.ExpiresAt}, out, nil
}

// LookupAPIToken finds a token that is not revoked (expired ones too: they may still be
// revoked), for the caller to check who may act on it. ErrNotFound otherwise.
func (s *Service) LookupAPIToken(ctx context.Context, id string) (APIToken, error) {
	if id == "" || len(id) > 64 {
		return APIToken{}, fmt.Errorf("api token %q: %w", id, domain.ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens WHERE id = $1 AND revoked_at IS NULL`, id)
	if err != nil {
		return APIToken{}, err
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanAPIToken)
	if errors.Is(err, pgx.ErrNoRows) {
		return APIToken{}, fmt.Errorf("api token %q: %w", id, domain.ErrNotFound)
	}
	return t, err
}

// APITokens lists an account's usable tokens (neither revoked nor expired), newest first.
func (s *Service) APITokens(ctx context.Context, account domain.Address) ([]APIToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens
		WHERE account = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id`, account.String(), s.now())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanAPIToken)
}

const apiTokenColumns = `id, account, name, domains, all_domains, access, created_at, expires_at, last_used_at`

func scanAPIToken(row pgx.CollectableRow) (APIToken, error) {
	var t APIToken
	err := row.Scan(&t.ID, &t.Account, &t.Name, &t.Scope.Domains, &t.Scope.AllDomains, &t.Scope.Access,
		&t.CreatedAt, &t.ExpiresAt, &t.LastUsedAt)
	return t, err
}

// RevokeAPIToken ends a token: it is refused from the next request on (the lookup row is
// marked in the transaction of the event).
func (s *Service) RevokeAPIToken(ctx context.Context, req Request, t APIToken) (Outcome, error) {
	owner, err := domain.ParseAddress(t.Account)
	if err != nil {
		return Outcome{}, err
	}
	now := s.now()
	return run(ctx, s, req, step[domain.APIToken]{
		stream: apiTokenStream(owner, t.ID),
		decide: func(_ context.Context, _ pgx.Tx, t domain.APIToken, _ int) ([]domain.Event, error) {
			return t.DecideRevoke(domain.RevokeAPIToken{By: req.Meta.Actor, At: now})
		},
		after: func(ctx context.Context, tx pgx.Tx, _ domain.APIToken, _ []domain.Event) error {
			_, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = $2, revoked_by = $3 WHERE id = $1`, t.ID, now, req.Meta.Actor)
			return err
		},
	})
}

// authenticateAPIToken resolves an API token to the account that made it, with that account's
// roles and status as they are now (as Authenticate does for a session), and the token's
// scope. The account must be the one the token was made by: an account deleted and created
// again under the same address is another identity, created after the token.
func (s *Service) authenticateAPIToken(ctx context.Context, token string) (Principal, error) {
	var r principalRow
	var g APITokenGrant
	var lastUsed *time.Time
	now := s.now()
	err := s.pool.QueryRow(ctx, `SELECT t.id, t.domains, t.all_domains, t.access, t.last_used_at, t.account, `+principalColumns("t.account")+`
		FROM api_tokens t
		JOIN rm_accounts a ON a.address = t.account AND NOT a.deleted AND a.created_at <= t.created_at
		JOIN rm_domains d ON d.name = a.domain
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2`,
		hashToken(token), now).Scan(append([]any{&g.ID, &g.Scope.Domains, &g.Scope.AllDomains, &g.Scope.Access, &lastUsed, &r.account}, r.dest()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	p, err := s.principal(ctx, &r)
	if err != nil {
		return Principal{}, err
	}
	if lastUsed == nil || now.Sub(*lastUsed) > lastSeenResolution {
		if _, err := s.pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = $2 WHERE id = $1`, g.ID, now); err != nil {
			return Principal{}, err
		}
	}
	p.SessionID = APITokenSessionPrefix + g.ID
	p.APIToken = &g
	return p, nil
}
