package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"mailplane/api"
	"mailplane/api/policy"
	"mailplane/migrations"
	"mailplane/projections"
	"mailplane/projections/ldap"
	"mailplane/projections/postgres"
	"mailplane/web"
	"mailplane/workers"
)

// maxProjectionLag is how many events a projection may be behind before /readyz says no.
const maxProjectionLag = 10_000

func serve(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	noAPI := fs.Bool("no-api", false, "do not serve the HTTP API")
	noWorkers := fs.Bool("no-workers", false, "do not work River jobs")
	noProjections := fs.Bool("no-projections", false, "do not run projections")
	noMigrate := fs.Bool("no-migrate", false, "do not apply migrations at start")
	addr := fs.String("addr", e.cfg.HTTPAddr, "listen address of the API")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address (127.0.0.1:0 picks a port; off by default)")
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}

	if *pprofAddr != "" {
		if _, err := servePprof(ctx, *pprofAddr, e.logger); err != nil {
			return err
		}
	}
	pool, reg, err := e.poolAndRegistry(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	if !*noMigrate {
		if err := e.migrateAll(ctx, pool, reg); err != nil {
			return err
		}
	}

	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	waiter := readModelWaiter(pool)
	svc, store, err := e.service(pool, reg)
	if err != nil {
		return err
	}
	if pending, err := store.RekeyPending(ctx); err != nil || pending {
		return errors.Join(err, errors.New("the hash chains wait to be re-keyed: run mailplane migrate (or serve without --no-migrate)"))
	}
	anchors, err := e.anchors(pool)
	if err != nil {
		return err
	}
	// The admin projection queues the quota warnings of lowered limits in its own transaction.
	quotaJobs, err := workers.NewClient(pool, e.logger, workers.Config{}, false)
	if err != nil {
		return err
	}
	admin := postgres.NewAdmin(reg).WithQuotaWarnings(workers.Queue{Inserter: quotaJobs})
	runner, err := projections.NewRunner(pool, reg, e.logger, projections.Config{}, admin, postgres.NewGALEntries(reg, store))
	if err != nil {
		return err
	}
	if err := metrics.Register(runner); err != nil {
		return err
	}
	names := runner.Names()
	var directory *ldap.Projection
	var members api.MemberSource
	if cfg, ok := e.directory(); ok {
		members = ldap.NewMembers(cfg)
		keys, err := e.keyring(pool)
		if err != nil {
			return err
		}
		if directory, err = ldap.New(ldap.Options{Directory: cfg, Pool: pool, Registry: reg, Keyring: keys, Logger: e.logger}); err != nil {
			return err
		}
		names = append(names, directory.Name())
		if !*noProjections {
			if err := metrics.Register(ldapActive{directory}); err != nil {
				return err
			}
		}
	} else {
		e.logger.Warn("MAILPLANE_LDAP_URL is not set: the LDAP projection does not run, Postfix and Dovecot get no directory")
	}
	// From the database, so that a process running no projections reports them too.
	if err := metrics.Register(projections.NewMetrics(pool, e.logger, names...)); err != nil {
		return err
	}

	challenges := &workers.HTTPChallenges{DB: pool}
	var issuer workers.Issuer
	if acme, err := e.acme(pool, challenges); err != nil {
		return err
	} else if acme != nil {
		issuer = acme
	} else {
		e.logger.Warn("MAILPLANE_ACME_DIRECTORY is not set: ACME certificate requests fail")
	}
	// Counted from River's table, so that a process that works no jobs reports them too.
	jobMetrics := workers.NewJobMetrics(pool, e.logger)
	if err := metrics.Register(jobMetrics); err != nil {
		return err
	}
	riverID := workers.NewClientID()
	river, err := workers.NewClient(pool, e.logger, workers.Config{
		Mailer:               workers.MailerConfig{Addr: e.cfg.SMTPAddr, From: e.cfg.MailFrom},
		Anchors:              anchors,
		AnchorFile:           e.cfg.AnchorFile,
		IdempotencyTTL:       e.cfg.IdempotencyTTL,
		RescueStuckJobsAfter: e.cfg.RescueStuckJobsAfter,
		Commands:             svc,
		Issuer:               issuer,
		Challenges:           challenges,
		Metrics:              jobMetrics,
		ID:                   riverID,
	}, !*noWorkers)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 6)

	if !*noProjections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- runner.Run(ctx)
		}()
		if directory != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errc <- directory.Run(ctx)
			}()
		}
	}
	if !*noWorkers {
		// Before River elects: a leader always holds its liveness lock (workers.LeaderWatch).
		watch, err := workers.StartLeaderWatch(ctx, pool, riverID, e.logger)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			watch.Run(ctx)
			watch.Close()
		}()
		if err := river.Start(ctx); err != nil {
			return fmt.Errorf("workers: %w", err)
		}
		defer func() {
			stopCtx, c := context.WithTimeout(context.Background(), 30*time.Second)
			defer c()
			_ = river.Stop(stopCtx)
		}()
	}
	if !*noAPI {
		riverUI, err := workers.UI(ctx, river, e.logger)
		if err != nil {
			return err
		}
		srv := api.NewServer(api.Deps{
			RiverUI:     riverUI,
			Logger:      e.logger,
			Metrics:     metrics,
			Readiness:   readiness(pool, names),
			Commands:    svc,
			Reads:       postgres.NewReadModel(pool),
			Store:       store,
			Waiter:      waiter,
			Projections: projections.Operator{Pool: pool, Names: names},
			Jobs:        workers.JobReader{DB: pool},
			Members:     members,
			Anchors:     anchors,
		}, api.Config{ReadYourWritesTimeout: e.cfg.ReadYourWrites, RequestTimeout: e.cfg.RequestTimeout})
		// The panel serves its pages at "/" and hands every other path (/api/v1, /riverui,
		// /healthz...) to the API, which its pages call in process.
		panel, err := web.New(web.Config{API: srv.Handler(), Logger: e.logger})
		if err != nil {
			return err
		}
		httpSrv := apiHTTPServer(*addr, panel.Handler(), apiTimeouts)
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			return err
		}
		e.logger.Info("serving the API", "url", "http://"+ln.Addr().String()+"/api/v1")
		e.logger.Info("serving the admin panel", "url", "http://"+ln.Addr().String()+"/")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
		go func() {
			<-ctx.Done()
			shutdownCtx, c := context.WithTimeout(context.Background(), 15*time.Second)
			defer c()
			_ = httpSrv.Shutdown(shutdownCtx)
		}()
	}

	if !*noAPI && e.cfg.PolicyAddr != "" && e.cfg.PolicyAddr != "off" {
		ln, err := net.Listen("tcp", e.cfg.PolicyAddr)
		if err != nil {
			return fmt.Errorf("MAILPLANE_POLICY_ADDR: %w", err)
		}
		ps := &policy.Server{Recipients: postgres.NewReadModel(pool), Logger: e.logger}
		e.logger.Info("serving Postfix's policy delegation", "addr", ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ps.Serve(ln); err != nil {
				errc <- err
			}
		}()
		go func() { <-ctx.Done(); _ = ps.Close() }()
	}
	if e.cfg.ACMEHTTPAddr != "" {
		// Every process may answer: the challenges are in the database.
		acmeSrv := &http.Server{Addr: e.cfg.ACMEHTTPAddr, Handler: workers.ChallengeHandler(challenges, e.logger),
			ReadHeaderTimeout: 10 * time.Second}
		ln, err := net.Listen("tcp", e.cfg.ACMEHTTPAddr)
		if err != nil {
			return fmt.Errorf("MAILPLANE_ACME_HTTP_ADDR: %w", err)
		}
		e.logger.Info("answering ACME HTTP-01 challenges", "addr", ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := acmeSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
		go func() {
			<-ctx.Done()
			shutdownCtx, c := context.WithTimeout(context.Background(), 5*time.Second)
			defer c()
			_ = acmeSrv.Shutdown(shutdownCtx)
		}()
	}

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	wg.Wait()
	e.logger.Info("stopped")
	return err
}

