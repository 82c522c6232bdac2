package domain

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// sampleEvents has one fully populated value of every event type, so the
// JSON round trip exercises every field.
func sampleEvents(t *testing.T) []Event {
	ann := mustAddr(t, "ann@example.com")
	alias := mustAddr(t, "anna@example.org")
	team := mustAddr(t, "team@example.com")
	ext := mustAddr(t, "someone@elsewhere.example")
	room := mustAddr(t, "room1@example.com")
	return []Event{
		GlobalConfigUpdated{
			TimeZone: ptr("Europe/Rome"), PublicProtocol: ptr("http"), SpamRelayHost: ptr("relay:25"),
			DefaultCOS: ptr("gold"), AccountQuotaBytes: ptr(int64(1 << 30)), DomainQuotaBytes: ptr(int64(1 << 40)),
			WarnPercent: ptr(80), GALPollingIntervalSeconds: ptr(600), SessionLifetimeSeconds: ptr(3600),
			PasswordMinLength: ptr(12),
		},
		COSCreated{
			Name: "gold", Description: "paying users", MailQuotaBytes: ptr(int64(0)), QuotaWarnPercent: ptr(95),
			Features: map[string]bool{"imap": true, "pop3": false}, PasswordMinLength: ptr(10), SessionLifetimeSeconds: ptr(0),
		},
		COSUpdated{
			Name: "gold", Description: ptr(""), MailQuotaBytes: ptr(int64(5)), QuotaWarnPercent: ptr(0),
			Features: map[string]bool{}, PasswordMinLength: ptr(0), SessionLifetimeSeconds: ptr(60),
			Cleared: []string{"quota_warn_percent"},
		},
		COSDeleted{Name: "gold"},
		DomainCreated{
			Name: "xn--bcher-kva.example", UnicodeName: "bücher.example", Description: "books",
			TimeZone: ptr("UTC"), PublicProtocol: ptr("https"), SpamRelayHost: ptr(""), DefaultCOS: ptr("gold"),
			Status: "active",
			Auth: AuthSettings{Mechanism: "ldap", LDAPURL: "ldaps://ldap", BindDN: "cn=x,dc=y",
				BindPasswordSecret: "enc:abc", SearchBase: "dc=y", SearchFilter: "(uid=%u)"},
			Limits: DomainLimits{DomainQuotaBytes: ptr(int64(0)), AccountQuotaBytes: ptr(int64(7)), WarnPercent: ptr(0),
				WarnRecipient: "ops@example.com", MaxAccounts: 10},
		},
		DomainUpdated{
			Name: "example.com", Description: ptr("d"), TimeZone: ptr("UTC"), PublicProtocol: ptr("http"),
			SpamRelayHost: ptr(""), DefaultCOS: ptr("basic"), Status: ptr("locked"),
			Auth:    &AuthPatch{Mechanism: ptr("internal"), LDAPURL: ptr(""), BindDN: ptr(""), BindPasswordSecret: ptr(""), SearchBase: ptr(""), SearchFilter: ptr("")},
			Limits:  &LimitsPatch{DomainQuotaBytes: ptr(int64(0)), AccountQuotaBytes: ptr(int64(0)), WarnPercent: ptr(0), WarnRecipient: ptr(""), MaxAccounts: ptr(0)},
			Cleared: []string{"limits.warn_percent", "time_zone"},
		},
		DomainClosed{Name: "example.com"},
		DomainRemovalStarted{Name: "example.com"},
		DomainRemoved{Name: "example.com"},
		AccountCreated{
			Address: ann, DisplayName: "Ann", PasswordSecret: "enc:pw", COS: ptr("gold"), Status: "active",
			MailQuotaBytes: ptr(int64(100)), QuotaSource: "domain", GlobalAdmin: true, DomainAdmin: true,
			Attributes: map[string]string{"dept": "sales"}, CreatedAt: t0,
		},
		AccountUpdated{
			Address: ann, DisplayName: ptr(""), COS: ptr("basic"), Status: ptr("locked"), MailQuotaBytes: ptr(int64(0)),
			GlobalAdmin: ptr(false), DomainAdmin: ptr(false), Attributes: map[string]string{}, Cleared: []string{"cos"},
		},
		AccountCreated{Address: ann, Status: "active", Auditor: true, AuditorDomains: []string{"example.com"}, CreatedAt: t0},
		AccountUpdated{Address: ann, Auditor: ptr(true), AuditorDomains: &[]string{}},
		AccountPasswordChanged{Address: ann, PasswordSecret: "enc:new"},
		AccountDeleted{Address: ann},
		AliasAdded{Address: ann, Alias: alias},
		AliasRemoved{Address: ann, Alias: alias},
		SessionStarted{Address: ann, SessionID: "s1", IP: "192.0.2.1", UserAgent: "curl/8", StartedAt: t0},
		SessionEnded{Address: ann, SessionID: "s1", By: "admin@example.com", EndedAt: t0},
		ListCreated{
			Address: team, DisplayName: "Team", Description: "all of us", Members: []Address{ann, ext},
			Owners: []Address{ann}, AllowedSenders: []Address{ext}, SubscriptionPolicy: "approval",
			UnsubscriptionPolicy: "accept", HideInGAL: true,
			Dynamic:   &ListDynamic{MemberURL: "ldap:///??sub?(a=b)", Scope: "sub", Filter: "(a=b)"},
			CreatedAt: t0,
		},
		ListUpdated{Address: team, DisplayName: ptr(""), Description: ptr("d"), AllowedSenders: []Address{},
			SubscriptionPolicy: ptr("reject"), UnsubscriptionPolicy: ptr("approval"), HideInGAL: ptr(false)},
		ListDeleted{Address: team},
		ListMembersAdded{Address: team, Members: []Address{ann, ext}},
		ListMembersRemoved{Address: team, Members: []Address{ext}},
		ListOwnersAdded{Address: team, Owners: []Address{ann}},
		ListOwnersRemoved{Address: team, Owners: []Address{ann}},
		ListAliasesAdded{Address: team, Aliases: []Address{alias}},
		ListAliasesRemoved{Address: team, Aliases: []Address{alias}},
		ListMadeDynamic{Address: team, Dynamic: ListDynamic{MemberURL: "ldap:///??one?(a=b)", Scope: "one", Filter: "(a=b)"}, DroppedMembers: 3},
		ListMadeStatic{Address: team},
		ResourceCreated{Address: room, DisplayName: "Room 1", Type: "location", Capacity: 8, Location: "1st floor",
			BookingPolicy: "manual", MaxConflicts: 2, NotifyAddresses: []Address{ann}, CreatedAt: t0},
		ResourceUpdated{Address: room, DisplayName: ptr(""), Type: ptr("equipment"), Capacity: ptr(0), Location: ptr(""),
			BookingPolicy: ptr("auto_decline"), MaxConflicts: ptr(0), NotifyAddresses: []Address{}},
		ResourceDeleted{Address: room},
		ResourceAliasAdded{Address: room, Alias: alias},
		ResourceAliasRemoved{Address: room, Alias: alias},
		VirtualHostAdded{Domain: "example.com", Host: "mail.example.com", UnicodeHost: "mail.example.com", At: t0},
		VirtualHostRemoved{Domain: "example.com", Host: "mail.example.com"},
		CertificateInstalled{Host: "mail.example.com", CertificateData: sampleCertificateData, By: "admin@example.com", At: t0},
		CertificateIssued{Host: "mail.example.com", RequestID: "r1", Chain: "short", Renewal: true,
			CertificateData: sampleCertificateData, At: t0},
		CertificateRemoved{Host: "mail.example.com"},
		CertificateRequested{Host: "mail.example.com", RequestID: "r1", Chain: "long", Renewal: true,
			RequestedBy: "admin@example.com", At: t0},
		CertificateIssuanceFailed{Host: "mail.example.com", RequestID: "r1", Renewal: true, Errors: []string{"dns"},
			At: t0, NextAttemptAt: &t0, Notify: true, Warned: 7},
		MailSent{Cause: "vhost-example.com/mail.example.com:r1", To: []string{"admin@example.com"}, Subject: "s",
			MessageID: "m@example.com", At: t0},
		DKIMKeyAdded{Domain: "example.com", Selector: "s2", Algorithm: "ed25519", PublicKey: "MCow", PrivateKeySecret: "enc:k", At: t0},
		DKIMKeyRetiring{Domain: "example.com", Selector: "s1", ReplacedBy: "s2", RetireAt: t0, At: t0},
		DKIMKeyRetired{Domain: "example.com", Selector: "s1", At: t0},
		DKIMKeyRemoved{Domain: "example.com", Selector: "s1", At: t0},
		GALConfigured{Domain: "example.com", Created: true, Account: mustAddr(t, "galsync@example.com"),
			PreviousAccount: &ann, Mode: GALBoth, PollingIntervalSeconds: 600,
			External: &GALSourceData{LDAPURL: "ldaps://dir.example.com", BindDN: "cn=r,dc=example,dc=com",
				BindPasswordSecret: "mpenc:v1:x", SearchBase: "dc=example,dc=com", SearchFilter: "(mail=*)",
				StartTLS: true, TimeoutSeconds: 10}, At: t0},
		GALDeleted{Domain: "example.com", Account: mustAddr(t, "galsync@example.com")},
		GALResyncRequested{Domain: "example.com", RequestID: "r1", By: "ann@example.com", At: t0},
		GALSynced{Domain: "example.com", Status: GALSyncFailed, Trigger: "request", StartedAt: t0, FinishedAt: t0,
			DurationMS: 12, Added: 1, Changed: 2, Removed: 3, Total: 4, Pages: 5, Error: "down"},
		QuotaWarningSent{Scope: QuotaScopeAccount, Name: "a@example.com", Crossing: 2, UsedBytes: 900, LimitBytes: 1000,
			WarnPercent: 90, To: []string{"a@example.com", "postmaster@example.com"}, Cause: "account-a@example.com:quota:2", At: t0},
		ServiceTokenCreated{ID: "t1", Name: "store", Role: RoleMailstore, CreatedBy: "admin@example.com", CreatedAt: t0},
		ServiceTokenRevoked{ID: "t1", RevokedBy: "admin@example.com", RevokedAt: t0},
		APITokenCreated{ID: "a1", Name: "backup", Account: "admin@example.com", Domains: []string{"example.com"},
			Access: map[string]string{"*": "read", "accounts": "write"}, ExpiresAt: t0.AddDate(0, 1, 0), CreatedAt: t0},
		APITokenRevoked{ID: "a1", RevokedBy: "admin@example.com", RevokedAt: t0},
		TOTPEnrolmentStarted{Address: Address{Local: "a", Domain: "example.com"}, TOTPSecret: "sealed", RecoveryCodesSecret: []string{"h1", "h2"}},
		TOTPEnrolmentConfirmed{Address: Address{Local: "a", Domain: "example.com"}, Step: 59000000, ConfirmedAt: t0},
		TOTPDisabled{Address: Address{Local: "a", Domain: "example.com"}, By: "admin@example.com"},
		TOTPCodeUsed{Address: Address{Local: "a", Domain: "example.com"}, Step: 59000001},
		TOTPRecoveryCodeUsed{Address: Address{Local: "a", Domain: "example.com"}, CodeSecret: "h1", Left: 1},
	}
}

