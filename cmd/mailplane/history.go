package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
)

// historyCommand is `mailplane history DOMAIN [--format table|json|jsonl]`: the domain's history
// as `domain history` lists it, or with --format jsonl its export (GET …/history/export), the
// file verify-export checks.
func historyCommand(ctx context.Context, e *env, args []string) error {
	const synopsis = "DOMAIN [--format table|json|jsonl] [--out FILE] (table and json take domain history's flags)"
	o := newCmdline(e, "history", synopsis)
	format := "table"
	var out string
	// --format and --out are picked out first; the rest goes to domain history (or, for jsonl,
	// must be the domain alone).
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--format" || a == "-format" || a == "--out" || a == "-out":
			if i+1 == len(args) {
				return o.usageError("%s needs a value", a)
			}
			if a == "--format" || a == "-format" {
				format = args[i+1]
			} else {
				out = args[i+1]
			}
			i++
		case strings.HasPrefix(a, "--format=") || strings.HasPrefix(a, "-format="):
			_, format, _ = strings.Cut(a, "=")
		case strings.HasPrefix(a, "--out=") || strings.HasPrefix(a, "-out="):
			_, out, _ = strings.Cut(a, "=")
		default:
			rest = append(rest, a)
		}
	}
	switch format {
	case "table", "json":
		if out != "" {
			return o.usageError("--out goes with --format jsonl")
		}
		if format == "json" {
			rest = append(rest, "--json")
		}
		return finish(e, "history", domainHistory(ctx, o, rest))
	case "jsonl":
		pos, err := o.parse(rest, 1, 1)
		if err != nil {
			return err
		}
		return finish(e, "history", exportHistory(ctx, o, pos[0], out))
	default:
		return o.usageError("--format must be table, json or jsonl")
	}
}

// exportHistory copies the export to out (standard output when ""), as it arrives. A file is
// written beside its final name and renamed once complete, so that a cut-off download never
// sits under the name an auditor was promised.
func exportHistory(ctx context.Context, o *cmdline, domainName, out string) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	c.http.Timeout = 0 // a long history takes as long as it takes; ctx still ends it
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/domains/"+seg(domainName)+"/history/export", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/jsonl, application/problem+json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return parseProblem(resp.StatusCode, b)
	}
	var w io.Writer = o.e.stdout
	var tmp *os.File
	if out != "" {
		tmp, err = os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name()) // fails harmlessly once renamed
		w = tmp
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		if tmp != nil {
			tmp.Close()
		}
		return fmt.Errorf("the export was cut short: %w", err)
	}
	if tmp == nil {
		return nil
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// auditKey is what an auditor holds to check exports offline: the chain key (recomputes the
// keyed hash chains) and the anchors' public key (verifies their signatures). Neither decrypts a
// secret or signs an anchor; the master key they come from stays with the installation.
type auditKey struct {
	ChainKey        string `json:"chain_key"`
	AnchorPublicKey string `json:"anchor_public_key"`
}

// auditKeyCommand writes the audit key from the master key (MAILPLANE_MASTER_KEY_FILE); it
// needs no database.
func auditKeyCommand(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("audit-key", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	out := fs.String("out", "", "write to this file (mode 0600) instead of standard output")
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	master, err := e.masterKey()
	if err != nil {
		return err
	}
	k, err := deriveAuditKey(master)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *out == "" {
		_, err = e.stdout.Write(b)
		return err
	}
	return os.WriteFile(*out, b, 0o600)
}

func deriveAuditKey(master []byte) (auditKey, error) {
	secret, err := keyring.Derive(master, eventstore.KeyPurpose)
	if err != nil {
		return auditKey{}, err
	}
	seed, err := keyring.Derive(master, eventstore.AnchorKeyPurpose)
	if err != nil {
		return auditKey{}, err
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	return auditKey{ChainKey: hex.EncodeToString(eventstore.ChainKey(secret)), AnchorPublicKey: hex.EncodeToString(pub)}, nil
}

func readAuditKey(path string) ([]byte, ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var k auditKey
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	chainKey, err1 := hex.DecodeString(k.ChainKey)
	pub, err2 := hex.DecodeString(k.AnchorPublicKey)
	if err := errors.Join(err1, err2); err != nil || len(chainKey) != 32 || len(pub) != ed25519.PublicKeySize {
		return nil, nil, fmt.Errorf("%s: want chain_key (32 bytes) and anchor_public_key (32 bytes) in hex, as mailplane audit-key writes them", path)
	}
	return chainKey, ed25519.PublicKey(pub), nil
}

// verifyExport checks an export offline: no database, no server, no master key.
func verifyExport(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("verify-export", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	anchorsFile := fs.String("anchors", "", "the anchors as kept apart from the database (mailplane anchors export); without it only the export's own are used")
	keyFile := fs.String("audit-key", "", "the audit key (mailplane audit-key): chain key and anchor public key")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: mailplane verify-export FILE --audit-key KEYFILE [--anchors ANCHORS]")
		fs.PrintDefaults()
	}
	// The file may come before or after the flags.
	var file string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 || file == "" {
		fs.Usage()
		return exitCode(2)
	}
	if *keyFile == "" {
		fmt.Fprintln(e.stderr, "mailplane verify-export: --audit-key is required: the chains are keyed (see docs/operations.md)")
		return exitCode(2)
	}
	chainKey, pub, err := readAuditKey(*keyFile)
	if err != nil {
		return err
	}
	check := eventstore.ExportCheck{ChainKey: chainKey, PublicKey: pub}
	if *anchorsFile != "" {
		if check.Anchors, err = readAnchors(*anchorsFile); err != nil {
			return err
		}
		if check.Anchors == nil {
			check.Anchors = []eventstore.Anchor{}
		}
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	check.InDomain = domain.StreamInDomain
	rep, err := eventstore.VerifyExport(f, check)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "export of %s through position %d.%d: %d events in %d streams\n",
		rep.Domain, rep.Through.TransactionID, rep.Through.Position, rep.Events, rep.Streams)
	fmt.Fprintf(e.stdout, "%d anchors (key %s) pin %d events; %d after the last anchor are vouched for by their chains only\n",
		rep.Anchors, hex.EncodeToString(pub), rep.Covered, rep.Unanchored)
	if rep.Unsigned {
		fmt.Fprintln(e.stdout, "WARNING: the end line is not signed (the server had no anchor key): positions, the header and lines after the last anchor are vouched for by nothing")
	}
	if rep.OwnAnchors {
		fmt.Fprintln(e.stdout, "WARNING: checked against the export's own anchors only: give --anchors to check against your copy")
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(e.stdout, "FAILED: %s\n", p)
	}
	if !rep.OK() {
		fmt.Fprintf(e.stdout, "%d finding(s): the export does not hold\n", len(rep.Problems))
		return exitCode(1)
	}
	fmt.Fprintln(e.stdout, "the export holds: every chain link, anchor signature and anchored head checks, and the signed end line covers every line")
	return nil
}
