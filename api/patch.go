package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"

	"mailplane/domain"
)

// patchDoc is a PATCH body (JSON merge patch, RFC 7396): a member absent leaves the setting
// as it is, a value sets it, null clears it back to what it inherits.
type patchDoc struct {
	fields map[string]json.RawMessage
	prefix string
	errs   *[]FieldError
	// cleared collects the names of members sent as null.
	cleared *[]string
}

// readPatch reads the request's body and parses it as parsePatch does; the raw body is returned
// too, to fingerprint an idempotent request (commandRequest).
func readPatch(r *http.Request, allowed ...string) ([]byte, patchDoc, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, patchDoc{}, err
	}
	doc, err := parsePatch(body, allowed...)
	return body, doc, err
}

// parsePatch reads a PATCH body; members not in allowed are refused.
func parsePatch(b []byte, allowed ...string) (patchDoc, error) {
	var fields map[string]json.RawMessage
	if err := decodeBytes(b, &fields); err != nil {
		return patchDoc{}, err
	}
	var unknown []string
	for k := range fields {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		e := &Error{Status: http.StatusBadRequest, Type: "unknown-field", Detail: fmt.Sprintf("unknown field(s) %v", unknown)}
		for _, k := range unknown {
			e.Fields = append(e.Fields, FieldError{Field: k, Message: "unknown field"})
		}
		return patchDoc{}, e
	}
	return patchDoc{fields: fields, errs: new([]FieldError), cleared: new([]string)}, nil
}

// sub returns the patch of a nested object member (e.g. "limits"); absent → nil.
func (p patchDoc) sub(name string, allowed ...string) (*patchDoc, bool) {
	raw, ok := p.fields[name]
	if !ok || string(raw) == "null" {
		return nil, ok
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		*p.errs = append(*p.errs, FieldError{Field: p.prefix + name, Message: "must be an object"})
		return nil, true
	}
	for k := range fields {
		if !slices.Contains(allowed, k) {
			*p.errs = append(*p.errs, FieldError{Field: p.prefix + name + "." + k, Message: "unknown field"})
		}
	}
	return &patchDoc{fields: fields, prefix: p.prefix + name + ".", errs: p.errs, cleared: p.cleared}, true
}

// has reports whether the member is present (as a value or null).
func (p patchDoc) has(name string) bool { _, ok := p.fields[name]; return ok }

// patchField reads one member: nil when absent or null (null is recorded in cleared).
func patchField[T any](p *patchDoc, name string) *T {
	if p == nil {
		return nil
	}
	raw, ok := p.fields[name]
	if !ok {
		return nil
	}
	if string(raw) == "null" {
		*p.cleared = append(*p.cleared, p.prefix+name)
		return nil
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		*p.errs = append(*p.errs, FieldError{Field: p.prefix + name, Message: fmt.Sprintf("must be %s", jsonKind[T]())})
		return nil
	}
	return v
}

func jsonKind[T any]() string {
	var z T
	switch any(z).(type) {
	case string:
		return "a string"
	case int, int64:
		return "an integer"
	case bool:
		return "true or false"
	case map[string]bool:
		return "an object of booleans"
	case map[string]string:
		return "an object of strings"
	case []string:
		return "an array of strings"
	}
	return "of the right type"
}

// err returns the collected field errors, if any.
func (p patchDoc) err() error {
	if len(*p.errs) == 0 {
		return nil
	}
	return &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "the request has invalid fields", Fields: *p.errs}
}

// fieldErrors returns the collected field errors in the domain's form, for a command that
// reports them together with its own.
func (p patchDoc) fieldErrors() []domain.FieldError {
	out := make([]domain.FieldError, len(*p.errs))
	for i, f := range *p.errs {
		out[i] = domain.FieldError{Field: f.Field, Message: f.Message}
	}
	return out
}

// clearedNames returns the members sent as null.
func (p patchDoc) clearedNames() []string { return *p.cleared }

// patchSet reads an array member that replaces a whole set of addresses: nil when absent
// (unchanged), empty but not nil when null (none), so that the command can tell the two apart.
func patchSet(p *patchDoc, name string) []string {
	if !p.has(name) {
		return nil
	}
	if v := patchField[[]string](p, name); v != nil && *v != nil {
		return *v
	}
	return []string{}
}

// patchValue reads a member that has no inherited value: null sets its empty form (an empty
// description, no warning recipient, no account limit).
func patchValue[T any](p *patchDoc, name string) *T {
	if p == nil {
		return nil
	}
	if raw, ok := p.fields[name]; ok && string(raw) == "null" {
		return new(T)
	}
	return patchField[T](p, name)
}
