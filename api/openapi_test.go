package api_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/api/apitest"
)

var (
	muxParamRE  = regexp.MustCompile(`\{([^}:]+)(?::[^}]*)?\}`)
	httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
)

// fullServer builds the server with every optional route (/metrics needs a registry). Routing
// needs no database.
func fullServer() *api.Server {
	return api.NewServer(api.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: prometheus.NewRegistry()}, api.Config{})
}

// servedRoutes walks the router: "METHOD /path/{param}" for every route with a handler.
func servedRoutes(t *testing.T, r *mux.Router) []string {
	t.Helper()
	var out []string
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		if route.GetHandler() == nil {
			return nil // a subrouter's own route: its routes are walked next
		}
		if route.GetName() == "riverui" {
			return nil // River UI's pages and API, not mailplane's
		}
		tpl, err := route.GetPathTemplate()
		require.NoError(t, err, "every route has a path")
		methods, err := route.GetMethods()
		require.NoError(t, err, "route %s serves any method: register it with Methods(...)", tpl)
		for _, m := range methods {
			out = append(out, strings.ToUpper(m)+" "+muxParamRE.ReplaceAllString(tpl, "{$1}"))
		}
		return nil
	})
	require.NoError(t, err)
	sort.Strings(out)
	return out
}

// openAPIDoc fetches the document over HTTP from a server.
func openAPIDoc(t *testing.T, base string) map[string]any {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc), "the document is JSON")
	return doc
}

