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
	"slices"
	"strings"
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

// LoginLimits bound failed logins within a window. PerIP counts a source address's failures
// against any account. PerAccount counts an account's failures from one source address, so
// that someone guessing from elsewhere cannot lock the owner out: the owner's own address has
// its own allowance. AccountWide bounds a guesser that spreads over many addresses: once the
// account has had that many failures from all of them, every address that has failed against
// it at all waits, so each further address gets one guess.
type LoginLimits struct {
	PerAccount int
	PerIP      int
	// AccountWide bounds an account's failures from every source together (0: no bound).
	AccountWide int
	Window      time.Duration
}

// DefaultLoginLimits allow, in 15 minutes, 5 failures per account from one address, 20 per
// address, and 100 per account from all addresses before each address gets one.
var DefaultLoginLimits = LoginLimits{PerAccount: 5, PerIP: 20, AccountWide: 100, Window: 15 * time.Minute}

// Session is a login session as its owner and admins see it.
type Session struct {
	ID         string    `json:"id"`
	Account    string    `json:"account"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	// TOTPEnrolmentRequired: the session may only enrol a second factor (totp.go).
	TOTPEnrolmentRequired bool `json:"-" db:"-"`
}

// Principal is who a valid token belongs to, as of this request.
type Principal struct {
	Address     domain.Address
	SessionID   string
	GlobalAdmin bool
	DomainAdmin bool
	// Auditor reads what AuditorDomains names (every domain when empty) and writes nothing.
	Auditor        bool
	AuditorDomains []string
	// ServiceToken and Role are set for a service token (then Address is zero): a program
	// that may do only what its role allows (domain.RoleMailstore: report usage).
	ServiceToken string
	Role         string
	// APIToken is set for an API token (api_tokens.go): the principal is then its owner, with
	// the owner's current roles, narrowed by the token's scope.
	APIToken *APITokenGrant
	// MustEnrolTOTP is set for a login session that may only enrol a second factor and confirm
	// it (its account must have one and has none): read with the session, on every request.
	MustEnrolTOTP bool
}

// IsService reports whether the principal is a service token rather than an account.
func (p Principal) IsService() bool { return p.ServiceToken != "" }

// Audits reports whether p is an auditor whose scope has the domain.
func (p Principal) Audits(domainName string) bool {
	return p.Auditor && (len(p.AuditorDomains) == 0 || slices.Contains(p.AuditorDomains, domainName))
}

// AuditsAll reports whether p is an auditor of every domain (and so of what is not a domain's).
func (p Principal) AuditsAll() bool { return p.Auditor && len(p.AuditorDomains) == 0 }

// Login checks credentials and opens a session. It returns the token, which is shown once and
// stored only as a hash, and where the session's event landed (tokens are checked against the
// read models, so the caller waits for them before handing the token out).
func (s *Service) Login(ctx context.Context, email, password, ip, userAgent string) (string, Session, Outcome, error) {
	return s.LoginWithFactor(ctx, email, password, SecondFactor{}, ip, userAgent)
}

// LoginWithFactor is Login with a second factor (totp.go), which an account with TOTP enabled
// needs: without one it fails with ErrTOTPRequired, with a wrong or replayed one with
// ErrTOTPInvalid, which counts as a failed login.
func (s *Service) LoginWithFactor(ctx context.Context, email, password string, factor SecondFactor, ip, userAgent string) (string, Session, Outcome, error) {
	keys := []string{"ip:" + ip}
	addr, perr := domain.ParseAddress(email)
	if perr == nil {
		keys = append(keys, accountKey(addr), pairKey(addr, ip))
	}
	if err := s.checkLoginLimits(ctx, keys); err != nil {
		return "", Session{}, Outcome{}, err
	}
	failWith := func(why error) (string, Session, Outcome, error) {
		if err := s.recordLoginFailure(ctx, keys); err != nil {
			return "", Session{}, Outcome{}, err
		}
		return "", Session{}, Outcome{}, why
	}
	fail := func() (string, Session, Outcome, error) { return failWith(ErrInvalidCredentials) }
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
	// --- second factor (totp.go): checked before the failures are forgiven.
	tf, err := s.secondFactor(ctx, a, d, factor)
	if errors.Is(err, ErrTOTPInvalid) {
		return failWith(err)
	}
	if err != nil {
		return "", Session{}, Outcome{}, err
	}
	// --- end second factor
	// The owner's own mistakes are forgiven; the account's count from every address stays, as
	// it tells of guessing elsewhere.
	if _, err := s.pool.Exec(ctx, `DELETE FROM login_failures WHERE key = $1`, pairKey(addr, ip)); err != nil {
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
			more, err := tf.decide(a) // second factor: the code's use, or ErrTOTPInvalid if used meanwhile
			if err != nil {
				return nil, err
			}
			events = append(events, more...)
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
			if err == nil && tf.restrict { // second factor required, none enrolled: this session may only enrol
				sess.TOTPEnrolmentRequired = true
				err = restrictSession(ctx, tx, sessionID)
			}
			return err
		},
	})
	if errors.Is(err, ErrTOTPInvalid) {
		return failWith(err)
	}
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
	if strings.HasPrefix(token, serviceTokenPrefix) {
		return s.authenticateService(ctx, token)
	}
	if strings.HasPrefix(token, apiTokenPrefix) {
		return s.authenticateAPIToken(ctx, token)
	}
	var r principalRow
	var lastSeen time.Time
	err := s.pool.QueryRow(ctx, `SELECT s.id, s.account, s.last_seen_at,
		EXISTS (SELECT 1 FROM session_restrictions r WHERE r.session_id = s.id), `+principalColumns("s.account")+`
		FROM sessions s
		JOIN rm_accounts a ON a.address = s.account AND NOT a.deleted
		JOIN rm_domains d ON d.name = a.domain
		WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2`,
		hashToken(token), s.now()).Scan(append([]any{&r.p.SessionID, &r.account, &lastSeen, &r.p.MustEnrolTOTP}, r.dest()...)...)
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
	if now := s.now(); now.Sub(lastSeen) > lastSeenResolution {
		if _, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = $2 WHERE id = $1`, p.SessionID, now); err != nil {
			return Principal{}, err
		}
	}
	return p, nil
}

