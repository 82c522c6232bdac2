package commands

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
)

// RenewalActor is the actor of the renewals the renewal job starts.
const RenewalActor = "system:certificate-renewal"

// VerifyCertificate checks a custom certificate for one of a domain's virtual hosts, now. It
// changes nothing.
func (s *Service) VerifyCertificate(ctx context.Context, domainName, host string, files domain.CertificateFiles) (domain.CertificateCheck, error) {
	if _, _, err := s.VirtualHost(ctx, domainName, host); err != nil {
		return domain.CertificateCheck{}, err
	}
	return domain.VerifyCertificate(host, files, s.now()), nil
}

// InstallCertificate installs a custom certificate, which must verify (a
// *domain.CertificateInvalidError lists its problems otherwise). Its private key goes into the
// event sealed with the domain's key only.
func (s *Service) InstallCertificate(ctx context.Context, req Request, domainName, host string, files domain.CertificateFiles) (Outcome, error) {
	if _, _, err := s.VirtualHost(ctx, domainName, host); err != nil {
		return Outcome{}, err
	}
	check := domain.VerifyCertificate(host, files, s.now())
	if !check.Valid {
		return Outcome{}, &domain.CertificateInvalidError{Problems: check.Problems}
	}
	secret, err := s.keys.Seal(ctx, domainName, []byte(check.PrivateKeyPEM))
	if err != nil {
		return Outcome{}, err
	}
	return s.virtualHostCommand(ctx, req, domainName, host, func(context.Context, pgx.Tx, domain.VirtualHost) (domain.VirtualHostCommand, error) {
		return domain.InstallCertificate{Files: files, PrivateKeySecret: secret, At: s.now(), By: req.Meta.Actor}, nil
	}, nil)
}

