package domain

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidationErrorIsFoundThroughWrapping(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("create: %w", ValidationError{Errors: []FieldError{{"name", "bad"}, {"status", "worse"}}})
	var ve ValidationError
	require.True(t, errors.As(err, &ve))
	require.Len(t, ve.Errors, 2)
	require.Contains(t, err.Error(), "name: bad; status: worse")

	requireFields(t, Invalid("alias", "nope"), "alias")
}

func TestInUseErrorIsAConflict(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("delete: %w", InUseError{Users: []string{"a@example.com"}})
	require.ErrorIs(t, err, ErrConflict)
	var iu InUseError
	require.True(t, errors.As(err, &iu))
	require.Equal(t, []string{"a@example.com"}, iu.Users)
}

func TestSentinelsAreDistinct(t *testing.T) {
	t.Parallel()
	all := []error{ErrNotFound, ErrAlreadyExists, ErrConflict, ErrLimitReached, ErrDomainUnavailable, ErrLoginRefused}
	for i, a := range all {
		for j, b := range all {
			require.Equal(t, i == j, errors.Is(a, b), "%v vs %v", a, b)
		}
	}
}

func TestStreamIDs(t *testing.T) {
	t.Parallel()
	require.Equal(t, "cos-gold", COSStreamID("gold"))
	ascii, _, err := NormalizeDomainName("Bücher.Example")
	require.NoError(t, err)
	require.Equal(t, "domain-xn--bcher-kva.example", DomainStreamID(ascii))
	require.Equal(t, "account-ann@example.com", AccountStreamID(mustAddr(t, "Ann@Example.com")))
	require.Equal(t, "config-global", GlobalConfigStreamID)
}
