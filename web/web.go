// Package web is the admin panel mailplane serves at "/": server-rendered pages whose forms
// post to the panel's own handlers, which call the admin API in process (the api.Server's
// http.Handler, the same routes, authorisation and problem documents as /api/v1) with the
// signed-in administrator's bearer token. There is no second backend and no Node step: the
// templates and static files are embedded, so `go build` alone ships the panel.
package web

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// SessionCookie is the cookie the panel keeps the API's session token in. It is the API's own
// cookie name (api.sessionCookie) at Path "/", so that River UI under /riverui, which reads it,
// opens for a global administrator signed in here.
const SessionCookie = "mailplane_session"

// loginCookie binds the sign-in form's CSRF token to the browser before there is a session.
const loginCookie = "mailplane_login"

// csp forbids inline script and style (the panel has neither), other origins, framing and
// forms posting elsewhere.
const csp = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// Config is what the panel needs.
type Config struct {
	// API is the admin API's handler (api.Server.Handler()); pages call it in process and every
	// path the panel does not serve (/api/, /riverui, /healthz...) goes to it.
	API    http.Handler
	Logger *slog.Logger
	// CSRFKey signs the forms' CSRF tokens; nil draws a random key (forms open across a
	// restart then answer 403 and must be reloaded).
	CSRFKey []byte
}

// Panel serves the pages.
type Panel struct {
	api    http.Handler
	log    *slog.Logger
	key    []byte
	pages  map[string]*template.Template
	static http.Handler
}

// New parses the templates.
func New(cfg Config) (*Panel, error) {
	if cfg.API == nil {
		return nil, errors.New("web: no API handler")
	}
	p := &Panel{api: cfg.API, log: cfg.Logger, key: cfg.CSRFKey, pages: map[string]*template.Template{}}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if len(p.key) == 0 {
		p.key = make([]byte, 32)
		if _, err := rand.Read(p.key); err != nil {
			return nil, err
		}
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if base == "layout.html" || base == "parts.html" {
			continue
		}
		// parts.html holds the pieces several pages share (address sets, text areas).
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", base, err)
		}
		p.pages[strings.TrimSuffix(base, ".html")] = t
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	p.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	return p, nil
}

// Handler serves the panel's pages and passes every other path to the API.
func (p *Panel) Handler() http.Handler {
	m := http.NewServeMux()
	m.Handle("GET /static/", p.static)
	m.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/domains", http.StatusSeeOther)
	})
	m.HandleFunc("GET /login", p.loginPage)
	m.HandleFunc("POST /login", p.login)
	p.routes(m)
	m.Handle("/", p.api)
	return m
}

// page routes a handler that needs a session; unsafe methods must carry the session's CSRF token.
func (p *Panel) page(m *http.ServeMux, pattern string, h func(*call) error) {
	m.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		headers(w)
		c, err := r.Cookie(SessionCookie)
		if err != nil || c.Value == "" {
			p.toLogin(w, r)
			return
		}
		cl := &call{p: p, w: w, r: r, token: c.Value}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := r.ParseMultipartForm(4 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
				http.Error(w, "bad form", http.StatusBadRequest)
				return
			}
			if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(p.csrf("session", c.Value))) {
				p.refuse(w)
				return
			}
		}
		if err := h(cl); err != nil {
			if errors.Is(err, errSignedOut) {
				p.toLogin(w, r)
				return
			}
			// The API refusing a page's read (another domain's page for a domain administrator,
			// a name that does not exist) is an answer to show, not a failure of the panel.
			var refused *apiError
			if errors.As(err, &refused) && (refused.pr.Status == http.StatusForbidden || refused.pr.Status == http.StatusNotFound) {
				v := &View{Title: refused.pr.Title, Problem: refused.pr}
				if err := cl.render(refused.pr.Status, "refused", v); err != nil {
					p.log.Error("panel refusal page", "path", r.URL.Path, "err", err)
				}
				return
			}
			p.log.Error("panel page", "path", r.URL.Path, "err", err)
			http.Error(w, "the panel could not show this page: "+err.Error(), http.StatusInternalServerError)
		}
	})
}

func (p *Panel) refuse(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	_, _ = io.WriteString(w, "403 Forbidden: this form's CSRF token is missing or wrong; reload the page and try again.\n")
}

