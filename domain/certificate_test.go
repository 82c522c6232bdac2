package domain

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pki is a small CA for tests: a root, an intermediate it signed, and leaves the intermediate
// signs.
type pki struct {
	root, inter         *x509.Certificate
	rootKey, interKey   crypto.Signer
	rootPEM, interPEM   string
	otherPEM            string // an unrelated CA
	otherCert           *x509.Certificate
	otherKey            crypto.Signer
	expiredInterPEM     string // the intermediate's key, in a certificate that has expired
	expiredInterCert    *x509.Certificate
	rsa1024, ed, ec224k crypto.Signer
}

var (
	pkiOnce sync.Once
	testPKI *pki
)

var certNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func ecKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	require.NoError(t, err)
	return k
}

func sign(t testing.TB, tmpl, parent *x509.Certificate, pub any, key crypto.Signer) *x509.Certificate {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c
}

func pemOf(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func keyPEM(t testing.TB, k crypto.Signer) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

var serial atomic.Int64

func caTemplate(cn string, from, to time.Time) *x509.Certificate {
	return &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: from, NotAfter: to, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
}

func getPKI(t testing.TB) *pki {
	pkiOnce.Do(func() {
		p := &pki{}
		from, to := certNow.AddDate(-1, 0, 0), certNow.AddDate(5, 0, 0)
		p.rootKey = ecKey(t, elliptic.P256())
		rt := caTemplate("Test Root", from, to)
		p.root = sign(t, rt, rt, p.rootKey.Public(), p.rootKey)
		p.interKey = ecKey(t, elliptic.P256())
		p.inter = sign(t, caTemplate("Test Intermediate", from, to), p.root, p.interKey.Public(), p.rootKey)
		p.expiredInterCert = sign(t, caTemplate("Test Intermediate", from, certNow.AddDate(0, -1, 0)), p.root, p.interKey.Public(), p.rootKey)
		p.otherKey = ecKey(t, elliptic.P256())
		ot := caTemplate("Other CA", from, to)
		p.otherCert = sign(t, ot, ot, p.otherKey.Public(), p.otherKey)
		p.rootPEM, p.interPEM, p.otherPEM, p.expiredInterPEM = pemOf(p.root), pemOf(p.inter), pemOf(p.otherCert), pemOf(p.expiredInterCert)
		rk, err := rsa.GenerateKey(rand.Reader, 1024)
		require.NoError(t, err)
		p.rsa1024 = rk
		_, ek, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		p.ed = ek
		p.ec224k = ecKey(t, elliptic.P224())
		testPKI = p
	})
	return testPKI
}

// leafOpts shape a test leaf.
type leafOpts struct {
	names          []string
	key            crypto.Signer
	from, to       time.Time
	eku            []x509.ExtKeyUsage
	parent         *x509.Certificate
	parentKey      crypto.Signer
	sigAlg         x509.SignatureAlgorithm
	commonNameOnly bool
}

func (p *pki) leaf(t testing.TB, o leafOpts) (string, crypto.Signer) {
	if o.names == nil {
		o.names = []string{"mail.example.com"}
	}
	if o.key == nil {
		o.key = ecKey(t, elliptic.P256())
	}
	if o.from.IsZero() {
		o.from, o.to = certNow.AddDate(0, -1, 0), certNow.AddDate(0, 2, 0)
	}
	if o.eku == nil {
		o.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	if o.parent == nil {
		o.parent, o.parentKey = p.inter, p.interKey
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: o.names[0]},
		DNSNames: o.names, NotBefore: o.from, NotAfter: o.to, ExtKeyUsage: o.eku,
		KeyUsage: x509.KeyUsageDigitalSignature, SignatureAlgorithm: o.sigAlg}
	if o.commonNameOnly {
		tmpl.DNSNames = nil
	}
	return pemOf(sign(t, tmpl, o.parent, o.key.Public(), o.parentKey)), o.key
}

func codes(c CertificateCheck) []string {
	var out []string
	for _, p := range c.Problems {
		out = append(out, p.Code)
	}
	return out
}

// A certificate, its chain and its key that belong together verify, and are described.
func TestVerifyGoodCertificate(t *testing.T) {
	t.Parallel()
	p := getPKI(t)
	cert, key := p.leaf(t, leafOpts{names: []string{"mail.example.com", "webmail.example.com"}})
	for name, chain := range map[string]string{"intermediate only": p.interPEM, "with root": p.interPEM + p.rootPEM,
		"root first": p.rootPEM + "\n" + p.interPEM} {
		t.Run(name, func(t *testing.T) {
			c := VerifyCertificate("webmail.example.com", CertificateFiles{Certificate: cert, CAChain: chain, PrivateKey: keyPEM(t, key)}, certNow)
			require.True(t, c.Valid, "%v", c.Problems)
			require.Empty(t, c.Problems)
			require.NotNil(t, c.Problems, "an empty list, not null")
			require.Equal(t, "CN=mail.example.com", c.Info.Subject)
			require.Equal(t, "CN=Test Intermediate", c.Info.Issuer)
			require.Equal(t, []string{"mail.example.com", "webmail.example.com"}, c.Info.SANs)
			require.Equal(t, "EC-P-256", c.Info.KeyType)
			require.Equal(t, "CN=Test Root", c.Info.ChainRoot)
			require.True(t, strings.HasPrefix(c.PrivateKeyPEM, "-----BEGIN PRIVATE KEY-----"))
			require.Equal(t, cert, c.CertificatePEM)
			// The chain is stored in path order, whatever order it came in.
			want := p.interPEM
			if name != "intermediate only" {
				want += p.rootPEM
			}
			require.Equal(t, want, c.ChainPEM)
			require.Equal(t, strings.Count(want, "BEGIN"), c.Info.ChainLength)
		})
	}
	// A wildcard covers one label; RSA 2048 and PKCS #1 and SEC 1 keys are fine; text around the
	// blocks is ignored; EC PARAMETERS before an EC key is too.
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	wild, _ := p.leaf(t, leafOpts{names: []string{"*.example.com"}, key: rk})
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}))
	c := VerifyCertificate("mail.example.com", CertificateFiles{Certificate: "Bag Attributes\n    friendlyName: x\n" + wild,
		CAChain: p.interPEM, PrivateKey: pkcs1}, certNow)
	require.True(t, c.Valid, "%v", c.Problems)
	require.Equal(t, "RSA-2048", c.Info.KeyType)
	ek := ecKey(t, elliptic.P384())
	ecCert, _ := p.leaf(t, leafOpts{key: ek})
	der, err := x509.MarshalECPrivateKey(ek)
	require.NoError(t, err)
	sec1 := "-----BEGIN EC PARAMETERS-----\nBgUrgQQAIg==\n-----END EC PARAMETERS-----\n" +
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	c = VerifyCertificate("mail.example.com", CertificateFiles{Certificate: ecCert, CAChain: p.interPEM, PrivateKey: sec1}, certNow)
	require.True(t, c.Valid, "%v", c.Problems)
}

