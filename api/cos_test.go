package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
)

const cosPath = "/api/v1/cos"

func TestCreateCOS(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)

	t.Run("HappyPath", func(t *testing.T) {
		name := apitest.Unique("gold-")
		r := e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{
			"name": strings.ToUpper(name), "description": "Paying customers", "mail_quota_bytes": 10 << 30,
			"quota_warn_percent": 85, "features": map[string]any{"imap": true, "pop3": false, "calendar": true},
			"password_min_length": 14, "session_lifetime_seconds": 3600,
		})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		require.Equal(t, cosPath+"/"+name, r.Header.Get("Location"))
		require.Equal(t, `"1"`, r.Header.Get("ETag"))
		c := r.JSON(t)
		require.Equal(t, name, c["name"], "stored lower-case")
		require.Equal(t, "Paying customers", c["description"])
		require.Equal(t, float64(10<<30), c["mail_quota_bytes"])
		require.Equal(t, float64(85), c["quota_warn_percent"])
		require.Equal(t, map[string]any{"imap": true, "pop3": false, "calendar": true}, c["features"])
		require.Equal(t, float64(14), c["password_min_length"])
		require.Equal(t, float64(3600), c["session_lifetime_seconds"])
		require.Equal(t, float64(1), c["version"])
		require.Equal(t, float64(10<<30), c["effective"].(map[string]any)["mail_quota_bytes"])
		require.Equal(t, "cos:"+name, c["sources"].(map[string]any)["mail_quota_bytes"])

		got := e.Do(t, http.MethodGet, cosPath+"/"+strings.ToUpper(name), e.AdminToken, nil)
		require.Equal(t, http.StatusOK, got.Status, "%s", got.Body)
		require.JSONEq(t, string(r.Body), string(got.Body))
		require.Equal(t, `"1"`, got.Header.Get("ETag"))
	})

	t.Run("MinimalInheritsGlobal", func(t *testing.T) {
		r := e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": apitest.Unique("basic-")})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		c := r.JSON(t)
		require.Nil(t, c["mail_quota_bytes"])
		require.Nil(t, c["password_min_length"])
		require.Equal(t, map[string]any{}, c["features"])
		eff, src := c["effective"].(map[string]any), c["sources"].(map[string]any)
		require.Equal(t, float64(8), eff["password_min_length"])
		require.Equal(t, "global", src["password_min_length"])
		require.Equal(t, float64(86400), eff["session_lifetime_seconds"])
		require.Equal(t, float64(90), eff["quota_warn_percent"])
	})

	t.Run("EveryBadFieldListed", func(t *testing.T) {
		fields := e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{
			"name": "-bad name", "description": strings.Repeat("d", 2000), "mail_quota_bytes": -1,
			"quota_warn_percent": 101, "password_min_length": 1000, "session_lifetime_seconds": -5,
			"features": map[string]any{"Bad Key": true},
		}).FieldErrors(t)
		require.ElementsMatch(t, []string{"name", "description", "mail_quota_bytes", "quota_warn_percent",
			"password_min_length", "session_lifetime_seconds", "features.Bad Key"}, fields)

		// Mistyped members are listed together with the bad values of the others.
		fields = e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{
			"mail_quota_bytes": "ten gigs", "quota_warn_percent": 101, "features": map[string]any{"imap": "yes", "pop3": nil},
			"password_min_length": 1.5,
		}).FieldErrors(t)
		require.ElementsMatch(t, []string{"name", "mail_quota_bytes", "quota_warn_percent", "features.imap",
			"features.pop3", "password_min_length"}, fields)
		e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": "x", "features": []string{"imap"}}).
			Problem(t, http.StatusBadRequest)
	})

	t.Run("BadBodies", func(t *testing.T) {
		p := e.Do(t, http.MethodPost, cosPath, e.AdminToken, `{"name":"silver","colour":"grey"}`).Problem(t, http.StatusBadRequest)
		require.Equal(t, "/problems/unknown-field", p["type"])
		e.Do(t, http.MethodPost, cosPath, e.AdminToken, `{"name":`).Problem(t, http.StatusBadRequest)
		e.Do(t, http.MethodPost, cosPath, e.AdminToken, `{"name":"a"} {}`).Problem(t, http.StatusBadRequest)
		e.Do(t, http.MethodPost, cosPath, e.AdminToken, nil).Problem(t, http.StatusBadRequest)
		big := `{"name":"big","description":"` + strings.Repeat("a", 1<<20) + `"}`
		e.Do(t, http.MethodPost, cosPath, e.AdminToken, big).Problem(t, http.StatusRequestEntityTooLarge)
		e.Do(t, http.MethodGet, cosPath+"/silver", e.AdminToken, nil).Problem(t, http.StatusNotFound)
	})

	t.Run("DuplicateIs409", func(t *testing.T) {
		name := apitest.Unique("dup-")
		require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": name}).Status)
		p := e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": strings.ToUpper(name), "description": "again"}).
			Problem(t, http.StatusConflict)
		require.Equal(t, "/problems/already-exists", p["type"])
		require.Equal(t, 1, countEvents(t, e, "cos-"+name))
		require.Equal(t, "", e.Do(t, http.MethodGet, cosPath+"/"+name, e.AdminToken, nil).JSON(t)["description"])
	})

	t.Run("IdempotentReplay", func(t *testing.T) {
		name := apitest.Unique("idem-")
		body := map[string]any{"name": name, "features": map[string]any{"imap": true}}
		key := apitest.Unique("key-")
		first := e.Do(t, http.MethodPost, cosPath, e.AdminToken, body, "Idempotency-Key", key)
		require.Equal(t, http.StatusCreated, first.Status, "%s", first.Body)
		require.Empty(t, first.Header.Get("Idempotent-Replayed"))
		again := e.Do(t, http.MethodPost, cosPath, e.AdminToken, body, "Idempotency-Key", key)
		require.Equal(t, http.StatusCreated, again.Status, "%s", again.Body)
		require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
		require.JSONEq(t, string(first.Body), string(again.Body))
		// The first response, headers too (API.md: "a repeat returns the first response").
		require.NotEmpty(t, first.Header.Get("Location"))
		require.Equal(t, first.Header.Get("Location"), again.Header.Get("Location"))
		require.NotEmpty(t, first.Header.Get("ETag"))
		require.Equal(t, first.Header.Get("ETag"), again.Header.Get("ETag"))
		require.Equal(t, 1, countEvents(t, e, "cos-"+name), "the repeat appended nothing")
		// A record kept before the headers were (migration 00020) still replays its body.
		tag, err := e.Pool.Exec(t.Context(), `UPDATE idempotency_keys SET response_headers = NULL WHERE key = $1 AND response_headers IS NOT NULL`, key)
		require.NoError(t, err)
		require.EqualValues(t, 1, tag.RowsAffected())
		old := e.Do(t, http.MethodPost, cosPath, e.AdminToken, body, "Idempotency-Key", key)
		require.Equal(t, http.StatusCreated, old.Status, "%s", old.Body)
		require.JSONEq(t, string(first.Body), string(old.Body))

		other := e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": name + "-other"}, "Idempotency-Key", key)
		require.Equal(t, "/problems/idempotency-key-reused", other.Problem(t, http.StatusUnprocessableEntity)["type"])
		e.Do(t, http.MethodGet, cosPath+"/"+name+"-other", e.AdminToken, nil).Problem(t, http.StatusNotFound)

		// Without a key, the same body is a duplicate.
		e.Do(t, http.MethodPost, cosPath, e.AdminToken, body).Problem(t, http.StatusConflict)
	})
}

