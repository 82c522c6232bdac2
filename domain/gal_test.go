package domain

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestFoldGAL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Zoë":             "zoe",
		"ÁLVARO Martínez": "alvaro martinez",
		"Ångström":        "angstrom",
		"Straße":          "strasse",
		"Øyvind Łukasz":   "oyvind lukasz",
		"Çağrı":           "cagri",
		"日本":              "日本",
		"a%b_c":           "a%b_c",
	} {
		if got := FoldGAL(in); got != want {
			t.Errorf("FoldGAL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGALTokens(t *testing.T) {
	t.Parallel()
	got := GALTokens("Jean-Luc.Picard@Example.com", "Jean-Luc  Picard", "Picard", "Jean-Luc")
	want := []GALToken{
		{"jean-luc.picard@example.com", GALTokenExact}, {"jean-luc.picard", GALTokenExact}, {"jean-luc picard", GALTokenExact},
		{"jean-luc.picard@example.com", GALTokenAddress},
		{"jean", GALTokenWord}, {"luc", GALTokenWord}, {"picard", GALTokenWord},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("GALTokens = %v, want %v", got, want)
	}
	// A one-word display name is an exact token and a word token both: a prefix of it must
	// still find the entry.
	got = GALTokens("x@example.com", "Alice")
	if !slices.Contains(got, GALToken{"alice", GALTokenWord}) || !slices.Contains(got, GALToken{"alice", GALTokenExact}) {
		t.Fatalf("GALTokens = %v", got)
	}
	long := GALTokens("a@example.com", string(make([]rune, 300)))
	for _, tok := range long {
		if len(tok.Token) > maxGALTokenLen {
			t.Fatalf("token of %d bytes", len(tok.Token))
		}
	}
}

func TestGALDecide(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var g GAL
	if _, err := g.Decide(DeleteGAL{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of none: %v", err)
	}
	secret := "mpenc:v1:sealed"
	put := PutGAL{Domain: "example.com", At: at, Settings: GALSettings{Mode: GALBoth, External: &GALSourceSettings{
		LDAPURL: "ldaps://dir.example.com", BindDN: "cn=r,dc=example,dc=com", BindPasswordSecret: &secret,
		SearchBase: "dc=example,dc=com"}}}
	evs, err := g.Decide(put)
	if err != nil {
		t.Fatal(err)
	}
	ev := evs[0].(GALConfigured)
	if !ev.Created || ev.Account.String() != "galsync@example.com" || ev.External.SearchFilter != DefaultGALSearchFilter ||
		ev.External.TimeoutSeconds != DefaultGALTimeoutSeconds || ev.External.BindPasswordSecret != secret {
		t.Fatalf("event %+v", ev)
	}
	g = g.Evolve(ev)
	if !g.ShowsInternal() || !g.ShowsExternal() || !g.External.HasBindPassword {
		t.Fatalf("state %+v", g)
	}
	// The same settings again, the password left out: nothing to record.
	put.Settings.External.BindPasswordSecret = nil
	if evs, err := g.Decide(put); err != nil || len(evs) != 0 {
		t.Fatalf("repeat: %v %v", evs, err)
	}
	// StartTLS on ldaps:// is refused; a new account names the previous one.
	bad := put
	bad.Settings.External = &GALSourceSettings{LDAPURL: "ldaps://dir.example.com", SearchBase: "dc=example,dc=com", StartTLS: true}
	var ve ValidationError
	if _, err := g.Decide(bad); !errors.As(err, &ve) || ve.Errors[0].Field != "external.start_tls" {
		t.Fatalf("start_tls: %v", err)
	}
	moved := put
	moved.Settings.Account = "book@example.com"
	moved.At = at.Add(time.Minute)
	evs, err = g.Decide(moved)
	if err != nil || evs[0].(GALConfigured).PreviousAccount.String() != "galsync@example.com" {
		t.Fatalf("move: %v %v", evs, err)
	}
	g = g.Evolve(evs[0])
	if g.SourceChangedAt != at {
		t.Fatalf("a new address is no new source: %v", g.SourceChangedAt)
	}
	// Another search base is; the state the read models keep (no password) agrees.
	rebased := moved
	rebased.At = at.Add(2 * time.Minute)
	rebased.Settings.External = &GALSourceSettings{LDAPURL: "ldaps://dir.example.com", BindDN: "cn=r,dc=example,dc=com",
		SearchBase: "ou=people,dc=example,dc=com"}
	evs, err = g.Decide(rebased)
	if err != nil {
		t.Fatal(err)
	}
	withoutSecret := g
	ext := *g.External
	ext.BindPasswordSecret = ""
	withoutSecret.External = &ext
	if got := g.Evolve(evs[0]).SourceChangedAt; got != rebased.At || withoutSecret.Evolve(evs[0]).SourceChangedAt != got {
		t.Fatalf("rebased: %v", got)
	}
	// A failed resync keeps the last success; a later success replaces both.
	ok := GALSynced{Status: GALSyncSucceeded, Added: 3, Total: 3, FinishedAt: at}
	failed := GALSynced{Status: GALSyncFailed, Error: "down", Total: 3, FinishedAt: at.Add(time.Hour)}
	g = g.Evolve(ok).Evolve(failed)
	if g.LastSync.Status != GALSyncFailed || g.LastSuccess.FinishedAt != at || g.External.BindPasswordSecret != secret {
		t.Fatalf("after failure: %+v", g)
	}
	if g.EffectivePollingInterval(3600) != time.Hour {
		t.Fatalf("interval %v", g.EffectivePollingInterval(3600))
	}
	if evs, err := g.Decide(DeleteGAL{}); err != nil || g.Evolve(evs[0]).Exists() {
		t.Fatalf("delete: %v %v", evs, err)
	}
}
