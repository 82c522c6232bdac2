package domain

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func activeDomain(t *testing.T) Domain {
	t.Helper()
	return createdDomain(t, CreateDomain{Name: "example.com"})
}

func evolveAll(a Account, events []Event) Account {
	for _, e := range events {
		a = a.Evolve(e)
	}
	return a
}

func createdAccount(t *testing.T, cmd CreateAccount) Account {
	t.Helper()
	events, err := Account{}.Decide(cmd)
	require.NoError(t, err)
	require.Len(t, events, 1)
	return Account{}.Evolve(events[0])
}

func TestCreateAccount(t *testing.T) {
	t.Parallel()
	d := activeDomain(t)
	ann := mustAddr(t, "Ann@Example.com")
	attrs := map[string]string{"dept": "sales"}
	events, err := Account{}.Decide(CreateAccount{
		Address: ann, DisplayName: "Ann", PasswordSecret: "enc:pw", COS: ptr("Gold"), COSExists: true,
		GlobalAdmin: true, Attributes: attrs, At: t0.In(time.FixedZone("CET", 3600)), Domain: d,
	})
	require.NoError(t, err)
	require.Equal(t, []Event{AccountCreated{
		Address: ann, DisplayName: "Ann", PasswordSecret: "enc:pw", COS: ptr("gold"), Status: StatusActive,
		GlobalAdmin: true, Attributes: map[string]string{"dept": "sales"}, CreatedAt: t0,
	}}, events)
	a := Account{}.Evolve(events[0])
	require.True(t, a.Exists())
	require.True(t, a.HasPassword)
	require.Equal(t, "enc:pw", a.PasswordSecret)
	require.Nil(t, a.MailQuotaBytes)
	require.Empty(t, a.QuotaSource)
	attrs["dept"] = "changed"
	require.Equal(t, "sales", a.Attributes["dept"])

	_, err = a.Decide(CreateAccount{Address: ann, At: t0, Domain: d})
	require.ErrorIs(t, err, ErrAlreadyExists)

	noPassword := createdAccount(t, CreateAccount{Address: mustAddr(t, "bob@example.com"), At: t0, Domain: d})
	require.False(t, noPassword.HasPassword)
}

func TestCreateAccountValidation(t *testing.T) {
	t.Parallel()
	d := activeDomain(t)
	ok := CreateAccount{Address: mustAddr(t, "ann@example.com"), At: t0, Domain: d}
	with := func(f func(*CreateAccount)) CreateAccount {
		c := ok
		f(&c)
		return c
	}
	tooMany := map[string]string{}
	for i := range 65 {
		tooMany[fmt.Sprintf("k%d", i)] = "v"
	}
	cases := []struct {
		name   string
		cmd    CreateAccount
		fields []string
	}{
		{"unnormalised address", with(func(c *CreateAccount) { c.Address = Address{Local: "Ann", Domain: "example.com"} }), []string{"address"}},
		{"address in another domain", with(func(c *CreateAccount) { c.Address = mustAddr(t, "ann@example.org") }), []string{"address"}},
		{"display name", with(func(c *CreateAccount) { c.DisplayName = "a\nb" }), []string{"display_name"}},
		{"long display name", with(func(c *CreateAccount) { c.DisplayName = strings.Repeat("x", 257) }), []string{"display_name"}},
		{"cos name", with(func(c *CreateAccount) { c.COS, c.COSExists = ptr("a/b"), true }), []string{"cos"}},
		{"unknown cos", with(func(c *CreateAccount) { c.COS = ptr("gold") }), []string{"cos"}},
		{"status", with(func(c *CreateAccount) { c.Status = "suspended" }), []string{"status"}},
		{"quota", with(func(c *CreateAccount) { c.MailQuotaBytes = ptr(int64(-1)) }), []string{"mail_quota_bytes"}},
		{"attribute key", with(func(c *CreateAccount) { c.Attributes = map[string]string{"1abc": "x", "ok": "y"} }), []string{"attributes.1abc"}},
		{"attribute key too long", with(func(c *CreateAccount) { c.Attributes = map[string]string{"a" + strings.Repeat("b", 64): "x"} }), []string{"attributes.a" + strings.Repeat("b", 64)}},
		{"attribute value", with(func(c *CreateAccount) { c.Attributes = map[string]string{"big": strings.Repeat("x", 1025)} }), []string{"attributes.big"}},
		{"too many attributes", with(func(c *CreateAccount) { c.Attributes = tooMany }), []string{"attributes"}},
		{"no time", with(func(c *CreateAccount) { c.At = time.Time{} }), []string{"at"}},
		{"all at once", with(func(c *CreateAccount) {
			c.Address = mustAddr(t, "ann@example.org")
			c.Status, c.MailQuotaBytes, c.COS = "x", ptr(int64(-5)), ptr("nope")
		}), []string{"address", "status", "mail_quota_bytes", "cos"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, err := Account{}.Decide(tc.cmd)
			require.Nil(t, events)
			requireFields(t, err, tc.fields...)
		})
	}
	okAttrs := map[string]string{}
	for i := range 64 {
		okAttrs[fmt.Sprintf("k%d", i)] = strings.Repeat("v", 1024)
	}
	_, err := Account{}.Decide(with(func(c *CreateAccount) { c.Attributes = okAttrs }))
	require.NoError(t, err, "64 attributes of 1024 bytes are allowed")
}

