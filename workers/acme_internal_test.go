package workers

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-acme/lego/v4/acme"
	"github.com/stretchr/testify/require"
)

// The CA's verdicts end a request; failures to reach it, its server errors and nonce trouble
// are retried. The texts are lego v4.28.1's (../shared/notes/acme-pebble.md).
func TestRefusedTellsVerdictsFromTrouble(t *testing.T) {
	t.Parallel()
	lines := "error: one or more domains had a problem:\n[mail.example.test] invalid authorization: acme: error: 403 :: urn:ietf:params:acme:error:unauthorized :: Non-200 status code from HTTP: http://mail.example.test:5002/.well-known/acme-challenge/x returned 404\n"
	for _, tc := range []struct {
		err     error
		refused bool
	}{
		{errors.New(lines), true},
		{errors.New("error: one or more domains had a problem:\n[a.test] invalid authorization: acme: error: 400 :: urn:ietf:params:acme:error:connection :: dial tcp 127.0.0.2:5002: connect: connection refused\n"), true},
		{fmt.Errorf("wrapped: %w", &acme.ProblemDetails{HTTPStatus: 400, Type: "urn:ietf:params:acme:error:rejectedIdentifier"}), true},
		{&acme.ProblemDetails{HTTPStatus: 429, Type: "urn:ietf:params:acme:error:rateLimited"}, true},
		{&acme.ProblemDetails{HTTPStatus: 400, Type: acme.BadNonceErr}, false},
		{&acme.ProblemDetails{HTTPStatus: 500, Type: "urn:ietf:params:acme:error:serverInternal"}, false},
		{errors.New(`acme: directory https://127.0.0.1:1/dir: get directory at 'https://127.0.0.1:1/dir': Get "https://127.0.0.1:1/dir": dial tcp 127.0.0.1:1: connect: connection refused`), false},
	} {
		require.Equal(t, tc.refused, refused(tc.err), "%v", tc.err)
	}
	require.Equal(t, []string{"[mail.example.test] invalid authorization: acme: error: 403 :: urn:ietf:params:acme:error:unauthorized :: Non-200 status code from HTTP: http://mail.example.test:5002/.well-known/acme-challenge/x returned 404"},
		acmeErrors(errors.New(lines)))
}
