package main

import (
	"context"
	"flag"
	"fmt"

	"mailplane/eventstore"
)

// verify walks every hash chain; it exits 1 when any chain is broken.
func verify(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	pool, err := e.pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	rep, err := eventstore.NewPostgres(pool, nil).Verify(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "verified %d events in %d streams\n", rep.Events, rep.Streams)
	if rep.OK() {
		fmt.Fprintln(e.stdout, "every hash chain holds")
		return nil
	}
	for _, b := range rep.Broken {
		fmt.Fprintf(e.stdout, "BROKEN: %s\n", b)
	}
	fmt.Fprintf(e.stdout, "%d stream(s) tampered with\n", len(rep.Broken))
	return exitCode(1)
}