func TestCreateAccountDomainRules(t *testing.T) {
	t.Parallel()
	ann := mustAddr(t, "ann@example.com")

	_, err := Account{}.Decide(CreateAccount{Address: ann, At: t0})
	require.ErrorIs(t, err, ErrNotFound)
	require.Contains(t, err.Error(), "example.com")

	for status, allowed := range map[string]bool{
		StatusActive: true, StatusLocked: true, StatusMaintenance: true, StatusClosed: false, StatusSuspended: false,
	} {
		d := createdDomain(t, CreateDomain{Name: "example.com", Status: status})
		_, err := Account{}.Decide(CreateAccount{Address: ann, At: t0, Domain: d})
		if allowed {
			require.NoError(t, err, status)
		} else {
			require.ErrorIs(t, err, ErrDomainUnavailable, status)
		}
	}
}

func TestCreateAccountMaxAccounts(t *testing.T) {
	t.Parallel()
	ann := mustAddr(t, "ann@example.com")
	limited := createdDomain(t, CreateDomain{Name: "example.com", Limits: DomainLimits{MaxAccounts: 5}})
	unlimited := createdDomain(t, CreateDomain{Name: "example.com"})
	cases := []struct {
		d     Domain
		count int
		ok    bool
	}{
		{limited, 0, true},
		{limited, 4, true},
		{limited, 5, false},
		{limited, 6, false},
		{unlimited, 100000, true},
	}
	for _, tc := range cases {
		_, err := Account{}.Decide(CreateAccount{Address: ann, At: t0, Domain: tc.d, AccountCount: tc.count})
		if tc.ok {
			require.NoError(t, err, tc.count)
		} else {
			require.ErrorIs(t, err, ErrLimitReached, tc.count)
		}
	}
}

func TestCreateAccountTakesDomainQuota(t *testing.T) {
	t.Parallel()
	ann := mustAddr(t, "ann@example.com")
	d := createdDomain(t, CreateDomain{Name: "example.com", Limits: DomainLimits{AccountQuotaBytes: ptr(int64(500))}})

	a := createdAccount(t, CreateAccount{Address: ann, At: t0, Domain: d})
	require.Equal(t, int64(500), *a.MailQuotaBytes)
	require.Equal(t, SourceDomain, a.QuotaSource)

	own := createdAccount(t, CreateAccount{Address: ann, At: t0, Domain: d, MailQuotaBytes: ptr(int64(0))})
	require.Equal(t, int64(0), *own.MailQuotaBytes)
	require.Equal(t, SourceAccount, own.QuotaSource)

	noLimit := createdDomain(t, CreateDomain{Name: "example.com", Limits: DomainLimits{AccountQuotaBytes: ptr(int64(0))}})
	inherits := createdAccount(t, CreateAccount{Address: ann, At: t0, Domain: noLimit})
	require.Nil(t, inherits.MailQuotaBytes)
	require.Empty(t, inherits.QuotaSource)
}

