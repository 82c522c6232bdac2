package api_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/commands"
	"mailplane/projections/opendkim"
)

func dkimPath(d string) string { return "/api/v1/domains/" + d + "/dkim" }

// signerKey renders the signer's files and takes the domain's key the way OpenDKIM does: the
// KeyTable line for selector._domainkey.domain names domain:selector:keyfile, and the key file
// holds the private key in PEM.
func signerKey(t *testing.T, e *apitest.Env, dir, dom string) (selector string, key crypto.Signer) {
	t.Helper()
	keys, err := e.Commands.SigningKeys(context.Background())
	require.NoError(t, err)
	var render []opendkim.Key
	for _, k := range keys {
		render = append(render, opendkim.Key{Domain: k.Domain, Selector: k.Selector, PrivateKey: k.PrivateKey})
	}
	_, err = opendkim.Render(dir, render)
	require.NoError(t, err)
	signing, err := os.ReadFile(filepath.Join(dir, opendkim.SigningTableFile))
	require.NoError(t, err)
	var name string
	for _, line := range strings.Split(string(signing), "\n") {
		if pattern, n, ok := strings.Cut(line, " "); ok && pattern == "*@"+dom {
			name = n
		}
	}
	if name == "" {
		return "", nil
	}
	table, err := opendkim.ReadKeyTable(filepath.Join(dir, opendkim.KeyTableFile))
	require.NoError(t, err)
	entry, ok := table[name]
	require.True(t, ok, "KeyTable has no %s", name)
	require.Equal(t, dom, entry[0])
	info, err := os.Stat(entry[2])
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	b, err := os.ReadFile(entry[2])
	require.NoError(t, err)
	block, _ := pem.Decode(b)
	require.NotNil(t, block)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	return entry[1], k.(crypto.Signer)
}

func signedMessage(t *testing.T, dom, selector string, key crypto.Signer) []byte {
	t.Helper()
	msg := "From: Ann <ann@" + dom + ">\r\nTo: bob@example.net\r\nSubject: hello\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n" +
		"Message-ID: <" + apitest.Unique("m") + "@" + dom + ">\r\n\r\nHello Bob,\r\nthis is signed.\r\n"
	var out bytes.Buffer
	require.NoError(t, dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{Domain: dom, Selector: selector, Signer: key,
		HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID"}}))
	return out.Bytes()
}

// verify checks msg's signature against the TXT records the API shows, and nothing else.
func verify(t *testing.T, msg []byte, records map[string]string) error {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
		if v, ok := records[name]; ok {
			return []string{v}, nil
		}
		return nil, fmt.Errorf("no TXT record at %s", name)
	}})
	require.NoError(t, err)
	require.Len(t, vs, 1)
	return vs[0].Err
}

// publishedRecords are the DNS records the API says to publish, by name.
func publishedRecords(t *testing.T, view map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range view["keys"].([]any) {
		key := k.(map[string]any)
		if key["published"] == true {
			dns := key["dns"].(map[string]any)
			require.Equal(t, "TXT", dns["type"])
			require.Equal(t, dns["value"], strings.Join(toStrings(dns["strings"]), ""))
			out[dns["name"].(string)] = dns["value"].(string)
		}
	}
	return out
}

func toStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func tableRows(t *testing.T, e *apitest.Env, table string) int {
	t.Helper()
	var n int
	require.NoError(t, e.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

// A DKIM key generated through the API, taken by the signer from the rendered OpenDKIM files,
// signs mail that verifies against the TXT record the API shows; after a rotation the new key
// signs, the old one stays published for its grace period (mail it signed still verifies),
// then is retired and no longer published.
func TestDKIMSignAndVerify(t *testing.T) {
	t.Parallel()
	c := &clock{}
	advance := func(d time.Duration) { c.Set(c.Now().Add(d)) }
	e := apitest.NewWith(t, apitest.Options{Now: c.Now})
	for _, alg := range []string{"rsa", "ed25519"} {
		t.Run(alg, func(t *testing.T) {
			dom := e.CreateDomain(t, nil)
			_, admin := e.User(t, dom, apitest.DomainAdmin)
			dir := t.TempDir()

			empty := e.Do(t, http.MethodGet, dkimPath(dom), admin, nil)
			require.Equal(t, http.StatusOK, empty.Status, "%s", empty.Body)
			require.Nil(t, empty.JSON(t)["selector"])
			sel, _ := signerKey(t, e, dir, dom)
			require.Empty(t, sel, "no key, nothing to sign with")

			r := e.Do(t, http.MethodPost, dkimPath(dom), admin, map[string]any{"selector": "Mail2026", "algorithm": alg})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			require.NotContains(t, string(r.Body), "PRIVATE")
			require.NotContains(t, string(r.Body), "mpenc")
			v := r.JSON(t)
			require.Equal(t, "mail2026", v["selector"])
			key := v["keys"].([]any)[0].(map[string]any)
			require.Equal(t, "active", key["state"])
			dns := key["dns"].(map[string]any)
			require.Equal(t, "mail2026._domainkey."+dom, dns["name"])
			require.True(t, strings.HasPrefix(dns["value"].(string), "v=DKIM1; k="+alg+"; p="), dns["value"])

			sel, priv := signerKey(t, e, dir, dom)
			require.Equal(t, "mail2026", sel)
			first := signedMessage(t, dom, sel, priv)
			require.NoError(t, verify(t, first, publishedRecords(t, v)))
			// The check can fail: a message altered after signing does not verify.
			tampered := bytes.Replace(first, []byte("this is signed"), []byte("this is forged"), 1)
			require.Error(t, verify(t, tampered, publishedRecords(t, v)))

			// Rotation: the new key signs; the old record stays until the grace period ends.
			r = e.Do(t, http.MethodPost, dkimPath(dom)+"/rotate", admin,
				map[string]any{"selector": "mail2027", "algorithm": alg, "grace_period_seconds": 7200})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			v = r.JSON(t)
			require.Equal(t, "mail2027", v["selector"])
			old := v["keys"].([]any)[0].(map[string]any)
			require.Equal(t, "retiring", old["state"])
			require.Equal(t, "mail2027", old["replaced_by"])
			retireAt, err := time.Parse(time.RFC3339Nano, old["retire_at"].(string))
			require.NoError(t, err)
			require.WithinDuration(t, c.Now().Add(2*time.Hour), retireAt, 5*time.Second)
			records := publishedRecords(t, v)
			require.Len(t, records, 2)
			require.NoError(t, verify(t, first, records), "mail signed before the rotation still verifies")
			sel, priv = signerKey(t, e, dir, dom)
			require.Equal(t, "mail2027", sel)
			require.NoError(t, verify(t, signedMessage(t, dom, sel, priv), records))
			_, err = os.Stat(filepath.Join(dir, opendkim.KeysDir, dom, "mail2026.private"))
			require.ErrorIs(t, err, os.ErrNotExist, "the signer's copy of the replaced key is gone")

			// The retirement job is queued for the end of the grace period.
			var at time.Time
			require.NoError(t, e.Pool.QueryRow(context.Background(),
				`SELECT scheduled_at FROM river_job WHERE kind = 'retire_dkim_key' AND args->>'domain' = $1 AND args->>'selector' = 'mail2026'`,
				dom).Scan(&at))
			require.WithinDuration(t, retireAt, at, time.Millisecond)
		})
	}

	// Retiring before the grace period is over changes nothing; after it, the old record goes.
	dom := e.CreateDomain(t, nil)
	e.Do(t, http.MethodPost, dkimPath(dom), e.AdminToken, map[string]any{"selector": "a", "algorithm": "ed25519"})
	e.Do(t, http.MethodPost, dkimPath(dom)+"/rotate", e.AdminToken, map[string]any{"selector": "b", "algorithm": "ed25519"})
	out, err := e.Commands.RetireDKIMKey(context.Background(), dom, "a")
	require.NoError(t, err)
	require.False(t, out.Appended())
	advance(7 * 24 * time.Hour)
	out, err = e.Commands.RetireDKIMKey(context.Background(), dom, "a")
	require.NoError(t, err)
	require.True(t, out.Appended())
	token := e.Login(t, apitest.AdminEmail, apitest.AdminPassword) // the first one expired meanwhile
	v := e.Do(t, http.MethodGet, dkimPath(dom), token, nil).JSON(t)
	require.Equal(t, "retired", v["keys"].([]any)[0].(map[string]any)["state"])
	require.Len(t, publishedRecords(t, v), 1)
}

// Bad input is a 400 listing every bad field and writes nothing; only the domain's
// administrators may; removal; secrets stay out of history; a destroyed domain key stops
// signing.
func TestDKIMRules(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	other := e.CreateDomain(t, nil)
	_, admin := e.User(t, dom, apitest.DomainAdmin)
	_, otherAdmin := e.User(t, other, apitest.DomainAdmin)
	_, plain := e.User(t, dom, apitest.Plain)

	events, dataKeys := tableRows(t, e, "events"), tableRows(t, e, "data_keys")
	require.Equal(t, []string{"selector", "algorithm"},
		e.Do(t, http.MethodPost, dkimPath(dom), admin, map[string]any{"selector": "bad_sel", "algorithm": "dsa"}).FieldErrors(t))
	require.Equal(t, []string{"selector"},
		e.Do(t, http.MethodPost, dkimPath(dom), admin, map[string]any{"algorithm": "rsa"}).FieldErrors(t))
	require.Equal(t, []string{"grace_period_seconds"},
		e.Do(t, http.MethodPost, dkimPath(dom), admin, map[string]any{"selector": "s", "algorithm": "rsa", "grace_period_seconds": 5}).FieldErrors(t))
	e.Do(t, http.MethodPost, dkimPath(dom), admin, map[string]any{"selector": "s", "algorithm": "rsa", "private_key": "x"}).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodPost, dkimPath(dom), admin, map[string]any{"selector": 7, "algorithm": "rsa"}).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodPost, dkimPath(dom)+"/rotate", admin, map[string]any{"selector": "s2", "algorithm": "rsa"}).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodPost, dkimPath(dom), plain, map[string]any{"selector": "s", "algorithm": "rsa"}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPost, dkimPath(dom), otherAdmin, map[string]any{"selector": "s", "algorithm": "rsa"}).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, dkimPath(dom), otherAdmin, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodGet, dkimPath(dom), plain, nil).Problem(t, http.StatusForbidden)
	e.Do(t, http.MethodPost, dkimPath("nope.example"), e.AdminToken, map[string]any{"selector": "s", "algorithm": "rsa"}).Problem(t, http.StatusNotFound)
	require.Equal(t, events, tableRows(t, e, "events"), "a refused request appends nothing")
	require.Equal(t, dataKeys, tableRows(t, e, "data_keys"), "nor makes a data key")

	r := e.Do(t, http.MethodPost, dkimPath(dom), admin, map[string]any{"selector": "s1", "algorithm": "rsa"})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Equal(t, `"1"`, r.Header.Get("ETag"))
	p := e.Do(t, http.MethodPost, dkimPath(dom), admin, map[string]any{"selector": "s2", "algorithm": "rsa"}).Problem(t, http.StatusConflict)
	require.Contains(t, p["detail"], "rotate")
	require.Equal(t, []string{"selector"},
		e.Do(t, http.MethodPost, dkimPath(dom)+"/rotate", admin, map[string]any{"selector": "S1", "algorithm": "rsa"}).FieldErrors(t))

	// History redacts the sealed key.
	h := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history?type=DKIMKeyAdded", admin, nil)
	require.Equal(t, http.StatusOK, h.Status, "%s", h.Body)
	items := h.JSON(t)["items"].([]any)
	require.Len(t, items, 1)
	require.Equal(t, "[redacted]", items[0].(map[string]any)["data"].(map[string]any)["private_key_secret"])
	require.NotContains(t, string(h.Body), "mpenc")

	// A destroyed domain key (the domain removed) leaves nothing to sign with.
	keys, err := e.Commands.SigningKeys(context.Background())
	require.NoError(t, err)
	require.True(t, hasSigningKey(keys, dom))
	require.NoError(t, e.Keyring.Destroy(context.Background(), e.Pool, dom))
	keys, err = e.Commands.SigningKeys(context.Background())
	require.NoError(t, err)
	require.False(t, hasSigningKey(keys, dom))

	e.Do(t, http.MethodDelete, dkimPath(dom)+"/s1", admin, nil, "If-Match", `"5"`).Problem(t, http.StatusPreconditionFailed)
	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, dkimPath(dom)+"/S1", admin, nil).Status)
	e.Do(t, http.MethodDelete, dkimPath(dom)+"/s1", admin, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodDelete, dkimPath(dom)+"/s1", plain, nil).Problem(t, http.StatusForbidden)
	v := e.Do(t, http.MethodGet, dkimPath(dom), admin, nil).JSON(t)
	require.Nil(t, v["selector"])
	require.Empty(t, v["keys"])
}

