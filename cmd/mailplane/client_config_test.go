package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigCommands(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "config", "show").ok(t)
	require.Equal(t, "UTC", r.row(t, "time_zone")[1])
	require.Equal(t, "90", r.row(t, "warn_percent")[1])

	r = c.run(t, "config", "set", "time_zone=Europe/Rome", "warn_percent=85", "password_min_length=10").ok(t)
	require.Equal(t, "Europe/Rome", r.row(t, "time_zone")[1])
	got := c.get(t, "/api/v1/config")
	require.Equal(t, "Europe/Rome", got["time_zone"])
	require.Equal(t, float64(85), got["warn_percent"])
	require.Equal(t, float64(10), got["password_min_length"])
	require.Equal(t, float64(85), c.run(t, "config", "show", "--json").ok(t).json(t)["warn_percent"])

	// Domains inherit it.
	v, src := c.run(t, "domain", "show", "mailplane.test").ok(t).effective(t, "time_zone")
	require.Equal(t, []string{"Europe/Rome", "global"}, []string{v, src})

	// key= goes back to the built-in default.
	c.run(t, "config", "set", "time_zone=").ok(t)
	require.Equal(t, "UTC", c.get(t, "/api/v1/config")["time_zone"])

	r = c.run(t, "config", "set", "public_protocol=gopher").fails(t, 1)
	require.Contains(t, r.stderr, "mailplane config set: 400 Bad Request")
	require.Contains(t, r.stderr, "  - public_protocol: ")
}
