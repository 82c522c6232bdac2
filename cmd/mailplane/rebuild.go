package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"mailplane/eventstore"
	"mailplane/projections"
	"mailplane/projections/ldap"
	"mailplane/projections/postgres"
	"mailplane/readcheck"
)

const rebuildUsage = `usage:
  mailplane rebuild postgres [--page N] [--json]
      build the Postgres read models (postgres.admin and postgres.gal) afresh from position 0 in
      shadow tables (schema "rebuild") while the serve processes go on running and serving the
      live ones, catch up, then swap them in and set the checkpoints in one short transaction;
      a rebuild stopped midway goes on from where it stood when run again
  mailplane rebuild all [--page N] [--json]
      rebuild postgres, then ldap (which needs the LDAP projection stopped: see below)
  mailplane rebuild postgres.admin | postgres.gal
      empty the read model (postgres.gal: the GAL's internal entries) and rewind its checkpoint:
      the serve processes replay it from position 0 (stops the API's reads meanwhile)
  mailplane rebuild ldap [--batch N] [--json]
      make the directory equal to the events now: compare, and write only the difference
  mailplane rebuild ldap --offline --ldif FILE [--load COMMAND] [--json]
      write the whole database as LDIF for slapadd; with --load, run COMMAND FILE (which loads it
      into a fresh database and swaps it in, e.g. 'scripts/stack.sh ldap-load') before releasing
      the projection's lock
For the resets and ldap, the projection being rebuilt must not run meanwhile: stop the serve
processes that run projections (or run them with --no-projections), then retry.
`

// rebuild rebuilds one projection. postgres.admin and postgres.gal are reset (their read
// model emptied, their checkpoint rewound) for the serve processes to replay; ldap is rebuilt
// here and now.
func rebuild(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case ldap.Name:
			return rebuildLDAP(ctx, e, args[1:])
		case "postgres":
			return rebuildPostgres(ctx, e, args[1:])
		case "all":
			if err := rebuildPostgres(ctx, e, args[1:]); err != nil {
				return err
			}
			var ldapArgs []string
			if slices.Contains(args[1:], "--json") {
				ldapArgs = append(ldapArgs, "--json")
			}
			return rebuildLDAP(ctx, e, ldapArgs)
		}
	}
	fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, rebuildUsage) }
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fs.Usage()
		return exitCode(2)
	}
	pool, reg, err := e.poolAndRegistry(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	// Reset only: the serve processes replay them (the GAL entries' store is not needed here).
	all := map[string]projections.Resetter{postgres.AdminName: postgres.NewAdmin(reg),
		postgres.GALEntriesName: postgres.NewGALEntries(reg, nil)}
	p, ok := all[fs.Arg(0)]
	if !ok {
		return fmt.Errorf("no projection %q (projections: %s, %s, %s)", fs.Arg(0), postgres.AdminName, postgres.GALEntriesName, ldap.Name)
	}
	if err := projections.Rebuild(ctx, pool, p); err != nil {
		return fmt.Errorf("%w (stop the serve processes that run projections, or start them with --no-projections, then retry)", err)
	}
	fmt.Fprintf(e.stdout, "%s reset: it replays from position 0 when a serve process next runs it\n", p.Name())
	return nil
}

// shadowChecker returns the check a shadow must pass before it is swapped in: readcheck's
// independent fold of the events.
var shadowChecker = func(pool *pgxpool.Pool, _ *eventstore.Registry) postgres.ShadowChecker {
	return readChecker{pool: pool}
}

// readChecker runs readcheck.Check on the shadow schema as of the shadow's position. readcheck
// takes a schema's positions from <schema>.projection_checkpoints: that table is made, with the
// shadow's position for both projections, in the check's own REPEATABLE READ transaction, which
// is rolled back (the swap drops the shadow schema RESTRICT: nothing of the check may stay).
type readChecker struct{ pool *pgxpool.Pool }

func (c readChecker) Check(ctx context.Context, schema string, at eventstore.Position) error {
	tx, err := c.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	table := pgx.Identifier{schema, "projection_checkpoints"}.Sanitize()
	if _, err := tx.Exec(ctx, `CREATE TABLE `+table+` (name text PRIMARY KEY, transaction_id xid8 NOT NULL, position bigint NOT NULL)`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+table+` SELECT unnest($1::text[]), $2::bigint::text::xid8, $3`,
		[]string{postgres.AdminName, postgres.GALEntriesName}, int64(at.TransactionID), at.Position); err != nil {
		return err
	}
	rep, err := readcheck.Check(ctx, tx, schema)
	if err != nil {
		return err
	}
	if rep.OK() {
		return nil
	}
	var diffs []string
	for _, t := range rep.Tables {
		if t.Differences > 0 {
			d := fmt.Sprintf("%s: %d rows differ", t.Table, t.Differences)
			if t.First != nil {
				d += ", first " + t.First.String()
			}
			diffs = append(diffs, d)
		}
	}
	return errors.New(strings.Join(diffs, "; "))
}

