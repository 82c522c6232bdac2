package main

import (
	"context"
	"net/http"
	"strings"
)

var resourceCommand = group("resource", []action{
	{"create", "ADDRESS --type location|equipment [--display-name N] [--capacity N] [--location L] " +
		"[--booking-policy P] [--max-conflicts N] [--notify A ...]", resourceCreate},
	{"list", "DOMAIN [--q Q] [--limit N] [--cursor C] [--all] [--json]", domainObjects("resources", false, []column{
		{"ADDRESS", "address"}, {"DISPLAY NAME", "display_name"}, {"TYPE", "type"}, {"CAPACITY", "capacity"},
		{"LOCATION", "location"}, {"BOOKING", "booking_policy"},
	})},
	{"show", "ADDRESS [--as-of TIME] [--json]", objectShow("resources", "resource")},
	{"history", "ADDRESS " + historySynopsis, objectHistory("resources")},
	{"set", "ADDRESS key=value ...  (keys: " + strings.Join(sortedKeys(resourceKeys), ", ") +
		"; notify_addresses=a,b; key= empties it)", objectSet("resources", resourceKeys)},
	{"delete", "ADDRESS", objectDelete("resources", "resource")},
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
	domainName, err := o.addressDomain(pos[0])
	if err != nil {
		return err
	}
	o.body["address"] = pos[0]
	if len(*notify) > 0 {
		o.body["notify_addresses"] = *notify
	}
	return o.send(ctx, http.MethodPost, "/domains/"+seg(domainName)+"/resources", o.body)
}
