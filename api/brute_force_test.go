package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/commands"
)

// clientFrom is an HTTP client whose connections leave from the loopback address ip: the API
// takes a login's source from the connection (it trusts no X-Forwarded-For), so addresses of
// 127.0.0.0/8 are as many distinct clients.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}, Timeout: 2 * time.Minute}
}

func loginFrom(t *testing.T, c *http.Client, e *apitest.Env, email, password string) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := c.Post(e.URL+loginPath, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if resp.StatusCode != http.StatusOK {
		require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), "%d %s", resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

// 1,000 wrong passwords against one account from five loopback addresses: each address is
// throttled (429) after a handful of tries, nothing is written, and the account's owner logs in
// from an address of its own afterwards. The limits are the defaults `mailplane serve` runs with.
func TestLoginBruteForceFromManyAddresses(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	const pw = "owner-password-1"
	addr := e.CreateAccount(t, dom, map[string]any{"password": pw})
	events := eventCount(t, e)

	attackers := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"}
	counts := map[string]map[int]int{}
	clients := map[string]*http.Client{}
	for _, ip := range attackers {
		counts[ip], clients[ip] = map[int]int{}, clientFrom(ip)
	}
	for i := range 1000 {
		ip := attackers[i%len(attackers)]
		status, p := loginFrom(t, clients[ip], e, addr, fmt.Sprintf("guess-%d", i))
		require.Contains(t, []int{http.StatusUnauthorized, http.StatusTooManyRequests}, status, "%v", p)
		counts[ip][status]++
	}
	limits := commands.DefaultLoginLimits
	for ip, c := range counts {
		// Each address had at most its per-account allowance of guesses; the rest were refused
		// before any password was checked.
		require.LessOrEqual(t, c[http.StatusUnauthorized], limits.PerAccount, ip)
		require.Equal(t, 200-c[http.StatusUnauthorized], c[http.StatusTooManyRequests], ip)
	}
	// Still throttled, even with the right password, from an address that guessed.
	status, _ := loginFrom(t, clients[attackers[0]], e, addr, pw)
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Equal(t, events, eventCount(t, e), "failed logins write no events")

	// The owner, from an address of its own, is not locked out by someone else's guessing.
	status, p := loginFrom(t, clientFrom("127.0.0.10"), e, addr, pw)
	require.Equal(t, http.StatusOK, status, "%v", p)
	require.NotEmpty(t, p["token"])
}

// A guesser spreading over many addresses is held to one guess per new address once the
// account has had AccountWide failures in the window: a botnet gets few guesses, and the
// owner still logs in from an address that has not failed.
func TestLoginRateLimitAccountWide(t *testing.T) {
	t.Parallel()
	limits := commands.LoginLimits{PerAccount: 3, PerIP: 10, AccountWide: 6, Window: time.Minute}
	e := apitest.NewWith(t, apitest.Options{LoginLimits: limits})
	dom := e.CreateDomain(t, nil)
	const pw = "owner-password-1"
	addr := e.CreateAccount(t, dom, map[string]any{"password": pw})

	// Two addresses use their three guesses each: six failures, the account-wide bound.
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		for range 3 {
			status, _ := loginFrom(t, clientFrom(ip), e, addr, "wrong")
			require.Equal(t, http.StatusUnauthorized, status)
		}
		status, _ := loginFrom(t, clientFrom(ip), e, addr, "wrong")
		require.Equal(t, http.StatusTooManyRequests, status, ip)
	}
	// Now a new address gets one guess, then waits.
	status, _ := loginFrom(t, clientFrom("127.0.0.4"), e, addr, "wrong")
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = loginFrom(t, clientFrom("127.0.0.4"), e, addr, pw)
	require.Equal(t, http.StatusTooManyRequests, status)
	// The owner from a clean address logs in.
	status, p := loginFrom(t, clientFrom("127.0.0.5"), e, addr, pw)
	require.Equal(t, http.StatusOK, status, "%v", p)
}
