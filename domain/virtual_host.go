package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Certificate sources.
const (
	SourceCustom = "custom"
	SourceACME   = "acme"
)

// ACME chain preferences (API.md: "chain": "long" | "short").
const (
	ChainLong  = "long"
	ChainShort = "short"
)

// Issuance limits, as Let's Encrypt counts failed validations: after MaxIssuanceFailures
// failures for one host within IssuanceFailureWindow, a new request waits until the oldest of
// them is that old.
const (
	MaxIssuanceFailures   = 3
	IssuanceFailureWindow = time.Hour
)

// IssuanceAbandonedAfter is how long an ACME request may stay in flight before a new one may
// take its place: its job has given up without recording an outcome (its attempts take minutes).
const IssuanceAbandonedAfter = time.Hour

// RenewBefore is how long before expiry an ACME certificate is renewed (Let's Encrypt's advice
// for its 90-day certificates). Certificates that live no more than twice that (Let's Encrypt's
// coming 45-day and 6-day ones) renew after two thirds of their life.
const RenewBefore = 30 * 24 * time.Hour

// Renewal backoff: a failed renewal is tried again after an hour, then after twice as long each
// time, at most a day apart.
const (
	renewalBackoffFirst = time.Hour
	renewalBackoffMax   = 24 * time.Hour
)

// expiryWarnings are the days left at which a failing renewal warns again (besides its first
// failure): the warnings grow more urgent as expiry nears.
var expiryWarnings = []int{14, 7, 3, 1, 0}

// VirtualHost is another name under which a domain's users reach their web mail and services
// (Carbonio's zimbraVirtualHostname), with the TLS certificate that serves it. Its stream is
// VirtualHostStreamID(domain, host); a host name is unique across all domains (the caller
// claims it).
type VirtualHost struct {
	Domain      string
	Host        string // A-labels, lower case
	UnicodeHost string
	CreatedAt   time.Time
	Certificate *InstalledCertificate
	// Issuance is the ACME request in flight, nil when none.
	Issuance *Issuance
	// Failures are the times of the latest issuance failures (at most MaxIssuanceFailures),
	// oldest first. They stay when the host is removed and added again: the CA counts them per
	// name, not per configuration.
	Failures []time.Time
	// LastFailure is the latest failed issuance, until a certificate is installed or issued.
	LastFailure *IssuanceFailure
	Renewal     RenewalState
}

// InstalledCertificate is the certificate a virtual host serves. The private key is kept only
// sealed (and never in the read models' copy of the state: json "-").
type InstalledCertificate struct {
	CertificateInfo
	Source           string
	CertificatePEM   string
	ChainPEM         string
	PrivateKeySecret string `json:"-"`
	InstalledAt      time.Time
	// Chain is the chain asked for (ACME only).
	Chain string
	// RequestedBy asked for it (or installed it); renewal mail goes there.
	RequestedBy string
}

// RenewalDue is when the certificate should be renewed: RenewBefore before it expires, or after
// two thirds of its life when it lives no more than twice that. (A "90-day" certificate lives
// 90 days less a second: both Pebble and Let's Encrypt make notAfter inclusive.)
func (c InstalledCertificate) RenewalDue() time.Time {
	before := RenewBefore
	if life := c.NotAfter.Sub(c.NotBefore); life <= 2*RenewBefore {
		before = life / 3
	}
	return c.NotAfter.Add(-before)
}

// Issuance is an ACME request in flight.
type Issuance struct {
	RequestID   string
	Chain       string
	Renewal     bool
	RequestedAt time.Time
	RequestedBy string
}

// IssuanceFailure is a failed ACME request.
type IssuanceFailure struct {
	RequestID string
	Renewal   bool
	At        time.Time
	Errors    []string
}

// RenewalState tracks the renewals of the current ACME certificate.
type RenewalState struct {
	// Failures counts failed renewals of the current certificate.
	Failures int
	// NextAttemptAt is when a failed renewal is tried again (zero: once due).
	NextAttemptAt time.Time
	// Warned is the lowest days-left mark (expiryWarnings) a failure warning was sent at; -1
	// before any.
	Warned int
}

// Exists reports whether the virtual host is configured.
func (v VirtualHost) Exists() bool { return v.Host != "" }

