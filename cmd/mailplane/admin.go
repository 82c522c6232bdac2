package main

import (
	"context"
	"flag"
	"fmt"

	"mailplane/migrations"
)

// admin holds operator commands that work on the database directly (the API needs an admin to
// exist first).
func admin(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "bootstrap" {
		fmt.Fprintln(e.stderr, "usage: mailplane admin bootstrap --email E --password P")
		return exitCode(2)
	}
	fs := flag.NewFlagSet("admin bootstrap", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	email := fs.String("email", "", "the global admin's address (its domain is created if missing)")
	password := fs.String("password", "", "the admin's password")
	if err := fs.Parse(args[1:]); err != nil {
		return exitCode(2)
	}
	if *email == "" || *password == "" {
		fmt.Fprintln(e.stderr, "admin bootstrap: --email and --password are required")
		return exitCode(2)
	}
	pool, err := e.pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrations.Up(ctx, pool, e.logger); err != nil {
		return err
	}
	reg, err := registry()
	if err != nil {
		return err
	}
	svc, _, err := e.service(pool, reg)
	if err != nil {
		return err
	}
	created, err := svc.Bootstrap(ctx, *email, *password)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(e.stdout, "created global admin %s\n", *email)
	} else {
		fmt.Fprintf(e.stdout, "global admin %s already exists\n", *email)
	}
	return nil
}
