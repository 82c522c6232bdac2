package domain

import "fmt"

// A new mailing list or resource is checked the same way at both ends: its address first,
// then (once every field is checked) that it is new and its domain takes it.

// newObjectAddress parses the address of a new list or resource, which must be in the domain d
// it is created in.
func newObjectAddress(fe *fieldErrors, p *addressParser, raw string, d Domain) Address {
	addr, msg := p.parse(raw)
	switch {
	case raw == "":
		fe.add("address", "required")
	case msg != "":
		fe.add("address", msg)
	case addr.Domain != d.Name:
		fe.add("address", "must be in domain "+d.Name)
	}
	return addr
}

// admitNewObject is the last word on creating a list or resource (kind) at addr: the field
// errors first, then that it exists already, then that its domain takes no new objects.
func admitNewObject(fe *fieldErrors, exists bool, kind string, addr Address, d Domain) error {
	if err := fe.err(); err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("%s %s: %w", kind, addr, ErrAlreadyExists)
	}
	if !d.AcceptsNewAccounts() { // the accounts' rule holds for every new object of a domain
		return fmt.Errorf("domain %s is %s: %w", d.Name, d.Condition(), ErrDomainUnavailable)
	}
	return nil
}
