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
	"time"

	"mailplane/eventstore"
	"mailplane/readcheck"
)

// verify checks every hash chain and every anchor (the database's, and an exported copy's with
// --anchors); it exits 1 when anything does not hold.
func verify(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	anchorsFile := fs.String("anchors", "", "also check against this exported copy of the anchors (JSON lines: mailplane anchors export)")
	readModels := fs.Bool("read-models", false, "instead, check every Postgres read-model row against the events (up to each projection's checkpoint)")
	schema := fs.String("schema", "public", "with --read-models: the schema whose read-model tables are checked")
	asJSON := fs.Bool("json", false, "with --read-models: print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	if *readModels {
		return verifyReadModels(ctx, e, *schema, *asJSON)
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
	started := time.Now()
	rep, err := store.Verify(ctx)
	if err != nil {
		return err
	}
	if rep.RekeyPending {
		const msg = "NOT VERIFIED: the hash chains from before keyed hashing wait to be re-keyed: run mailplane migrate"
		fmt.Fprintln(e.stdout, msg)
		recordRun(ctx, e, store, eventstore.VerifyRun{Kind: eventstore.VerifyChains, StartedAt: started, Summary: msg})
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
	run := eventstore.VerifyRun{Kind: eventstore.VerifyChains, StartedAt: started, OK: rep.OK() && arep.OK(),
		Summary: fmt.Sprintf("%d events in %d streams, %d anchors: every hash chain and anchor holds", rep.Events, rep.Streams, arep.Anchors)}
	for _, b := range rep.Broken {
		run.Problems = append(run.Problems, fmt.Sprintf("BROKEN: %s", b))
	}
	for _, p := range arep.Problems {
		run.Problems = append(run.Problems, fmt.Sprintf("ANCHOR: %s", p))
	}
	if !run.OK {
		run.Summary = fmt.Sprintf("%d events in %d streams, %d anchors: %d stream(s) and %d anchor finding(s): history was tampered with",
			rep.Events, rep.Streams, arep.Anchors, len(rep.Broken), len(arep.Problems))
	}
	recordRun(ctx, e, store, run)
	if !run.OK {
		fmt.Fprintf(e.stdout, "%d stream(s) and %d anchor finding(s): history was tampered with\n", len(rep.Broken), len(arep.Problems))
		return exitCode(1)
	}
	return nil
}

// recordRun keeps a verification's outcome for GET /api/v1/verify-runs and the panel. A run
// whose record fails (a read-only replica, say) still reports and exits as it found: the
// warning says it was not kept.
func recordRun(ctx context.Context, e *env, store *eventstore.Postgres, run eventstore.VerifyRun) {
	run.FinishedAt = time.Now()
	run.Host, _ = os.Hostname()
	if _, err := store.RecordVerifyRun(ctx, run); err != nil {
		fmt.Fprintf(e.stderr, "warning: this verification's outcome was not recorded: %v\n", err)
	}
}

// verifyReadModels compares the read models with the events (package readcheck) and names the
// first differing row of each table; it exits 1 when any table differs. It needs no master
// key: nothing sealed is opened.
func verifyReadModels(ctx context.Context, e *env, schema string, asJSON bool) error {
	pool, err := e.pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	started := time.Now()
	rep, err := readcheck.Check(ctx, pool, schema)
	if err != nil {
		return err
	}
	// The live read models' outcome is kept (another schema's, a shadow copy, is not theirs).
	if schema == "public" {
		store := eventstore.NewPostgres(pool, nil) // records only: no key needed
		run := eventstore.VerifyRun{Kind: eventstore.VerifyReadModels, StartedAt: started, OK: rep.OK()}
		var rows int64
		differing := 0
		for _, t := range rep.Tables {
			rows += t.Rows
			if t.First != nil {
				differing++
				run.Problems = append(run.Problems, fmt.Sprintf("DIFFERS %s: %d of %d rows; first: %s", t.Table, t.Differences, t.Rows, t.First))
			}
		}
		run.Summary = fmt.Sprintf("%d tables, %d rows: every read-model row equals the events", len(rep.Tables), rows)
		if !run.OK {
			run.Summary = fmt.Sprintf("%d tables, %d rows: %d table(s) differ from the events", len(rep.Tables), rows, differing)
		}
		recordRun(ctx, e, store, run)
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		for _, c := range rep.Checkpoints {
			fmt.Fprintf(e.stdout, "%s: %d events up to position %d (transaction %d)", c.Projection, c.Events, c.Position, c.TransactionID)
			if c.Skipped > 0 {
				fmt.Fprintf(e.stdout, ", %d skipped by an operator", c.Skipped)
			}
			fmt.Fprintln(e.stdout)
		}
		for _, t := range rep.Tables {
			if t.Absent {
				fmt.Fprintf(e.stdout, "absent  %s.%s: not checked\n", schema, t.Table)
				continue
			}
			if t.Skipped != "" {
				fmt.Fprintf(e.stdout, "skipped %s.%s: %s\n", schema, t.Table, t.Skipped)
				continue
			}
			if t.First == nil {
				fmt.Fprintf(e.stdout, "ok      %s.%s: %d rows\n", schema, t.Table, t.Rows)
				continue
			}
			fmt.Fprintf(e.stdout, "DIFFERS %s.%s: %d of %d rows; first: %s\n", schema, t.Table, t.Differences, t.Rows, t.First)
		}
	}
	if !rep.OK() {
		if !asJSON {
			fmt.Fprintln(e.stdout, "the read models differ from the events")
		}
		return exitCode(1)
	}
	if !asJSON {
		fmt.Fprintln(e.stdout, "every read-model row equals the events")
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