var sampleCertificateData = CertificateData{
	CertificatePEM: "-----BEGIN CERTIFICATE-----", ChainPEM: "-----BEGIN CERTIFICATE-----", PrivateKeySecret: "enc:key",
	Subject: "CN=mail.example.com", Issuer: "CN=CA", SANs: []string{"mail.example.com"}, Serial: "1f",
	Fingerprint: "ab", KeyType: "EC-P-256", NotBefore: t0, NotAfter: t0, ChainLength: 1, ChainRoot: "CN=Root",
}

func TestEventsRegistry(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, e := range Events() {
		require.NotEqual(t, reflect.Pointer, reflect.TypeOf(e).Kind(), "Events() lists values")
		name := e.EventType()
		require.NotEmpty(t, name)
		require.False(t, seen[name], "duplicate event type %s", name)
		require.Equal(t, reflect.TypeOf(e).Name(), name, "event type names match their Go types")
		require.Equal(t, 1, SchemaVersion(e))
		seen[name] = true
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	t.Parallel()
	samples := map[reflect.Type]Event{}
	for _, e := range sampleEvents(t) {
		samples[reflect.TypeOf(e)] = e
	}
	for _, zero := range Events() {
		typ := reflect.TypeOf(zero)
		sample, ok := samples[typ]
		require.True(t, ok, "no sample for %s", typ)
		t.Run(zero.EventType(), func(t *testing.T) {
			t.Parallel()
			for _, e := range []Event{sample, zero} {
				data, err := json.Marshal(e)
				require.NoError(t, err)
				back := reflect.New(typ)
				require.NoError(t, json.Unmarshal(data, back.Interface()))
				require.Equal(t, e, back.Elem().Interface(), "JSON %s", data)
			}
		})
	}
}

func TestSecretFieldsAreNamedSo(t *testing.T) {
	t.Parallel()
	require.True(t, IsSecretField("password_secret"))
	require.True(t, IsSecretField("bind_password_secret"))
	require.False(t, IsSecretField("password_min_length"))

	// No secret may hide under another name: the only fields holding
	// ciphertext in the samples are the *_secret ones.
	for _, e := range sampleEvents(t) {
		data, err := json.Marshal(e)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(data, &m))
		walkJSON(m, func(key string, v any) {
			if s, ok := v.(string); ok && len(s) > 4 && s[:4] == "enc:" {
				require.True(t, IsSecretField(key), "%s.%s holds a secret", e.EventType(), key)
			}
		})
	}
}

