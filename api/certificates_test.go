package api_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/commands"
	"mailplane/domain"
)

// testCA is a root and an intermediate that sign test certificates.
type testCA struct {
	root, inter       *x509.Certificate
	rootKey, interKey crypto.Signer
}

var certSerial atomic.Int64

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := &testCA{rootKey: newECKey(t), interKey: newECKey(t)}
	from, to := time.Now().Add(-time.Hour), time.Now().AddDate(5, 0, 0)
	rt := &x509.Certificate{SerialNumber: big.NewInt(certSerial.Add(1)), Subject: pkix.Name{CommonName: "API Test Root"},
		NotBefore: from, NotAfter: to, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	ca.root = signCert(t, rt, rt, ca.rootKey.Public(), ca.rootKey)
	it := &x509.Certificate{SerialNumber: big.NewInt(certSerial.Add(1)), Subject: pkix.Name{CommonName: "API Test Intermediate"},
		NotBefore: from, NotAfter: to, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	ca.inter = signCert(t, it, ca.root, ca.interKey.Public(), ca.rootKey)
	return ca
}

func newECKey(t *testing.T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func signCert(t *testing.T, tmpl, parent *x509.Certificate, pub any, key crypto.Signer) *x509.Certificate {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func privPEM(t *testing.T, k crypto.Signer) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// leaf issues a server certificate for names, valid from..to, with key (a new P-256 key when nil).
func (ca *testCA) leaf(t *testing.T, key crypto.Signer, from, to time.Time, names ...string) (string, crypto.Signer) {
	if key == nil {
		key = newECKey(t)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(certSerial.Add(1)), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: from, NotAfter: to, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	return certPEM(signCert(t, tmpl, ca.inter, key.Public(), ca.interKey)), key
}

func (ca *testCA) files(t *testing.T, host string) map[string]any {
	cert, key := ca.leaf(t, nil, time.Now().Add(-time.Hour), time.Now().AddDate(0, 3, 0), host)
	return map[string]any{"certificate": cert, "ca_chain": certPEM(ca.inter), "private_key": privPEM(t, key)}
}

func problemCodes(t *testing.T, v map[string]any) []string {
	t.Helper()
	var out []string
	for _, p := range v["problems"].([]any) {
		out = append(out, p.(map[string]any)["code"].(string))
	}
	return out
}

// Verify answers every named problem of a custom certificate in a 200, never a 500, and a
// good certificate as valid with its description.
func TestVerifyCertificate(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	_, admin := e.User(t, dom, apitest.DomainAdmin)
	host := "mail." + dom
	addHost(t, e, admin, dom, host)
	ca := newTestCA(t)
	good := ca.files(t, host)
	verify := func(body any) map[string]any {
		t.Helper()
		r := e.Do(t, http.MethodPost, certPath(dom, host)+"/verify", admin, body)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		return r.JSON(t)
	}

	v := verify(good)
	require.Equal(t, true, v["valid"], "%v", v["problems"])
	require.Empty(t, v["problems"])
	require.Equal(t, "CN="+host, v["subject"])
	require.Equal(t, []any{host}, v["sans"])
	require.Equal(t, "CN=API Test Intermediate", v["issuer"])
	require.NotEmpty(t, v["not_before"])
	require.NotEmpty(t, v["not_after"])
	require.Equal(t, float64(1), v["chain_length"])

	with := func(k, val string) map[string]any {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		m[k] = val
		return m
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	weakCert, _ := ca.leaf(t, weak, time.Now().Add(-time.Hour), time.Now().AddDate(0, 1, 0), host)
	expired, expiredKey := ca.leaf(t, nil, time.Now().AddDate(0, -3, 0), time.Now().Add(-time.Hour), host)
	otherName, otherNameKey := ca.leaf(t, nil, time.Now().Add(-time.Hour), time.Now().AddDate(0, 1, 0), "other."+dom)
	encrypted := "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n"
	for name, tc := range map[string]struct {
		body map[string]any
		want []string
	}{
		"garbage":        {with("certificate", "this is not PEM"), []string{domain.ProblemCertificateNotPEM}},
		"wrong type":     {with("certificate", good["private_key"].(string)), []string{domain.ProblemCertificateWrongType}},
		"extra block":    {with("certificate", good["certificate"].(string)+certPEM(ca.inter)), []string{domain.ProblemCertificateExtraBlocks}},
		"encrypted key":  {with("private_key", encrypted), []string{domain.ProblemPrivateKeyEncrypted}},
		"other key":      {with("private_key", privPEM(t, newECKey(t))), []string{domain.ProblemKeyMismatch}},
		"two keys":       {with("private_key", good["private_key"].(string)+privPEM(t, newECKey(t))), []string{domain.ProblemPrivateKeyExtraBlocks}},
		"no chain":       {with("ca_chain", ""), []string{domain.ProblemCAChainMissing}},
		"wrong chain":    {with("ca_chain", certPEM(ca.root)), []string{domain.ProblemChainBroken, domain.ProblemChainUnused}},
		"weak key":       {map[string]any{"certificate": weakCert, "ca_chain": good["ca_chain"], "private_key": privPEM(t, weak)}, []string{domain.ProblemKeyTooWeak}},
		"expired":        {map[string]any{"certificate": expired, "ca_chain": good["ca_chain"], "private_key": privPEM(t, expiredKey)}, []string{domain.ProblemExpired}},
		"host not in it": {map[string]any{"certificate": otherName, "ca_chain": good["ca_chain"], "private_key": privPEM(t, otherNameKey)}, []string{domain.ProblemHostNotCovered}},
		"empty":          {map[string]any{}, []string{domain.ProblemCertificateMissing, domain.ProblemCAChainMissing, domain.ProblemPrivateKeyMissing}},
	} {
		v := verify(tc.body)
		require.Equal(t, false, v["valid"], name)
		require.ElementsMatch(t, tc.want, problemCodes(t, v), "%s: %v", name, v["problems"])
		if name == "garbage" || name == "empty" {
			require.Nil(t, v["subject"], "nothing to describe")
		}
	}
	e.Do(t, http.MethodPost, certPath(dom, host)+"/verify", admin, map[string]any{"certificate": 5}).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodPost, certPath(dom, host)+"/verify", admin, map[string]any{"cert": "x"}).Problem(t, http.StatusBadRequest)
	e.Do(t, http.MethodPost, certPath(dom, "nope."+dom)+"/verify", admin, good).Problem(t, http.StatusNotFound)

	// The upload form of the product's dialog: three files.
	r := upload(t, e, http.MethodPost, certPath(dom, host)+"/verify", admin, good)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, true, r.JSON(t)["valid"])
	r = upload(t, e, http.MethodPost, certPath(dom, host)+"/verify", admin, map[string]any{"certificate": good["certificate"], "nonsense": "x"})
	r.Problem(t, http.StatusBadRequest)
	p := e.Do(t, http.MethodPost, certPath(dom, host)+"/verify", admin, "certificate=x", "Content-Type", "application/x-www-form-urlencoded").
		Problem(t, http.StatusUnsupportedMediaType)
	require.Contains(t, p["detail"], "multipart/form-data")
}

// upload sends the parts as a multipart/form-data form of files.
func upload(t *testing.T, e *apitest.Env, method, path, token string, parts map[string]any) apitest.Response {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range parts {
		fw, err := w.CreateFormFile(k, k+".pem")
		require.NoError(t, err)
		_, err = io.WriteString(fw, v.(string))
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	return e.Do(t, method, path, token, b.Bytes(), "Content-Type", w.FormDataContentType())
}

// A custom certificate is installed only when it verifies, shows in the status, downloads as
// a PEM bundle without its key, serves TLS from the sealed key, never shows its key in
// history, and is removed.
func TestInstallCustomCertificate(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	_, admin := e.User(t, dom, apitest.DomainAdmin)
	host := "webmail." + dom
	addHost(t, e, admin, dom, host)
	ca := newTestCA(t)
	files := ca.files(t, host)

	st := e.Do(t, http.MethodGet, certPath(dom, host), admin, nil)
	require.Equal(t, http.StatusOK, st.Status, "%s", st.Body)
	require.Equal(t, "none", st.JSON(t)["status"])
	e.Do(t, http.MethodGet, certPath(dom, host)+"/download", admin, nil).Problem(t, http.StatusNotFound)
	e.Do(t, http.MethodDelete, certPath(dom, host), admin, nil).Problem(t, http.StatusNotFound)

	bad := map[string]any{"certificate": files["certificate"], "ca_chain": files["ca_chain"], "private_key": privPEM(t, newECKey(t))}
	p := e.Do(t, http.MethodPut, certPath(dom, host), admin, bad).Problem(t, http.StatusBadRequest)
	require.Equal(t, "/problems/certificate-invalid", p["type"])
	require.Equal(t, []string{domain.ProblemKeyMismatch}, problemCodes(t, p))

	r := e.Do(t, http.MethodPut, certPath(dom, host), admin, files, "If-Match", `"1"`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, `"2"`, r.Header.Get("ETag"))
	c := r.JSON(t)
	require.Equal(t, "valid", c["status"])
	require.Equal(t, "custom", c["source"])
	require.Equal(t, "CN=API Test Intermediate", c["issuer"])
	require.Equal(t, float64(1), c["chain_length"])
	require.Nil(t, c["renewal_due_at"], "custom certificates are not renewed")
	require.NotEmpty(t, c["not_after"])
	require.NotContains(t, string(r.Body), "PRIVATE KEY")

	got := e.Do(t, http.MethodGet, certPath(dom, host), admin, nil)
	require.Equal(t, http.StatusOK, got.Status)
	require.JSONEq(t, string(r.Body), string(got.Body))

	dl := e.Do(t, http.MethodGet, certPath(dom, host)+"/download", admin, nil)
	require.Equal(t, http.StatusOK, dl.Status, "%s", dl.Body)
	require.Equal(t, "application/x-pem-file", dl.Header.Get("Content-Type"))
	require.Equal(t, `attachment; filename="`+host+`.pem"`, dl.Header.Get("Content-Disposition"))
	require.Equal(t, files["certificate"].(string)+files["ca_chain"].(string), string(dl.Body))
	require.NotContains(t, string(dl.Body), "PRIVATE KEY")

	// Stored sealed: the event has ciphertext, history shows "[redacted]", the read model nothing.
	var stored string
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT data->>'private_key_secret' FROM events WHERE event_type = 'CertificateInstalled'
		AND stream_id = $1`, domain.VirtualHostStreamID(dom, host)).Scan(&stored))
	require.True(t, strings.HasPrefix(stored, "mpenc:v1:"), stored)
	var rm string
	require.NoError(t, e.Pool.QueryRow(t.Context(), `SELECT state::text FROM rm_virtual_hosts WHERE host = $1`, host).Scan(&rm))
	require.NotContains(t, rm, "mpenc:")
	require.NotContains(t, rm, "PRIVATE KEY")
	h := e.Do(t, http.MethodGet, "/api/v1/domains/"+dom+"/history?type=CertificateInstalled", admin, nil)
	require.Equal(t, http.StatusOK, h.Status)
	item := h.JSON(t)["items"].([]any)[0].(map[string]any)["data"].(map[string]any)
	require.Equal(t, "[redacted]", item["private_key_secret"])
	require.NotContains(t, string(h.Body), "mpenc:")

	// Served over TLS from the stored, sealed key and chain; a client checks it against the
	// CA's root for the host's name.
	serveTLS(t, e, host, ca.root)

	// The upload form installs too (replacing it).
	files2 := ca.files(t, host)
	r = upload(t, e, http.MethodPut, certPath(dom, host), admin, files2)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.NotEqual(t, c["serial"], r.JSON(t)["serial"])

	require.Equal(t, http.StatusNoContent, e.Do(t, http.MethodDelete, certPath(dom, host), admin, nil, "If-Match", `"3"`).Status)
	require.Equal(t, "none", e.Do(t, http.MethodGet, certPath(dom, host), admin, nil).JSON(t)["status"])
	_, err := e.Commands.TLSCertificate(t.Context(), host)
	require.ErrorIs(t, err, commands.ErrNoCertificate)
}

// serveTLS starts a TLS listener whose certificates come from mailplane (the sealed key opened,
// the chain as stored) and checks that a client trusting root reaches host through it.
func serveTLS(t *testing.T, e *apitest.Env, host string, root *x509.Certificate) *x509.Certificate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello "+r.Host) }),
		TLSConfig: &tls.Config{GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return e.Commands.TLSCertificate(hello.Context(), hello.ServerName)
		}}, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close(); <-done })

	roots := x509.NewCertPool()
	roots.AddCert(root)
	addr := ln.Addr().String()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: host},
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr) // host resolves to the listener
		}}}
	resp, err := client.Get("https://" + host + "/")
	require.NoError(t, err, "the served chain verifies for %s", host)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, "hello "+host, string(body))
	require.NotEmpty(t, resp.TLS.VerifiedChains)
	return resp.TLS.PeerCertificates[0]
}

// A certificate with a name the host is not, or for a host that does not exist, is not served.
func TestTLSCertificateLookup(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	_, err := e.Commands.TLSCertificate(t.Context(), "nothing.example.net")
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = e.Commands.TLSCertificate(t.Context(), "bad..name")
	require.ErrorIs(t, err, domain.ErrNotFound)
}
