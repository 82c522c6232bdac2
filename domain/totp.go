package domain

import (
	"fmt"
	"slices"
	"time"
)

// TOTPRecoveryCodes is how many recovery codes an enrolment hands out.
const TOTPRecoveryCodes = 10

// AccountTOTP is an account's second factor (RFC 6238). Secret is the sealed shared secret
// (ciphertext made by the caller, as a password hash is); RecoveryHashes are the SHA-256 hashes
// (hex) of the recovery codes not used yet. LastStep is the last time step a code was accepted
// at: a code of that step or an earlier one is a replay.
type AccountTOTP struct {
	Secret         string   `json:",omitempty"`
	Confirmed      bool     `json:",omitempty"`
	RecoveryHashes []string `json:",omitempty"`
	LastStep       int64    `json:",omitempty"`
	ConfirmedAt    time.Time
}

// Enabled reports whether logins need a code: the enrolment was confirmed.
func (t AccountTOTP) Enabled() bool { return t.Confirmed }

// Pending reports whether an enrolment waits for its confirmation.
func (t AccountTOTP) Pending() bool { return t.Secret != "" && !t.Confirmed }

// IsAdmin reports whether the account administers anything (TOTP may be required of admins).
func (a Account) IsAdmin() bool { return a.GlobalAdmin || a.DomainAdmin }

// TOTPRequired reports whether a is required to log in with a second factor: it is an
// administrator and its domain or the global configuration requires TOTP of administrators.
func (a Account) TOTPRequired(d Domain, g GlobalConfig) bool {
	return a.IsAdmin() && (d.TOTPRequired || g.TOTPRequired)
}

// TOTPCommand is a command on an account's second factor.
type TOTPCommand interface{ isTOTPCommand() }

// StartTOTPEnrolment begins (or begins again) an enrolment. A confirmed one must be disabled
// first. Secret is ciphertext; RecoveryHashes are the hashes of the codes shown to the user.
type StartTOTPEnrolment struct {
	Secret         string
	RecoveryHashes []string
}

// ConfirmTOTP confirms a pending enrolment: the caller checked a code of Step against it.
type ConfirmTOTP struct {
	Step int64
	At   time.Time
}

// DisableTOTP removes the second factor (pending or confirmed). By is the actor.
type DisableTOTP struct {
	By string
}

// UseTOTPCode records a login with a code of Step (checked by the caller against the secret).
type UseTOTPCode struct {
	Step int64
}

// UseRecoveryCode records a login with the recovery code whose hash is Hash.
type UseRecoveryCode struct {
	Hash string
}

func (StartTOTPEnrolment) isTOTPCommand() {}
func (ConfirmTOTP) isTOTPCommand()        {}
func (DisableTOTP) isTOTPCommand()        {}
func (UseTOTPCode) isTOTPCommand()        {}
func (UseRecoveryCode) isTOTPCommand()    {}

// TOTPEnrolmentStarted records a new, unconfirmed TOTP secret (sealed) and the hashes of its
// recovery codes. Both members end in _secret, so history views redact them.
type TOTPEnrolmentStarted struct {
	Address             Address  `json:"address"`
	TOTPSecret          string   `json:"totp_secret"`
	RecoveryCodesSecret []string `json:"recovery_codes_secret"`
}

// TOTPEnrolmentConfirmed records that the account proved it holds the secret, with a code of Step.
type TOTPEnrolmentConfirmed struct {
	Address     Address   `json:"address"`
	Step        int64     `json:"step"`
	ConfirmedAt time.Time `json:"confirmed_at"`
}

// TOTPDisabled records the removal of the second factor.
type TOTPDisabled struct {
	Address Address `json:"address"`
	By      string  `json:"by,omitempty"`
}

// TOTPCodeUsed records a login with a code of Step: no code of that step or an earlier one is
// accepted again.
type TOTPCodeUsed struct {
	Address Address `json:"address"`
	Step    int64   `json:"step"`
}

// TOTPRecoveryCodeUsed records a login with a recovery code, which is then spent. CodeSecret
// is its hash (redacted in history views).
type TOTPRecoveryCodeUsed struct {
	Address    Address `json:"address"`
	CodeSecret string  `json:"code_secret"`
	Left       int     `json:"left"`
}

// EventType implements Event.
func (TOTPEnrolmentStarted) EventType() string { return "TOTPEnrolmentStarted" }

