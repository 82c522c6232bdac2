package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"mailplane/domain"
	"mailplane/eventstore/keyring"
)

// TOTP parameters: the ones every authenticator app assumes (RFC 6238's defaults).
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	// totpSkew accepts the step before and after the current one: clocks drift, users type slowly.
	totpSkew = 1
	// totpIssuer names the service in the authenticator app.
	totpIssuer = "mailplane"
)

var (
	// ErrTOTPRequired means the account logs in with a second factor and none was given. The
	// password was right: the client asks for the code and logs in again with it.
	ErrTOTPRequired = errors.New("a TOTP code is required: send totp_code (or recovery_code)")
	// ErrTOTPInvalid means the code was wrong, of a step outside the window, or already used. It
	// counts as a failed login.
	ErrTOTPInvalid = errors.New("the TOTP code is wrong, expired or already used")
	// ErrTOTPEnrolmentRequired means the session may only enrol a second factor and confirm it:
	// its account is required to have one and has none yet.
	ErrTOTPEnrolmentRequired = errors.New("a second factor is required: enrol (POST /api/v1/accounts/{address}/totp) and confirm it first")
)

// SecondFactor is what a login sends besides the password: a TOTP code or a recovery code.
type SecondFactor struct {
	Code         string
	RecoveryCode string
}

// TOTPEnrolment is what an enrolment shows once: the secret (base32, for manual entry), the
// otpauth:// URI (for a QR code) and the recovery codes. None of it is stored in clear.
type TOTPEnrolment struct {
	URI           string
	Secret        string
	RecoveryCodes []string
}

// TOTPStatus is an account's second factor as its owner and admins see it.
type TOTPStatus struct {
	Enabled           bool       `json:"enabled"`
	Pending           bool       `json:"pending"`
	Required          bool       `json:"required"`
	RecoveryCodesLeft int        `json:"recovery_codes_left"`
	ConfirmedAt       *time.Time `json:"confirmed_at"`
}

// restrictionTOTPEnrolment is the session_restrictions reason of a session that may only enrol.
const restrictionTOTPEnrolment = "totp-enrolment"

// EnrolTOTP starts (or starts again) the enrolment of addr's second factor: a new secret, sealed
// with the domain's data key, and ten recovery codes, stored as hashes. It stays pending, and
// logins do not ask for it, until ConfirmTOTP.
func (s *Service) EnrolTOTP(ctx context.Context, req Request, addr domain.Address) (TOTPEnrolment, Outcome, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: addr.String(), Period: totpPeriod,
		Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return TOTPEnrolment{}, Outcome{}, err
	}
	sealed, err := s.keys.Seal(ctx, addr.Domain, []byte(key.Secret()))
	if err != nil {
		return TOTPEnrolment{}, Outcome{}, err
	}
	codes := make([]string, domain.TOTPRecoveryCodes)
	hashes := make([]string, len(codes))
	for i := range codes {
		if codes[i], err = newRecoveryCode(); err != nil {
			return TOTPEnrolment{}, Outcome{}, err
		}
		hashes[i] = hashRecoveryCode(codes[i])
	}
	out, err := run(ctx, s, req, step[domain.Account]{
		stream: accountStream(addr),
		decide: func(ctx context.Context, tx pgx.Tx, a domain.Account, _ int) ([]domain.Event, error) {
			if err := s.accountDomainAcceptsChanges(ctx, tx, a, addr); err != nil {
				return nil, err
			}
			return a.DecideTOTP(domain.StartTOTPEnrolment{Secret: sealed, RecoveryHashes: hashes})
		},
	})
	if err != nil {
		return TOTPEnrolment{}, Outcome{}, err
	}
	return TOTPEnrolment{URI: key.URL(), Secret: key.Secret(), RecoveryCodes: codes}, out, nil
}

