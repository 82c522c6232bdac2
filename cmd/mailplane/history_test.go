package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// An export taken through the API and the CLI is checked on "another machine": no database,
// no master key, only the file, the auditor's copy of the anchors and the audit key. Then
// each kind of tampering with a copy is named.
func TestHistoryExportVerifiesOffline(t *testing.T) {
	ctx := context.Background()
	c := newCLI(t)
	dir := t.TempDir()
	masterFile := filepath.Join(dir, "master.key")
	require.NoError(t, os.WriteFile(masterFile, []byte(hex.EncodeToString(c.api.MasterKey)), 0o600))
	t.Setenv("MAILPLANE_MASTER_KEY_FILE", masterFile)
	t.Setenv("DATABASE_URL", c.api.Pool.Config().ConnString())

	dom := c.api.CreateDomain(t, map[string]any{"auth": map[string]any{"mechanism": "ldap", "ldap_url": "ldap://127.0.0.1:1",
		"bind_dn": "cn=reader,dc=x", "bind_password": "bind-secret-123", "search_base": "dc=x"}})
	addr := c.api.CreateAccount(t, dom, map[string]any{"password": "account-secret-123", "display_name": "First"})
	require.Equal(t, http.StatusOK, c.api.Do(t, http.MethodPatch, "/api/v1/accounts/"+addr, c.api.AdminToken,
		map[string]any{"display_name": "Second"}).Status)
	require.Equal(t, http.StatusOK, c.api.Do(t, http.MethodPatch, "/api/v1/accounts/"+addr, c.api.AdminToken,
		map[string]any{"display_name": "Third"}).Status)
	other := c.api.CreateDomain(t, nil)
	c.api.CreateAccount(t, other, nil)
	// An anchor stops before any transaction in flight (another test's too): record until one
	// covers everything written so far.
	head, err := c.api.Store.Head(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		a, ok, err := c.api.Anchors.Record(ctx)
		require.NoError(t, err)
		return ok && !a.Position.Less(head)
	}, 30*time.Second, 10*time.Millisecond)
	// After the anchor: vouched for by the chain alone.
	require.Equal(t, http.StatusOK, c.api.Do(t, http.MethodPatch, "/api/v1/accounts/"+addr, c.api.AdminToken,
		map[string]any{"display_name": "Fourth"}).Status)

	// Without --format, the history as domain history lists it.
	r := c.run(t, "history", dom, "--type", "AccountUpdated").ok(t)
	require.Equal(t, []string{"POSITION", "RECORDED", "STREAM", "VERSION", "TYPE", "ACTOR", "SESSION"}, r.rows()[0])
	require.Len(t, r.rows(), 4, r.stdout)
	require.Equal(t, "AccountUpdated", r.rows()[1][4])
	j := c.run(t, "history", "--format", "json", dom).ok(t).json(t)
	require.Len(t, j["items"], 5)
	c.run(t, "history", dom, "--format", "xml").fails(t, 2)

	exportFile := filepath.Join(dir, "export.jsonl")
	c.run(t, "history", dom, "--format", "jsonl", "--out", exportFile).ok(t)
	c.run(t, "anchors", "export", "--out", filepath.Join(dir, "anchors.jsonl")).ok(t)
	c.run(t, "audit-key", "--out", filepath.Join(dir, "audit.key")).ok(t)
	key, err := os.ReadFile(filepath.Join(dir, "audit.key"))
	require.NoError(t, err)
	require.Contains(t, string(key), `"anchor_public_key": "`+hex.EncodeToString(c.api.Anchors.PublicKey())+`"`,
		"the key the installation signs anchors with")
	require.NotContains(t, string(key), hex.EncodeToString(c.api.MasterKey))
	export, err := os.ReadFile(exportFile)
	require.NoError(t, err)
	require.NotContains(t, string(export), "bind-secret-123")
	require.NotContains(t, string(export), "account-secret-123")
	require.Contains(t, string(export), `"bind_password_secret":"mpenc:`, "sealed secrets stay sealed, as hashed")
	lines := strings.Split(strings.TrimRight(string(export), "\n"), "\n")
	for _, l := range lines {
		if strings.Contains(l, `"kind":"event"`) {
			// The anchors name the other domain's streams they signed (their heads digest is
			// over all of them), but no event of it is exported.
			require.NotContains(t, l, other, "only the domain's own events")
		}
	}
	require.Contains(t, lines[0], `"kind":"export"`)
	require.Contains(t, lines[len(lines)-1], `"kind":"end"`)
	// DomainCreated, AccountCreated, three AccountUpdated; then the anchors.
	require.Contains(t, lines[1+5], `"kind":"anchor"`)
	require.Contains(t, lines[len(lines)-2], `"kind":"anchor"`)

	// The auditor's machine: nothing but the three files.
	auditor := t.TempDir()
	for _, f := range []string{"export.jsonl", "anchors.jsonl", "audit.key"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(auditor, f), b, 0o600))
	}
	t.Setenv("DATABASE_URL", "postgres://127.0.0.1:1/nowhere")
	t.Setenv("MAILPLANE_MASTER_KEY_FILE", filepath.Join(auditor, "no-such-master.key"))
	keyFile, anchors := filepath.Join(auditor, "audit.key"), filepath.Join(auditor, "anchors.jsonl")
	verifyCopy := func(t *testing.T, content string) result {
		t.Helper()
		f := filepath.Join(t.TempDir(), "copy.jsonl")
		require.NoError(t, os.WriteFile(f, []byte(content), 0o600))
		return c.run(t, "verify-export", f, "--anchors", anchors, "--audit-key", keyFile)
	}
	joined := func(ls []string) string { return strings.Join(ls, "\n") + "\n" }

	r = verifyCopy(t, string(export)).ok(t)
	require.Contains(t, r.stdout, "5 events in 2 streams")
	require.Regexp(t, `\d+ anchors \(key`, r.stdout)
	require.Contains(t, r.stdout, "pin 4 events; 1 after the last anchor")
	require.Contains(t, r.stdout, "the export holds")
	require.NotContains(t, r.stdout, "WARNING")
	require.Contains(t, lines[len(lines)-1], `"signature":"`)

	lineOf := func(sub string) int {
		for i, l := range lines {
			if strings.Contains(l, sub) {
				return i
			}
		}
		t.Fatalf("no line with %q", sub)
		return 0
	}
	failsWith := func(t *testing.T, content string, want ...string) {
		t.Helper()
		r := verifyCopy(t, content)
		require.Equal(t, 1, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
		for _, w := range want {
			require.Contains(t, r.stdout, w)
		}
		require.NotContains(t, r.stdout, "the export holds")
	}

	t.Run("OneByteChanged", func(t *testing.T) {
		i := lineOf(`"display_name":"Second"`)
		changed := strings.Replace(string(export), `"display_name":"Second"`, `"display_name":"Secone"`, 1)
		require.Equal(t, 1, bytesDiffer(export, []byte(changed)))
		failsWith(t, changed, "FAILED: line "+strconv.Itoa(i+1)+": content: stream account-"+addr+" version 2: does not match its hash")
	})
	t.Run("OneByteChangedInAHash", func(t *testing.T) {
		i := lineOf(`"display_name":"Third"`)
		ls := append([]string(nil), lines...)
		at := strings.Index(ls[i], `"hash":"`) + len(`"hash":"`)
		b := []byte(ls[i])
		if b[at] == '0' {
			b[at] = '1'
		} else {
			b[at] = '0'
		}
		ls[i] = string(b)
		failsWith(t, joined(ls), "line "+strconv.Itoa(i+1)+": content: stream account-"+addr+" version 3")
	})
	t.Run("OneByteChangedInAPosition", func(t *testing.T) {
		// No chain covers positions; the signed end line does.
		// Version 3 of the account moves one position on, still before the next line.
		i := lineOf(`"display_name":"Third"`)
		var ev struct{ Position int64 }
		require.NoError(t, json.Unmarshal([]byte(lines[i]), &ev))
		ls := append([]string(nil), lines...)
		ls[i] = strings.Replace(ls[i], fmt.Sprintf(`"position":%d,`, ev.Position), fmt.Sprintf(`"position":%d,`, ev.Position+1), 1)
		require.NotEqual(t, lines[i], ls[i])
		r := verifyCopy(t, joined(ls))
		require.Equal(t, 1, r.code, r.stdout)
		require.Contains(t, r.stdout, "FAILED: line "+strconv.Itoa(len(lines))+": end-digest: the lines before the end line are not the ones the server signed")
		require.Contains(t, r.stdout, "1 finding(s)", "nothing else notices")
	})
	t.Run("EndLineForged", func(t *testing.T) {
		ls := append([]string(nil), lines...)
		ls[len(ls)-1] = strings.Replace(ls[len(ls)-1], `"events":5`, `"events":6`, 1)
		failsWith(t, joined(ls), "end-signature")
	})
	t.Run("LineRemoved", func(t *testing.T) {
		i := lineOf(`"display_name":"Second"`)
		ls := append(append([]string(nil), lines[:i]...), lines[i+1:]...)
		failsWith(t, joined(ls), "missing: stream account-"+addr+" version 3: expected version 2",
			"end: the end line counts 5 events, the file holds 4")
	})
	t.Run("AnchoredStreamRemoved", func(t *testing.T) {
		// The domain's only event, and the end line made to agree: the anchor still names it.
		i := lineOf(`"type":"DomainCreated"`)
		ls := append(append([]string(nil), lines[:i]...), lines[i+1:]...)
		ls[len(ls)-1] = strings.Replace(ls[len(ls)-1], `"events":5`, `"events":4`, 1)
		failsWith(t, joined(ls), "anchored-event-missing: anchor ", " signed stream domain-"+dom+" at version 1; the export does not hold that event")
	})
	t.Run("TailCut", func(t *testing.T) {
		// The last anchored event of the account and everything after it, end line adjusted.
		i := lineOf(`"display_name":"Third"`)
		ls := append(append([]string(nil), lines[:i]...), lines[i+2:]...)
		ls[len(ls)-1] = strings.Replace(ls[len(ls)-1], `"events":5`, `"events":3`, 1)
		failsWith(t, joined(ls), "anchored-event-missing: anchor ", " signed stream account-"+addr+" at version 3; the export does not hold that event")
	})
	t.Run("LinesReordered", func(t *testing.T) {
		i := lineOf(`"type":"DomainCreated"`)
		ls := append([]string(nil), lines...)
		ls[i], ls[i+1] = ls[i+1], ls[i]
		failsWith(t, joined(ls), "order: position")
	})
	t.Run("AnchorAltered", func(t *testing.T) {
		i := len(lines) - 2
		ls := append([]string(nil), lines...)
		ls[i] = regexp.MustCompile(`"seq":\d+`).ReplaceAllString(ls[i], `"seq":999`)
		failsWith(t, joined(ls), "anchor-unknown: anchor 999 is not in the given copy")
	})
	t.Run("WrongKey", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other.key")
		require.NoError(t, os.WriteFile(other, []byte(`{"chain_key":"`+strings.Repeat("ab", 32)+`","anchor_public_key":"`+strings.Repeat("cd", 32)+`"}`), 0o600))
		f := filepath.Join(t.TempDir(), "copy.jsonl")
		require.NoError(t, os.WriteFile(f, export, 0o600))
		r := c.run(t, "verify-export", f, "--anchors", anchors, "--audit-key", other)
		require.Equal(t, 1, r.code, r.stdout)
		require.Contains(t, r.stdout, "content: stream domain-"+dom+" version 1")
		require.Contains(t, r.stdout, "anchor-key: anchor 1 is signed with another key")
	})
	t.Run("Usage", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "copy.jsonl")
		require.NoError(t, os.WriteFile(f, export, 0o600))
		c.run(t, "verify-export", f, "--anchors", anchors).fails(t, 2)
		c.run(t, "verify-export", "--audit-key", keyFile).fails(t, 2)
		r := c.run(t, "verify-export", "--audit-key", keyFile, "--anchors", anchors, f).ok(t)
		require.Contains(t, r.stdout, "the export holds", "flags before the file")
	})
	t.Run("OwnAnchorsOnly", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "copy.jsonl")
		require.NoError(t, os.WriteFile(f, export, 0o600))
		r := c.run(t, "verify-export", f, "--audit-key", keyFile).ok(t)
		require.Contains(t, r.stdout, "WARNING: checked against the export's own anchors only")
	})
}

func bytesDiffer(a, b []byte) int {
	n := 0
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n + max(len(a), len(b)) - min(len(a), len(b))
}
