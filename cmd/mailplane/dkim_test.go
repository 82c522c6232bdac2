package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// dkim render writes the active key of each domain as OpenDKIM's files; run again unchanged it
// reports nothing and runs no reload; after a rotation it renders the new key and reloads.
func TestDKIMRender(t *testing.T) {
	s := startServe(t)
	_, errOut, rc := s.cli(t, "admin", "bootstrap", "--email", "root@cli-dkim.example", "--password", "root-password-1")
	require.Equal(t, 0, rc, errOut)
	post := func(token, path string, body any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		req, err := http.NewRequest(http.MethodPost, "http://"+s.addr+path, bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		require.Less(t, resp.StatusCode, 300, "%v", out)
		return out
	}
	token := post("", "/api/v1/auth/login", map[string]any{"email": "root@cli-dkim.example", "password": "root-password-1"})["token"].(string)
	post(token, "/api/v1/domains", map[string]any{"name": "signed.example"})
	post(token, "/api/v1/domains/signed.example/dkim", map[string]any{"selector": "one", "algorithm": "ed25519"})

	dir := filepath.Join(t.TempDir(), "opendkim")
	marker := filepath.Join(t.TempDir(), "reloaded")
	reload := "echo x >> " + marker
	out, errOut, rc := s.cli(t, "dkim", "render", "--dir", dir, "--reload", reload)
	require.Equal(t, 0, rc, errOut)
	require.Contains(t, out, "rendered 1 keys")
	kt, err := os.ReadFile(filepath.Join(dir, "KeyTable"))
	require.NoError(t, err)
	require.Equal(t, "one._domainkey.signed.example signed.example:one:"+filepath.Join(dir, "keys", "signed.example", "one.private")+"\n", string(kt))
	key, err := os.ReadFile(filepath.Join(dir, "keys", "signed.example", "one.private"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(key), "-----BEGIN PRIVATE KEY-----"))

	out, _, rc = s.cli(t, "dkim", "render", "--dir", dir, "--reload", reload)
	require.Equal(t, 0, rc)
	require.Empty(t, out)
	post(token, "/api/v1/domains/signed.example/dkim/rotate", map[string]any{"selector": "two", "algorithm": "rsa"})
	_, errOut, rc = s.cli(t, "dkim", "render", "--dir", dir, "--reload", reload)
	require.Equal(t, 0, rc, errOut)
	st, err := os.ReadFile(filepath.Join(dir, "SigningTable"))
	require.NoError(t, err)
	require.Equal(t, "*@signed.example two._domainkey.signed.example\n", string(st))
	reloads, err := os.ReadFile(marker)
	require.NoError(t, err)
	require.Equal(t, "x\nx\n", string(reloads), "a reload after each render that changed something")

	_, _, rc = s.cli(t, "dkim", "render")
	require.Equal(t, 2, rc)
}
