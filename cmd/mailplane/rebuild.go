package main

import (
	"context"
	"flag"
	"fmt"

	"mailplane/projections"
	"mailplane/projections/postgres"
)

// rebuild empties a projection's read model and rewinds its checkpoint; the running serve
// processes then replay it from position 0. The projection must not be running meanwhile.
func rebuild(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintf(e.stderr, "usage: mailplane rebuild NAME   (projections: %s)\n", postgres.AdminName)
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
		return fmt.Errorf("no projection %q (projections: %s)", fs.Arg(0), postgres.AdminName)
	}
	if err := projections.Rebuild(ctx, pool, p); err != nil {
		return fmt.Errorf("%w (stop the serve processes that run projections, or start them with --no-projections, then retry)", err)
	}
	fmt.Fprintf(e.stdout, "%s reset: it replays from position 0 when a serve process next runs it\n", p.Name())
	return nil
}
