package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Decide wraps them with context (fmt.Errorf %w or a typed
// error with Unwrap); callers test with errors.Is.
var (
	// ErrNotFound: the object the command addresses does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the object, alias or session exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the object's current state forbids the command (a COS in use).
	ErrConflict = errors.New("conflict")
	// ErrLimitReached: a configured limit (max_accounts) would be exceeded.
	ErrLimitReached = errors.New("limit reached")
	// ErrDomainUnavailable: the domain's status refuses the operation.
	ErrDomainUnavailable = errors.New("domain unavailable")
	// ErrLoginRefused: the account or its domain does not accept logins now.
	ErrLoginRefused = errors.New("login refused")
)

// FieldError names one bad input field by its API name (dotted for nested
// objects: "auth.ldap_url", "attributes.foo") and says what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every bad field of a command at once, so a client can
// fix them all in one round trip. It is returned as a value: match it with
//
//	var ve domain.ValidationError
//	errors.As(err, &ve)
type ValidationError struct {
	Errors []FieldError
}

// Error joins the field errors; the HTTP layer shows them one by one instead.
func (e ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Field + ": " + fe.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Invalid returns a ValidationError for a single field.
func Invalid(field, msg string) error {
	return ValidationError{Errors: []FieldError{{Field: field, Message: msg}}}
}

// InUseError refuses to delete an object that others still reference. Users
// names them (account addresses, or "domain:NAME" and "config" for a default
// COS) so the API can list them in its 409.
type InUseError struct {
	Users []string
}

// Error names the users; the HTTP layer lists them in its 409.
func (e InUseError) Error() string {
	return fmt.Sprintf("in use by %s", strings.Join(e.Users, ", "))
}

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e InUseError) Unwrap() error { return ErrConflict }

// fieldErrors collects field errors while a command is checked, so Decide can
// report all of them together.
type fieldErrors struct {
	list []FieldError
}

func (f *fieldErrors) add(field, msg string) {
	f.list = append(f.list, FieldError{Field: field, Message: msg})
}

// addErr records err under field. Errors from the name parsers carry their
// own generic field name ("name", "address"); the command knows the real one.
func (f *fieldErrors) addErr(field string, err error) {
	var ve ValidationError
	if errors.As(err, &ve) {
		for _, e := range ve.Errors {
			f.add(field, e.Message)
		}
		return
	}
	f.add(field, err.Error())
}

func (f *fieldErrors) err() error {
	if len(f.list) == 0 {
		return nil
	}
	return ValidationError{Errors: f.list}
}

// firstMessage returns the message of a single-field ValidationError (what
// the name parsers return), or the error text otherwise.
func firstMessage(err error) string {
	var ve ValidationError
	if errors.As(err, &ve) && len(ve.Errors) > 0 {
		return ve.Errors[0].Message
	}
	return err.Error()
}
