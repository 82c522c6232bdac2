package domain

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func createdCOS(t *testing.T, cmd CreateCOS) COS {
	t.Helper()
	events, err := COS{}.Decide(cmd)
	require.NoError(t, err)
	require.Len(t, events, 1)
	return COS{}.Evolve(events[0])
}

func TestCreateCOS(t *testing.T) {
	t.Parallel()
	features := map[string]bool{"imap": true, "pop3": false}
	c := createdCOS(t, CreateCOS{
		Name: "Gold", Description: "paying users", MailQuotaBytes: ptr(int64(10 << 30)),
		QuotaWarnPercent: ptr(95), Features: features, SessionLifetimeSeconds: ptr(0),
	})
	require.Equal(t, COS{
		Name: "gold", Description: "paying users", MailQuotaBytes: ptr(int64(10 << 30)),
		QuotaWarnPercent: ptr(95), Features: map[string]bool{"imap": true, "pop3": false},
		SessionLifetimeSeconds: ptr(0),
	}, c)
	require.True(t, c.Exists())

	features["imap"] = false
	require.True(t, c.Features["imap"], "the state must not share the command's map")

	_, err := c.Decide(CreateCOS{Name: "gold"})
	require.ErrorIs(t, err, ErrAlreadyExists)
}

func TestCreateCOSValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		cmd    CreateCOS
		fields []string
	}{
		{"empty name", CreateCOS{}, []string{"name"}},
		{"bad name", CreateCOS{Name: "gold plus"}, []string{"name"}},
		{"quota", CreateCOS{Name: "c", MailQuotaBytes: ptr(int64(-1))}, []string{"mail_quota_bytes"}},
		{"warn", CreateCOS{Name: "c", QuotaWarnPercent: ptr(101)}, []string{"quota_warn_percent"}},
		{"password length", CreateCOS{Name: "c", PasswordMinLength: ptr(300)}, []string{"password_min_length"}},
		{"session", CreateCOS{Name: "c", SessionLifetimeSeconds: ptr(-5)}, []string{"session_lifetime_seconds"}},
		{"feature key", CreateCOS{Name: "c", Features: map[string]bool{"IMAP": true, "ok_1": true, "": true}}, []string{"features.IMAP", "features."}},
		{"description", CreateCOS{Name: "c", Description: "\x00"}, []string{"description"}},
		{"every field at once", CreateCOS{Name: "", MailQuotaBytes: ptr(int64(-1)), QuotaWarnPercent: ptr(-1), PasswordMinLength: ptr(-1), SessionLifetimeSeconds: ptr(-1)},
			[]string{"name", "mail_quota_bytes", "quota_warn_percent", "password_min_length", "session_lifetime_seconds"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, err := COS{}.Decide(tc.cmd)
			require.Nil(t, events)
			requireFields(t, err, tc.fields...)
		})
	}
}

