// Package ldaptest gives tests the dev stack's directory (scripts/stack.sh: slapd, and a
// syncrepl consumer), a part of it of their own, and the readers of docs/postfix and
// docs/dovecot run for real against it: Postfix's postmap and a private Dovecot.
//
// Everything comes from the environment that `go tool task test` loads from .dev/env.
// docs/directory.md describes the tree.
package ldaptest

import (
	"os"
	"testing"
)

// Credentials are a DN to bind as and its password.
type Credentials struct {
	DN       string
	Password string
}

// Env is the directory as the dev stack describes it in .dev/env.
type Env struct {
	// URL is the provider, which the projection writes (MAILPLANE_LDAP_URL).
	URL string
	// ReplicaURL is a syncrepl consumer of the provider (MAILPLANE_LDAP_REPLICA_URL), or ""
	// when the stack runs none (`go tool task test` always starts one).
	ReplicaURL string
	// Suffix is the directory's base DN (MAILPLANE_LDAP_BASE_DN).
	Suffix string
	// Admin is the rootdn (MAILPLANE_LDAP_BIND_DN, MAILPLANE_LDAP_PASSWORD).
	Admin Credentials
	// Postfix and Dovecot are the readers (MAILPLANE_LDAP_POSTFIX_DN and _PASSWORD,
	// MAILPLANE_LDAP_DOVECOT_DN and _PASSWORD).
	Postfix Credentials
	Dovecot Credentials
	// DevDir is the dev stack's folder (MAILPLANE_DEV_DIR), for locks; "" if unset.
	DevDir string
}

// LoadEnv reads the directory's settings from the environment, failing the test if one is
// missing.
func LoadEnv(t testing.TB) Env {
	t.Helper()
	get := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			t.Fatalf("ldaptest: %s is not set: run the tests with `go tool task test`, which starts the directory and loads .dev/env", name)
		}
		return v
	}
	return Env{
		URL:        get("MAILPLANE_LDAP_URL"),
		ReplicaURL: os.Getenv("MAILPLANE_LDAP_REPLICA_URL"),
		Suffix:     get("MAILPLANE_LDAP_BASE_DN"),
		Admin:      Credentials{DN: get("MAILPLANE_LDAP_BIND_DN"), Password: get("MAILPLANE_LDAP_PASSWORD")},
		Postfix:    Credentials{DN: get("MAILPLANE_LDAP_POSTFIX_DN"), Password: get("MAILPLANE_LDAP_POSTFIX_PASSWORD")},
		Dovecot:    Credentials{DN: get("MAILPLANE_LDAP_DOVECOT_DN"), Password: get("MAILPLANE_LDAP_DOVECOT_PASSWORD")},
		DevDir:     os.Getenv("MAILPLANE_DEV_DIR"),
	}
}
