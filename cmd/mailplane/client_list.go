package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"mailplane/domain"
)

var listCommand = group("list", []action{
	{"create", "ADDRESS [--display-name N] [--description D] [--member M ...] [--members-file F] [--owner O ...] " +
		"[--allowed-sender S ...] [--subscription-policy P] [--unsubscription-policy P] [--hide-in-gal] [--member-url URL]", listCreate},
	{"list", "DOMAIN [--q Q] [--limit N] [--cursor C] [--all] [--json]", domainObjects("lists", false, []column{
		{"ADDRESS", "address"}, {"DISPLAY NAME", "display_name"}, {"MEMBERS", "member_count"},
		{"DYNAMIC", "dynamic.member_url"}, {"OWNERS", "owners"}, {"HIDDEN", "hide_in_gal"},
	})},
	{"show", "ADDRESS [--as-of TIME] [--json]", objectShow("lists", "list")},
	{"history", "ADDRESS " + historySynopsis, objectHistory("lists")},
	{"set", "ADDRESS key=value ...  (keys: " + strings.Join(sortedKeys(listKeys), ", ") +
		"; allowed_senders=a,b; key= resets it)", objectSet("lists", listKeys)},
	{"delete", "ADDRESS", objectDelete("lists", "list")},
	subgroup("members", "list", []action{
		{"add", "ADDRESS MEMBER ... [--file F]  (F: one address a line, - for standard input)", setChange("members", false)},
		{"remove", "ADDRESS MEMBER ... [--file F]", setChange("members", true)},
		{"list", "ADDRESS [--q Q] [--limit N] [--cursor C] [--all] [--json]", listMembersList},
	}),
	subgroup("owners", "list", []action{
		{"add", "ADDRESS OWNER ...", setChange("owners", false)},
		{"remove", "ADDRESS OWNER ...", setChange("owners", true)},
	}),
	subgroup("aliases", "list", []action{
		{"add", "ADDRESS ALIAS ...", setChange("aliases", false)},
		{"remove", "ADDRESS ALIAS ...", setChange("aliases", true)},
	}),
	{"dynamic", "ADDRESS MEMBER_URL [--drop-members]  (make the list dynamic: ldap:///??sub?(filter))", listDynamic},
	{"static", "ADDRESS  (make a dynamic list static, without members)", listStatic},
})

// listKeys are the settings list set may change (PATCH /lists/{address}).
var listKeys = map[string]kind{
	"display_name": text, "description": text, "allowed_senders": addresses,
	"subscription_policy": text, "unsubscription_policy": text, "hide_in_gal": boolean,
}

// repeated is a flag given once per value (--member a --member b), or with commas.
type repeated struct{ values *[]string }

func (r repeated) String() string { return "" }

func (r repeated) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*r.values = append(*r.values, v)
		}
	}
	return nil
}

func (o *cmdline) repeated(name, usage string) *[]string {
	values := &[]string{}
	o.fs.Var(repeated{values}, name, usage)
	return values
}

// readAddresses reads one address a line from a file ("-": standard input); blank lines and
// lines starting with # are skipped.
func readAddresses(name string) ([]string, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

func listCreate(ctx context.Context, o *cmdline, args []string) error {
	o.field("display-name", "display_name", text, "the name shown beside the address")
	o.field("description", "description", text, "what the list is for")
	o.field("subscription-policy", "subscription_policy", text, "accept, approval (default) or reject")
	o.field("unsubscription-policy", "unsubscription_policy", text, "accept (default), approval or reject")
	o.field("hide-in-gal", "hide_in_gal", boolean, "leave the list out of the address book")
	members := o.repeated("member", "a member (repeat, or separate with commas)")
	membersFile := o.fs.String("members-file", "", "read members from this file, one a line (- for standard input)")
	owners := o.repeated("owner", "an owner: an account that may manage the list (repeat)")
	senders := o.repeated("allowed-sender", "who may post (repeat; none: anyone)")
	memberURL := o.fs.String("member-url", "", "make the list dynamic: its members are what this LDAP URL finds (ldap:///??sub?(filter))")
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	domainName, err := o.addressDomain(pos[0])
	if err != nil {
		return err
	}
	if *membersFile != "" {
		more, err := readAddresses(*membersFile)
		if err != nil {
			return err
		}
		*members = append(*members, more...)
	}
	o.body["address"] = pos[0]
	for k, v := range map[string][]string{"members": *members, "owners": *owners, "allowed_senders": *senders} {
		if len(v) > 0 {
			o.body[k] = v
		}
	}
	if *memberURL != "" {
		o.body["dynamic"] = map[string]any{"member_url": *memberURL}
	}
	return o.send(ctx, http.MethodPost, "/domains/"+seg(domainName)+"/lists", o.body)
}

// setChange adds addresses to or removes them from one of a list's sets (members, owners,
// aliases), at most domain.MaxListChange a request: a longer file goes in several.
func setChange(set string, removing bool) func(ctx context.Context, o *cmdline, args []string) error {
	return func(ctx context.Context, o *cmdline, args []string) error {
		file := o.fs.String("file", "", "read the addresses from this file, one a line (- for standard input)")
		pos, err := o.parse(args, 1, -1)
		if err != nil {
			return err
		}
		in := pos[1:]
		if *file != "" {
			more, err := readAddresses(*file)
			if err != nil {
				return err
			}
			in = append(in, more...)
		}
		if len(in) == 0 {
			return o.usageError("no addresses: give them as arguments or with --file")
		}
		c, err := o.client()
		if err != nil {
			return err
		}
		method, verb, prep := http.MethodPost, "added", "to"
		if removing {
			method, verb, prep = http.MethodDelete, "removed", "from"
		}
		var last response
		for start := 0; start < len(in); start += domain.MaxListChange {
			chunk := in[start:min(start+domain.MaxListChange, len(in))]
			if last, err = c.do(ctx, method, "/lists/"+seg(pos[0])+"/"+set, nil, map[string][]string{set: chunk}); err != nil {
				if start > 0 {
					fmt.Fprintf(o.e.stderr, "the first %d addresses went through\n", start)
				}
				return err
			}
		}
		if o.json {
			return printJSON(o.e.stdout, last.body)
		}
		_, err = fmt.Fprintf(o.e.stdout, "%s %d %s %s %s\n", verb, len(in), set, prep, pos[0])
		return err
	}
}

func listMembersList(ctx context.Context, o *cmdline, args []string) error {
	l := o.listFlags(false)
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return o.list(ctx, "/lists/"+seg(pos[0])+"/members", l, []column{{"MEMBER", "address"}})
}

func listDynamic(ctx context.Context, o *cmdline, args []string) error {
	drop := o.fs.Bool("drop-members", false, "a static list with members drops them (without it, that is refused)")
	pos, err := o.parse(args, 2, 2)
	if err != nil {
		return err
	}
	return o.send(ctx, http.MethodPut, "/lists/"+seg(pos[0])+"/dynamic", map[string]any{"member_url": pos[1], "drop_members": *drop})
}

func listStatic(ctx context.Context, o *cmdline, args []string) error {
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return o.send(ctx, http.MethodDelete, "/lists/"+seg(pos[0])+"/dynamic", nil)
}