func TestUpdateCOS(t *testing.T) {
	t.Parallel()
	c := createdCOS(t, CreateCOS{Name: "gold", MailQuotaBytes: ptr(int64(100)), QuotaWarnPercent: ptr(80), Features: map[string]bool{"imap": true}})

	t.Run("only changes are recorded", func(t *testing.T) {
		t.Parallel()
		events, err := c.Decide(UpdateCOS{
			Description:       ptr("new"),
			MailQuotaBytes:    ptr(int64(100)), // unchanged
			QuotaWarnPercent:  ptr(85),
			Features:          map[string]bool{"imap": true}, // unchanged
			PasswordMinLength: ptr(10),
		})
		require.NoError(t, err)
		require.Equal(t, []Event{COSUpdated{Name: "gold", Description: ptr("new"), QuotaWarnPercent: ptr(85), PasswordMinLength: ptr(10)}}, events)
		next := c.Evolve(events[0])
		require.Equal(t, "new", next.Description)
		require.Equal(t, 85, *next.QuotaWarnPercent)
		require.Equal(t, int64(100), *next.MailQuotaBytes)
		require.Equal(t, 80, *c.QuotaWarnPercent, "Evolve must not change the old state")
	})
	t.Run("nothing to change", func(t *testing.T) {
		t.Parallel()
		events, err := c.Decide(UpdateCOS{MailQuotaBytes: ptr(int64(100)), Clear: []string{"password_min_length"}})
		require.NoError(t, err)
		require.Empty(t, events)
	})
	t.Run("clear back to inherit", func(t *testing.T) {
		t.Parallel()
		events, err := c.Decide(UpdateCOS{Clear: []string{"mail_quota_bytes", "quota_warn_percent"}})
		require.NoError(t, err)
		require.Equal(t, []Event{COSUpdated{Name: "gold", Cleared: []string{"mail_quota_bytes", "quota_warn_percent"}}}, events)
		next := c.Evolve(events[0])
		require.Nil(t, next.MailQuotaBytes)
		require.Nil(t, next.QuotaWarnPercent)
		require.NotNil(t, c.MailQuotaBytes)
	})
	t.Run("features replaced, emptied", func(t *testing.T) {
		t.Parallel()
		events, err := c.Decide(UpdateCOS{Features: map[string]bool{}})
		require.NoError(t, err)
		require.Equal(t, []Event{COSUpdated{Name: "gold", Features: map[string]bool{}}}, events)
		require.Empty(t, c.Evolve(events[0]).Features)
		require.True(t, c.Features["imap"])
	})
	t.Run("validation lists every field", func(t *testing.T) {
		t.Parallel()
		_, err := c.Decide(UpdateCOS{
			MailQuotaBytes: ptr(int64(-1)), QuotaWarnPercent: ptr(50), Features: map[string]bool{"bad-key": true},
			Clear: []string{"quota_warn_percent", "description"},
		})
		requireFields(t, err, "mail_quota_bytes", "quota_warn_percent", "features.bad-key", "clear")
	})
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		_, err := COS{}.Decide(UpdateCOS{Description: ptr("x")})
		require.ErrorIs(t, err, ErrNotFound)
	})
}

func TestDeleteCOS(t *testing.T) {
	t.Parallel()
	c := createdCOS(t, CreateCOS{Name: "gold", Description: "old"})

	_, err := c.Decide(DeleteCOS{InUseBy: []string{"b@example.com", "a@example.com", "b@example.com"}})
	require.ErrorIs(t, err, ErrConflict)
	var iu InUseError
	require.True(t, errors.As(err, &iu))
	require.Equal(t, []string{"a@example.com", "b@example.com"}, iu.Users)

	events, err := c.Decide(DeleteCOS{})
	require.NoError(t, err)
	require.Equal(t, []Event{COSDeleted{Name: "gold"}}, events)
	gone := c.Evolve(events[0])
	require.False(t, gone.Exists())

	_, err = gone.Decide(DeleteCOS{})
	require.ErrorIs(t, err, ErrNotFound)

	// The name is free again, and nothing of the old COS survives.
	events, err = gone.Decide(CreateCOS{Name: "gold"})
	require.NoError(t, err)
	again := gone.Evolve(events[0])
	require.Equal(t, COS{Name: "gold"}, again)
}

func TestUpdateCOSEveryField(t *testing.T) {
	t.Parallel()
	c := createdCOS(t, CreateCOS{Name: "gold"})
	events, err := c.Decide(UpdateCOS{Description: ptr("d"), MailQuotaBytes: ptr(int64(1)), QuotaWarnPercent: ptr(2),
		Features: map[string]bool{"pop3": true}, PasswordMinLength: ptr(3), SessionLifetimeSeconds: ptr(4)})
	require.NoError(t, err)
	next := c.Evolve(events[0])
	require.Equal(t, COS{Name: "gold", Description: "d", MailQuotaBytes: ptr(int64(1)), QuotaWarnPercent: ptr(2),
		Features: map[string]bool{"pop3": true}, PasswordMinLength: ptr(3), SessionLifetimeSeconds: ptr(4)}, next)

	events, err = next.Decide(UpdateCOS{Clear: cosClearable})
	require.NoError(t, err)
	require.Equal(t, COS{Name: "gold", Description: "d", Features: map[string]bool{"pop3": true}}, next.Evolve(events[0]))
	require.Equal(t, next, next.Evolve(GlobalConfigUpdated{}), "unknown events are ignored")
}
