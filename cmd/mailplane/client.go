package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"
)

// The admin client: commands that talk to the HTTP API (API.md) as a logged-in administrator.
// Each resource file maps flags to request bodies and picks list columns; the request, the
// error handling and the output are here and in table.go.

// credentials are what login saves: the API it logged in to and the bearer token it got.
type credentials struct {
	URL   string `json:"url"`
	Token string `json:"token"`
	Email string `json:"email"`
}

func credentialsFile(dir string) string { return filepath.Join(dir, "credentials.json") }

func loadCredentials(dir string) (credentials, error) {
	var c credentials
	b, err := os.ReadFile(credentialsFile(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w (run mailplane login again)", credentialsFile(dir), err)
	}
	return c, nil
}

// saveCredentials replaces the file atomically; it is readable by its owner only, since the
// token is as good as the password until it expires.
func saveCredentials(dir string, c credentials) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".credentials-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), credentialsFile(dir))
}

// client sends requests to the API under base + /api/v1.
type client struct {
	base  string
	token string
	http  *http.Client
}

// response is an answer with a 2xx status.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request. body, when not nil, is sent as JSON. A status of 400 or more is
// returned as a *problemError.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body any) (response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + "/api/v1" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return response{}, fmt.Errorf("%s %s: reading the answer: %w", method, u, err)
	}
	if resp.StatusCode >= 400 {
		p := parseProblem(resp.StatusCode, b)
		if resp.StatusCode == http.StatusUnauthorized && path != "/auth/login" {
			p.hint = "log in again with: mailplane login"
		}
		return response{}, p
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// problemError is an API error (RFC 9457 problem+json, or whatever a proxy answered).
type problemError struct {
	Status int    `json:"status"`
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
	// extra are the other members of the problem (e.g. the users of a COS in use).
	extra []field
	hint  string
}

func parseProblem(status int, body []byte) *problemError {
	p := &problemError{}
	if err := json.Unmarshal(body, p); err != nil || p.Status == 0 {
		// Not a problem document: a proxy or something else answered.
		detail := strings.TrimSpace(string(body))
		if len(detail) > 300 {
			detail = detail[:300] + "…"
		}
		return &problemError{Status: status, Title: http.StatusText(status), Detail: detail}
	}
	p.Status = status
	if fields, err := flatten(body); err == nil {
		for _, f := range fields {
			switch {
			case f.path == "type", f.path == "title", f.path == "status", f.path == "detail",
				f.path == "errors", strings.HasPrefix(f.path, "errors["):
			default:
				p.extra = append(p.extra, f)
			}
		}
	}
	return p
}

func (p *problemError) Error() string {
	var b strings.Builder
	title := p.Title
	if title == "" {
		title = http.StatusText(p.Status)
	}
	fmt.Fprintf(&b, "%d %s", p.Status, title)
	if p.Detail != "" {
		fmt.Fprintf(&b, ": %s", cleanCell(p.Detail))
	}
	if p.Type != "" {
		fmt.Fprintf(&b, " (%s)", cleanCell(p.Type))
	}
	for _, e := range p.Errors {
		fmt.Fprintf(&b, "\n  - %s: %s", cleanCell(e.Field), cleanCell(e.Message))
	}
	for _, f := range p.extra {
		fmt.Fprintf(&b, "\n  %s: %s", cleanCell(f.path), cleanCell(f.value))
	}
	if p.hint != "" {
		fmt.Fprintf(&b, "\n  %s", p.hint)
	}
	return b.String()
}

// cmdline is one client command being run: its flags (every command has --url and --json)
// and, for commands that create something, the request body its flags fill in.
type cmdline struct {
	e        *env
	name     string
	synopsis string
	fs       *flag.FlagSet
	url      string
	json     bool
	body     map[string]any
}

func newCmdline(e *env, name, synopsis string) *cmdline {
	o := &cmdline{e: e, name: name, synopsis: synopsis, body: map[string]any{}}
	o.fs = flag.NewFlagSet(name, flag.ContinueOnError)
	o.fs.SetOutput(e.stderr)
	o.fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: mailplane %s %s\n", name, synopsis)
		o.fs.PrintDefaults()
	}
	o.fs.StringVar(&o.url, "url", "", "the API's base URL (default: $MAILPLANE_API_URL, else the one saved by login)")
	o.fs.BoolVar(&o.json, "json", false, "print the API's JSON instead of a table")
	return o
}

