package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

// acmeIP is where this package's HTTP-01 listener binds: the api package's tests, which may run
// at the same time, hold the stack's HTTP-01 port on 127.0.0.1, and Pebble dials the address a
// host's A record names.
const acmeIP = "127.0.0.3"

// TestPanelACME requests Let's Encrypt certificates (the stack's Pebble, real HTTP-01) with the
// long and the short chain from the Virtual hosts section, follows each issuance job to its
// end and sees the certificate valid, with its issuer, expiry and renewal due date.
func TestPanelACME(t *testing.T) {
	t.Parallel()
	e, base := panelWith(t, func(o *apitest.Options) { o.Workers = &apitest.Workers{HTTP01IP: acmeIP} })
	dom := e.CreateDomain(t, nil)
	ctx := tab(t, 10*time.Minute)
	signIn(t, ctx, base)
	hostsPath := "/domains/" + dom + "/virtual-hosts"
	for _, tc := range []struct{ host, chain string }{{"mail." + dom, "long"}, {"webmail." + dom, "short"}} {
		apitest.SetA(t, tc.host, acmeIP)
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+hostsPath)))
		waitPath(t, ctx, hostsPath)
		require.NoError(t, chromedp.Do(ctx,
			setField("f-host", tc.host),
			chromedp.Click(chromedp.CSS(`form[action$="/virtual-hosts"] button`)),
		))
		waitText(t, ctx, ".flash", "Virtual host added.")
		row := `#host-` + strings.ReplaceAll(tc.host, ".", `\.`)
		require.Contains(t, text(t, ctx, row), "none", "no certificate yet")
		if tc.chain == "long" {
			axe(t, ctx, "virtual-hosts")
		}
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+` button[value=`+tc.chain+`]`))))
		// The job's page shows its progress (it refreshes itself) until the job ends.
		waitText(t, ctx, "h1", "issue_certificate")
		if tc.chain == "long" {
			axe(t, ctx, "certificate-job")
		}
		require.Equal(t, "succeeded", waitJobEnd(t, ctx, base), "%s", text(t, ctx, "main"))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+hostsPath)))
		waitText(t, ctx, row, "valid")
		cells := text(t, ctx, row)
		require.Contains(t, cells, "Pebble Intermediate CA")
		require.Contains(t, cells, "acme")
		c := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/virtual-hosts/"+tc.host+"/certificate", e.AdminToken, nil).JSON(t)
		require.Equal(t, "valid", c["status"])
		for _, k := range []string{"not_after", "renewal_due_at"} {
			ts, err := time.Parse(time.RFC3339Nano, c[k].(string))
			require.NoError(t, err)
			require.Contains(t, cells, ts.UTC().Format("2006-01-02 15:04 UTC"), "the page shows %s", k)
		}
	}
	axe(t, ctx, "virtual-hosts-acme")
	narrow(t, ctx, base+hostsPath, "virtual-hosts-narrow")
}

// TestPanelACMEPending: with no worker to run it, a requested certificate stays pending: the
// host's row shows the pending issuance, and asking again shows the API's refusal.
func TestPanelACMEPending(t *testing.T) {
	t.Parallel()
	e, base := panelWith(t, func(o *apitest.Options) { o.Workers = nil })
	dom := e.CreateDomain(t, nil)
	host := "mail." + dom
	r := e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/virtual-hosts", e.AdminToken, map[string]any{"host": host})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	ctx := tab(t, 5*time.Minute)
	signIn(t, ctx, base)
	hostsPath := "/domains/" + dom + "/virtual-hosts"
	row := `#host-` + strings.ReplaceAll(host, ".", `\.`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+hostsPath)))
	waitText(t, ctx, row, "none")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+` button[value=short]`))))
	waitText(t, ctx, "#job-state", "queued")
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+hostsPath)))
	waitText(t, ctx, row+" .pending", "Issuance pending: short chain")
	axe(t, ctx, "virtual-hosts-pending")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+` button[value=long]`))))
	waitText(t, ctx, "#problem", "being issued")
	require.Contains(t, text(t, ctx, row), "Issuance pending", "the refused page still lists the hosts")
}
