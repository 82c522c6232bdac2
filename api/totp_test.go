package api_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/api/apitest"
	"mailplane/commands"
)

// stoppedClock is a clock that stands still until moved: TOTP codes depend on the time step.
type stoppedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stoppedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stoppedClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTOTPEnv is an API whose clock stands 10 s into a 30 s step.
func newTOTPEnv(t *testing.T, limits commands.LoginLimits) (*apitest.Env, *stoppedClock) {
	c := &stoppedClock{t: time.Now().UTC().Truncate(30 * time.Second).Add(10 * time.Second)}
	// A generous read-your-writes bound: these tests are about codes, not about a loaded machine.
	return apitest.NewWith(t, apitest.Options{Now: c.Now, LoginLimits: limits,
		Config: api.Config{ReadYourWritesTimeout: 2 * time.Minute}}), c
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	require.NoError(t, err)
	return c
}

type totpLogin struct {
	email, password, code, recovery string
}

func (l totpLogin) body() map[string]string {
	b := map[string]string{"email": l.email, "password": l.password}
	if l.code != "" {
		b["totp_code"] = l.code
	}
	if l.recovery != "" {
		b["recovery_code"] = l.recovery
	}
	return b
}

// user makes an account with a known password and logs it in.
func totpUser(t *testing.T, e *apitest.Env, dom string, admin bool) (string, string) {
	t.Helper()
	body := map[string]any{"password": "user-password-1"}
	if admin {
		body["domain_admin"] = true
	}
	addr := e.CreateAccount(t, dom, body)
	return addr, e.Login(t, addr, "user-password-1")
}

// enrol enrols and confirms addr's second factor and returns the secret and recovery codes.
func enrol(t *testing.T, e *apitest.Env, c *stoppedClock, addr, token string) (string, []string) {
	t.Helper()
	r := e.Do(t, http.MethodPost, "/api/v1/accounts/"+addr+"/totp", token, nil)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	var enr struct {
		URI           string   `json:"otpauth_uri"`
		Secret        string   `json:"secret"`
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.Decode(t, &enr)
	require.True(t, strings.HasPrefix(enr.URI, "otpauth://totp/"), enr.URI)
	require.Contains(t, enr.URI, "secret="+enr.Secret)
	require.Len(t, enr.RecoveryCodes, 10)
	key, err := otp.NewKeyFromURL(enr.URI)
	require.NoError(t, err)
	require.Equal(t, enr.Secret, key.Secret())

	// Pending: logins do not ask for a code yet.
	st := e.Do(t, http.MethodGet, "/api/v1/accounts/"+addr+"/totp", token, nil).JSON(t)
	require.Equal(t, true, st["pending"])
	require.Equal(t, false, st["enabled"])
	e.Login(t, addr, "user-password-1")

	r = e.Do(t, http.MethodPost, "/api/v1/accounts/"+addr+"/totp/confirm", token, map[string]string{"code": "000000"})
	if code(t, enr.Secret, c.Now()) != "000000" {
		r.Problem(t, http.StatusBadRequest)
	}
	r = e.Do(t, http.MethodPost, "/api/v1/accounts/"+addr+"/totp/confirm", token, map[string]string{"code": code(t, enr.Secret, c.Now())})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, true, r.JSON(t)["enabled"])
	require.Equal(t, float64(10), r.JSON(t)["recovery_codes_left"])
	return enr.Secret, enr.RecoveryCodes
}

