package eventstore

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err says PostgreSQL could not be reached or went away — the
// server stopped, restarting or not accepting connections, the connection refused, reset or
// ended under a query — rather than that a statement failed. Such a failure is the database's
// outage, not the request's fault: the API answers it 503 with a Retry-After, and it passes
// once the server is back (the pool reconnects by itself).
func Unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false // the request's own time ran out, or its client left
	}
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case len(pg.Code) == 5 && pg.Code[:2] == "08": // connection exception
			return true
		case pg.Code == "57P01", pg.Code == "57P02", pg.Code == "57P03": // admin shutdown, crash shutdown, cannot connect now
			return true
		case pg.Code == "53300": // too many connections
			return true
		}
		return false // a statement's own error
	}
	// pgconn's connection-level errors ("conn closed", "failed to receive message", "failed to
	// write") carry SafeToRetry; a PgError never does.
	var conn interface{ SafeToRetry() bool }
	if errors.As(err, &conn) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)
}
