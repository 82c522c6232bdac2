package commands

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
)

// DKIMRetireActor is the actor of the retirements the rotation's job records.
const DKIMRetireActor = "system:retire_dkim_key"

func dkimStream(domainName string) eventstore.Stream {
	return eventstore.Stream{ID: domain.DKIMStreamID(domainName), Type: domain.StreamTypeDKIM, Domain: domainName}
}

// DKIMKeyRequest is a new key asked for: its selector, its algorithm and, for a rotation, how
// long the key it replaces stays published (0: domain.DefaultDKIMGrace).
type DKIMKeyRequest struct {
	Selector  string
	Algorithm string
	Grace     time.Duration
}

// GenerateDKIMKey makes a key pair for the algorithm: the p= value of its DNS record and the
// private key in PKCS #8 PEM, which is what OpenDKIM, rspamd and go-msgauth all read. An unknown
// algorithm generates nothing (the decision reports it with the other fields).
func GenerateDKIMKey(algorithm string) (publicKey string, privatePEM []byte, err error) {
	var priv crypto.Signer
	var pubDER []byte
	switch algorithm {
	case domain.DKIMAlgorithmRSA:
		k, err := rsa.GenerateKey(rand.Reader, domain.DKIMRSABits)
		if err != nil {
			return "", nil, fmt.Errorf("dkim: generate: %w", err)
		}
		priv = k
		if pubDER, err = x509.MarshalPKIXPublicKey(&k.PublicKey); err != nil {
			return "", nil, fmt.Errorf("dkim: %w", err)
		}
	case domain.DKIMAlgorithmEd25519:
		pub, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return "", nil, fmt.Errorf("dkim: generate: %w", err)
		}
		// RFC 8463 §4.2: the record holds the 32 raw bytes, not a SubjectPublicKeyInfo.
		priv, pubDER = k, pub
	default:
		return "", nil, nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", nil, fmt.Errorf("dkim: %w", err)
	}
	return base64.StdEncoding.EncodeToString(pubDER), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// generateSealed generates a key and seals its private half with the domain's key. Nothing is
// generated or sealed for a domain that does not exist or a request the decision will refuse
// anyway: sealing may create the domain's data key, and a refused request writes nothing.
func (s *Service) generateSealed(ctx context.Context, req Request, domainName string, in DKIMKeyRequest) (domain.GeneratedDKIMKey, error) {
	if _, err := s.loadDomain(ctx, s.pool, domainName); err != nil {
		return domain.GeneratedDKIMKey{}, err
	}
	badGrace := in.Grace != 0 && (in.Grace < domain.MinDKIMGrace || in.Grace > domain.MaxDKIMGrace)
	if _, err := domain.NormalizeDKIMSelector(in.Selector); err != nil || !domain.ValidDKIMAlgorithm(in.Algorithm) ||
		badGrace || len(req.Invalid) > 0 {
		return domain.GeneratedDKIMKey{}, nil
	}
	pub, priv, err := GenerateDKIMKey(in.Algorithm)
	if err != nil || pub == "" {
		return domain.GeneratedDKIMKey{}, err
	}
	secret, err := s.keys.Seal(ctx, domainName, priv)
	clear(priv)
	if err != nil {
		return domain.GeneratedDKIMKey{}, err
	}
	return domain.GeneratedDKIMKey{PublicKey: pub, PrivateKeySecret: secret}, nil
}

// AddDKIMKey generates a domain's DKIM key (when it has no active one: otherwise rotate).
func (s *Service) AddDKIMKey(ctx context.Context, req Request, domainName string, in DKIMKeyRequest) (Outcome, error) {
	key, err := s.generateSealed(ctx, req, domainName, in)
	if err != nil {
		return Outcome{}, err
	}
	return s.dkimCommand(ctx, req, domainName, domain.AddDKIMKey{Domain: domainName, Selector: in.Selector,
		Algorithm: in.Algorithm, Key: key, At: s.now()}, nil)
}

