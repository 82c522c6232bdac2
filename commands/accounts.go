package commands

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mailplane/domain"
	"mailplane/eventstore"
)

func accountStream(a domain.Address) eventstore.Stream {
	return eventstore.Stream{ID: domain.AccountStreamID(a), Type: domain.StreamTypeAccount, Domain: a.Domain}
}

// Credentials is how a new or changed password arrives: in clear (hashed here with argon2id)
// or, from a migration, as an existing hash that login will verify and upgrade. At most one.
type Credentials struct {
	Password     *string
	PasswordHash *string
}

// AccountView is an account as a command left it, with the settings its effective values depend
// on, all read in the command's own transaction: a caller can show it without waiting for the
// read models.
type AccountView struct {
	Account domain.Account
	Version int
	Domain  domain.Domain
	Global  domain.GlobalConfig
	// COS is the class of service the account uses, nil when it does not exist.
	COS *domain.COS
}

// settingsOf reads what an account's effective values depend on — the global configuration,
// its domain and the COS it uses (nil when that does not exist) — through q: a command's
// transaction (whose streams read already cost nothing) or the pool.
func (s *Service) settingsOf(ctx context.Context, q eventstore.DBTX, a domain.Account) (*AccountView, error) {
	g, _, err := load[domain.GlobalConfig](ctx, s, q, domain.GlobalConfigStreamID)
	if err != nil {
		return nil, err
	}
	d, _, err := load[domain.Domain](ctx, s, q, domain.DomainStreamID(a.Address.Domain))
	if err != nil {
		return nil, err
	}
	v := &AccountView{Account: a, Domain: d, Global: g.WithDefaults()}
	name, _ := domain.EffectiveCOSName(g, d, a)
	c, _, err := load[domain.COS](ctx, s, q, domain.COSStreamID(name))
	if err != nil {
		return nil, err
	}
	if c.Exists() {
		v.COS = &c
	}
	return v, nil
}

// Effective resolves the account's effective values against its settings.
func (v *AccountView) Effective() domain.Effective {
	return domain.EffectiveAccount(v.Global, v.Domain, v.COS, v.Account)
}

// accountView fills an AccountView from the command's transaction.
func (s *Service) accountView(ctx context.Context, tx pgx.Tx, a domain.Account, version int, into **AccountView) error {
	v, err := s.settingsOf(ctx, tx, a)
	if err != nil {
		return err
	}
	v.Version = version
	*into = v
	return nil
}

// accountContext names the streams an account command reads besides the account's own.
func accountContext(addr domain.Address, cos *string) []string {
	// The built-in default COS is what most accounts end up using; reading it here saves a
	// query when the view resolves the account's effective COS.
	ids := []string{domain.DomainStreamID(addr.Domain), domain.GlobalConfigStreamID, domain.COSStreamID(domain.DefaultCOSName)}
	if cos != nil {
		if n, err := domain.NormalizeCOSName(*cos); err == nil {
			ids = append(ids, domain.COSStreamID(n))
		}
	}
	return ids
}

