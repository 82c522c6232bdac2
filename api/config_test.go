package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

const configPath = "/api/v1/config"

func TestGetConfigShowsBuiltInDefaults(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)

	r := e.Do(t, http.MethodGet, configPath, e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, `"0"`, r.Header.Get("ETag"))
	require.JSONEq(t, `{"time_zone":"UTC","public_protocol":"https","spam_relay_host":"","default_cos":"default",
		"account_quota_bytes":0,"domain_quota_bytes":0,"warn_percent":90,"gal_polling_interval_seconds":3600,
		"session_lifetime_seconds":86400,"password_min_length":8,"totp_required":false,"version":0}`, string(r.Body))
}

func TestPatchConfig(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)

	// A configuration never changed has ETag "0", and If-Match "0" holds until it changes.
	r := e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{
		"time_zone": "Europe/Rome", "public_protocol": "http", "spam_relay_host": "Relay.Example.org:2525",
		"account_quota_bytes": 1 << 30, "domain_quota_bytes": 10 << 30, "warn_percent": 80,
		"gal_polling_interval_seconds": 600, "session_lifetime_seconds": 7200, "password_min_length": 12,
	}, "If-Match", `"0"`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, `"1"`, r.Header.Get("ETag"))
	require.JSONEq(t, `{"time_zone":"Europe/Rome","public_protocol":"http","spam_relay_host":"relay.example.org:2525",
		"default_cos":"default","account_quota_bytes":1073741824,"domain_quota_bytes":10737418240,"warn_percent":80,
		"gal_polling_interval_seconds":600,"session_lifetime_seconds":7200,"password_min_length":12,"totp_required":false,"version":1}`, string(r.Body))
	got := e.Do(t, http.MethodGet, configPath, e.AdminToken, nil)
	require.JSONEq(t, string(r.Body), string(got.Body))
	require.Equal(t, `"1"`, got.Header.Get("ETag"))

	// Stale ETags are refused and change nothing, "0" included.
	e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{"warn_percent": 50}, "If-Match", `"0"`).
		Problem(t, http.StatusPreconditionFailed)
	p := e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{"warn_percent": 50}, "If-Match", `"7"`).
		Problem(t, http.StatusPreconditionFailed)
	require.Equal(t, "/problems/precondition-failed", p["type"])
	e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{"warn_percent": 50}, "If-Match", "nonsense").
		Problem(t, http.StatusBadRequest)
	require.Equal(t, float64(80), e.Do(t, http.MethodGet, configPath, e.AdminToken, nil).JSON(t)["warn_percent"])

	// null resets a setting to its built-in default; the current ETag is accepted.
	r = e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{"time_zone": nil, "warn_percent": nil,
		"spam_relay_host": nil}, "If-Match", `"1"`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	c := r.JSON(t)
	require.Equal(t, "UTC", c["time_zone"])
	require.Equal(t, float64(90), c["warn_percent"])
	require.Equal(t, "", c["spam_relay_host"])
	require.Equal(t, "http", c["public_protocol"], "untouched settings stay")
	require.Equal(t, float64(2), c["version"])

	// A PATCH that changes nothing appends nothing.
	r = e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{"public_protocol": "http", "time_zone": "UTC"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, float64(2), r.JSON(t)["version"])
	var n int
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE stream_id = 'config-global'`).Scan(&n))
	require.Equal(t, 2, n)
}

// A PATCH that changes a configuration never changed answers its ETag "0", as GET does, so
// that the client can go on with If-Match.
func TestPatchConfigChangingNothingAnswersETagZero(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	for _, body := range []string{`{}`, `{"time_zone":null}`, `{"warn_percent":90}`} {
		r := e.Do(t, http.MethodPatch, configPath, e.AdminToken, body, "If-Match", `"0"`)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, `"0"`, r.Header.Get("ETag"), "PATCH %s", body)
		require.Equal(t, float64(0), r.JSON(t)["version"])
	}
}

func TestPatchConfigValidation(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)

	t.Run("EveryBadValueListed", func(t *testing.T) {
		fields := e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{
			"time_zone": "Mars/Olympus", "public_protocol": "gopher", "spam_relay_host": "bad host!",
			"default_cos": "no-such-cos", "account_quota_bytes": -1, "domain_quota_bytes": -5, "warn_percent": 101,
			"gal_polling_interval_seconds": 5, "session_lifetime_seconds": 10, "password_min_length": 1000,
		}).FieldErrors(t)
		require.ElementsMatch(t, []string{"time_zone", "public_protocol", "spam_relay_host", "default_cos",
			"account_quota_bytes", "domain_quota_bytes", "warn_percent", "gal_polling_interval_seconds",
			"session_lifetime_seconds", "password_min_length"}, fields)
	})

	t.Run("TypeErrorsAndValueErrorsTogether", func(t *testing.T) {
		fields := e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{
			"warn_percent": "high", "account_quota_bytes": "lots", "time_zone": "Mars/Olympus", "default_cos": "nope",
		}).FieldErrors(t)
		require.ElementsMatch(t, []string{"warn_percent", "account_quota_bytes", "time_zone", "default_cos"}, fields)
	})

	t.Run("UnknownMembersAndBadBodies", func(t *testing.T) {
		p := e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{"time_zone": "UTC", "colour": "blue"}).
			Problem(t, http.StatusBadRequest)
		require.Equal(t, "/problems/unknown-field", p["type"])
		e.Do(t, http.MethodPatch, configPath, e.AdminToken, `{"time_zone":`).Problem(t, http.StatusBadRequest)
		e.Do(t, http.MethodPatch, configPath, e.AdminToken, `[1,2]`).Problem(t, http.StatusBadRequest)
		e.Do(t, http.MethodPatch, configPath, e.AdminToken, "").Problem(t, http.StatusBadRequest)
		big := `{"time_zone":"` + strings.Repeat("a", 1<<20) + `"}`
		e.Do(t, http.MethodPatch, configPath, e.AdminToken, big).Problem(t, http.StatusRequestEntityTooLarge)
	})

	t.Run("DefaultCOSMustExist", func(t *testing.T) {
		r := e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{"default_cos": "gold"})
		require.Equal(t, []string{"default_cos"}, r.FieldErrors(t))

		require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/cos", e.AdminToken, map[string]any{"name": "gold"}).Status)
		r = e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{"default_cos": "Gold"})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, "gold", r.JSON(t)["default_cos"])

		// The global default is in use: it cannot be deleted.
		p := e.Do(t, http.MethodDelete, "/api/v1/cos/gold", e.AdminToken, nil).Problem(t, http.StatusConflict)
		require.Equal(t, []any{"global:default_cos"}, p["users"])

		// null goes back to the built-in default COS, which then frees gold.
		r = e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{"default_cos": nil})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, "default", r.JSON(t)["default_cos"])
		require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, "/api/v1/cos/gold", e.AdminToken, nil).Status)
	})

	// Only the two accepted changes (gold, then back to default) were recorded.
	require.Equal(t, 2, countEvents(t, e, "config-global"))
	require.Equal(t, float64(2), e.Do(t, http.MethodGet, configPath, e.AdminToken, nil).JSON(t)["version"])
}

func TestConfigRoles(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	_, domainAdmin := e.User(t, dom, apitest.DomainAdmin)
	_, plain := e.User(t, dom, apitest.Plain)
	patch := map[string]any{"time_zone": "Europe/Paris"}

	for _, token := range []string{"", "not-a-token"} {
		e.Do(t, http.MethodGet, configPath, token, nil).Problem(t, http.StatusUnauthorized)
		e.Do(t, http.MethodPatch, configPath, token, patch).Problem(t, http.StatusUnauthorized)
	}
	e.Do(t, http.MethodGet, configPath, plain, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPatch, configPath, plain, patch).Problem(t, http.StatusForbidden)

	// Domain admins read the defaults their domains inherit, and cannot change them.
	r := e.Do(t, http.MethodGet, configPath, domainAdmin, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "UTC", r.JSON(t)["time_zone"])
	p := e.Do(t, http.MethodPatch, configPath, domainAdmin, patch).Problem(t, http.StatusForbidden)
	require.Equal(t, "/problems/forbidden", p["type"])
	require.Equal(t, "UTC", e.Do(t, http.MethodGet, configPath, e.AdminToken, nil).JSON(t)["time_zone"])

	// The configuration is a singleton: nothing lives below it.
	e.Do(t, http.MethodGet, configPath+"/time_zone", e.AdminToken, nil).Problem(t, http.StatusNotFound)
}

// TestGlobalConfigReachesDomains: domains that do not override a setting show the global
// value with source "global" as soon as it changes; a domain that overrides keeps its own.
func TestGlobalConfigReachesDomains(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	inherits := e.CreateDomain(t, nil)
	overrides := e.CreateDomain(t, map[string]any{"time_zone": "Europe/Berlin",
		"limits": map[string]any{"account_quota_bytes": 5 << 30}})

	r := e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{
		"time_zone": "America/New_York", "account_quota_bytes": 1 << 30, "public_protocol": "http"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	eff, src := effective(t, e, inherits)
	require.Equal(t, "America/New_York", eff["time_zone"])
	require.Equal(t, "global", src["time_zone"])
	require.Equal(t, float64(1<<30), eff["account_quota_bytes"])
	require.Equal(t, "global", src["account_quota_bytes"])
	require.Equal(t, "http", eff["public_protocol"])

	eff, src = effective(t, e, overrides)
	require.Equal(t, "Europe/Berlin", eff["time_zone"])
	require.Equal(t, "domain", src["time_zone"])
	require.Equal(t, float64(5<<30), eff["account_quota_bytes"])
	require.Equal(t, "domain", src["account_quota_bytes"])
	require.Equal(t, "http", eff["public_protocol"], "settings the domain does not override still follow")
	require.Equal(t, "global", src["public_protocol"])

	// A COS without its own quota shows the global one its accounts get.
	c := e.Do(t, http.MethodGet, "/api/v1/cos/default", e.AdminToken, nil).JSON(t)
	require.Nil(t, c["mail_quota_bytes"])
	require.Equal(t, float64(1<<30), c["effective"].(map[string]any)["mail_quota_bytes"])
	require.Equal(t, "global", c["sources"].(map[string]any)["mail_quota_bytes"])

	// Resetting the global value reaches the inheriting domain again.
	r = e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{"time_zone": nil, "account_quota_bytes": nil})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	eff, src = effective(t, e, inherits)
	require.Equal(t, "UTC", eff["time_zone"])
	require.Equal(t, float64(0), eff["account_quota_bytes"])
	require.Equal(t, "global", src["account_quota_bytes"])
}

func effective(t *testing.T, e *apitest.Env, domainName string) (map[string]any, map[string]any) {
	t.Helper()
	r := e.Do(t, http.MethodGet, "/api/v1/domains/"+domainName, e.AdminToken, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	d := r.JSON(t)
	return d["effective"].(map[string]any), d["sources"].(map[string]any)
}

func countEvents(t *testing.T, e *apitest.Env, stream string) int {
	t.Helper()
	var n int
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events WHERE stream_id = $1`, stream).Scan(&n))
	return n
}
