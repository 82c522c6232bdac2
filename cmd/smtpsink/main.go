// Command smtpsink is the dev stack's SMTP server: it accepts every message
// on a loopback address, without authentication or TLS, keeps it in memory,
// optionally writes it as an .eml file, and lets tests read the messages back
// over HTTP (see Handler).
//
//	smtpsink -smtp 127.0.0.1:2525 -http 127.0.0.1:8025 -dir .dev/smtpsink
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
)

type config struct {
	smtpAddr string
	httpAddr string
	dir      string
	maxBytes int64
}

func main() {
	var cfg config
	flag.StringVar(&cfg.smtpAddr, "smtp", "127.0.0.1:2525", "SMTP listen address (loopback only)")
	flag.StringVar(&cfg.httpAddr, "http", "127.0.0.1:8025", "HTTP API listen address (loopback only)")
	flag.StringVar(&cfg.dir, "dir", "", "folder for .eml copies of accepted messages (none if empty)")
	flag.Int64Var(&cfg.maxBytes, "max-bytes", 32<<20, "largest message accepted, in bytes")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, logger, nil); err != nil {
		logger.Error("smtpsink stopped", "err", err)
		os.Exit(1)
	}
}

// run serves SMTP and HTTP until ctx ends. ready, if not nil, is called with
// the bound addresses once both listeners are open.
func run(ctx context.Context, cfg config, logger *slog.Logger, ready func(smtpAddr, httpAddr string)) error {
	store, err := NewStore(cfg.dir)
	if err != nil {
		return err
	}
	smtpLn, err := listenLoopback(cfg.smtpAddr)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	defer smtpLn.Close()
	httpLn, err := listenLoopback(cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	defer httpLn.Close()

	smtpSrv := smtp.NewServer(NewBackend(store, logger))
	smtpSrv.Domain = "smtpsink.test"
	smtpSrv.MaxMessageBytes = cfg.maxBytes
	smtpSrv.MaxRecipients = 1000
	smtpSrv.ReadTimeout = time.Minute
	smtpSrv.WriteTimeout = time.Minute
	smtpSrv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelError)

	httpSrv := &http.Server{Handler: NewHandler(store, logger), ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- smtpSrv.Serve(smtpLn) }()
	go func() { errc <- httpSrv.Serve(httpLn) }()
	logger.Info("smtpsink listening", "smtp", smtpLn.Addr().String(), "http", httpLn.Addr().String(), "dir", cfg.dir)
	if ready != nil {
		ready(smtpLn.Addr().String(), httpLn.Addr().String())
	}

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = smtpSrv.Close()
	_ = httpSrv.Shutdown(shutdownCtx)
	if err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// listenLoopback listens on addr, refusing any host that is not a loopback
// address: the sink accepts mail from anyone who can reach it.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%s is not a loopback address", addr)
	}
	return net.Listen("tcp", addr)
}
