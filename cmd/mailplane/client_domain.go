package main

import (
	"context"
	"net/http"
	"net/url"
)

var domainCommand = group("domain", []action{
	{"create", "NAME [--description D] [--time-zone TZ] [--public-protocol http|https] [--spam-relay-host H] " +
		"[--default-cos C] [--status S] [--max-accounts N] [--account-quota BYTES] [--domain-quota BYTES] [--warn-percent P]", domainCreate},
	{"list", "[--q Q] [--status S] [--limit N] [--cursor C] [--all] [--json]", domainList},
	{"show", "NAME [--as-of TIME] [--json]", domainShow},
	{"history", "NAME [--type T,...] [--after TIME] [--before TIME] [--limit N] [--cursor C] [--all] [--json]", domainHistory},
})

func domainCreate(ctx context.Context, o *cmdline, args []string) error {
	o.field("description", "description", text, "what the domain is for")
	o.field("time-zone", "time_zone", text, "IANA time zone (default: the global one)")
	o.field("public-protocol", "public_protocol", text, "http or https (default: the global one)")
	o.field("spam-relay-host", "spam_relay_host", text, "spam relay host (default: the global one)")
	o.field("default-cos", "default_cos", text, "COS of accounts without their own (default: the global one)")
	o.field("status", "status", text, "active, maintenance, locked, closed or suspended")
	o.field("max-accounts", "limits.max_accounts", integer, "most accounts the domain may hold (0: no limit)")
	o.field("account-quota", "limits.account_quota_bytes", integer, "mailbox limit of new accounts in bytes (0: no limit)")
	o.field("domain-quota", "limits.domain_quota_bytes", integer, "limit of the whole domain in bytes (0: no limit)")
	o.field("warn-percent", "limits.warn_percent", integer, "usage percent that sends a warning")
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	o.body["name"] = pos[0]
	return o.send(ctx, http.MethodPost, "/domains", o.body)
}

func domainList(ctx context.Context, o *cmdline, args []string) error {
	l := o.listFlags(true)
	if _, err := o.parse(args, 0, 0); err != nil {
		return err
	}
	return o.list(ctx, "/domains", l, []column{
		{"NAME", "name"}, {"STATUS", "status"}, {"ACCOUNTS", "counts.accounts"},
		{"DEFAULT COS", "effective.default_cos"}, {"DESCRIPTION", "description"},
	})
}

func domainShow(ctx context.Context, o *cmdline, args []string) error {
	asOf := o.fs.String("as-of", "", "show the domain as it stood at this RFC 3339 time")
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	path := "/domains/" + seg(pos[0])
	if *asOf != "" {
		path += "?as_of=" + url.QueryEscape(*asOf)
	}
	return o.show(ctx, path)
}

// domainHistory prints the events of the domain and its objects, oldest first.
func domainHistory(ctx context.Context, o *cmdline, args []string) error {
	l := &listOptions{extra: url.Values{}}
	typ := o.fs.String("type", "", "only these event types (comma-separated)")
	after := o.fs.String("after", "", "only events recorded after this RFC 3339 time")
	before := o.fs.String("before", "", "only events recorded before this RFC 3339 time")
	o.fs.IntVar(&l.limit, "limit", 0, "events per page (the API's default is 50, at most 500)")
	o.fs.StringVar(&l.cursor, "cursor", "", "start at this cursor (printed when there are more events)")
	o.fs.BoolVar(&l.all, "all", false, "follow next_cursor and list every page")
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	l.extra.Set("type", *typ)
	l.extra.Set("after", *after)
	l.extra.Set("before", *before)
	return o.list(ctx, "/domains/"+seg(pos[0])+"/history", l, []column{
		{"POSITION", "position"}, {"RECORDED", "recorded_at"}, {"STREAM", "stream"}, {"VERSION", "version"},
		{"TYPE", "type"}, {"ACTOR", "actor"},
	})
}
