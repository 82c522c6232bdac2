package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os/exec"
	"strings"

	"mailplane/projections"
	"mailplane/projections/ldap"
	"mailplane/projections/postgres"
)

const rebuildUsage = `usage:
  mailplane rebuild postgres.admin
      empty the read model and rewind its checkpoint: the serve processes replay it from position 0
  mailplane rebuild ldap [--batch N] [--json]
      make the directory equal to the events now: compare, and write only the difference
  mailplane rebuild ldap --offline --ldif FILE [--load COMMAND] [--json]
      write the whole database as LDIF for slapadd; with --load, run COMMAND FILE (which loads it
      into a fresh database and swaps it in, e.g. 'scripts/stack.sh ldap-load') before releasing
      the projection's lock
The projection being rebuilt must not run meanwhile: stop the serve processes that run
projections (or run them with --no-projections), then retry.
`

// rebuild rebuilds one projection. postgres.admin is reset (its read model emptied, its
// checkpoint rewound) for the serve processes to replay; ldap is rebuilt here and now.
func rebuild(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == ldap.Name {
		return rebuildLDAP(ctx, e, args[1:])
	}
	fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, rebuildUsage) }
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fs.Usage()
		return exitCode(2)
	}
	pool, err := e.pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	reg, err := registry()
	if err != nil {
		return err
	}
	all := map[string]projections.Resetter{postgres.AdminName: postgres.NewAdmin(reg)}
	p, ok := all[fs.Arg(0)]
	if !ok {
		return fmt.Errorf("no projection %q (projections: %s, %s)", fs.Arg(0), postgres.AdminName, ldap.Name)
	}
	if err := projections.Rebuild(ctx, pool, p); err != nil {
		return fmt.Errorf("%w (stop the serve processes that run projections, or start them with --no-projections, then retry)", err)
	}
	fmt.Fprintf(e.stdout, "%s reset: it replays from position 0 when a serve process next runs it\n", p.Name())
	return nil
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
	pool, err := e.pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	reg, err := registry()
	if err != nil {
		return err
	}
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
