package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
)

type auditEntry struct {
	Stream        string         `json:"stream"`
	Version       int            `json:"version"`
	Type          string         `json:"type"`
	Data          map[string]any `json:"data"`
	Actor         string         `json:"actor"`
	SessionID     string         `json:"session_id"`
	RequestID     string         `json:"request_id"`
	CorrelationID string         `json:"correlation_id"`
	SourceIP      string         `json:"source_ip"`
}

type auditPage struct {
	Items      []auditEntry `json:"items"`
	NextCursor *string      `json:"next_cursor"`
}

func history(t *testing.T, e *apitest.Env, path, token string) auditPage {
	t.Helper()
	r := e.Do(t, http.MethodGet, path, token, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var p auditPage
	r.Decode(t, &p)
	return p
}

func types(p auditPage) []string {
	out := []string{}
	for _, it := range p.Items {
		out = append(out, it.Type)
	}
	return out
}

// History filters by actor, source IP, request id, correlation id and session, and every entry
// names the session whose token acted.
func TestHistoryFilters(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	adminToken, adminSession := login(t, e, apitest.AdminEmail, apitest.AdminPassword)
	r := e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/accounts", adminToken, map[string]any{"local_part": "ann"},
		"X-Request-Id", "req-create-ann", "X-Correlation-Id", "ticket-42")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	ann := "ann@" + dom
	dadmin, _ := e.User(t, dom, apitest.DomainAdmin)
	dtoken, dsession := login(t, e, dadmin, "user-password-1")
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/accounts/"+ann, dtoken, map[string]any{"display_name": "Ann"},
		"X-Correlation-Id", "ticket-42").Status)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/accounts/"+ann, adminToken, map[string]any{"display_name": "Ann B."}).Status)

	// The domain admin's two logins are in its account's stream too (SessionStarted).
	base := "/api/v1/domains/" + dom + "/history"
	require.Equal(t, 7, len(history(t, e, base, e.AdminToken).Items))
	all := history(t, e, base+"?type=DomainCreated,AccountCreated,AccountUpdated", e.AdminToken)
	// DomainCreated, ann's creation, the domain admin made by the command service (no
	// session: not a request) and ann's two changes.
	require.Equal(t, []string{"DomainCreated", "AccountCreated", "AccountCreated", "AccountUpdated", "AccountUpdated"}, types(all))
	require.Equal(t, adminSession, all.Items[1].SessionID)
	require.Equal(t, "req-create-ann", all.Items[1].RequestID)
	require.Equal(t, "ticket-42", all.Items[1].CorrelationID)
	require.Equal(t, "test", all.Items[2].Actor)
	require.Empty(t, all.Items[2].SessionID, "no token acted")
	require.Equal(t, dsession, all.Items[3].SessionID)
	require.Equal(t, dadmin, all.Items[3].Actor)
	require.Equal(t, adminSession, all.Items[4].SessionID)

	q := func(params ...string) auditPage {
		v := url.Values{"type": {"DomainCreated,AccountCreated,AccountUpdated"}}
		for i := 0; i+1 < len(params); i += 2 {
			v.Set(params[i], params[i+1])
		}
		return history(t, e, base+"?"+v.Encode(), e.AdminToken)
	}
	p := q("actor", strings.ToUpper(dadmin))
	require.Equal(t, []string{"AccountUpdated"}, types(p), "actor is case-insensitive")
	require.Equal(t, "Ann", p.Items[0].Data["display_name"])
	require.Equal(t, []string{"AccountCreated"}, types(q("request_id", "req-create-ann")))
	require.Equal(t, []string{"AccountCreated", "AccountUpdated"}, types(q("correlation_id", "ticket-42")))
	p = q("session_id", adminSession)
	require.Equal(t, []string{"AccountCreated", "AccountUpdated"}, types(p))
	require.Equal(t, "Ann B.", p.Items[1].Data["display_name"])
	require.Len(t, q("ip", "127.0.0.1").Items, 4, "the events of requests (the command service's has no IP)")
	require.Empty(t, q("ip", "10.1.2.3").Items)
	require.Equal(t, []string{"AccountUpdated"}, types(q("actor", apitest.AdminEmail, "type", "AccountUpdated")), "filters combine")

	// Paging keeps the filter.
	p = q("ip", "127.0.0.1", "limit", "3")
	require.Len(t, p.Items, 3)
	require.NotNil(t, p.NextCursor)
	p = q("ip", "127.0.0.1", "limit", "3", "cursor", *p.NextCursor)
	require.Equal(t, []string{"AccountUpdated"}, types(p))
	require.Nil(t, p.NextCursor)

	bad := e.Do(t, http.MethodGet, base+"?ip=not-an-ip&actor="+strings.Repeat("a", 300), e.AdminToken, nil)
	require.ElementsMatch(t, []string{"ip", "actor"}, bad.FieldErrors(t))
}

