package ldap_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/projections"
	"mailplane/projections/ldap"
	"mailplane/projections/ldap/ldaptest"
)

// BenchmarkListOf10000Members: a list gets 10,000 members in one request (one event), is read
// back (GET of the list, which counts its members), reaches the directory, and Postfix expands it (postmap -q over docs/postfix's
// virtual_alias_maps). Each iteration is a new list. Reported per step in milliseconds, beside
// postmap -q of a one-member list as the reader's own cost. Issue 8's benchmark:
//
//	go test ./projections/ldap -run '^$' -bench ListOf10000Members -benchtime 5x
func BenchmarkListOf10000Members(b *testing.B) {
	e := apitest.New(b)
	d := ldaptest.New(b)
	dit := ldap.DIT{Base: d.Base}
	p, err := ldap.New(ldap.Options{Directory: ldap.Config{URL: d.Env.URL, BindDN: d.Env.Admin.DN, Password: d.Env.Admin.Password, DIT: dit},
		Pool: e.Pool, Registry: e.Registry, Keyring: e.Keyring, Logger: quiet(), LockRetry: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })

	dom := e.CreateDomain(b, nil)
	members := make([]string, 10000)
	for i := range members {
		members[i] = fmt.Sprintf("member%05d@outside.example", i)
	}
	call := func(method, path string, body any, status int) apitest.Response {
		r := e.Do(b, method, path, e.AdminToken, body)
		require.Equal(b, status, r.Status, "%s %s: %.300s", method, path, r.Body)
		return r
	}
	caughtUp := func() {
		head, err := e.Store.Head(context.Background())
		require.NoError(b, err)
		wctx, c := context.WithTimeout(context.Background(), 2*time.Minute)
		defer c()
		require.NoError(b, projections.NewWaiter(e.Pool, time.Millisecond, ldap.Name).Wait(wctx, head))
	}
	aliases := d.Postmap(b, "virtual_alias_maps")
	small := "small@" + dom
	call(http.MethodPost, "/api/v1/domains/"+dom+"/lists", map[string]any{"address": small, "members": []string{members[0]}}, http.StatusCreated)
	caughtUp()

	var post, read, project, expand, expandSmall time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		list := fmt.Sprintf("big%d@%s", i, dom)
		call(http.MethodPost, "/api/v1/domains/"+dom+"/lists", map[string]any{"address": list}, http.StatusCreated)
		caughtUp()
		b.StartTimer()

		t0 := time.Now()
		call(http.MethodPost, "/api/v1/lists/"+list+"/members", map[string]any{"members": members}, http.StatusOK)
		t1 := time.Now()
		got := call(http.MethodGet, "/api/v1/lists/"+list, nil, http.StatusOK).JSON(b)
		t2 := time.Now()
		caughtUp()
		t3 := time.Now()
		v, found, err := aliases.Query(list)
		t4 := time.Now()
		require.NoError(b, err)
		require.True(b, found)
		_, _, err = aliases.Query(small)
		t5 := time.Now()
		require.NoError(b, err)

		b.StopTimer()
		require.Equal(b, float64(len(members)), got["member_count"], "the read counts every member")
		require.Equal(b, len(members), strings.Count(v, ",")+1, "Postfix expands to every member")
		post += t1.Sub(t0)
		read += t2.Sub(t1)
		project += t3.Sub(t1) // from the POST's answer: the directory fills while the read waits
		expand += t4.Sub(t3)
		expandSmall += t5.Sub(t4)
		b.StartTimer()
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(post), "post-ms")
	b.ReportMetric(ms(read), "read-ms")
	b.ReportMetric(ms(project), "ldap-ms")
	b.ReportMetric(ms(expand), "postmap-ms")
	b.ReportMetric(ms(expandSmall), "postmap-1-member-ms")
	b.ReportMetric(0, "ns/op")
}
