// Package apitest runs the whole API for tests: a fresh database, the event store, the command
// service, the admin projection and an HTTP server on loopback, with a global admin logged in.
package apitest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"mailplane/api"
	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
	"mailplane/migrations/testdb"
	"mailplane/projections"
	"mailplane/projections/postgres"
	"mailplane/workers"
)

// AdminEmail and AdminPassword are the bootstrapped global admin.
const (
	AdminEmail    = "admin@mailplane.test"
	AdminPassword = "admin-password-1"
)

// TestArgon2 keeps tests quick; the production parameters are measured by the benchmarks.
var TestArgon2 = commands.Argon2Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}

// Env is a running API.
type Env struct {
	URL      string
	Pool     *pgxpool.Pool
	Store    *eventstore.Postgres
	Commands *commands.Service
	Reads    *postgres.ReadModel
	Server   *api.Server
	// Registry and Keyring are the ones the server's store and commands use (other projections
	// under test need them).
	Registry *eventstore.Registry
	Keyring  *keyring.Keyring
	// MasterKey is the one the keyring, the store's chain key and the anchor key come from, for
	// a process of the test's own (a worker it kills) to share them; Anchors records signed
	// anchors with it, as serve's periodic job does.
	MasterKey []byte
	Anchors   *eventstore.Anchors
	// AdminToken is a global admin's bearer token.
	AdminToken string
	// Jobs inserts River jobs (an insert-only client); Workers, when the Env runs them, is the
	// client that works them.
	Jobs    *river.Client[pgx.Tx]
	Workers *river.Client[pgx.Tx]

	stopProjections func()
	// contract checks every exchange with the server against its OpenAPI document; nil for an
	// Env a test puts together itself around a server of its own.
	contract *Contract
	// callers maps the callerHeader of a request in flight to the test that sent it.
	callers sync.Map
	calls   atomic.Int64
}

// Options change the environment.
type Options struct {
	LoginLimits commands.LoginLimits
	Config      api.Config
	// Log, when set, receives every log line of the server and the projections (debug level).
	Log io.Writer
	// Now is the clock of the commands, of the certificate statuses the API shows and of the
	// renewal job (default time.Now).
	Now func() time.Time
	// Workers, when set, runs River workers for the test.
	Workers *Workers
	// MaxConns sizes the database pool (default pgxpool's: four); benchmarks give it what
	// `mailplane serve` has (32).
	MaxConns int32
	// RiverUI serves River UI under /riverui (its exchanges are River's, not checked against
	// mailplane's document).
	RiverUI bool
	// DatabaseURL, when set, is a migrated database of the test's own (on a private cluster it
	// stops and starts: migrations/pgcluster) instead of a fresh one on the shared server.
	DatabaseURL string
}

// Workers are the River workers an Env runs: notification mail through the dev stack's SMTP
// sink, certificate issuance through its Pebble (HTTP-01 answered on the shared listener of
// MAILPLANE_ACME_HTTP_PORT) and renewal.
type Workers struct {
	// SMTPAddr is where mail goes; default the sink (MAILPLANE_SMTP_ADDR).
	SMTPAddr string
	// ACME changes the CA configuration (ACMEConfig) before it is used; may be nil.
	ACME func(*workers.ACMEConfig)
	// GALTLS is the TLS client configuration of GAL resyncs (nil: the system's roots).
	GALTLS *tls.Config
	// NoACME leaves certificate issuance unconfigured and opens no HTTP-01 listener: the port
	// is one per machine, and the api package's tests, which run beside other packages', hold it.
	NoACME bool
	// HTTP01IP is the loopback address the HTTP-01 listener binds (default 127.0.0.1). Pebble
	// dials the one port of the stack on whatever address a host's A record names (SetA), so a
	// package other than api, whose tests run beside api's, binds another address and names it
	// in its hosts' records; every Env of one process must give the same.
	HTTP01IP string
}

// CertificateContact is the operator's contact the Envs' certificate mail is copied to.
const CertificateContact = "hostmaster@mailplane.test"

// New starts an API for one test.
func New(t testing.TB) *Env { return NewWith(t, Options{}) }