// Enrol, confirm, and from then on log in with a code: without one 401 totp-required; a good
// one works once (the same code again, or any code of a step already used, is refused); codes
// of steps outside the window are refused; a recovery code works once. The secret is in no
// event and no read in clear.
func TestTOTPLogin(t *testing.T) {
	t.Parallel()
	e, c := newTOTPEnv(t, commands.LoginLimits{PerAccount: 100, PerIP: 1000, Window: time.Minute})
	dom := e.CreateDomain(t, nil)
	addr, token := totpUser(t, e, dom, true)
	secret, recovery := enrol(t, e, c, addr, token)
	pw := "user-password-1"
	do := func(l totpLogin) apitest.Response {
		return e.Do(t, http.MethodPost, "/api/v1/auth/login", "", l.body())
	}

	// The code that confirmed the enrolment is spent: its step is used.
	p := do(totpLogin{email: addr, password: pw, code: code(t, secret, c.Now())}).Problem(t, http.StatusUnauthorized)
	require.Contains(t, p["type"], "totp-invalid")

	c.Add(30 * time.Second)
	p = do(totpLogin{email: addr, password: pw}).Problem(t, http.StatusUnauthorized)
	require.True(t, strings.HasSuffix(p["type"].(string), "totp-required"), p["type"])
	// A wrong password with no code is still a wrong password (nothing says TOTP).
	p = do(totpLogin{email: addr, password: "wrong-password"}).Problem(t, http.StatusUnauthorized)
	require.Contains(t, p["type"], "invalid-credentials")
	// A right code with a wrong password is refused too.
	do(totpLogin{email: addr, password: "wrong-password", code: code(t, secret, c.Now())}).Problem(t, http.StatusUnauthorized)

	good := code(t, secret, c.Now())
	r := do(totpLogin{email: addr, password: pw, code: good})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.NotContains(t, r.JSON(t), "totp_enrolment_required")
	tok := r.JSON(t)["token"].(string)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/accounts/"+addr, tok, nil).Status)

	// Replayed: the same code, and the previous step's code (still inside the window).
	p = do(totpLogin{email: addr, password: pw, code: good}).Problem(t, http.StatusUnauthorized)
	require.Contains(t, p["type"], "totp-invalid")
	do(totpLogin{email: addr, password: pw, code: code(t, secret, c.Now().Add(-30*time.Second))}).Problem(t, http.StatusUnauthorized)

	// Wrong steps: two behind, two ahead; a code of the next step (clock drift) is accepted.
	do(totpLogin{email: addr, password: pw, code: code(t, secret, c.Now().Add(-60*time.Second))}).Problem(t, http.StatusUnauthorized)
	do(totpLogin{email: addr, password: pw, code: code(t, secret, c.Now().Add(60*time.Second))}).Problem(t, http.StatusUnauthorized)
	do(totpLogin{email: addr, password: pw, code: "12345"}).Problem(t, http.StatusUnauthorized)
	r = do(totpLogin{email: addr, password: pw, code: code(t, secret, c.Now().Add(30*time.Second))})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	// ... after which the current step is behind the last one used.
	c.Add(30 * time.Second)
	do(totpLogin{email: addr, password: pw, code: code(t, secret, c.Now())}).Problem(t, http.StatusUnauthorized)
	c.Add(30 * time.Second)
	require.Equal(t, http.StatusOK, do(totpLogin{email: addr, password: pw, code: code(t, secret, c.Now())}).Status)

	// A recovery code works once, whatever its case and dashes.
	typed := strings.ToUpper(strings.ReplaceAll(recovery[3], "-", ""))
	r = do(totpLogin{email: addr, password: pw, recovery: typed})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	do(totpLogin{email: addr, password: pw, recovery: recovery[3]}).Problem(t, http.StatusUnauthorized)
	do(totpLogin{email: addr, password: pw, recovery: "aaaa-bbbb-cccc-dddd"}).Problem(t, http.StatusUnauthorized)
	st := e.Do(t, http.MethodGet, "/api/v1/accounts/"+addr+"/totp", token, nil).JSON(t)
	require.Equal(t, float64(9), st["recovery_codes_left"])

	// Enrolling again while enabled: 409. Someone else may not enrol for the account.
	e.Do(t, http.MethodPost, "/api/v1/accounts/"+addr+"/totp", token, nil).Problem(t, http.StatusConflict)
	e.Do(t, http.MethodPost, "/api/v1/accounts/"+addr+"/totp", e.AdminToken, nil).Problem(t, http.StatusForbidden)

	// The secret and the recovery codes are nowhere in clear: not in events, reads or history.
	ctx := context.Background()
	for _, needle := range []string{secret, recovery[0], strings.ReplaceAll(recovery[0], "-", "")} {
		var n int
		require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE data::text ILIKE '%' || $1 || '%'`, needle).Scan(&n))
		require.Zero(t, n, "events hold %s", needle)
		require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM rm_accounts WHERE state::text ILIKE '%' || $1 || '%'`, needle).Scan(&n))
		require.Zero(t, n, "the read model holds %s", needle)
	}
	var types []string
	rows, err := e.Pool.Query(ctx, `SELECT event_type FROM events WHERE stream_id = $1 AND event_type LIKE 'TOTP%' ORDER BY position`, "account-"+addr)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		types = append(types, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"TOTPEnrolmentStarted", "TOTPEnrolmentConfirmed", "TOTPCodeUsed", "TOTPCodeUsed", "TOTPCodeUsed", "TOTPRecoveryCodeUsed"}, types)
	for _, path := range []string{"/api/v1/accounts/" + addr, "/api/v1/accounts/" + addr + "/totp", "/api/v1/accounts/" + addr + "/history"} {
		r := e.Do(t, http.MethodGet, path, e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s %s", path, r.Body)
		require.NotContains(t, string(r.Body), secret, path)
		require.NotContains(t, strings.ToLower(string(r.Body)), strings.ToLower(secret), path)
	}
	hist := string(e.Do(t, http.MethodGet, "/api/v1/accounts/"+addr+"/history?type=TOTPEnrolmentStarted", e.AdminToken, nil).Body)
	require.Contains(t, hist, `"totp_secret":"[redacted]"`)
}

