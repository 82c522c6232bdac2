// Command mailplane is the one binary: the server (serve), its operations (migrate, verify) and
// an admin client for the HTTP API.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: mailplane <command> [flags]

server and operations:
  serve      run the API, the projections and the workers
  migrate    apply database migrations
  verify     check every hash chain and every signed anchor (exit 1 on tampering)
             [--anchors FILE] also against an exported copy of the anchors
             --read-models [--schema S] [--json]: instead, every read-model row against the events
             (exit 1 naming the first differing row of each table)
  anchors export [--after SEQ] [--out FILE]   the signed anchors as JSON lines
  audit-key  [--out FILE]   what an auditor needs to check exports offline: the chain key and the
             anchors' public key, derived from the master key (no database)
  verify-export FILE --audit-key KEYFILE [--anchors ANCHORS]   check a history export offline
             (no database, no master key; exit 1 naming each failure)
  rebuild    postgres|all: build the Postgres read models afresh beside the live ones, swap them in
             postgres.admin: empty its read model so that it replays from position 0
             ldap [--offline --ldif FILE [--load CMD]]: make the directory equal to the events
  after-restore   after a logical dump was restored into another cluster: rewrite the events'
             transaction ids into its order, reset the checkpoints (then: rebuild all)
  projections status|resume|resolve   projections' state; resume a stopped one; resolve dead letters
  admin bootstrap --email E --password P   create the first global admin
  dkim render --dir DIR [--every D] [--reload CMD]   the domains' DKIM keys as OpenDKIM's files

admin client (talks to the HTTP API; every command takes --url, reads and writes take --json):
  login --url URL --email E [--password P]   get a token, saved under $MAILPLANE_CONFIG_DIR
  history  DOMAIN [--format table|json|jsonl] [--out FILE]   a domain's history; jsonl: its export
  domain   create|list|show|history|quota
  account  create|list|show|history|set|alias add|alias remove|delete|import|export
  list     create|list|show|set|delete|members add|members remove|members list|owners add|owners remove|
           aliases add|aliases remove|dynamic|static
  resource create|list|show|set|delete
  cos      create|list|show|set|delete
  config   show|set
  service-token create|revoke   the mail store's token (role mailstore: it reports mailbox usage)
  token    create|list|revoke   API tokens for scripts: your rights, narrowed to domains and kinds, until they expire

run 'mailplane <command> -h' for a command's flags
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, err := configFromEnv()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	logger, err := newLogger(cfg.LogFormat, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	env := &env{cfg: cfg, logger: logger, stdout: stdout, stderr: stderr}
	cmd, rest := args[0], args[1:]
	handler, ok := subcommands[cmd]
	if !ok {
		fmt.Fprintf(stderr, "mailplane: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err := handler(ctx, env, rest); err != nil {
		if code, ok := err.(exitCode); ok {
			return int(code)
		}
		fmt.Fprintf(stderr, "mailplane %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// exitCode ends a command with that code without printing anything more.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit %d", int(c)) }

var subcommands = map[string]func(ctx context.Context, e *env, args []string) error{
	"serve":         serve,
	"migrate":       migrate,
	"verify":        verify,
	"verify-export": verifyExport,
	"audit-key":     auditKeyCommand,
	"history":       historyCommand,
	"anchors":       anchorsCommand,
	"admin":         admin,
	"rebuild":       rebuild,
	"after-restore": afterRestore,
	"dkim":          dkimCommand,
	"projections":   projectionsCommand,
	"login":         login,
	"domain":        domainCommand,
	"account":       accountCommand,
	"list":          listCommand,
	"resource":      resourceCommand,
	"cos":           cosCommand,
	"config":        configCommand,
	"service-token": serviceTokenCommand,
	"token":         tokenCommand,
}
