package main

import (
	"context"
	"flag"
	"fmt"
	"os/user"

	"github.com/jackc/pgx/v5"

	"mailplane/eventstore"
	"mailplane/projections"
	"mailplane/projections/ldap"
	"mailplane/projections/postgres"
)

const afterRestoreUsage = `usage: mailplane after-restore [--actor WHO] [--json]
  After a logical dump (pg_dump) was restored into another cluster, before any serve starts:
  applies pending migrations, rewrites the events' transaction ids into the new cluster's order
  (keeping the old order exactly), forgets every projection's checkpoint, and moves the stops,
  idempotency records and anchors along. Then rebuild: mailplane rebuild all (docs/operations.md,
  "Backup and restore").
`

// afterRestore is step 2 of the restore runbook: the restored events keep the old cluster's
// transaction ids, which the readers' (transaction_id, position) order and gap-safe horizon
// compare with the new cluster's: rewritten, they sort before anything written from now on.
func afterRestore(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("after-restore", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, afterRestoreUsage) }
	def := ""
	if u, err := user.Current(); err == nil {
		def = u.Username
	}
	actor := fs.String("actor", def, "who restored, for the record (default: the OS user)")
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
	if err := e.migrateAll(ctx, pool, reg); err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	// No process may run a projection meanwhile: hold every projection's lock (session locks,
	// released when the connection goes back).
	names := append(projectionNames(), ldap.Name)
	for _, n := range names {
		var held bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, projections.LockKey(n)).Scan(&held); err != nil {
			return err
		}
		if !held {
			return fmt.Errorf("%w: %s; stop every serve process first", projections.ErrRunning, n)
		}
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock_all()`) }()

	burned, err := eventstore.PrepareRewrite(ctx, pool)
	if err != nil {
		return err
	}
	var sum eventstore.RewriteSummary
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if sum, err = eventstore.RewriteOrder(ctx, tx, *actor); err != nil {
			return err
		}
		if err := projections.ForgetOrder(ctx, tx, eventstore.XidRewriteTable); err != nil {
			return err
		}
		return postgres.ForgetOrder(ctx, tx)
	})
	if err != nil {
		return err
	}
	sum.Burned = burned
	if *asJSON {
		writeJSON(e, map[string]any{"events": sum.Events, "transactions": sum.Transactions,
			"max_rewritten": sum.MaxRewritten, "burned": sum.Burned, "anchors": sum.Anchors})
		return nil
	}
	fmt.Fprintf(e.stdout, "rewrote %s events of %s transactions into transaction ids 1 to %d (%d ids used up first); %s anchors placed in the new order; checkpoints reset\n",
		thousands(int(sum.Events)), thousands(int(sum.Transactions)), sum.MaxRewritten, sum.Burned, thousands(int(sum.Anchors)))
	fmt.Fprintln(e.stdout, "next: mailplane rebuild all (the directory too), then start serve, then mailplane verify")
	return nil
}