// CreateAccount creates (or re-creates) an account.
func (s *Service) CreateAccount(ctx context.Context, req Request, cmd domain.CreateAccount, cred Credentials) (Outcome, error) {
	// A bad password is reported together with the other bad fields (below), not alone.
	secret, credErr := s.sealCredentials(ctx, cmd.Address, cmd.COS, cred)
	if credErr != nil && !isValidation(credErr) {
		return Outcome{}, credErr
	}
	cmd.PasswordSecret = secret
	if cmd.At.IsZero() {
		cmd.At = s.now()
	}
	var view *AccountView
	var before *string
	out, err := run(ctx, s, req, step[domain.Account]{
		stream: accountStream(cmd.Address),
		with:   accountContext(cmd.Address, cmd.COS),
		decide: func(ctx context.Context, tx pgx.Tx, a domain.Account, _ int) ([]domain.Event, error) {
			before = a.COS // nil: only an account that does not exist (any more) is created
			d, _, err := load[domain.Domain](ctx, s, tx, domain.DomainStreamID(cmd.Address.Domain))
			if err != nil {
				return nil, err
			}
			cmd.Domain = d
			if d.Limits.MaxAccounts > 0 {
				// Creations in a limited domain take turns, so that the count below stays true
				// until this one commits. An advisory lock takes no transaction id, so the
				// append is still the first write.
				if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, domainLockKey(d.Name)); err != nil {
					return nil, err
				}
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM address_claims WHERE domain = $1 AND kind = 'account'`,
					d.Name).Scan(&cmd.AccountCount); err != nil {
					return nil, err
				}
			}
			if cmd.COS != nil {
				if cmd.COSExists, err = s.assignCOS(ctx, tx, *cmd.COS); err != nil {
					return nil, err
				}
			}
			events, err := a.Decide(cmd)
			if credErr != nil {
				return nil, withInputErrors(credErr, err)
			}
			return events, err
		},
		queue: func(b *pgx.Batch, a domain.Account) func(context.Context, pgx.Tx) error {
			queueCOSReference(b, cmd.Address.String(), before, a.COS)
			return s.queueClaim(b, a.Address, "account", domain.AccountStreamID(a.Address))
		},
		view: func(ctx context.Context, tx pgx.Tx, a domain.Account, version int) error {
			return s.accountView(ctx, tx, a, version, &view)
		},
	})
	out.Account = view
	return out, err
}

func domainLockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("mailplane domain " + name))
	return int64(h.Sum64())
}

// AddressTakenError says which object already uses an address.
type AddressTakenError struct {
	Address string
	Owner   string
}

func (e *AddressTakenError) Error() string {
	return fmt.Sprintf("address %s is already used by %s", e.Address, e.Owner)
}

// Unwrap makes it a domain.ErrAlreadyExists.
func (e *AddressTakenError) Unwrap() error { return domain.ErrAlreadyExists }

// claim reserves an address for owner (a stream id); addresses are unique across accounts,
// aliases, lists and resources, and this table, written in the command's transaction, is what
// makes it so.
func (s *Service) claim(ctx context.Context, tx pgx.Tx, addr domain.Address, kind, owner string) error {
	b := &pgx.Batch{}
	check := s.queueClaim(b, addr, kind, owner)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	return check(ctx, tx)
}

// queueClaim queues the claim of an address in a batch; the returned function reports, once the
// batch ran, whether the address was someone else's already.
func (s *Service) queueClaim(b *pgx.Batch, addr domain.Address, kind, owner string) func(context.Context, pgx.Tx) error {
	claimed := false
	queueRemovalGuard(b, addr.Domain)
	b.Queue(`INSERT INTO address_claims (address, kind, owner, domain) SELECT $1, $2, $3, $4
		WHERE NOT EXISTS (SELECT 1 FROM domain_removals WHERE domain = $4 AND finished_at IS NULL)
		ON CONFLICT (address) DO NOTHING`, addr.String(), kind, owner, addr.Domain).
		Exec(func(tag pgconn.CommandTag) error { claimed = tag.RowsAffected() == 1; return nil })
	return func(ctx context.Context, tx pgx.Tx) error {
		if claimed {
			return nil
		}
		var holder string
		err := tx.QueryRow(ctx, `SELECT owner FROM address_claims WHERE address = $1`, addr.String()).Scan(&holder)
		if errors.Is(err, pgx.ErrNoRows) {
			// Nobody holds it: the guard refused it, the domain being removed.
			return fmt.Errorf("domain %s is being removed: %w", addr.Domain, domain.ErrDomainUnavailable)
		}
		if err != nil {
			return err
		}
		return &AddressTakenError{Address: addr.String(), Owner: holder}
	}
}

// AccountPatch is everything one PATCH of an account may change.
type AccountPatch struct {
	Update domain.UpdateAccount
	// Attributes, when Update.Attributes is nil, are merged into the current attributes
	// (RFC 7396): a nil value removes the attribute.
	Attributes map[string]*string
	// Credentials, when either is set, replace the password.
	Credentials Credentials
}

// PatchAccount applies settings, attribute changes and a new password in one transaction: one
// If-Match check, every bad field reported together, and either all of it is recorded or none.
// The attribute merge happens on the state the append is checked against, so a concurrent
// change of other attributes is never lost.
func (s *Service) PatchAccount(ctx context.Context, req Request, addr domain.Address, p AccountPatch) (Outcome, error) {
	var secret string
	var credErr error
	if p.Credentials.Password != nil || p.Credentials.PasswordHash != nil {
		a, _, err := load[domain.Account](ctx, s, s.pool, domain.AccountStreamID(addr))
		if err != nil {
			return Outcome{}, err
		}
		if !a.Exists() {
			return Outcome{}, fmt.Errorf("account %s: %w", addr, domain.ErrNotFound)
		}
		// The minimum length is the one of the COS the account has after this change.
		cos := a.COS
		switch {
		case p.Update.COS != nil:
			cos = p.Update.COS
		case slices.Contains(p.Update.Clear, "cos"):
			cos = nil
		}
		secret, credErr = s.sealCredentials(ctx, addr, cos, p.Credentials)
		if credErr != nil && !isValidation(credErr) {
			return Outcome{}, credErr
		}
	}
	return s.accountCommand(ctx, req, addr, func(ctx context.Context, tx pgx.Tx, a domain.Account) ([]domain.Event, error) {
		cmd := p.Update
		if cmd.COS != nil {
			var err error
			if cmd.COSExists, err = s.assignCOS(ctx, tx, *cmd.COS); err != nil {
				return nil, err
			}
		}
		if cmd.Attributes == nil && p.Attributes != nil {
			merged := maps.Clone(a.Attributes)
			if merged == nil {
				merged = map[string]string{}
			}
			for k, v := range p.Attributes {
				if v == nil {
					delete(merged, k)
				} else {
					merged[k] = *v
				}
			}
			cmd.Attributes = merged
		}
		events, err := a.Decide(cmd)
		if credErr != nil {
			return nil, withInputErrors(credErr, err)
		}
		if err != nil || secret == "" {
			return events, err
		}
		more, err := a.Decide(domain.SetPassword{PasswordSecret: secret})
		if err != nil {
			return nil, err
		}
		return append(events, more...), nil
	}, nil)
}

// DeleteAccount deletes an account: its address and aliases are free again, its sessions end.
func (s *Service) DeleteAccount(ctx context.Context, req Request, addr domain.Address) (Outcome, error) {
	return s.accountCommand(ctx, req, addr, func(_ context.Context, _ pgx.Tx, a domain.Account) ([]domain.Event, error) {
		return a.Decide(domain.DeleteAccount{})
	}, func(ctx context.Context, tx pgx.Tx, a domain.Account, _ []domain.Event) error {
		if _, err := tx.Exec(ctx, `DELETE FROM address_claims WHERE owner = $1`, domain.AccountStreamID(addr)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE sessions SET ended_at = $2, ended_by = $3 WHERE account = $1 AND ended_at IS NULL`,
			addr.String(), s.now(), req.Meta.Actor)
		return err
	})
}