func (p *Panel) toLogin(w http.ResponseWriter, r *http.Request) {
	next := ""
	if r.Method == http.MethodGet {
		next = "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	http.Redirect(w, r, "/login"+next, http.StatusSeeOther)
}

func headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// csrf is the token of a session (or of a sign-in form's login cookie): an HMAC, so the server
// keeps nothing and a token is worthless for any other session.
func (p *Panel) csrf(purpose, secret string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(purpose + "\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func setCookie(w http.ResponseWriter, name, value string, expires time.Time) {
	// Secure always: browsers treat http://localhost and 127.0.0.1 as secure contexts, and a
	// deployment behind anything else must use TLS anyway.
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Expires: expires,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

var errSignedOut = errors.New("signed out")

// call is one page request: it reaches the API as the signed-in administrator.
type call struct {
	p     *Panel
	w     http.ResponseWriter
	r     *http.Request
	token string
}

// response is what the API answered.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Problem is an API problem document.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
	Problems []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"problems"`
}

func (r response) ok() bool { return r.Status >= 200 && r.Status < 300 }

func (r response) problem() *Problem {
	if r.ok() {
		return nil
	}
	var pr Problem
	if json.Unmarshal(r.Body, &pr) != nil || pr.Status == 0 {
		pr = Problem{Status: r.Status, Title: http.StatusText(r.Status), Detail: strings.TrimSpace(string(r.Body))}
	}
	return &pr
}

func (r response) decode(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("the API answered %d with %.200s: %w", r.Status, r.Body, err)
	}
	return nil
}

// recorder collects the API's answer in memory.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }
func (w *recorder) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}
func (w *recorder) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

// do sends one request to the API in process. body is JSON-encoded unless it is raw bytes.
func (p *Panel) do(r *http.Request, token, method, path string, body any, contentType string) response {
	// A server's requests always have a Body (http.NoBody when empty); the API reads it.
	var rd io.Reader = http.NoBody
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return response{Status: http.StatusInternalServerError, Body: []byte(err.Error())}
		}
		rd = bytes.NewReader(j)
		if contentType == "" {
			contentType = "application/json"
		}
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, rd)
	if err != nil {
		return response{Status: http.StatusInternalServerError, Body: []byte(err.Error())}
	}
	// The API sees the browser's address and agent (rate limits, sessions, the audit trail).
	req.RemoteAddr = r.RemoteAddr
	req.Host = r.Host
	req.Header.Set("User-Agent", r.UserAgent())
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := &recorder{header: http.Header{}}
	p.api.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return response{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()}
}

// api calls the API as the signed-in administrator; a 401 means the session has ended.
func (c *call) api(method, path string, body any) (response, error) {
	ct := ""
	if method == http.MethodPatch && body != nil {
		ct = "application/merge-patch+json"
	}
	res := c.p.do(c.r, c.token, method, path, body, ct)
	if res.Status == http.StatusUnauthorized {
		setCookie(c.w, SessionCookie, "", time.Unix(1, 0))
		return res, errSignedOut
	}
	return res, nil
}

// apiError is an API read a page needed and the API refused.
type apiError struct {
	path string
	pr   *Problem
}

func (e *apiError) Error() string { return fmt.Sprintf("%s: %d %s", e.path, e.pr.Status, e.pr.Detail) }

// get reads an API document into v; any failure is an error of the page (an *apiError when the
// API answered with a problem).
func (c *call) get(path string, v any) error {
	res, err := c.api(http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if !res.ok() {
		return &apiError{path: path, pr: res.problem()}
	}
	return res.decode(v)
}

// View is what every page template gets.
type View struct {
	Title   string
	CSRF    string
	Domain  string
	Tab     string
	Flash   string
	Problem *Problem
	// Errs are the problem's field errors by field name; the form shows each beside its input.
	Errs map[string]string
	// Form holds values to show again after a refused submission.
	Form map[string]string
	Data any
	// Global is true for a global administrator (the Operations link).
	Global bool
}

func (v *View) setProblem(pr *Problem) {
	v.Problem = pr
	if pr == nil {
		return
	}
	v.Errs = map[string]string{}
	for _, f := range pr.Errors {
		if v.Errs[f.Field] != "" {
			v.Errs[f.Field] += "; "
		}
		v.Errs[f.Field] += f.Message
	}
}

// render writes a page.
func (c *call) render(status int, name string, v *View) error {
	v.CSRF = c.p.csrf("session", c.token)
	if v.Form == nil {
		v.Form = map[string]string{}
	}
	return c.p.render(c.w, status, name, v)
}

func (p *Panel) render(w http.ResponseWriter, status int, name string, v *View) error {
	t, ok := p.pages[name]
	if !ok {
		return fmt.Errorf("no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return err
	}
	headers(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// redirect after a successful change (POST/redirect/GET), with a message key the page shows.
func (c *call) redirect(path, flash string) error {
	if flash != "" {
		// The message goes in the query, before a fragment (a section of the page).
		p, frag, _ := strings.Cut(path, "#")
		sep := "?"
		if strings.Contains(p, "?") {
			sep = "&"
		}
		path = p + sep + "done=" + url.QueryEscape(flash)
		if frag != "" {
			path += "#" + frag
		}
	}
	http.Redirect(c.w, c.r, path, http.StatusSeeOther)
	return nil
}

// flashes are the messages a redirect may ask for; anything else in ?done= is ignored.
var flashes = map[string]string{
	"saved":          "Saved.",
	"created":        "Created.",
	"added":          "Added.",
	"removed":        "Removed.",
	"deleted":        "Deleted.",
	"mode-changed":   "The list's mode has changed.",
	"alias-added":    "Alias added.",
	"alias-removed":  "Alias removed.",
	"session-ended":  "The session has ended.",
	"host-added":     "Virtual host added.",
	"cert-installed": "The certificate has been stored.",
	"closed":         "The domain is closed: its objects are kept, logins and delivery are refused.",
	"resumed":        "The projection resumes.",
	"gal-removed":    "The GAL and its GALSync account's configuration are removed.",
	"signed-out":     "You have signed out; the session has ended.",
}

func (c *call) view(title string) *View {
	return &View{Title: title, Flash: flashes[c.r.URL.Query().Get("done")]}
}

var funcs = template.FuncMap{
	"fid": func(name string) string { return "f-" + strings.NewReplacer(".", "-", "_", "-").Replace(name) },
	"str": func(v any) string {
		switch x := v.(type) {
		case nil:
			return ""
		case *string:
			if x == nil {
				return ""
			}
			return *x
		case float64:
			return trimFloat(x)
		default:
			return fmt.Sprint(x)
		}
	},
	"bytes": humanBytes,
	"limit": limitBytes,
	"pct": func(v any) string {
		f, ok := v.(float64)
		if !ok {
			return "—"
		}
		return fmt.Sprintf("%.1f %%", f)
	},
	"meter": func(v any) float64 {
		f, _ := v.(float64)
		if f > 100 {
			return 100
		}
		return f
	},
	"when": func(v any) string {
		s, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return s
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"path":  url.PathEscape,
	"query": url.QueryEscape,
	"eq":    func(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) },
	"seq":   func(s ...string) []string { return s },
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
	"unfielded": unfielded,
	"lines":     joinLines,
	"seconds":   func(v any) string { return seconds(v, false) },
	"millis":    func(v any) string { return seconds(v, true) },
	"label":     label,
}

func trimFloat(f float64) string {
	if f == float64(int64(f)) {
		return fmt.Sprint(int64(f))
	}
	return fmt.Sprint(f)
}

func humanBytes(v any) string {
	var n float64
	switch x := v.(type) {
	case float64:
		n = x
	case int64:
		n = float64(x)
	case nil:
		return "—"
	default:
		return fmt.Sprint(v)
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", n)
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// limitBytes shows a limit: 0 is no limit.
func limitBytes(v any) string {
	if f, ok := v.(float64); ok && f == 0 {
		return "no limit"
	}
	return humanBytes(v)
}

// unfielded are the problem's field errors that name no input of the form shown (fields lists
// the inputs); the summary lists them so that no error goes unseen.
func unfielded(v *View, fields []string) []string {
	if v.Problem == nil {
		return nil
	}
	shown := map[string]bool{}
	for _, f := range fields {
		shown[f] = true
	}
	var out []string
	for _, e := range v.Problem.Errors {
		if !shown[e.Field] {
			out = append(out, e.Field+": "+e.Message)
		}
	}
	return out
}

// label names an object of a deletion preview: its address, host or name.
func label(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Sprint(v)
	}
	for _, k := range []string{"address", "host", "name", "alias"} {
		if s, ok := m[k].(string); ok && s != "" {
			return s
		}
	}
	return fmt.Sprint(m)
}
