package main

import (
	"context"
	"net/http"
)

var serviceTokenCommand = group("service-token", []action{
	{"create", "NAME [--role mailstore] [--json]  (prints the token, shown this once)", serviceTokenCreate},
	{"revoke", "ID", serviceTokenRevoke},
})

func serviceTokenCreate(ctx context.Context, o *cmdline, args []string) error {
	role := o.fs.String("role", "mailstore", "what the token may do: mailstore (report mailbox usage)")
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return o.send(ctx, http.MethodPost, "/service-tokens", map[string]any{"name": pos[0], "role": *role})
}

func serviceTokenRevoke(ctx context.Context, o *cmdline, args []string) error {
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return o.act(ctx, http.MethodDelete, "/service-tokens/"+seg(pos[0]), nil, "revoked service token "+pos[0])
}

// domainQuota lists a domain's accounts by the share of their quota they use, highest first.
func domainQuota(ctx context.Context, o *cmdline, args []string) error {
	l := &listOptions{}
	o.fs.IntVar(&l.limit, "limit", 0, "accounts per page (the API's default is 50, at most 500)")
	o.fs.StringVar(&l.cursor, "cursor", "", "start at this cursor (printed when there are more accounts)")
	o.fs.BoolVar(&l.all, "all", false, "follow next_cursor and list every page")
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return o.list(ctx, "/domains/"+seg(pos[0])+"/quota", l, []column{
		{"ADDRESS", "address"}, {"USED", "used_bytes"}, {"LIMIT", "limit_bytes"}, {"PERCENT", "percent"},
		{"WARN %", "warn_percent"}, {"REPORTED", "reported_at"},
	})
}
