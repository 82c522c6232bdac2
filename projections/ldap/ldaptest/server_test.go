package ldaptest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"mailplane/projections/ldap/ldaptest"
)

// A private slapd starts with the stack's entries, stops and starts again with its data, and
// serves the readers' access rules.
func TestStartSlapd(t *testing.T) {
	t.Parallel()
	s := ldaptest.StartSlapd(t)
	d := s.Directory(t)
	before := d.Dump(t, d.Admin(t), d.Base)
	require.Len(t, before, 1+6+3)
	s.Stop(t)
	require.False(t, s.Running())
	_, err := ldaptest.Dial(s.URL, s.Env.Admin)
	require.Error(t, err, "a stopped server refuses connections")
	s.Start(t)
	require.Equal(t, before, d.Dump(t, d.Admin(t), d.Base))
	// The readers bind and read the mail data, not the services.
	require.Empty(t, d.Dump(t, d.Reader(t, s.Env.Postfix), d.Container("services")))
	require.NotEmpty(t, d.Dump(t, d.Reader(t, s.Env.Postfix), d.Container(ldaptest.Accounts)))
}
