package api_test

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"mailplane/api/apitest"
	"mailplane/commands"
)

const loginPath = "/api/v1/auth/login"

func tryLogin(t *testing.T, e *apitest.Env, email, password string) apitest.Response {
	t.Helper()
	return e.Do(t, http.MethodPost, loginPath, "", map[string]string{"email": email, "password": password})
}

var testLoginLimits = commands.LoginLimits{PerAccount: 3, PerIP: 10, Window: time.Minute}

func TestLoginWrongPassword(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	addr := e.CreateAccount(t, dom, map[string]any{"password": "right-password-1"})

	p := tryLogin(t, e, addr, "wrong-password-1").Problem(t, http.StatusUnauthorized)
	require.Equal(t, "/problems/invalid-credentials", p["type"])
	// An unknown account gets the very same answer.
	q := tryLogin(t, e, "nobody@"+dom, "wrong-password-1").Problem(t, http.StatusUnauthorized)
	require.Equal(t, p["type"], q["type"])
	require.Equal(t, p["detail"], q["detail"])
	require.Equal(t, []string{"email", "password"}, tryLogin(t, e, "", "").FieldErrors(t))
	// No session was opened by the failures.
	require.Equal(t, []string{"AccountCreated"}, streamEvents(t, e, addr))
	token, _ := login(t, e, addr, "right-password-1")
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountPath(addr), token, nil).Status)
}

func requireRateLimited(t *testing.T, r apitest.Response) {
	t.Helper()
	p := r.Problem(t, http.StatusTooManyRequests)
	require.Equal(t, "/problems/rate-limited", p["type"])
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After: %q", r.Header.Get("Retry-After"))
	require.Greater(t, secs, 0)
	require.LessOrEqual(t, secs, 60)
	require.Equal(t, float64(secs), p["retry_after"])
}

func TestLoginRateLimitPerAccount(t *testing.T) {
	t.Parallel()
	e := apitest.NewWith(t, apitest.Options{LoginLimits: testLoginLimits})
	dom := e.CreateDomain(t, nil)
	addr := e.CreateAccount(t, dom, map[string]any{"password": "right-password-1"})
	bystander := e.CreateAccount(t, dom, map[string]any{"password": "right-password-2"})

	for range 3 {
		tryLogin(t, e, addr, "wrong-password").Problem(t, http.StatusUnauthorized)
	}
	// Over the limit even the right password waits; the address's spelling does not matter.
	requireRateLimited(t, tryLogin(t, e, addr, "right-password-1"))
	requireRateLimited(t, tryLogin(t, e, strings.ToUpper(addr), "right-password-1"))
	requireRateLimited(t, tryLogin(t, e, addr, "wrong-password"))
	require.Equal(t, []string{"AccountCreated"}, streamEvents(t, e, addr))
	// Another account from the same address is not held back (3 failures < 10 per IP).
	login(t, e, bystander, "right-password-2")
}

func TestLoginRateLimitPerIP(t *testing.T) {
	t.Parallel()
	e := apitest.NewWith(t, apitest.Options{LoginLimits: testLoginLimits})
	dom := e.CreateDomain(t, nil)
	addr := e.CreateAccount(t, dom, map[string]any{"password": "right-password-1"})

	// Ten failures spread over accounts, none over its own limit of three.
	for i := range 10 {
		tryLogin(t, e, fmt.Sprintf("guess%d@%s", i/2, dom), "wrong-password").Problem(t, http.StatusUnauthorized)
	}
	requireRateLimited(t, tryLogin(t, e, addr, "right-password-1"))
	requireRateLimited(t, tryLogin(t, e, "not-an-address", "x"))
}

func TestLoginRefusedByStatus(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	const pw = "right-password-1"

	for _, status := range []string{"locked", "closed", "lockout", "maintenance", "pending"} {
		addr := e.CreateAccount(t, dom, map[string]any{"password": pw, "status": status})
		p := tryLogin(t, e, addr, pw).Problem(t, http.StatusForbidden)
		require.Equal(t, "/problems/login-refused", p["type"], status)
		tryLogin(t, e, addr, "wrong-password").Problem(t, http.StatusUnauthorized)
		require.Equal(t, []string{"AccountCreated"}, streamEvents(t, e, addr), status)
	}

	t.Run("LockingEndsTheSessionsUse", func(t *testing.T) {
		addr := e.CreateAccount(t, dom, map[string]any{"password": pw})
		token, _ := login(t, e, addr, pw)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, accountPath(addr), e.AdminToken, map[string]any{"status": "locked"}).Status)
		e.Do(t, http.MethodGet, accountPath(addr), token, nil).Problem(t, http.StatusUnauthorized)
		tryLogin(t, e, addr, pw).Problem(t, http.StatusForbidden)
	})

	t.Run("NoPassword", func(t *testing.T) {
		addr := e.CreateAccount(t, dom, nil)
		p := tryLogin(t, e, addr, "anything-at-all").Problem(t, http.StatusUnauthorized)
		require.Equal(t, "/problems/invalid-credentials", p["type"])
		tryLogin(t, e, addr, "").Problem(t, http.StatusBadRequest)
	})

	t.Run("DomainStatus", func(t *testing.T) {
		for _, status := range []string{"closed", "suspended", "maintenance", "locked"} {
			d := e.CreateDomain(t, nil)
			addr := e.CreateAccount(t, d, map[string]any{"password": pw})
			require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/domains/"+d, e.AdminToken, map[string]any{"status": status}).Status)
			p := tryLogin(t, e, addr, pw).Problem(t, http.StatusForbidden)
			require.Equal(t, "/problems/login-refused", p["type"], status)
		}
	})
}

