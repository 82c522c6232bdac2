package domain

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func configured(t *testing.T, cmd UpdateGlobalConfig) GlobalConfig {
	t.Helper()
	var g GlobalConfig
	events, err := g.Decide(cmd)
	require.NoError(t, err)
	for _, e := range events {
		g = g.Evolve(e)
	}
	return g
}

func requireEffective(t *testing.T, e Effective, key string, value any, source string) {
	t.Helper()
	require.Equal(t, value, e.Values[key], "value of %s", key)
	require.Equal(t, source, e.Sources[key], "source of %s", key)
}

func TestEffectiveDomain(t *testing.T) {
	t.Parallel()
	g := configured(t, UpdateGlobalConfig{TimeZone: ptr("Europe/Rome"), SpamRelayHost: ptr("relay:25"),
		AccountQuotaBytes: ptr(int64(1000)), WarnPercent: ptr(75)})

	plain := createdDomain(t, CreateDomain{Name: "example.com"})
	e := EffectiveDomain(g, plain)
	requireEffective(t, e, "time_zone", "Europe/Rome", SourceGlobal)
	requireEffective(t, e, "public_protocol", "https", SourceGlobal)
	requireEffective(t, e, "spam_relay_host", "relay:25", SourceGlobal)
	requireEffective(t, e, "default_cos", "default", SourceGlobal)
	requireEffective(t, e, "account_quota_bytes", int64(1000), SourceGlobal)
	requireEffective(t, e, "domain_quota_bytes", int64(0), SourceGlobal)
	requireEffective(t, e, "warn_percent", 75, SourceGlobal)
	requireEffective(t, e, "max_accounts", 0, SourceDomain)
	requireEffective(t, e, "warn_recipient", "", SourceDomain)
	requireEffective(t, e, "gal_polling_interval_seconds", 3600, SourceGlobal)
	require.Equal(t, len(e.Values), len(e.Sources))

	own := createdDomain(t, CreateDomain{Name: "example.com", TimeZone: ptr("UTC"), PublicProtocol: ptr("http"),
		SpamRelayHost: ptr(""), DefaultCOS: ptr("gold"), COSExists: true,
		Limits: DomainLimits{AccountQuotaBytes: ptr(int64(0)), DomainQuotaBytes: ptr(int64(9)), WarnPercent: ptr(0), MaxAccounts: 3}})
	e = EffectiveDomain(g, own)
	requireEffective(t, e, "time_zone", "UTC", SourceDomain)
	requireEffective(t, e, "public_protocol", "http", SourceDomain)
	requireEffective(t, e, "spam_relay_host", "", SourceDomain) // "no relay" overrides the global relay
	requireEffective(t, e, "default_cos", "gold", SourceDomain)
	requireEffective(t, e, "account_quota_bytes", int64(0), SourceDomain)
	requireEffective(t, e, "domain_quota_bytes", int64(9), SourceDomain)
	requireEffective(t, e, "warn_percent", 0, SourceDomain)
	requireEffective(t, e, "max_accounts", 3, SourceDomain)

	// Clearing a domain setting hands it back to the global configuration.
	events, err := own.Decide(UpdateDomain{Clear: []string{"time_zone", "limits.warn_percent"}})
	require.NoError(t, err)
	requireEffective(t, EffectiveDomain(g, own.Evolve(events[0])), "time_zone", "Europe/Rome", SourceGlobal)
	requireEffective(t, EffectiveDomain(g, own.Evolve(events[0])), "warn_percent", 75, SourceGlobal)

	// A never-configured global config reads as the defaults.
	requireEffective(t, EffectiveDomain(GlobalConfig{}, plain), "time_zone", "UTC", SourceGlobal)
}