// RotateDKIMKey replaces the active key by a new one under a new selector and schedules the
// job that retires the old one when its grace period is over, in the same transaction.
func (s *Service) RotateDKIMKey(ctx context.Context, req Request, domainName string, in DKIMKeyRequest) (Outcome, error) {
	if s.jobs == nil {
		return Outcome{}, ErrNoJobs
	}
	key, err := s.generateSealed(ctx, req, domainName, in)
	if err != nil {
		return Outcome{}, err
	}
	var jobID int64
	out, err := s.dkimCommand(ctx, req, domainName, domain.RotateDKIMKey{Selector: in.Selector, Algorithm: in.Algorithm,
		Key: key, Grace: in.Grace, At: s.now()}, func(ctx context.Context, tx pgx.Tx, events []domain.Event) error {
		ev := events[0].(domain.DKIMKeyRetiring)
		var err error
		jobID, err = s.jobs.RetireDKIMKey(ctx, tx, RetireDKIMKeyJob{Domain: domainName, Selector: ev.Selector,
			At: ev.RetireAt, RequestedBy: req.Meta.Actor})
		return err
	})
	out.JobID = jobID
	return out, err
}

// RetireDKIMKey retires a replaced key whose grace period is over (the rotation's job);
// before then, or once done, it does nothing. It skips the domain's status: a suspended
// domain's old key still stops being published.
func (s *Service) RetireDKIMKey(ctx context.Context, domainName, selector string) (Outcome, error) {
	req := Request{Meta: eventstore.Metadata{Actor: DKIMRetireActor}}
	return run(ctx, s, req, step[domain.DKIMKeys]{
		stream: dkimStream(domainName),
		with:   []string{domain.DomainStreamID(domainName)},
		decide: func(ctx context.Context, tx pgx.Tx, _ domain.DKIMKeys, _ int) ([]domain.Event, error) {
			d, err := s.currentDKIM(ctx, tx, domainName)
			if err != nil {
				return nil, err
			}
			return d.Decide(domain.RetireDKIMKey{Selector: selector, At: s.now()})
		},
	})
}

// RemoveDKIMKey removes one of a domain's keys.
func (s *Service) RemoveDKIMKey(ctx context.Context, req Request, domainName, selector string) (Outcome, error) {
	return s.dkimCommand(ctx, req, domainName, domain.RemoveDKIMKey{Selector: selector, At: s.now()}, nil)
}

// dkimCommand runs a command on the keys of an existing domain that accepts changes.
func (s *Service) dkimCommand(ctx context.Context, req Request, domainName string, cmd domain.DKIMCommand,
	after func(ctx context.Context, tx pgx.Tx, events []domain.Event) error) (Outcome, error) {
	st := step[domain.DKIMKeys]{
		stream: dkimStream(domainName),
		with:   []string{domain.DomainStreamID(domainName)},
		decide: func(ctx context.Context, tx pgx.Tx, _ domain.DKIMKeys, _ int) ([]domain.Event, error) {
			dom, err := s.loadDomain(ctx, tx, domainName)
			if err != nil {
				return nil, err
			}
			if err := dom.CheckAcceptsChanges(); err != nil {
				return nil, err
			}
			d, err := s.currentDKIM(ctx, tx, domainName)
			if err != nil {
				return nil, err
			}
			return d.Decide(cmd)
		},
	}
	if after != nil {
		st.after = func(ctx context.Context, tx pgx.Tx, _ domain.DKIMKeys, events []domain.Event) error {
			return after(ctx, tx, events)
		}
	}
	return run(ctx, s, req, st)
}

