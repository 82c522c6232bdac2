package apitest

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api"
)

// servedContract is the contract of the real document. Building it needs no database.
func servedContract(t *testing.T) *Contract {
	t.Helper()
	srv := api.NewServer(api.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, api.Config{})
	c, err := ServedContract(t.Context(), srv.Handler())
	require.NoError(t, err)
	return c
}

// exchange builds an exchange; headers are name, value pairs, set on the response unless
// prefixed "req:".
func exchange(method, path string, reqBody string, status int, body string, headers ...string) Exchange {
	req := httptest.NewRequest(method, path, nil)
	h := http.Header{}
	for i := 0; i+1 < len(headers); i += 2 {
		if name, ok := strings.CutPrefix(headers[i], "req:"); ok {
			req.Header.Set(name, headers[i+1])
			continue
		}
		h.Set(headers[i], headers[i+1])
	}
	return Exchange{Request: req, RequestBody: []byte(reqBody), Status: status, Header: h, Body: []byte(body)}
}

const problemBody = `{"type":"/problems/x","title":"T","status":%d}`

// domainPage is a page of one domain with public_protocol set to protocol (JSON).
func domainPage(protocol string) string {
	return `{"next_cursor":null,"items":[{"name":"x.example","unicode_name":"x.example","description":"",
		"time_zone":null,"public_protocol":` + protocol + `,"spam_relay_host":null,"default_cos":null,"status":"active","removing":false,"totp_required":false,
		"auth":{"mechanism":"internal","has_bind_password":false},"limits":{},"effective":{"cos":null},"sources":{},
		"counts":{"accounts":0,"lists":0,"resources":0,"aliases":0},"version":1,
		"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"}]}`
}

// Each wrong exchange is refused for its own reason, and the right ones beside them pass:
// the checks can fail, and fail for what they are meant to catch.
func TestContractCatchesWhatTheDocumentDoesNotSay(t *testing.T) {
	t.Parallel()
	c := servedContract(t)
	const ct, js, pj, rid = "Content-Type", "application/json", "application/problem+json", "X-Request-Id"
	bearer := []string{"req:Authorization", "Bearer t0ken"}

	for _, x := range []struct {
		name string
		x    Exchange
		want string // "" for an exchange that matches
	}{
		{"HealthyIsFine", exchange("GET", "/healthz", "", 200, `{"status":"ok"}`, ct, js, rid, "a1"), ""},
		{"UndeclaredStatus", exchange("GET", "/healthz", "", 201, `{"status":"ok"}`, ct, js, rid, "a1"), "status is not supported"},
		{"WrongMediaType", exchange("GET", "/healthz", "", 200, `{"status":"ok"}`, ct, "text/html", rid, "a1"), "Content-Type"},
		{"WrongMemberType", exchange("GET", "/healthz", "", 200, `{"status":1}`, ct, js, rid, "a1"), "doesn't match schema"},
		{"UndescribedMember", exchange("GET", "/healthz", "", 200, `{"status":"ok","uptime":3}`, ct, js, rid, "a1"), "uptime"},
		{"MissingRequiredHeader", exchange("GET", "/healthz", "", 200, `{"status":"ok"}`, ct, js), `"X-Request-Id" missing`},
		{"MetricsAsText", exchange("GET", "/metrics", "", 200, "up 1\n", ct, "text/plain; version=0.0.4; charset=utf-8", rid, "a1"), ""},

		// JSON Schema 2020-12 as OpenAPI 3.1 has it, inside a $ref: type arrays, enum with null.
		{"NullInsideARef", exchange("GET", "/api/v1/domains", "", 200, domainPage("null"), append(bearer, ct, js, rid, "a1")...), ""},
		{"EnumInsideARef", exchange("GET", "/api/v1/domains", "", 200, domainPage(`"https"`), append(bearer, ct, js, rid, "a1")...), ""},
		{"NotInTheEnumInsideARef", exchange("GET", "/api/v1/domains", "", 200, domainPage(`"gopher"`), append(bearer, ct, js, rid, "a1")...), "public_protocol"},
		{"NotNullableInsideARef", exchange("GET", "/api/v1/domains", "", 200, strings.Replace(domainPage("null"), `"status":"active"`, `"status":null`, 1),
			append(bearer, ct, js, rid, "a1")...), "status"},

		{"DeleteAnswersNoContent", exchange("DELETE", "/api/v1/cos/gold", "", 204, "", append(bearer, rid, "a1")...), ""},
		{"BodyWhereNoneIsDeclared", exchange("DELETE", "/api/v1/cos/gold", "", 204, `{}`, append(bearer, rid, "a1")...), "declared without content"},
		{"HeaderNotDeclaredThere", exchange("DELETE", "/api/v1/cos/gold", "", 204, "", append(bearer, rid, "a1", "ETag", `"3"`)...), "header Etag"},
		{"SecuredButNoToken", exchange("DELETE", "/api/v1/cos/gold", "", 204, "", rid, "a1"), "bearer token"},
		{"AcceptedWhatTheDocumentRefuses", exchange("POST", "/api/v1/domains/x.example/close", "", 200, `{}`,
			append(bearer, "req:Idempotency-Key", strings.Repeat("k", 300), ct, js, rid, "a1")...), "accepted a request the document refuses"},

		{"RateLimitedSaysWhen", exchange("POST", "/api/v1/auth/login", "", 429, fmt.Sprintf(problemBody, 429), ct, pj, rid, "a1", "Retry-After", "3"), ""},
		{"RateLimitedWithoutRetryAfter", exchange("POST", "/api/v1/auth/login", "", 429, fmt.Sprintf(problemBody, 429), ct, pj, rid, "a1"), `"Retry-After" missing`},
		{"RetryAfterNotSeconds", exchange("POST", "/api/v1/auth/login", "", 429, fmt.Sprintf(problemBody, 429), ct, pj, rid, "a1", "Retry-After", "soon"), "Retry-After"},
		{"ChallengeOn401", exchange("GET", "/api/v1/config", "", 401, fmt.Sprintf(problemBody, 401), ct, pj, rid, "a1",
			"WWW-Authenticate", `Bearer realm="mailplane"`), ""},
		{"NoChallengeOn401", exchange("GET", "/api/v1/config", "", 401, fmt.Sprintf(problemBody, 401), ct, pj, rid, "a1"), `"WWW-Authenticate" missing`},
		{"ProblemAsJSON", exchange("GET", "/api/v1/config", "", 401, fmt.Sprintf(problemBody, 401), ct, js, rid, "a1",
			"WWW-Authenticate", `Bearer realm="mailplane"`), "Content-Type"},

		{"UnknownPathIsAProblem", exchange("GET", "/api/v1/nothing", "", 404, fmt.Sprintf(problemBody, 404), ct, pj), ""},
		{"UnknownPathAnswered", exchange("GET", "/api/v1/nothing", "", 200, `{}`, ct, js), "no operation of the document"},
		{"UnknownPathNotAProblem", exchange("GET", "/api/v1/nothing", "", 404, `{"error":"gone"}`, ct, pj), "not a Problem"},
		{"WrongMethodWithoutAllow", exchange("PUT", "/api/v1/config", "", 405, fmt.Sprintf(problemBody, 405), ct, pj), "Allow"},
	} {
		t.Run(x.name, func(t *testing.T) {
			err := c.Check(t.Context(), x.x)
			if x.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), x.want)
		})
	}
}

