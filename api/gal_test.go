package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/projections/ldap/ldaptest"
	"mailplane/workers"
)

func galPath(d string) string { return "/api/v1/domains/" + d + "/gal" }

func galSearch(t *testing.T, e *apitest.Env, token, d, q string, extra ...string) (addrs []string, next string) {
	t.Helper()
	path := galPath(d) + "/search?q=" + url.QueryEscape(q) + strings.Join(extra, "")
	r := e.Do(t, http.MethodGet, path, token, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s: %s", path, r.Body)
	var page struct {
		Items []struct {
			Address     string `json:"address"`
			DisplayName string `json:"display_name"`
			Kind        string `json:"kind"`
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	r.Decode(t, &page)
	for _, it := range page.Items {
		addrs = append(addrs, it.Address)
	}
	if page.NextCursor != nil {
		next = *page.NextCursor
	}
	return addrs, next
}

// The GALSync account: PUT creates it (galsync@domain by default) and replaces its settings,
// every invalid field is named in one 400 and nothing is written, its address is unique with
// every other address and freed when it changes or the account goes, the bind password is
// never shown nor stored in clear, and only the domain's administrators see or change it.
func TestGALSettings(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	_, admin := e.User(t, dom, apitest.DomainAdmin)
	_, otherAdmin := e.User(t, other, apitest.DomainAdmin)
	_, plain := e.User(t, dom, apitest.Plain)

	e.Do(t, http.MethodGet, galPath(dom), admin, nil).Problem(t, http.StatusNotFound)

	// Every invalid field at once, and nothing written.
	bad := e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{
		"account": "galsync@elsewhere.example", "mode": "sometimes", "polling_interval_seconds": 5,
		"external": map[string]any{"ldap_url": "http://x", "search_base": "not a dn", "search_filter": "(unclosed",
			"timeout_seconds": 999, "bind_dn": "", "bind_password": "pw"},
	})
	fields := bad.FieldErrors(t)
	slices.Sort(fields)
	require.Equal(t, []string{"account", "external.bind_dn", "external.ldap_url", "external.search_base",
		"external.search_filter", "external.timeout_seconds", "mode", "polling_interval_seconds"}, fields)
	require.Equal(t, []string{"external"}, e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{"mode": "both"}).FieldErrors(t))
	e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{"mode": "internal", "extra": 1}).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodGet, galPath(dom), admin, nil).Problem(t, http.StatusNotFound)
	events, err := e.Store.Load(context.Background(), domain.GALStreamID(dom), eventstore.LoadOptions{})
	require.NoError(t, err)
	require.Empty(t, events)

	// Created with the default address.
	r := e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{"mode": "internal"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	g := r.JSON(t)
	require.Equal(t, "galsync@"+dom, g["account"])
	require.Equal(t, "internal", g["mode"])
	require.Equal(t, float64(1), g["version"])
	require.Equal(t, float64(domain.DefaultGALPollingIntervalSeconds), g["effective_polling_interval_seconds"])
	require.Nil(t, g["external"])
	require.Nil(t, g["last_sync"])
	require.Equal(t, `"1"`, r.Header.Get("ETag"))
	// Its address is taken now, like an account's.
	e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/accounts", e.AdminToken,
		map[string]any{"local_part": "galsync"}).Problem(t, http.StatusConflict)

	// Repeating the PUT records nothing.
	require.Equal(t, float64(1), e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{"mode": "internal"}).JSON(t)["version"])

	// An address in use is refused (409), and nothing changes.
	taken := e.CreateAccount(t, dom, nil)
	e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{"mode": "internal", "account": taken}).Problem(t, http.StatusConflict)
	require.Equal(t, "galsync@"+dom, e.Do(t, http.MethodGet, galPath(dom), admin, nil).JSON(t)["account"])

	// Another address, an external source with a password: the old address is free, the password
	// shows only as has_bind_password and is in the event sealed.
	const password = "gal-reader-secret-1"
	r = e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{
		"account": "Directory@" + strings.ToUpper(dom), "mode": "both", "polling_interval_seconds": 600,
		"external": map[string]any{"ldap_url": "ldap://127.0.0.1:1", "bind_dn": "cn=reader,dc=corp,dc=test",
			"bind_password": password, "search_base": "ou=people,dc=corp,dc=test", "start_tls": true},
	})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	g = r.JSON(t)
	require.Equal(t, "directory@"+dom, g["account"])
	require.Equal(t, float64(600), g["effective_polling_interval_seconds"])
	ext := g["external"].(map[string]any)
	require.Equal(t, true, ext["has_bind_password"])
	require.Equal(t, domain.DefaultGALSearchFilter, ext["search_filter"])
	require.Equal(t, float64(domain.DefaultGALTimeoutSeconds), ext["timeout_seconds"])
	require.NotContains(t, string(r.Body), password)
	e.CreateAccount(t, dom, map[string]any{"local_part": "galsync"})
	events, err = e.Store.Load(context.Background(), domain.GALStreamID(dom), eventstore.LoadOptions{})
	require.NoError(t, err)
	require.Len(t, events, 2)
	require.NotContains(t, string(events[1].Data), password)
	require.Contains(t, string(events[1].Data), "bind_password_secret")
	// The history shows it redacted.
	hist := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history?type=GALConfigured", admin, nil)
	require.Equal(t, http.StatusOK, hist.Status, "%s", hist.Body)
	require.NotContains(t, string(hist.Body), password)

	// A PUT without bind_password keeps it; "" clears it (and then bind_dn alone is fine).
	keep := map[string]any{"ldap_url": "ldap://127.0.0.1:1", "bind_dn": "cn=reader,dc=corp,dc=test",
		"search_base": "ou=people,dc=corp,dc=test"}
	r = e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{"mode": "external", "external": keep})
	require.Equal(t, true, r.JSON(t)["external"].(map[string]any)["has_bind_password"], "%s", r.Body)
	keep["bind_password"] = ""
	r = e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{"mode": "external", "external": keep})
	require.Equal(t, false, r.JSON(t)["external"].(map[string]any)["has_bind_password"], "%s", r.Body)
	// A resync of it is queued as a job the jobs API shows.
	rs := e.Do(t, http.MethodPost, galPath(dom)+"/resync", admin, nil)
	require.Equal(t, http.StatusAccepted, rs.Status, "%s", rs.Body)
	job := rs.JSON(t)["job"].(map[string]any)
	require.Equal(t, "resync_gal", job["kind"])
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, rs.Header.Get("Location"), admin, nil).Status)
	// A second request while the first is queued is the same job.
	require.Equal(t, job["id"], e.Do(t, http.MethodPost, galPath(dom)+"/resync", admin, nil).JSON(t)["job"].(map[string]any)["id"])

	// An Idempotency-Key repeats the first answer and records nothing more; If-Match guards PUT.
	first := e.Do(t, http.MethodPost, galPath(dom)+"/resync", admin, nil, "Idempotency-Key", "gal-k1")
	require.Equal(t, http.StatusAccepted, first.Status, "%s", first.Body)
	before, err := e.Store.Load(context.Background(), domain.GALStreamID(dom), eventstore.LoadOptions{})
	require.NoError(t, err)
	again := e.Do(t, http.MethodPost, galPath(dom)+"/resync", admin, nil, "Idempotency-Key", "gal-k1")
	require.Equal(t, http.StatusAccepted, again.Status)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.JSONEq(t, string(first.Body), string(again.Body))
	require.NotEmpty(t, first.Header.Get("Location"))
	require.Equal(t, first.Header.Get("Location"), again.Header.Get("Location"), "the replay names the same job")
	after, err := e.Store.Load(context.Background(), domain.GALStreamID(dom), eventstore.LoadOptions{})
	require.NoError(t, err)
	require.Len(t, after, len(before))
	e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{"mode": "internal"}, "If-Match", `"1"`).
		Problem(t, http.StatusPreconditionFailed)
	cur := e.Do(t, http.MethodGet, galPath(dom), admin, nil)
	r = e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{"mode": "external", "external": keep}, "If-Match", cur.Header.Get("ETag"))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	// Who may.
	for _, tok := range []string{otherAdmin, plain} {
		e.Do(t, http.MethodGet, galPath(dom), tok, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPut, galPath(dom), tok, map[string]any{"mode": "internal"}).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodDelete, galPath(dom), tok, nil).Problem(t, http.StatusForbidden)
		e.Do(t, http.MethodPost, galPath(dom)+"/resync", tok, nil).Problem(t, http.StatusForbidden)
	}
	e.Do(t, http.MethodGet, galPath(dom)+"/search?q=a", otherAdmin, nil).Problem(t, http.StatusForbidden)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodGet, galPath(dom)+"/search?q=a", plain, nil).Status)
	require.Equal(t, []string{"q"}, e.Do(t, http.MethodGet, galPath(dom)+"/search", plain, nil).FieldErrors(t))
	require.Equal(t, []string{"limit"}, e.Do(t, http.MethodGet, galPath(dom)+"/search?q=a&limit=101", plain, nil).FieldErrors(t))
	require.Equal(t, []string{"cursor"}, e.Do(t, http.MethodGet, galPath(dom)+"/search?q=a&cursor=zz", plain, nil).FieldErrors(t))
	e.Do(t, http.MethodGet, galPath("nope-"+dom)+"/search?q=a", e.AdminToken, nil).Problem(t, http.StatusNotFound)

	// DELETE removes it and frees its address.
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, galPath(dom), admin, nil).Status)
	e.Do(t, http.MethodGet, galPath(dom), admin, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodDelete, galPath(dom), admin, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodPost, galPath(dom)+"/resync", admin, nil).Problem(t, http.StatusNotFound)
	e.CreateAccount(t, dom, map[string]any{"local_part": "directory"})
	// PUT makes it again, at version 1 of its new life only in created_at: the stream goes on.
	r = e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{"mode": "internal", "account": "gal2@" + dom})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "gal2@"+dom, r.JSON(t)["account"])
}

