package domain

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func evolveHost(v VirtualHost, events []Event) VirtualHost {
	for _, e := range events {
		v = v.Evolve(e)
	}
	return v
}

func decided(t *testing.T, v VirtualHost, cmd VirtualHostCommand) (VirtualHost, []Event) {
	t.Helper()
	events, err := v.Decide(cmd)
	require.NoError(t, err, "%T", cmd)
	return evolveHost(v, events), events
}

func addedHost(t *testing.T) VirtualHost {
	v, _ := decided(t, VirtualHost{}, AddVirtualHost{Domain: "example.com", Host: "Mail.Example.COM.", At: certNow})
	return v
}

// validFiles are a certificate for mail.example.com valid from a month before certNow for the
// given lifetime.
func validFiles(t *testing.T, life time.Duration) CertificateFiles {
	p := getPKI(t)
	from := certNow.AddDate(0, -1, 0)
	cert, key := p.leaf(t, leafOpts{from: from, to: from.Add(life)})
	return CertificateFiles{Certificate: cert, CAChain: p.interPEM, PrivateKey: keyPEM(t, key)}
}

func TestAddVirtualHost(t *testing.T) {
	t.Parallel()
	v := addedHost(t)
	require.Equal(t, "mail.example.com", v.Host)
	require.Equal(t, "example.com", v.Domain)
	require.Equal(t, -1, v.Renewal.Warned)

	_, err := v.Decide(AddVirtualHost{Domain: "example.com", Host: "mail.example.com", At: certNow})
	require.ErrorIs(t, err, ErrAlreadyExists)
	_, err = VirtualHost{}.Decide(AddVirtualHost{Domain: "example.com", Host: "-bad-.example.com"})
	var ve ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "host", ve.Errors[0].Field)
	_, err = VirtualHost{}.Decide(AddVirtualHost{Domain: "example.com", Host: "mail.other.org", OtherDomain: "other.org"})
	require.ErrorAs(t, err, &ve)
	require.Contains(t, ve.Errors[0].Message, "another domain")
	_, err = VirtualHost{}.Decide(RemoveVirtualHost{})
	require.ErrorIs(t, err, ErrNotFound)

	idn, _ := decided(t, VirtualHost{}, AddVirtualHost{Domain: "example.com", Host: "wébmail.example.com"})
	require.Equal(t, "xn--wbmail-bva.example.com", idn.Host)
	require.Equal(t, "wébmail.example.com", idn.UnicodeHost)
}

// A custom certificate is installed only when it verifies; the key stays sealed.
func TestInstallCertificate(t *testing.T) {
	t.Parallel()
	v := addedHost(t)
	files := validFiles(t, 90*24*time.Hour)
	bad := files
	bad.PrivateKey = ""
	_, err := v.Decide(InstallCertificate{Files: bad, At: certNow})
	var invalid *CertificateInvalidError
	require.ErrorAs(t, err, &invalid)
	require.Equal(t, ProblemPrivateKeyMissing, invalid.Problems[0].Code)

	v, events := decided(t, v, InstallCertificate{Files: files, PrivateKeySecret: "enc:key", At: certNow, By: "admin@example.com"})
	require.Equal(t, "enc:key", events[0].(CertificateInstalled).PrivateKeySecret)
	require.Equal(t, SourceCustom, v.Certificate.Source)
	require.Equal(t, "enc:key", v.Certificate.PrivateKeySecret)
	require.Equal(t, v.Certificate.NotAfter.Add(-30*24*time.Hour), v.Certificate.RenewalDue())

	v, _ = decided(t, v, RemoveCertificate{})
	require.Nil(t, v.Certificate)
	_, err = v.Decide(RemoveCertificate{})
	require.ErrorIs(t, err, ErrNotFound)
}