// AddAlias gives an account another address (in any domain).
func (s *Service) AddAlias(ctx context.Context, req Request, addr, alias domain.Address) (Outcome, error) {
	return s.accountCommand(ctx, req, addr, func(ctx context.Context, tx pgx.Tx, a domain.Account) ([]domain.Event, error) {
		if alias.Domain != addr.Domain {
			d, err := s.loadDomain(ctx, tx, alias.Domain)
			if err != nil {
				return nil, err
			}
			// A new alias is a new object of the alias's domain: none while it is removed.
			if d.Removing {
				return nil, fmt.Errorf("domain %s of alias %s is being removed: %w", d.Name, alias, domain.ErrDomainUnavailable)
			}
		}
		return a.Decide(domain.AddAlias{Alias: alias})
	}, func(ctx context.Context, tx pgx.Tx, _ domain.Account, _ []domain.Event) error {
		return s.claim(ctx, tx, alias, "alias", domain.AccountStreamID(addr))
	})
}

// RemoveAlias takes an alias away from an account.
func (s *Service) RemoveAlias(ctx context.Context, req Request, addr, alias domain.Address) (Outcome, error) {
	return s.accountCommand(ctx, req, addr, func(_ context.Context, _ pgx.Tx, a domain.Account) ([]domain.Event, error) {
		return a.Decide(domain.RemoveAlias{Alias: alias})
	}, func(ctx context.Context, tx pgx.Tx, _ domain.Account, _ []domain.Event) error {
		_, err := tx.Exec(ctx, `DELETE FROM address_claims WHERE address = $1 AND owner = $2`,
			alias.String(), domain.AccountStreamID(addr))
		return err
	})
}