// readiness checks what /readyz reports. Beside PostgreSQL and the migrations, a projection
// makes the process unready while it is stopped, while it has unresolved dead letters (both need
// an operator), or while it is too far behind.
func readiness(pool *pgxpool.Pool, names []string) api.Readiness {
	return func(ctx context.Context) (map[string]string, error) {
		checks := map[string]string{}
		if err := pool.Ping(ctx); err != nil {
			checks["postgres"] = err.Error()
			return checks, errors.New("postgres unreachable")
		}
		checks["postgres"] = "ok"
		pending, err := migrations.Pending(ctx, pool)
		switch {
		case err != nil:
			checks["migrations"] = err.Error()
			return checks, errors.New("cannot read migrations")
		case pending:
			checks["migrations"] = "pending"
			return checks, errors.New("migrations pending")
		}
		checks["migrations"] = "ok"
		infos, err := projections.Inspect(ctx, pool, names...)
		if err != nil {
			checks["projections"] = err.Error()
			return checks, errors.New("cannot read the projections' state")
		}
		var problems []string
		for _, in := range infos {
			var state []string
			if st := in.Stopped; st != nil {
				state = append(state, fmt.Sprintf("stopped at position %d (stream %s): %s", st.Position, st.StreamID, st.Reason))
				problems = append(problems, fmt.Sprintf("projection %s is stopped at position %d: %s", in.Name, st.Position, st.Reason))
			}
			if in.DeadLetters > 0 {
				state = append(state, fmt.Sprintf("%d unresolved dead letters", in.DeadLetters))
				problems = append(problems, fmt.Sprintf("projection %s has %d unresolved dead letter(s)", in.Name, in.DeadLetters))
			}
			if in.LagEvents >= maxProjectionLag {
				problems = append(problems, fmt.Sprintf("projection %s is %d+ events behind", in.Name, in.LagEvents))
			}
			state = append(state, fmt.Sprintf("%d events behind", in.LagEvents))
			checks["projection "+in.Name] = strings.Join(state, "; ")
		}
		if len(problems) > 0 {
			return checks, errors.New(strings.Join(problems, "; "))
		}
		return checks, nil
	}
}

