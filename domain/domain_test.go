package domain

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func createdDomain(t *testing.T, cmd CreateDomain) Domain {
	t.Helper()
	events, err := Domain{}.Decide(cmd)
	require.NoError(t, err)
	require.Len(t, events, 1)
	return Domain{}.Evolve(events[0])
}

func TestCreateDomainMinimal(t *testing.T) {
	t.Parallel()
	events, err := Domain{}.Decide(CreateDomain{Name: "Bücher.Example."})
	require.NoError(t, err)
	require.Equal(t, []Event{DomainCreated{
		Name: "xn--bcher-kva.example", UnicodeName: "bücher.example",
		Status: StatusActive, Auth: AuthSettings{Mechanism: AuthInternal},
	}}, events)
	d := Domain{}.Evolve(events[0])
	require.True(t, d.Exists())
	require.Nil(t, d.TimeZone, "unset settings inherit")
	require.Equal(t, DomainAuth{Mechanism: AuthInternal}, d.Auth)

	_, err = d.Decide(CreateDomain{Name: "xn--bcher-kva.example"})
	require.ErrorIs(t, err, ErrAlreadyExists)
}

func TestCreateDomainFull(t *testing.T) {
	t.Parallel()
	d := createdDomain(t, CreateDomain{
		Name: "example.com", Description: "main", TimeZone: ptr("Europe/Rome"), PublicProtocol: ptr("http"),
		SpamRelayHost: ptr(""), DefaultCOS: ptr("Gold"), COSExists: true, Status: StatusMaintenance,
		Auth: AuthSettings{Mechanism: AuthLDAP, LDAPURL: "ldaps://ldap.example.com", BindDN: "cn=reader,dc=example,dc=com",
			BindPasswordSecret: "enc:xyz", SearchBase: "ou=people,dc=example,dc=com", SearchFilter: "(uid=%u)"},
		Limits: DomainLimits{DomainQuotaBytes: ptr(int64(1 << 40)), AccountQuotaBytes: ptr(int64(1 << 30)),
			WarnPercent: ptr(85), WarnRecipient: "Ops@Example.com", MaxAccounts: 100},
	})
	require.Equal(t, Domain{
		Name: "example.com", UnicodeName: "example.com", Description: "main", TimeZone: ptr("Europe/Rome"),
		PublicProtocol: ptr("http"), SpamRelayHost: ptr(""), DefaultCOS: ptr("gold"), Status: StatusMaintenance,
		Auth: DomainAuth{Mechanism: AuthLDAP, LDAPURL: "ldaps://ldap.example.com", BindDN: "cn=reader,dc=example,dc=com",
			HasBindPassword: true, BindPasswordSecret: "enc:xyz", SearchBase: "ou=people,dc=example,dc=com", SearchFilter: "(uid=%u)"},
		Limits: DomainLimits{DomainQuotaBytes: ptr(int64(1 << 40)), AccountQuotaBytes: ptr(int64(1 << 30)),
			WarnPercent: ptr(85), WarnRecipient: "ops@example.com", MaxAccounts: 100},
	}, d)
}