// After three failed requests within an hour the next one waits until the oldest is an hour old;
// the count survives removing and adding the host again.
func TestACMERequestsBackOffAfterThreeFailures(t *testing.T) {
	t.Parallel()
	v := addedHost(t)
	at := certNow
	_, err := v.Decide(RequestCertificate{RequestID: "r", Chain: "medium", At: at})
	var ve ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "chain", ve.Errors[0].Field)

	for i, id := range []string{"r1", "r2", "r3"} {
		at = certNow.Add(time.Duration(i) * 10 * time.Minute)
		v, _ = decided(t, v, RequestCertificate{RequestID: id, At: at, By: "admin@example.com"})
		require.Equal(t, ChainLong, v.Issuance.Chain)
		_, err := v.Decide(RequestCertificate{RequestID: "again", At: at})
		require.ErrorIs(t, err, ErrConflict, "one request at a time")
		_, err = v.Decide(RequestCertificate{RequestID: "again", At: at.Add(IssuanceAbandonedAfter)})
		require.NoError(t, err, "unless the one in flight was abandoned")
		var failed []Event
		v, failed = decided(t, v, RecordIssuanceFailure{RequestID: id, Errors: []string{"connection refused"}, At: at.Add(time.Second)})
		require.True(t, failed[0].(CertificateIssuanceFailed).Notify, "a requested issuance always reports")
		_, again := decided(t, v, RecordIssuanceFailure{RequestID: id, At: at.Add(time.Second)})
		require.Empty(t, again, "a failure is recorded once")
	}
	v, _ = decided(t, v, RemoveVirtualHost{})
	require.Len(t, v.Failures, 3)
	v = v.Evolve(VirtualHostAdded{Domain: "example.com", Host: "mail.example.com"})
	require.Equal(t, VirtualHost{Failures: []time.Time{certNow.Add(time.Second), certNow.Add(10*time.Minute + time.Second), certNow.Add(20*time.Minute + time.Second)}}.
		Evolve(VirtualHostAdded{Domain: "example.com", Host: "mail.example.com"}), v)

	now := certNow.Add(30 * time.Minute)
	_, err = v.Decide(RequestCertificate{RequestID: "r4", At: now})
	var later *RetryLaterError
	require.ErrorAs(t, err, &later)
	require.Equal(t, 30*time.Minute+time.Second, later.RetryAfter)
	_, err = v.Decide(RequestCertificate{RequestID: "r4", At: certNow.Add(time.Hour + time.Second)})
	require.NoError(t, err, "the oldest failure is an hour old")
}

