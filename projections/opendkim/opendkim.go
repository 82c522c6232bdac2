// Package opendkim renders the domains' active DKIM keys as the files OpenDKIM signs with
// (docs/operations.md, "DKIM"): a KeyTable, a SigningTable (refile form) and one private key
// file per key. Each render replaces the previous one whole: a signer reloading at any moment
// reads either the old set or the new one, never a table naming a key file not yet written.
package opendkim

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Key is one domain's active key.
type Key struct {
	Domain     string
	Selector   string
	PrivateKey []byte // PKCS #8 PEM
}

// Files name what a render writes under its directory.
const (
	KeyTableFile     = "KeyTable"
	SigningTableFile = "SigningTable"
	KeysDir          = "keys"
)

// Result says what a render changed.
type Result struct {
	Keys    int
	Changed bool
}

// Render writes the keys under dir. Key files go to keys/<domain>/<selector>.private (mode
// 0600; the directory 0700), written before the tables that name them and removed only after
// the tables stop naming them. Files equal to what is there already are left alone, so that an
// unchanged set leaves the signer nothing to reload (Result.Changed false).
func Render(dir string, keys []Key) (Result, error) {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b Key) int { return strings.Compare(a.Domain, b.Domain) })
	res := Result{Keys: len(keys)}
	keysDir := filepath.Join(dir, KeysDir)
	if err := os.MkdirAll(keysDir, 0o700); err != nil {
		return res, fmt.Errorf("opendkim: %w", err)
	}
	var keyTable, signingTable bytes.Buffer
	keep := map[string]bool{}
	for _, k := range keys {
		if strings.ContainsAny(k.Domain+k.Selector, " \t\n:/\\") || k.Domain == "" || k.Selector == "" || strings.HasPrefix(k.Domain, ".") || strings.HasPrefix(k.Selector, ".") {
			return res, fmt.Errorf("opendkim: refusing key %q of %q: not a domain name and selector", k.Selector, k.Domain)
		}
		path := filepath.Join(keysDir, k.Domain, k.Selector+".private")
		keep[path] = true
		changed, err := writeIfChanged(path, k.PrivateKey, 0o600)
		if err != nil {
			return res, err
		}
		res.Changed = res.Changed || changed
		name := k.Selector + "._domainkey." + k.Domain
		// KeyTable: name, then domain:selector:keyfile (opendkim.conf(5)).
		fmt.Fprintf(&keyTable, "%s %s:%s:%s\n", name, k.Domain, k.Selector, path)
		// SigningTable (refile:): mail from any address of the domain signs with its key.
		fmt.Fprintf(&signingTable, "*@%s %s\n", k.Domain, name)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{KeyTableFile, keyTable.Bytes()}, {SigningTableFile, signingTable.Bytes()}} {
		changed, err := writeIfChanged(filepath.Join(dir, f.name), f.data, 0o600)
		if err != nil {
			return res, err
		}
		res.Changed = res.Changed || changed
	}
	// Only now may key files the tables no longer name go.
	err := filepath.WalkDir(keysDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || keep[path] {
			return err
		}
		res.Changed = true
		return os.Remove(path)
	})
	if err != nil {
		return res, fmt.Errorf("opendkim: %w", err)
	}
	entries, err := os.ReadDir(keysDir)
	if err != nil {
		return res, fmt.Errorf("opendkim: %w", err)
	}
	for _, e := range entries {
		// A domain left without keys leaves an empty directory behind.
		sub := filepath.Join(keysDir, e.Name())
		if left, err := os.ReadDir(sub); err == nil && len(left) == 0 {
			if err := os.Remove(sub); err != nil {
				return res, fmt.Errorf("opendkim: %w", err)
			}
		}
	}
	return res, nil
}

// writeIfChanged replaces path by data atomically (a temporary file renamed over it) unless it
// holds data already.
func writeIfChanged(path string, data []byte, mode os.FileMode) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("opendkim: %w", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tmp := path + ".tmp-" + hex.EncodeToString(b)
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return false, fmt.Errorf("opendkim: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return false, fmt.Errorf("opendkim: %w", err)
	}
	return true, nil
}

// ReadKeyTable parses a KeyTable as OpenDKIM does: each line names a key and gives
// domain:selector:keyfile. It returns the lines by name.
func ReadKeyTable(path string) (map[string][3]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string][3]string{}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		parts := strings.SplitN(value, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("opendkim: bad KeyTable line %q", line)
		}
		out[name] = [3]string{parts[0], parts[1], parts[2]}
	}
	return out, nil
}
