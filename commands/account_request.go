package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"mailplane/domain"
)

// NewAccount is a request to create an account as a client sent it: the address as given (a
// full address, a local part in Domain, or both), the settings, the credentials, and the field
// errors already found while reading the request (a string where a number belongs). The command
// checks everything and answers one ValidationError listing every bad field, whoever asked: an
// HTTP handler, the CLI or a worker.
type NewAccount struct {
	// Domain is the domain the account is created in (the request's path).
	Domain string
	// Address and LocalPart are as sent; either names the account.
	Address   string
	LocalPart string
	// Account holds the settings; its Address is filled in from Address or LocalPart.
	Account     domain.CreateAccount
	Credentials Credentials
	// Invalid are the fields the request could not even be read into.
	Invalid []domain.FieldError
}

// CreateAccountRequest validates a client's request whole and creates the account. The
// address is returned as normalised.
func (s *Service) CreateAccountRequest(ctx context.Context, req Request, in NewAccount) (domain.Address, Outcome, error) {
	addr, addrErrs := newAccountAddress(in.Domain, in.Address, in.LocalPart)
	invalid := append(append([]domain.FieldError{}, in.Invalid...), addrErrs...)
	if len(invalid) == 0 {
		cmd := in.Account
		cmd.Address = addr
		out, err := s.CreateAccount(ctx, req, cmd, in.Credentials)
		return addr, out, err
	}
	return domain.Address{}, Outcome{}, s.collectCreateErrors(ctx, in, invalid)
}

// newAccountAddress reads the address a create names.
func newAccountAddress(domainName, full, local string) (domain.Address, []domain.FieldError) {
	bad := func(field, msg string) (domain.Address, []domain.FieldError) {
		return domain.Address{}, []domain.FieldError{{Field: field, Message: msg}}
	}
	if full == "" {
		if local == "" {
			return bad("address", "required (or local_part)")
		}
		a, err := domain.ParseAddress(local + "@" + domainName)
		if err != nil {
			return bad("local_part", firstMessage(err))
		}
		return a, nil
	}
	a, err := domain.ParseAddress(full)
	if err != nil {
		return bad("address", firstMessage(err))
	}
	if a.Domain != domainName {
		return bad("address", "must be in domain "+domainName)
	}
	if local != "" && strings.ToLower(local) != a.Local {
		return bad("local_part", "does not match address")
	}
	return a, nil
}

// collectCreateErrors answers a create that cannot be made into a command (its address, or a
// field's type, is wrong) with every bad field at once: the ones found so far, the credentials'
// and those the decision would report, decided on the domain as it stands with a stand-in
// address. A domain that does not exist is a 404, whatever else is wrong.
func (s *Service) collectCreateErrors(ctx context.Context, in NewAccount, invalid []domain.FieldError) error {
	d, _, err := Load[domain.Domain](ctx, s, domain.DomainStreamID(in.Domain))
	if err != nil {
		return err
	}
	if !d.Exists() {
		return fmt.Errorf("domain %q: %w", in.Domain, domain.ErrNotFound)
	}
	cred := in.Credentials
	switch {
	case cred.Password != nil && cred.PasswordHash != nil:
		invalid = append(invalid, domain.FieldError{Field: "password_hash", Message: ErrPasswordAndHash.Error()})
	case cred.PasswordHash != nil:
		if err := CheckHashFormat(*cred.PasswordHash); err != nil {
			invalid = append(invalid, domain.FieldError{Field: "password_hash", Message: err.Error()})
		}
	}
	c := in.Account
	c.Address = domain.Address{Local: "stand-in", Domain: in.Domain}
	c.Domain = domain.Domain{Name: in.Domain, Status: domain.StatusActive}
	c.At = s.now()
	if c.COS != nil {
		if n, err := domain.NormalizeCOSName(*c.COS); err == nil {
			cos, _, err := Load[domain.COS](ctx, s, domain.COSStreamID(n))
			if err != nil {
				return err
			}
			c.COSExists = cos.Exists()
		}
	}
	_, decided := domain.Account{}.Decide(c)
	var ve domain.ValidationError
	if errors.As(decided, &ve) {
		seen := map[string]bool{}
		for _, f := range invalid {
			seen[f.Field] = true
		}
		for _, f := range ve.Errors {
			if !seen[f.Field] {
				seen[f.Field] = true
				invalid = append(invalid, f)
			}
		}
	}
	return domain.ValidationError{Errors: invalid}
}

// firstMessage is the message of a validation error's first field, or the error's text.
func firstMessage(err error) string {
	var ve domain.ValidationError
	if errors.As(err, &ve) && len(ve.Errors) > 0 {
		return ve.Errors[0].Message
	}
	return err.Error()
}
