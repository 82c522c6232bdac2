package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

// login logs in and returns the token and the session id.
func login(t *testing.T, e *apitest.Env, email, password string, headers ...string) (string, string) {
	t.Helper()
	r := e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": email, "password": password}, headers...)
	require.Equal(t, http.StatusOK, r.Status, "login %s: %s", email, r.Body)
	b := r.JSON(t)
	return b["token"].(string), b["session_id"].(string)
}

func sessionIDs(t *testing.T, r apitest.Response) []string {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var ids []string
	for _, it := range r.JSON(t)["items"].([]any) {
		ids = append(ids, it.(map[string]any)["id"].(string))
	}
	return ids
}

func TestListSessions(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	_, adminToken := e.User(t, dom, apitest.DomainAdmin)
	_, otherAdminToken := e.User(t, other, apitest.DomainAdmin)
	_, plainToken := e.User(t, dom, apitest.Plain)
	addr := e.CreateAccount(t, dom, map[string]any{"password": "session-pw-123"})
	phone, phoneID := login(t, e, addr, "session-pw-123", "User-Agent", "PhoneMail/1.0")
	_, laptopID := login(t, e, addr, "session-pw-123", "User-Agent", "LaptopMail/2.0")
	path := accountPath(addr) + "/sessions"

	r := e.Do(t, http.MethodGet, path, phone, nil)
	require.Equal(t, []string{laptopID, phoneID}, sessionIDs(t, r), "newest first")
	items := r.JSON(t)["items"].([]any)
	laptop, ph := items[0].(map[string]any), items[1].(map[string]any)
	require.Equal(t, "LaptopMail/2.0", laptop["user_agent"])
	require.Equal(t, "PhoneMail/1.0", ph["user_agent"])
	require.Equal(t, "127.0.0.1", ph["ip"])
	for _, k := range []string{"created_at", "last_seen_at", "expires_at"} {
		require.NotEmpty(t, ph[k], k)
	}
	require.Equal(t, true, ph["current"])
	require.Equal(t, false, laptop["current"])
	require.NotContains(t, ph, "token")
	require.NotContains(t, string(r.Body), phone, "tokens are never shown")

	// Its domain admin and global admins see them; nobody else.
	require.Len(t, sessionIDs(t, e.Do(t, http.MethodGet, path, adminToken, nil)), 2)
	require.Len(t, sessionIDs(t, e.Do(t, http.MethodGet, path, e.AdminToken, nil)), 2)
	e.Do(t, http.MethodGet, path, plainToken, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, path, otherAdminToken, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, path, "", nil).Problem(t, http.StatusUnauthorized)
	e.Do(t, http.MethodGet, accountPath("nobody@"+dom)+"/sessions", e.AdminToken, nil).Problem(t, http.StatusNotFound)

	// A fresh account has none.
	require.Empty(t, sessionIDs(t, e.Do(t, http.MethodGet, accountPath(e.CreateAccount(t, dom, nil))+"/sessions", e.AdminToken, nil)))
}

func TestEndSession(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	_, adminToken := e.User(t, dom, apitest.DomainAdmin)
	_, otherAdminToken := e.User(t, other, apitest.DomainAdmin)
	_, plainToken := e.User(t, dom, apitest.Plain)
	addr := e.CreateAccount(t, dom, map[string]any{"password": "session-pw-123"})
	tokenA, idA := login(t, e, addr, "session-pw-123")
	tokenB, idB := login(t, e, addr, "session-pw-123")
	tokenC, idC := login(t, e, addr, "session-pw-123")
	path := accountPath(addr) + "/sessions/"

	// Others may not end it.
	e.Do(t, http.MethodDelete, path+idA, "", nil).Problem(t, http.StatusUnauthorized)
	e.Do(t, http.MethodDelete, path+idA, plainToken, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodDelete, path+idA, otherAdminToken, nil).Problem(t, http.StatusForbidden)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountPath(addr), tokenA, nil).Status)

	// Its domain admin ends one: that token is refused at its very next request, the others work.
	r := e.Do(t, http.MethodDelete, path+idA, adminToken, nil)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	p := e.Do(t, http.MethodGet, accountPath(addr), tokenA, nil).Problem(t, http.StatusUnauthorized)
	require.Equal(t, "/problems/unauthenticated", p["type"])
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountPath(addr), tokenB, nil).Status)
	require.Equal(t, []string{idC, idB}, sessionIDs(t, e.Do(t, http.MethodGet, accountPath(addr)+"/sessions", e.AdminToken, nil)))
	evs := streamEvents(t, e, addr)
	require.Equal(t, "SessionEnded", evs[len(evs)-1])

	// Ended, unknown, or another account's: 404.
	e.Do(t, http.MethodDelete, path+idA, e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodDelete, path+"no-such-session", e.AdminToken, nil).Problem(t, http.StatusNotFound)
	otherAddr := e.CreateAccount(t, dom, nil)
	e.Do(t, http.MethodDelete, accountPath(otherAddr)+"/sessions/"+idB, e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodDelete, accountPath("nobody@"+dom)+"/sessions/"+idB, e.AdminToken, nil).Problem(t, http.StatusNotFound)
	// If-Match holds here too.
	e.Do(t, http.MethodDelete, path+idB, e.AdminToken, nil, "If-Match", `"1"`).Problem(t, http.StatusPreconditionFailed)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountPath(addr), tokenB, nil).Status)

	// The account ends its own session (logs out elsewhere) with another one.
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, path+idB, tokenC, nil).Status)
	e.Do(t, http.MethodGet, accountPath(addr), tokenB, nil).Problem(t, http.StatusUnauthorized)
	// And logs itself out.
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, path+idC, tokenC, nil).Status)
	e.Do(t, http.MethodGet, accountPath(addr), tokenC, nil).Problem(t, http.StatusUnauthorized)
}

func TestDeletingAccountEndsItsSessions(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	addr := e.CreateAccount(t, dom, map[string]any{"password": "session-pw-123"})
	t1, _ := login(t, e, addr, "session-pw-123")
	t2, _ := login(t, e, addr, "session-pw-123")
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, accountPath(addr), t1, nil).Status)

	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, accountPath(addr), e.AdminToken, nil).Status)
	for _, tok := range []string{t1, t2} {
		e.Do(t, http.MethodGet, accountPath(addr), tok, nil).Problem(t, http.StatusUnauthorized)
	}
	var open int
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM sessions WHERE account = $1 AND ended_at IS NULL`, addr).Scan(&open))
	require.Zero(t, open, "the sessions are ended, not only hidden")
	e.Do(t, http.MethodGet, accountPath(addr)+"/sessions", e.AdminToken, nil).Problem(t, http.StatusNotFound)
}