func TestAccountDeleteAndRecreate(t *testing.T) {
	t.Parallel()
	d := activeDomain(t)
	ann := mustAddr(t, "ann@example.com")
	a := createdAccount(t, CreateAccount{Address: ann, DisplayName: "Ann", PasswordSecret: "enc:1", At: t0, Domain: d})
	events, err := a.Decide(AddAlias{Alias: mustAddr(t, "anna@example.com")})
	require.NoError(t, err)
	a = evolveAll(a, events)
	events, err = a.Decide(StartSession{SessionID: "s1", IP: "192.0.2.1", At: t0, Domain: d})
	require.NoError(t, err)
	a = evolveAll(a, events)

	events, err = a.Decide(DeleteAccount{})
	require.NoError(t, err)
	require.Equal(t, []Event{AccountDeleted{Address: ann}}, events)
	gone := evolveAll(a, events)
	require.False(t, gone.Exists())
	require.Len(t, a.Aliases, 1, "Evolve must not change the old state")

	for _, cmd := range []AccountCommand{DeleteAccount{}, UpdateAccount{DisplayName: ptr("x")}, SetPassword{PasswordSecret: "x"},
		AddAlias{Alias: mustAddr(t, "x@example.com")}, RemoveAlias{Alias: mustAddr(t, "x@example.com")},
		StartSession{SessionID: "s", IP: "192.0.2.1", At: t0, Domain: d}, EndSession{SessionID: "s1", At: t0}} {
		_, err := gone.Decide(cmd)
		require.ErrorIs(t, err, ErrNotFound, "%T", cmd)
	}

	later := t0.Add(time.Hour)
	events, err = gone.Decide(CreateAccount{Address: ann, At: later, Domain: d})
	require.NoError(t, err)
	back := evolveAll(gone, events)
	require.True(t, back.Exists())
	require.Empty(t, back.Aliases)
	require.Empty(t, back.Sessions)
	require.Empty(t, back.DisplayName)
	require.False(t, back.HasPassword)
	require.Equal(t, later, back.CreatedAt)
}

func TestUpdateAccount(t *testing.T) {
	t.Parallel()
	d := createdDomain(t, CreateDomain{Name: "example.com", Limits: DomainLimits{AccountQuotaBytes: ptr(int64(500))}})
	a := createdAccount(t, CreateAccount{
		Address: mustAddr(t, "ann@example.com"), DisplayName: "Ann", COS: ptr("gold"), COSExists: true,
		Attributes: map[string]string{"dept": "sales"}, At: t0, Domain: d,
	})
	require.Equal(t, SourceDomain, a.QuotaSource)

	t.Run("patch records only changes", func(t *testing.T) {
		t.Parallel()
		events, err := a.Decide(UpdateAccount{
			DisplayName: ptr("Ann"), Status: ptr(StatusLocked), GlobalAdmin: ptr(false), DomainAdmin: ptr(true),
			COS: ptr("Gold"), Attributes: map[string]string{"dept": "sales"},
		})
		require.NoError(t, err)
		require.Equal(t, []Event{AccountUpdated{Address: a.Address, Status: ptr(StatusLocked), DomainAdmin: ptr(true)}}, events)
		next := evolveAll(a, events)
		require.Equal(t, StatusLocked, next.Status)
		require.True(t, next.DomainAdmin)
		require.Equal(t, StatusActive, a.Status)
	})
	t.Run("nothing to change", func(t *testing.T) {
		t.Parallel()
		events, err := a.Decide(UpdateAccount{DisplayName: ptr("Ann"), Status: ptr(StatusActive)})
		require.NoError(t, err)
		require.Empty(t, events)
	})
	t.Run("setting the domain's quota makes it the account's own", func(t *testing.T) {
		t.Parallel()
		events, err := a.Decide(UpdateAccount{MailQuotaBytes: ptr(int64(500))})
		require.NoError(t, err)
		require.Len(t, events, 1)
		next := evolveAll(a, events)
		require.Equal(t, SourceAccount, next.QuotaSource)
		events, err = next.Decide(UpdateAccount{MailQuotaBytes: ptr(int64(500))})
		require.NoError(t, err)
		require.Empty(t, events)
	})
	t.Run("clear back to inherit", func(t *testing.T) {
		t.Parallel()
		events, err := a.Decide(UpdateAccount{Clear: []string{"cos", "mail_quota_bytes"}})
		require.NoError(t, err)
		require.Equal(t, []Event{AccountUpdated{Address: a.Address, Cleared: []string{"cos", "mail_quota_bytes"}}}, events)
		next := evolveAll(a, events)
		require.Nil(t, next.COS)
		require.Nil(t, next.MailQuotaBytes)
		require.Empty(t, next.QuotaSource)
		events, err = next.Decide(UpdateAccount{Clear: []string{"cos"}})
		require.NoError(t, err)
		require.Empty(t, events)
	})
	t.Run("attributes are replaced", func(t *testing.T) {
		t.Parallel()
		events, err := a.Decide(UpdateAccount{Attributes: map[string]string{}})
		require.NoError(t, err)
		require.Equal(t, []Event{AccountUpdated{Address: a.Address, Attributes: map[string]string{}}}, events)
		require.Empty(t, evolveAll(a, events).Attributes)
		require.Equal(t, "sales", a.Attributes["dept"])
	})
	t.Run("new cos must exist", func(t *testing.T) {
		t.Parallel()
		_, err := a.Decide(UpdateAccount{COS: ptr("silver")})
		requireFields(t, err, "cos")
		events, err := a.Decide(UpdateAccount{COS: ptr("silver"), COSExists: true})
		require.NoError(t, err)
		require.Equal(t, "silver", *evolveAll(a, events).COS)
	})
	t.Run("validation lists every field", func(t *testing.T) {
		t.Parallel()
		_, err := a.Decide(UpdateAccount{
			DisplayName: ptr("\t"), COS: ptr("x y"), Status: ptr("x"), MailQuotaBytes: ptr(int64(-1)),
			Attributes: map[string]string{"_x": ""}, Clear: []string{"cos", "display_name"},
		})
		requireFields(t, err, "display_name", "cos", "status", "mail_quota_bytes", "attributes._x", "clear")
	})
}