// rebuildPostgres rebuilds the Postgres read models through shadow tables, while the serve
// processes run on.
func rebuildPostgres(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("rebuild postgres", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, rebuildUsage) }
	page := fs.Int("page", 5000, "events per shadow transaction")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		fs.Usage()
		return exitCode(2)
	}
	pool, reg, err := e.poolAndRegistry(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	// The GAL entries projection folds streams with it; reading needs no key.
	store := eventstore.NewPostgres(pool, reg)
	o := postgres.RebuildOptions{Pool: pool, Registry: reg, PageSize: *page,
		Projections: []postgres.Shadowed{postgres.ShadowedAdmin(reg), postgres.ShadowedGALEntries(reg, store)}}
	if shadowChecker != nil {
		o.Checker = shadowChecker(pool, reg)
	}
	bar := newProgressBar(e.stderr)
	o.Progress = func(p postgres.RebuildProgress) {
		bar.draw("postgres rebuild: "+fmt.Sprintf("%-5s", p.Phase), "events", p.Done, p.Total, p.Elapsed, p.Final)
	}
	sum, err := postgres.ShadowRebuild(ctx, o)
	bar.clear()
	if err != nil {
		if errors.Is(err, postgres.ErrShadowDiffers) {
			return fmt.Errorf("%w; nothing was swapped: the shadow stays in schema %q for inspection", err, postgres.ShadowSchema)
		}
		return fmt.Errorf("%w (run it again: it goes on from the shadow's recorded position)", err)
	}
	printShadowRebuild(e, sum, *asJSON)
	return nil
}

func printShadowRebuild(e *env, s *postgres.RebuildSummary, asJSON bool) {
	secs := func(d time.Duration) float64 { return d.Seconds() }
	rate := 0.0
	if t := s.Build + s.Check + s.SwapTime; t > 0 {
		rate = float64(s.Events) / t.Seconds()
	}
	if asJSON {
		before := map[string]any{}
		for n, p := range s.Before {
			before[n] = p
		}
		writeJSON(e, map[string]any{
			"head": s.Head, "events": s.Events, "swap_events": s.SwapEvents, "resumed": s.Resumed, "resumed_from": s.From,
			"checked": s.Checked, "checkpoints_before": before, "rows": s.Rows, "events_per_second": rate,
			"build_seconds": secs(s.Build), "check_seconds": secs(s.Check), "swap_seconds": secs(s.SwapTime),
		})
		return
	}
	w := e.stdout
	fmt.Fprintf(w, "postgres rebuilt to position %d (transaction %d): %s events folded (%s/s)",
		s.Head.Position, s.Head.TransactionID, thousands(s.Events), thousands(int(rate)))
	if s.Resumed {
		fmt.Fprintf(w, ", going on from position %d", s.From.Position)
	}
	fmt.Fprintf(w, "\n  build %.1fs, check %.1fs, swap %.3fs (%s events in it)\n", secs(s.Build), secs(s.Check), secs(s.SwapTime), thousands(s.SwapEvents))
	names := make([]string, 0, len(s.Rows))
	for t := range s.Rows {
		names = append(names, t)
	}
	slices.Sort(names)
	for _, t := range names {
		fmt.Fprintf(w, "  %-16s %9s rows\n", t, thousands(int(s.Rows[t])))
	}
}

func rebuildLDAP(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("rebuild ldap", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, rebuildUsage) }
	offline := fs.Bool("offline", false, "write the whole database as LDIF for slapadd instead of writing the directory")
	ldifPath := fs.String("ldif", "", "with --offline: the LDIF file to write (mode 600: it holds password hashes)")
	load := fs.String("load", "", "with --offline: a command run with the LDIF file as its last argument, while the lock is held")
	batch := fs.Int("batch", 1000, "operations per directory transaction")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		fs.Usage()
		return exitCode(2)
	}
	switch {
	case *offline && *ldifPath == "":
		fmt.Fprintln(e.stderr, "mailplane rebuild ldap --offline: --ldif FILE is required")
		return exitCode(2)
	case !*offline && (*ldifPath != "" || *load != ""):
		fmt.Fprintln(e.stderr, "mailplane rebuild ldap: --ldif and --load go with --offline")
		return exitCode(2)
	}
	cfg, ok := e.directory()
	if !ok {
		return errors.New("MAILPLANE_LDAP_URL is not set: which directory should be rebuilt?")
	}
	pool, reg, err := e.poolAndRegistry(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	keys, err := e.keyring(pool)
	if err != nil {
		return err
	}
	bar := newProgressBar(e.stderr)
	o := ldap.RebuildOptions{Directory: cfg, Pool: pool, Registry: reg, Keyring: keys, BatchOps: *batch, Progress: bar.update}
	running := func(err error) error {
		if errors.Is(err, projections.ErrRunning) {
			return fmt.Errorf("%w: a serve process runs the LDAP projection; stop the serve processes that run projections (or start them with --no-projections), then retry", err)
		}
		return err
	}
	if *offline {
		var loader func(context.Context, string) error
		if *load != "" {
			loader = func(ctx context.Context, path string) error {
				bar.clear()
				fmt.Fprintf(e.stderr, "ldap rebuild: running %s %s\n", *load, path)
				cmd := exec.CommandContext(ctx, "sh", "-c", *load+` "$1"`, "sh", path)
				cmd.Stdout, cmd.Stderr = e.stderr, e.stderr
				return cmd.Run()
			}
		}
		sum, err := ldap.RebuildOffline(ctx, o, *ldifPath, loader)
		bar.clear()
		if err != nil {
			return running(err)
		}
		printOffline(e, sum, *ldifPath, *load, *asJSON)
		return nil
	}
	sum, err := ldap.Rebuild(ctx, o)
	bar.clear()
	if err != nil {
		return running(err)
	}
	printRebuild(e, sum, *asJSON)
	return nil
}