// NewWith starts an API with options.
func NewWith(t testing.TB, o Options) *Env {
	t.Helper()
	ctx := context.Background()
	var pool *pgxpool.Pool
	if o.MaxConns > 0 || o.DatabaseURL != "" {
		url := o.DatabaseURL
		if url == "" {
			url = testdb.NewURL(t)
		}
		pc, err := pgxpool.ParseConfig(url)
		require.NoError(t, err)
		if o.MaxConns > 0 {
			pc.MaxConns = o.MaxConns
		}
		pool, err = pgxpool.NewWithConfig(ctx, pc)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
	} else {
		pool = testdb.New(t)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	switch {
	case o.Log != nil:
		logger = slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	case os.Getenv("APITEST_LOG") != "":
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	events := domain.Events()
	evs := make([]eventstore.Event, len(events))
	for i, e := range events {
		evs[i] = e
	}
	reg, err := eventstore.NewRegistry(evs, nil)
	require.NoError(t, err)
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	storeKey, err := keyring.Derive(master, eventstore.KeyPurpose)
	require.NoError(t, err)
	store := eventstore.NewPostgres(pool, reg, eventstore.WithKey(storeKey))
	keys, err := keyring.New(pool, master)
	require.NoError(t, err)
	anchorSeed, err := keyring.Derive(master, eventstore.AnchorKeyPurpose)
	require.NoError(t, err)
	anchors, err := eventstore.NewAnchors(pool, anchorSeed)
	require.NoError(t, err)
	// Commands queue their jobs through an insert-only client; the working one, if any, is
	// another client on the same tables.
	inserter, err := workers.NewClient(pool, logger, workers.Config{}, false)
	require.NoError(t, err)
	admin := postgres.NewAdmin(reg).WithQuotaWarnings(workers.Queue{Inserter: inserter})
	waiter := projections.NewWaiter(pool, 2*time.Millisecond, admin.Name())
	svc, err := commands.New(commands.Deps{Pool: pool, Store: store, Keyring: keys, Logger: logger,
		Hasher: commands.NewHasher(TestArgon2, 0), LoginLimits: o.LoginLimits, Now: o.Now,
		Jobs: workers.Queue{Inserter: inserter}, CertificateContact: CertificateContact})
	require.NoError(t, err)

	// The GAL entries projection runs beside the admin one; reads wait for the admin one only.
	galEntries := postgres.NewGALEntries(reg, store)
	runner, err := projections.NewRunner(pool, reg, logger, projections.Config{PollInterval: 5 * time.Millisecond}, admin, galEntries)
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(runCtx) }()
	stopProjections := func() { cancel(); <-done }
	t.Cleanup(stopProjections)

	var riverUI http.Handler
	if o.RiverUI {
		uiCtx, stopUI := context.WithCancel(ctx)
		t.Cleanup(stopUI)
		riverUI, err = workers.UI(uiCtx, inserter, logger)
		require.NoError(t, err)
	}
	jobMetrics := workers.NewJobMetrics(pool, logger)
	metrics := prometheus.NewRegistry()
	require.NoError(t, metrics.Register(jobMetrics))
	reads := postgres.NewReadModel(pool)
	// The suite runs some 400 tests on 2 CPUs: a write's read-your-writes wait that is ample
	// alone (5 s) runs out under the whole suite's load and fails tests with 503
	// read-model-behind that have nothing to do with it. Tests that want the bound set it.
	if o.Config.ReadYourWritesTimeout == 0 {
		o.Config.ReadYourWritesTimeout = time.Minute
	}
	if o.Config.RequestTimeout == 0 {
		o.Config.RequestTimeout = 90 * time.Second
	}
	srv := api.NewServer(api.Deps{
		RiverUI: riverUI,
		Logger:  logger, Commands: svc, Reads: reads, Store: store,
		Waiter:      waiter,
		Projections: projections.Operator{Pool: pool, Names: []string{admin.Name(), galEntries.Name()}},
		Jobs:        workers.JobReader{DB: pool},
		Anchors:     anchors,
		Readiness:   func(context.Context) (map[string]string, error) { return nil, nil },
		// The document describes /metrics; serve it, so that it is checked like the rest.
		Metrics: metrics,
		Now:     o.Now,
	}, o.Config)
	contract, err := ServedContract(ctx, srv.Handler())
	require.NoError(t, err)
	e := &Env{Pool: pool, Store: store, Commands: svc, Reads: reads, Server: srv, contract: contract,
		Registry: reg, Keyring: keys, Jobs: inserter, MasterKey: master, Anchors: anchors,
		stopProjections: stopProjections}
	if o.Workers != nil {
		e.startWorkers(t, o, logger, jobMetrics)
	}
	hs := httptest.NewServer(e.checked(t, srv.Handler()))
	t.Cleanup(hs.Close)
	e.URL = hs.URL

	_, err = svc.Bootstrap(ctx, AdminEmail, AdminPassword)
	require.NoError(t, err)
	e.AdminToken = e.Login(t, AdminEmail, AdminPassword)
	return e
}

// startWorkers runs the River workers of o.Workers until the test ends.
func (e *Env) startWorkers(t testing.TB, o Options, logger *slog.Logger, metrics *workers.JobMetrics) {
	t.Helper()
	w := o.Workers
	smtp := w.SMTPAddr
	if smtp == "" {
		smtp = envOf(t, "MAILPLANE_SMTP_ADDR")
	}
	challenges := &workers.HTTPChallenges{DB: e.Pool}
	var issuer workers.Issuer
	if !w.NoACME {
		acmeCfg := ACMEConfig(t)
		acmeCfg.HTTP01 = challenges
		acmeCfg.Now = o.Now
		if w.ACME != nil {
			w.ACME(&acmeCfg)
		}
		acme, err := workers.NewACME(acmeCfg, e.Pool, e.Keyring, logger)
		require.NoError(t, err)
		issuer = acme
		serveChallenges(t, challenges, w.HTTP01IP, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	client, err := workers.NewClient(e.Pool, logger, workers.Config{
		Mailer:   workers.MailerConfig{Addr: smtp, From: "mailplane@mailplane.test"},
		Commands: e.Commands, Issuer: issuer, Challenges: challenges, Now: o.Now,
		FetchCooldown: 20 * time.Millisecond, GALTLS: w.GALTLS, Metrics: metrics,
	}, true)
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = client.Stop(ctx)
	})
	e.Workers = client
}

// StopProjections stops the admin projection for the rest of the test: what commands append from
// then on stays unprojected, as when a projection has fallen far behind. The admin's token keeps
// working (its account is projected already), but a write through the API that waits for the
// read models would time out: issue those through Commands.
func (e *Env) StopProjections() { e.stopProjections() }

// WaitCaughtUp waits until both Postgres projections (admin and GAL) have handled the last
// event appended so far.
func (e *Env) WaitCaughtUp(t testing.TB) {
	t.Helper()
	require.Eventually(t, func() bool {
		var behind bool
		require.NoError(t, e.Pool.QueryRow(context.Background(), `SELECT count(*) < 2 FROM projection_checkpoints c
			WHERE name IN ('postgres.admin', 'postgres.gal')
			  AND (c.transaction_id, c.position) >= (SELECT transaction_id, position FROM events
				ORDER BY transaction_id DESC, position DESC LIMIT 1)`).Scan(&behind))
		return !behind
	}, 5*time.Minute, 10*time.Millisecond, "the Postgres projections did not reach the last event")
}

// Response is an HTTP response with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as an object.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// Decode decodes the body into v.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.Body, v), "body: %s", r.Body)
}