// recordingTB is a test that records its failures instead of failing.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recordingTB) failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errors...)
}

// The hook between the server and the tests fails the test that sent a wrong exchange through
// Do, the test that made the Env for one sent otherwise, and nobody for a right one.
func TestCheckedServerFailsTheTestThatSentTheRequest(t *testing.T) {
	t.Parallel()
	var sawCaller sync.Map
	wrong := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawCaller.Store(r.Header.Get(callerHeader), true)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "r1")
		_, _ = w.Write([]byte(`{"status":5}` + "\n"))
	})
	right := api.NewServer(api.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, api.Config{}).Handler()
	serve := func(h http.Handler) (*Env, *recordingTB) {
		owner := &recordingTB{TB: t}
		e := &Env{contract: servedContract(t)}
		hs := httptest.NewServer(e.checked(owner, h))
		t.Cleanup(hs.Close)
		e.URL = hs.URL
		return e, owner
	}

	e, owner := serve(wrong)
	caller := &recordingTB{TB: t}
	r := e.Do(caller, http.MethodGet, "/healthz", "", nil)
	require.Equal(t, http.StatusOK, r.Status, "the client still gets the answer")
	require.JSONEq(t, `{"status":5}`, string(r.Body))
	require.Len(t, caller.failures(), 1, "the test that sent it fails")
	require.Contains(t, caller.failures()[0], "GET /healthz answered 200, which the OpenAPI document does not describe")
	require.Empty(t, owner.failures(), "not the test that made the Env")
	sawCaller.Range(func(k, _ any) bool {
		require.Empty(t, k, "the server never sees the caller header")
		return true
	})

	resp, err := http.Get(e.URL + "/healthz")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Len(t, owner.failures(), 1, "a request sent without Do fails the test that made the Env")

	e, owner = serve(right)
	caller = &recordingTB{TB: t}
	require.Equal(t, http.StatusOK, e.Do(caller, http.MethodGet, "/healthz", "", nil).Status)
	require.Equal(t, http.StatusNotFound, e.Do(caller, http.MethodGet, "/api/v1/nothing", "", nil).Status)
	require.Empty(t, caller.failures(), "the real server's answers match")
	require.Empty(t, owner.failures())
}