// RemoveCertificate removes a virtual host's certificate.
func (s *Service) RemoveCertificate(ctx context.Context, req Request, domainName, host string) (Outcome, error) {
	return s.virtualHostCommand(ctx, req, domainName, host, func(context.Context, pgx.Tx, domain.VirtualHost) (domain.VirtualHostCommand, error) {
		return domain.RemoveCertificate{}, nil
	}, nil)
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RequestCertificate asks for an ACME certificate for a virtual host and queues the job that
// obtains it, in one transaction; Outcome.JobID is that job. After domain.MaxIssuanceFailures
// failures within the hour it answers a *domain.RetryLaterError.
func (s *Service) RequestCertificate(ctx context.Context, req Request, domainName, host, chain string) (Outcome, error) {
	return s.requestCertificate(ctx, req, domainName, host, chain, false)
}

// StartRenewal renews a virtual host's ACME certificate if it is due and its last failed
// renewal has waited out its backoff (the renewal job calls it for every certificate the read
// model shows due); otherwise it does nothing.
func (s *Service) StartRenewal(ctx context.Context, domainName, host string) (Outcome, error) {
	return s.requestCertificate(ctx, Request{Meta: eventstore.Metadata{Actor: RenewalActor}}, domainName, host, "", true)
}

func (s *Service) requestCertificate(ctx context.Context, req Request, domainName, host, chain string, renewal bool) (Outcome, error) {
	if s.jobs == nil {
		return Outcome{}, ErrNoJobs
	}
	var jobID int64
	out, err := s.virtualHostCommand(ctx, req, domainName, host, func(context.Context, pgx.Tx, domain.VirtualHost) (domain.VirtualHostCommand, error) {
		jobID = 0
		return domain.RequestCertificate{RequestID: newRequestID(), Chain: chain, Renewal: renewal, At: s.now(), By: req.Meta.Actor}, nil
	}, func(ctx context.Context, tx pgx.Tx, _ domain.VirtualHost, events []domain.Event) error {
		ev := events[0].(domain.CertificateRequested)
		var err error
		jobID, err = s.jobs.IssueCertificate(ctx, tx, IssueCertificateJob{Domain: domainName, Host: host, RequestID: ev.RequestID,
			Chain: ev.Chain, Renewal: ev.Renewal, RequestedBy: ev.RequestedBy})
		return err
	})
	out.JobID = jobID
	return out, err
}

// PendingIssuance returns the ACME request in flight for a virtual host if it is requestID;
// nil when it is not (the outcome was recorded, or the host removed).
func (s *Service) PendingIssuance(ctx context.Context, domainName, host, requestID string) (*domain.Issuance, error) {
	v, _, err := Load[domain.VirtualHost](ctx, s, domain.VirtualHostStreamID(domainName, host))
	if err != nil {
		return nil, err
	}
	if !v.Exists() || v.Issuance == nil || v.Issuance.RequestID != requestID {
		return nil, nil
	}
	return v.Issuance, nil
}

// IssuedCertificate is what an ACME order delivered.
type IssuedCertificate struct {
	// Bundle is the server certificate followed by the CA certificates the CA chose (PEM).
	Bundle     string
	PrivateKey string
}

// RecordCertificateIssued records the certificate an ACME request obtained (the request's
// outcome) and queues the e-mail that reports it. A certificate that does not verify is
// recorded as a failure instead, with its problems. Recording twice changes nothing.
func (s *Service) RecordCertificateIssued(ctx context.Context, req Request, domainName, host, requestID string, issued IssuedCertificate) (Outcome, error) {
	certPEM, chainPEM := domain.SplitBundle(issued.Bundle)
	files := domain.CertificateFiles{Certificate: certPEM, CAChain: chainPEM, PrivateKey: issued.PrivateKey}
	check := domain.VerifyCertificate(host, files, s.now())
	if !check.Valid {
		var errs []string
		for _, p := range check.Problems {
			errs = append(errs, "the CA's certificate does not verify: "+p.Message+" ("+p.Code+")")
		}
		return s.RecordIssuanceFailure(ctx, req, domainName, host, requestID, errs)
	}
	secret, err := s.keys.Seal(ctx, domainName, []byte(check.PrivateKeyPEM))
	if err != nil {
		return Outcome{}, err
	}
	var before domain.VirtualHost
	return s.recordOutcome(ctx, req, domainName, host, func(_ context.Context, _ pgx.Tx, v domain.VirtualHost) (domain.VirtualHostCommand, error) {
		before = v
		return domain.RecordIssued{RequestID: requestID, Files: files, PrivateKeySecret: secret, At: s.now()}, nil
	}, func(ctx context.Context, tx pgx.Tx, v domain.VirtualHost, events []domain.Event) error {
		ev := events[0].(domain.CertificateIssued)
		return s.mail(ctx, tx, v, before.Issuance, issuedMail(v, ev), ev.RequestID)
	})
}

// RecordIssuanceFailure records that an ACME request failed, with the errors to fix (the
// request's outcome), and queues the e-mail that says so when the failure warns (always for a
// requested certificate; for renewals see domain.CertificateIssuanceFailed). Recording twice
// changes nothing.
func (s *Service) RecordIssuanceFailure(ctx context.Context, req Request, domainName, host, requestID string, errs []string) (Outcome, error) {
	var before domain.VirtualHost
	return s.recordOutcome(ctx, req, domainName, host, func(_ context.Context, _ pgx.Tx, v domain.VirtualHost) (domain.VirtualHostCommand, error) {
		before = v
		return domain.RecordIssuanceFailure{RequestID: requestID, Errors: errs, At: s.now()}, nil
	}, func(ctx context.Context, tx pgx.Tx, v domain.VirtualHost, events []domain.Event) error {
		ev := events[0].(domain.CertificateIssuanceFailed)
		if !ev.Notify {
			return nil
		}
		return s.mail(ctx, tx, v, before.Issuance, failedMail(before, ev), ev.RequestID)
	})
}

// mail queues a certificate e-mail for the request's outcome: to whoever asked (the
// certificate's requester for a renewal), the operator's contact when that is no address, and
// the contact too for renewals.
func (s *Service) mail(ctx context.Context, tx pgx.Tx, v domain.VirtualHost, issuance *domain.Issuance, m Mail, requestID string) error {
	if s.jobs == nil {
		return ErrNoJobs
	}
	var to []string
	add := func(a string) {
		if strings.Contains(a, "@") && !containsFold(to, a) {
			to = append(to, a)
		}
	}
	renewal := false
	if issuance != nil {
		add(issuance.RequestedBy)
		renewal = issuance.Renewal
	}
	if len(to) == 0 || renewal {
		add(s.contact)
	}
	if len(to) == 0 {
		s.logger.Warn("certificate mail has no recipient: set MAILPLANE_ACME_EMAIL", "host", v.Host, "subject", m.Subject)
		return nil
	}
	m.To, m.Stream = to, virtualHostStream(v.Domain, v.Host)
	m.Cause = fmt.Sprintf("%s:%s", m.Stream.ID, requestID)
	if issuance != nil {
		m.RequestedBy = issuance.RequestedBy
	}
	_, err := s.jobs.SendMail(ctx, tx, m)
	return err
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// ErrNoCertificate means a virtual host has no certificate installed.
var ErrNoCertificate = errors.New("no certificate is installed")

// TLSCertificate returns the certificate a virtual host serves, with its private key opened
// from the sealed copy in the host's stream: what a TLS listener's GetCertificate needs. host
// is matched case-insensitively in any domain (the name is unique across domains).
func (s *Service) TLSCertificate(ctx context.Context, host string) (*tls.Certificate, error) {
	ascii, err := NormalizeHost(host)
	if err != nil {
		return nil, fmt.Errorf("virtual host %q: %w", host, domain.ErrNotFound)
	}
	var domainName string
	err = s.pool.QueryRow(ctx, `SELECT domain FROM virtual_host_claims WHERE host = $1`, ascii).Scan(&domainName)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("virtual host %s: %w", ascii, domain.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	v, _, err := s.VirtualHost(ctx, domainName, ascii)
	if err != nil {
		return nil, err
	}
	if v.Certificate == nil {
		return nil, fmt.Errorf("virtual host %s: %w", ascii, ErrNoCertificate)
	}
	key, err := s.keys.Open(ctx, v.Certificate.PrivateKeySecret)
	if err != nil {
		return nil, fmt.Errorf("virtual host %s: private key: %w", ascii, err)
	}
	c, err := tls.X509KeyPair([]byte(v.Certificate.CertificatePEM+v.Certificate.ChainPEM), key)
	if err != nil {
		return nil, fmt.Errorf("virtual host %s: %w", ascii, err)
	}
	return &c, nil
}
