package main

import (
	"context"
	"net/http"
	"strings"
)

var accountCommand = group("account", []action{
	{"create", "ADDRESS [--display-name N] [--password P] [--cos C] [--status S] [--quota BYTES] " +
		"[--domain-admin] [--global-admin] [--auditor [--auditor-domains D1,D2]]", accountCreate},
	{"list", "DOMAIN [--q Q] [--status S] [--limit N] [--cursor C] [--all] [--json]", domainObjects("accounts", true, []column{
		{"ADDRESS", "address"}, {"DISPLAY NAME", "display_name"}, {"STATUS", "status"},
		{"COS", "effective.cos"}, {"QUOTA", "effective.mail_quota_bytes"},
		{"DOMAIN ADMIN", "domain_admin"}, {"GLOBAL ADMIN", "global_admin"}, {"AUDITOR", "auditor"},
	})},
	{"show", "ADDRESS [--json]", accountShow},
	{"history", "ADDRESS " + historySynopsis, objectHistory("accounts")},
	{"set", "ADDRESS key=value ...  (keys: " + strings.Join(sortedKeys(accountKeys), ", ") +
		", attributes.NAME; key= clears the override)", accountSet},
	subgroup("alias", "account", []action{
		{"add", "ADDRESS ALIAS", aliasAdd},
		{"remove", "ADDRESS ALIAS", aliasRemove},
	}),
	{"delete", "ADDRESS", objectDelete("accounts", "account")},
	{"import", "DOMAIN FILE [--format csv|jsonl] [--no-wait] [--json]  (follows the job with a progress bar; exit 1 when rows were refused)", accountImport},
	{"export", "DOMAIN [--format csv|jsonl] [--out FILE]", accountExport},
})

// accountKeys are the settings account set may change (PATCH /accounts/{address}).
var accountKeys = map[string]kind{
	"display_name": text, "cos": text, "status": text, "mail_quota_bytes": integer,
	"domain_admin": boolean, "global_admin": boolean, "password": text,
	// auditor_domains=a.example,b.example narrows an auditor to those domains; auditor_domains=
	// (empty) gives it every domain again.
	"auditor": boolean, "auditor_domains": addresses,
}

func accountCreate(ctx context.Context, o *cmdline, args []string) error {
	o.field("display-name", "display_name", text, "the name shown beside the address")
	o.field("password", "password", text, "initial password (none: no login until one is set)")
	o.field("cos", "cos", text, "Class of Service (default: the domain's)")
	o.field("status", "status", text, "active, locked, maintenance, closed, lockout or pending")
	o.field("quota", "mail_quota_bytes", integer, "mailbox limit in bytes (default: the domain's; 0: no limit)")
	o.field("domain-admin", "domain_admin", boolean, "may administer its domain")
	o.field("global-admin", "global_admin", boolean, "may administer everything")
	o.field("auditor", "auditor", boolean, "reads everything in its domains and changes nothing (not with an admin role)")
	o.field("auditor-domains", "auditor_domains", addresses, "comma-separated domains an auditor reads (default: every domain)")
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	domainName, err := o.addressDomain(pos[0])
	if err != nil {
		return err
	}
	o.body["address"] = pos[0]
	return o.send(ctx, http.MethodPost, "/domains/"+seg(domainName)+"/accounts", o.body)
}

func accountShow(ctx context.Context, o *cmdline, args []string) error {
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return o.show(ctx, "/accounts/"+seg(pos[0]))
}

func accountSet(ctx context.Context, o *cmdline, args []string) error {
	pos, err := o.parse(args, 2, -1)
	if err != nil {
		return err
	}
	body, err := o.patch(pos[1:], withMapKeys(accountKeys, "attributes", text, pos[1:]))
	if err != nil {
		return err
	}
	return o.send(ctx, http.MethodPatch, "/accounts/"+seg(pos[0]), body)
}

func aliasAdd(ctx context.Context, o *cmdline, args []string) error {
	pos, err := o.parse(args, 2, 2)
	if err != nil {
		return err
	}
	return o.act(ctx, http.MethodPost, "/accounts/"+seg(pos[0])+"/aliases", map[string]string{"alias": pos[1]},
		"added alias "+pos[1]+" to "+pos[0])
}

func aliasRemove(ctx context.Context, o *cmdline, args []string) error {
	pos, err := o.parse(args, 2, 2)
	if err != nil {
		return err
	}
	return o.act(ctx, http.MethodDelete, "/accounts/"+seg(pos[0])+"/aliases/"+seg(pos[1]), nil,
		"removed alias "+pos[1]+" from "+pos[0])
}