func TestCOSRoles(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	_, domainAdmin := e.User(t, dom, apitest.DomainAdmin)
	_, plain := e.User(t, dom, apitest.Plain)
	one := cosPath + "/default"

	for _, token := range []string{"", "not-a-token"} {
		e.Do(t, http.MethodGet, cosPath, token, nil).Problem(t, http.StatusUnauthorized)
		e.Do(t, http.MethodPost, cosPath, token, map[string]any{"name": "x"}).Problem(t, http.StatusUnauthorized)
		e.Do(t, http.MethodGet, one, token, nil).Problem(t, http.StatusUnauthorized)
		e.Do(t, http.MethodPatch, one, token, map[string]any{"description": "x"}).Problem(t, http.StatusUnauthorized)
		e.Do(t, http.MethodDelete, one, token, nil).Problem(t, http.StatusUnauthorized)
	}

	// Plain accounts see no COS.
	e.Do(t, http.MethodGet, cosPath, plain, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, one, plain, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPost, cosPath, plain, map[string]any{"name": "plain"}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPatch, one, plain, map[string]any{"description": "x"}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodDelete, one, plain, nil).Problem(t, http.StatusForbidden)

	// Domain admins read them, and change nothing.
	r := e.Do(t, http.MethodGet, cosPath, domainAdmin, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Len(t, r.JSON(t)["items"], 1)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, one, domainAdmin, nil).Status)
	e.Do(t, http.MethodPost, cosPath, domainAdmin, map[string]any{"name": "mine"}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPatch, one, domainAdmin, map[string]any{"description": "x"}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodDelete, one, domainAdmin, nil).Problem(t, http.StatusForbidden)

	e.Do(t, http.MethodGet, cosPath+"/mine", e.AdminToken, nil).Problem(t, http.StatusNotFound)
	c := e.Do(t, http.MethodGet, one, e.AdminToken, nil).JSON(t)
	require.Equal(t, float64(1), c["version"], "nothing changed the default COS")
}