func TestEffectiveAccountSources(t *testing.T) {
	t.Parallel()
	g := configured(t, UpdateGlobalConfig{AccountQuotaBytes: ptr(int64(1000)), WarnPercent: ptr(70), PasswordMinLength: ptr(9)})
	plainDomain := createdDomain(t, CreateDomain{Name: "example.com"})
	richDomain := createdDomain(t, CreateDomain{Name: "example.com", DefaultCOS: ptr("silver"), COSExists: true,
		TimeZone: ptr("Asia/Tokyo"), Limits: DomainLimits{AccountQuotaBytes: ptr(int64(300)), WarnPercent: ptr(60)}})
	gold := createdCOS(t, CreateCOS{Name: "gold", MailQuotaBytes: ptr(int64(5000)), QuotaWarnPercent: ptr(95),
		Features: map[string]bool{"imap": true}, PasswordMinLength: ptr(12), SessionLifetimeSeconds: ptr(600)})
	bare := createdCOS(t, CreateCOS{Name: "silver", SessionLifetimeSeconds: ptr(0)})
	ann := mustAddr(t, "ann@example.com")

	t.Run("everything from global", func(t *testing.T) {
		t.Parallel()
		a := createdAccount(t, CreateAccount{Address: ann, At: t0, Domain: plainDomain})
		// The global default COS "default" was never created: nil COS.
		e := EffectiveAccount(g, plainDomain, nil, a)
		requireEffective(t, e, "cos", "default", SourceGlobal)
		requireEffective(t, e, "mail_quota_bytes", int64(1000), SourceGlobal)
		requireEffective(t, e, "quota_warn_percent", 70, SourceGlobal)
		requireEffective(t, e, "features", map[string]bool{}, SourceGlobal)
		requireEffective(t, e, "password_min_length", 9, SourceGlobal)
		requireEffective(t, e, "session_lifetime_seconds", 86400, SourceGlobal)
		requireEffective(t, e, "time_zone", "UTC", SourceGlobal)
		requireEffective(t, e, "public_protocol", "https", SourceGlobal)
		require.Equal(t, len(e.Values), len(e.Sources))
	})
	t.Run("cos and domain levels", func(t *testing.T) {
		t.Parallel()
		// Account in a domain whose default COS is "silver" (no settings)
		// and whose account quota was copied at creation.
		a := createdAccount(t, CreateAccount{Address: ann, At: t0, Domain: richDomain})
		name, src := EffectiveCOSName(g, richDomain, a)
		require.Equal(t, "silver", name)
		require.Equal(t, SourceDomain, src)
		e := EffectiveAccount(g, richDomain, &bare, a)
		requireEffective(t, e, "cos", "silver", SourceDomain)
		requireEffective(t, e, "mail_quota_bytes", int64(300), SourceDomain)
		requireEffective(t, e, "quota_warn_percent", 60, SourceDomain)
		requireEffective(t, e, "features", map[string]bool{}, SourceCOS("silver"))
		requireEffective(t, e, "session_lifetime_seconds", 86400, SourceGlobal) // COS 0 = global
		requireEffective(t, e, "time_zone", "Asia/Tokyo", SourceDomain)
	})
	t.Run("account's own cos and values", func(t *testing.T) {
		t.Parallel()
		a := createdAccount(t, CreateAccount{Address: ann, At: t0, Domain: richDomain, COS: ptr("gold"), COSExists: true})
		e := EffectiveAccount(g, richDomain, &gold, a)
		requireEffective(t, e, "cos", "gold", SourceAccount)
		// The domain's quota was copied at creation, so it wins over the COS.
		requireEffective(t, e, "mail_quota_bytes", int64(300), SourceDomain)
		requireEffective(t, e, "quota_warn_percent", 95, "cos:gold")
		requireEffective(t, e, "features", map[string]bool{"imap": true}, "cos:gold")
		requireEffective(t, e, "password_min_length", 12, "cos:gold")
		requireEffective(t, e, "session_lifetime_seconds", 600, "cos:gold")

		inPlain := createdAccount(t, CreateAccount{Address: ann, At: t0, Domain: plainDomain, COS: ptr("gold"), COSExists: true})
		requireEffective(t, EffectiveAccount(g, plainDomain, &gold, inPlain), "mail_quota_bytes", int64(5000), "cos:gold")

		pinned := createdAccount(t, CreateAccount{Address: ann, At: t0, Domain: plainDomain, MailQuotaBytes: ptr(int64(1))})
		requireEffective(t, EffectiveAccount(g, plainDomain, nil, pinned), "mail_quota_bytes", int64(1), SourceAccount)
	})
	t.Run("a deleted or mismatched cos falls through to global", func(t *testing.T) {
		t.Parallel()
		a := createdAccount(t, CreateAccount{Address: ann, At: t0, Domain: plainDomain, COS: ptr("gold"), COSExists: true})
		for _, c := range []*COS{nil, {}, &bare} {
			e := EffectiveAccount(g, plainDomain, c, a)
			requireEffective(t, e, "cos", "gold", SourceAccount)
			requireEffective(t, e, "mail_quota_bytes", int64(1000), SourceGlobal)
			requireEffective(t, e, "features", map[string]bool{}, SourceGlobal)
			requireEffective(t, e, "password_min_length", 9, SourceGlobal)
		}
	})
}

