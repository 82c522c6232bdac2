package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTokenCommands(t *testing.T) {
	c := newCLI(t)
	c.run(t, "domain", "create", "tok.example").ok(t)
	c.run(t, "domain", "create", "other-tok.example").ok(t)

	tok := c.run(t, "token", "create", "backup", "--expires", "30d", "--domain", "tok.example",
		"--access", "accounts=write", "--json").ok(t).json(t)
	token := tok["token"].(string)
	require.True(t, strings.HasPrefix(token, "mpa_"))
	require.Equal(t, []any{"tok.example"}, tok["domains"])
	require.Equal(t, map[string]any{"accounts": "write"}, tok["access"])

	r := c.api.Do(t, http.MethodPost, "/api/v1/domains/tok.example/accounts", token, map[string]any{"local_part": "by-script"})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Equal(t, http.StatusForbidden, c.api.Do(t, http.MethodGet, "/api/v1/domains/other-tok.example/accounts", token, nil).Status)

	rows := c.run(t, "token", "list").ok(t).rows()
	require.Equal(t, "ID", rows[0][0])
	require.Len(t, rows, 2)
	require.Equal(t, []string{tok["id"].(string), "backup", "tok.example", "false"}, rows[1][:4])

	c.run(t, "token", "revoke", tok["id"].(string)).ok(t)
	require.Equal(t, http.StatusUnauthorized, c.api.Do(t, http.MethodGet, "/api/v1/domains/tok.example/accounts", token, nil).Status)
	require.Len(t, c.run(t, "token", "list").ok(t).rows(), 1)

	c.run(t, "token", "create", "x").fails(t, 2)
	c.run(t, "token", "create", "x", "--expires", "30d", "--access", "accounts=admin").fails(t, 2)
	c.run(t, "token", "create", "x", "--expires", "400d").fails(t, 1)
}
