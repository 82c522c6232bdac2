package main

import (
	"context"
	"net/http"
	"strings"
)

var configCommand = group("config", []action{
	{"show", "[--json]", configShow},
	{"set", "key=value ...  (keys: " + strings.Join(sortedKeys(configKeys), ", ") +
		"; key= resets the built-in default)", configSet},
})

// configKeys are the global settings (GET|PATCH /config).
var configKeys = map[string]kind{
	"time_zone": text, "public_protocol": text, "spam_relay_host": text, "default_cos": text,
	"account_quota_bytes": integer, "domain_quota_bytes": integer, "warn_percent": integer,
	"gal_polling_interval_seconds": integer, "session_lifetime_seconds": integer, "password_min_length": integer,
	"totp_required": boolean,
}

func configShow(ctx context.Context, o *cmdline, args []string) error {
	if _, err := o.parse(args, 0, 0); err != nil {
		return err
	}
	return o.show(ctx, "/config")
}

func configSet(ctx context.Context, o *cmdline, args []string) error {
	pos, err := o.parse(args, 1, -1)
	if err != nil {
		return err
	}
	body, err := o.patch(pos, configKeys)
	if err != nil {
		return err
	}
	return o.send(ctx, http.MethodPatch, "/config", body)
}
