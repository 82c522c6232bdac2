package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"mailplane/eventstore"
)

// Unavailable tells the database's absence from a statement's own failure: only the first may
// be answered 503 and retried.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	// A real connection error, from dialling a port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, dialErr := pgx.Connect(context.Background(), "postgres://postgres@"+addr+"/x?sslmode=disable&connect_timeout=5")
	require.Error(t, dialErr)

	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", dialErr, true},
		{"wrapped", fmt.Errorf("commands: create: %w", dialErr), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"serialization failure", fmt.Errorf("x: %w", &pgconn.PgError{Code: "40001"}), false},
		{"no rows", pgx.ErrNoRows, false},
		{"concurrency", eventstore.ErrConcurrency, false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{"canceled", context.Canceled, false},
		{"plain", errors.New("boom"), false},
		{"nil", nil, false},
	} {
		require.Equal(t, tc.want, eventstore.Unavailable(tc.err), "%s: %v", tc.name, tc.err)
	}
}