// parse reads flags and positional arguments in any order ("--" ends the flags) and wants
// min to max positional arguments (max < 0: any number).
func (o *cmdline) parse(args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := o.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitCode(0)
			}
			return nil, exitCode(2)
		}
		rest := o.fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < min {
		return nil, o.usageError("missing arguments")
	}
	if max >= 0 && len(pos) > max {
		return nil, o.usageError("unexpected argument %q", pos[max])
	}
	return pos, nil
}

// usageError prints the problem and the command's usage; the command exits 2.
func (o *cmdline) usageError(format string, args ...any) error {
	fmt.Fprintf(o.e.stderr, "mailplane %s: %s\n", o.name, fmt.Sprintf(format, args...))
	o.fs.Usage()
	return exitCode(2)
}

// baseURL picks the API: --url, else MAILPLANE_API_URL, else the URL login saved.
func (o *cmdline) baseURL(saved credentials) (string, error) {
	raw := saved.URL
	if o.e.cfg.APIURL != "" {
		raw = o.e.cfg.APIURL
	}
	if o.url != "" {
		raw = o.url
	}
	if raw == "" {
		return "", errors.New("no API URL: log in with 'mailplane login --url URL --email E', or set MAILPLANE_API_URL")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("API URL %q: want http(s)://host[:port]", raw)
	}
	return strings.TrimSuffix(strings.TrimRight(raw, "/"), "/api/v1"), nil
}

func (o *cmdline) client() (*client, error) {
	saved, err := loadCredentials(o.e.cfg.ClientTokenDir)
	if err != nil {
		return nil, err
	}
	base, err := o.baseURL(saved)
	if err != nil {
		return nil, err
	}
	return &client{base: base, token: saved.Token, http: &http.Client{Timeout: time.Minute}}, nil
}

// show reads one object and prints it.
func (o *cmdline) show(ctx context.Context, path string) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	r, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	return o.printObject(r.body)
}

func (o *cmdline) printObject(doc []byte) error {
	if o.json {
		return printJSON(o.e.stdout, doc)
	}
	return printObject(o.e.stdout, doc)
}

// send writes and prints the object the API answers with.
func (o *cmdline) send(ctx context.Context, method, path string, body any) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	r, err := c.do(ctx, method, path, nil, body)
	if err != nil {
		return err
	}
	return o.printObject(r.body)
}

// act writes and says done (with --json: prints what the API answered, if anything).
func (o *cmdline) act(ctx context.Context, method, path string, body any, done string) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	r, err := c.do(ctx, method, path, nil, body)
	if err != nil {
		return err
	}
	if o.json {
		if len(bytes.TrimSpace(r.body)) == 0 {
			return nil
		}
		return printJSON(o.e.stdout, r.body)
	}
	_, err = fmt.Fprintln(o.e.stdout, done)
	return err
}

// listOptions are the list flags of API.md: ?q=&status=&limit=&cursor=, and --all.
type listOptions struct {
	q, status, cursor string
	limit             int
	all               bool
	// extra are further query parameters of a particular list.
	extra url.Values
}

func (o *cmdline) listFlags(status bool) *listOptions {
	l := &listOptions{}
	o.fs.StringVar(&l.q, "q", "", "only items whose name or display name contains this")
	if status {
		o.fs.StringVar(&l.status, "status", "", "only items with this status")
	}
	o.fs.IntVar(&l.limit, "limit", 0, "items per page (the API's default is 50, at most 500)")
	o.fs.StringVar(&l.cursor, "cursor", "", "start at this cursor (printed when there are more items)")
	o.fs.BoolVar(&l.all, "all", false, "follow next_cursor and list every page")
	return l
}