// Accounts, lists and resources each have their own history, through creation, changes,
// aliases and removal, readable by their domain's administrators, also once they are gone.
func TestObjectHistory(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	acc := e.CreateAccount(t, dom, map[string]any{"display_name": "First"})
	other := e.CreateAccount(t, dom, nil)
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/accounts/"+acc+"/aliases", e.AdminToken,
		map[string]any{"alias": "alias-" + acc}).Status)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/accounts/"+acc, e.AdminToken, map[string]any{"display_name": "Second"}).Status)
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, "/api/v1/accounts/"+acc, e.AdminToken, nil).Status)

	list := "team@" + dom
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/lists", e.AdminToken,
		map[string]any{"address": list, "members": []string{other}}).Status)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/lists/"+list, e.AdminToken, map[string]any{"display_name": "Team"}).Status)
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, "/api/v1/lists/"+list, e.AdminToken, nil).Status)

	room := "room@" + dom
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/resources", e.AdminToken,
		map[string]any{"address": room, "type": "location"}).Status)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/resources/"+room, e.AdminToken, map[string]any{"capacity": 12}).Status)

	only := func(p auditPage, stream string) {
		t.Helper()
		for _, it := range p.Items {
			require.Equal(t, stream, it.Stream)
			require.Equal(t, apitest.AdminEmail, it.Actor)
			require.NotEmpty(t, it.SessionID)
		}
	}
	p := history(t, e, "/api/v1/accounts/"+acc+"/history", e.AdminToken)
	require.Equal(t, []string{"AccountCreated", "AliasAdded", "AccountUpdated", "AccountDeleted"}, types(p))
	only(p, domain.AccountStreamID(mustAddress(t, acc)))
	// The same filters as the domain's.
	require.Equal(t, []string{"AccountUpdated"}, types(history(t, e, "/api/v1/accounts/"+acc+"/history?type=AccountUpdated", e.AdminToken)))

	p = history(t, e, "/api/v1/lists/"+list+"/history", e.AdminToken)
	require.GreaterOrEqual(t, len(p.Items), 3)
	require.Equal(t, "ListCreated", p.Items[0].Type)
	only(p, domain.ListStreamID(mustAddress(t, list)))

	p = history(t, e, "/api/v1/resources/"+room+"/history", e.AdminToken)
	require.Len(t, p.Items, 2)
	require.Equal(t, "ResourceCreated", p.Items[0].Type)
	only(p, domain.ResourceStreamID(mustAddress(t, room)))

	// Never was one: 404, also for an account's address asked of lists.
	e.Do(t, http.MethodGet, "/api/v1/accounts/nobody@"+dom+"/history", e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodGet, "/api/v1/lists/"+other+"/history", e.AdminToken, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodGet, "/api/v1/resources/"+list+"/history", e.AdminToken, nil).Problem(t, http.StatusNotFound)

	// Roles: the domain's administrators; not another domain's, not a plain account (itself
	// included).
	_, dtoken := e.User(t, dom, apitest.DomainAdmin)
	require.Len(t, history(t, e, "/api/v1/resources/"+room+"/history", dtoken).Items, 2)
	_, foreign := e.User(t, e.CreateDomain(t, nil), apitest.DomainAdmin)
	e.Do(t, http.MethodGet, "/api/v1/resources/"+room+"/history", foreign, nil).Problem(t, http.StatusForbidden)
	plain, ptoken := e.User(t, dom, apitest.Plain)
	e.Do(t, http.MethodGet, "/api/v1/accounts/"+plain+"/history", ptoken, nil).Problem(t, http.StatusForbidden)
}

