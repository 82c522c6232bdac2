package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/migrations/testdb"
	"mailplane/projections/ldap/ldaptest"
)

// serve wires everything: migrations, projections, River, the API with /healthz, /readyz and
// /metrics; and it stops cleanly when its context ends.
func TestServeRunsAndStops(t *testing.T) {
	url := testdb.NewURL(t)
	t.Setenv("DATABASE_URL", url)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	require.NoError(t, os.WriteFile(keyFile, key, 0o600))
	t.Setenv("MAILPLANE_MASTER_KEY_FILE", keyFile)
	t.Setenv("MAILPLANE_POLICY_ADDR", "127.0.0.1:0")
	// The LDAP projection writes a base of the test's own, not the dev stack's suffix.
	dir := ldaptest.New(t)
	t.Setenv("MAILPLANE_LDAP_BASE_DN", dir.Base)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var stderr bytes.Buffer
	go func() { done <- run(ctx, []string{"serve", "--addr", addr}, io.Discard, &syncWriter{buf: &stderr}) }()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	require.Eventually(t, func() bool { code, _ := get("/healthz"); return code == http.StatusOK }, 30*time.Second, 50*time.Millisecond)

	var code int
	var body string
	require.Eventually(t, func() bool { code, body = get("/readyz"); return code == http.StatusOK }, 30*time.Second, 50*time.Millisecond, body)
	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &ready))
	require.Equal(t, "ready", ready.Status)
	require.Equal(t, "ok", ready.Checks["migrations"])
	require.Contains(t, ready.Checks, "projection postgres.admin")
	require.Contains(t, ready.Checks, "projection ldap")

	code, body = get("/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "mailplane_projection_active")
	// The directory's projection too: which process holds it is what a failover is watched by.
	require.Contains(t, body, `mailplane_projection_active{projection="ldap"}`)
	require.Contains(t, body, "go_goroutines")

	code, body = get("/api/v1/domains")
	require.Equal(t, http.StatusUnauthorized, code)
	require.True(t, strings.Contains(body, "unauthenticated"), body)

	// The admin panel is served beside the API (http.Get follows / to /domains to /login).
	code, body = get("/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `<form method="post" action="/login"`)

	cancel()
	select {
	case c := <-done:
		require.Equal(t, 0, c, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}
