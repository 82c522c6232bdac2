package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/api/apitest"
)

// Sizes and counts beyond 2^53 - 1 cannot be hashed faithfully (events are RFC 8785 canonical
// JSON, whose numbers are doubles) nor read back exactly by most JSON clients: 400, nothing
// recorded.
func TestNumbersBeyondADoublesIntegersAreRefused(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	dom := e.CreateDomain(t, nil)
	const tooBig = int64(1) << 53
	cases := []struct {
		method, path string
		body         map[string]any
		field        string
	}{
		{http.MethodPost, "/api/v1/cos", map[string]any{"name": apitest.Unique("c"), "mail_quota_bytes": tooBig}, "mail_quota_bytes"},
		{http.MethodPost, "/api/v1/domains", map[string]any{"name": apitest.Unique("d") + ".example",
			"limits": map[string]any{"domain_quota_bytes": tooBig}}, "limits.domain_quota_bytes"},
		{http.MethodPost, accountsPath(dom), map[string]any{"local_part": "big", "mail_quota_bytes": tooBig}, "mail_quota_bytes"},
		{http.MethodPatch, "/api/v1/config", map[string]any{"account_quota_bytes": tooBig}, "account_quota_bytes"},
	}
	for _, c := range cases {
		r := e.Do(t, c.method, c.path, e.AdminToken, c.body)
		require.Contains(t, r.FieldErrors(t), c.field, "%s %s", c.method, c.path)
	}
	// The largest exact one is fine.
	r := e.Do(t, http.MethodPost, "/api/v1/cos", e.AdminToken, map[string]any{"name": apitest.Unique("c"), "mail_quota_bytes": tooBig - 1})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
}
