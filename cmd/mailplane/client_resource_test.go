package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResourceCommands(t *testing.T) {
	c := newCLI(t)
	dom := c.api.CreateDomain(t, nil)
	addr := "room1@" + dom

	r := c.run(t, "resource", "create", addr, "--type", "location", "--display-name", "Room 1", "--capacity", "8",
		"--location", "1st floor", "--notify", "fm@x.example", "--max-conflicts", "1").ok(t)
	require.Equal(t, addr, r.row(t, "address")[1])
	require.Equal(t, "auto_accept_unless_busy", r.row(t, "booking_policy")[1])
	x := c.get(t, "/api/v1/resources/"+addr)
	require.Equal(t, float64(8), x["capacity"])
	require.Equal(t, []any{"fm@x.example"}, x["notify_addresses"])

	r = c.run(t, "resource", "show", addr).ok(t)
	require.Equal(t, "1st floor", r.row(t, "location")[1])
	require.Equal(t, addr, c.run(t, "resource", "show", addr, "--json").ok(t).json(t)["address"])

	r = c.run(t, "resource", "set", addr, "booking_policy=manual", "capacity=10", "notify_addresses=a@x.example,b@x.example").ok(t)
	require.Equal(t, "manual", r.row(t, "booking_policy")[1])
	x = c.get(t, "/api/v1/resources/"+addr)
	require.Equal(t, float64(10), x["capacity"])
	require.Equal(t, []any{"a@x.example", "b@x.example"}, x["notify_addresses"])
	c.run(t, "resource", "set", addr, "notify_addresses=", "location=").ok(t)
	x = c.get(t, "/api/v1/resources/"+addr)
	require.Equal(t, []any{}, x["notify_addresses"])
	require.Equal(t, "", x["location"])
	r = c.run(t, "resource", "set", addr, "type=car").fails(t, 1)
	require.Contains(t, r.stderr, "400 Bad Request")

	c.run(t, "resource", "create", "beamer@"+dom, "--type", "equipment").ok(t)
	r = c.run(t, "resource", "list", dom).ok(t)
	require.Equal(t, []string{"ADDRESS", "DISPLAY NAME", "TYPE", "CAPACITY", "LOCATION", "BOOKING"}, r.rows()[0])
	require.Len(t, r.rows(), 3)
	require.Equal(t, []string{addr, "Room 1", "location", "10", "-", "manual"}, r.row(t, addr))

	r = c.run(t, "resource", "create", "car@"+dom).fails(t, 1)
	require.Contains(t, r.stderr, "type")
	r = c.run(t, "resource", "delete", addr).ok(t)
	require.Equal(t, "deleted resource "+addr+"\n", r.stdout)
	c.run(t, "resource", "show", addr).fails(t, 1)
}