// ConfirmTOTP confirms addr's pending enrolment with a current code: from then on its logins
// need a code, and its sessions that could only enrol may do everything again. A wrong code is
// a validation error on "code".
func (s *Service) ConfirmTOTP(ctx context.Context, req Request, addr domain.Address, code string) (Outcome, error) {
	now := s.now()
	return run(ctx, s, req, step[domain.Account]{
		stream: accountStream(addr),
		decide: func(ctx context.Context, tx pgx.Tx, a domain.Account, _ int) ([]domain.Event, error) {
			if !a.Exists() {
				return nil, fmt.Errorf("account %s: %w", addr, domain.ErrNotFound)
			}
			if !a.TOTP.Pending() {
				return a.DecideTOTP(domain.ConfirmTOTP{At: now}) // says why not
			}
			step, ok, err := s.matchTOTP(ctx, a.TOTP.Secret, code, now)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, domain.Invalid("code", "is not the current code of the secret being enrolled")
			}
			return a.DecideTOTP(domain.ConfirmTOTP{Step: step, At: now})
		},
		after: func(ctx context.Context, tx pgx.Tx, _ domain.Account, _ []domain.Event) error {
			_, err := tx.Exec(ctx, `DELETE FROM session_restrictions WHERE reason = $2
				AND session_id IN (SELECT id FROM sessions WHERE account = $1)`, addr.String(), restrictionTOTPEnrolment)
			return err
		},
	})
}

// DisableTOTP removes addr's second factor. A global admin may (the caller checks who may ask);
// the account's owner only with a current code (code), and not while one is required of it.
func (s *Service) DisableTOTP(ctx context.Context, req Request, addr domain.Address, byOwner bool, code string) (Outcome, error) {
	now := s.now()
	return run(ctx, s, req, step[domain.Account]{
		stream: accountStream(addr),
		decide: func(ctx context.Context, tx pgx.Tx, a domain.Account, _ int) ([]domain.Event, error) {
			if byOwner && a.TOTP.Enabled() {
				d, _, err := load[domain.Domain](ctx, s, tx, domain.DomainStreamID(addr.Domain))
				if err != nil {
					return nil, err
				}
				g, _, err := load[domain.GlobalConfig](ctx, s, tx, domain.GlobalConfigStreamID)
				if err != nil {
					return nil, err
				}
				if a.TOTPRequired(d, g) {
					return nil, fmt.Errorf("a second factor is required of %s; only a global administrator may remove it: %w", addr, domain.ErrConflict)
				}
				_, ok, err := s.matchTOTP(ctx, a.TOTP.Secret, code, now)
				if err != nil {
					return nil, err
				}
				if !ok {
					return nil, domain.Invalid("code", "is not a current TOTP code of this account")
				}
			}
			return a.DecideTOTP(domain.DisableTOTP{By: req.Meta.Actor})
		},
	})
}

// TOTP returns addr's second factor as its owner and admins see it: never the secret.
func (s *Service) TOTP(ctx context.Context, addr domain.Address) (TOTPStatus, error) {
	a, _, err := load[domain.Account](ctx, s, s.pool, domain.AccountStreamID(addr))
	if err != nil {
		return TOTPStatus{}, err
	}
	if !a.Exists() {
		return TOTPStatus{}, fmt.Errorf("account %s: %w", addr, domain.ErrNotFound)
	}
	d, _, err := load[domain.Domain](ctx, s, s.pool, domain.DomainStreamID(addr.Domain))
	if err != nil {
		return TOTPStatus{}, err
	}
	g, _, err := load[domain.GlobalConfig](ctx, s, s.pool, domain.GlobalConfigStreamID)
	if err != nil {
		return TOTPStatus{}, err
	}
	st := TOTPStatus{Enabled: a.TOTP.Enabled(), Pending: a.TOTP.Pending(), Required: a.TOTPRequired(d, g)}
	if st.Enabled {
		st.RecoveryCodesLeft = len(a.TOTP.RecoveryHashes)
		at := a.TOTP.ConfirmedAt
		st.ConfirmedAt = &at
	}
	return st, nil
}

// totpLogin is what a login's second factor adds to the session's start.
type totpLogin struct {
	// cmd records the code's use (nil: no code was needed).
	cmd domain.TOTPCommand
	// restrict: the account must have a second factor and has none; the session may only enrol.
	restrict bool
}