func walkJSON(m map[string]any, f func(key string, v any)) {
	for k, v := range m {
		f(k, v)
		if sub, ok := v.(map[string]any); ok {
			walkJSON(sub, f)
		}
	}
}

// exampleUpcasters shows the shape of a real upcaster: suppose
// SessionStarted v1 stored "agent" and v2 renamed it to "user_agent". The
// event would then declare SchemaVersion() 2, and Upcasters() would return
// this entry; the event store applies it to every stored v1 row on read.
var exampleUpcasters = []Upcaster{{
	EventType:   "SessionStarted",
	FromVersion: 1,
	Upcast: func(data map[string]any) (map[string]any, error) {
		out := make(map[string]any, len(data))
		for k, v := range data {
			out[k] = v
		}
		if agent, ok := out["agent"]; ok {
			s, isString := agent.(string)
			if !isString {
				return nil, fmt.Errorf("agent: want a string, got %T", agent)
			}
			out["user_agent"] = s
			delete(out, "agent")
		}
		return out, nil
	},
}}

func TestUpcasterExample(t *testing.T) {
	t.Parallel()
	require.Empty(t, Upcasters(), "no event has changed shape yet")

	stored := `{"address":"ann@example.com","session_id":"s1","ip":"192.0.2.1","agent":"curl/8","started_at":"2026-03-01T09:30:00Z"}`
	var data map[string]any
	require.NoError(t, json.Unmarshal([]byte(stored), &data))
	for _, u := range exampleUpcasters {
		require.Equal(t, "SessionStarted", u.EventType)
		var err error
		data, err = u.Upcast(data)
		require.NoError(t, err)
	}
	current, err := json.Marshal(data)
	require.NoError(t, err)
	var ev SessionStarted
	require.NoError(t, json.Unmarshal(current, &ev))
	require.Equal(t, SessionStarted{Address: mustAddr(t, "ann@example.com"), SessionID: "s1", IP: "192.0.2.1", UserAgent: "curl/8", StartedAt: t0}, ev)

	_, err = exampleUpcasters[0].Upcast(map[string]any{"agent": 3.0})
	require.Error(t, err)
}

