package domain

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Certificate problem codes: what VerifyCertificate finds wrong, stable names an API client may
// match on (docs/operations.md lists them with what to do). Each comes with a human message.
const (
	ProblemCertificateMissing     = "certificate_missing"      // the certificate field is empty
	ProblemCertificateNotPEM      = "certificate_not_pem"      // no PEM block in it
	ProblemCertificateWrongType   = "certificate_wrong_type"   // a block that is not a CERTIFICATE
	ProblemCertificateMalformed   = "certificate_malformed"    // a CERTIFICATE block that is no X.509 certificate
	ProblemCertificateExtraBlocks = "certificate_extra_blocks" // more than the one server certificate

	ProblemCAChainMissing   = "ca_chain_missing"
	ProblemCAChainNotPEM    = "ca_chain_not_pem"
	ProblemCAChainWrongType = "ca_chain_wrong_type"
	ProblemCAChainMalformed = "ca_chain_malformed"
	ProblemCAChainTooLong   = "ca_chain_too_long"

	ProblemPrivateKeyMissing     = "private_key_missing"
	ProblemPrivateKeyNotPEM      = "private_key_not_pem"
	ProblemPrivateKeyWrongType   = "private_key_wrong_type"
	ProblemPrivateKeyMalformed   = "private_key_malformed"
	ProblemPrivateKeyEncrypted   = "private_key_encrypted"
	ProblemPrivateKeyExtraBlocks = "private_key_extra_blocks"

	ProblemKeyMismatch    = "key_mismatch"    // the private key is not the certificate's
	ProblemKeyTooWeak     = "key_too_weak"    // RSA under 2048 bits, EC under P-256
	ProblemKeyUnsupported = "key_unsupported" // neither RSA nor ECDSA (DSA, Ed25519: browsers refuse them)
	ProblemWeakSignature  = "weak_signature"  // signed with SHA-1 or MD5

	ProblemHostNotCovered = "host_not_covered" // the virtual host is not among the SANs
	ProblemExpired        = "expired"
	ProblemNotYetValid    = "not_yet_valid"
	ProblemNotForServers  = "not_for_servers" // extended key usage without serverAuth

	ProblemChainBroken  = "chain_broken"  // the certificate (or a CA certificate) was not signed by the next one
	ProblemChainUnused  = "chain_unused"  // a ca_chain certificate that is not on the path
	ProblemChainExpired = "chain_expired" // a CA certificate on the path is outside its validity
)

// CertificateProblemCodes lists every problem code, for documentation and tests.
var CertificateProblemCodes = []string{
	ProblemCertificateMissing, ProblemCertificateNotPEM, ProblemCertificateWrongType, ProblemCertificateMalformed,
	ProblemCertificateExtraBlocks,
	ProblemCAChainMissing, ProblemCAChainNotPEM, ProblemCAChainWrongType, ProblemCAChainMalformed, ProblemCAChainTooLong,
	ProblemPrivateKeyMissing, ProblemPrivateKeyNotPEM, ProblemPrivateKeyWrongType, ProblemPrivateKeyMalformed,
	ProblemPrivateKeyEncrypted, ProblemPrivateKeyExtraBlocks,
	ProblemKeyMismatch, ProblemKeyTooWeak, ProblemKeyUnsupported, ProblemWeakSignature,
	ProblemHostNotCovered, ProblemExpired, ProblemNotYetValid, ProblemNotForServers,
	ProblemChainBroken, ProblemChainUnused, ProblemChainExpired,
}

// maxChainCertificates bounds ca_chain: real chains have one to three certificates.
const maxChainCertificates = 10

// CertificateProblem is one reason a certificate cannot be used for a virtual host.
type CertificateProblem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// CertificateFiles are the three PEM texts of a custom certificate, as an administrator has
// them: the server certificate, the CA certificates that signed it, and its private key.
type CertificateFiles struct {
	Certificate string
	CAChain     string
	PrivateKey  string
}

// CertificateCheck is what VerifyCertificate found. The descriptive fields are filled whenever
// the server certificate could be read, valid or not.
type CertificateCheck struct {
	Valid    bool
	Problems []CertificateProblem
	// Info describes the server certificate; nil when it could not be read.
	Info *CertificateInfo
	// CertificatePEM and ChainPEM are the server certificate and the CA certificates on its
	// path, in order, re-encoded; PrivateKeyPEM is the key as PKCS #8. Set only when Valid.
	CertificatePEM string
	ChainPEM       string
	PrivateKeyPEM  string
}

