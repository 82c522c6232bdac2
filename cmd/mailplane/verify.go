package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"mailplane/eventstore"
)

// verify checks every hash chain and every anchor (the database's, and an exported copy's with
// --anchors); it exits 1 when anything does not hold.
func verify(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	anchorsFile := fs.String("anchors", "", "also check against this exported copy of the anchors (JSON lines: mailplane anchors export)")
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	var external []eventstore.Anchor
	if *anchorsFile != "" {
		var err error
		if external, err = readAnchors(*anchorsFile); err != nil {
			return err
		}
	}
	pool, err := e.pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := e.store(pool, nil)
	if err != nil {
		return err
	}
	anchors, err := e.anchors(pool)
	if err != nil {
		return err
	}
	rep, err := store.Verify(ctx)
	if err != nil {
		return err
	}
	if rep.RekeyPending {
		fmt.Fprintln(e.stdout, "NOT VERIFIED: the hash chains from before keyed hashing wait to be re-keyed: run mailplane migrate")
		return exitCode(1)
	}
	fmt.Fprintf(e.stdout, "verified %d events in %d streams\n", rep.Events, rep.Streams)
	if rep.OK() {
		fmt.Fprintln(e.stdout, "every hash chain holds")
	}
	for _, b := range rep.Broken {
		fmt.Fprintf(e.stdout, "BROKEN: %s\n", b)
	}
	arep, err := store.VerifyAnchors(ctx, anchors.PublicKey(), external)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "checked %d anchors (key %s)", arep.Anchors, hex.EncodeToString(anchors.PublicKey()))
	if *anchorsFile != "" {
		fmt.Fprintf(e.stdout, ", %d of them from %s", len(external), *anchorsFile)
	}
	fmt.Fprintln(e.stdout)
	if arep.OK() {
		fmt.Fprintln(e.stdout, "every anchor holds")
	}
	for _, p := range arep.Problems {
		fmt.Fprintf(e.stdout, "ANCHOR: %s\n", p)
	}
	if arep.Unanchored > 0 {
		fmt.Fprintf(e.stdout, "%d events after the last anchor are not covered by one yet\n", arep.Unanchored)
	}
	if !rep.OK() || !arep.OK() {
		fmt.Fprintf(e.stdout, "%d stream(s) and %d anchor finding(s): history was tampered with\n", len(rep.Broken), len(arep.Problems))
		return exitCode(1)
	}
	return nil
}

// readAnchors reads anchors exported as JSON lines.
func readAnchors(path string) ([]eventstore.Anchor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []eventstore.Anchor
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var a eventstore.Anchor
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n, err)
		}
		out = append(out, a)
	}
	return out, sc.Err()
}

// anchorsCommand exports the anchors as JSON lines, for an operator to keep them where the
// database's owner cannot rewrite them.
func anchorsCommand(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "export" {
		fmt.Fprintln(e.stderr, "usage: mailplane anchors export [--after SEQ] [--out FILE]")
		return exitCode(2)
	}
	fs := flag.NewFlagSet("anchors export", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	after := fs.Int64("after", 0, "only anchors after this sequence number")
	out := fs.String("out", "", "append to this file instead of writing to standard output")
	if err := fs.Parse(args[1:]); err != nil {
		return exitCode(2)
	}
	pool, err := e.pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	list, err := eventstore.ListAnchors(ctx, pool, *after)
	if err != nil {
		return err
	}
	var w io.Writer = e.stdout
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	enc := json.NewEncoder(w)
	for _, a := range list {
		if err := enc.Encode(a); err != nil {
			return err
		}
	}
	return nil
}
