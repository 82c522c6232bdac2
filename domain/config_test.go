package domain

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGlobalConfigDefaults(t *testing.T) {
	t.Parallel()
	var g GlobalConfig
	require.False(t, g.Exists())
	require.Equal(t, GlobalConfig{
		TimeZone: "UTC", PublicProtocol: "https", SpamRelayHost: "", DefaultCOS: "default",
		AccountQuotaBytes: 0, DomainQuotaBytes: 0, WarnPercent: 90, GALPollingIntervalSeconds: 3600,
		SessionLifetimeSeconds: 86400, PasswordMinLength: 8,
	}, g.WithDefaults())
	require.True(t, g.WithDefaults().Exists())
}

func TestUpdateGlobalConfig(t *testing.T) {
	t.Parallel()
	var g GlobalConfig
	events, err := g.Decide(UpdateGlobalConfig{
		TimeZone:                  ptr("Europe/Rome"),
		PublicProtocol:            ptr("http"),
		SpamRelayHost:             ptr("Relay.Example.com:2525"),
		DefaultCOS:                ptr("Gold"),
		COSExists:                 true,
		AccountQuotaBytes:         ptr(int64(1 << 30)),
		WarnPercent:               ptr(90), // already the default: not recorded
		GALPollingIntervalSeconds: ptr(0),
		PasswordMinLength:         ptr(12),
	})
	require.NoError(t, err)
	require.Equal(t, []Event{GlobalConfigUpdated{
		TimeZone:                  ptr("Europe/Rome"),
		PublicProtocol:            ptr("http"),
		SpamRelayHost:             ptr("relay.example.com:2525"),
		DefaultCOS:                ptr("gold"),
		AccountQuotaBytes:         ptr(int64(1 << 30)),
		GALPollingIntervalSeconds: ptr(0),
		PasswordMinLength:         ptr(12),
	}}, events)

	g = g.Evolve(events[0])
	require.True(t, g.Exists())
	require.Equal(t, "Europe/Rome", g.TimeZone)
	require.Equal(t, "relay.example.com:2525", g.SpamRelayHost)
	require.Equal(t, "gold", g.DefaultCOS)
	require.Equal(t, 90, g.WarnPercent)
	require.Equal(t, 0, g.GALPollingIntervalSeconds)
	require.Equal(t, 86400, g.SessionLifetimeSeconds)

	t.Run("same values change nothing", func(t *testing.T) {
		t.Parallel()
		events, err := g.Decide(UpdateGlobalConfig{TimeZone: ptr("Europe/Rome"), DefaultCOS: ptr("GOLD"), WarnPercent: ptr(90)})
		require.NoError(t, err)
		require.Empty(t, events)
	})
	t.Run("clear resets to the built-in default", func(t *testing.T) {
		t.Parallel()
		events, err := g.Decide(UpdateGlobalConfig{Clear: []string{"time_zone", "spam_relay_host", "warn_percent"}})
		require.NoError(t, err)
		require.Equal(t, []Event{GlobalConfigUpdated{TimeZone: ptr("UTC"), SpamRelayHost: ptr("")}}, events)
	})
	t.Run("clearing default_cos needs the default COS to exist", func(t *testing.T) {
		t.Parallel()
		_, err := g.Decide(UpdateGlobalConfig{Clear: []string{"default_cos"}})
		requireFields(t, err, "default_cos")
		events, err := g.Decide(UpdateGlobalConfig{Clear: []string{"default_cos"}, COSExists: true})
		require.NoError(t, err)
		require.Equal(t, []Event{GlobalConfigUpdated{DefaultCOS: ptr("default")}}, events)
	})
	t.Run("unknown events are ignored", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, g, g.Evolve(COSDeleted{Name: "x"}))
	})
}

func TestUpdateGlobalConfigValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		cmd    UpdateGlobalConfig
		fields []string
	}{
		{"empty time zone", UpdateGlobalConfig{TimeZone: ptr("")}, []string{"time_zone"}},
		{"unknown time zone", UpdateGlobalConfig{TimeZone: ptr("Mars/Base")}, []string{"time_zone"}},
		{"protocol", UpdateGlobalConfig{PublicProtocol: ptr("ftp")}, []string{"public_protocol"}},
		{"protocol case", UpdateGlobalConfig{PublicProtocol: ptr("HTTPS")}, []string{"public_protocol"}},
		{"relay host", UpdateGlobalConfig{SpamRelayHost: ptr("relay:99999")}, []string{"spam_relay_host"}},
		{"cos name", UpdateGlobalConfig{DefaultCOS: ptr("no spaces"), COSExists: true}, []string{"default_cos"}},
		{"unknown cos", UpdateGlobalConfig{DefaultCOS: ptr("gold")}, []string{"default_cos"}},
		{"account quota", UpdateGlobalConfig{AccountQuotaBytes: ptr(int64(-1))}, []string{"account_quota_bytes"}},
		{"domain quota", UpdateGlobalConfig{DomainQuotaBytes: ptr(int64(-1))}, []string{"domain_quota_bytes"}},
		{"warn below 0", UpdateGlobalConfig{WarnPercent: ptr(-1)}, []string{"warn_percent"}},
		{"warn above 100", UpdateGlobalConfig{WarnPercent: ptr(101)}, []string{"warn_percent"}},
		{"gal polling", UpdateGlobalConfig{GALPollingIntervalSeconds: ptr(59)}, []string{"gal_polling_interval_seconds"}},
		{"session lifetime", UpdateGlobalConfig{SessionLifetimeSeconds: ptr(0)}, []string{"session_lifetime_seconds"}},
		{"password length", UpdateGlobalConfig{PasswordMinLength: ptr(257)}, []string{"password_min_length"}},
		{"unknown clear", UpdateGlobalConfig{Clear: []string{"colour"}}, []string{"clear"}},
		{"set and clear", UpdateGlobalConfig{WarnPercent: ptr(50), Clear: []string{"warn_percent"}}, []string{"warn_percent"}},
		{"all at once", UpdateGlobalConfig{TimeZone: ptr("x"), PublicProtocol: ptr("x"), WarnPercent: ptr(200), PasswordMinLength: ptr(-1)},
			[]string{"time_zone", "public_protocol", "warn_percent", "password_min_length"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, err := GlobalConfig{}.Decide(tc.cmd)
			require.Nil(t, events)
			requireFields(t, err, tc.fields...)
		})
	}
	for _, v := range []int{0, 60, 86400} {
		_, err := GlobalConfig{}.Decide(UpdateGlobalConfig{GALPollingIntervalSeconds: ptr(v)})
		require.NoError(t, err, v)
	}
	for _, v := range []int{0, 100} {
		_, err := GlobalConfig{}.Decide(UpdateGlobalConfig{WarnPercent: ptr(v)})
		require.NoError(t, err, v)
	}
}
