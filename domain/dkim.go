package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// DKIM key algorithms (the k= tag of the DNS record): RSA-2048 signing rsa-sha256 (RFC 6376),
// and Ed25519 signing ed25519-sha256 (RFC 8463).
const (
	DKIMAlgorithmRSA     = "rsa"
	DKIMAlgorithmEd25519 = "ed25519"
)

// DKIMRSABits is the size of the RSA keys generated: RFC 8301 requires at least 1024 and
// recommends 2048; 4096 does not fit many DNS providers' TXT limits.
const DKIMRSABits = 2048

// DKIM key states.
const (
	// DKIMActive is the key mail is signed with; a domain has at most one.
	DKIMActive = "active"
	// DKIMRetiring is a key a rotation replaced: no longer used for signing, but still published
	// until RetireAt, so that mail signed with it before the rotation still verifies.
	DKIMRetiring = "retiring"
	// DKIMRetired is a key whose grace period is over: its record can be taken out of DNS. The
	// selector stays taken until the key is removed, so that it never names two keys (verifiers
	// cache records).
	DKIMRetired = "retired"
)

// Rotation grace periods: how long a replaced key stays published. The default covers mail
// queued for days and the TTL of the old record; the maximum keeps a compromised key from
// being published for good by mistake.
const (
	DefaultDKIMGrace = 7 * 24 * time.Hour
	MinDKIMGrace     = time.Hour
	MaxDKIMGrace     = 90 * 24 * time.Hour
)

// DKIMKeys are a domain's DKIM keys. The stream is DKIMStreamID(domain); keys are sealed with
// the domain's data key, so that they are destroyed with the domain.
type DKIMKeys struct {
	Domain string
	// Keys in the order they were added.
	Keys []DKIMKey
}

// DKIMKey is one key with its selector. The private key is kept only sealed, and never in what
// is shown or projected to read models (json "-").
type DKIMKey struct {
	Selector  string
	Algorithm string
	// PublicKey is the p= value: base64 of the DER SubjectPublicKeyInfo (RSA) or of the 32 raw
	// bytes (Ed25519, RFC 8463).
	PublicKey        string
	PrivateKeySecret string `json:"-"`
	State            string
	CreatedAt        time.Time
	// RetireAt is when a retiring key's grace period ends.
	RetireAt  *time.Time
	RetiredAt *time.Time
	// ReplacedBy is the selector of the key that replaced this one.
	ReplacedBy string
}

// RecordName is the DNS name of the key's TXT record.
func (k DKIMKey) RecordName(domainName string) string { return DKIMRecordName(k.Selector, domainName) }

// RecordValue is the TXT record's value.
func (k DKIMKey) RecordValue() string { return DKIMRecordValue(k.Algorithm, k.PublicKey) }

// Published reports whether the key's record must be in DNS.
func (k DKIMKey) Published() bool { return k.State == DKIMActive || k.State == DKIMRetiring }

// DKIMRecordName is where a selector's key is published (RFC 6376 §3.6.2.1).
func DKIMRecordName(selector, domainName string) string {
	return selector + "._domainkey." + domainName
}

// DKIMRecordValue is a key's TXT record (RFC 6376 §3.6.1).
func DKIMRecordValue(algorithm, publicKey string) string {
	return "v=DKIM1; k=" + algorithm + "; p=" + publicKey
}

// Exists reports whether the domain has DKIM keys.
func (d DKIMKeys) Exists() bool { return len(d.Keys) > 0 }

// Active returns the key mail is signed with, if any.
func (d DKIMKeys) Active() (DKIMKey, bool) {
	for _, k := range d.Keys {
		if k.State == DKIMActive {
			return k, true
		}
	}
	return DKIMKey{}, false
}

// Key returns the key of a selector.
func (d DKIMKeys) Key(selector string) (DKIMKey, bool) {
	for _, k := range d.Keys {
		if k.Selector == selector {
			return k, true
		}
	}
	return DKIMKey{}, false
}

// NormalizeDKIMSelector returns a selector's stored form (lower case), or a ValidationError
// on "selector". A selector is one or more DNS labels (RFC 6376 §3.1: sub-domain *("."
// sub-domain)): letters, digits and hyphens, no hyphen first or last, at most 63 characters
// each. Underscores are refused: the selector must not be mistaken for the _domainkey label.
func NormalizeDKIMSelector(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", Invalid("selector", "is required")
	}
	if len(s) > 63 {
		return "", Invalid("selector", "must be at most 63 characters")
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return "", Invalid("selector", "must not have an empty label")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "", Invalid("selector", "a label must not begin or end with a hyphen")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return "", Invalid("selector", fmt.Sprintf("%q is not allowed: use letters, digits and hyphens", r))
			}
		}
	}
	return s, nil
}