func TestCreateDomainValidation(t *testing.T) {
	t.Parallel()
	ok := CreateDomain{Name: "example.com"}
	with := func(f func(*CreateDomain)) CreateDomain {
		c := ok
		f(&c)
		return c
	}
	cases := []struct {
		name   string
		cmd    CreateDomain
		fields []string
	}{
		{"name", with(func(c *CreateDomain) { c.Name = "localhost" }), []string{"name"}},
		{"description", with(func(c *CreateDomain) { c.Description = string(make([]byte, 1025)) }), []string{"description"}},
		{"time zone", with(func(c *CreateDomain) { c.TimeZone = ptr("Nowhere/Land") }), []string{"time_zone"}},
		{"empty time zone", with(func(c *CreateDomain) { c.TimeZone = ptr("") }), []string{"time_zone"}},
		{"protocol", with(func(c *CreateDomain) { c.PublicProtocol = ptr("gopher") }), []string{"public_protocol"}},
		{"relay", with(func(c *CreateDomain) { c.SpamRelayHost = ptr("a b") }), []string{"spam_relay_host"}},
		{"cos name", with(func(c *CreateDomain) { c.DefaultCOS, c.COSExists = ptr("a b"), true }), []string{"default_cos"}},
		{"unknown cos", with(func(c *CreateDomain) { c.DefaultCOS = ptr("gold") }), []string{"default_cos"}},
		{"status", with(func(c *CreateDomain) { c.Status = "deleted" }), []string{"status"}},
		{"mechanism", with(func(c *CreateDomain) { c.Auth.Mechanism = "kerberos" }), []string{"auth.mechanism"}},
		{"ldap needs url", with(func(c *CreateDomain) { c.Auth.Mechanism = AuthLDAP }), []string{"auth.ldap_url"}},
		{"ad needs url", with(func(c *CreateDomain) { c.Auth.Mechanism = AuthAD }), []string{"auth.ldap_url"}},
		{"url scheme", with(func(c *CreateDomain) {
			c.Auth = AuthSettings{Mechanism: AuthLDAP, LDAPURL: "https://ldap.example.com"}
		}), []string{"auth.ldap_url"}},
		{"bind dn", with(func(c *CreateDomain) { c.Auth.BindDN = "reader" }), []string{"auth.bind_dn"}},
		{"search base", with(func(c *CreateDomain) { c.Auth.SearchBase = "example.com" }), []string{"auth.search_base"}},
		{"search filter", with(func(c *CreateDomain) { c.Auth.SearchFilter = "(uid=%u" }), []string{"auth.search_filter"}},
		{"filter without parens", with(func(c *CreateDomain) { c.Auth.SearchFilter = "uid=%u" }), []string{"auth.search_filter"}},
		{"domain quota", with(func(c *CreateDomain) { c.Limits.DomainQuotaBytes = ptr(int64(-1)) }), []string{"limits.domain_quota_bytes"}},
		{"account quota", with(func(c *CreateDomain) { c.Limits.AccountQuotaBytes = ptr(int64(-1)) }), []string{"limits.account_quota_bytes"}},
		{"warn percent", with(func(c *CreateDomain) { c.Limits.WarnPercent = ptr(101) }), []string{"limits.warn_percent"}},
		{"warn recipient", with(func(c *CreateDomain) { c.Limits.WarnRecipient = "ops" }), []string{"limits.warn_recipient"}},
		{"max accounts", with(func(c *CreateDomain) { c.Limits.MaxAccounts = -1 }), []string{"limits.max_accounts"}},
		{"all at once", CreateDomain{
			Name: "", TimeZone: ptr("x"), Status: "x",
			Auth:   AuthSettings{Mechanism: AuthAD, SearchFilter: "(("},
			Limits: DomainLimits{WarnPercent: ptr(-1), MaxAccounts: -1},
		}, []string{"name", "time_zone", "status", "auth.ldap_url", "auth.search_filter", "limits.warn_percent", "limits.max_accounts"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, err := Domain{}.Decide(tc.cmd)
			require.Nil(t, events)
			requireFields(t, err, tc.fields...)
		})
	}
}