// FailuresSince counts the issuance failures at or after t.
func (v VirtualHost) FailuresSince(t time.Time) int {
	n := 0
	for _, f := range v.Failures {
		if !f.Before(t) {
			n++
		}
	}
	return n
}

// RetryAfter is how long a new ACME request must wait at now (0: it may go ahead).
func (v VirtualHost) RetryAfter(now time.Time) time.Duration {
	if v.FailuresSince(now.Add(-IssuanceFailureWindow)) < MaxIssuanceFailures {
		return 0
	}
	oldest := v.Failures[len(v.Failures)-MaxIssuanceFailures]
	return oldest.Add(IssuanceFailureWindow).Sub(now)
}

// VirtualHostCommand is a command on a virtual host.
type VirtualHostCommand interface{ isVirtualHostCommand() }

// AddVirtualHost configures a virtual host for a domain. Host may be Unicode or A-labels. The
// caller checks that the domain exists and accepts changes, and fills OtherDomain with the
// mail domain of another tenant the host is or lies under, if any.
type AddVirtualHost struct {
	Domain      string
	Host        string
	At          time.Time
	OtherDomain string
}

// RemoveVirtualHost removes a virtual host and its certificate.
type RemoveVirtualHost struct{}

// InstallCertificate installs a custom certificate. The decision verifies Files itself;
// PrivateKeySecret is the check's PrivateKeyPEM sealed by the caller. An ACME request in
// flight is abandoned: its result will not replace this certificate.
type InstallCertificate struct {
	Files            CertificateFiles
	PrivateKeySecret string
	At               time.Time
	By               string
}

// RemoveCertificate removes the installed certificate.
type RemoveCertificate struct{}

// RequestCertificate asks for an ACME certificate: by an administrator, or (Renewal) by the
// renewal job once the current ACME certificate is due.
type RequestCertificate struct {
	RequestID string
	Chain     string
	Renewal   bool
	At        time.Time
	By        string
}

// RecordIssued records the certificate an ACME request obtained, verified like a custom one.
type RecordIssued struct {
	RequestID        string
	Files            CertificateFiles
	PrivateKeySecret string
	At               time.Time
}

// RecordIssuanceFailure records that an ACME request failed, with the errors to fix.
type RecordIssuanceFailure struct {
	RequestID string
	Errors    []string
	At        time.Time
}

func (AddVirtualHost) isVirtualHostCommand()        {}
func (RemoveVirtualHost) isVirtualHostCommand()     {}
func (InstallCertificate) isVirtualHostCommand()    {}
func (RemoveCertificate) isVirtualHostCommand()     {}
func (RequestCertificate) isVirtualHostCommand()    {}
func (RecordIssued) isVirtualHostCommand()          {}
func (RecordIssuanceFailure) isVirtualHostCommand() {}

// VirtualHostAdded records a new virtual host.
type VirtualHostAdded struct {
	Domain      string    `json:"domain"`
	Host        string    `json:"host"`
	UnicodeHost string    `json:"unicode_host"`
	At          time.Time `json:"at"`
}

// VirtualHostRemoved records that a virtual host (and its certificate) was removed.
type VirtualHostRemoved struct {
	Domain string `json:"domain"`
	Host   string `json:"host"`
}

// CertificateData is a certificate as events carry it; the private key only sealed.
type CertificateData struct {
	CertificatePEM   string    `json:"certificate"`
	ChainPEM         string    `json:"ca_chain"`
	PrivateKeySecret string    `json:"private_key_secret"`
	Subject          string    `json:"subject"`
	Issuer           string    `json:"issuer"`
	SANs             []string  `json:"sans"`
	Serial           string    `json:"serial"`
	Fingerprint      string    `json:"fingerprint_sha256"`
	KeyType          string    `json:"key_type"`
	NotBefore        time.Time `json:"not_before"`
	NotAfter         time.Time `json:"not_after"`
	ChainLength      int       `json:"chain_length"`
	ChainRoot        string    `json:"chain_root"`
}