// ValidDKIMAlgorithm reports whether a is an algorithm keys can be generated for.
func ValidDKIMAlgorithm(a string) bool { return a == DKIMAlgorithmRSA || a == DKIMAlgorithmEd25519 }

// DKIMCommand is a command on a domain's DKIM keys.
type DKIMCommand interface{ isDKIMCommand() }

// GeneratedDKIMKey is a key the caller generated for a command: its public half, and the
// private half (PKCS #8 PEM) sealed with the domain's key. Empty when the request was too bad
// to generate one (the decision then reports why).
type GeneratedDKIMKey struct {
	PublicKey        string
	PrivateKeySecret string
}

// AddDKIMKey gives a domain its first active key (or a new one after the active key was
// removed). A domain with an active key rotates instead. The caller checks that the domain
// exists and accepts changes.
type AddDKIMKey struct {
	Domain    string
	Selector  string
	Algorithm string
	Key       GeneratedDKIMKey
	At        time.Time
}

// RotateDKIMKey replaces the active key by a new one under a new selector; the old key is
// published for Grace more (DefaultDKIMGrace when zero), then retired.
type RotateDKIMKey struct {
	Selector  string
	Algorithm string
	Key       GeneratedDKIMKey
	Grace     time.Duration
	At        time.Time
}

// RetireDKIMKey retires a retiring key once its grace period is over (the job scheduled by the
// rotation); before then, or for a key in another state, it does nothing.
type RetireDKIMKey struct {
	Selector string
	At       time.Time
}

// RemoveDKIMKey removes a key, whatever its state: removing the active key stops signing.
type RemoveDKIMKey struct {
	Selector string
	At       time.Time
}

func (AddDKIMKey) isDKIMCommand()    {}
func (RotateDKIMKey) isDKIMCommand() {}
func (RetireDKIMKey) isDKIMCommand() {}
func (RemoveDKIMKey) isDKIMCommand() {}

// DKIMKeyAdded records a new active key. Rotation appends it after DKIMKeyRetiring of the key
// it replaces.
type DKIMKeyAdded struct {
	Domain           string    `json:"domain"`
	Selector         string    `json:"selector"`
	Algorithm        string    `json:"algorithm"`
	PublicKey        string    `json:"public_key"`
	PrivateKeySecret string    `json:"private_key_secret"`
	At               time.Time `json:"at"`
}

// DKIMKeyRetiring records that a rotation replaced the active key: it is published until
// RetireAt.
type DKIMKeyRetiring struct {
	Domain     string    `json:"domain"`
	Selector   string    `json:"selector"`
	ReplacedBy string    `json:"replaced_by"`
	RetireAt   time.Time `json:"retire_at"`
	At         time.Time `json:"at"`
}

// DKIMKeyRetired records that a replaced key's grace period is over.
type DKIMKeyRetired struct {
	Domain   string    `json:"domain"`
	Selector string    `json:"selector"`
	At       time.Time `json:"at"`
}

// DKIMKeyRemoved records that a key was removed.
type DKIMKeyRemoved struct {
	Domain   string    `json:"domain"`
	Selector string    `json:"selector"`
	At       time.Time `json:"at"`
}

// EventType implements Event.
func (DKIMKeyAdded) EventType() string { return "DKIMKeyAdded" }

// EventType implements Event.
func (DKIMKeyRetiring) EventType() string { return "DKIMKeyRetiring" }

// EventType implements Event.
func (DKIMKeyRetired) EventType() string { return "DKIMKeyRetired" }

// EventType implements Event.
func (DKIMKeyRemoved) EventType() string { return "DKIMKeyRemoved" }