func TestUpdateDomain(t *testing.T) {
	t.Parallel()
	d := createdDomain(t, CreateDomain{
		Name: "example.com", TimeZone: ptr("Europe/Rome"), DefaultCOS: ptr("gold"), COSExists: true,
		Auth:   AuthSettings{Mechanism: AuthLDAP, LDAPURL: "ldap://ldap", BindPasswordSecret: "enc:1"},
		Limits: DomainLimits{AccountQuotaBytes: ptr(int64(100)), WarnPercent: ptr(80), MaxAccounts: 5},
	})

	t.Run("patch records only changes", func(t *testing.T) {
		t.Parallel()
		events, err := d.Decide(UpdateDomain{
			Description: ptr("now described"),
			TimeZone:    ptr("Europe/Rome"), // unchanged
			DefaultCOS:  ptr("GOLD"),        // unchanged, and needs no COSExists
			Limits:      &LimitsPatch{AccountQuotaBytes: ptr(int64(100)), MaxAccounts: ptr(0)},
			Auth:        &AuthPatch{LDAPURL: ptr("ldap://ldap")},
		})
		require.NoError(t, err)
		require.Equal(t, []Event{DomainUpdated{
			Name: "example.com", Description: ptr("now described"), Limits: &LimitsPatch{MaxAccounts: ptr(0)},
		}}, events)
		next := d.Evolve(events[0])
		require.Equal(t, 0, next.Limits.MaxAccounts)
		require.Equal(t, int64(100), *next.Limits.AccountQuotaBytes)
		require.Equal(t, 5, d.Limits.MaxAccounts)
	})
	t.Run("no change, no event", func(t *testing.T) {
		t.Parallel()
		events, err := d.Decide(UpdateDomain{Status: ptr(StatusActive), Clear: []string{"public_protocol"}, Limits: &LimitsPatch{}})
		require.NoError(t, err)
		require.Empty(t, events)
	})
	t.Run("clear back to inherit", func(t *testing.T) {
		t.Parallel()
		events, err := d.Decide(UpdateDomain{Clear: []string{"time_zone", "limits.warn_percent", "default_cos"}})
		require.NoError(t, err)
		require.Equal(t, []Event{DomainUpdated{Name: "example.com", Cleared: []string{"default_cos", "limits.warn_percent", "time_zone"}}}, events)
		next := d.Evolve(events[0])
		require.Nil(t, next.TimeZone)
		require.Nil(t, next.DefaultCOS)
		require.Nil(t, next.Limits.WarnPercent)
		require.NotNil(t, next.Limits.AccountQuotaBytes)
	})
	t.Run("new default cos must exist", func(t *testing.T) {
		t.Parallel()
		_, err := d.Decide(UpdateDomain{DefaultCOS: ptr("silver")})
		requireFields(t, err, "default_cos")
		events, err := d.Decide(UpdateDomain{DefaultCOS: ptr("silver"), COSExists: true})
		require.NoError(t, err)
		require.Equal(t, []Event{DomainUpdated{Name: "example.com", DefaultCOS: ptr("silver")}}, events)
	})
	t.Run("auth switch is checked as a whole", func(t *testing.T) {
		t.Parallel()
		_, err := d.Decide(UpdateDomain{Auth: &AuthPatch{LDAPURL: ptr("")}})
		requireFields(t, err, "auth.ldap_url")
		events, err := d.Decide(UpdateDomain{Auth: &AuthPatch{Mechanism: ptr(AuthInternal), LDAPURL: ptr("")}})
		require.NoError(t, err)
		next := d.Evolve(events[0])
		require.Equal(t, DomainAuth{Mechanism: AuthInternal, HasBindPassword: true, BindPasswordSecret: "enc:1"}, next.Auth)
	})
	t.Run("bind password set and removed", func(t *testing.T) {
		t.Parallel()
		events, err := d.Decide(UpdateDomain{Auth: &AuthPatch{BindPasswordSecret: ptr("")}})
		require.NoError(t, err)
		require.Equal(t, []Event{DomainUpdated{Name: "example.com", Auth: &AuthPatch{BindPasswordSecret: ptr("")}}}, events)
		without := d.Evolve(events[0])
		require.False(t, without.Auth.HasBindPassword)

		events, err = without.Decide(UpdateDomain{Auth: &AuthPatch{BindPasswordSecret: ptr("")}})
		require.NoError(t, err)
		require.Empty(t, events, "removing an absent password changes nothing")

		events, err = without.Decide(UpdateDomain{Auth: &AuthPatch{BindPasswordSecret: ptr("enc:2")}})
		require.NoError(t, err)
		require.True(t, without.Evolve(events[0]).Auth.HasBindPassword)
	})
	t.Run("validation lists every field", func(t *testing.T) {
		t.Parallel()
		_, err := d.Decide(UpdateDomain{
			Description: ptr("\x01"), TimeZone: ptr("x"), PublicProtocol: ptr("x"), SpamRelayHost: ptr("::1"),
			Status: ptr("gone"), Auth: &AuthPatch{Mechanism: ptr("x"), SearchFilter: ptr("x")},
			Limits: &LimitsPatch{DomainQuotaBytes: ptr(int64(-1)), AccountQuotaBytes: ptr(int64(-1)), WarnPercent: ptr(-1), WarnRecipient: ptr("x"), MaxAccounts: ptr(-1)},
			Clear:  []string{"limits.warn_percent", "status"},
		})
		requireFields(t, err, "description", "time_zone", "public_protocol", "spam_relay_host", "status",
			"auth.mechanism", "auth.search_filter", "limits.domain_quota_bytes", "limits.account_quota_bytes",
			"limits.warn_percent", "limits.warn_recipient", "limits.max_accounts", "clear")
	})
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		_, err := Domain{}.Decide(UpdateDomain{Description: ptr("x")})
		require.ErrorIs(t, err, ErrNotFound)
		_, err = Domain{}.Decide(CloseDomain{})
		require.ErrorIs(t, err, ErrNotFound)
	})
}

func TestCloseDomain(t *testing.T) {
	t.Parallel()
	d := createdDomain(t, CreateDomain{Name: "example.com"})
	events, err := d.Decide(CloseDomain{})
	require.NoError(t, err)
	require.Equal(t, []Event{DomainClosed{Name: "example.com"}}, events)
	closed := d.Evolve(events[0])
	require.Equal(t, StatusClosed, closed.Status)
	require.False(t, closed.AcceptsLogins())

	events, err = closed.Decide(CloseDomain{})
	require.NoError(t, err)
	require.Empty(t, events)

	// Reopening is a status change.
	events, err = closed.Decide(UpdateDomain{Status: ptr(StatusActive)})
	require.NoError(t, err)
	require.True(t, closed.Evolve(events[0]).AcceptsLogins())
}