// The renewal job renews an ACME certificate once it is due, backs off after failures, warns on
// the first failure and again as expiry nears, and starts over with the new certificate.
func TestRenewal(t *testing.T) {
	t.Parallel()
	v := addedHost(t)
	v, _ = decided(t, v, RequestCertificate{RequestID: "first", Chain: ChainShort, At: certNow, By: "admin@example.com"})
	files := validFiles(t, 90*24*time.Hour)
	v, issued := decided(t, v, RecordIssued{RequestID: "first", Files: files, PrivateKeySecret: "enc:k", At: certNow})
	require.Equal(t, ChainShort, issued[0].(CertificateIssued).Chain)
	_, again := decided(t, v, RecordIssued{RequestID: "first", Files: files, At: certNow})
	require.Empty(t, again, "the outcome is recorded once")
	cert := v.Certificate
	require.Equal(t, SourceACME, cert.Source)
	require.Equal(t, "admin@example.com", cert.RequestedBy)
	due := cert.RenewalDue()
	require.Equal(t, cert.NotAfter.Add(-30*24*time.Hour), due)

	_, events := decided(t, v, RequestCertificate{RequestID: "early", Renewal: true, At: due.Add(-time.Minute)})
	require.Empty(t, events, "not due yet")
	v, events = decided(t, v, RequestCertificate{RequestID: "renew1", Renewal: true, At: due})
	req := events[0].(CertificateRequested)
	require.Equal(t, ChainShort, req.Chain, "a renewal keeps the chain asked for")
	require.Equal(t, "admin@example.com", req.RequestedBy, "and reports to who asked for the certificate")

	fail := func(v VirtualHost, id string, at time.Time) (VirtualHost, CertificateIssuanceFailed) {
		v, events := decided(t, v, RecordIssuanceFailure{RequestID: id, Errors: []string{"dns"}, At: at})
		return v, events[0].(CertificateIssuanceFailed)
	}
	v, f := fail(v, "renew1", due)
	require.True(t, f.Notify, "the first failure warns")
	require.Equal(t, due.Add(time.Hour), *f.NextAttemptAt)
	_, events = decided(t, v, RequestCertificate{RequestID: "renew2", Renewal: true, At: due.Add(30 * time.Minute)})
	require.Empty(t, events, "backing off")
	v, _ = decided(t, v, RequestCertificate{RequestID: "renew2", Renewal: true, At: due.Add(time.Hour)})
	v, f = fail(v, "renew2", due.Add(time.Hour))
	require.False(t, f.Notify, "no new warning at 29 days left")
	require.Equal(t, due.Add(3*time.Hour), *f.NextAttemptAt, "twice as long")

	sixDaysLeft := cert.NotAfter.Add(-6 * 24 * time.Hour)
	v, _ = decided(t, v, RequestCertificate{RequestID: "renew3", Renewal: true, At: sixDaysLeft})
	v, f = fail(v, "renew3", sixDaysLeft)
	require.True(t, f.Notify, "a week left: warn again")
	require.Equal(t, 7, f.Warned)
	v, _ = decided(t, v, RequestCertificate{RequestID: "renew4", Renewal: true, At: sixDaysLeft.Add(24 * time.Hour)})
	v, f = fail(v, "renew4", sixDaysLeft.Add(24*time.Hour))
	require.False(t, f.Notify, "5 days left: the week's warning was given")
	require.Equal(t, 7, f.Warned)
	require.Equal(t, 4, v.Renewal.Failures)

	at := cert.NotAfter.Add(-2 * 24 * time.Hour)
	v, _ = decided(t, v, RequestCertificate{RequestID: "renew5", Renewal: true, At: at})
	v, _ = decided(t, v, RecordIssued{RequestID: "renew5", Files: validFiles(t, 90*24*time.Hour), PrivateKeySecret: "enc:k2", At: at})
	require.Equal(t, RenewalState{Warned: -1}, v.Renewal, "a new certificate starts over")
	require.Equal(t, "admin@example.com", v.Certificate.RequestedBy)
	require.Nil(t, v.LastFailure)

	// A custom certificate is never renewed, and wins over a request in flight.
	v, _ = decided(t, v, RequestCertificate{RequestID: "late", At: at.Add(2 * time.Hour)})
	v, _ = decided(t, v, InstallCertificate{Files: validFiles(t, 90*24*time.Hour), At: certNow})
	_, events = decided(t, v, RecordIssued{RequestID: "late", Files: validFiles(t, 90*24*time.Hour), At: certNow})
	require.Empty(t, events, "the late ACME result is dropped")
	_, events = decided(t, v, RequestCertificate{RequestID: "x", Renewal: true, At: cert.NotAfter})
	require.Empty(t, events)
}

func TestRenewalDueAndBackoff(t *testing.T) {
	t.Parallel()
	c := InstalledCertificate{CertificateInfo: CertificateInfo{NotBefore: certNow, NotAfter: certNow.Add(6 * 24 * time.Hour)}}
	require.Equal(t, certNow.Add(4*24*time.Hour), c.RenewalDue(), "short-lived certificates renew after two thirds")
	c.NotAfter = certNow.Add(90*24*time.Hour - time.Second)
	require.Equal(t, c.NotAfter.Add(-30*24*time.Hour), c.RenewalDue(), "a 90-day certificate (notAfter inclusive) 30 days before")
	c.NotAfter = certNow.Add(45 * 24 * time.Hour)
	require.Equal(t, c.NotAfter.Add(-15*24*time.Hour), c.RenewalDue())
	var got []time.Duration
	for n := 1; n <= 7; n++ {
		got = append(got, renewalBackoff(n))
	}
	require.Equal(t, []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 16 * time.Hour, 24 * time.Hour, 24 * time.Hour}, got)
	require.Equal(t, -1, warningMark(20*24*time.Hour))
	require.Equal(t, 14, warningMark(14*24*time.Hour+time.Hour))
	require.Equal(t, 1, warningMark(36*time.Hour))
	require.Equal(t, 0, warningMark(time.Hour))
	require.Equal(t, 0, warningMark(-time.Hour), "expired")
}
