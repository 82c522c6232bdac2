package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
)

var (
	// ErrInvalidCredentials is the one answer to a wrong address or password, so that a caller
	// cannot tell which of the two was wrong.
	ErrInvalidCredentials = errors.New("invalid e-mail address or password")
	// ErrUnauthenticated means a token is unknown, ended or expired.
	ErrUnauthenticated = errors.New("not logged in or session ended")
)

// RateLimitedError says how long to wait before trying to log in again.
type RateLimitedError struct {
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many failed logins: try again in %s", e.RetryAfter.Round(time.Second))
}

// LoginLimits bound failed logins per account and per source IP within a window.
type LoginLimits struct {
	PerAccount int
	PerIP      int
	Window     time.Duration
}

// DefaultLoginLimits allow 5 failures per account and 20 per IP in 15 minutes.
var DefaultLoginLimits = LoginLimits{PerAccount: 5, PerIP: 20, Window: 15 * time.Minute}

// Session is a login session as its owner and admins see it.
type Session struct {
	ID         string    `json:"id"`
	Account    string    `json:"account"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
}

// Principal is who a valid token belongs to, as of this request.
type Principal struct {
	Address     domain.Address
	SessionID   string
	GlobalAdmin bool
	DomainAdmin bool
}

// Login checks credentials and opens a session. It returns the token, which is shown once and
// stored only as a hash, and where the session's event landed (tokens are checked against the
// read models, so the caller waits for them before handing the token out).
func (s *Service) Login(ctx context.Context, email, password, ip, userAgent string) (string, Session, Outcome, error) {
	keys := []string{"ip:" + ip}
	addr, perr := domain.ParseAddress(email)
	if perr == nil {
		keys = append(keys, "account:"+addr.String())
	}
	if err := s.checkLoginLimits(ctx, keys); err != nil {
		return "", Session{}, Outcome{}, err
	}
	fail := func() (string, Session, Outcome, error) {
		if err := s.recordLoginFailure(ctx, keys); err != nil {
			return "", Session{}, Outcome{}, err
		}
		return "", Session{}, Outcome{}, ErrInvalidCredentials
	}
	if perr != nil {
		return fail()
	}
	a, _, err := load[domain.Account](ctx, s, s.pool, domain.AccountStreamID(addr))
	if err != nil {
		return "", Session{}, Outcome{}, err
	}
	d, _, err := load[domain.Domain](ctx, s, s.pool, domain.DomainStreamID(addr.Domain))
	if err != nil {
		return "", Session{}, Outcome{}, err
	}
	external := d.Auth.External()
	if !a.Exists() || (!external && !a.HasPassword) {
		// Spend the time a real check would, so that timing does not reveal who exists.
		_, _ = s.hasher.Hash(ctx, password)
		return fail()
	}
	var ok, rehash bool
	if external {
		// The domain's directory decides; a local password, if any, is not consulted.
		ok, err = s.checkInDirectory(ctx, d, addr, password)
	} else {
		ok, rehash, err = s.checkLocalPassword(ctx, a, password)
	}
	if err != nil {
		return "", Session{}, Outcome{}, err
	}
	if !ok {
		return fail()
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM login_failures WHERE key = $1`, "account:"+addr.String()); err != nil {
		return "", Session{}, Outcome{}, err
	}

	// A hash from a migration (or older parameters) is replaced on the first good login.
	var newSecret string
	if rehash {
		phc, err := s.hasher.Hash(ctx, password)
		if err != nil {
			return "", Session{}, Outcome{}, err
		}
		if newSecret, err = s.keys.Seal(ctx, addr.Domain, []byte(phc)); err != nil {
			return "", Session{}, Outcome{}, err
		}
	}

	token, tokenHash, sessionID, err := newToken()
	if err != nil {
		return "", Session{}, Outcome{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	sess := Session{ID: sessionID, Account: addr.String(), CreatedAt: now, LastSeenAt: now, IP: ip, UserAgent: userAgent}
	req := Request{Meta: metaFor(addr.String(), ip)}
	out, err := run(ctx, s, req, step[domain.Account]{
		stream: accountStream(addr),
		with:   accountContext(addr, a.COS),
		decide: func(ctx context.Context, tx pgx.Tx, a domain.Account, _ int) ([]domain.Event, error) {
			d, _, err := load[domain.Domain](ctx, s, tx, domain.DomainStreamID(addr.Domain))
			if err != nil {
				return nil, err
			}
			lifetime, err := s.sessionLifetime(ctx, tx, a)
			if err != nil {
				return nil, err
			}
			sess.ExpiresAt = now.Add(lifetime)
			events, err := a.Decide(domain.StartSession{SessionID: sessionID, IP: ip, UserAgent: userAgent, At: now, Domain: d})
			if err != nil {
				return nil, err
			}
			if newSecret != "" {
				more, err := a.Decide(domain.SetPassword{PasswordSecret: newSecret})
				if err != nil {
					return nil, err
				}
				events = append(more, events...)
			}
			return events, nil
		},
		after: func(ctx context.Context, tx pgx.Tx, _ domain.Account, _ []domain.Event) error {
			_, err := tx.Exec(ctx, `INSERT INTO sessions (id, token_hash, account, created_at, last_seen_at, expires_at, ip, user_agent)
				VALUES ($1, $2, $3, $4, $4, $5, $6, $7)`, sessionID, tokenHash, sess.Account, now, sess.ExpiresAt, ip, userAgent)
			return err
		},
	})
	if err != nil {
		return "", Session{}, Outcome{}, err
	}
	return token, sess, out, nil
}

// checkLocalPassword verifies a password against the account's own (sealed) hash.
func (s *Service) checkLocalPassword(ctx context.Context, a domain.Account, password string) (ok, rehash bool, err error) {
	stored, err := s.keys.Open(ctx, a.PasswordSecret)
	if errors.Is(err, keyring.ErrShredded) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	return s.hasher.Verify(ctx, string(stored), password)
}

func metaFor(actor, ip string) eventstore.Metadata {
	return eventstore.Metadata{Actor: actor, SourceIP: ip}
}

// sessionLifetime is the effective session_lifetime_seconds of the account.
func (s *Service) sessionLifetime(ctx context.Context, q pgx.Tx, a domain.Account) (time.Duration, error) {
	v, err := s.settingsOf(ctx, q, a)
	if err != nil {
		return 0, err
	}
	secs, _ := v.Effective().Values["session_lifetime_seconds"].(int)
	if secs <= 0 {
		secs = domain.DefaultSessionLifetimeSeconds
	}
	return time.Duration(secs) * time.Second, nil
}

func newToken() (token string, hash []byte, id string, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, "", err
	}
	idRaw := make([]byte, 12)
	if _, err := rand.Read(idRaw); err != nil {
		return "", nil, "", err
	}
	token = "mpt_" + base64.RawURLEncoding.EncodeToString(raw)
	return token, hashToken(token), hex.EncodeToString(idRaw), nil
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// lastSeenResolution limits last-seen updates to one write per session per minute.
const lastSeenResolution = time.Minute

// StaleError means the read models were behind the account or its domain when a token was
// checked: the caller waits until they reach Position and asks again.
type StaleError struct {
	Position eventstore.Position
}

func (e *StaleError) Error() string { return "the read models are behind the account's latest change" }

// Authenticate resolves a bearer token. The account's roles and status are read as they are
// now, so locking an account or closing its domain takes effect at the next request: when the
// read model has not yet caught up with the account's or domain's last event, it returns a
// *StaleError instead of acting on stale state.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	var p Principal
	var account, domainName, accountStatus, domainStatus string
	var lastSeen time.Time
	var aVersion, dVersion, aHead, dHead int
	// Only the columns a decision needs, not the whole states: this runs on every request.
	err := s.pool.QueryRow(ctx, `SELECT s.id, s.account, a.domain, s.last_seen_at, a.status, d.status,
		coalesce((a.state->>'GlobalAdmin')::boolean, false), coalesce((a.state->>'DomainAdmin')::boolean, false),
		a.version, d.version,
		(SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = 'account-' || s.account),
		(SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = 'domain-' || a.domain)
		FROM sessions s
		JOIN rm_accounts a ON a.address = s.account AND NOT a.deleted
		JOIN rm_domains d ON d.name = a.domain
		WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2`,
		hashToken(token), s.now()).Scan(&p.SessionID, &account, &domainName, &lastSeen, &accountStatus, &domainStatus,
		&p.GlobalAdmin, &p.DomainAdmin, &aVersion, &dVersion, &aHead, &dHead)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	if aVersion < aHead || dVersion < dHead {
		var stale StaleError
		for _, id := range []string{"account-" + account, "domain-" + domainName} {
			_, pos, err := s.store.StreamHead(ctx, id)
			if err != nil {
				return Principal{}, err
			}
			if stale.Position.Less(pos) {
				stale.Position = pos
			}
		}
		return Principal{}, &stale
	}
	addr, err := domain.ParseAddress(account)
	if err != nil {
		return Principal{}, err
	}
	a := domain.Account{Address: addr, Status: accountStatus}
	d := domain.Domain{Name: domainName, Status: domainStatus}
	if err := a.AcceptsLogin(d); err != nil {
		return Principal{}, fmt.Errorf("%w: %s", ErrUnauthenticated, err.Error())
	}
	if now := s.now(); now.Sub(lastSeen) > lastSeenResolution {
		if _, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = $2 WHERE id = $1`, p.SessionID, now); err != nil {
			return Principal{}, err
		}
	}
	p.Address = addr
	return p, nil
}

// Sessions lists an account's open sessions, newest first.
func (s *Service) Sessions(ctx context.Context, addr domain.Address) ([]Session, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, account, created_at, last_seen_at, expires_at, ip, user_agent
		FROM sessions WHERE account = $1 AND ended_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id`,
		addr.String(), s.now())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Session])
}