// Every way a custom certificate can be wrong has its own problem code, reported together
// with the others, never as a failure.
func TestVerifyNamesEachProblem(t *testing.T) {
	t.Parallel()
	p := getPKI(t)
	cert, key := p.leaf(t, leafOpts{})
	good := CertificateFiles{Certificate: cert, CAChain: p.interPEM, PrivateKey: keyPEM(t, key)}
	otherCert, otherKey := p.leaf(t, leafOpts{})
	encrypted := "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n"
	legacyEncrypted := "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,0123456789ABCDEF0123456789ABCDEF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"
	garbage := "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n"
	badDER := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")}))
	badKeyDER := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not DER")}))
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("x")}))

	weakCert, weakKey := p.leaf(t, leafOpts{key: p.rsa1024})
	edCert, edKey := p.leaf(t, leafOpts{key: p.ed})
	ec224Cert, ec224Key := p.leaf(t, leafOpts{key: p.ec224k})
	sha1Cert, sha1Key := p.leaf(t, leafOpts{key: p.rsa2048(t), parent: p.inter, parentKey: p.interKey, sigAlg: x509.ECDSAWithSHA1})
	expired, expiredKey := p.leaf(t, leafOpts{from: certNow.AddDate(0, -4, 0), to: certNow.AddDate(0, 0, -1)})
	future, futureKey := p.leaf(t, leafOpts{from: certNow.AddDate(0, 0, 1), to: certNow.AddDate(0, 3, 0)})
	client, clientKey := p.leaf(t, leafOpts{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	cnOnly, cnOnlyKey := p.leaf(t, leafOpts{commonNameOnly: true})
	fromOther, fromOtherKey := p.leaf(t, leafOpts{parent: p.otherCert, parentKey: p.otherKey})
	rootSigned, rootSignedKey := p.leaf(t, leafOpts{parent: p.root, parentKey: p.rootKey})
	leafAsCA, leafAsCAKey := p.leaf(t, leafOpts{parent: mustParse(t, otherCert), parentKey: otherKey})

	for _, tc := range []struct {
		name  string
		host  string
		files CertificateFiles
		want  []string
	}{
		{"all missing", "", CertificateFiles{}, []string{ProblemCertificateMissing, ProblemCAChainMissing, ProblemPrivateKeyMissing}},
		{"garbage", "", CertificateFiles{Certificate: "hello", CAChain: garbage, PrivateKey: "-----BEGIN"},
			[]string{ProblemCertificateNotPEM, ProblemCAChainNotPEM, ProblemPrivateKeyNotPEM}},
		{"not DER", "", CertificateFiles{Certificate: badDER, CAChain: badDER, PrivateKey: badKeyDER},
			[]string{ProblemCertificateMalformed, ProblemCAChainMalformed, ProblemPrivateKeyMalformed}},
		{"wrong types", "", CertificateFiles{Certificate: good.PrivateKey, CAChain: good.PrivateKey, PrivateKey: cert},
			[]string{ProblemCertificateWrongType, ProblemCAChainWrongType, ProblemPrivateKeyWrongType}},
		{"public key for private", "", CertificateFiles{Certificate: cert, CAChain: p.interPEM, PrivateKey: pub},
			[]string{ProblemPrivateKeyWrongType}},
		{"extra blocks", "", CertificateFiles{Certificate: cert + p.interPEM, CAChain: p.interPEM, PrivateKey: good.PrivateKey + keyPEM(t, otherKey)},
			[]string{ProblemCertificateExtraBlocks, ProblemPrivateKeyExtraBlocks}},
		{"key with the certificate", "", CertificateFiles{Certificate: cert + good.PrivateKey, CAChain: p.interPEM, PrivateKey: good.PrivateKey},
			[]string{ProblemCertificateWrongType}},
		{"encrypted key", "", CertificateFiles{Certificate: cert, CAChain: p.interPEM, PrivateKey: encrypted}, []string{ProblemPrivateKeyEncrypted}},
		{"legacy encrypted key", "", CertificateFiles{Certificate: cert, CAChain: p.interPEM, PrivateKey: legacyEncrypted}, []string{ProblemPrivateKeyEncrypted}},
		{"other key", "", CertificateFiles{Certificate: cert, CAChain: p.interPEM, PrivateKey: keyPEM(t, otherKey)}, []string{ProblemKeyMismatch}},
		{"rsa 1024", "", CertificateFiles{Certificate: weakCert, CAChain: p.interPEM, PrivateKey: keyPEM(t, weakKey)}, []string{ProblemKeyTooWeak}},
		{"ec p-224", "", CertificateFiles{Certificate: ec224Cert, CAChain: p.interPEM, PrivateKey: keyPEM(t, ec224Key)}, []string{ProblemKeyTooWeak}},
		{"ed25519", "", CertificateFiles{Certificate: edCert, CAChain: p.interPEM, PrivateKey: keyPEM(t, edKey)}, []string{ProblemKeyUnsupported}},
		{"sha-1", "", CertificateFiles{Certificate: sha1Cert, CAChain: p.interPEM, PrivateKey: keyPEM(t, sha1Key)},
			[]string{ProblemWeakSignature}},
		{"other host", "webmail.example.org", good, []string{ProblemHostNotCovered}},
		{"common name only", "", CertificateFiles{Certificate: cnOnly, CAChain: p.interPEM, PrivateKey: keyPEM(t, cnOnlyKey)}, []string{ProblemHostNotCovered}},
		{"expired", "", CertificateFiles{Certificate: expired, CAChain: p.interPEM, PrivateKey: keyPEM(t, expiredKey)}, []string{ProblemExpired}},
		{"not yet valid", "", CertificateFiles{Certificate: future, CAChain: p.interPEM, PrivateKey: keyPEM(t, futureKey)}, []string{ProblemNotYetValid}},
		{"client certificate", "", CertificateFiles{Certificate: client, CAChain: p.interPEM, PrivateKey: keyPEM(t, clientKey)}, []string{ProblemNotForServers}},
		{"wrong CA", "", CertificateFiles{Certificate: fromOther, CAChain: p.interPEM, PrivateKey: keyPEM(t, fromOtherKey)},
			[]string{ProblemChainBroken, ProblemChainUnused}},
		{"root only for an intermediate's leaf", "", CertificateFiles{Certificate: cert, CAChain: p.rootPEM, PrivateKey: good.PrivateKey},
			[]string{ProblemChainBroken, ProblemChainUnused}},
		{"unrelated extra CA", "", CertificateFiles{Certificate: cert, CAChain: p.interPEM + p.otherPEM, PrivateKey: good.PrivateKey},
			[]string{ProblemChainUnused}},
		{"intermediate for a root's leaf", "", CertificateFiles{Certificate: rootSigned, CAChain: p.interPEM + p.rootPEM, PrivateKey: keyPEM(t, rootSignedKey)},
			[]string{ProblemChainUnused}},
		{"expired intermediate", "", CertificateFiles{Certificate: cert, CAChain: p.expiredInterPEM, PrivateKey: good.PrivateKey},
			[]string{ProblemChainExpired}},
		{"signed by a leaf", "", CertificateFiles{Certificate: leafAsCA, CAChain: otherCert + p.interPEM, PrivateKey: keyPEM(t, leafAsCAKey)},
			[]string{ProblemChainBroken, ProblemChainUnused, ProblemChainUnused}},
		{"chain too long", "", CertificateFiles{Certificate: cert, CAChain: strings.Repeat(p.interPEM, 11), PrivateKey: good.PrivateKey},
			[]string{ProblemCAChainTooLong}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			host := tc.host
			if host == "" {
				host = "mail.example.com"
			}
			c := VerifyCertificate(host, tc.files, certNow)
			require.False(t, c.Valid)
			require.ElementsMatch(t, tc.want, codes(c), "%v", c.Problems)
			for _, pr := range c.Problems {
				require.Contains(t, CertificateProblemCodes, pr.Code)
				require.NotEmpty(t, pr.Message)
			}
			require.Empty(t, c.PrivateKeyPEM, "nothing to store from an invalid certificate")
		})
	}
}

func (p *pki) rsa2048(t testing.TB) crypto.Signer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return k
}

func mustParse(t testing.TB, s string) *x509.Certificate {
	b, _ := pem.Decode([]byte(s))
	c, err := x509.ParseCertificate(b.Bytes)
	require.NoError(t, err)
	return c
}

// Every code the verifier can name is listed once.
func TestProblemCodesAreUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, c := range CertificateProblemCodes {
		require.False(t, seen[c], c)
		seen[c] = true
	}
}