func TestSetPassword(t *testing.T) {
	t.Parallel()
	a := createdAccount(t, CreateAccount{Address: mustAddr(t, "ann@example.com"), At: t0, Domain: activeDomain(t)})
	_, err := a.Decide(SetPassword{})
	requireFields(t, err, "password")

	events, err := a.Decide(SetPassword{PasswordSecret: "enc:1"})
	require.NoError(t, err)
	require.Equal(t, []Event{AccountPasswordChanged{Address: a.Address, PasswordSecret: "enc:1"}}, events)
	a = evolveAll(a, events)
	require.True(t, a.HasPassword)
	require.Equal(t, "enc:1", a.PasswordSecret)

	events, err = a.Decide(SetPassword{PasswordSecret: "enc:1"})
	require.NoError(t, err)
	require.Empty(t, events)
}

func TestAliases(t *testing.T) {
	t.Parallel()
	a := createdAccount(t, CreateAccount{Address: mustAddr(t, "ann@example.com"), At: t0, Domain: activeDomain(t)})
	zed, bob := mustAddr(t, "zed@example.org"), mustAddr(t, "bob@example.com")

	for _, alias := range []Address{zed, bob} {
		events, err := a.Decide(AddAlias{Alias: alias})
		require.NoError(t, err)
		require.Equal(t, []Event{AliasAdded{Address: a.Address, Alias: alias}}, events)
		a = evolveAll(a, events)
	}
	require.Equal(t, []Address{bob, zed}, a.Aliases, "kept sorted")

	_, err := a.Decide(AddAlias{Alias: bob})
	require.ErrorIs(t, err, ErrAlreadyExists)
	_, err = a.Decide(AddAlias{Alias: a.Address})
	requireFields(t, err, "alias")
	_, err = a.Decide(AddAlias{Alias: Address{Local: "x y", Domain: "example.com"}})
	requireFields(t, err, "alias")

	events, err := a.Decide(RemoveAlias{Alias: bob})
	require.NoError(t, err)
	require.Equal(t, []Event{AliasRemoved{Address: a.Address, Alias: bob}}, events)
	next := evolveAll(a, events)
	require.Equal(t, []Address{zed}, next.Aliases)
	require.Equal(t, []Address{bob, zed}, a.Aliases)

	_, err = next.Decide(RemoveAlias{Alias: bob})
	require.ErrorIs(t, err, ErrNotFound)
}

