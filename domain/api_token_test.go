package domain

import (
	"errors"
	"testing"
	"time"
)

func TestAPITokenScopeAllows(t *testing.T) {
	s := APITokenScope{Domains: []string{"a.example"}, Access: map[string]string{"*": AccessRead, "accounts": AccessWrite}}
	for _, tc := range []struct {
		kind  string
		write bool
		want  bool
	}{
		{"accounts", true, true}, {"accounts", false, true}, {"lists", false, true}, {"lists", true, false},
	} {
		if got := s.Allows(tc.kind, tc.write); got != tc.want {
			t.Errorf("Allows(%s, write=%v) = %v", tc.kind, tc.write, got)
		}
	}
	only := APITokenScope{Access: map[string]string{"lists": AccessRead}}
	if only.Allows("accounts", false) || !only.Allows("lists", false) || only.Allows("lists", true) {
		t.Error("a kind not named is out of reach without *")
	}
	if !s.AllowsDomain("a.example") || s.AllowsDomain("b.example") || !(APITokenScope{AllDomains: true}).AllowsDomain("b.example") {
		t.Error("AllowsDomain")
	}
}

func TestNormalizeAPITokenScope(t *testing.T) {
	owner := Address{Local: "me", Domain: "mine.example"}
	s, err := NormalizeAPITokenScope(nil, map[string]string{"*": "read"}, owner, true)
	if err != nil || !s.AllDomains || len(s.Domains) != 0 {
		t.Fatalf("a global admin's empty list is all domains: %+v %v", s, err)
	}
	s, err = NormalizeAPITokenScope(nil, map[string]string{"*": "read"}, owner, false)
	if err != nil || s.AllDomains || len(s.Domains) != 1 || s.Domains[0] != "mine.example" {
		t.Fatalf("anyone else's is their own domain: %+v %v", s, err)
	}
	s, err = NormalizeAPITokenScope([]string{"B.example", "bücher.example", "b.example"}, map[string]string{"dkim": "write"}, owner, true)
	if err != nil || len(s.Domains) != 2 || s.Domains[0] != "b.example" || s.Domains[1] != "xn--bcher-kva.example" {
		t.Fatalf("A-labels, once each, sorted: %+v %v", s, err)
	}
	_, err = NormalizeAPITokenScope([]string{"x"}, map[string]string{"nope": "read", "lists": "admin"}, owner, true)
	var ve ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != 3 {
		t.Fatalf("every bad field: %v", err)
	}
}

func TestAPITokenDecideCreate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	scope := APITokenScope{AllDomains: true, Access: map[string]string{"*": AccessRead}}
	owner := Address{Local: "me", Domain: "mine.example"}
	for _, exp := range []time.Time{{}, now, now.Add(-time.Second), now.Add(MaxAPITokenLifetime + time.Second)} {
		if _, err := (APIToken{}).DecideCreate(CreateAPIToken{ID: "x", Name: "n", Owner: owner, Scope: scope, ExpiresAt: exp, At: now}); err == nil {
			t.Errorf("expiry %v accepted", exp)
		}
	}
	evs, err := (APIToken{}).DecideCreate(CreateAPIToken{ID: "x", Name: " n ", Owner: owner, Scope: scope, ExpiresAt: now.Add(MaxAPITokenLifetime), At: now})
	if err != nil || len(evs) != 1 {
		t.Fatal(err)
	}
	tok := APIToken{}.Evolve(evs[0])
	if tok.Name != "n" || tok.Account != "me@mine.example" || !tok.Scope.AllDomains {
		t.Fatalf("%+v", tok)
	}
	if _, err := tok.DecideCreate(CreateAPIToken{ID: "x", Name: "n", Owner: owner, Scope: scope, ExpiresAt: now.Add(time.Hour), At: now}); !errors.Is(err, ErrAlreadyExists) {
		t.Fatal(err)
	}
	evs, _ = tok.DecideRevoke(RevokeAPIToken{By: "me@mine.example", At: now})
	tok = tok.Evolve(evs[0])
	if evs, err := tok.DecideRevoke(RevokeAPIToken{At: now}); err != nil || len(evs) != 0 {
		t.Fatal("revoking again changes nothing")
	}
	if _, err := (APIToken{}).DecideRevoke(RevokeAPIToken{At: now}); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}
