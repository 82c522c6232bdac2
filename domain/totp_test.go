package domain

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func totpAccount(t *testing.T) Account {
	t.Helper()
	a := Account{}.Evolve(AccountCreated{Address: Address{Local: "ann", Domain: "example.org"}, Status: StatusActive, DomainAdmin: true})
	hashes := make([]string, TOTPRecoveryCodes)
	for i := range hashes {
		hashes[i] = string(rune('a' + i))
	}
	evs, err := a.DecideTOTP(StartTOTPEnrolment{Secret: "sealed", RecoveryHashes: hashes})
	require.NoError(t, err)
	return evolveAll(a, evs)
}

// An enrolment is pending until confirmed; a confirmed one is not replaced; codes of a step
// already used, and spent recovery codes, are refused; disabling forgets everything.
func TestTOTPLifecycle(t *testing.T) {
	a := totpAccount(t)
	require.True(t, a.TOTP.Pending())
	require.False(t, a.TOTP.Enabled())
	_, err := a.DecideTOTP(UseTOTPCode{Step: 5})
	require.ErrorIs(t, err, ErrNotFound, "no code is used before the confirmation")

	evs, err := a.DecideTOTP(ConfirmTOTP{Step: 100, At: t0})
	require.NoError(t, err)
	a = evolveAll(a, evs)
	require.True(t, a.TOTP.Enabled())
	require.Equal(t, int64(100), a.TOTP.LastStep)
	_, err = a.DecideTOTP(StartTOTPEnrolment{Secret: "other", RecoveryHashes: make([]string, TOTPRecoveryCodes)})
	require.ErrorIs(t, err, ErrAlreadyExists)

	_, err = a.DecideTOTP(UseTOTPCode{Step: 100})
	require.ErrorIs(t, err, ErrTOTPReplayed, "the confirming code's step")
	evs, err = a.DecideTOTP(UseTOTPCode{Step: 101})
	require.NoError(t, err)
	a = evolveAll(a, evs)
	_, err = a.DecideTOTP(UseTOTPCode{Step: 100})
	require.ErrorIs(t, err, ErrTOTPReplayed, "an earlier step")

	evs, err = a.DecideTOTP(UseRecoveryCode{Hash: "c"})
	require.NoError(t, err)
	require.Equal(t, 9, evs[0].(TOTPRecoveryCodeUsed).Left)
	a = evolveAll(a, evs)
	_, err = a.DecideTOTP(UseRecoveryCode{Hash: "c"})
	require.ErrorIs(t, err, ErrTOTPReplayed)
	require.Len(t, a.TOTP.RecoveryHashes, 9)

	evs, err = a.DecideTOTP(DisableTOTP{By: "root@example.org"})
	require.NoError(t, err)
	a = evolveAll(a, evs)
	require.Equal(t, AccountTOTP{}, a.TOTP)
	_, err = a.DecideTOTP(DisableTOTP{})
	require.ErrorIs(t, err, ErrNotFound)
}

// TOTP is required of administrators only, by their domain or the global configuration.
func TestTOTPRequiredOfAdmins(t *testing.T) {
	admin := Account{DomainAdmin: true}
	plain := Account{}
	require.False(t, admin.TOTPRequired(Domain{}, GlobalConfig{}))
	require.True(t, admin.TOTPRequired(Domain{TOTPRequired: true}, GlobalConfig{}))
	require.True(t, admin.TOTPRequired(Domain{}, GlobalConfig{TOTPRequired: true}))
	require.False(t, plain.TOTPRequired(Domain{TOTPRequired: true}, GlobalConfig{TOTPRequired: true}))
}