// foldDKIM folds a domain's DKIM stream, leaving out what came before the domain was last
// created: a domain removed and created again starts without keys (the old ones were sealed
// with its destroyed data key, and their selectors are free again). Global positions order
// the two streams: a key is added only to a domain that exists, after its creation committed.
func foldDKIM(reg *eventstore.Registry, domainName string, dkimEvents, domainEvents []eventstore.RecordedEvent) (domain.DKIMKeys, error) {
	var since int64
	for _, e := range domainEvents {
		if e.Type == (domain.DomainCreated{}).EventType() {
			since = e.Position
		}
	}
	current := dkimEvents
	for i, e := range dkimEvents {
		if e.Position > since {
			current = dkimEvents[i:]
			break
		}
		current = nil
	}
	d, err := Fold[domain.DKIMKeys](reg, current)
	d.Domain = domainName
	return d, err
}

// currentDKIM reads a domain's keys of its current incarnation through q.
func (s *Service) currentDKIM(ctx context.Context, q eventstore.DBTX, domainName string) (domain.DKIMKeys, error) {
	var streams map[string][]eventstore.RecordedEvent
	ids := []string{domain.DKIMStreamID(domainName), domain.DomainStreamID(domainName)}
	if l, ok := q.(*loadedTx); ok && hasStream(l.streams, ids[0]) && hasStream(l.streams, ids[1]) {
		streams = l.streams
	} else {
		var err error
		if streams, err = s.store.LoadManyTx(ctx, q, ids); err != nil {
			return domain.DKIMKeys{}, err
		}
	}
	return foldDKIM(s.store.Registry(), domainName, streams[ids[0]], streams[ids[1]])
}

// DKIMKeys returns a domain's keys and their stream version, straight from the stream (the
// sealed private keys included: never show them), or domain.ErrNotFound for no such domain.
func (s *Service) DKIMKeys(ctx context.Context, domainName string) (domain.DKIMKeys, int, error) {
	if _, err := s.loadDomain(ctx, s.pool, domainName); err != nil {
		return domain.DKIMKeys{}, 0, err
	}
	_, version, err := Load[domain.DKIMKeys](ctx, s, domain.DKIMStreamID(domainName))
	if err != nil {
		return domain.DKIMKeys{}, 0, err
	}
	d, err := s.currentDKIM(ctx, s.pool, domainName)
	return d, version, err
}

// SigningKey is a domain's active DKIM key with its private key opened: what a signer needs.
type SigningKey struct {
	Domain     string
	Selector   string
	Algorithm  string
	PrivateKey []byte // PKCS #8 PEM
}

// SigningKeys returns the active key of every domain that has one, sorted by domain. A key
// whose domain's data key was destroyed (the domain removed) is left out: nothing signs for
// that domain any more.
func (s *Service) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT name FROM rm_domains ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("dkim: list domains: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("dkim: list domains: %w", err)
	}
	opener := s.keys.Opener()
	var out []SigningKey
	for len(names) > 0 {
		chunk := names[:min(len(names), 500)]
		names = names[len(chunk):]
		ids := make([]string, 0, 2*len(chunk))
		for _, n := range chunk {
			ids = append(ids, domain.DKIMStreamID(n), domain.DomainStreamID(n))
		}
		streams, err := s.store.LoadManyTx(ctx, s.pool, ids)
		if err != nil {
			return nil, err
		}
		for _, n := range chunk {
			dom, err := Fold[domain.Domain](s.store.Registry(), streams[domain.DomainStreamID(n)])
			if err != nil || !dom.Exists() {
				continue // removed since the read model listed it
			}
			keys, err := foldDKIM(s.store.Registry(), n, streams[domain.DKIMStreamID(n)], streams[domain.DomainStreamID(n)])
			if err != nil {
				return nil, err
			}
			k, ok := keys.Active()
			if !ok {
				continue
			}
			priv, err := opener.Open(ctx, k.PrivateKeySecret)
			if errors.Is(err, keyring.ErrShredded) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("dkim: key %s of %s: %w", k.Selector, n, err)
			}
			out = append(out, SigningKey{Domain: n, Selector: k.Selector, Algorithm: k.Algorithm, PrivateKey: priv})
		}
	}
	return out, nil
}
