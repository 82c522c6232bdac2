package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

var cosCommand = group("cos", []action{
	{"create", "NAME [--description D] [--quota BYTES] [--warn-percent P] [--password-min-length N] " +
		"[--session-lifetime SECONDS] [--feature NAME=true|false ...]", cosCreate},
	{"list", "[--q Q] [--limit N] [--cursor C] [--all] [--json]", cosList},
	{"show", "NAME [--json]", cosShow},
	{"set", "NAME key=value ...  (keys: " + strings.Join(sortedKeys(cosKeys), ", ") +
		", features.NAME; key= clears the setting)", cosSet},
	{"delete", "NAME", objectDelete("cos", "COS")},
})

// cosKeys are the settings cos set may change besides features.NAME.
var cosKeys = map[string]kind{
	"description": text, "mail_quota_bytes": integer, "quota_warn_percent": integer,
	"password_min_length": integer, "session_lifetime_seconds": integer,
}

// featureFlag is --feature NAME=true|false, repeatable.
type featureFlag map[string]any

func (f featureFlag) String() string { return "" }

func (f featureFlag) Set(s string) error {
	name, v, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=true|false, not %q", s)
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%s: %q is not true or false", name, v)
	}
	f[name] = b
	return nil
}

func cosCreate(ctx context.Context, o *cmdline, args []string) error {
	o.field("description", "description", text, "what the class is for")
	o.field("quota", "mail_quota_bytes", integer, "mailbox limit in bytes (0: no limit)")
	o.field("warn-percent", "quota_warn_percent", integer, "usage percent that sends a warning")
	o.field("password-min-length", "password_min_length", integer, "shortest password allowed")
	o.field("session-lifetime", "session_lifetime_seconds", integer, "session lifetime in seconds")
	features := featureFlag{}
	o.fs.Var(features, "feature", "a feature and whether it is on, e.g. imap=true (repeat for each)")
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	o.body["name"] = pos[0]
	if len(features) > 0 {
		o.body["features"] = map[string]any(features)
	}
	return o.send(ctx, http.MethodPost, "/cos", o.body)
}

func cosList(ctx context.Context, o *cmdline, args []string) error {
	l := o.listFlags(false)
	if _, err := o.parse(args, 0, 0); err != nil {
		return err
	}
	return o.list(ctx, "/cos", l, []column{
		{"NAME", "name"}, {"QUOTA", "mail_quota_bytes"}, {"WARN %", "quota_warn_percent"},
		{"PASSWORD MIN", "password_min_length"}, {"SESSION SECONDS", "session_lifetime_seconds"},
		{"DESCRIPTION", "description"},
	})
}

func cosShow(ctx context.Context, o *cmdline, args []string) error {
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return o.show(ctx, "/cos/"+seg(pos[0]))
}

// cosSet patches a COS. features.NAME=true|false turns one feature on or off and
// features.NAME= removes it: the API merges features into the current map.
func cosSet(ctx context.Context, o *cmdline, args []string) error {
	pos, err := o.parse(args, 2, -1)
	if err != nil {
		return err
	}
	body, err := o.patch(pos[1:], withMapKeys(cosKeys, "features", boolean, pos[1:]))
	if err != nil {
		return err
	}
	return o.send(ctx, http.MethodPatch, "/cos/"+seg(pos[0]), body)
}