func TestSessions(t *testing.T) {
	t.Parallel()
	d := activeDomain(t)
	a := createdAccount(t, CreateAccount{Address: mustAddr(t, "ann@example.com"), At: t0, Domain: d})

	events, err := a.Decide(StartSession{SessionID: "s1", IP: "::ffff:192.0.2.1", UserAgent: "Mozilla\x00/5", At: t0, Domain: d})
	require.NoError(t, err)
	require.Equal(t, []Event{SessionStarted{Address: a.Address, SessionID: "s1", IP: "192.0.2.1", UserAgent: "Mozilla /5", StartedAt: t0}}, events)
	a = evolveAll(a, events)
	require.Equal(t, Session{ID: "s1", IP: "192.0.2.1", UserAgent: "Mozilla /5", StartedAt: t0}, a.Sessions["s1"])

	_, err = a.Decide(StartSession{SessionID: "s1", IP: "192.0.2.1", At: t0, Domain: d})
	require.ErrorIs(t, err, ErrAlreadyExists)

	_, err = a.Decide(StartSession{SessionID: "bad id", IP: "nowhere", Domain: d})
	requireFields(t, err, "session_id", "ip", "at")

	long := strings.Repeat("é", 400)
	events, err = a.Decide(StartSession{SessionID: "s2", IP: "2001:db8::1", UserAgent: long, At: t0, Domain: d})
	require.NoError(t, err)
	ua := events[0].(SessionStarted).UserAgent
	require.LessOrEqual(t, len(ua), 512)
	require.True(t, strings.HasPrefix(long, ua))

	events, err = a.Decide(EndSession{SessionID: "s1", By: "admin@example.com", At: t0.Add(time.Minute)})
	require.NoError(t, err)
	require.Equal(t, []Event{SessionEnded{Address: a.Address, SessionID: "s1", By: "admin@example.com", EndedAt: t0.Add(time.Minute)}}, events)
	ended := evolveAll(a, events)
	require.Empty(t, ended.Sessions)
	require.Contains(t, a.Sessions, "s1")

	_, err = ended.Decide(EndSession{SessionID: "s1", At: t0})
	require.ErrorIs(t, err, ErrNotFound)
	_, err = a.Decide(EndSession{SessionID: "s1"})
	requireFields(t, err, "at")
}

func TestLoginRefused(t *testing.T) {
	t.Parallel()
	d := activeDomain(t)
	a := createdAccount(t, CreateAccount{Address: mustAddr(t, "ann@example.com"), At: t0, Domain: d})
	require.NoError(t, a.AcceptsLogin(d))

	for _, status := range []string{StatusLocked, StatusMaintenance, StatusClosed, StatusLockout, StatusPending} {
		events, err := a.Decide(UpdateAccount{Status: ptr(status)})
		require.NoError(t, err)
		blocked := evolveAll(a, events)
		require.ErrorIs(t, blocked.AcceptsLogin(d), ErrLoginRefused, status)
		_, err = blocked.Decide(StartSession{SessionID: "s", IP: "192.0.2.1", At: t0, Domain: d})
		require.ErrorIs(t, err, ErrLoginRefused, status)
		require.Contains(t, err.Error(), status)
	}
	for _, status := range []string{StatusLocked, StatusMaintenance, StatusClosed, StatusSuspended} {
		events, err := d.Decide(UpdateDomain{Status: ptr(status)})
		require.NoError(t, err)
		dd := d
		for _, e := range events {
			dd = dd.Evolve(e)
		}
		_, err = a.Decide(StartSession{SessionID: "s", IP: "192.0.2.1", At: t0, Domain: dd})
		require.ErrorIs(t, err, ErrLoginRefused, status)
	}
	other := createdDomain(t, CreateDomain{Name: "example.org"})
	require.ErrorIs(t, a.AcceptsLogin(other), ErrLoginRefused)
	require.ErrorIs(t, a.AcceptsLogin(Domain{}), ErrLoginRefused)
	require.ErrorIs(t, Account{}.AcceptsLogin(d), ErrLoginRefused)
}

func TestAccountIgnoresOtherEvents(t *testing.T) {
	t.Parallel()
	a := createdAccount(t, CreateAccount{Address: mustAddr(t, "ann@example.com"), At: t0, Domain: activeDomain(t)})
	require.Equal(t, a, a.Evolve(DomainClosed{Name: "example.com"}))
	require.Equal(t, a, a.Evolve(SessionEnded{Address: a.Address, SessionID: "unknown", EndedAt: t0}))
}

func TestAccountMailDelivery(t *testing.T) {
	d := Domain{Name: "example.test", Status: StatusActive}
	acct := func(status string) Account {
		return Account{Address: Address{Local: "a", Domain: "example.test"}, Status: status}
	}
	for status, want := range map[string]Delivery{
		StatusActive: DeliveryAccept, StatusLocked: DeliveryAccept, StatusLockout: DeliveryAccept,
		StatusMaintenance: DeliveryDefer, StatusClosed: DeliveryBounce, StatusPending: DeliveryBounce,
	} {
		require.Equal(t, want, acct(status).MailDelivery(d), status)
	}
	// The domain's status is stricter: it wins.
	for status, want := range map[string]Delivery{
		StatusActive: DeliveryAccept, StatusLocked: DeliveryAccept, StatusMaintenance: DeliveryDefer,
		StatusSuspended: DeliveryDefer, StatusClosed: DeliveryBounce,
	} {
		require.Equal(t, want, acct(StatusActive).MailDelivery(Domain{Name: "example.test", Status: status}), status)
	}
	require.Equal(t, DeliveryBounce, acct(StatusMaintenance).MailDelivery(Domain{Name: "example.test", Status: StatusClosed}))
	require.Equal(t, DeliveryDefer, acct(StatusMaintenance).MailDelivery(Domain{Name: "example.test", Status: StatusLocked}))
	require.Equal(t, DeliveryBounce, Account{}.MailDelivery(d))
	require.Equal(t, DeliveryBounce, acct(StatusActive).MailDelivery(Domain{Name: "other.test", Status: StatusActive}))
}