// The export is written as it is read: the first page reaches the client before the last is
// read, and what reaches it ends with the end line.
func TestHistoryExportStreams(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	acc := e.CreateAccount(t, dom, nil)
	addr := mustAddress(t, acc)
	// Before the events below, which the read models take a while to catch up with.
	_, foreign := e.User(t, e.CreateDomain(t, nil), apitest.DomainAdmin)
	ctx := context.Background()
	const extra = 2500 // over two pages
	for i := range extra {
		name := "n" + strings.Repeat("x", i%7)
		_, err := e.Store.Append(ctx, eventstore.Stream{ID: domain.AccountStreamID(addr), Type: domain.StreamTypeAccount, Domain: dom},
			eventstore.Exact(i+1), eventstore.Metadata{Actor: "test"}, domain.AccountUpdated{Address: addr, DisplayName: &name})
		require.NoError(t, err)
	}
	token := e.AdminToken
	w := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/domains/"+dom+"/history/export", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	e.Server.Handler().ServeHTTP(w, req)
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "application/jsonl", w.Header().Get("Content-Type"))
	require.GreaterOrEqual(t, len(w.flushedAt), 3, "a flush a page")
	require.Less(t, w.flushedAt[0], w.Body.Len()/2, "the first page went out while the rest was still to be read")

	sc := bufio.NewScanner(bytes.NewReader(w.Body.Bytes()))
	sc.Buffer(nil, 1<<20)
	var kinds []string
	var events int
	for sc.Scan() {
		var l struct {
			Kind   string `json:"kind"`
			Events int    `json:"events"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		if l.Kind == "event" {
			events++
		} else {
			kinds = append(kinds, l.Kind)
		}
		if l.Kind == "end" {
			require.Equal(t, 2+extra, l.Events)
		}
	}
	require.Equal(t, 2+extra, events)
	require.Equal(t, []string{"export", "end"}, kinds, "no anchor recorded yet")

	// Through the contract-checking server too, with the documented media type and headers.
	r := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history/export", token, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, `attachment; filename="`+dom+`-history.jsonl"`, r.Header.Get("Content-Disposition"))
	e.Do(t, http.MethodGet, "/api/v1/domains/nowhere-"+dom+"/history/export", token, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history/export", foreign, nil).Problem(t, http.StatusForbidden)
}

// flushRecorder notes how much had been written at each flush.
type flushRecorder struct {
	*httptest.ResponseRecorder
	flushedAt []int
}

func (f *flushRecorder) Flush() {
	f.flushedAt = append(f.flushedAt, f.Body.Len())
	f.ResponseRecorder.Flush()
}

func mustAddress(t *testing.T, s string) domain.Address {
	t.Helper()
	a, err := domain.ParseAddress(s)
	require.NoError(t, err)
	return a
}

// Every object kind reads as of any moment: before its creation 404, between changes the old
// values, and after its removal — asked of a moment it still existed — its last state (asked of
// a moment after the removal, 404: it was gone then).
func TestAsOfEveryKind(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, map[string]any{"description": "one"})
	acc := e.CreateAccount(t, dom, map[string]any{"display_name": "one"})
	list, room := "team@"+dom, "room@"+dom
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/lists", e.AdminToken,
		map[string]any{"address": list, "display_name": "one"}).Status)
	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/resources", e.AdminToken,
		map[string]any{"address": room, "type": "location", "display_name": "one"}).Status)
	kinds := []struct {
		path, stream, field string
		change              map[string]any
		removable           bool
	}{
		{"/api/v1/domains/" + dom, "domain-" + dom, "description", map[string]any{"description": "two"}, false},
		{"/api/v1/accounts/" + acc, "account-" + acc, "display_name", map[string]any{"display_name": "two"}, true},
		{"/api/v1/lists/" + list, "list-" + list, "display_name", map[string]any{"display_name": "two"}, true},
		{"/api/v1/resources/" + room, "resource-" + room, "display_name", map[string]any{"display_name": "two"}, true},
	}
	for _, k := range kinds {
		require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, k.path, e.AdminToken, k.change).Status, k.path)
		if k.removable {
			require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, k.path, e.AdminToken, nil).Status, k.path)
		}
	}
	recorded := func(stream string, version int) time.Time {
		var at time.Time
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT recorded_at FROM events WHERE stream_id = $1 AND stream_version = $2`,
			stream, version).Scan(&at))
		return at
	}
	at := func(path string, t0 time.Time) apitest.Response {
		return e.Do(t, http.MethodGet, path+"?as_of="+url.QueryEscape(t0.Format(time.RFC3339Nano)), e.AdminToken, nil)
	}
	for _, k := range kinds {
		t.Run(k.stream, func(t *testing.T) {
			created, changed := recorded(k.stream, 1), recorded(k.stream, 2)
			at(k.path, created.Add(-time.Microsecond)).Problem(t, http.StatusNotFound)
			r := at(k.path, created)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Equal(t, "one", r.JSON(t)[k.field])
			require.Equal(t, `"1"`, r.Header.Get("ETag"))
			r = at(k.path, changed)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Equal(t, "two", r.JSON(t)[k.field])
			require.Equal(t, `"2"`, r.Header.Get("ETag"))
			if k.removable {
				e.Do(t, http.MethodGet, k.path, e.AdminToken, nil).Problem(t, http.StatusNotFound)
				removed := recorded(k.stream, 3)
				r = at(k.path, removed.Add(-time.Microsecond))
				require.Equal(t, http.StatusOK, r.Status, "the last state, read after the removal: %s", r.Body)
				require.Equal(t, "two", r.JSON(t)[k.field])
				at(k.path, removed).Problem(t, http.StatusNotFound)
			}
		})
	}
}

