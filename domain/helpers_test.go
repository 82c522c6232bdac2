package domain

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func ptr[T any](v T) *T { return &v }

// t0 is a fixed instant: the package reads no clock, so tests need none.
var t0 = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

// requireFields asserts err is a ValidationError naming exactly these fields
// (in any order, duplicates collapsed).
func requireFields(t *testing.T, err error, fields ...string) {
	t.Helper()
	var ve ValidationError
	require.True(t, errors.As(err, &ve), "want ValidationError, got %v", err)
	got := map[string]bool{}
	for _, fe := range ve.Errors {
		require.NotEmpty(t, fe.Message, "field %s has no message", fe.Field)
		got[fe.Field] = true
	}
	want := map[string]bool{}
	for _, f := range fields {
		want[f] = true
	}
	require.Equal(t, want, got, "fields in %v", err)
}

func mustAddr(t *testing.T, s string) Address {
	t.Helper()
	a, err := ParseAddress(s)
	require.NoError(t, err)
	return a
}
