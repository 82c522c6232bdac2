package ldap_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// parallel sends the requests from several goroutines and requires each to answer its status.
func (b *bundle) parallel(t *testing.T, requests []request, status int) {
	t.Helper()
	var next atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(requests) {
					return
				}
				r := requests[i]
				resp := b.e.Do(t, r.method, r.path, b.e.AdminToken, r.body)
				if resp.Status != status {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s %s: %d %s", r.method, r.path, resp.Status, resp.Body))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	require.Empty(t, failures)
}

// With Postfix and Dovecot reading a syncrepl consumer (DESIGN.md §8, docs/directory.md),
// 1,000 commands through the API (creations, changes, aliases, deletions) reach the consumer
// whole: its tree equals the provider's, and every Postfix table answers every key the same
// there as on the provider.
func TestReadersOnTheConsumerSeeWhatTheProviderHas(t *testing.T) {
	b := setup(t)
	r := b.d.Replica(t)
	const accounts = 500
	var doms []string
	for range 5 {
		doms = append(doms, b.e.CreateDomain(t, nil))
	}
	addr := func(i int) string { return fmt.Sprintf("u%03d@%s", i, doms[i%len(doms)]) }
	alias := func(i int) string { return fmt.Sprintf("a%03d@%s", i, doms[i%len(doms)]) }
	password := func(i int) string { return fmt.Sprintf("password-%03d-x", i) }

	start := time.Now()
	var creates, changes, deletes []request
	for i := range accounts {
		body := map[string]any{"local_part": fmt.Sprintf("u%03d", i), "display_name": fmt.Sprintf("User %d", i)}
		if i%10 == 0 {
			body["password"] = password(i)
		}
		creates = append(creates, request{http.MethodPost, "/api/v1/domains/" + doms[i%len(doms)] + "/accounts", body})
	}
	statuses := []string{"active", "locked", "maintenance", "closed"}
	for i := range 200 {
		changes = append(changes,
			request{http.MethodPatch, "/api/v1/accounts/" + addr(i), map[string]any{"display_name": fmt.Sprintf("Renamed %d", i),
				"status": statuses[i%len(statuses)]}},
			request{http.MethodPost, "/api/v1/accounts/" + addr(200+i) + "/aliases", map[string]any{"alias": alias(i)}})
	}
	for i := 405; i < accounts; i++ {
		deletes = append(deletes, request{http.MethodDelete, "/api/v1/accounts/" + addr(i), nil})
	}
	require.Equal(t, 1000, len(doms)+len(creates)+len(changes)+len(deletes))
	b.parallel(t, creates, http.StatusCreated)
	var patches, aliases []request
	for _, c := range changes {
		if c.method == http.MethodPatch {
			patches = append(patches, c)
		} else {
			aliases = append(aliases, c)
		}
	}
	b.parallel(t, patches, http.StatusOK)
	b.parallel(t, aliases, http.StatusCreated)
	b.parallel(t, deletes, http.StatusNoContent)
	sent := time.Now()
	t.Logf("1,000 commands through the API in %s", sent.Sub(start).Round(time.Millisecond))

	b.caughtUp(t)
	projected := time.Now()
	provider := b.d.Dump(t, b.d.Admin(t), b.d.Base)
	consumer := r.Dial(t, r.URL, b.d.Env.Admin)
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := b.d.Dump(t, consumer, b.d.Base)
		if len(got) == len(provider) && fmt.Sprint(got) == fmt.Sprint(provider) {
			break
		}
		if time.Now().After(deadline) {
			require.Equal(t, provider, got, "the consumer after 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the projection caught up %s after the last command; the consumer held the same tree %s after that",
		projected.Sub(sent).Round(time.Millisecond), time.Since(projected).Round(time.Millisecond))
	require.Equal(t, provider, b.d.Dump(t, consumer, b.d.Base))
	// The base, its containers and the four keepers, the domains and accounts (the bootstrapped
	// admin's too), the checkpoint.
	require.Equal(t, 1+5+4+len(doms)+1+accounts-len(deletes)+1+1, len(provider))

	// Every table, every key, both directories.
	var keys []string
	for i := range accounts {
		keys = append(keys, addr(i), alias(i))
	}
	keys = append(keys, doms...)
	answers := map[string]map[string]string{}
	for _, table := range []string{"virtual_mailbox_domains", "virtual_mailbox_maps", "virtual_alias_maps", "recipient_access", "transport_maps"} {
		onProvider, err := b.d.Postmap(t, table).QueryAll(keys...)
		require.NoError(t, err)
		onConsumer, err := r.Postmap(t, table).QueryAll(keys...)
		require.NoError(t, err)
		require.Equal(t, onProvider, onConsumer, table)
		answers[table] = onConsumer
	}
	// And they are the right answers.
	for i := range accounts {
		a := addr(i)
		mailbox, isMailbox := answers["virtual_mailbox_maps"][a]
		_, deferred := answers["recipient_access"][a]
		switch {
		case i >= 405:
			require.False(t, isMailbox, "%s was deleted", a)
		case i < 200 && statuses[i%4] == "maintenance":
			require.True(t, deferred, "%s is in maintenance", a)
			require.False(t, isMailbox, a)
		case i < 200 && statuses[i%4] == "closed":
			require.False(t, isMailbox, "%s is closed", a)
		default:
			require.Equal(t, doms[i%len(doms)]+"/"+fmt.Sprintf("u%03d", i)+"/", mailbox, a)
			require.False(t, deferred, a)
		}
		if i < 200 {
			require.Equal(t, addr(200+i), answers["virtual_alias_maps"][alias(i)], alias(i))
		}
	}
	require.Len(t, answers["virtual_mailbox_domains"], len(doms))

	// Logins on the consumer: its userPassword values are the provider's.
	dv := r.Dovecot(t)
	expectAuth(t, dv,
		authCase{addr(210), password(210), true},
		authCase{addr(220), password(220), true},
		authCase{addr(210), password(220), false},
		authCase{addr(0), password(0), true},    // renamed, still active
		authCase{addr(10), password(10), false}, // 10 % 4 == 2: maintenance, no login
		authCase{addr(410), password(410), false})
}
