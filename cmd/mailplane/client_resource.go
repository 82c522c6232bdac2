package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

var resourceCommand = group("resource", []action{
	{"create", "ADDRESS --type location|equipment [--display-name N] [--capacity N] [--location L] " +
		"[--booking-policy P] [--max-conflicts N] [--notify A ...]", resourceCreate},
	{"list", "DOMAIN [--q Q] [--limit N] [--cursor C] [--all] [--json]", resourceList},
	{"show", "ADDRESS [--as-of TIME] [--json]", resourceShow},
	{"set", "ADDRESS key=value ...  (keys: " + strings.Join(sortedKeys(resourceKeys), ", ") +
		"; notify_addresses=a,b; key= empties it)", resourceSet},
	{"delete", "ADDRESS", resourceDelete},
})

// resourceKeys are the settings resource set may change (PATCH /resources/{address}).
var resourceKeys = map[string]kind{
	"display_name": text, "type": text, "capacity": integer, "location": text, "booking_policy": text,
	"max_conflicts": integer, "notify_addresses": addresses,
}

func resourceCreate(ctx context.Context, o *cmdline, args []string) error {
	o.field("type", "type", text, "location (a room) or equipment")
	o.field("display-name", "display_name", text, "the name shown beside the address")
	o.field("capacity", "capacity", integer, "how many people it holds")
	o.field("location", "location", text, "where it is")
	o.field("booking-policy", "booking_policy", text, "auto_accept, auto_accept_unless_busy (default), manual or auto_decline")
	o.field("max-conflicts", "max_conflicts", integer, "conflicting instances of a recurring booking it still accepts")
	notify := o.repeated("notify", "who hears of its bookings (repeat, or separate with commas)")
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	at := strings.LastIndexByte(pos[0], '@')
	if at < 1 || at == len(pos[0])-1 {
		return o.usageError("%q is not an address (local@domain)", pos[0])
	}
	o.body["address"] = pos[0]
	if len(*notify) > 0 {
		o.body["notify_addresses"] = *notify
	}
	return o.send(ctx, http.MethodPost, "/domains/"+seg(pos[0][at+1:])+"/resources", o.body)
}

func resourceList(ctx context.Context, o *cmdline, args []string) error {
	l := o.listFlags(false)
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return o.list(ctx, "/domains/"+seg(pos[0])+"/resources", l, []column{
		{"ADDRESS", "address"}, {"DISPLAY NAME", "display_name"}, {"TYPE", "type"}, {"CAPACITY", "capacity"},
		{"LOCATION", "location"}, {"BOOKING", "booking_policy"},
	})
}

func resourceShow(ctx context.Context, o *cmdline, args []string) error {
	asOf := o.fs.String("as-of", "", "show the resource as it stood at this RFC 3339 time")
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	path := "/resources/" + seg(pos[0])
	if *asOf != "" {
		path += "?as_of=" + url.QueryEscape(*asOf)
	}
	return o.show(ctx, path)
}

func resourceSet(ctx context.Context, o *cmdline, args []string) error {
	pos, err := o.parse(args, 2, -1)
	if err != nil {
		return err
	}
	body, err := o.patch(pos[1:], resourceKeys)
	if err != nil {
		return err
	}
	return o.send(ctx, http.MethodPatch, "/resources/"+seg(pos[0]), body)
}

func resourceDelete(ctx context.Context, o *cmdline, args []string) error {
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return o.act(ctx, http.MethodDelete, "/resources/"+seg(pos[0]), nil, "deleted resource "+pos[0])
}