func ssha(h func() hash.Hash, scheme, password string) string {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	d := h()
	d.Write([]byte(password))
	d.Write(salt)
	return scheme + base64.StdEncoding.EncodeToString(append(d.Sum(nil), salt...))
}

func argon2idPHC(password string, p commands.Argon2Params) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func TestLoginWithMigratedHashes(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	const pw = "Migrated-Secret-42"
	bcryptHash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	require.NoError(t, err)
	hashes := map[string]string{
		"bcrypt":         string(bcryptHash),
		"ssha":           ssha(sha1.New, "{SSHA}", pw),
		"ssha512":        ssha(sha512.New, "{SSHA512}", pw),
		"argon2id-other": argon2idPHC(pw, commands.Argon2Params{MemoryKiB: 2048, Iterations: 2, Parallelism: 1}),
	}
	for name, h := range hashes {
		t.Run(name, func(t *testing.T) {
			r := e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{"local_part": apitest.Unique(name), "password_hash": h})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			require.Equal(t, true, r.JSON(t)["has_password"])
			addr := r.JSON(t)["address"].(string)

			tryLogin(t, e, addr, pw+"x").Problem(t, http.StatusUnauthorized)
			require.Equal(t, []string{"AccountCreated"}, streamEvents(t, e, addr))
			login(t, e, addr, pw)
			// The first good login stores an argon2id hash with today's parameters...
			require.Equal(t, []string{"AccountCreated", "AccountPasswordChanged", "SessionStarted"}, streamEvents(t, e, addr))
			// ...which the next login accepts as it is, and which still holds the same password.
			login(t, e, addr, pw)
			require.Equal(t, []string{"AccountCreated", "AccountPasswordChanged", "SessionStarted", "SessionStarted"}, streamEvents(t, e, addr))
			tryLogin(t, e, addr, pw+"x").Problem(t, http.StatusUnauthorized)
		})
	}

	t.Run("Argon2idCurrent", func(t *testing.T) {
		addr := e.CreateAccount(t, dom, map[string]any{"password_hash": argon2idPHC(pw, apitest.TestArgon2)})
		tryLogin(t, e, addr, "not-it").Problem(t, http.StatusUnauthorized)
		login(t, e, addr, pw)
		require.Equal(t, []string{"AccountCreated", "SessionStarted"}, streamEvents(t, e, addr), "nothing to upgrade")
	})

	t.Run("UnsupportedHashRefused", func(t *testing.T) {
		for _, h := range []string{"{MD5}X03MO1qnZdYdgyfeuILPmQ==", "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/", "plain-text-password",
			"{SSHA}!!notbase64!!", "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$a2V5", "$2a$04$short", ""} {
			local := apitest.Unique("bad")
			r := e.Do(t, http.MethodPost, accountsPath(dom), e.AdminToken, map[string]any{"local_part": local, "password_hash": h})
			require.Equal(t, []string{"password_hash"}, r.FieldErrors(t), "%q", h)
			e.Do(t, http.MethodGet, accountPath(local+"@"+dom), e.AdminToken, nil).Problem(t, http.StatusNotFound)
		}
		// And when changed.
		addr := e.CreateAccount(t, dom, nil)
		require.Equal(t, []string{"password_hash"}, e.Do(t, http.MethodPatch, accountPath(addr), e.AdminToken,
			map[string]any{"password_hash": "{CRYPT}abc"}).FieldErrors(t))
		r := e.Do(t, http.MethodPatch, accountPath(addr), e.AdminToken, map[string]any{"password_hash": hashes["ssha"]})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, true, r.JSON(t)["has_password"])
		login(t, e, addr, pw)
	})

	t.Run("NoSecretInClear", func(t *testing.T) {
		// Also a clear password set through PATCH.
		addr := e.CreateAccount(t, dom, map[string]any{"password": "Clear-Create-Pw-77"})
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, accountPath(addr), e.AdminToken,
			map[string]any{"password": "Clear-Patch-Pw-88"}).Status)
		login(t, e, addr, "Clear-Patch-Pw-88")

		needles := []string{pw, "Clear-Create-Pw-77", "Clear-Patch-Pw-88"}
		for _, h := range hashes {
			needles = append(needles, h)
		}
		for _, n := range needles {
			var hits int
			require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT
				(SELECT count(*) FROM events WHERE strpos(data::text, $1) > 0 OR strpos(metadata::text, $1) > 0) +
				(SELECT count(*) FROM rm_accounts WHERE strpos(state::text, $1) > 0) +
				(SELECT count(*) FROM idempotency_keys WHERE strpos(convert_from(coalesce(response_body, ''), 'UTF8'), $1) > 0)`,
				n).Scan(&hits))
			require.Zero(t, hits, "%q found in clear", n)
		}
		// The scan can find what it looks for: the accounts are there.
		var n int
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE strpos(data::text, $1) > 0`, addr).Scan(&n))
		require.Positive(t, n)
	})
}
