package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os/user"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"mailplane/projections"
	"mailplane/projections/postgres"
)

// projectionNames are the projections this release runs.
func projectionNames() []string { return []string{postgres.AdminName, postgres.GALEntriesName} }

// projectionsCommand holds the operator's commands on projections. They work on the database
// directly, like rebuild, so that they still work when the API is down.
func projectionsCommand(ctx context.Context, e *env, args []string) error {
	actions := []action{
		{name: "status", synopsis: "[--json]", run: projectionsStatus},
		{name: "resume", synopsis: "NAME [--skip POSITION] [--actor WHO]", run: projectionsResume},
		{name: "resolve", synopsis: "NAME (POSITION | --all) [--actor WHO]", run: projectionsResolve},
	}
	usage := func() {
		fmt.Fprintln(e.stderr, "usage:")
		for _, a := range actions {
			fmt.Fprintf(e.stderr, "  mailplane projections %s %s\n", a.name, a.synopsis)
		}
	}
	if len(args) == 0 {
		usage()
		return exitCode(2)
	}
	for _, a := range actions {
		if a.name == args[0] {
			full := "projections " + a.name
			o := &cmdline{e: e, name: full, synopsis: a.synopsis, fs: flag.NewFlagSet(full, flag.ContinueOnError)}
			o.fs.SetOutput(e.stderr)
			o.fs.Usage = func() {
				fmt.Fprintf(e.stderr, "usage: mailplane %s %s\n", full, a.synopsis)
				o.fs.PrintDefaults()
			}
			return finish(e, full, a.run(ctx, o, args[1:]))
		}
	}
	fmt.Fprintf(e.stderr, "mailplane projections: unknown command %q\n", args[0])
	usage()
	return exitCode(2)
}

// actorFlag adds --actor, whose default is the user running the command.
func actorFlag(o *cmdline) *string {
	def := ""
	if u, err := user.Current(); err == nil {
		def = u.Username
	}
	return o.fs.String("actor", def, "who takes this action, for the audit record (default: the OS user)")
}

func projectionsStatus(ctx context.Context, o *cmdline, args []string) error {
	asJSON := o.fs.Bool("json", false, "print JSON (the shape of GET /api/v1/projections)")
	if _, err := o.parse(args, 0, 0); err != nil {
		return err
	}
	pool, err := o.e.pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	infos, err := projections.InspectKnown(ctx, pool, projectionNames()...)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(o.e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(infos)
	}
	t := newTable(o.e.stdout, "NAME", "STATE", "POSITION", "LAG EVENTS", "LAG SECONDS", "DEAD LETTERS", "RUN BY")
	for _, in := range infos {
		lag := strconv.FormatInt(in.LagEvents, 10)
		if in.LagEvents >= projections.LagLimit {
			lag += "+"
		}
		t.row(in.Name, in.State, strconv.FormatInt(in.Position, 10), lag, strconv.FormatFloat(in.LagSeconds, 'f', 1, 64),
			strconv.FormatInt(in.DeadLetters, 10), in.Holder)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, in := range infos {
		if err := printDetails(ctx, o, pool, in); err != nil {
			return err
		}
	}
	return nil
}

// printDetails prints a projection's stop and its dead letters, with what to do about them.
func printDetails(ctx context.Context, o *cmdline, pool *pgxpool.Pool, in projections.Info) error {
	w := o.e.stdout
	if st := in.Stopped; st != nil {
		fmt.Fprintf(w, "\n%s is stopped at position %d (stream %s version %d, %s), since %s, by %s:\n  %s\n",
			cleanCell(in.Name), st.Position, cleanCell(st.StreamID), st.Version, cleanCell(st.EventType),
			st.At.UTC().Format(time.RFC3339), cleanCell(st.By), cleanCell(st.Reason))
		fmt.Fprintf(w, "  once the cause is dealt with: mailplane projections resume %s [--skip %d]\n", cleanCell(in.Name), st.Position)
	}
	if in.DeadLetters == 0 {
		return nil
	}
	dead, err := projections.DeadLetters(ctx, pool, in.Name)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s has %d unresolved dead letter(s) (mailplane projections resolve %s POSITION|--all):\n",
		cleanCell(in.Name), len(dead), cleanCell(in.Name))
	t := newTable(w, "  POSITION", "STREAM", "TYPE", "ATTEMPTS", "PARKED AT", "ERROR")
	for _, d := range dead {
		t.row("  "+strconv.FormatInt(d.Position, 10), d.StreamID, d.EventType, strconv.Itoa(d.Attempts),
			d.ParkedAt.UTC().Format(time.RFC3339), d.Error)
	}
	return t.flush()
}

func projectionsResume(ctx context.Context, o *cmdline, args []string) error {
	skip := o.fs.Int64("skip", 0, "the position the projection stopped at: that event is not handed to it, now or ever")
	actor := actorFlag(o)
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	var skipped *int64
	o.fs.Visit(func(f *flag.Flag) {
		if f.Name == "skip" {
			skipped = skip
		}
	})
	pool, err := o.e.pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	st, err := projections.Resume(ctx, pool, pos[0], skipped, *actor)
	if err != nil {
		return err
	}
	if skipped != nil {
		fmt.Fprintf(o.e.stdout, "%s resumed, skipping position %d (stream %s version %d, %s)\n",
			pos[0], st.Position, cleanCell(st.StreamID), st.Version, cleanCell(st.EventType))
	} else {
		fmt.Fprintf(o.e.stdout, "%s resumed at position %d: the processes that run projections take it up within a second\n", pos[0], st.Position)
	}
	return nil
}

func projectionsResolve(ctx context.Context, o *cmdline, args []string) error {
	all := o.fs.Bool("all", false, "resolve every unresolved dead letter of the projection")
	actor := actorFlag(o)
	pos, err := o.parse(args, 1, 2)
	if err != nil {
		return err
	}
	var position *int64
	switch {
	case *all && len(pos) == 2, !*all && len(pos) == 1:
		return o.usageError("give either a POSITION or --all")
	case !*all:
		p, err := strconv.ParseInt(pos[1], 10, 64)
		if err != nil {
			return o.usageError("POSITION %q is not a number", pos[1])
		}
		position = &p
	}
	pool, err := o.e.pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	n, err := projections.Resolve(ctx, pool, pos[0], position, *actor)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.e.stdout, "%s: %d dead letter(s) resolved\n", pos[0], n)
	return nil
}
