package api_test

import (
	"context"

	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/eventstore/keyring"
)

func eventCount(t *testing.T, e *apitest.Env) int {
	t.Helper()
	var n int
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events`).Scan(&n))
	return n
}

// While a removal runs (here: queued, no worker takes it), nothing can be created or changed in
// the domain, and every refusal writes nothing.
func TestDeleteDomainRefusesWhileRemoving(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	acct := e.CreateAccount(t, dom, nil)
	outside := e.CreateAccount(t, other, nil)
	_, domAdmin := e.User(t, dom, apitest.DomainAdmin)

	unchanged := eventCount(t, e)
	e.Do(t, http.MethodDelete, "/api/v1/domains/none.example", e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodDelete, "/api/v1/domains/"+dom, domAdmin, nil).Problem(t, http.StatusForbidden)
	p := e.Do(t, http.MethodDelete, "/api/v1/domains/mailplane.test", e.AdminToken, nil).Problem(t, http.StatusConflict)
	require.Equal(t, "/problems/own-domain", p["type"])
	require.Equal(t, unchanged, eventCount(t, e), "no refusal wrote anything")

	r := e.Do(t, http.MethodDelete, "/api/v1/domains/"+dom, e.AdminToken, nil)
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
	job := r.JSON(t)["job"].(map[string]any)
	require.Equal(t, "remove_domain", job["kind"])
	require.Equal(t, "queued", job["state"])
	id := strconv.FormatInt(int64(job["id"].(float64)), 10)
	require.Equal(t, "/api/v1/jobs/"+id, r.Header.Get("Location"))

	// The domain shows it; asking again answers with the same job and records nothing.
	require.Eventually(t, func() bool {
		return e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil).JSON(t)["removing"] == true
	}, time.Minute, 10*time.Millisecond)
	before := eventCount(t, e)
	again := e.Do(t, http.MethodDelete, "/api/v1/domains/"+dom, e.AdminToken, nil)
	require.Equal(t, http.StatusAccepted, again.Status, "%s", again.Body)
	require.Equal(t, job["id"], again.JSON(t)["job"].(map[string]any)["id"])

	refused := []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/api/v1/domains/" + dom + "/accounts", map[string]any{"local_part": "new"}},
		{http.MethodPost, "/api/v1/domains/" + dom + "/lists", map[string]any{"address": "list@" + dom}},
		{http.MethodPost, "/api/v1/domains/" + dom + "/resources", map[string]any{"address": "room@" + dom, "type": "location"}},
		{http.MethodPost, "/api/v1/domains/" + dom + "/virtual-hosts", map[string]any{"host": "mail." + dom}},
		{http.MethodPost, "/api/v1/accounts/" + outside + "/aliases", map[string]any{"alias": "into@" + dom}},
		{http.MethodPost, "/api/v1/accounts/" + acct + "/aliases", map[string]any{"alias": "more@" + other}},
		{http.MethodPatch, "/api/v1/accounts/" + acct, map[string]any{"display_name": "Changed"}},
		{http.MethodPatch, "/api/v1/domains/" + dom, map[string]any{"description": "changed"}},
		{http.MethodPatch, "/api/v1/domains/" + dom, map[string]any{"status": "active"}},
		{http.MethodPost, "/api/v1/domains/" + dom + "/close", nil},
		{http.MethodDelete, "/api/v1/accounts/" + acct, nil},
	}
	for _, c := range refused {
		p := e.Do(t, c.method, c.path, e.AdminToken, c.body).Problem(t, http.StatusConflict)
		require.Equal(t, "/problems/domain-unavailable", p["type"], "%s %s: %v", c.method, c.path, p)
	}
	require.Equal(t, before, eventCount(t, e), "no refusal wrote anything")

	// The claim guard stops what the domain's state cannot: a claim in the domain made by a
	// command that read the domain before the removal began.
	_, err := e.Pool.Exec(t.Context(), `INSERT INTO address_claims (address, kind, owner, domain)
		SELECT 'late@' || $1, 'alias', 'account-x@y', $1
		WHERE NOT EXISTS (SELECT 1 FROM domain_removals WHERE domain = $1 AND finished_at IS NULL)`, dom)
	require.NoError(t, err)
	var late int
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM address_claims WHERE address = 'late@' || $1`, dom).Scan(&late))
	require.Zero(t, late)

	// The job is there for whoever asked, with no progress yet.
	j := e.Do(t, http.MethodGet, "/api/v1/jobs/"+id, e.AdminToken, nil)
	require.Equal(t, http.StatusOK, j.Status, "%s", j.Body)
	require.Equal(t, "remove_domain", j.JSON(t)["kind"])
}