func hasSigningKey(keys []commands.SigningKey, dom string) bool {
	for _, k := range keys {
		if k.Domain == dom {
			return true
		}
	}
	return false
}

// A domain removed and created again starts without DKIM keys: the old ones were sealed with
// its destroyed key, and their selectors are free again; nothing signs with them.
func TestDKIMAfterDomainRemoval(t *testing.T) {
	t.Parallel()
	e := apitest.NewWith(t, apitest.Options{Workers: &apitest.Workers{}})
	dom := e.CreateDomain(t, nil)
	r := e.Do(t, http.MethodPost, dkimPath(dom), e.AdminToken, map[string]any{"selector": "s1", "algorithm": "ed25519"})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	del := e.Do(t, http.MethodDelete, "/api/v1/domains/"+dom, e.AdminToken, nil)
	require.Equal(t, http.StatusAccepted, del.Status, "%s", del.Body)
	job := del.JSON(t)["job"].(map[string]any)
	require.Eventually(t, func() bool {
		j := e.Do(t, http.MethodGet, fmt.Sprintf("/api/v1/jobs/%d", int64(job["id"].(float64))), e.AdminToken, nil).JSON(t)
		return j["state"] == "succeeded"
	}, 30*time.Second, 50*time.Millisecond)
	keys, err := e.Commands.SigningKeys(context.Background())
	require.NoError(t, err)
	require.False(t, hasSigningKey(keys, dom))

	require.Equal(t, http.StatusCreated, e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, map[string]any{"name": dom}).Status)
	v := e.Do(t, http.MethodGet, dkimPath(dom), e.AdminToken, nil).JSON(t)
	require.Empty(t, v["keys"])
	require.Nil(t, v["selector"])
	r = e.Do(t, http.MethodPost, dkimPath(dom), e.AdminToken, map[string]any{"selector": "s1", "algorithm": "rsa"})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Len(t, r.JSON(t)["keys"], 1)
	keys, err = e.Commands.SigningKeys(context.Background())
	require.NoError(t, err)
	require.True(t, hasSigningKey(keys, dom))
}