// Wrong codes count as failed logins: past the account's limit the login answers 429, even
// with the right code.
func TestTOTPRateLimited(t *testing.T) {
	t.Parallel()
	e, c := newTOTPEnv(t, commands.LoginLimits{PerAccount: 3, PerIP: 1000, Window: time.Hour})
	dom := e.CreateDomain(t, nil)
	addr, token := totpUser(t, e, dom, false) // any account may enrol
	secret, _ := enrol(t, e, c, addr, token)
	c.Add(30 * time.Second)
	wrong := code(t, secret, c.Now().Add(-5*time.Minute))
	for range 3 {
		e.Do(t, http.MethodPost, "/api/v1/auth/login", "", totpLogin{email: addr, password: "user-password-1", code: wrong}.body()).
			Problem(t, http.StatusUnauthorized)
	}
	p := e.Do(t, http.MethodPost, "/api/v1/auth/login", "", totpLogin{email: addr, password: "user-password-1", code: code(t, secret, c.Now())}.body()).
		Problem(t, http.StatusTooManyRequests)
	require.NotZero(t, p["retry_after"])
	// Asking for the code (no code sent) is no failure: it does not lock the account out alone.
	addr2, token2 := totpUser(t, e, dom, false)
	secret2, _ := enrol(t, e, c, addr2, token2)
	c.Add(30 * time.Second)
	for range 4 {
		e.Do(t, http.MethodPost, "/api/v1/auth/login", "", totpLogin{email: addr2, password: "user-password-1"}.body()).
			Problem(t, http.StatusUnauthorized)
	}
	r := e.Do(t, http.MethodPost, "/api/v1/auth/login", "", totpLogin{email: addr2, password: "user-password-1", code: code(t, secret2, c.Now())}.body())
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
}