// principalColumns are what an authentication reads of the caller's account and domain (a and
// d; account names the account's address): only the columns a decision needs, since this runs
// on every request, and both streams' heads, so that no principal is made from a read model
// behind its own events. Sessions and API tokens read the same, into a principalRow.
func principalColumns(account string) string {
	return `a.domain, a.status, d.status,
		coalesce((a.state->>'GlobalAdmin')::boolean, false), coalesce((a.state->>'DomainAdmin')::boolean, false),
		coalesce((a.state->>'Auditor')::boolean, false), coalesce(a.state->'AuditorDomains', '[]'),
		a.version, d.version,
		(SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = 'account-' || ` + account + `),
		(SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = 'domain-' || a.domain)`
}

// principalRow is what principalColumns scan into, with the account's address.
type principalRow struct {
	p                                                Principal
	account, domainName, accountStatus, domainStatus string
	aVersion, dVersion, aHead, dHead                 int
}

func (r *principalRow) dest() []any {
	return []any{&r.domainName, &r.accountStatus, &r.domainStatus, &r.p.GlobalAdmin, &r.p.DomainAdmin,
		&r.p.Auditor, &r.p.AuditorDomains, &r.aVersion, &r.dVersion, &r.aHead, &r.dHead}
}

// principal decides on a row: a StaleError while the account's or domain's read model is
// behind its stream, ErrUnauthenticated when the account may not log in now.
func (s *Service) principal(ctx context.Context, r *principalRow) (Principal, error) {
	if r.aVersion < r.aHead || r.dVersion < r.dHead {
		var stale StaleError
		for _, id := range []string{"account-" + r.account, "domain-" + r.domainName} {
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
	addr, err := domain.ParseAddress(r.account)
	if err != nil {
		return Principal{}, err
	}
	a := domain.Account{Address: addr, Status: r.accountStatus}
	d := domain.Domain{Name: r.domainName, Status: r.domainStatus}
	if err := a.AcceptsLogin(d); err != nil {
		return Principal{}, fmt.Errorf("%w: %s", ErrUnauthenticated, err.Error())
	}
	p := r.p
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

// Keys of the failure counts (login_failures.key).
func accountKey(a domain.Address) string         { return "account:" + a.String() }
func pairKey(a domain.Address, ip string) string { return "account-ip:" + a.String() + " " + ip }

// checkLoginLimits refuses a login while any of its keys is over its limit (see LoginLimits).
func (s *Service) checkLoginLimits(ctx context.Context, keys []string) error {
	rows, err := s.pool.Query(ctx, `SELECT key, failures, window_start FROM login_failures WHERE key = ANY($1)`, keys)
	if err != nil {
		return err
	}
	defer rows.Close()
	now := s.now()
	type count struct {
		failures int
		end      time.Time
	}
	var ipc, account, pair count
	for rows.Next() {
		var key string
		var c count
		var start time.Time
		if err := rows.Scan(&key, &c.failures, &start); err != nil {
			return err
		}
		if c.end = start.Add(s.limiter.Window); !c.end.After(now) {
			continue // an old window: it no longer counts
		}
		switch {
		case strings.HasPrefix(key, "ip:"):
			ipc = c
		case strings.HasPrefix(key, "account-ip:"):
			pair = c
		default:
			account = c
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var wait time.Duration
	if ipc.failures >= s.limiter.PerIP {
		wait = max(wait, ipc.end.Sub(now))
	}
	if pair.failures >= s.limiter.PerAccount {
		wait = max(wait, pair.end.Sub(now))
	}
	if s.limiter.AccountWide > 0 && account.failures >= s.limiter.AccountWide && pair.failures > 0 {
		// Whichever window ends first lifts this one.
		wait = max(wait, min(pair.end.Sub(now), account.end.Sub(now)))
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