func TestDomainStatusSemantics(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status                       string
		logins, newAccounts, changes bool
		delivery                     Delivery
	}{
		{StatusActive, true, true, true, DeliveryAccept},
		{StatusLocked, false, true, true, DeliveryAccept},
		{StatusMaintenance, false, true, true, DeliveryDefer},
		{StatusSuspended, false, false, false, DeliveryDefer},
		{StatusClosed, false, false, true, DeliveryBounce},
	}
	for _, tc := range cases {
		d := Domain{Name: "example.com", Status: tc.status}
		require.Equal(t, tc.logins, d.AcceptsLogins(), tc.status)
		require.Equal(t, tc.newAccounts, d.AcceptsNewAccounts(), tc.status)
		require.Equal(t, tc.changes, d.AcceptsChanges(), tc.status)
		require.Equal(t, tc.delivery, d.MailDelivery(), tc.status)
		if tc.changes {
			require.NoError(t, d.CheckAcceptsChanges())
		} else {
			require.ErrorIs(t, d.CheckAcceptsChanges(), ErrDomainUnavailable)
		}
	}
	var none Domain
	require.False(t, none.AcceptsLogins())
	require.False(t, none.AcceptsNewAccounts())
	require.Equal(t, DeliveryBounce, none.MailDelivery())
	require.ErrorIs(t, none.CheckAcceptsChanges(), ErrNotFound)
}

func TestUpdateDomainEveryField(t *testing.T) {
	t.Parallel()
	d := createdDomain(t, CreateDomain{Name: "example.com"})
	events, err := d.Decide(UpdateDomain{
		Description: ptr("d"), TimeZone: ptr("Asia/Tokyo"), PublicProtocol: ptr("http"), SpamRelayHost: ptr("[2001:db8::1]:25"),
		DefaultCOS: ptr("gold"), COSExists: true, Status: ptr(StatusLocked),
		Auth: &AuthPatch{Mechanism: ptr(AuthAD), LDAPURL: ptr("ldap://dc1"), BindDN: ptr("cn=r,dc=x"), BindPasswordSecret: ptr("enc:1"),
			SearchBase: ptr("dc=x"), SearchFilter: ptr("(sAMAccountName=%u)")},
		Limits: &LimitsPatch{DomainQuotaBytes: ptr(int64(1)), AccountQuotaBytes: ptr(int64(2)), WarnPercent: ptr(3),
			WarnRecipient: ptr("ops@example.com"), MaxAccounts: ptr(4)},
	})
	require.NoError(t, err)
	require.Equal(t, Domain{
		Name: "example.com", UnicodeName: "example.com", Description: "d", TimeZone: ptr("Asia/Tokyo"),
		PublicProtocol: ptr("http"), SpamRelayHost: ptr("[2001:db8::1]:25"), DefaultCOS: ptr("gold"), Status: StatusLocked,
		Auth: DomainAuth{Mechanism: AuthAD, LDAPURL: "ldap://dc1", BindDN: "cn=r,dc=x", HasBindPassword: true, BindPasswordSecret: "enc:1",
			SearchBase: "dc=x", SearchFilter: "(sAMAccountName=%u)"},
		Limits: DomainLimits{DomainQuotaBytes: ptr(int64(1)), AccountQuotaBytes: ptr(int64(2)), WarnPercent: ptr(3),
			WarnRecipient: "ops@example.com", MaxAccounts: 4},
	}, evolveDomain(d, events))

	// And back: clear every inheritable setting.
	next := evolveDomain(d, events)
	events, err = next.Decide(UpdateDomain{Clear: domainClearable})
	require.NoError(t, err)
	cleared := evolveDomain(next, events)
	require.Nil(t, cleared.TimeZone)
	require.Nil(t, cleared.PublicProtocol)
	require.Nil(t, cleared.SpamRelayHost)
	require.Nil(t, cleared.DefaultCOS)
	require.Equal(t, DomainLimits{WarnRecipient: "ops@example.com", MaxAccounts: 4}, cleared.Limits)
	require.Equal(t, d, d.Evolve(COSDeleted{}), "unknown events are ignored")
}

func evolveDomain(d Domain, events []Event) Domain {
	for _, e := range events {
		d = d.Evolve(e)
	}
	return d
}