// documentedOperations lists "METHOD /path" for every operation of the document.
func documentedOperations(t *testing.T, doc map[string]any) []string {
	t.Helper()
	var out []string
	paths, ok := doc["paths"].(map[string]any)
	require.True(t, ok, "paths is an object")
	for path, item := range paths {
		for key := range item.(map[string]any) {
			if slices.Contains(httpMethods, key) {
				out = append(out, strings.ToUpper(key)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

func operations(doc map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for path, item := range doc["paths"].(map[string]any) {
		for key, op := range item.(map[string]any) {
			if slices.Contains(httpMethods, key) {
				out[strings.ToUpper(key)+" "+path] = op.(map[string]any)
			}
		}
	}
	return out
}

// TestOpenAPIDescribesEveryRoute keeps the document and the router equal: a route the document
// lacks, or an operation no route serves, fails.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	srv := fullServer()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	served := servedRoutes(t, srv.Router())
	documented := documentedOperations(t, openAPIDoc(t, hs.URL))
	require.NotEmpty(t, served)
	for _, must := range []string{"GET /healthz", "GET /readyz", "GET /metrics", "GET /api/v1/openapi.json",
		"POST /api/v1/auth/login", "GET /api/v1/config", "DELETE /api/v1/cos/{name}", "GET /api/v1/domains/{domain}"} {
		require.Contains(t, served, must, "the walk sees every kind of route")
	}

	var missing, unserved []string
	for _, r := range served {
		if !slices.Contains(documented, r) {
			missing = append(missing, r)
		}
	}
	for _, o := range documented {
		if !slices.Contains(served, o) {
			unserved = append(unserved, o)
		}
	}
	assert.Empty(t, missing, "routes the server registers but api/openapi.go does not describe")
	assert.Empty(t, unserved, "operations api/openapi.go describes but no route serves")
	require.Equal(t, served, documented)
}

func TestOpenAPIDocumentIsWellFormed(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(fullServer().Handler())
	t.Cleanup(hs.Close)
	doc := openAPIDoc(t, hs.URL)

	require.Regexp(t, `^3\.1\.\d+$`, doc["openapi"])
	info := doc["info"].(map[string]any)
	require.NotEmpty(t, info["title"])
	require.NotEmpty(t, info["version"])
	components := doc["components"].(map[string]any)
	require.Equal(t, map[string]any{"type": "http", "scheme": "bearer", "description": "Token from POST /api/v1/auth/login"},
		components["securitySchemes"].(map[string]any)["bearer"])
	require.Equal(t, []any{map[string]any{"bearer": []any{}}}, doc["security"])

	schemas := components["schemas"].(map[string]any)
	for _, name := range []string{"Problem", "FieldError", "Config", "ConfigPatch", "COS", "COSCreate", "COSPatch", "COSPage",
		"Domain", "DomainCreate", "DomainPatch", "DomainPage", "Account", "AccountCreate", "AccountPatch", "AccountPage",
		"Session", "LoginRequest", "LoginResponse"} {
		require.Contains(t, schemas, name)
	}
	problem := schemas["Problem"].(map[string]any)["properties"].(map[string]any)
	for _, m := range []string{"type", "title", "status", "detail", "errors"} {
		require.Contains(t, problem, m, "RFC 9457 members and errors")
	}
	responses := components["responses"].(map[string]any)
	for _, name := range []string{"BadRequest", "Unauthorized", "Forbidden", "NotFound", "Conflict", "PreconditionFailed",
		"PayloadTooLarge", "UnprocessableContent", "TooManyRequests"} {
		r := responses[name].(map[string]any)
		require.Equal(t, "#/components/schemas/Problem",
			r["content"].(map[string]any)["application/problem+json"].(map[string]any)["schema"].(map[string]any)["$ref"], name)
	}

	ids := map[string]string{}
	for key, op := range operations(doc) {
		path := strings.SplitN(key, " ", 2)[1]
		id, _ := op["operationId"].(string)
		require.NotEmpty(t, id, key)
		require.NotContains(t, ids, id, "operationId %s of %s is also used by %s", id, key, ids[id])
		ids[id] = key
		require.NotEmpty(t, op["summary"], key)

		resp, ok := op["responses"].(map[string]any)
		require.True(t, ok && len(resp) > 0, "%s has responses", key)
		success := 0
		for status, r := range resp {
			require.Regexp(t, `^[1-5]\d\d$`, status, key)
			if status < "400" {
				success++
			}
			r := r.(map[string]any)
			require.True(t, r["$ref"] != nil || r["description"] != nil, "%s %s has a description", key, status)
		}
		require.Equal(t, 1, success, "%s has one success response", key)

		// Path parameters are declared exactly as the template names them.
		var declared []string
		params, _ := op["parameters"].([]any)
		for _, p := range params {
			p := p.(map[string]any)
			if p["in"] == "path" {
				require.Equal(t, true, p["required"], key)
				declared = append(declared, p["name"].(string))
			}
		}
		var inTemplate []string
		for _, m := range muxParamRE.FindAllStringSubmatch(path, -1) {
			inTemplate = append(inTemplate, m[1])
		}
		require.Equal(t, inTemplate, declared, key)

		// Secured operations can say 401 and 403.
		if sec, ok := op["security"].([]any); !ok || len(sec) > 0 {
			require.Contains(t, resp, "401", key)
			require.Contains(t, resp, "403", key)
		}
		if _, ok := op["requestBody"]; ok {
			require.Contains(t, resp, "400", key)
			require.Contains(t, resp, "413", key)
		}
	}

	// Every $ref points into the document.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				parts := strings.Split(strings.TrimPrefix(r, "#/"), "/")
				var at any = doc
				for _, p := range parts {
					m, ok := at.(map[string]any)
					require.True(t, ok, "$ref %s", r)
					at, ok = m[p]
					require.True(t, ok, "$ref %s resolves", r)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

// TestOpenAPIMatchesTheServer checks the document against the real API: secured operations
// answer 401 without a token and public ones do not, and the objects the API returns have the
// members their schemas define.
func TestOpenAPIMatchesTheServer(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	doc := openAPIDoc(t, e.URL)
	served := servedRoutes(t, e.Server.Router())

	for key, op := range operations(doc) {
		if !slices.Contains(served, key) {
			continue // an operation this server was built without (/metrics needs a registry)
		}
		method, path, _ := strings.Cut(key, " ")
		path = muxParamRE.ReplaceAllString(path, "x")
		r := e.Do(t, method, path, "", nil)
		if sec, ok := op["security"].([]any); ok && len(sec) == 0 {
			require.NotEqual(t, http.StatusUnauthorized, r.Status, "%s is documented as public", key)
		} else {
			require.Equal(t, http.StatusUnauthorized, r.Status, "%s is documented as needing a token", key)
		}
	}

	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	dom := e.CreateDomain(t, map[string]any{"time_zone": "Europe/Rome"})
	objects := map[string]string{
		"Config":     "/api/v1/config",
		"COS":        "/api/v1/cos/default",
		"COSPage":    "/api/v1/cos",
		"Domain":     "/api/v1/domains/" + dom,
		"DomainPage": "/api/v1/domains",
	}
	if slices.Contains(served, "GET /api/v1/accounts/{address}") {
		objects["Account"] = "/api/v1/accounts/" + apitest.AdminEmail
		objects["SessionList"] = "/api/v1/accounts/" + apitest.AdminEmail + "/sessions"
	}
	for name, path := range objects {
		r := e.Do(t, http.MethodGet, path, e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", path, r.Body)
		requireSchemaMembers(t, schemas, name, r.JSON(t))
	}
	requireSchemaMembers(t, schemas, "Problem",
		e.Do(t, http.MethodPost, "/api/v1/cos", e.AdminToken, map[string]any{"name": "-"}).Problem(t, http.StatusBadRequest))
}

// requireSchemaMembers checks an object's top-level members against a schema: nothing the
// schema does not define, nothing it requires missing.
func requireSchemaMembers(t *testing.T, schemas map[string]any, name string, obj map[string]any) {
	t.Helper()
	s := schemas[name].(map[string]any)
	props := s["properties"].(map[string]any)
	for k := range obj {
		require.Contains(t, props, k, "%s has member %s that its schema does not define", name, k)
	}
	req, _ := s["required"].([]any)
	for _, k := range req {
		require.Contains(t, obj, k.(string), "%s lacks required member %s", name, k)
	}
}

// resolve follows a $ref into the document.
func resolve(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m := v.(map[string]any)
	ref, ok := m["$ref"].(string)
	if !ok {
		return m
	}
	var at any = doc
	for _, p := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		at = at.(map[string]any)[p]
	}
	require.NotNil(t, at, "$ref %s resolves", ref)
	return at.(map[string]any)
}

// requireHeader asserts that a response declares a header, and whether it is always sent.
func requireHeader(t *testing.T, doc, resp map[string]any, name string, required bool, msg string) {
	t.Helper()
	headers, _ := resp["headers"].(map[string]any)
	require.Contains(t, headers, name, msg)
	h := resolve(t, doc, headers[name])
	require.Equal(t, required, h["required"] == true, "%s: %s required", msg, name)
	require.NotNil(t, h["schema"], msg)
}

// TestOpenAPIDeclaresWhatTheServerSends pins what the API tests' exchanges would only show
// where a test happens to go: the headers every response carries, the challenge of a 401, the
// Retry-After of a 429 or 503, a 415 wherever a body can be refused, the media types.
func TestOpenAPIDeclaresWhatTheServerSends(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(fullServer().Handler())
	t.Cleanup(hs.Close)
	doc := openAPIDoc(t, hs.URL)

	servers, _ := doc["servers"].([]any)
	require.NotEmpty(t, servers, "servers is set")
	require.Equal(t, "/", servers[0].(map[string]any)["url"])

	for key, op := range operations(doc) {
		method := strings.SplitN(key, " ", 2)[0]
		responses := op["responses"].(map[string]any)
		for status, r := range responses {
			requireHeader(t, doc, resolve(t, doc, r), "X-Request-Id", true, key+" "+status)
		}
		require.Contains(t, responses, "500", "%s: any handler can fail", key)
		secured := true
		if sec, ok := op["security"].([]any); ok && len(sec) == 0 {
			secured = false
		}
		if secured {
			requireHeader(t, doc, resolve(t, doc, responses["401"]), "WWW-Authenticate", true, key+" 401")
			require.Contains(t, responses, "503", "%s: its wait for the read models can run out", key)
		}
		if r, ok := responses["429"]; ok {
			requireHeader(t, doc, resolve(t, doc, r), "Retry-After", true, key+" 429")
		}
		if r, ok := responses["503"]; ok {
			r := resolve(t, doc, r)
			if _, problem := r["content"].(map[string]any)["application/problem+json"]; problem {
				requireHeader(t, doc, r, "Retry-After", true, key+" 503")
			}
		}
		if slices.Contains([]string{"POST", "PUT", "PATCH", "DELETE"}, method) {
			require.Contains(t, responses, "415", "%s: a body that is not JSON is refused", key)
			r := resolve(t, doc, responses["415"])
			requireHeader(t, doc, r, "Accept", true, key+" 415")
			if method == "PATCH" {
				requireHeader(t, doc, r, "Accept-Patch", true, key+" 415")
			}
		}
		if body, ok := op["requestBody"].(map[string]any); ok {
			content := body["content"].(map[string]any)
			if _, file := content["text/csv"]; !file { // an import's body is the file itself
				require.Contains(t, content, "application/json", key)
			}
			if method == "PATCH" {
				require.Contains(t, content, "application/merge-patch+json", key)
			}
		}
	}

	ops := operations(doc)
	metrics := ops["GET /metrics"]["responses"].(map[string]any)["200"].(map[string]any)["content"].(map[string]any)
	require.Contains(t, metrics, "text/plain", "what promhttp sends without content negotiation")
	login401 := resolve(t, doc, ops["POST /api/v1/auth/login"]["responses"].(map[string]any)["401"])
	require.NotContains(t, login401["headers"], "WWW-Authenticate", "login checks credentials in the body, not by an HTTP scheme")

	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	attrs := schemas["AccountPatch"].(map[string]any)["properties"].(map[string]any)["attributes"].(map[string]any)
	require.ElementsMatch(t, []any{"object", "null"}, attrs["type"])
	require.ElementsMatch(t, []any{"string", "null"}, attrs["additionalProperties"].(map[string]any)["type"],
		"an attribute sent as null is removed")
}
