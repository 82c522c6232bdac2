package commands_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
)

// A create that a worker (or the CLI) issues is checked like an HTTP one: the command itself
// reports every bad field at once — the address, the settings the decision refuses, the
// credentials — and the HTTP API answers the same list.
func TestCreateAccountRequestReportsEveryBadField(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	bad := "x"
	hash := "$1$md5$crypt"
	in := commands.NewAccount{Domain: dom, LocalPart: "not an address",
		Account:     domain.CreateAccount{Status: "sleeping", COS: &bad},
		Credentials: commands.Credentials{PasswordHash: &hash}}
	_, _, err := e.Commands.CreateAccountRequest(context.Background(),
		commands.Request{Meta: eventstore.Metadata{Actor: "worker"}}, in)
	var ve domain.ValidationError
	require.True(t, errors.As(err, &ve), "%v", err)
	var fields []string
	for _, f := range ve.Errors {
		fields = append(fields, f.Field)
	}
	require.ElementsMatch(t, []string{"local_part", "status", "cos", "password_hash"}, fields)

	r := e.Do(t, http.MethodPost, "/api/v1/domains/"+dom+"/accounts", e.AdminToken,
		map[string]any{"local_part": "not an address", "status": "sleeping", "cos": "x", "password_hash": hash})
	require.ElementsMatch(t, fields, r.FieldErrors(t))

	_, _, err = e.Commands.CreateAccountRequest(context.Background(), commands.Request{Meta: eventstore.Metadata{Actor: "worker"}},
		commands.NewAccount{Domain: "nowhere.example", LocalPart: "a"})
	require.ErrorIs(t, err, domain.ErrNotFound, "a domain that does not exist is a 404 whatever else")
}