func TestPatchCOS(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	name := apitest.Unique("silver-")
	path := cosPath + "/" + name
	r := e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": name, "mail_quota_bytes": 1 << 30,
		"features": map[string]any{"imap": true, "pop3": true}})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)

	t.Run("HappyPathWithIfMatch", func(t *testing.T) {
		r := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"description": "Standard", "quota_warn_percent": 75,
			"session_lifetime_seconds": 600}, "If-Match", `"1"`)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, `"2"`, r.Header.Get("ETag"))
		c := r.JSON(t)
		require.Equal(t, "Standard", c["description"])
		require.Equal(t, float64(75), c["quota_warn_percent"])
		require.Equal(t, float64(600), c["session_lifetime_seconds"])
		require.Equal(t, float64(1<<30), c["mail_quota_bytes"], "untouched")
		require.Equal(t, float64(2), c["version"])
	})

	t.Run("StaleIfMatchIs412", func(t *testing.T) {
		p := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"description": "late"}, "If-Match", `"1"`).
			Problem(t, http.StatusPreconditionFailed)
		require.Equal(t, "/problems/precondition-failed", p["type"])
		e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"features": map[string]any{"imap": false}}, "If-Match", `"1"`).
			Problem(t, http.StatusPreconditionFailed)
		c := e.Do(t, http.MethodGet, path, e.AdminToken, nil).JSON(t)
		require.Equal(t, "Standard", c["description"])
		require.Equal(t, true, c["features"].(map[string]any)["imap"])
	})

	t.Run("NullInheritsAgain", func(t *testing.T) {
		r := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"mail_quota_bytes": nil, "description": nil})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		c := r.JSON(t)
		require.Nil(t, c["mail_quota_bytes"])
		require.Equal(t, "", c["description"])
		require.Equal(t, float64(0), c["effective"].(map[string]any)["mail_quota_bytes"])
		require.Equal(t, "global", c["sources"].(map[string]any)["mail_quota_bytes"])
	})

	t.Run("FeaturesMerge", func(t *testing.T) {
		// A feature sent as null is removed; the ones not named stay (JSON merge patch).
		r := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"features": map[string]any{"pop3": nil, "calendar": true}})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, map[string]any{"imap": true, "calendar": true}, r.JSON(t)["features"])
		version := r.JSON(t)["version"]

		r = e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"features": map[string]any{"imap": true}})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, version, r.JSON(t)["version"], "no change, no event")

		r = e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"features": nil})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, map[string]any{}, r.JSON(t)["features"])
	})

	t.Run("EveryBadFieldListed", func(t *testing.T) {
		before := countEvents(t, e, "cos-"+name)
		fields := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{
			"name": "renamed", "description": strings.Repeat("d", 2000), "mail_quota_bytes": -1, "quota_warn_percent": "high",
			"password_min_length": 999, "session_lifetime_seconds": -1, "features": map[string]any{"Bad Key": true, "imap": 1},
		}).FieldErrors(t)
		require.ElementsMatch(t, []string{"name", "description", "mail_quota_bytes", "quota_warn_percent",
			"password_min_length", "session_lifetime_seconds", "features.Bad Key", "features.imap"}, fields)
		fields = e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"mail_quota_bytes": 5, "features": "all"}).FieldErrors(t)
		require.Equal(t, []string{"features"}, fields)
		p := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"colour": "grey"}).Problem(t, http.StatusBadRequest)
		require.Equal(t, "/problems/unknown-field", p["type"])
		require.Equal(t, before, countEvents(t, e, "cos-"+name), "nothing was recorded")

		// Repeating the name (in any case) is not a rename.
		r := e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"name": strings.ToUpper(name), "password_min_length": 10})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, float64(10), r.JSON(t)["password_min_length"])
	})

	t.Run("MissingIs404", func(t *testing.T) {
		e.Do(t, http.MethodPatch, cosPath+"/missing", e.AdminToken, map[string]any{"description": "x"}).Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodPatch, cosPath+"/missing", e.AdminToken, map[string]any{"features": map[string]any{"imap": true}}).
			Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodPatch, cosPath+"/-not-a-name-", e.AdminToken, map[string]any{"description": "x"}).Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodGet, cosPath+"/missing", e.AdminToken, nil).Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodDelete, cosPath+"/missing", e.AdminToken, nil).Problem(t, http.StatusNotFound)
	})
}

