package commands

import (
	"context"
	"errors"
	"fmt"

	"mailplane/domain"
)

// Bootstrap creates the first global admin: the default COS and the admin's domain if they are
// missing, then the account. Running it again for an existing global admin changes nothing and
// succeeds; created says whether the account was made now.
func (s *Service) Bootstrap(ctx context.Context, email, password string) (created bool, err error) {
	addr, err := domain.ParseAddress(email)
	if err != nil {
		return false, err
	}
	req := Request{Meta: metaFor("bootstrap", "")}
	if _, _, err := s.CreateCOS(ctx, req, domain.CreateCOS{Name: domain.DefaultCOSName, Description: "Default class of service"}); err != nil && !errors.Is(err, domain.ErrAlreadyExists) {
		return false, fmt.Errorf("default COS: %w", err)
	}
	if _, _, err := s.CreateDomain(ctx, req, domain.CreateDomain{Name: addr.Domain, Description: "Administrators' domain"}, ""); err != nil && !errors.Is(err, domain.ErrAlreadyExists) {
		return false, fmt.Errorf("domain %s: %w", addr.Domain, err)
	}
	a, _, err := Load[domain.Account](ctx, s, domain.AccountStreamID(addr))
	if err != nil {
		return false, err
	}
	if a.Exists() {
		if !a.GlobalAdmin {
			return false, fmt.Errorf("%s exists and is not a global admin: %w", addr, domain.ErrConflict)
		}
		return false, nil
	}
	_, err = s.CreateAccount(ctx, req, domain.CreateAccount{Address: addr, DisplayName: "Administrator", GlobalAdmin: true},
		Credentials{Password: &password})
	return err == nil, err
}
