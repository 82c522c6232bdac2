package ldap_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/projections/ldap"
	"mailplane/projections/ldap/ldaptest"
)

// Hundreds of directory transactions in a row (MAILPLANE_STRESS_TRANSACTIONS, default 300),
// one event each, and slapd is still up: back to back, slapd 2.5.13 crashed within a few
// hundred of them, often within 300, always within 1,000 (see Directory.Write).
func TestTransactionsInARowLeaveSlapdUp(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	// A slapd of its own: if this brings one down, it is not the one every other test uses.
	d := ldaptest.StartSlapd(t).Directory(t)
	b := &bundle{e: e, d: d, dit: ldap.DIT{Base: d.Base}, log: failureLog(t)}
	o := b.options(ldap.Config{URL: d.Env.URL, BindDN: d.Env.Admin.DN, Password: d.Env.Admin.Password, DIT: b.dit})
	o.BatchSize = 1
	b.run(t, o)
	dom := e.CreateDomain(t, nil)

	n := 300
	if v := os.Getenv("MAILPLANE_STRESS_TRANSACTIONS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err, "MAILPLANE_STRESS_TRANSACTIONS")
	}
	ctx := context.Background()
	req := commands.Request{Meta: eventstore.Metadata{Actor: "test"}}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for w := range errs {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				addr, err := domain.ParseAddress(fmt.Sprintf("t%04d@%s", i, dom))
				if err == nil {
					_, err = e.Commands.CreateAccount(ctx, req, domain.CreateAccount{Address: addr}, commands.Credentials{})
				}
				if err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	start := time.Now()
	b.caughtUp(t)
	t.Logf("the last of %d one-event transactions committed %s after the last command", n, time.Since(start).Round(time.Millisecond))
	res, err := d.Admin(t).SearchWithPaging(goldap.NewSearchRequest(d.Container(ldaptest.Accounts), goldap.ScopeSingleLevel,
		goldap.NeverDerefAliases, 0, 0, false, ldaptest.Eq("mailplaneDomain", dom), []string{"1.1"}, nil), 1000)
	require.NoError(t, err, "slapd is down")
	require.Len(t, res.Entries, n)
}