// TestPatchCOSFeaturesConcurrently: merges of different features made at the same time all
// land, none overwrites another.
func TestPatchCOSFeaturesConcurrently(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	name := apitest.Unique("busy-")
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": name}).Status)
	features := []string{"f0", "f1", "f2", "f3", "f4", "f5"}
	done := make(chan int, len(features))
	for _, f := range features {
		go func() {
			done <- e.Do(t, http.MethodPatch, cosPath+"/"+name, e.AdminToken, map[string]any{"features": map[string]any{f: true}}).Status
		}()
	}
	for range features {
		require.Equal(t, http.StatusOK, <-done)
	}
	got := e.Do(t, http.MethodGet, cosPath+"/"+name, e.AdminToken, nil).JSON(t)["features"].(map[string]any)
	require.Len(t, got, len(features), "%v", got)
}

func TestDeleteCOS(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)

	t.Run("InUseListsTheUsers", func(t *testing.T) {
		name := apitest.Unique("used-")
		require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": name}).Status)
		dom := e.CreateDomain(t, map[string]any{"default_cos": name})
		other := e.CreateDomain(t, nil)
		account := createAccountWithCOS(t, e, other, name)
		r := e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{"default_cos": name})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

		p := e.Do(t, http.MethodDelete, cosPath+"/"+name, e.AdminToken, nil).Problem(t, http.StatusConflict)
		require.Equal(t, "/problems/in-use", p["type"])
		require.Equal(t, []any{"domain:" + dom, "global:default_cos", account}, p["users"])
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, cosPath+"/"+name, e.AdminToken, nil).Status, "still there")

		// Each user let go, the last refusal names only the account.
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, configPath, e.AdminToken, map[string]any{"default_cos": nil}).Status)
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/domains/"+dom, e.AdminToken, map[string]any{"default_cos": nil}).Status)
		p = e.Do(t, http.MethodDelete, cosPath+"/"+name, e.AdminToken, nil).Problem(t, http.StatusConflict)
		require.Equal(t, []any{account}, p["users"])
	})

	t.Run("DefaultCOSIsTheGlobalDefault", func(t *testing.T) {
		p := e.Do(t, http.MethodDelete, cosPath+"/default", e.AdminToken, nil).Problem(t, http.StatusConflict)
		require.Contains(t, p["users"], "global:default_cos")
	})

	t.Run("UnusedIsDeletedAndCanBeCreatedAgain", func(t *testing.T) {
		name := apitest.Unique("spare-")
		path := cosPath + "/" + name
		r := e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": name, "description": "first",
			"features": map[string]any{"pop3": true}})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)

		e.Do(t, http.MethodDelete, path, e.AdminToken, nil, "If-Match", `"5"`).Problem(t, http.StatusPreconditionFailed)
		del := e.Do(t, http.MethodDelete, path, e.AdminToken, nil, "If-Match", `"1"`)
		require.Equal(t, http.StatusNoContent, del.Status, "%s", del.Body)
		require.Empty(t, del.Body)

		e.Do(t, http.MethodGet, path, e.AdminToken, nil).Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodDelete, path, e.AdminToken, nil).Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodPatch, path, e.AdminToken, map[string]any{"description": "x"}).Problem(t, http.StatusNotFound)
		require.Empty(t, e.Do(t, http.MethodGet, cosPath+"?q="+name, e.AdminToken, nil).JSON(t)["items"])

		// The name is free again; the new COS starts from its own settings, none of the old.
		r = e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": name, "description": "second"})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		c := r.JSON(t)
		require.Equal(t, "second", c["description"])
		require.Equal(t, map[string]any{}, c["features"])
		require.Equal(t, float64(3), c["version"], "the history continues on the same stream")
		require.Equal(t, `"3"`, r.Header.Get("ETag"))
		require.Len(t, e.Do(t, http.MethodGet, cosPath+"?q="+name, e.AdminToken, nil).JSON(t)["items"], 1)
	})
}