// pagedPreview follows a deletion preview's cursors and gathers every kind.
func pagedPreview(t *testing.T, e *apitest.Env, dom string, limit int) (map[string][]any, map[string]any) {
	t.Helper()
	all := map[string][]any{}
	var first map[string]any
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100)
		path := "/api/v1/domains/" + dom + "/deletion-preview?limit=" + strconv.Itoa(limit)
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := e.Do(t, http.MethodGet, path, e.AdminToken, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		page := r.JSON(t)
		if first == nil {
			first = page
		}
		for _, k := range []string{"accounts", "lists", "resources", "aliases", "virtual_hosts", "certificates"} {
			items := page[k].([]any)
			require.LessOrEqual(t, len(items), limit)
			all[k] = append(all[k], items...)
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			return all, first
		}
		cursor = next
	}
}

func TestRemoveDomain(t *testing.T) {
	t.Parallel()
	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{}})
	ctx := context.Background()
	dom := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	alice := e.CreateAccount(t, dom, map[string]any{"local_part": "alice", "password": "alice-password-1"})
	bob := e.CreateAccount(t, dom, map[string]any{"local_part": "bob"})
	outside := e.CreateAccount(t, other, map[string]any{"local_part": "carol"})
	post := func(path string, body any) {
		t.Helper()
		r := e.Do(t, http.MethodPost, path, e.AdminToken, body)
		require.Contains(t, []int{http.StatusOK, http.StatusCreated}, r.Status, "%s %s", path, r.Body)
	}
	post("/api/v1/accounts/"+alice+"/aliases", map[string]any{"alias": "al@" + dom})
	post("/api/v1/accounts/"+alice+"/aliases", map[string]any{"alias": "alice-elsewhere@" + other})
	post("/api/v1/accounts/"+outside+"/aliases", map[string]any{"alias": "carol-here@" + dom})
	post(listsPath(dom), map[string]any{"address": "team@" + dom, "members": []string{alice, bob, outside}})
	post("/api/v1/lists/team@"+dom+"/aliases", map[string]any{"aliases": []string{"team-elsewhere@" + other}})
	post(listsPath(other), map[string]any{"address": "friends@" + other, "members": []string{alice, outside}})
	post(resourcesPath(dom), map[string]any{"address": "room@" + dom, "type": "location"})
	host := "webmail." + dom
	addHost(t, e, e.AdminToken, dom, host)
	ca := newTestCA(t)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPut, certPath(dom, host), e.AdminToken, ca.files(t, host)).Status)
	addHost(t, e, e.AdminToken, dom, "portal."+dom)
	// The GALSync account, with an entry a resync copied from an external directory.
	g := e.Do(t, http.MethodPut, galPath(dom), e.AdminToken, map[string]any{"mode": "both",
		"external": map[string]any{"ldap_url": "ldap://127.0.0.1:1/", "search_base": "dc=x"}})
	require.Equal(t, http.StatusOK, g.Status, "%s", g.Body)
	_, err := e.Pool.Exec(ctx, `INSERT INTO gal_entries (domain, source, address, display_name, kind)
		VALUES ($1, 'external', 'someone@partner.example', 'Someone', 'external')`, dom)
	require.NoError(t, err)

	// Everything the removal takes, paged one of each kind at a time.
	all, first := pagedPreview(t, e, dom, 1)
	require.Equal(t, map[string]any{"accounts": float64(2), "lists": float64(1), "resources": float64(1), "aliases": float64(4),
		"virtual_hosts": float64(2), "certificates": float64(1)}, first["counts"])
	require.Equal(t, "galsync@"+dom, first["gal_account"])
	require.Equal(t, false, first["removing"])
	require.Equal(t, []any{alice, bob}, all["accounts"])
	require.Equal(t, []any{"team@" + dom}, all["lists"])
	require.Equal(t, []any{"room@" + dom}, all["resources"])
	require.ElementsMatch(t, []any{"al@" + dom, "alice-elsewhere@" + other, "carol-here@" + dom, "team-elsewhere@" + other}, all["aliases"])
	require.Equal(t, []any{"portal." + dom, host}, all["virtual_hosts"])
	require.Len(t, all["certificates"], 1)
	require.Equal(t, host, all["certificates"][0].(map[string]any)["host"])
	e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/deletion-preview?cursor=bm9wZQ", e.AdminToken, nil).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/deletion-preview?limit=501", e.AdminToken, nil).Problem(t, http.StatusBadRequest)

	// Sealed secrets of the domain: alice's password hash and the certificate's key.
	var password, privateKey string
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT data->>'password_secret' FROM events
		WHERE stream_id = $1 AND event_type = 'AccountCreated'`, "account-"+alice).Scan(&password))
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT data->>'private_key_secret' FROM events
		WHERE domain = $1 AND event_type = 'CertificateInstalled'`, dom).Scan(&privateKey))
	for _, s := range []string{password, privateKey} {
		_, err := e.Keyring.Open(ctx, s)
		require.NoError(t, err)
	}
	aliceToken := e.Login(t, alice, "alice-password-1")

	r := e.Do(t, http.MethodDelete, "/api/v1/domains/"+dom, e.AdminToken, nil)
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
	jobPath := r.Header.Get("Location")
	var job map[string]any
	require.Eventually(t, func() bool {
		job = e.Do(t, http.MethodGet, jobPath, e.AdminToken, nil).JSON(t)
		return job["state"] == "succeeded" || job["state"] == "failed"
	}, 60*time.Second, 50*time.Millisecond)
	require.Equal(t, "succeeded", job["state"], "%v", job)
	// Accounts 2, list, resource, carol (her alias here), the GAL account, virtual hosts 2, the
	// domain.
	require.Equal(t, map[string]any{"done": float64(9), "total": float64(9)}, job["progress"])

	// Gone from the API and the read models, once projected.
	require.Eventually(t, func() bool {
		return e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil).Status == http.StatusNotFound
	}, time.Minute, 10*time.Millisecond)
	e.Do(t, http.MethodGet, "/api/v1/accounts/"+alice, e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodGet, "/api/v1/lists/team@"+dom, e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodGet, "/api/v1/accounts/"+alice, aliceToken, nil).Problem(t, http.StatusUnauthorized)
	c := e.Do(t, http.MethodGet, "/api/v1/accounts/"+outside, e.AdminToken, nil).JSON(t)
	require.Empty(t, c["aliases"], "carol's alias in the removed domain went with it")
	requireNothingLeft(t, e, dom)
	friends := e.Do(t, http.MethodGet, "/api/v1/lists/friends@"+other+"/members", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, friends.Status, "the rest of the platform serves: %s", friends.Body)

	// Secrets shredded; the history still reads, every event of it.
	for _, s := range []string{password, privateKey} {
		_, err := e.Keyring.Open(ctx, s)
		require.ErrorIs(t, err, keyring.ErrShredded)
	}
	h := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history?type=DomainRemovalStarted,AccountDeleted,DomainRemoved&limit=500", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, h.Status, "%s", h.Body)
	var types []string
	for _, it := range h.JSON(t)["items"].([]any) {
		types = append(types, it.(map[string]any)["type"].(string))
	}
	require.Equal(t, []string{"DomainRemovalStarted", "AccountDeleted", "AccountDeleted", "DomainRemoved"}, types)
	old := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history?type=AccountCreated", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, old.Status, "%s", old.Body)
	require.Contains(t, string(old.Body), `"[redacted]"`)
	var verify int
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM data_keys WHERE scope = $1 AND destroyed_at IS NOT NULL AND wrapped_key IS NULL`, dom).Scan(&verify))
	require.Equal(t, 1, verify)
	rep, err := e.Store.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), "every chain still verifies: %+v", rep.Broken)

	// The name again: empty, and its old addresses free (their streams go on).
	post("/api/v1/domains", map[string]any{"name": dom})
	d := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom, e.AdminToken, nil).JSON(t)
	require.Equal(t, map[string]any{"accounts": float64(0), "lists": float64(0), "resources": float64(0), "aliases": float64(0)}, d["counts"])
	require.Equal(t, false, d["removing"])
	again := e.CreateAccount(t, dom, map[string]any{"local_part": "alice", "password": "alice-password-2"})
	require.Equal(t, alice, again)
	got := e.Do(t, http.MethodGet, "/api/v1/accounts/"+alice, e.AdminToken, nil)
	require.Equal(t, http.StatusOK, got.Status, "%s", got.Body)
	require.Empty(t, got.JSON(t)["aliases"], "the new alice starts without the old one's aliases")
	e.Login(t, alice, "alice-password-2")
	pv := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/deletion-preview", e.AdminToken, nil).JSON(t)
	require.Equal(t, []any{alice}, pv["accounts"])
	require.Empty(t, pv["virtual_hosts"])
}

// requireNothingLeft checks that no read-model row, claim or alias of the domain remains.
func requireNothingLeft(t *testing.T, e *apitest.Env, dom string) {
	t.Helper()
	ctx := context.Background()
	// The read models follow the events: wait for the projection to pass the domain's last one.
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, e.Pool.QueryRow(ctx, `SELECT count(*) FROM rm_domains WHERE name = $1`, dom).Scan(&n))
		return n == 0
	}, 60*time.Second, 20*time.Millisecond)
	for _, q := range []string{
		`SELECT count(*) FROM rm_accounts WHERE domain = $1`,
		`SELECT count(*) FROM rm_lists WHERE domain = $1`,
		`SELECT count(*) FROM rm_list_members WHERE split_part(list, '@', 2) = $1`,
		`SELECT count(*) FROM rm_resources WHERE domain = $1`,
		`SELECT count(*) FROM rm_virtual_hosts WHERE domain = $1`,
		`SELECT count(*) FROM rm_aliases WHERE domain = $1 OR split_part(target, '@', 2) = $1`,
		`SELECT count(*) FROM address_claims WHERE domain = $1 OR split_part(owner, '@', 2) = $1`,
		`SELECT count(*) FROM virtual_host_claims WHERE domain = $1`,
		`SELECT count(*) FROM cos_references WHERE split_part(referrer, '@', 2) = $1 OR referrer = 'domain:' || $1`,
		`SELECT count(*) FROM sessions WHERE split_part(account, '@', 2) = $1 AND ended_at IS NULL`,
		`SELECT count(*) FROM domain_removals WHERE domain = $1 AND finished_at IS NULL`,
		`SELECT count(*) FROM rm_gal WHERE domain = $1 AND NOT deleted`,
		`SELECT count(*) FROM gal_entries WHERE domain = $1`,
		`SELECT count(*) FROM gal_tokens WHERE domain = $1`,
	} {
		var n int
		require.NoError(t, e.Pool.QueryRow(ctx, q, dom).Scan(&n))
		require.Zero(t, n, "%s", q)
	}
}
