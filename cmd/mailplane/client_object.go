package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// The commands below are the same for every object the API keeps under /OBJECTS/{id}; objects
// is that path's first segment (domains, accounts, lists, resources, cos) and what names one
// object in messages (domain, list, COS).

// domainObjects lists one kind of a domain's objects (GET /domains/{domain}/OBJECTS) in columns;
// status adds the --status filter.
func domainObjects(objects string, status bool, columns []column) func(ctx context.Context, o *cmdline, args []string) error {
	return func(ctx context.Context, o *cmdline, args []string) error {
		l := o.listFlags(status)
		pos, err := o.parse(args, 1, 1)
		if err != nil {
			return err
		}
		return o.list(ctx, "/domains/"+seg(pos[0])+"/"+objects, l, columns)
	}
}

// objectShow prints one object; with --as-of, as it stood then.
func objectShow(objects, what string) func(ctx context.Context, o *cmdline, args []string) error {
	return func(ctx context.Context, o *cmdline, args []string) error {
		asOf := o.fs.String("as-of", "", "show the "+what+" as it stood at this RFC 3339 time")
		pos, err := o.parse(args, 1, 1)
		if err != nil {
			return err
		}
		path := "/" + objects + "/" + seg(pos[0])
		if *asOf != "" {
			path += "?as_of=" + url.QueryEscape(*asOf)
		}
		return o.show(ctx, path)
	}
}

// objectSet changes an object's settings (PATCH) from key=value arguments, keys being the
// settings it may change.
func objectSet(objects string, keys map[string]kind) func(ctx context.Context, o *cmdline, args []string) error {
	return func(ctx context.Context, o *cmdline, args []string) error {
		pos, err := o.parse(args, 2, -1)
		if err != nil {
			return err
		}
		body, err := o.patch(pos[1:], keys)
		if err != nil {
			return err
		}
		return o.send(ctx, http.MethodPatch, "/"+objects+"/"+seg(pos[0]), body)
	}
}

// objectDelete deletes an object.
func objectDelete(objects, what string) func(ctx context.Context, o *cmdline, args []string) error {
	return func(ctx context.Context, o *cmdline, args []string) error {
		pos, err := o.parse(args, 1, 1)
		if err != nil {
			return err
		}
		return o.act(ctx, http.MethodDelete, "/"+objects+"/"+seg(pos[0]), nil, "deleted "+what+" "+pos[0])
	}
}

// addressDomain is the domain of a new object's address, whose collection is under
// /domains/{domain}/; an argument that is no address is a usage error.
func (o *cmdline) addressDomain(address string) (string, error) {
	at := strings.LastIndexByte(address, '@')
	if at < 1 || at == len(address)-1 {
		return "", o.usageError("%q is not an address (local@domain)", address)
	}
	return address[at+1:], nil
}
