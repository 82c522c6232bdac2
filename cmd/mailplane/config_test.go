package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"mailplane/api"
)

// The timeouts of serve come from the environment: the API's defaults when unset, a clear
// error naming the variable when a value is not a positive duration, and a read-your-writes
// wait that must fit inside the request it is part of.
func TestConfigTimeouts(t *testing.T) {
	t.Setenv("MAILPLANE_READ_YOUR_WRITES_TIMEOUT", "")
	t.Setenv("MAILPLANE_REQUEST_TIMEOUT", "")
	cfg, err := configFromEnv()
	require.NoError(t, err)
	require.Equal(t, api.DefaultReadYourWritesTimeout, cfg.ReadYourWrites)
	require.Equal(t, api.DefaultRequestTimeout, cfg.RequestTimeout)

	t.Setenv("MAILPLANE_READ_YOUR_WRITES_TIMEOUT", "45s")
	t.Setenv("MAILPLANE_REQUEST_TIMEOUT", "2m")
	cfg, err = configFromEnv()
	require.NoError(t, err)
	require.Equal(t, 45*time.Second, cfg.ReadYourWrites)
	require.Equal(t, 2*time.Minute, cfg.RequestTimeout)

	for _, c := range []struct{ ryw, request, want string }{
		{"5", "", `MAILPLANE_READ_YOUR_WRITES_TIMEOUT must be a positive duration like 5s, not "5"`},
		{"-1s", "", "MAILPLANE_READ_YOUR_WRITES_TIMEOUT must be a positive duration"},
		{"", "soon", `MAILPLANE_REQUEST_TIMEOUT must be a positive duration like 30s, not "soon"`},
		{"45s", "", "must be shorter than MAILPLANE_REQUEST_TIMEOUT (30s)"},
		{"30s", "30s", "must be shorter than MAILPLANE_REQUEST_TIMEOUT"},
	} {
		t.Setenv("MAILPLANE_READ_YOUR_WRITES_TIMEOUT", c.ryw)
		t.Setenv("MAILPLANE_REQUEST_TIMEOUT", c.request)
		_, err := configFromEnv()
		require.ErrorContains(t, err, c.want, "%+v", c)
	}
}