// Replaying a stream from its stored JSON must rebuild the same state as
// evolving the events Decide returned.
func TestReplayFromJSONGivesTheSameState(t *testing.T) {
	t.Parallel()
	d := createdDomain(t, CreateDomain{Name: "example.com", Limits: DomainLimits{AccountQuotaBytes: ptr(int64(5))}})
	ann := mustAddr(t, "ann@example.com")
	cmds := []AccountCommand{
		CreateAccount{Address: ann, DisplayName: "Ann", PasswordSecret: "enc:1", Attributes: map[string]string{"a": "b"}, At: t0, Domain: d},
		AddAlias{Alias: mustAddr(t, "anna@example.com")},
		StartSession{SessionID: "s1", IP: "192.0.2.1", At: t0, Domain: d},
		UpdateAccount{Status: ptr(StatusLocked), Attributes: map[string]string{}, Clear: []string{"mail_quota_bytes"}},
		SetPassword{PasswordSecret: "enc:2"},
		EndSession{SessionID: "s1", By: "system", At: t0},
	}
	var live, replayed Account
	for _, cmd := range cmds {
		events, err := live.Decide(cmd)
		require.NoError(t, err, "%T", cmd)
		for _, e := range events {
			live = live.Evolve(e)
			data, err := json.Marshal(e)
			require.NoError(t, err)
			back := reflect.New(reflect.TypeOf(e))
			require.NoError(t, json.Unmarshal(data, back.Interface()))
			replayed = replayed.Evolve(back.Elem().Interface().(Event))
		}
	}
	require.Equal(t, live, replayed)
	require.Equal(t, StatusLocked, live.Status)
	require.Empty(t, live.Sessions)
}