// Problem asserts a problem+json answer with the status and returns it.
func (r Response) Problem(t testing.TB, status int) map[string]any {
	t.Helper()
	require.Equal(t, status, r.Status, "body: %s", r.Body)
	require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	p := r.JSON(t)
	require.Equal(t, float64(status), p["status"])
	require.NotEmpty(t, p["type"])
	return p
}

// FieldErrors returns the field names a validation problem lists.
func (r Response) FieldErrors(t testing.TB) []string {
	t.Helper()
	p := r.Problem(t, http.StatusBadRequest)
	var fields []string
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		fields = append(fields, e.(map[string]any)["field"].(string))
	}
	return fields
}

// Do sends a request. body may be nil, a string/[]byte (sent as is) or a value (sent as JSON).
// headers are name, value pairs.
func (e *Env) Do(t testing.TB, method, path, token string, body any, headers ...string) Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	require.NoError(t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if e.contract != nil {
		id := strconv.FormatInt(e.calls.Add(1), 10)
		e.callers.Store(id, t)
		defer e.callers.Delete(id)
		req.Header.Set(callerHeader, id)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// WithHandler serves h, another server built from e's parts (say with other limits), on
// loopback and returns an Env for it that shares e's database, services and admin token. Its
// exchanges are checked against the document like e's own.
func (e *Env) WithHandler(t testing.TB, h http.Handler) *Env {
	t.Helper()
	o := &Env{Pool: e.Pool, Store: e.Store, Commands: e.Commands, Reads: e.Reads, AdminToken: e.AdminToken,
		contract: e.contract}
	hs := httptest.NewServer(o.checked(t, h))
	t.Cleanup(hs.Close)
	o.URL = hs.URL
	return o
}

// callerHeader tells the checking handler which test sent a request through Do, so that a
// mismatch with the document fails that test (a subtest sharing its parent's Env included);
// the server never sees it.
const callerHeader = "Apitest-Caller"

// checked serves next and checks every exchange against the contract before the client sees
// the answer. A mismatch fails the test that sent the request through Do, or fallback (the
// test that made the Env) for a request sent some other way: a raw http.Client, the CLI.
func (e *Env) checked(fallback testing.TB, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var tb testing.TB = fallback
		if v, ok := e.callers.Load(r.Header.Get(callerHeader)); ok {
			tb = v.(testing.TB)
		}
		r.Header.Del(callerHeader)
		// Read the body first, so that the check sees it whole however much the handler reads.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			tb.Errorf("apitest: read the request body of %s %s: %v", r.Method, r.URL.Path, err)
		}
		req := r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)

		x := Exchange{Request: req, RequestBody: body, Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
		// River UI's pages and API are not in mailplane's document.
		riverUI := strings.HasPrefix(r.URL.Path, workers.UIPrefix+"/")
		if err := e.contract.Check(r.Context(), x); err != nil && !riverUI {
			tb.Errorf("apitest: %s %s answered %d, which the OpenAPI document does not describe:\n%v\nresponse body: %.500s",
				r.Method, r.URL.RequestURI(), rec.Code, err, rec.Body.Bytes())
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// Login returns a token for the account. It logs in again while the answer is 503
// read-model-behind, as the problem tells a client to: a login waits for its session to be
// projected like any write, and a test that sets a short bound for what it checks must not fail
// here when another test database's open transaction holds every projection back for a moment
// (transaction ids are cluster-wide).
func (e *Env) Login(t testing.TB, email, password string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": email, "password": password})
		if r.Status == http.StatusServiceUnavailable && time.Now().Before(deadline) &&
			strings.Contains(string(r.Body), "/problems/read-model-behind") {
			continue
		}
		require.Equal(t, http.StatusOK, r.Status, "login %s: %s", email, r.Body)
		return r.JSON(t)["token"].(string)
	}
}

// Unique returns a name that no other test uses.
func Unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// CreateDomain creates a domain as the global admin and returns its name.
func (e *Env) CreateDomain(t testing.TB, body map[string]any) string {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	if _, ok := body["name"]; !ok {
		body["name"] = Unique("d") + ".example"
	}
	r := e.Do(t, http.MethodPost, "/api/v1/domains", e.AdminToken, body)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	return r.JSON(t)["name"].(string)
}

// CreateAccount creates an account as the global admin and returns its address.
func (e *Env) CreateAccount(t testing.TB, domainName string, body map[string]any) string {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	if _, ok := body["address"]; !ok {
		if _, ok := body["local_part"]; !ok {
			body["local_part"] = Unique("u")
		}
	}
	r := e.Do(t, http.MethodPost, "/api/v1/domains/"+domainName+"/accounts", e.AdminToken, body)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	return r.JSON(t)["address"].(string)
}

// Role says what a test user may do.
type Role int

// Roles of test users.
const (
	Plain Role = iota
	DomainAdmin
	GlobalAdmin
)

// User creates an account through the command service (not the API under test) and logs it in.
// It returns the address and a token.
func (e *Env) User(t testing.TB, domainName string, role Role) (string, string) {
	t.Helper()
	addr, err := domain.ParseAddress(Unique("user") + "@" + domainName)
	require.NoError(t, err)
	pw := "user-password-1"
	_, err = e.Commands.CreateAccount(context.Background(), commands.Request{Meta: eventstore.Metadata{Actor: "test"}},
		domain.CreateAccount{Address: addr, GlobalAdmin: role == GlobalAdmin, DomainAdmin: role == DomainAdmin},
		commands.Credentials{Password: &pw})
	require.NoError(t, err)
	// Login reads the account's stream; the session check reads the read model, so wait for it.
	require.Eventually(t, func() bool {
		_, err := e.Reads.Account(context.Background(), addr.String())
		return err == nil
	}, time.Minute, 5*time.Millisecond)
	return addr.String(), e.Login(t, addr.String(), pw)
}
