package main

import (
	"context"
	"flag"
	"fmt"
	"os/exec"
	"time"

	"mailplane/projections/opendkim"
)

const dkimUsage = `usage: mailplane dkim render --dir DIR [--every DURATION] [--reload COMMAND]

Writes every domain's active DKIM key as OpenDKIM's files under DIR: KeyTable, SigningTable
(refile form) and keys/<domain>/<selector>.private (mode 0600). Needs DATABASE_URL and
MAILPLANE_MASTER_KEY_FILE: the keys are stored sealed and opened here.
  --every D     render again every D (e.g. 30s) until stopped; otherwise once
  --reload CMD  run CMD (through sh -c) after a render that changed something,
                e.g. "pkill -USR1 -x opendkim"
`

func dkimCommand(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "render" {
		fmt.Fprint(e.stderr, dkimUsage)
		return exitCode(2)
	}
	fs := flag.NewFlagSet("dkim render", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, dkimUsage) }
	dir := fs.String("dir", "", "")
	every := fs.Duration("every", 0, "")
	reload := fs.String("reload", "", "")
	if err := fs.Parse(args[1:]); err != nil || *dir == "" || fs.NArg() != 0 {
		fs.Usage()
		return exitCode(2)
	}
	pool, reg, err := e.poolAndRegistry(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	svc, _, err := e.service(pool, reg)
	if err != nil {
		return err
	}
	for {
		keys, err := svc.SigningKeys(ctx)
		if err != nil {
			return err
		}
		render := make([]opendkim.Key, len(keys))
		for i, k := range keys {
			render[i] = opendkim.Key{Domain: k.Domain, Selector: k.Selector, PrivateKey: k.PrivateKey}
		}
		res, err := opendkim.Render(*dir, render)
		for _, k := range keys {
			clear(k.PrivateKey)
		}
		if err != nil {
			return err
		}
		if res.Changed {
			fmt.Fprintf(e.stdout, "dkim: rendered %d keys into %s\n", res.Keys, *dir)
			if *reload != "" {
				if out, err := exec.CommandContext(ctx, "sh", "-c", *reload).CombinedOutput(); err != nil {
					return fmt.Errorf("reload: %w: %s", err, out)
				}
			}
		}
		if *every <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*every):
		}
	}
}
