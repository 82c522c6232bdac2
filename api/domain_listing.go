package api

import (
	"context"
	"net/http"

	"mailplane/projections/postgres"
)

// domainListing reads the page a listing of one kind of a domain's objects asks for
// (GET /domains/{domain}/lists, resources, virtual-hosts): the caller must administer the
// domain, which must exist (404 otherwise, not an empty page). list is asked for one row more
// than the page shows, so that pageOf knows whether there is a next page; limit is the page's
// size.
func domainListing[T any](s *Server, r *http.Request,
	list func(ctx context.Context, domainName string, q postgres.ListQuery) ([]T, error)) (rows []T, limit int, err error) {
	name, err := domainName(r)
	if err != nil {
		return nil, 0, err
	}
	if err := requireDomainAdmin(principal(r), name); err != nil {
		return nil, 0, err
	}
	q, err := page(r)
	if err != nil {
		return nil, 0, err
	}
	if err := s.catchUp(r, ""); err != nil {
		return nil, 0, err
	}
	if _, err := s.Reads.DomainSettings(r.Context(), name); err != nil {
		return nil, 0, err
	}
	limit = q.Limit
	q.Limit++
	rows, err = list(r.Context(), name, q)
	if err != nil {
		return nil, 0, err
	}
	return rows, limit, nil
}