// ldapActive adds the LDAP projection to mailplane_projection_active, beside the runner's: which
// process holds the directory is what a failover is watched by (scripts/chaos.sh). It is an
// unchecked collector (it describes nothing), so that its series join the runner's family of
// the same name and help.
type ldapActive struct{ p *ldap.Projection }

var ldapActiveDesc = prometheus.NewDesc("mailplane_projection_active", "1 while this process runs the projection.", []string{"projection"}, nil)

func (ldapActive) Describe(chan<- *prometheus.Desc) {}

func (c ldapActive) Collect(ch chan<- prometheus.Metric) {
	v := 0.0
	if active, _ := c.p.Active(); active {
		v = 1
	}
	m, err := prometheus.NewConstMetric(ldapActiveDesc, prometheus.GaugeValue, v, c.p.Name())
	if err != nil {
		m = prometheus.NewInvalidMetric(ldapActiveDesc, err)
	}
	ch <- m
}

// httpTimeouts bound what a client may hold a connection for without sending.
type httpTimeouts struct {
	// Header: the request line and headers (a slowloris sending a header a minute).
	Header time.Duration
	// Read: the whole request, body included. Import uploads (up to 256 MiB) need longer than
	// a JSON body; the API's request timeout ends their handling anyway.
	Read time.Duration
	// Idle: a kept-alive connection between requests.
	Idle time.Duration
}

// apiTimeouts are those of `mailplane serve`: a JSON body is at most 1 MiB, which any client
// sends in far less than Read; an import upload's body has api.ImportTimeout.
var apiTimeouts = httpTimeouts{Header: 10 * time.Second, Read: api.ImportTimeout, Idle: 2 * time.Minute}

// apiHTTPServer is the API's HTTP server: every phase of a connection has its bound, so that
// slow or silent clients cannot pile up connections.
func apiHTTPServer(addr string, h http.Handler, t httpTimeouts) *http.Server {
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: t.Header, ReadTimeout: t.Read, IdleTimeout: t.Idle}
}