func TestAccountAuditor(t *testing.T) {
	t.Parallel()
	d := activeDomain(t)
	ann := mustAddr(t, "ann@example.com")
	fields := func(err error) []string {
		var ve ValidationError
		require.ErrorAs(t, err, &ve)
		var names []string
		for _, f := range ve.Errors {
			names = append(names, f.Field)
		}
		return names
	}

	t.Run("create normalises the scope", func(t *testing.T) {
		t.Parallel()
		a := createdAccount(t, CreateAccount{Address: ann, Auditor: true,
			AuditorDomains: []string{"B.example", "a.example", "b.example", "bücher.example"}, At: t0, Domain: d})
		require.True(t, a.Auditor)
		require.Equal(t, []string{"a.example", "b.example", "xn--bcher-kva.example"}, a.AuditorDomains)
	})
	t.Run("refused with an admin role, a scope without the role, a bad name", func(t *testing.T) {
		t.Parallel()
		_, err := Account{}.Decide(CreateAccount{Address: ann, Auditor: true, GlobalAdmin: true, At: t0, Domain: d})
		require.Equal(t, []string{"auditor"}, fields(err))
		_, err = Account{}.Decide(CreateAccount{Address: ann, Auditor: true, DomainAdmin: true, At: t0, Domain: d})
		require.Equal(t, []string{"auditor"}, fields(err))
		_, err = Account{}.Decide(CreateAccount{Address: ann, AuditorDomains: []string{"a.example"}, At: t0, Domain: d})
		require.Equal(t, []string{"auditor_domains"}, fields(err))
		_, err = Account{}.Decide(CreateAccount{Address: ann, Auditor: true, AuditorDomains: []string{"not a domain"}, At: t0, Domain: d})
		require.Equal(t, []string{"auditor_domains"}, fields(err))
	})
	t.Run("update grants, narrows, widens and revokes", func(t *testing.T) {
		t.Parallel()
		a := createdAccount(t, CreateAccount{Address: ann, At: t0, Domain: d})
		events, err := a.Decide(UpdateAccount{Auditor: ptr(true)})
		require.NoError(t, err)
		require.Equal(t, []Event{AccountUpdated{Address: ann, Auditor: ptr(true)}}, events)
		a = evolveAll(a, events)
		require.True(t, a.Auditor)
		require.Empty(t, a.AuditorDomains)

		events, err = a.Decide(UpdateAccount{AuditorDomains: &[]string{"A.example"}})
		require.NoError(t, err)
		a = evolveAll(a, events)
		require.Equal(t, []string{"a.example"}, a.AuditorDomains)

		events, err = a.Decide(UpdateAccount{AuditorDomains: &[]string{}})
		require.NoError(t, err)
		require.Equal(t, []Event{AccountUpdated{Address: ann, AuditorDomains: &[]string{}}}, events)
		a = evolveAll(a, events)
		require.Empty(t, a.AuditorDomains)

		_, err = a.Decide(UpdateAccount{DomainAdmin: ptr(true)})
		require.Equal(t, []string{"auditor"}, fields(err))

		events, err = a.Decide(UpdateAccount{AuditorDomains: &[]string{"a.example"}})
		require.NoError(t, err)
		a = evolveAll(a, events)
		// Revoking the role takes its scope with it, and then an admin role may be granted.
		events, err = a.Decide(UpdateAccount{Auditor: ptr(false), DomainAdmin: ptr(true)})
		require.NoError(t, err)
		a = evolveAll(a, events)
		require.False(t, a.Auditor)
		require.Empty(t, a.AuditorDomains)
		require.True(t, a.DomainAdmin)

		_, err = a.Decide(UpdateAccount{AuditorDomains: &[]string{"a.example"}})
		require.Equal(t, []string{"auditor_domains"}, fields(err))
	})
}