// Internal entries follow the events without a resync: accounts (not closed), lists not hidden
// from the GAL and resources; search is a prefix match on address, local part and name words,
// case- and accent-insensitive, ranked exact > address prefix > word prefix, and paged.
func TestGALSearchInternal(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	_, user := e.User(t, dom, apitest.Plain)
	mk := func(local, display string) string {
		return e.CreateAccount(t, dom, map[string]any{"local_part": local, "display_name": display})
	}
	zoe := mk("zoe.martin", "Zoë Martin")
	mk("zoelle", "Zoelle Ångström")
	martinez := mk("amartinez", "Álvaro Martínez")
	mart := mk("mart", "Mart")
	closed := mk("martha", "Martha Closed")
	r := e.Do(t, http.MethodPatch, "/api/v1/accounts/"+closed, e.AdminToken, map[string]any{"status": "closed"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	list := func(local, display string, hidden bool) string {
		r := e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/lists", e.AdminToken,
			map[string]any{"address": local + "@" + dom, "display_name": display, "hide_in_gal": hidden})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		return local + "@" + dom
	}
	martians := list("martians", "The Martians", false)
	list("martsecret", "Mart Secret", true)
	r = e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/resources", e.AdminToken,
		map[string]any{"address": "room-mars@" + dom, "display_name": "Salle Märtin", "type": "location"})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	room := "room-mars@" + dom
	// Lists and resources answer from the command's own view, before the read model has them.
	galEventually(t, e, user, dom, "room", room)

	// Accents and case fold both ways.
	got, _ := galSearch(t, e, user, dom, "ZOE")
	require.Equal(t, []string{"zoe.martin@" + dom, "zoelle@" + dom}, got)
	got, _ = galSearch(t, e, user, dom, "angst")
	require.Equal(t, []string{"zoelle@" + dom}, got)
	got, _ = galSearch(t, e, user, dom, "Álv")
	require.Equal(t, []string{martinez}, got)

	// Ranking: "mart" is mart@'s local part (exact), a prefix of martians@ and martha@ (closed:
	// not shown), and a word prefix of Salle Märtin and Zoë Martin (the word "martin", then by
	// address) and of Martínez; a hidden list never.
	got, _ = galSearch(t, e, user, dom, "mart")
	require.Equal(t, []string{mart, martians, room, zoe, martinez}, got)
	got, _ = galSearch(t, e, user, dom, "mart@"+dom) // the whole address is exact too
	require.Equal(t, []string{mart}, got)
	got, _ = galSearch(t, e, user, dom, "secret")
	require.Empty(t, got)
	got, _ = galSearch(t, e, user, dom, "%")
	require.Empty(t, got, "LIKE's wildcards are matched literally")

	// Paging walks the same order.
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		extra := "&limit=2"
		if cursor != "" {
			extra += "&cursor=" + cursor
		}
		page, next := galSearch(t, e, user, dom, "mart", extra)
		require.LessOrEqual(t, len(page), 2)
		all = append(all, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	require.Equal(t, []string{mart, martians, room, zoe, martinez}, all)

	// Changes follow: a renamed account, a list hidden later, a deleted resource.
	r = e.Do(t, http.MethodPatch, "/api/v1/accounts/"+zoe, e.AdminToken, map[string]any{"display_name": "Zoë Dupont"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	r = e.Do(t, http.MethodPatch, "/api/v1/lists/"+martians, e.AdminToken, map[string]any{"hide_in_gal": true})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, "/api/v1/resources/"+room, e.AdminToken, nil).Status)
	// (Zoë's local part still has the word "martin".) Search does not wait for the read model
	// (see searchGAL): changes show within its lag.
	galEventually(t, e, user, dom, "mart", mart, zoe, martinez)
	galEventually(t, e, user, dom, "dupont", zoe)

	// Mode external shows no internal entry; internal and both do.
	r = e.Do(t, http.MethodPut, galPath(dom), e.AdminToken, map[string]any{"mode": "external",
		"external": map[string]any{"ldap_url": "ldap://127.0.0.1:1", "search_base": "dc=corp,dc=test"}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	galEventually(t, e, user, dom, "mart")
	r = e.Do(t, http.MethodPut, galPath(dom), e.AdminToken, map[string]any{"mode": "internal"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	galEventually(t, e, user, dom, "mart", mart, zoe, martinez)
}

// galEventually waits until a search finds exactly want (in order).
func galEventually(t *testing.T, e *apitest.Env, token, d, q string, want ...string) {
	t.Helper()
	var got []string
	require.Eventually(t, func() bool {
		got, _ = galSearch(t, e, token, d, q, "&limit=100")
		return slices.Equal(got, want)
	}, time.Minute, 10*time.Millisecond, "search %q: got %v, want %v", q, &got, want)
}

// externalGAL is a slapd of its own standing in for a company directory.
type externalGAL struct {
	srv  *ldaptest.Server
	conn *ldap.Conn
	base string
}

func startExternalGAL(t *testing.T) *externalGAL {
	t.Helper()
	srv := ldaptest.StartSlapdWith(t, ldaptest.SlapdOptions{Suffix: "dc=corp,dc=test"})
	conn, err := ldaptest.Dial(srv.URL, srv.Env.Admin)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	x := &externalGAL{srv: srv, conn: conn, base: "ou=people,dc=corp,dc=test"}
	add := ldap.NewAddRequest(x.base, nil)
	add.Attribute("objectClass", []string{"organizationalUnit"})
	add.Attribute("ou", []string{"people"})
	require.NoError(t, conn.Add(add))
	return x
}

func (x *externalGAL) dn(i int) string { return fmt.Sprintf("uid=p%05d,%s", i, x.base) }

func (x *externalGAL) add(t *testing.T, i int, given, sn string) {
	t.Helper()
	req := ldap.NewAddRequest(x.dn(i), nil)
	req.Attribute("objectClass", []string{"inetOrgPerson"})
	req.Attribute("uid", []string{fmt.Sprintf("p%05d", i)})
	req.Attribute("cn", []string{given + " " + sn})
	req.Attribute("givenName", []string{given})
	req.Attribute("sn", []string{sn})
	req.Attribute("mail", []string{fmt.Sprintf("p%05d@corp.test", i)})
	require.NoError(t, x.conn.Add(req))
}

func waitGALJob(t *testing.T, e *apitest.Env, token string, id any, states ...string) map[string]any {
	t.Helper()
	path := "/api/v1/jobs/" + strconv.FormatFloat(id.(float64), 'f', 0, 64)
	var job map[string]any
	require.Eventually(t, func() bool {
		job = e.Do(t, http.MethodGet, path, token, nil).JSON(t)
		return slices.Contains(states, job["state"].(string))
	}, 60*time.Second, 50*time.Millisecond, "job %s never reached %v: %v", path, states, &job)
	return job
}

// External entries come from a resync against a real slapd with thousands of entries, read
// in pages: the first adds them all; the next applies only the difference (added, changed,
// removed, recorded in last_sync and in the GALSynced event); a source that cannot be read is
// recorded as a failure and leaves the last good entries searchable.
func TestGALResyncExternal(t *testing.T) {
	t.Parallel()
	x := startExternalGAL(t)
	n := 2500
	if testing.Short() {
		n = 600
	}
	for i := range n {
		x.add(t, i, fmt.Sprintf("Given%d", i), fmt.Sprintf("Surname%d", i))
	}
	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{}})
	dom := e.CreateDomain(t, nil)
	_, admin := e.User(t, dom, apitest.DomainAdmin)
	inside := e.CreateAccount(t, dom, map[string]any{"local_part": "p00001", "display_name": "Inside One"})
	startupRunDone(t, e, "schedule_gal_resyncs")
	r := e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{"mode": "both", "external": map[string]any{
		"ldap_url": x.srv.URL, "bind_dn": x.srv.Env.Admin.DN, "bind_password": x.srv.Env.Admin.Password,
		"search_base": x.base, "search_filter": "(objectClass=inetOrgPerson)", "timeout_seconds": 5}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	// idle waits until no resync job is queued or running: River records a job's end a little
	// after its outcome is committed, and until then a request gets that job (unique per domain).
	idle := func() {
		t.Helper()
		require.Eventually(t, func() bool {
			var n int
			require.NoError(t, e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job
				WHERE kind = 'resync_gal' AND args->>'domain' = $1 AND state IN ('available', 'running', 'scheduled', 'pending')`,
				dom).Scan(&n))
			return n == 0
		}, 30*time.Second, 10*time.Millisecond)
	}
	resync := func(want ...string) map[string]any {
		t.Helper()
		idle()
		rs := e.Do(t, http.MethodPost, galPath(dom)+"/resync", admin, nil)
		require.Equal(t, http.StatusAccepted, rs.Status, "%s", rs.Body)
		job := waitGALJob(t, e, admin, rs.JSON(t)["job"].(map[string]any)["id"], want...)
		g := e.Do(t, http.MethodGet, galPath(dom), admin, nil).JSON(t)
		require.NotNil(t, g["last_sync"], "job %v", job)
		return g
	}
	g := resync("succeeded")
	last := g["last_sync"].(map[string]any)
	require.Equal(t, "succeeded", last["status"])
	require.Equal(t, "request", last["trigger"])
	require.Equal(t, float64(n), last["added"])
	require.Equal(t, float64(0), last["changed"])
	require.Equal(t, float64(0), last["removed"])
	require.Equal(t, float64(n), last["total"])
	// Simple paged results, 500 entries a page (slapd sends no cookie after the last).
	require.Equal(t, float64((n+workers.GALPageSize-1)/workers.GALPageSize), last["pages"])
	require.NotNil(t, g["last_success_at"])
	t.Logf("first resync of %d entries: %v ms", n, last["duration_ms"])

	got, _ := galSearch(t, e, admin, dom, "surname1234")
	require.Equal(t, []string{"p01234@corp.test"}, got)
	// The internal account with that local part is an exact match too: both show, by address
	// (the internal one as soon as the GAL entries projection has it).
	galEventually(t, e, admin, dom, "p00001", "p00001@corp.test", inside)

	// A change of 5, 7 removed, 11 added.
	for i := 10; i < 15; i++ {
		require.NoError(t, x.conn.Modify(&ldap.ModifyRequest{DN: x.dn(i), Changes: []ldap.Change{
			{Operation: ldap.ReplaceAttribute, Modification: ldap.PartialAttribute{Type: "displayName", Vals: []string{fmt.Sprintf("Renamed Person%d", i)}}}}}))
	}
	for i := 20; i < 27; i++ {
		require.NoError(t, x.conn.Del(ldap.NewDelRequest(x.dn(i), nil)))
	}
	for i := n; i < n+11; i++ {
		x.add(t, i, "Newcomer", fmt.Sprintf("Late%d", i))
	}
	g = resync("succeeded")
	last = g["last_sync"].(map[string]any)
	require.Equal(t, float64(11), last["added"])
	require.Equal(t, float64(5), last["changed"])
	require.Equal(t, float64(7), last["removed"])
	require.Equal(t, float64(n+11-7), last["total"])
	got, _ = galSearch(t, e, admin, dom, "renamed", "&limit=100")
	require.Len(t, got, 5)
	got, _ = galSearch(t, e, admin, dom, "surname20")
	require.NotContains(t, got, "p00020@corp.test")
	got, _ = galSearch(t, e, admin, dom, "newcomer", "&limit=100")
	require.Len(t, got, 11)
	// The outcome is an event with the same counts.
	hist := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history?type=GALSynced", admin, nil)
	require.Equal(t, http.StatusOK, hist.Status, "%s", hist.Body)
	require.Contains(t, string(hist.Body), `"removed":7`)

	// A resync with nothing new changes nothing.
	last = resync("succeeded")["last_sync"].(map[string]any)
	require.Equal(t, []any{float64(0), float64(0), float64(0)}, []any{last["added"], last["changed"], last["removed"]})

	// The schedule: the periodic job queues a resync once the polling interval has passed.
	r = e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{"mode": "both", "polling_interval_seconds": 60,
		"external": map[string]any{"ldap_url": x.srv.URL, "bind_dn": x.srv.Env.Admin.DN, "search_base": x.base,
			"search_filter": "(objectClass=inetOrgPerson)", "timeout_seconds": 5}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	synced := e.Do(t, http.MethodGet, galPath(dom), admin, nil).JSON(t)["last_sync"].(map[string]any)["finished_at"]
	schedule := func(after time.Duration) {
		w := &workers.ScheduleGALResyncsWorker{Commands: e.Commands, Reads: e.Reads,
			Now: func() time.Time { return time.Now().Add(after) }}
		require.NoError(t, w.Work(context.Background(), nil))
	}
	schedule(30 * time.Second)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, synced, e.Do(t, http.MethodGet, galPath(dom), admin, nil).JSON(t)["last_sync"].(map[string]any)["finished_at"],
		"not due yet")
	schedule(61 * time.Second)
	require.Eventually(t, func() bool {
		last := e.Do(t, http.MethodGet, galPath(dom), admin, nil).JSON(t)["last_sync"].(map[string]any)
		return last["finished_at"] != synced && last["trigger"] == "schedule" && last["status"] == "succeeded"
	}, 30*time.Second, 20*time.Millisecond)

	// A changed source is due at once, whatever the interval.
	idle()
	synced = e.Do(t, http.MethodGet, galPath(dom), admin, nil).JSON(t)["last_sync"].(map[string]any)["finished_at"]
	r = e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{"mode": "both", "polling_interval_seconds": 3600,
		"external": map[string]any{"ldap_url": x.srv.URL, "bind_dn": x.srv.Env.Admin.DN, "search_base": x.base,
			"search_filter": "(&(objectClass=inetOrgPerson)(mail=*))", "timeout_seconds": 5}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	schedule(0)
	require.Eventually(t, func() bool {
		last := e.Do(t, http.MethodGet, galPath(dom), admin, nil).JSON(t)["last_sync"].(map[string]any)
		return last["finished_at"] != synced && last["trigger"] == "schedule" && last["status"] == "succeeded"
	}, 30*time.Second, 20*time.Millisecond)

	// Mode internal hides the external entries; external hides the internal ones.
	put := func(mode string) {
		r := e.Do(t, http.MethodPut, galPath(dom), admin, map[string]any{"mode": mode, "external": map[string]any{
			"ldap_url": x.srv.URL, "bind_dn": x.srv.Env.Admin.DN, "search_base": x.base,
			"search_filter": "(objectClass=inetOrgPerson)", "timeout_seconds": 5}})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	}
	put("internal")
	got, _ = galSearch(t, e, admin, dom, "p00001")
	require.Equal(t, []string{inside}, got)
	put("external")
	got, _ = galSearch(t, e, admin, dom, "p00001")
	require.Equal(t, []string{"p00001@corp.test"}, got)

	// The source goes away: the failure is recorded, the entries stay.
	x.srv.Stop(t)
	g = resync("retrying", "failed")
	last = g["last_sync"].(map[string]any)
	require.Equal(t, "failed", last["status"])
	require.Contains(t, last["error"], "connect")
	require.Equal(t, float64(n+11-7), last["total"])
	got, _ = galSearch(t, e, admin, dom, "surname1234")
	require.Equal(t, []string{"p01234@corp.test"}, got)

	// Deleting the GAL drops the external entries.
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, galPath(dom), admin, nil).Status)
	got, _ = galSearch(t, e, admin, dom, "surname1234")
	require.Empty(t, got)
	got, _ = galSearch(t, e, admin, dom, "p00001")
	require.Equal(t, []string{inside}, got)
}

// selfSignedTLS makes a certificate for 127.0.0.1 (an IP address only) and its key, as PEM files
// in dir, and a client configuration trusting it.
func selfSignedTLS(t *testing.T, dir string) (certFile, keyFile string, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "corp directory"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// tlsProxy terminates TLS on a port of its own and forwards each connection to addr in clear:
// an ldaps:// listener in front of the test's slapd, which itself speaks plain LDAP.
func tlsProxy(t *testing.T, addr, certFile, keyFile string) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c) }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	return "ldaps://" + ln.Addr().String()
}

// TLS: over ldaps:// a resync speaks TLS from the start; with start_tls it upgrades an ldap://
// connection before binding, to a slapd that refuses binds without TLS; either way it verifies
// the directory's certificate for the URL's host (a name the certificate does not hold fails,
// recorded as such, and the entries stay).
func TestGALResyncTLS(t *testing.T) {
	t.Parallel()
	x := startExternalGAL(t)
	for i := range 10 {
		x.add(t, i, "Secure", fmt.Sprintf("Person%d", i))
	}
	certFile, keyFile, client := selfSignedTLS(t, t.TempDir())
	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{GALTLS: client}})
	dom := e.CreateDomain(t, nil)
	startupRunDone(t, e, "schedule_gal_resyncs")
	put := func(url string, startTLS bool) {
		t.Helper()
		r := e.Do(t, http.MethodPut, galPath(dom), e.AdminToken, map[string]any{"mode": "external", "external": map[string]any{
			"ldap_url": url, "bind_dn": x.srv.Env.Admin.DN, "bind_password": x.srv.Env.Admin.Password,
			"search_base": x.base, "start_tls": startTLS, "timeout_seconds": 5}})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	}
	// A request while the failed job waits for its retry gets that job, and its retry reads the
	// settings as they are then: so each step waits for the state it expects.
	resync := func(states ...string) map[string]any {
		t.Helper()
		rs := e.Do(t, http.MethodPost, galPath(dom)+"/resync", e.AdminToken, nil)
		require.Equal(t, http.StatusAccepted, rs.Status, "%s", rs.Body)
		waitGALJob(t, e, e.AdminToken, rs.JSON(t)["job"].(map[string]any)["id"], states...)
		return e.Do(t, http.MethodGet, galPath(dom), e.AdminToken, nil).JSON(t)["last_sync"].(map[string]any)
	}

	// LDAPS.
	u, err := url.Parse(x.srv.URL)
	require.NoError(t, err)
	put(tlsProxy(t, u.Host, certFile, keyFile), false)
	last := resync("succeeded")
	require.Equal(t, float64(10), last["added"], "%v", last)

	// slapd's own TLS (directives are global: before the first database); binds then need TLS.
	x.srv.Stop(t)
	conf, err := os.ReadFile(x.srv.Conf)
	require.NoError(t, err)
	tlsConf := fmt.Sprintf("TLSCertificateFile %s\nTLSCertificateKeyFile %s\nsecurity simple_bind=128\n", certFile, keyFile)
	require.NoError(t, os.WriteFile(x.srv.Conf, append([]byte(tlsConf), conf...), 0o600))
	x.srv.Start(t)

	// Without TLS the directory refuses the bind.
	put(x.srv.URL, false)
	last = resync("retrying", "failed")
	require.Equal(t, "failed", last["status"])
	require.Contains(t, last["error"], "bind as")

	put(x.srv.URL, true)
	last = resync("succeeded")
	require.Equal(t, "succeeded", last["status"], "%v", last)
	require.Equal(t, float64(0), last["added"])
	require.Equal(t, float64(10), last["total"])
	got, _ := galSearch(t, e, e.AdminToken, dom, "secure", "&limit=100")
	require.Len(t, got, 10)

	// The certificate is for 127.0.0.1, not for localhost.
	put(strings.Replace(x.srv.URL, "127.0.0.1", "localhost", 1), true)
	last = resync("retrying", "failed")
	require.Equal(t, "failed", last["status"])
	require.Contains(t, last["error"], "StartTLS")
	require.Contains(t, last["error"], "certificate")
	got, _ = galSearch(t, e, e.AdminToken, dom, "secure", "&limit=100")
	require.Len(t, got, 10, "the last good entries stay")
}