// Decide validates cmd against the domain's keys.
func (d DKIMKeys) Decide(cmd DKIMCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case AddDKIMKey:
		sel, err := d.checkNew(c.Selector, c.Algorithm, c.Key, nil)
		if err != nil {
			return nil, err
		}
		if a, ok := d.Active(); ok {
			return nil, fmt.Errorf("%s has an active DKIM key (selector %s); rotate it instead: %w", c.Domain, a.Selector, ErrConflict)
		}
		return []Event{DKIMKeyAdded{Domain: c.Domain, Selector: sel, Algorithm: c.Algorithm, PublicKey: c.Key.PublicKey,
			PrivateKeySecret: c.Key.PrivateKeySecret, At: c.At}}, nil
	case RotateDKIMKey:
		grace := c.Grace
		if grace == 0 {
			grace = DefaultDKIMGrace
		}
		var graceErr *FieldError
		if grace < MinDKIMGrace || grace > MaxDKIMGrace {
			graceErr = &FieldError{Field: "grace_period_seconds", Message: fmt.Sprintf("must be between %d and %d",
				int(MinDKIMGrace.Seconds()), int(MaxDKIMGrace.Seconds()))}
		}
		sel, err := d.checkNew(c.Selector, c.Algorithm, c.Key, graceErr)
		if err != nil {
			return nil, err
		}
		old, ok := d.Active()
		if !ok {
			return nil, fmt.Errorf("%s has no active DKIM key to rotate: %w", d.Domain, ErrNotFound)
		}
		return []Event{
			DKIMKeyRetiring{Domain: d.Domain, Selector: old.Selector, ReplacedBy: sel, RetireAt: c.At.Add(grace), At: c.At},
			DKIMKeyAdded{Domain: d.Domain, Selector: sel, Algorithm: c.Algorithm, PublicKey: c.Key.PublicKey,
				PrivateKeySecret: c.Key.PrivateKeySecret, At: c.At},
		}, nil
	case RetireDKIMKey:
		k, ok := d.Key(c.Selector)
		if !ok || k.State != DKIMRetiring || k.RetireAt == nil || c.At.Before(*k.RetireAt) {
			return nil, nil // removed meanwhile, or not due: the job has nothing to do
		}
		return []Event{DKIMKeyRetired{Domain: d.Domain, Selector: k.Selector, At: c.At}}, nil
	case RemoveDKIMKey:
		sel, err := NormalizeDKIMSelector(c.Selector)
		if err != nil {
			return nil, fmt.Errorf("DKIM selector %q: %w", c.Selector, ErrNotFound)
		}
		if _, ok := d.Key(sel); !ok {
			return nil, fmt.Errorf("DKIM selector %s of %s: %w", sel, d.Domain, ErrNotFound)
		}
		return []Event{DKIMKeyRemoved{Domain: d.Domain, Selector: sel, At: c.At}}, nil
	}
	return nil, fmt.Errorf("dkim: unknown command %T", cmd)
}

// checkNew validates a new key's selector and algorithm, with every field error at once.
func (d DKIMKeys) checkNew(selector, algorithm string, key GeneratedDKIMKey, extra *FieldError) (string, error) {
	var fe fieldErrors
	sel, err := NormalizeDKIMSelector(selector)
	if err != nil {
		fe.addErr("selector", err)
	} else if _, taken := d.Key(sel); taken {
		fe.add("selector", fmt.Sprintf("%s is in use by another key of this domain; choose a new selector", sel))
	}
	if !ValidDKIMAlgorithm(algorithm) {
		fe.add("algorithm", `must be "rsa" or "ed25519"`)
	}
	if extra != nil {
		fe.list = append(fe.list, *extra)
	}
	if err := fe.err(); err != nil {
		return "", err
	}
	if key.PublicKey == "" || key.PrivateKeySecret == "" {
		return "", fmt.Errorf("dkim: a key for %s was not generated", sel)
	}
	return sel, nil
}

// Evolve applies one event; other events leave d unchanged.
func (d DKIMKeys) Evolve(e Event) DKIMKeys {
	update := func(sel string, f func(*DKIMKey)) DKIMKeys {
		keys := slices.Clone(d.Keys)
		for i := range keys {
			if keys[i].Selector == sel {
				f(&keys[i])
			}
		}
		d.Keys = keys
		return d
	}
	switch ev := e.(type) {
	case DKIMKeyAdded:
		d.Domain = ev.Domain
		d.Keys = append(slices.Clone(d.Keys), DKIMKey{Selector: ev.Selector, Algorithm: ev.Algorithm, PublicKey: ev.PublicKey,
			PrivateKeySecret: ev.PrivateKeySecret, State: DKIMActive, CreatedAt: ev.At})
	case DKIMKeyRetiring:
		return update(ev.Selector, func(k *DKIMKey) {
			at := ev.RetireAt
			k.State, k.RetireAt, k.ReplacedBy = DKIMRetiring, &at, ev.ReplacedBy
		})
	case DKIMKeyRetired:
		return update(ev.Selector, func(k *DKIMKey) {
			at := ev.At
			k.State, k.RetiredAt = DKIMRetired, &at
		})
	case DKIMKeyRemoved:
		d.Keys = slices.DeleteFunc(slices.Clone(d.Keys), func(k DKIMKey) bool { return k.Selector == ev.Selector })
	}
	return d
}
