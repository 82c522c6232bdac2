package domain

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func fold(d DKIMKeys, evs []Event) DKIMKeys {
	for _, e := range evs {
		d = d.Evolve(e)
	}
	return d
}

var genKey = GeneratedDKIMKey{PublicKey: "pub", PrivateKeySecret: "enc:priv"}

func TestDKIMSelector(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"s1": "s1", "Mail-2026": "mail-2026", "a.b": "a.b", " x ": "x"} {
		got, err := NormalizeDKIMSelector(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	for _, bad := range []string{"", "-a", "a-", "a..b", "a_b", "_domainkey", "sél", "a b", string(make([]byte, 64))} {
		_, err := NormalizeDKIMSelector(bad)
		var ve ValidationError
		require.True(t, errors.As(err, &ve), "%q", bad)
		require.Equal(t, "selector", ve.Errors[0].Field)
	}
}

// A key is added, rotated (the old one published for the grace period, then retired) and
// removed; selectors never name two keys.
func TestDKIMLifecycle(t *testing.T) {
	t.Parallel()
	var d DKIMKeys
	evs, err := d.Decide(AddDKIMKey{Domain: "example.com", Selector: "S1", Algorithm: DKIMAlgorithmRSA, Key: genKey, At: t0})
	require.NoError(t, err)
	d = fold(d, evs)
	a, ok := d.Active()
	require.True(t, ok)
	require.Equal(t, "s1", a.Selector)
	require.Equal(t, "s1._domainkey.example.com", a.RecordName("example.com"))
	require.Equal(t, "v=DKIM1; k=rsa; p=pub", a.RecordValue())

	// A second add is a rotation's job.
	_, err = d.Decide(AddDKIMKey{Domain: "example.com", Selector: "s2", Algorithm: DKIMAlgorithmRSA, Key: genKey, At: t0})
	require.ErrorIs(t, err, ErrConflict)

	// Every bad field at once.
	_, err = d.Decide(RotateDKIMKey{Selector: "s1", Algorithm: "dsa", Key: genKey, Grace: time.Minute, At: t0})
	var ve ValidationError
	require.True(t, errors.As(err, &ve))
	require.Equal(t, []string{"selector", "algorithm", "grace_period_seconds"}, fields(ve))

	at := t0.Add(time.Hour)
	evs, err = d.Decide(RotateDKIMKey{Selector: "s2", Algorithm: DKIMAlgorithmEd25519, Key: genKey, At: at})
	require.NoError(t, err)
	require.Len(t, evs, 2)
	d = fold(d, evs)
	a, _ = d.Active()
	require.Equal(t, "s2", a.Selector)
	old, _ := d.Key("s1")
	require.Equal(t, DKIMRetiring, old.State)
	require.Equal(t, at.Add(DefaultDKIMGrace), *old.RetireAt)
	require.True(t, old.Published())

	// Retiring before the grace period is over does nothing; after it, once.
	evs, err = d.Decide(RetireDKIMKey{Selector: "s1", At: at.Add(DefaultDKIMGrace - time.Second)})
	require.NoError(t, err)
	require.Empty(t, evs)
	evs, err = d.Decide(RetireDKIMKey{Selector: "s1", At: at.Add(DefaultDKIMGrace)})
	require.NoError(t, err)
	require.Len(t, evs, 1)
	d = fold(d, evs)
	old, _ = d.Key("s1")
	require.Equal(t, DKIMRetired, old.State)
	require.False(t, old.Published())
	evs, err = d.Decide(RetireDKIMKey{Selector: "s1", At: at.Add(2 * DefaultDKIMGrace)})
	require.NoError(t, err)
	require.Empty(t, evs)

	// A retired selector is still taken; removed, it is free.
	_, err = d.Decide(RotateDKIMKey{Selector: "s1", Algorithm: DKIMAlgorithmRSA, Key: genKey, At: at})
	require.True(t, errors.As(err, &ve))
	evs, err = d.Decide(RemoveDKIMKey{Selector: "S1", At: at})
	require.NoError(t, err)
	d = fold(d, evs)
	_, ok = d.Key("s1")
	require.False(t, ok)
	_, err = d.Decide(RemoveDKIMKey{Selector: "s1", At: at})
	require.ErrorIs(t, err, ErrNotFound)

	// Removing the active key leaves nothing to rotate; a new one is added.
	d = fold(d, mustDecide(t, d, RemoveDKIMKey{Selector: "s2", At: at}))
	_, err = d.Decide(RotateDKIMKey{Selector: "s3", Algorithm: DKIMAlgorithmRSA, Key: genKey, At: at})
	require.ErrorIs(t, err, ErrNotFound)
	d = fold(d, mustDecide(t, d, AddDKIMKey{Domain: "example.com", Selector: "s1", Algorithm: DKIMAlgorithmRSA, Key: genKey, At: at}))
	a, _ = d.Active()
	require.Equal(t, "s1", a.Selector)
}

func mustDecide(t *testing.T, d DKIMKeys, c DKIMCommand) []Event {
	t.Helper()
	evs, err := d.Decide(c)
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	return evs
}

func fields(ve ValidationError) []string {
	var out []string
	for _, f := range ve.Errors {
		out = append(out, f.Field)
	}
	return out
}