// Required of a domain's admins (or globally): an admin without a second factor logs in, but the
// session may only enrol and confirm one (403 totp-enrolment-required elsewhere) until
// confirmed. Ordinary accounts are not concerned. Only a global admin may set the requirement.
func TestTOTPRequired(t *testing.T) {
	t.Parallel()
	e, c := newTOTPEnv(t, commands.LoginLimits{})
	dom := e.CreateDomain(t, nil)
	admin, adminToken := totpUser(t, e, dom, true)
	plain, _ := totpUser(t, e, dom, false)

	e.Do(t, http.MethodPatch, "/api/v1/domains/"+dom, adminToken, map[string]any{"totp_required": true}).Problem(t, http.StatusForbidden)
	r := e.Do(t, http.MethodPatch, "/api/v1/domains/"+dom, e.AdminToken, map[string]any{"totp_required": true})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, true, r.JSON(t)["totp_required"])

	r = e.Do(t, http.MethodPost, "/api/v1/auth/login", "", totpLogin{email: admin, password: "user-password-1"}.body())
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, true, r.JSON(t)["totp_enrolment_required"])
	limited := r.JSON(t)["token"].(string)
	p := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, limited, nil).Problem(t, http.StatusForbidden)
	require.Contains(t, p["type"], "totp-enrolment-required")
	e.Do(t, http.MethodGet, "/api/v1/accounts/"+plain, limited, nil).Problem(t, http.StatusForbidden)
	st := e.Do(t, http.MethodGet, "/api/v1/accounts/"+admin+"/totp", limited, nil).JSON(t)
	require.Equal(t, true, st["required"])
	// An ordinary account of the domain logs in as before.
	r = e.Do(t, http.MethodPost, "/api/v1/auth/login", "", totpLogin{email: plain, password: "user-password-1"}.body())
	require.Equal(t, http.StatusOK, r.Status)
	require.NotContains(t, r.JSON(t), "totp_enrolment_required")

	secret, _ := enrol(t, e, c, admin, limited)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, limited, nil).Status, "confirmed: the session may do all again")
	// The owner may not remove a second factor required of it.
	c.Add(30 * time.Second)
	e.Do(t, http.MethodDelete, "/api/v1/accounts/"+admin+"/totp", adminToken, map[string]string{"code": code(t, secret, c.Now())}).
		Problem(t, http.StatusConflict)

	// Globally: a global admin of another domain without TOTP is held at enrolment too.
	other := e.CreateDomain(t, nil)
	root := e.CreateAccount(t, other, map[string]any{"password": "user-password-1", "global_admin": true})
	r = e.Do(t, http.MethodPatch, "/api/v1/config", e.AdminToken, map[string]any{"totp_required": true})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, true, r.JSON(t)["totp_required"])
	r = e.Do(t, http.MethodPost, "/api/v1/auth/login", "", totpLogin{email: root, password: "user-password-1"}.body())
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, true, r.JSON(t)["totp_enrolment_required"])
	e.Do(t, http.MethodGet, "/api/v1/domains", r.JSON(t)["token"].(string), nil).Problem(t, http.StatusForbidden)
	r = e.Do(t, http.MethodPatch, "/api/v1/config", e.AdminToken, map[string]any{"totp_required": nil})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, false, r.JSON(t)["totp_required"])
}

// A global admin removes anyone's second factor; a domain admin may not remove another's; the
// owner may with a current code.
func TestTOTPDisable(t *testing.T) {
	t.Parallel()
	e, c := newTOTPEnv(t, commands.LoginLimits{})
	dom := e.CreateDomain(t, nil)
	_, domAdmin := totpUser(t, e, dom, true)
	user, userToken := totpUser(t, e, dom, false)
	secret, _ := enrol(t, e, c, user, userToken)

	e.Do(t, http.MethodDelete, "/api/v1/accounts/"+user+"/totp", domAdmin, nil).Problem(t, http.StatusForbidden)
	c.Add(30 * time.Second)
	e.Do(t, http.MethodDelete, "/api/v1/accounts/"+user+"/totp", domAdmin, map[string]string{"code": code(t, secret, c.Now())}).
		Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodDelete, "/api/v1/accounts/"+user+"/totp", userToken, nil).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodPost, "/api/v1/auth/login", "", totpLogin{email: user, password: "user-password-1"}.body()).
		Problem(t, http.StatusUnauthorized)

	r := e.Do(t, http.MethodDelete, "/api/v1/accounts/"+user+"/totp", e.AdminToken, nil)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	e.Do(t, http.MethodDelete, "/api/v1/accounts/"+user+"/totp", e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Login(t, user, "user-password-1")
	var by string
	require.NoError(t, e.Pool.QueryRow(context.Background(), `SELECT metadata->>'actor' FROM events WHERE stream_id = $1 AND event_type = 'TOTPDisabled'`,
		"account-"+user).Scan(&by))
	require.Equal(t, apitest.AdminEmail, by)

	// The owner, with a current code.
	secret, _ = enrol(t, e, c, user, userToken)
	c.Add(30 * time.Second)
	r = e.Do(t, http.MethodDelete, "/api/v1/accounts/"+user+"/totp", userToken, map[string]string{"code": code(t, secret, c.Now())})
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	e.Login(t, user, "user-password-1")
}
