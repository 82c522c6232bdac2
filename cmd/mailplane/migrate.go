package main

import (
	"context"
	"flag"
)

func migrate(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
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
	e.logger.Info("migrations applied")
	return nil
}