// EventType implements Event.
func (TOTPEnrolmentConfirmed) EventType() string { return "TOTPEnrolmentConfirmed" }

// EventType implements Event.
func (TOTPDisabled) EventType() string { return "TOTPDisabled" }

// EventType implements Event.
func (TOTPCodeUsed) EventType() string { return "TOTPCodeUsed" }

// EventType implements Event.
func (TOTPRecoveryCodeUsed) EventType() string { return "TOTPRecoveryCodeUsed" }

// ErrTOTPReplayed means a code of a time step already used (or an earlier one) was sent again.
var ErrTOTPReplayed = fmt.Errorf("the code was already used: %w", ErrConflict)

// DecideTOTP validates a second-factor command against the account.
func (a Account) DecideTOTP(cmd TOTPCommand) ([]Event, error) {
	if !a.Exists() {
		return nil, fmt.Errorf("account: %w", ErrNotFound)
	}
	t := a.TOTP
	switch c := cmd.(type) {
	case StartTOTPEnrolment:
		if t.Confirmed {
			return nil, fmt.Errorf("account %s already has TOTP enabled (disable it first): %w", a.Address, ErrAlreadyExists)
		}
		if c.Secret == "" || len(c.RecoveryHashes) != TOTPRecoveryCodes {
			return nil, fmt.Errorf("domain: an enrolment needs a secret and %d recovery codes", TOTPRecoveryCodes)
		}
		return []Event{TOTPEnrolmentStarted{Address: a.Address, TOTPSecret: c.Secret, RecoveryCodesSecret: slices.Clone(c.RecoveryHashes)}}, nil
	case ConfirmTOTP:
		if t.Confirmed {
			return nil, fmt.Errorf("account %s: TOTP is already confirmed: %w", a.Address, ErrAlreadyExists)
		}
		if !t.Pending() {
			return nil, fmt.Errorf("account %s has no TOTP enrolment to confirm: %w", a.Address, ErrNotFound)
		}
		if c.At.IsZero() {
			return nil, Invalid("at", "required")
		}
		return []Event{TOTPEnrolmentConfirmed{Address: a.Address, Step: c.Step, ConfirmedAt: c.At.UTC()}}, nil
	case DisableTOTP:
		if t.Secret == "" {
			return nil, fmt.Errorf("account %s has no TOTP: %w", a.Address, ErrNotFound)
		}
		return []Event{TOTPDisabled{Address: a.Address, By: c.By}}, nil
	case UseTOTPCode:
		if !t.Confirmed {
			return nil, fmt.Errorf("account %s has no TOTP enabled: %w", a.Address, ErrNotFound)
		}
		if c.Step <= t.LastStep {
			return nil, ErrTOTPReplayed
		}
		return []Event{TOTPCodeUsed{Address: a.Address, Step: c.Step}}, nil
	case UseRecoveryCode:
		if !t.Confirmed {
			return nil, fmt.Errorf("account %s has no TOTP enabled: %w", a.Address, ErrNotFound)
		}
		if !slices.Contains(t.RecoveryHashes, c.Hash) {
			return nil, ErrTOTPReplayed
		}
		return []Event{TOTPRecoveryCodeUsed{Address: a.Address, CodeSecret: c.Hash, Left: len(t.RecoveryHashes) - 1}}, nil
	}
	return nil, fmt.Errorf("domain: unknown TOTP command %T", cmd)
}

// evolveTOTP applies the second factor's events; Evolve hands it every event it does not know.
func (a Account) evolveTOTP(e Event) Account {
	switch ev := e.(type) {
	case TOTPEnrolmentStarted:
		a.TOTP = AccountTOTP{Secret: ev.TOTPSecret, RecoveryHashes: slices.Clone(ev.RecoveryCodesSecret)}
	case TOTPEnrolmentConfirmed:
		a.TOTP.Confirmed, a.TOTP.LastStep, a.TOTP.ConfirmedAt = true, max(a.TOTP.LastStep, ev.Step), ev.ConfirmedAt
	case TOTPDisabled:
		a.TOTP = AccountTOTP{}
	case TOTPCodeUsed:
		a.TOTP.LastStep = max(a.TOTP.LastStep, ev.Step)
	case TOTPRecoveryCodeUsed:
		a.TOTP.RecoveryHashes = slices.DeleteFunc(slices.Clone(a.TOTP.RecoveryHashes), func(h string) bool { return h == ev.CodeSecret })
	}
	return a
}