// list prints a list (one page, or every page with --all) as a table with the columns.
func (o *cmdline) list(ctx context.Context, path string, l *listOptions, cols []column) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	q := url.Values{}
	if l.q != "" {
		q.Set("q", l.q)
	}
	if l.status != "" {
		q.Set("status", l.status)
	}
	if l.limit != 0 {
		q.Set("limit", strconv.Itoa(l.limit))
	}
	if l.cursor != "" {
		q.Set("cursor", l.cursor)
	}
	for k, vs := range l.extra {
		for _, v := range vs {
			if v != "" {
				q.Add(k, v)
			}
		}
	}
	var items []json.RawMessage
	var next *string
	for {
		r, err := c.do(ctx, http.MethodGet, path, q, nil)
		if err != nil {
			return err
		}
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor *string           `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			return fmt.Errorf("unexpected answer from the API: %w", err)
		}
		if !l.all && o.json {
			return printJSON(o.e.stdout, r.body)
		}
		items = append(items, page.Items...)
		next = page.NextCursor
		if !l.all || next == nil || *next == "" {
			break
		}
		if *next == q.Get("cursor") {
			return fmt.Errorf("the API answered the same cursor twice (%s)", *next)
		}
		q.Set("cursor", *next)
	}
	if o.json {
		if items == nil {
			items = []json.RawMessage{}
		}
		b, err := json.Marshal(map[string]any{"items": items, "next_cursor": nil})
		if err != nil {
			return err
		}
		return printJSON(o.e.stdout, b)
	}
	if err := printList(o.e.stdout, cols, items); err != nil {
		return err
	}
	if next != nil && *next != "" {
		fmt.Fprintf(o.e.stderr, "more items: add --all, or --cursor %s\n", *next)
	}
	return nil
}

// kind is how a setting's text becomes its JSON value.
type kind int

const (
	text kind = iota
	integer
	boolean
	// addresses is a comma-separated list, sent as an array of strings.
	addresses
)

func (k kind) parse(s string) (any, error) {
	switch k {
	case integer:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return n, nil
	case boolean:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", s)
		}
		return b, nil
	case addresses:
		out := []string{}
		for _, a := range strings.Split(s, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
		return out, nil
	}
	return s, nil
}

// setPath sets a dotted path (limits.max_accounts) in a JSON object, creating the objects on
// the way.
func setPath(m map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[p] = sub
		}
		m = sub
	}
	m[parts[len(parts)-1]] = v
}

// bodyFlag is a flag that sets a member of the request body; a flag not given sends nothing,
// so the server's default or the inherited value applies.
type bodyFlag struct {
	body map[string]any
	path string
	kind kind
}

func (f bodyFlag) String() string     { return "" }
func (f bodyFlag) IsBoolFlag() bool   { return f.kind == boolean }
func (f bodyFlag) Set(s string) error { return f.set(s) }

func (f bodyFlag) set(s string) error {
	v, err := f.kind.parse(s)
	if err != nil {
		return err
	}
	setPath(f.body, f.path, v)
	return nil
}

// field adds a flag that fills the body member at path.
func (o *cmdline) field(name, path string, k kind, usage string) {
	o.fs.Var(bodyFlag{body: o.body, path: path, kind: k}, name, usage)
}

// patch turns key=value arguments into a JSON merge patch. "key=" sends null, which clears an
// override so the inherited value applies again.
func (o *cmdline) patch(pairs []string, keys map[string]kind) (map[string]any, error) {
	body := map[string]any{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		kd, known := keys[k]
		if !ok || !known {
			return nil, o.usageError("%q: want key=value with a key of %s", p, strings.Join(sortedKeys(keys), ", "))
		}
		if v == "" {
			setPath(body, k, nil)
			continue
		}
		val, err := kd.parse(v)
		if err != nil {
			return nil, o.usageError("%s: %v", k, err)
		}
		setPath(body, k, val)
	}
	return body, nil
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// withMapKeys adds to keys the PREFIX.NAME keys that pairs use, for settings that are maps
// (features.imap=true, attributes.dept=sales); the API merges them into the current map.
func withMapKeys(keys map[string]kind, prefix string, k kind, pairs []string) map[string]kind {
	keys = maps.Clone(keys)
	for _, p := range pairs {
		if key, _, _ := strings.Cut(p, "="); strings.HasPrefix(key, prefix+".") && len(key) > len(prefix)+1 {
			keys[key] = k
		}
	}
	return keys
}

// action is one subcommand of a resource command (domain create, account alias add, ...).
type action struct {
	name     string
	synopsis string
	run      func(ctx context.Context, o *cmdline, args []string) error
}

// group makes a command of actions: it picks the action, and prints an error as
// "mailplane <command> <action>: ..." and exits 1.
func group(name string, actions []action) func(ctx context.Context, e *env, args []string) error {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "usage:\n")
		for _, a := range actions {
			fmt.Fprintf(w, "  mailplane %s %s %s\n", name, a.name, a.synopsis)
		}
	}
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) == 0 {
			usage(e.stderr)
			return exitCode(2)
		}
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			usage(e.stdout)
			return nil
		}
		for _, a := range actions {
			if a.name == args[0] {
				full := name + " " + a.name
				return finish(e, full, a.run(ctx, newCmdline(e, full, a.synopsis), args[1:]))
			}
		}
		fmt.Fprintf(e.stderr, "mailplane %s: unknown command %q\n", name, args[0])
		usage(e.stderr)
		return exitCode(2)
	}
}

// subgroup nests a group as an action (account alias add).
func subgroup(name, parent string, actions []action) action {
	g := group(parent+" "+name, actions)
	// The synopsis is the nested usage lines, so that the parent's usage lists them all.
	lines := make([]string, len(actions))
	for i, a := range actions {
		lines[i] = a.name + " " + a.synopsis
	}
	return action{name: name, synopsis: strings.Join(lines, "\n  mailplane "+parent+" "+name+" "),
		run: func(ctx context.Context, o *cmdline, args []string) error { return g(ctx, o.e, args) }}
}

// finish prints a command's error and turns it into exit code 1.
func finish(e *env, name string, err error) error {
	var code exitCode
	if err == nil || errors.As(err, &code) {
		return err
	}
	fmt.Fprintf(e.stderr, "mailplane %s: %v\n", name, err)
	return exitCode(1)
}

// seg escapes one path segment (a name or an address).
func seg(s string) string { return url.PathEscape(s) }

// login gets a token and saves it with the URL for the commands that follow.
func login(ctx context.Context, e *env, args []string) error {
	o := newCmdline(e, "login", "--url URL --email E [--password P]  (without --password it is read from standard input)")
	email := o.fs.String("email", "", "the administrator's address (default: the one saved by the last login)")
	password := o.fs.String("password", "", "the password; prefer standard input, since flags show in the process list")
	if _, err := o.parse(args, 0, 0); err != nil {
		return err
	}
	return finish(e, "login", func() error {
		saved, err := loadCredentials(e.cfg.ClientTokenDir)
		if err != nil {
			return err
		}
		base, err := o.baseURL(saved)
		if err != nil {
			return err
		}
		if *email == "" {
			*email = saved.Email
		}
		if *email == "" {
			return o.usageError("--email is required")
		}
		pw := *password
		if pw == "" {
			if pw, err = readPassword(e.stderr); err != nil {
				return err
			}
		}
		c := &client{base: base, http: &http.Client{Timeout: time.Minute}}
		r, err := c.do(ctx, http.MethodPost, "/auth/login", nil, map[string]string{"email": *email, "password": pw})
		if err != nil {
			return err
		}
		var out struct {
			Token     string    `json:"token"`
			ExpiresAt time.Time `json:"expires_at"`
		}
		if err := json.Unmarshal(r.body, &out); err != nil || out.Token == "" {
			return fmt.Errorf("unexpected answer from the API: %s", r.body)
		}
		if err := saveCredentials(e.cfg.ClientTokenDir, credentials{URL: base, Token: out.Token, Email: *email}); err != nil {
			return fmt.Errorf("saving the token: %w", err)
		}
		if o.json {
			b, _ := json.Marshal(map[string]any{"url": base, "email": *email, "expires_at": out.ExpiresAt})
			return printJSON(e.stdout, b)
		}
		fmt.Fprintf(e.stdout, "logged in to %s as %s until %s\n", base, *email, out.ExpiresAt.Local().Format(time.RFC3339))
		return nil
	}())
}

// readPassword reads the password from standard input: without echo from a terminal, else
// its first line.
func readPassword(prompt io.Writer) (string, error) {
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		fmt.Fprint(prompt, "Password: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password: give --password or write it to standard input")
	}
	return line, nil
}
