package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestServiceTokenAndQuotaCommands(t *testing.T) {
	c := newCLI(t)
	c.run(t, "domain", "create", "q.example", "--account-quota", "1000").ok(t)
	c.run(t, "account", "create", "big@q.example").ok(t)
	c.run(t, "account", "create", "small@q.example").ok(t)

	tok := c.run(t, "service-token", "create", "dovecot-1", "--json").ok(t).json(t)
	token := tok["token"].(string)
	require.True(t, strings.HasPrefix(token, "mps_"))
	r := c.api.Do(t, http.MethodPost, "/api/v1/usage", token, map[string]any{"reports": []map[string]any{
		{"address": "big@q.example", "used_bytes": 950}, {"address": "small@q.example", "used_bytes": 10}}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	out := c.run(t, "domain", "quota", "q.example").ok(t)
	rows := out.rows()
	require.Equal(t, "ADDRESS", rows[0][0])
	require.Equal(t, []string{"big@q.example", "950", "1000", "95"}, rows[1][:4])
	require.Equal(t, "small@q.example", rows[2][0])

	c.run(t, "service-token", "revoke", tok["id"].(string)).ok(t)
	require.Equal(t, http.StatusUnauthorized, c.api.Do(t, http.MethodPost, "/api/v1/usage", token,
		map[string]any{"reports": []map[string]any{{"address": "big@q.example", "used_bytes": 1}}}).Status)
	c.run(t, "service-token", "create", "x", "--role", "root").fails(t, 1)
}
