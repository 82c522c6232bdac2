package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

var tokenCommand = group("token", []action{
	{"create", "NAME --expires 90d|RFC3339 [--domain D]... [--access KIND=read|write]... [--json]  (prints the token, shown this once)", tokenCreate},
	{"list", "[--account ADDRESS] [--json]", tokenList},
	{"revoke", "ID", tokenRevoke},
})

// accessFlag is --access KIND=read|write, repeatable; KIND "*" is every kind not named.
type accessFlag map[string]any

func (f accessFlag) String() string { return "" }

func (f accessFlag) Set(s string) error {
	kind, level, ok := strings.Cut(s, "=")
	if !ok || kind == "" || (level != "read" && level != "write") {
		return fmt.Errorf("want KIND=read|write (KIND \"*\" for all), not %q", s)
	}
	f[kind] = level
	return nil
}

// parseExpiry takes a lifetime in days (90d), a Go duration (12h) or an RFC 3339 time.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return now.Add(time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--expires: want a number of days (90d), a duration (12h) or an RFC 3339 time, not %q", s)
	}
	return t, nil
}

func tokenCreate(ctx context.Context, o *cmdline, args []string) error {
	expires := o.fs.String("expires", "", "when the token stops working: 90d, 12h or an RFC 3339 time (at most 366 days away; required)")
	domains := o.repeated("domain", "a domain the token may touch (repeat, or commas; none: all for a global admin, else your own)")
	access := accessFlag{}
	o.fs.Var(access, "access", `what the token may do per object kind, e.g. accounts=write or "*=read" (repeat; default "*=read")`)
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *expires == "" {
		return o.usageError("--expires is required")
	}
	at, err := parseExpiry(*expires, time.Now())
	if err != nil {
		return o.usageError("%s", err.Error())
	}
	if len(access) == 0 {
		access["*"] = "read"
	}
	return o.send(ctx, http.MethodPost, "/api-tokens", map[string]any{"name": pos[0], "expires_at": at.UTC().Format(time.RFC3339),
		"domains": *domains, "access": map[string]any(access)})
}

func tokenList(ctx context.Context, o *cmdline, args []string) error {
	account := o.fs.String("account", "", "another account's tokens (administrators of its domain)")
	if _, err := o.parse(args, 0, 0); err != nil {
		return err
	}
	return o.list(ctx, "/api-tokens", &listOptions{extra: url.Values{"account": {*account}}}, []column{
		{"ID", "id"}, {"NAME", "name"}, {"DOMAINS", "domains"}, {"ALL DOMAINS", "all_domains"},
		{"EXPIRES", "expires_at"}, {"LAST USED", "last_used_at"},
	})
}

func tokenRevoke(ctx context.Context, o *cmdline, args []string) error {
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return o.act(ctx, http.MethodDelete, "/api-tokens/"+seg(pos[0]), nil, "revoked API token "+pos[0])
}