// secondFactor checks a login's second factor once its password was found right. It returns
// ErrTOTPRequired when the account has one and none was sent, ErrTOTPInvalid when the one sent
// is wrong or used.
func (s *Service) secondFactor(ctx context.Context, a domain.Account, d domain.Domain, f SecondFactor) (totpLogin, error) {
	if !a.TOTP.Enabled() {
		g, _, err := load[domain.GlobalConfig](ctx, s, s.pool, domain.GlobalConfigStreamID)
		if err != nil {
			return totpLogin{}, err
		}
		return totpLogin{restrict: a.TOTPRequired(d, g)}, nil
	}
	var tl totpLogin
	switch {
	case strings.TrimSpace(f.Code) != "":
		step, ok, err := s.matchTOTP(ctx, a.TOTP.Secret, f.Code, s.now())
		if err != nil {
			return totpLogin{}, err
		}
		if !ok {
			return totpLogin{}, ErrTOTPInvalid
		}
		tl.cmd = domain.UseTOTPCode{Step: step}
	case strings.TrimSpace(f.RecoveryCode) != "":
		tl.cmd = domain.UseRecoveryCode{Hash: hashRecoveryCode(f.RecoveryCode)}
	default:
		return totpLogin{}, ErrTOTPRequired
	}
	_, err := tl.decide(a)
	return tl, err
}

// decide returns the events that record the code's use, on the account as the login's
// transaction found it: a code used meanwhile by a concurrent login is refused here.
func (tl totpLogin) decide(a domain.Account) ([]domain.Event, error) {
	if tl.cmd == nil {
		return nil, nil
	}
	events, err := a.DecideTOTP(tl.cmd)
	if errors.Is(err, domain.ErrTOTPReplayed) || errors.Is(err, domain.ErrNotFound) {
		return nil, fmt.Errorf("%w (%s)", ErrTOTPInvalid, err.Error())
	}
	return events, err
}

// restrictSession marks a session as one that may only enrol a second factor.
func restrictSession(ctx context.Context, tx pgx.Tx, sessionID string) error {
	_, err := tx.Exec(ctx, `INSERT INTO session_restrictions (session_id, reason) VALUES ($1, $2)`, sessionID, restrictionTOTPEnrolment)
	return err
}

// matchTOTP opens a sealed secret and returns the time step, within the skew around now, whose
// code is code. The step is what replay protection compares: pquerna/otp validates one step at
// a time so that the matching one is known.
func (s *Service) matchTOTP(ctx context.Context, sealed, code string, now time.Time) (int64, bool, error) {
	code = strings.TrimSpace(code)
	if len(code) != totpDigits.Length() {
		return 0, false, nil
	}
	plain, err := s.keys.Open(ctx, sealed)
	if errors.Is(err, keyring.ErrShredded) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	secret := string(plain)
	clear(plain)
	cur := now.Unix() / totpPeriod
	for step := cur - totpSkew; step <= cur+totpSkew; step++ {
		ok, err := totp.ValidateCustom(code, secret, time.Unix(step*totpPeriod, 0).UTC(),
			totp.ValidateOpts{Period: totpPeriod, Skew: 0, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, false, err
		}
		if ok {
			return step, true, nil
		}
	}
	return 0, false, nil
}

// newRecoveryCode is 80 random bits in base32, grouped for reading: xxxx-xxxx-xxxx-xxxx.
func newRecoveryCode() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	c := strings.ToLower(base32.StdEncoding.EncodeToString(b))
	return c[0:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:16], nil
}

// hashRecoveryCode hashes a recovery code as typed: case, spaces and dashes do not matter. 80
// random bits need no slow hash.
func hashRecoveryCode(code string) string {
	norm := strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(code)))
	h := sha256.Sum256([]byte("mailplane recovery code\x00" + norm))
	return hex.EncodeToString(h[:])
}

// accountDomainAcceptsChanges refuses a change to an account that does not exist or whose domain is frozen.
func (s *Service) accountDomainAcceptsChanges(ctx context.Context, tx pgx.Tx, a domain.Account, addr domain.Address) error {
	if !a.Exists() {
		return fmt.Errorf("account %s: %w", addr, domain.ErrNotFound)
	}
	d, _, err := load[domain.Domain](ctx, s, tx, domain.DomainStreamID(addr.Domain))
	if err != nil {
		return err
	}
	return d.CheckAcceptsChanges()
}
