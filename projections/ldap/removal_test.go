package ldap_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Removing a domain takes every entry of it out of the directory — accounts, lists, resources,
// the domain — and the aliases of other domains' accounts in it, while another domain's entries
// stay; Postfix then resolves none of its addresses.
func TestDomainRemovalEmptiesTheDirectory(t *testing.T) {
	b := setup(t)
	e := b.e
	dom := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	alice := e.CreateAccount(t, dom, map[string]any{"local_part": "alice", "password": "wonderland-1"})
	carol := e.CreateAccount(t, other, map[string]any{"local_part": "carol"})
	b.call(t, http.MethodPost, "/api/v1/accounts/"+alice+"/aliases", map[string]any{"alias": "al@" + other}, http.StatusCreated)
	b.call(t, http.MethodPost, "/api/v1/accounts/"+carol+"/aliases", map[string]any{"alias": "carol@" + dom}, http.StatusCreated)
	b.call(t, http.MethodPost, "/api/v1/domains/"+dom+"/lists", map[string]any{"address": "team@" + dom, "members": []string{alice, carol}}, http.StatusCreated)
	b.call(t, http.MethodPost, "/api/v1/domains/"+dom+"/lists", map[string]any{"address": "dyn@" + dom,
		"dynamic": map[string]any{"member_url": "ldap:///??sub?(mail=*)"}}, http.StatusCreated)
	b.call(t, http.MethodPost, "/api/v1/domains/"+dom+"/resources", map[string]any{"address": "room@" + dom, "type": "location"}, http.StatusCreated)
	b.caughtUp(t)
	aliases := b.d.Postmap(t, "virtual_alias_maps")
	expectTable(t, aliases, lookup{"al@" + other, alice}, lookup{"carol@" + dom, carol})
	require.NotEmpty(t, entriesOf(t, b, dom))

	r := b.call(t, http.MethodDelete, "/api/v1/domains/"+dom, nil, http.StatusAccepted)
	jobID := int64(r.JSON(t)["job"].(map[string]any)["id"].(float64))
	// No worker runs in this bundle: do the job's steps, one object each, as a worker would.
	for i := 0; ; i++ {
		require.Less(t, i, 50)
		p, err := e.Commands.RemoveDomainStep(context.Background(), dom, jobID, 1)
		require.NoError(t, err)
		if p.Finished {
			break
		}
	}
	b.caughtUp(t)

	require.Empty(t, entriesOf(t, b, dom), "no entry of the removed domain is left")
	require.Nil(t, b.entry(t, b.dit.Domain(dom)))
	c := b.entry(t, b.dit.Account(carol))
	require.NotNil(t, c, "the other domain's account stays")
	require.Empty(t, c.Get("mailLocalAddress"), "without its alias in the removed domain")
	expectTable(t, aliases, lookup{"al@" + other, ""}, lookup{"carol@" + dom, ""}, lookup{"team@" + dom, ""})
	expectTable(t, b.d.Postmap(t, "virtual_mailbox_maps"), lookup{alice, ""})
	mailboxOf(t, b, carol)
	require.Error(t, bind(t, b.d.Env.URL, b.dit.Account(alice), "wonderland-1"))

	// Created again, the name projects afresh.
	b.call(t, http.MethodPost, "/api/v1/domains", map[string]any{"name": dom}, http.StatusCreated)
	again := e.CreateAccount(t, dom, map[string]any{"local_part": "alice", "password": "wonderland-2"})
	b.caughtUp(t)
	require.NotNil(t, b.entry(t, b.dit.Account(again)))
	require.NoError(t, bind(t, b.d.Env.URL, b.dit.Account(again), "wonderland-2"))
}

// entriesOf returns the DNs of every entry that names the domain.
func entriesOf(t *testing.T, b *bundle, dom string) []string {
	t.Helper()
	var out []string
	for _, en := range b.d.Dump(t, b.d.Admin(t), b.d.Base) {
		if strings.Contains(strings.ToLower(en.DN), strings.ToLower(dom)) || containsValue(en.Get("mailplaneDomain"), dom) {
			out = append(out, en.DN)
		}
	}
	return out
}

func containsValue(vs []string, v string) bool {
	for _, x := range vs {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// mailboxOf requires that virtual_mailbox_maps still knows an account of another domain.
func mailboxOf(t *testing.T, b *bundle, addr string) {
	t.Helper()
	_, found, err := b.d.Postmap(t, "virtual_mailbox_maps").Query(addr)
	require.NoError(t, err)
	require.True(t, found, "%s still has a mailbox", addr)
}