// Virtual hosts and their certificates read as of a moment too: metadata only, the status
// judged then, 404 before the host was added and once it was removed.
func TestVirtualHostAsOf(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	host := "webmail." + dom
	addHost(t, e, e.AdminToken, dom, host)
	ca := newTestCA(t)
	files := ca.files(t, host)
	r := e.Do(t, http.MethodPut, certPath(dom, host), e.AdminToken, files)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, vhostPath(dom, host), e.AdminToken, nil).Status)

	stream := domain.VirtualHostStreamID(dom, host)
	recorded := func(version int) time.Time {
		var at time.Time
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT recorded_at FROM events WHERE stream_id = $1 AND stream_version = $2`,
			stream, version).Scan(&at))
		return at
	}
	at := func(path string, t0 time.Time) apitest.Response {
		return e.Do(t, http.MethodGet, path+"?as_of="+url.QueryEscape(t0.Format(time.RFC3339Nano)), e.AdminToken, nil)
	}
	added, installed, removed := recorded(1), recorded(2), recorded(3)
	for _, p := range []string{vhostPath(dom, host), certPath(dom, host)} {
		at(p, added.Add(-time.Microsecond)).Problem(t, http.StatusNotFound)
		at(p, removed).Problem(t, http.StatusNotFound)
		e.Do(t, http.MethodGet, p, e.AdminToken, nil).Problem(t, http.StatusNotFound)
	}
	v := at(vhostPath(dom, host), added)
	require.Equal(t, http.StatusOK, v.Status, "%s", v.Body)
	require.Equal(t, `"1"`, v.Header.Get("ETag"))
	require.Equal(t, "none", v.JSON(t)["certificate"].(map[string]any)["status"])

	c := at(certPath(dom, host), installed)
	require.Equal(t, http.StatusOK, c.Status, "%s", c.Body)
	require.Equal(t, `"2"`, c.Header.Get("ETag"))
	cj := c.JSON(t)
	require.Equal(t, "valid", cj["status"])
	require.Equal(t, "custom", cj["source"])
	require.NotContains(t, string(c.Body), "PRIVATE KEY")
	require.NotContains(t, string(c.Body), "mpenc:")
	require.Equal(t, "valid", at(vhostPath(dom, host), removed.Add(-time.Microsecond)).JSON(t)["certificate"].(map[string]any)["status"])

	// The status is the moment's, not today's: a certificate valid now reads expired as of a
	// moment after its end.
	kept := "mail." + dom
	addHost(t, e, e.AdminToken, dom, kept)
	cert, key := ca.leaf(t, nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), kept)
	r = e.Do(t, http.MethodPut, certPath(dom, kept), e.AdminToken,
		map[string]any{"certificate": cert, "ca_chain": certPEM(ca.inter), "private_key": privPEM(t, key)})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "valid", e.Do(t, http.MethodGet, certPath(dom, kept), e.AdminToken, nil).JSON(t)["status"])
	require.Equal(t, "expired", at(certPath(dom, kept), time.Now().Add(2*time.Hour)).JSON(t)["status"])

	require.Equal(t, []string{"as_of"}, e.Do(t, http.MethodGet, certPath(dom, host)+"?as_of=yesterday", e.AdminToken, nil).FieldErrors(t))
}

// A removed domain's history still exports and checks offline — its sealed secrets shredded
// but their ciphertext, which the chains cover, intact — and its objects still read as of a
// moment they existed.
func TestRemovedDomainExportsAndReadsAsOf(t *testing.T) {
	t.Parallel()
	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{}})
	ctx := context.Background()
	dom := e.CreateDomain(t, nil)
	alice := e.CreateAccount(t, dom, map[string]any{"local_part": "alice", "password": "alice-password-1", "display_name": "Alice"})
	r := e.Do(t, http.MethodDelete, "/api/v1/domains/"+dom, e.AdminToken, nil)
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
	require.Eventually(t, func() bool {
		return e.Do(t, http.MethodGet, r.Header.Get("Location"), e.AdminToken, nil).JSON(t)["state"] == "succeeded"
	}, 60*time.Second, 50*time.Millisecond)
	// An anchor stops before any transaction in flight: record until one covers the removal.
	head, err := e.Store.Head(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		a, ok, err := e.Anchors.Record(ctx)
		require.NoError(t, err)
		return ok && !a.Position.Less(head)
	}, 30*time.Second, 10*time.Millisecond)

	x := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history/export", e.AdminToken, nil)
	require.Equal(t, http.StatusOK, x.Status, "%s", x.Body)
	require.Contains(t, string(x.Body), `"type":"DomainRemoved"`)
	require.Contains(t, string(x.Body), `"password_secret":"mpenc:`)
	storeKey, err := keyring.Derive(e.MasterKey, eventstore.KeyPurpose)
	require.NoError(t, err)
	rep, err := eventstore.VerifyExport(bytes.NewReader(x.Body), eventstore.ExportCheck{ChainKey: eventstore.ChainKey(storeKey),
		PublicKey: e.Anchors.PublicKey(), InDomain: domain.StreamInDomain})
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)
	require.False(t, rep.Unsigned)
	require.Zero(t, rep.Unanchored, "the removal was anchored")

	var created, removed time.Time
	require.NoError(t, e.Pool.QueryRow(ctx, `SELECT min(recorded_at), max(recorded_at) FROM events WHERE stream_id = $1`,
		"account-"+alice).Scan(&created, &removed))
	at := func(path string, t0 time.Time) apitest.Response {
		return e.Do(t, http.MethodGet, path+"?as_of="+url.QueryEscape(t0.Format(time.RFC3339Nano)), e.AdminToken, nil)
	}
	a := at("/api/v1/accounts/"+alice, removed.Add(-time.Microsecond))
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	require.Equal(t, "Alice", a.JSON(t)["display_name"])
	at("/api/v1/accounts/"+alice, removed).Problem(t, http.StatusNotFound)
	require.Equal(t, http.StatusOK, at("/api/v1/domains/"+dom, created).Status)
	at("/api/v1/domains/"+dom, time.Now()).Problem(t, http.StatusNotFound)
	require.Equal(t, []string{"AccountCreated", "AccountDeleted"}, types(history(t, e, "/api/v1/accounts/"+alice+"/history", e.AdminToken)))
}