// CertificateInfo describes a certificate the way the API shows it.
type CertificateInfo struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	SANs        []string  `json:"sans"`
	Serial      string    `json:"serial"`
	Fingerprint string    `json:"fingerprint_sha256"`
	KeyType     string    `json:"key_type"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	// ChainLength counts the CA certificates served after the server certificate.
	ChainLength int `json:"chain_length"`
	// ChainRoot is the subject of the last certificate of the chain's path, or the issuer
	// of the last one given when the root itself was left out (as is usual).
	ChainRoot string `json:"chain_root"`
}

// VerifyCertificate checks that a custom certificate can serve host at now: every PEM text
// holds what it should (and only that), the key is strong enough and belongs to the
// certificate, a path leads from the certificate through the given CA chain, the host is among
// its names and its dates hold. It reports every problem it finds, never stopping at the first,
// and never fails: bad input is a problem, not an error.
//
// The CA chain is trusted as given: the check is that the pieces belong together, not that
// some root program trusts the CA (browsers decide that, and private CAs are legitimate).
func VerifyCertificate(host string, f CertificateFiles, now time.Time) CertificateCheck {
	var c CertificateCheck
	add := func(code, format string, args ...any) {
		c.Problems = append(c.Problems, CertificateProblem{Code: code, Message: fmt.Sprintf(format, args...)})
	}

	leaf := parseLeaf(f.Certificate, add)
	chain := parseChain(f.CAChain, add)
	key := parsePrivateKey(f.PrivateKey, add)

	var path []*x509.Certificate
	if leaf != nil {
		checkPublicKey(leaf, add)
		if isWeakSignature(leaf.SignatureAlgorithm) {
			add(ProblemWeakSignature, "the certificate is signed with %s, which browsers refuse; have it reissued with SHA-256 or better", leaf.SignatureAlgorithm)
		}
		if key != nil && !publicKeyMatches(leaf.PublicKey, key) {
			add(ProblemKeyMismatch, "the private key does not belong to the certificate: give the key the certificate request was made with")
		}
		if err := leaf.VerifyHostname(host); err != nil {
			add(ProblemHostNotCovered, "the certificate is for %s, not %s: its subject alternative names must include the virtual host", describeNames(leaf), host)
		}
		switch {
		case now.Before(leaf.NotBefore):
			add(ProblemNotYetValid, "the certificate is valid only from %s", leaf.NotBefore.UTC().Format(time.RFC3339))
		case now.After(leaf.NotAfter):
			add(ProblemExpired, "the certificate expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) &&
			!slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
			add(ProblemNotForServers, "the certificate's extended key usage does not allow TLS servers (serverAuth)")
		}
		if len(chain) > 0 {
			path = buildPath(leaf, chain, now, add)
		}
		c.Info = describe(leaf, path)
	}
	if len(c.Problems) == 0 {
		c.Valid = true
		c.CertificatePEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))
		var b strings.Builder
		for _, p := range path {
			b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Raw}))
		}
		c.ChainPEM = b.String()
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil { // parsed keys of the accepted kinds always marshal
			c.Valid = false
			add(ProblemPrivateKeyMalformed, "the private key cannot be stored: %v", err)
		} else {
			c.PrivateKeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		}
	}
	if c.Problems == nil {
		c.Problems = []CertificateProblem{}
	}
	return c
}

type addFunc func(code, format string, args ...any)

// pemBlocks splits text into its PEM blocks. Text around them (openssl's "Bag Attributes",
// a pasted "Certificate:" dump) is ignored, as servers ignore it. ok is false when text holds
// something but no block could be read.
func pemBlocks(text string) (blocks []*pem.Block, ok bool) {
	rest := []byte(text)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	return blocks, len(blocks) > 0
}

func parseLeaf(text string, add addFunc) *x509.Certificate {
	if strings.TrimSpace(text) == "" {
		add(ProblemCertificateMissing, "give the server certificate (PEM, -----BEGIN CERTIFICATE-----)")
		return nil
	}
	blocks, ok := pemBlocks(text)
	if !ok {
		add(ProblemCertificateNotPEM, "the certificate is not PEM: no -----BEGIN CERTIFICATE----- block with valid base64 was found")
		return nil
	}
	var leaf *x509.Certificate
	certs := 0
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" {
			add(ProblemCertificateWrongType, "the certificate field holds a %s block; it takes the server certificate only (keys go in private_key)", b.Type)
			continue
		}
		certs++
		if certs > 1 {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			add(ProblemCertificateMalformed, "the certificate cannot be read: %v", err)
			continue
		}
		leaf = c
	}
	if certs > 1 {
		add(ProblemCertificateExtraBlocks, "the certificate field holds %d certificates; put only the server certificate there and the CA certificates in ca_chain", certs)
	}
	return leaf
}

func parseChain(text string, add addFunc) []*x509.Certificate {
	if strings.TrimSpace(text) == "" {
		add(ProblemCAChainMissing, "give the CA chain: the intermediate certificate(s) that signed the certificate, and optionally the root")
		return nil
	}
	blocks, ok := pemBlocks(text)
	if !ok {
		add(ProblemCAChainNotPEM, "the CA chain is not PEM: no -----BEGIN CERTIFICATE----- block with valid base64 was found")
		return nil
	}
	var chain []*x509.Certificate
	for i, b := range blocks {
		if b.Type != "CERTIFICATE" {
			add(ProblemCAChainWrongType, "block %d of the CA chain is a %s block; the CA chain holds certificates only", i+1, b.Type)
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			add(ProblemCAChainMalformed, "certificate %d of the CA chain cannot be read: %v", i+1, err)
			continue
		}
		chain = append(chain, c)
	}
	if len(chain) > maxChainCertificates {
		add(ProblemCAChainTooLong, "the CA chain holds %d certificates; at most %d are accepted", len(chain), maxChainCertificates)
		return nil
	}
	return chain
}

func parsePrivateKey(text string, add addFunc) crypto.Signer {
	if strings.TrimSpace(text) == "" {
		add(ProblemPrivateKeyMissing, "give the certificate's private key (PEM, unencrypted)")
		return nil
	}
	blocks, ok := pemBlocks(text)
	if !ok {
		add(ProblemPrivateKeyNotPEM, "the private key is not PEM: no -----BEGIN PRIVATE KEY----- block with valid base64 was found")
		return nil
	}
	var key crypto.Signer
	keys := 0
	for _, b := range blocks {
		switch {
		case b.Type == "EC PARAMETERS":
			continue // openssl ecparam -genkey writes these before the key; they say nothing the key does not
		case b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED"):
			keys++
			add(ProblemPrivateKeyEncrypted, "the private key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem); it is stored encrypted by mailplane")
			continue
		case b.Type != "PRIVATE KEY" && b.Type != "RSA PRIVATE KEY" && b.Type != "EC PRIVATE KEY":
			add(ProblemPrivateKeyWrongType, "the private key field holds a %s block; it takes one PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block", b.Type)
			continue
		}
		keys++
		if keys > 1 {
			continue
		}
		k, err := parseKeyBlock(b)
		if err != nil {
			add(ProblemPrivateKeyMalformed, "the private key cannot be read: %v", err)
			continue
		}
		key = k
	}
	if keys > 1 {
		add(ProblemPrivateKeyExtraBlocks, "the private key field holds %d keys; give only the certificate's own", keys)
		return nil
	}
	return key
}

func parseKeyBlock(b *pem.Block) (crypto.Signer, error) {
	var k any
	var err error
	switch b.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T is no signing key", k)
	}
	return s, nil
}

func checkPublicKey(c *x509.Certificate, add addFunc) {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 {
			add(ProblemKeyTooWeak, "the certificate has a %d-bit RSA key; at least 2048 bits are required", n)
		}
	case *ecdsa.PublicKey:
		if k.Curve.Params().BitSize < 256 {
			add(ProblemKeyTooWeak, "the certificate has an EC key on %s; P-256 or larger is required", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		add(ProblemKeyUnsupported, "the certificate has an Ed25519 key, which browsers do not accept for TLS; use RSA (2048+) or ECDSA (P-256+)")
	default:
		add(ProblemKeyUnsupported, "the certificate has a %s key; use RSA (2048+) or ECDSA (P-256+)", c.PublicKeyAlgorithm)
	}
}

func publicKeyMatches(pub any, key crypto.Signer) bool {
	eq, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(pub)
}

func isWeakSignature(a x509.SignatureAlgorithm) bool {
	switch a {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return true
	}
	return false
}

// buildPath walks from the leaf up through the given CA certificates, each signed by the next,
// and reports what breaks the walk or stays unused. It returns the CA certificates on the path.
func buildPath(leaf *x509.Certificate, chain []*x509.Certificate, now time.Time, add addFunc) []*x509.Certificate {
	used := make([]bool, len(chain))
	var path []*x509.Certificate
	cur := leaf
	for len(path) < len(chain) {
		if len(path) > 0 && isSelfSigned(cur) {
			break // reached a root
		}
		next := -1
		for i, c := range chain {
			if !used[i] && signedBy(cur, c) {
				next = i
				break
			}
		}
		if next < 0 {
			// The top of the given chain may name a root that was left out, as is usual.
			switch i := nameIssuer(cur, chain, used); {
			case i >= 0:
				add(ProblemChainBroken, "%s names %s as its issuer, but that certificate did not sign it (or is no CA certificate)", cur.Subject, chain[i].Subject)
			case len(path) == 0:
				add(ProblemChainBroken, "the certificate (issued by %s) was not signed by any certificate of the CA chain: give the chain of the CA that issued it", cur.Issuer)
			}
			break
		}
		used[next] = true
		path = append(path, chain[next])
		cur = chain[next]
	}
	for i, c := range chain {
		if !used[i] {
			add(ProblemChainUnused, "certificate %d of the CA chain (%s) is not on the path from the certificate; remove it", i+1, c.Subject)
		}
	}
	for _, c := range path {
		if !isSelfSigned(c) && isWeakSignature(c.SignatureAlgorithm) {
			add(ProblemWeakSignature, "the CA certificate %s is signed with %s, which browsers refuse; get the CA's current chain", c.Subject, c.SignatureAlgorithm)
		}
		switch {
		case now.Before(c.NotBefore):
			add(ProblemChainExpired, "the CA certificate %s is valid only from %s", c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
		case now.After(c.NotAfter):
			add(ProblemChainExpired, "the CA certificate %s expired on %s; get the CA's current chain", c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	return path
}

// signedBy reports whether parent signed c. A signature with an algorithm Go refuses (SHA-1)
// counts as signed: that is reported as weak_signature, not as a broken chain.
func signedBy(c, parent *x509.Certificate) bool {
	err := c.CheckSignatureFrom(parent)
	var insecure x509.InsecureAlgorithmError
	return err == nil || errors.As(err, &insecure)
}

// nameIssuer finds an unused chain certificate whose subject is cur's issuer.
func nameIssuer(cur *x509.Certificate, chain []*x509.Certificate, used []bool) int {
	for i, c := range chain {
		if !used[i] && bytes.Equal(c.RawSubject, cur.RawIssuer) {
			return i
		}
	}
	return -1
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil
}

func describeNames(c *x509.Certificate) string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		if c.Subject.CommonName != "" {
			return c.Subject.CommonName + " (common name only: clients ignore it, a subject alternative name is needed)"
		}
		return "no name"
	}
	return strings.Join(names, ", ")
}

// describe fills the certificate's description; path is its CA certificates.
func describe(leaf *x509.Certificate, path []*x509.Certificate) *CertificateInfo {
	sum := sha256.Sum256(leaf.Raw)
	info := &CertificateInfo{
		Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String(), SANs: slices.Clone(leaf.DNSNames),
		Serial: leaf.SerialNumber.Text(16), Fingerprint: hex.EncodeToString(sum[:]), KeyType: keyType(leaf.PublicKey),
		NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(), ChainLength: len(path),
	}
	for _, ip := range leaf.IPAddresses {
		info.SANs = append(info.SANs, ip.String())
	}
	if info.SANs == nil {
		info.SANs = []string{}
	}
	top := leaf
	if len(path) > 0 {
		top = path[len(path)-1]
	}
	if isSelfSigned(top) {
		info.ChainRoot = top.Subject.String()
	} else {
		info.ChainRoot = top.Issuer.String()
	}
	return info
}

func keyType(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "EC-" + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// DescribeCertificate describes a stored certificate bundle (the server certificate and the CA
// certificates after it, PEM), as VerifyCertificate would.
func DescribeCertificate(certificatePEM, chainPEM string) (*CertificateInfo, error) {
	b, _ := pem.Decode([]byte(certificatePEM))
	if b == nil {
		return nil, errors.New("certificate: no PEM block")
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	blocks, _ := pemBlocks(chainPEM)
	var path []*x509.Certificate
	for _, b := range blocks {
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate chain: %w", err)
		}
		path = append(path, c)
	}
	return describe(leaf, path), nil
}

// SplitBundle splits a PEM bundle (server certificate first, then its CA certificates, as ACME
// servers deliver them) into the server certificate and the chain.
func SplitBundle(bundle string) (certificate, chain string) {
	blocks, _ := pemBlocks(bundle)
	var c, ch strings.Builder
	for i, b := range blocks {
		if i == 0 {
			c.Write(pem.EncodeToMemory(b))
			continue
		}
		ch.Write(pem.EncodeToMemory(b))
	}
	return c.String(), ch.String()
}