// CertificateInstalled records a custom certificate installed by an administrator.
type CertificateInstalled struct {
	Host string `json:"host"`
	CertificateData
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// CertificateIssued records the certificate an ACME request obtained: the request's outcome.
type CertificateIssued struct {
	Host      string `json:"host"`
	RequestID string `json:"request_id"`
	Chain     string `json:"chain"`
	Renewal   bool   `json:"renewal"`
	CertificateData
	At time.Time `json:"at"`
}

// CertificateRemoved records that the certificate was removed.
type CertificateRemoved struct {
	Host string `json:"host"`
}

// CertificateRequested records an ACME request; a job carries it out.
type CertificateRequested struct {
	Host        string    `json:"host"`
	RequestID   string    `json:"request_id"`
	Chain       string    `json:"chain"`
	Renewal     bool      `json:"renewal"`
	RequestedBy string    `json:"requested_by"`
	At          time.Time `json:"at"`
}

// CertificateIssuanceFailed records that an ACME request failed: the request's outcome.
// NextAttemptAt is when a failed renewal is tried again; Notify says whether this failure warns
// (a first renewal failure, one nearer expiry than the last warning, or any requested one).
type CertificateIssuanceFailed struct {
	Host          string     `json:"host"`
	RequestID     string     `json:"request_id"`
	Renewal       bool       `json:"renewal"`
	Errors        []string   `json:"errors"`
	At            time.Time  `json:"at"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	Notify        bool       `json:"notify"`
	// Warned is the days-left mark this failure warns at (renewals; -1 for none).
	Warned int `json:"warned"`
}

// EventType implements Event.
func (VirtualHostAdded) EventType() string { return "VirtualHostAdded" }

// EventType implements Event.
func (VirtualHostRemoved) EventType() string { return "VirtualHostRemoved" }

// EventType implements Event.
func (CertificateInstalled) EventType() string { return "CertificateInstalled" }

// EventType implements Event.
func (CertificateIssued) EventType() string { return "CertificateIssued" }

// EventType implements Event.
func (CertificateRemoved) EventType() string { return "CertificateRemoved" }

// EventType implements Event.
func (CertificateRequested) EventType() string { return "CertificateRequested" }

// EventType implements Event.
func (CertificateIssuanceFailed) EventType() string { return "CertificateIssuanceFailed" }

// CertificateInvalidError refuses a certificate that does not verify, with every problem.
type CertificateInvalidError struct {
	Problems []CertificateProblem
}

func (e *CertificateInvalidError) Error() string {
	codes := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		codes[i] = p.Code
	}
	return "the certificate does not verify: " + strings.Join(codes, ", ")
}

// RetryLaterError refuses a request that came too soon: ask again after RetryAfter.
type RetryLaterError struct {
	RetryAfter time.Duration
	Reason     string
}

func (e *RetryLaterError) Error() string { return e.Reason }

// Decide validates cmd against the virtual host.
func (v VirtualHost) Decide(cmd VirtualHostCommand) ([]Event, error) {
	if _, ok := cmd.(AddVirtualHost); !ok && !v.Exists() {
		return nil, fmt.Errorf("virtual host: %w", ErrNotFound)
	}
	switch c := cmd.(type) {
	case AddVirtualHost:
		return v.decideAdd(c)
	case RemoveVirtualHost:
		return []Event{VirtualHostRemoved{Domain: v.Domain, Host: v.Host}}, nil
	case InstallCertificate:
		check := VerifyCertificate(v.Host, c.Files, c.At)
		if !check.Valid {
			return nil, &CertificateInvalidError{Problems: check.Problems}
		}
		return []Event{CertificateInstalled{Host: v.Host, CertificateData: certificateData(check, c.PrivateKeySecret),
			By: c.By, At: c.At}}, nil
	case RemoveCertificate:
		if v.Certificate == nil {
			return nil, fmt.Errorf("virtual host %s has no certificate: %w", v.Host, ErrNotFound)
		}
		return []Event{CertificateRemoved{Host: v.Host}}, nil
	case RequestCertificate:
		return v.decideRequest(c)
	case RecordIssued:
		if v.Issuance == nil || v.Issuance.RequestID != c.RequestID {
			return nil, nil // recorded already, or the host was removed meanwhile
		}
		check := VerifyCertificate(v.Host, c.Files, c.At)
		if !check.Valid {
			return nil, &CertificateInvalidError{Problems: check.Problems}
		}
		return []Event{CertificateIssued{Host: v.Host, RequestID: c.RequestID, Chain: v.Issuance.Chain,
			Renewal: v.Issuance.Renewal, CertificateData: certificateData(check, c.PrivateKeySecret), At: c.At}}, nil
	case RecordIssuanceFailure:
		return v.decideFailure(c)
	}
	return nil, fmt.Errorf("virtual host: unknown command %T", cmd)
}

func (v VirtualHost) decideAdd(c AddVirtualHost) ([]Event, error) {
	ascii, uni, err := NormalizeDomainName(c.Host)
	if err != nil {
		return nil, ValidationError{Errors: []FieldError{{Field: "host", Message: firstMessage(err)}}}
	}
	if c.OtherDomain != "" {
		return nil, Invalid("host", fmt.Sprintf("%s belongs to another domain hosted here (%s)", ascii, c.OtherDomain))
	}
	if v.Exists() {
		return nil, fmt.Errorf("virtual host %s: %w", ascii, ErrAlreadyExists)
	}
	return []Event{VirtualHostAdded{Domain: c.Domain, Host: ascii, UnicodeHost: uni, At: c.At}}, nil
}

func (v VirtualHost) decideRequest(c RequestCertificate) ([]Event, error) {
	if c.Chain == "" {
		c.Chain = ChainLong
	}
	if c.Chain != ChainLong && c.Chain != ChainShort {
		return nil, Invalid("chain", `must be "long" or "short"`)
	}
	if c.RequestID == "" {
		return nil, fmt.Errorf("virtual host: a request needs an id")
	}
	ev := CertificateRequested{Host: v.Host, RequestID: c.RequestID, Chain: c.Chain, Renewal: c.Renewal, RequestedBy: c.By, At: c.At}
	if c.Renewal {
		// The renewal job asks for every certificate it finds due; only one that still is, and
		// whose last failure has waited out its backoff, is renewed.
		cert := v.Certificate
		if v.inFlight(c.At) || cert == nil || cert.Source != SourceACME || c.At.Before(cert.RenewalDue()) ||
			c.At.Before(v.Renewal.NextAttemptAt) {
			return nil, nil
		}
		ev.RequestedBy = cert.RequestedBy
		if cert.Chain != "" {
			ev.Chain = cert.Chain
		}
		return []Event{ev}, nil
	}
	if v.inFlight(c.At) {
		return nil, fmt.Errorf("a certificate for %s is being issued since %s (request %s): %w", v.Host,
			v.Issuance.RequestedAt.UTC().Format(time.RFC3339), v.Issuance.RequestID, ErrConflict)
	}
	if wait := v.RetryAfter(c.At); wait > 0 {
		return nil, &RetryLaterError{RetryAfter: wait, Reason: fmt.Sprintf(
			"%d certificate requests for %s failed within the last hour; fix what the failure e-mails say, then ask again in %s",
			MaxIssuanceFailures, v.Host, wait.Round(time.Second))}
	}
	return []Event{ev}, nil
}

// inFlight reports whether an ACME request is in flight at now (and not abandoned).
func (v VirtualHost) inFlight(now time.Time) bool {
	return v.Issuance != nil && now.Sub(v.Issuance.RequestedAt) < IssuanceAbandonedAfter
}

func (v VirtualHost) decideFailure(c RecordIssuanceFailure) ([]Event, error) {
	if v.Issuance == nil || v.Issuance.RequestID != c.RequestID {
		return nil, nil // recorded already, or the host was removed meanwhile
	}
	ev := CertificateIssuanceFailed{Host: v.Host, RequestID: c.RequestID, Renewal: v.Issuance.Renewal,
		Errors: slices.Clone(c.Errors), At: c.At, Notify: true, Warned: -1}
	if len(ev.Errors) == 0 {
		ev.Errors = []string{"the certificate could not be issued"}
	}
	if ev.Renewal && v.Certificate != nil {
		next := c.At.Add(renewalBackoff(v.Renewal.Failures + 1))
		ev.NextAttemptAt = &next
		mark := warningMark(v.Certificate.NotAfter.Sub(c.At))
		ev.Notify = v.Renewal.Failures == 0 || mark >= 0 && (v.Renewal.Warned < 0 || mark < v.Renewal.Warned)
		ev.Warned = v.Renewal.Warned
		if ev.Notify && mark >= 0 {
			ev.Warned = mark
		}
	}
	return []Event{ev}, nil
}

// renewalBackoff is the wait after the n-th failed renewal.
func renewalBackoff(n int) time.Duration {
	d := renewalBackoffFirst
	for i := 1; i < n && d < renewalBackoffMax; i++ {
		d *= 2
	}
	return min(d, renewalBackoffMax)
}

// warningMark is the lowest expiryWarnings mark that left has reached, or -1.
func warningMark(left time.Duration) int {
	days := int(left.Hours() / 24)
	if left < 0 {
		days = -1
	}
	mark := -1
	for _, w := range expiryWarnings {
		if days <= w {
			mark = w
		}
	}
	return mark
}

func certificateData(c CertificateCheck, keySecret string) CertificateData {
	i := c.Info
	return CertificateData{
		CertificatePEM: c.CertificatePEM, ChainPEM: c.ChainPEM, PrivateKeySecret: keySecret,
		Subject: i.Subject, Issuer: i.Issuer, SANs: slices.Clone(i.SANs), Serial: i.Serial, Fingerprint: i.Fingerprint,
		KeyType: i.KeyType, NotBefore: i.NotBefore, NotAfter: i.NotAfter, ChainLength: i.ChainLength, ChainRoot: i.ChainRoot,
	}
}

func (d CertificateData) installed(source string, at time.Time) *InstalledCertificate {
	return &InstalledCertificate{
		CertificateInfo: CertificateInfo{Subject: d.Subject, Issuer: d.Issuer, SANs: slices.Clone(d.SANs), Serial: d.Serial,
			Fingerprint: d.Fingerprint, KeyType: d.KeyType, NotBefore: d.NotBefore, NotAfter: d.NotAfter,
			ChainLength: d.ChainLength, ChainRoot: d.ChainRoot},
		Source: source, CertificatePEM: d.CertificatePEM, ChainPEM: d.ChainPEM, PrivateKeySecret: d.PrivateKeySecret,
		InstalledAt: at,
	}
}

// Evolve applies one event; other events leave v unchanged.
func (v VirtualHost) Evolve(e Event) VirtualHost {
	switch ev := e.(type) {
	case VirtualHostAdded:
		return VirtualHost{Domain: ev.Domain, Host: ev.Host, UnicodeHost: ev.UnicodeHost, CreatedAt: ev.At,
			Failures: v.Failures, Renewal: RenewalState{Warned: -1}}
	case VirtualHostRemoved:
		return VirtualHost{Failures: v.Failures}
	case CertificateInstalled:
		// The administrator's certificate wins over an ACME request still in flight, whose
		// job then finds nothing to record: a late result must not replace it.
		v.Certificate = ev.installed(SourceCustom, ev.At)
		v.Certificate.RequestedBy = ev.By
		v.Issuance, v.LastFailure, v.Renewal = nil, nil, RenewalState{Warned: -1}
	case CertificateIssued:
		c := ev.installed(SourceACME, ev.At)
		c.Chain = ev.Chain
		if v.Issuance != nil {
			c.RequestedBy = v.Issuance.RequestedBy
		}
		v.Certificate, v.Issuance, v.LastFailure, v.Renewal = c, nil, nil, RenewalState{Warned: -1}
	case CertificateRemoved:
		v.Certificate, v.Renewal = nil, RenewalState{Warned: -1}
	case CertificateRequested:
		v.Issuance = &Issuance{RequestID: ev.RequestID, Chain: ev.Chain, Renewal: ev.Renewal, RequestedAt: ev.At, RequestedBy: ev.RequestedBy}
	case CertificateIssuanceFailed:
		v.Issuance = nil
		v.LastFailure = &IssuanceFailure{RequestID: ev.RequestID, Renewal: ev.Renewal, At: ev.At, Errors: slices.Clone(ev.Errors)}
		v.Failures = append(slices.Clone(v.Failures), ev.At)
		if len(v.Failures) > MaxIssuanceFailures {
			v.Failures = v.Failures[len(v.Failures)-MaxIssuanceFailures:]
		}
		if ev.Renewal {
			v.Renewal.Failures++
			if ev.NextAttemptAt != nil {
				v.Renewal.NextAttemptAt = *ev.NextAttemptAt
			}
			v.Renewal.Warned = ev.Warned
		}
	}
	return v
}