// A COS change reaches every account that inherits the setting, without an
// event on any account stream, and leaves overriding accounts alone.
func TestCOSChangeReachesInheritingAccounts(t *testing.T) {
	t.Parallel()
	var g GlobalConfig
	d := createdDomain(t, CreateDomain{Name: "example.com"})
	gold := createdCOS(t, CreateCOS{Name: "gold", MailQuotaBytes: ptr(int64(100)), QuotaWarnPercent: ptr(80)})
	inherits := createdAccount(t, CreateAccount{Address: mustAddr(t, "ann@example.com"), COS: ptr("gold"), COSExists: true, At: t0, Domain: d})
	overrides := createdAccount(t, CreateAccount{Address: mustAddr(t, "bob@example.com"), COS: ptr("gold"), COSExists: true,
		MailQuotaBytes: ptr(int64(7)), At: t0, Domain: d})

	events, err := gold.Decide(UpdateCOS{MailQuotaBytes: ptr(int64(200)), QuotaWarnPercent: ptr(90)})
	require.NoError(t, err)
	newGold := gold
	for _, e := range events {
		newGold = newGold.Evolve(e)
	}

	requireEffective(t, EffectiveAccount(g, d, &gold, inherits), "mail_quota_bytes", int64(100), "cos:gold")
	requireEffective(t, EffectiveAccount(g, d, &newGold, inherits), "mail_quota_bytes", int64(200), "cos:gold")
	requireEffective(t, EffectiveAccount(g, d, &newGold, inherits), "quota_warn_percent", 90, "cos:gold")

	requireEffective(t, EffectiveAccount(g, d, &gold, overrides), "mail_quota_bytes", int64(7), SourceAccount)
	requireEffective(t, EffectiveAccount(g, d, &newGold, overrides), "mail_quota_bytes", int64(7), SourceAccount)
	// The warning percentage is not overridden, so it follows the COS.
	requireEffective(t, EffectiveAccount(g, d, &newGold, overrides), "quota_warn_percent", 90, "cos:gold")

	// Clearing the COS value sends inheriting accounts on to global.
	events, err = newGold.Decide(UpdateCOS{Clear: []string{"mail_quota_bytes"}})
	require.NoError(t, err)
	cleared := newGold.Evolve(events[0])
	requireEffective(t, EffectiveAccount(g, d, &cleared, inherits), "mail_quota_bytes", int64(0), SourceGlobal)
}

func TestEffectiveFeaturesAreACopy(t *testing.T) {
	t.Parallel()
	d := createdDomain(t, CreateDomain{Name: "example.com"})
	gold := createdCOS(t, CreateCOS{Name: "gold", Features: map[string]bool{"imap": true}})
	a := createdAccount(t, CreateAccount{Address: mustAddr(t, "ann@example.com"), COS: ptr("gold"), COSExists: true, At: t0, Domain: d})
	e := EffectiveAccount(GlobalConfig{}, d, &gold, a)
	e.Values["features"].(map[string]bool)["imap"] = false
	require.True(t, gold.Features["imap"])
}