func TestListCOS(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	prefix := apitest.Unique("tier")
	for i, d := range []string{"alpha", "beta", "gamma", "delta", "epsilon"} {
		r := e.Do(t, http.MethodPost, cosPath, e.AdminToken, map[string]any{"name": prefix + string(rune('a'+i)), "description": d + " plan"})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	}

	var names []string
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		path := cosPath + "?limit=2&q=" + prefix
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.Do(t, http.MethodGet, path, e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		var pg struct {
			Items []struct {
				Name string `json:"name"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		r.Decode(t, &pg)
		require.LessOrEqual(t, len(pg.Items), 2)
		for _, it := range pg.Items {
			names = append(names, it.Name)
		}
		if pg.NextCursor == nil {
			break
		}
		cursor = *pg.NextCursor
	}
	require.Equal(t, []string{prefix + "a", prefix + "b", prefix + "c", prefix + "d", prefix + "e"}, names)

	// q matches the description too, case-insensitively; LIKE wildcards are literal.
	var pg struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	e.Do(t, http.MethodGet, cosPath+"?q=GAMMA", e.AdminToken, nil).Decode(t, &pg)
	require.Len(t, pg.Items, 1)
	require.Equal(t, prefix+"c", pg.Items[0].Name)
	require.Nil(t, pg.NextCursor)
	require.Empty(t, e.Do(t, http.MethodGet, cosPath+"?q=%25", e.AdminToken, nil).JSON(t)["items"])

	// The default COS and the five, in name order, on one page.
	all := e.Do(t, http.MethodGet, cosPath, e.AdminToken, nil).JSON(t)
	require.Len(t, all["items"], 6)
	require.Nil(t, all["next_cursor"])

	e.Do(t, http.MethodGet, cosPath+"?limit=501", e.AdminToken, nil).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodGet, cosPath+"?limit=0", e.AdminToken, nil).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodGet, cosPath+"?cursor=***", e.AdminToken, nil).Problem(t, http.StatusBadRequest)
}

// createAccountWithCOS creates an account assigned the COS through the command service (the
// accounts endpoints are not what is under test here) and waits for the read model.
func createAccountWithCOS(t *testing.T, e *apitest.Env, domainName, cos string) string {
	t.Helper()
	addr, err := domain.ParseAddress(apitest.Unique("user") + "@" + domainName)
	require.NoError(t, err)
	_, err = e.Commands.CreateAccount(context.Background(), commands.Request{Meta: eventstore.Metadata{Actor: "test"}},
		domain.CreateAccount{Address: addr, COS: &cos}, commands.Credentials{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := e.Reads.Account(context.Background(), addr.String())
		return err == nil
	}, time.Minute, 5*time.Millisecond)
	return addr.String()
}
