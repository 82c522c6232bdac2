package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-acme/lego/v4/challenge"
	"github.com/jackc/pgx/v5"

	"mailplane/eventstore"
)

// HTTPChallenges keeps the pending ACME HTTP-01 challenges in the acme_challenges table: it is
// the challenge.Provider the issuance job gives lego (Present stores a token's key
// authorization, CleanUp removes it), and the source ChallengeHandler answers the CA from. In
// the database, so that the CA may reach any mailplane process, not only the one whose job
// asked.
type HTTPChallenges struct {
	DB eventstore.DBTX
}

var _ challenge.Provider = (*HTTPChallenges)(nil)

// challengeTimeout bounds each challenge-table statement (lego's Provider has no context).
const challengeTimeout = 10 * time.Second

// Present implements challenge.Provider.
func (c *HTTPChallenges) Present(host, token, keyAuth string) error {
	ctx, cancel := context.WithTimeout(context.Background(), challengeTimeout)
	defer cancel()
	_, err := c.DB.Exec(ctx, `INSERT INTO acme_challenges (token, host, key_auth) VALUES ($1, $2, $3)
		ON CONFLICT (token) DO UPDATE SET host = excluded.host, key_auth = excluded.key_auth, created_at = now()`,
		token, strings.ToLower(host), keyAuth)
	if err != nil {
		return fmt.Errorf("acme: store the HTTP-01 challenge for %s: %w", host, err)
	}
	return nil
}

// CleanUp implements challenge.Provider.
func (c *HTTPChallenges) CleanUp(host, token, _ string) error {
	ctx, cancel := context.WithTimeout(context.Background(), challengeTimeout)
	defer cancel()
	if _, err := c.DB.Exec(ctx, `DELETE FROM acme_challenges WHERE token = $1`, token); err != nil {
		return fmt.Errorf("acme: remove the HTTP-01 challenge for %s: %w", host, err)
	}
	return nil
}

// KeyAuth returns the key authorization that answers token for host.
func (c *HTTPChallenges) KeyAuth(ctx context.Context, host, token string) (string, bool, error) {
	var ka string
	err := c.DB.QueryRow(ctx, `SELECT key_auth FROM acme_challenges WHERE token = $1 AND host = $2`, token, host).Scan(&ka)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return ka, true, nil
}

// ExpireChallenges deletes challenges older than a day: those a crashed job never cleaned up.
func (c *HTTPChallenges) ExpireChallenges(ctx context.Context) error {
	_, err := c.DB.Exec(ctx, `DELETE FROM acme_challenges WHERE created_at < now() - interval '1 day'`)
	return err
}

// ChallengeSource looks up the answer to an HTTP-01 challenge.
type ChallengeSource interface {
	KeyAuth(ctx context.Context, host, token string) (keyAuth string, ok bool, err error)
}

// ChallengePathPrefix is where the CA fetches HTTP-01 answers (RFC 8555 §8.3).
const ChallengePathPrefix = "/.well-known/acme-challenge/"

// ChallengeHandler answers the CA's HTTP-01 requests, GET http://<host>/.well-known/acme-challenge/<token>,
// with the key authorization stored for that host and token (200 text/plain), and everything
// else with 404. It is what mailplane serves on port 80 (MAILPLANE_ACME_HTTP_ADDR), or what a
// proxy in front forwards that path to.
func ChallengeHandler(src ChallengeSource, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, ChallengePathPrefix)
		if !ok || token == "" || strings.Contains(token, "/") || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			http.NotFound(w, r)
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		ka, found, err := src.KeyAuth(r.Context(), host, token)
		if err != nil {
			logger.Error("acme: HTTP-01 challenge lookup failed", "host", host, "err", err)
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		if !found {
			logger.Info("acme: HTTP-01 challenge not found", "host", host)
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(ka))
	})
}