// The GAL reads as of a moment too: its settings then, the effective polling interval from the
// global configuration of then, 404 before it was set up, and never the bind password.
func TestGALAsOf(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	path := "/api/v1/domains/" + dom + "/gal"
	r := e.Do(t, http.MethodPut, path, e.AdminToken, map[string]any{"mode": "internal"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, http.StatusOK, e.Do(t, http.MethodPatch, "/api/v1/config", e.AdminToken, map[string]any{"gal_polling_interval_seconds": 7200}).Status)
	r = e.Do(t, http.MethodPut, path, e.AdminToken, map[string]any{"mode": "both", "external": map[string]any{
		"ldap_url": "ldap://127.0.0.1:1", "bind_dn": "cn=reader,dc=x", "bind_password": "gal-secret-123", "search_base": "dc=x"}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	recorded := func(stream string, version int) time.Time {
		var at time.Time
		require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT recorded_at FROM events WHERE stream_id = $1 AND stream_version = $2`,
			stream, version).Scan(&at))
		return at
	}
	at := func(t0 time.Time) apitest.Response {
		return e.Do(t, http.MethodGet, path+"?as_of="+url.QueryEscape(t0.Format(time.RFC3339Nano)), e.AdminToken, nil)
	}
	setUp, changed := recorded(domain.GALStreamID(dom), 1), recorded(domain.GALStreamID(dom), 2)
	at(setUp.Add(-time.Microsecond)).Problem(t, http.StatusNotFound)
	g := at(setUp)
	require.Equal(t, http.StatusOK, g.Status, "%s", g.Body)
	gj := g.JSON(t)
	require.Equal(t, "internal", gj["mode"])
	require.Nil(t, gj["external"])
	require.Equal(t, float64(domain.DefaultGALPollingIntervalSeconds), gj["effective_polling_interval_seconds"], "the global interval then")
	g = at(changed)
	gj = g.JSON(t)
	require.Equal(t, "both", gj["mode"])
	require.Equal(t, true, gj["external"].(map[string]any)["has_bind_password"])
	require.Equal(t, float64(7200), gj["effective_polling_interval_seconds"])
	require.Equal(t, `"2"`, g.Header.Get("ETag"))
	require.NotContains(t, string(g.Body), "gal-secret-123")
	require.NotContains(t, string(g.Body), "mpenc:")

	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, path, e.AdminToken, nil).Status)
	e.Do(t, http.MethodGet, path, e.AdminToken, nil).Problem(t, http.StatusNotFound)
	removed := recorded(domain.GALStreamID(dom), 3)
	require.Equal(t, "both", at(removed.Add(-time.Microsecond)).JSON(t)["mode"], "the last state, read after the removal")
	at(removed).Problem(t, http.StatusNotFound)
}