// EndSession ends one session: its token stops working at once.
func (s *Service) EndSession(ctx context.Context, req Request, addr domain.Address, sessionID string) (Outcome, error) {
	now := s.now()
	return run(ctx, s, req, step[domain.Account]{
		stream: accountStream(addr),
		decide: func(_ context.Context, _ pgx.Tx, a domain.Account, _ int) ([]domain.Event, error) {
			if !a.Exists() {
				return nil, fmt.Errorf("account %s: %w", addr, domain.ErrNotFound)
			}
			return a.Decide(domain.EndSession{SessionID: sessionID, By: req.Meta.Actor, At: now})
		},
		after: func(ctx context.Context, tx pgx.Tx, _ domain.Account, _ []domain.Event) error {
			_, err := tx.Exec(ctx, `UPDATE sessions SET ended_at = $3, ended_by = $4 WHERE id = $1 AND account = $2`,
				sessionID, addr.String(), now, req.Meta.Actor)
			return err
		},
	})
}

// checkLoginLimits refuses a login while any of its keys is over its limit.
func (s *Service) checkLoginLimits(ctx context.Context, keys []string) error {
	rows, err := s.pool.Query(ctx, `SELECT key, failures, window_start FROM login_failures WHERE key = ANY($1)`, keys)
	if err != nil {
		return err
	}
	defer rows.Close()
	now := s.now()
	var wait time.Duration
	for rows.Next() {
		var key string
		var failures int
		var start time.Time
		if err := rows.Scan(&key, &failures, &start); err != nil {
			return err
		}
		limit := s.limiter.PerAccount
		if key[:3] == "ip:" {
			limit = s.limiter.PerIP
		}
		if end := start.Add(s.limiter.Window); failures >= limit && end.After(now) {
			wait = max(wait, end.Sub(now))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if wait > 0 {
		return &RateLimitedError{RetryAfter: time.Duration(math.Ceil(wait.Seconds())) * time.Second}
	}
	return nil
}

// recordLoginFailure counts a failure against every key, starting a new window when the old one
// is over.
func (s *Service) recordLoginFailure(ctx context.Context, keys []string) error {
	now := s.now()
	_, err := s.pool.Exec(ctx, `INSERT INTO login_failures (key, failures, window_start)
		SELECT k, 1, $2 FROM unnest($1::text[]) AS k
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN login_failures.window_start + $3 < $2 THEN 1 ELSE login_failures.failures + 1 END,
			window_start = CASE WHEN login_failures.window_start + $3 < $2 THEN $2 ELSE login_failures.window_start END`,
		keys, now, s.limiter.Window)
	return err
}