// accountCommand runs a command on an existing account of a domain that accepts changes.
func (s *Service) accountCommand(ctx context.Context, req Request, addr domain.Address,
	decide func(ctx context.Context, tx pgx.Tx, a domain.Account) ([]domain.Event, error),
	after func(ctx context.Context, tx pgx.Tx, a domain.Account, events []domain.Event) error,
) (Outcome, error) {
	var view *AccountView
	var before *string
	out, err := run(ctx, s, req, step[domain.Account]{
		stream: accountStream(addr),
		with:   accountContext(addr, nil),
		decide: func(ctx context.Context, tx pgx.Tx, a domain.Account, _ int) ([]domain.Event, error) {
			if !a.Exists() {
				return nil, fmt.Errorf("account %s: %w", addr, domain.ErrNotFound)
			}
			before = a.COS
			d, err := s.loadDomain(ctx, tx, addr.Domain)
			if err != nil {
				return nil, err
			}
			if err := d.CheckAcceptsChanges(); err != nil {
				return nil, err
			}
			return decide(ctx, tx, a)
		},
		// Whatever the command, its COS reference follows the account: set, moved, cleared,
		// gone with a deleted account, or (most often) left alone.
		queue: func(b *pgx.Batch, a domain.Account) func(context.Context, pgx.Tx) error {
			queueCOSReference(b, addr.String(), before, a.COS)
			return nil
		},
		after: after,
		view: func(ctx context.Context, tx pgx.Tx, a domain.Account, version int) error {
			if !a.Exists() {
				return nil // deleted
			}
			return s.accountView(ctx, tx, a, version, &view)
		},
	})
	out.Account = view
	return out, err
}

func isValidation(err error) bool {
	var ve domain.ValidationError
	return errors.As(err, &ve)
}

// withInputErrors reports the field errors found before a decision (in the credentials)
// together with the decision's own, so that a request lists every bad field at once. A
// missing object still answers first, as it would have without the early errors.
func withInputErrors(early, decided error) error {
	var ev, dv domain.ValidationError
	switch {
	case decided == nil:
		return early
	case errors.As(decided, &dv) && errors.As(early, &ev):
		return domain.ValidationError{Errors: append(slices.Clone(ev.Errors), dv.Errors...)}
	case errors.Is(decided, domain.ErrNotFound):
		return decided
	}
	return early
}

// ErrPasswordAndHash means a request gave both a password and a password hash.
var ErrPasswordAndHash = errors.New("give either password or password_hash, not both")

// sealCredentials turns credentials into the sealed secret an event may carry ("" for none).
// A clear password is checked against the effective minimum length and hashed first.
func (s *Service) sealCredentials(ctx context.Context, addr domain.Address, cos *string, cred Credentials) (string, error) {
	var phc string
	switch {
	case cred.Password != nil && cred.PasswordHash != nil:
		return "", domain.Invalid("password_hash", ErrPasswordAndHash.Error())
	case cred.Password != nil:
		min, err := s.passwordMinLength(ctx, addr, cos)
		if err != nil {
			return "", err
		}
		if n := len([]rune(*cred.Password)); n < min {
			return "", domain.Invalid("password", fmt.Sprintf("must be at least %d characters", min))
		}
		if len(*cred.Password) > 1024 {
			return "", domain.Invalid("password", "must be at most 1024 bytes")
		}
		if phc, err = s.hasher.Hash(ctx, *cred.Password); err != nil {
			return "", err
		}
	case cred.PasswordHash != nil:
		if err := CheckHashFormat(*cred.PasswordHash); err != nil {
			return "", domain.Invalid("password_hash", err.Error())
		}
		phc = *cred.PasswordHash
	default:
		return "", nil
	}
	return s.keys.Seal(ctx, addr.Domain, []byte(phc))
}

// passwordMinLength resolves the effective minimum for an account of that domain and COS.
func (s *Service) passwordMinLength(ctx context.Context, addr domain.Address, cos *string) (int, error) {
	v, err := s.settingsOf(ctx, s.pool, domain.Account{Address: addr, COS: cos})
	if err != nil {
		return 0, err
	}
	n, _ := v.Effective().Values["password_min_length"].(int)
	return n, nil
}
