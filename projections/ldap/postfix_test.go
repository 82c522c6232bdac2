package ldap_test

import (
	"net/http"
	"testing"

	"mailplane/api/apitest"
)

const (
	deferred = "DEFER 4.2.1 mailbox temporarily unavailable"
	retry    = "retry:4.2.1 mailbox temporarily unavailable"
)

// Postfix, through its own LDAP client and the tables of docs/postfix, finds in the projected
// directory what the API made: hosted domains, mailboxes and their maildirs, aliases; a
// deleted alias and a closed domain stop resolving; maintenance defers; a locked account still
// receives mail (domain.Account.MailDelivery).
func TestPostfixReadsTheProjectedDirectory(t *testing.T) {
	b := setup(t)
	e := b.e
	dom := e.CreateDomain(t, nil)
	alice := e.CreateAccount(t, dom, map[string]any{"local_part": "alice", "display_name": "Alice"})
	dave := e.CreateAccount(t, dom, map[string]any{"local_part": "dave", "status": "locked"})
	carol := e.CreateAccount(t, dom, map[string]any{"local_part": "carol"})
	al, gone := "al@"+dom, "gone@"+dom
	for _, alias := range []string{al, gone} {
		b.call(t, http.MethodPost, "/api/v1/accounts/"+alice+"/aliases", map[string]any{"alias": alias}, http.StatusCreated)
	}
	b.call(t, http.MethodPost, "/api/v1/accounts/"+carol+"/aliases", map[string]any{"alias": "caro@" + dom}, http.StatusCreated)
	closing := e.CreateDomain(t, nil)
	cliff := e.CreateAccount(t, closing, map[string]any{"local_part": "cliff"})
	b.call(t, http.MethodPost, "/api/v1/accounts/"+cliff+"/aliases", map[string]any{"alias": "cl@" + closing}, http.StatusCreated)
	maint := e.CreateDomain(t, map[string]any{"status": "maintenance"})
	mona := e.CreateAccount(t, maint, map[string]any{"local_part": "mona"})
	b.caughtUp(t)

	domains := b.d.Postmap(t, "virtual_mailbox_domains")
	mailboxes := b.d.Postmap(t, "virtual_mailbox_maps")
	aliases := b.d.Postmap(t, "virtual_alias_maps")
	access := b.d.Postmap(t, "recipient_access")
	transport := b.d.Postmap(t, "transport_maps")
	other := apitest.Unique("nx") + ".example"

	expectTable(t, domains, lookup{dom, dom}, lookup{closing, closing}, lookup{maint, maint}, lookup{other, ""},
		lookup{"*", ""}, lookup{"*.example", ""})
	expectTable(t, mailboxes,
		lookup{alice, dom + "/alice/"},
		lookup{dave, dom + "/dave/"}, // locked: no login, but its mail arrives
		lookup{carol, dom + "/carol/"},
		lookup{cliff, closing + "/cliff/"},
		lookup{mona, ""}, // its domain defers: recipient_access answers first
		lookup{al, ""},   // an alias is no mailbox
		lookup{"nobody@" + dom, ""}, lookup{"*@" + dom, ""}, lookup{"a*@" + dom, ""})
	expectTable(t, aliases,
		lookup{al, alice}, lookup{gone, alice}, lookup{"caro@" + dom, carol}, lookup{"cl@" + closing, cliff},
		lookup{alice, ""}, lookup{"*@" + dom, ""})
	expectTable(t, access, lookup{maint, deferred}, lookup{mona, deferred}, lookup{alice, ""}, lookup{dave, ""},
		lookup{dom, ""}, lookup{carol, ""})
	expectTable(t, transport, lookup{maint, retry}, lookup{mona, retry}, lookup{alice, ""}, lookup{dom, ""})

	// A deleted alias stops resolving; a closed domain's mailboxes and aliases go; an account
	// in maintenance is deferred (its address and its alias), and resolves again once active.
	b.call(t, http.MethodDelete, "/api/v1/accounts/"+alice+"/aliases/"+gone, nil, http.StatusNoContent)
	b.call(t, http.MethodPost, "/api/v1/domains/"+closing+"/close", nil, http.StatusOK)
	b.call(t, http.MethodPatch, "/api/v1/accounts/"+carol, map[string]any{"status": "maintenance"}, http.StatusOK)
	b.caughtUp(t)
	expectTable(t, aliases, lookup{gone, ""}, lookup{al, alice}, lookup{"cl@" + closing, ""}, lookup{"caro@" + dom, carol})
	expectTable(t, mailboxes, lookup{cliff, ""}, lookup{carol, ""}, lookup{alice, dom + "/alice/"})
	// A closed domain is still ours (no "relay access denied"), but its mail bounces.
	expectTable(t, domains, lookup{closing, closing})
	expectTable(t, access, lookup{carol, deferred}, lookup{"caro@" + dom, deferred}, lookup{cliff, ""}, lookup{closing, ""},
		lookup{alice, ""})
	expectTable(t, transport, lookup{carol, retry}, lookup{cliff, ""})

	b.call(t, http.MethodPatch, "/api/v1/accounts/"+carol, map[string]any{"status": "active"}, http.StatusOK)
	b.call(t, http.MethodPatch, "/api/v1/domains/"+maint, map[string]any{"status": "active"}, http.StatusOK)
	// A locked domain still receives mail, like a locked account.
	b.call(t, http.MethodPatch, "/api/v1/domains/"+dom, map[string]any{"status": "locked"}, http.StatusOK)
	b.caughtUp(t)
	expectTable(t, mailboxes, lookup{carol, dom + "/carol/"}, lookup{mona, maint + "/mona/"}, lookup{alice, dom + "/alice/"})
	expectTable(t, access, lookup{carol, ""}, lookup{mona, ""}, lookup{maint, ""})
	expectTable(t, aliases, lookup{al, alice})

	// A deleted account's mailbox and aliases go.
	b.call(t, http.MethodDelete, "/api/v1/accounts/"+alice, nil, http.StatusNoContent)
	b.caughtUp(t)
	expectTable(t, mailboxes, lookup{alice, ""}, lookup{dave, dom + "/dave/"})
	expectTable(t, aliases, lookup{al, ""})
}