func printRebuild(e *env, s *ldap.RebuildSummary, asJSON bool) {
	if asJSON {
		writeJSON(e, map[string]any{
			"head": s.Head, "events": s.Events, "entries": s.Entries,
			"added": s.Added, "changed": s.Changed, "deleted": s.Deleted, "unchanged": s.Unchanged,
			"added_examples": nonNil(s.AddedDNs), "changed_examples": nonNil(s.ChangedDNs), "deleted_examples": nonNil(s.DeletedDNs),
			"operations": s.Operations, "transactions": s.Transactions,
			"fold_seconds": s.Fold.Seconds(), "read_seconds": s.Read.Seconds(), "write_seconds": s.Write.Seconds(),
			"stop": stopJSON(s.Stop),
		})
		return
	}
	w := e.stdout
	fmt.Fprintf(w, "ldap rebuilt to position %d (transaction %d): %s events, %s entries\n",
		s.Head.Position, s.Head.TransactionID, thousands(s.Events), thousands(s.Entries))
	row := func(label string, n int, examples []string) {
		fmt.Fprintf(w, "  %-10s %9s\n", label, thousands(n))
		for _, dn := range examples {
			fmt.Fprintf(w, "             %s\n", dn)
		}
		if extra := n - len(examples); extra > 0 && len(examples) > 0 {
			fmt.Fprintf(w, "             … and %s more\n", thousands(extra))
		}
	}
	row("added", s.Added, s.AddedDNs)
	row("changed", s.Changed, s.ChangedDNs)
	row("deleted", s.Deleted, s.DeletedDNs)
	row("unchanged", s.Unchanged, nil)
	fmt.Fprintf(w, "  %s operations in %s transactions; fold %.1fs, read %.1fs, write %.1fs\n",
		thousands(s.Operations), thousands(s.Transactions), s.Fold.Seconds(), s.Read.Seconds(), s.Write.Seconds())
	if s.Differences() == 0 {
		fmt.Fprintln(w, "  the directory already held what the events say")
	}
	warnStop(e, s.Stop)
}

func printOffline(e *env, s *ldap.OfflineSummary, path, load string, asJSON bool) {
	if asJSON {
		writeJSON(e, map[string]any{
			"head": s.Head, "events": s.Events, "entries": s.Entries, "kept": s.Kept, "bytes": s.Bytes, "ldif": path,
			"loaded": s.Loaded, "fold_seconds": s.Fold.Seconds(), "write_seconds": s.Write.Seconds(), "load_seconds": s.Load.Seconds(),
			"stop": stopJSON(s.Stop),
		})
		return
	}
	w := e.stdout
	fmt.Fprintf(w, "ldap LDIF at position %d (transaction %d): %s events, %s entries from the events, %s copied from the directory, %s bytes in %s\n",
		s.Head.Position, s.Head.TransactionID, thousands(s.Events), thousands(s.Entries), thousands(s.Kept), thousands(int(s.Bytes)), path)
	fmt.Fprintf(w, "  fold %.1fs, LDIF %.1fs", s.Fold.Seconds(), s.Write.Seconds())
	if s.Loaded {
		fmt.Fprintf(w, ", load %.1fs (%s)\n", s.Load.Seconds(), load)
	} else {
		fmt.Fprintf(w, "\n  not loaded: load it into a fresh database and swap it in (docs/directory.md, \"Rebuilding the directory\"), keeping the LDAP projection stopped until then\n")
	}
	warnStop(e, s.Stop)
}

func warnStop(e *env, st *projections.Stop) {
	if st == nil {
		return
	}
	fmt.Fprintf(e.stderr, "warning: the rebuild went up to the event before position %d (stream %s version %d, %s): the projection stops there (%s) until an operator resumes it\n",
		st.Position, st.StreamID, st.Version, st.EventType, stopReason(st))
}

func stopReason(st *projections.Stop) string {
	if st.Error != "" {
		return string(st.Kind) + ": " + st.Error
	}
	return string(st.Kind)
}

func stopJSON(st *projections.Stop) any {
	if st == nil {
		return nil
	}
	return map[string]any{"position": st.Position, "stream": st.StreamID, "version": st.Version,
		"event_type": st.EventType, "reason": stopReason(st)}
}

func writeJSON(e *env, v any) {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// thousands writes n with thin groups of three digits (1,234,567).
func thousands(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
