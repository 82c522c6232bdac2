package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/eventstore/keyring"
	"mailplane/migrations"
	"mailplane/projections"
	"mailplane/projections/ldap"
	"mailplane/projections/postgres"
	"mailplane/workers"
)

// env is what every command gets: the configuration, a logger and the output streams.
type env struct {
	cfg    config
	logger *slog.Logger
	stdout io.Writer
	stderr io.Writer
}

// pool opens the database pool. Projections, River and the API share it, so it is sized above
// pgxpool's default of four.
func (e *env) pool(ctx context.Context) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(e.cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if pc.MaxConns < 32 {
		pc.MaxConns = 32
	}

	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database %s: %w", pc.ConnConfig.Host, err)
	}
	return pool, nil
}

// poolAndRegistry opens the database pool and builds the event registry, which every command
// that reads or writes events starts with. The caller closes the pool.
func (e *env) poolAndRegistry(ctx context.Context) (*pgxpool.Pool, *eventstore.Registry, error) {
	pool, err := e.pool(ctx)
	if err != nil {
		return nil, nil, err
	}
	reg, err := registry()
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, reg, nil
}

// registry knows every domain event and how to upcast old versions.
func registry() (*eventstore.Registry, error) {
	events := domain.Events()
	evs := make([]eventstore.Event, len(events))
	for i, e := range events {
		evs[i] = e
	}
	var ups []eventstore.Upcaster
	for _, u := range domain.Upcasters() {
		ups = append(ups, eventstore.Upcaster{EventType: u.EventType, From: u.FromVersion, Up: u.Upcast})
	}
	return eventstore.NewRegistry(evs, ups)
}

// masterKey reads the master key, which every key mailplane uses is derived from.
func (e *env) masterKey() ([]byte, error) {
	master, err := keyring.LoadMasterKey(e.cfg.MasterKeyFile)
	if err != nil {
		return nil, fmt.Errorf("MAILPLANE_MASTER_KEY_FILE: %w", err)
	}
	return master, nil
}

// store opens the event store with its key (the hash chains and request fingerprints are keyed
// from the master key).
func (e *env) store(pool *pgxpool.Pool, reg *eventstore.Registry) (*eventstore.Postgres, error) {
	master, err := e.masterKey()
	if err != nil {
		return nil, err
	}
	key, err := keyring.Derive(master, eventstore.KeyPurpose)
	if err != nil {
		return nil, err
	}
	return eventstore.NewPostgres(pool, reg, eventstore.WithKey(key), eventstore.WithIdempotencyTTL(e.cfg.IdempotencyTTL)), nil
}

// anchors opens the anchor recorder with its signing key, derived from the master key.
func (e *env) anchors(pool *pgxpool.Pool) (*eventstore.Anchors, error) {
	master, err := e.masterKey()
	if err != nil {
		return nil, err
	}
	seed, err := keyring.Derive(master, eventstore.AnchorKeyPurpose)
	if err != nil {
		return nil, err
	}
	return eventstore.NewAnchors(pool, seed)
}

// keyring opens the data keys with the master key.
func (e *env) keyring(pool *pgxpool.Pool) (*keyring.Keyring, error) {
	master, err := e.masterKey()
	if err != nil {
		return nil, err
	}
	return keyring.New(pool, master)
}

// directory is where the LDAP projection writes; ok is false when MAILPLANE_LDAP_URL is unset.
func (e *env) directory() (cfg ldap.Config, ok bool) {
	if e.cfg.LDAPURL == "" {
		return ldap.Config{}, false
	}
	return ldap.Config{URL: e.cfg.LDAPURL, BindDN: e.cfg.LDAPBindDN, Password: e.cfg.LDAPPassword,
		DIT: ldap.DIT{Base: e.cfg.LDAPBaseDN}}, true
}

// service assembles the command service: the event store, the keyring with the master key, the
// password hasher, and an insert-only River client for the jobs commands queue (the workers, if
// this process runs them, are another client on the same tables).
func (e *env) service(pool *pgxpool.Pool, reg *eventstore.Registry) (*commands.Service, *eventstore.Postgres, error) {
	keys, err := e.keyring(pool)
	if err != nil {
		return nil, nil, err
	}
	store, err := e.store(pool, reg)
	if err != nil {
		return nil, nil, err
	}
	inserter, err := workers.NewClient(pool, e.logger, workers.Config{}, false)
	if err != nil {
		return nil, nil, err
	}
	svc, err := commands.New(commands.Deps{
		Pool: pool, Store: store, Keyring: keys, Logger: e.logger,
		Hasher:             commands.NewHasher(commands.DefaultArgon2, 0),
		Jobs:               workers.Queue{Inserter: inserter},
		CertificateContact: e.cfg.ACMEEmail,
	})
	return svc, store, err
}

// acme configures certificate issuance: nil when MAILPLANE_ACME_DIRECTORY is unset (requests
// then fail, saying so).
func (e *env) acme(pool *pgxpool.Pool, challenges *workers.HTTPChallenges) (*workers.ACME, error) {
	if e.cfg.ACMEDirectory == "" {
		return nil, nil
	}
	cfg := workers.ACMEConfig{DirectoryURL: e.cfg.ACMEDirectory, Email: e.cfg.ACMEEmail, HTTP01: challenges,
		ShortChainRoot: e.cfg.ACMEShortChain}
	if e.cfg.ACMECAFile != "" {
		b, err := os.ReadFile(e.cfg.ACMECAFile)
		if err != nil {
			return nil, fmt.Errorf("MAILPLANE_ACME_CA_FILE: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("MAILPLANE_ACME_CA_FILE: %s holds no PEM certificate", e.cfg.ACMECAFile)
		}
	}
	keys, err := e.keyring(pool)
	if err != nil {
		return nil, err
	}
	return workers.NewACME(cfg, pool, keys, e.logger)
}

// migrateAll applies the migrations, then re-keys the hash chains written before they were
// keyed (a one-time step that needs the master key, so it cannot be a SQL migration).
func (e *env) migrateAll(ctx context.Context, pool *pgxpool.Pool, reg *eventstore.Registry) error {
	if err := migrations.Up(ctx, pool, e.logger); err != nil {
		return err
	}
	store, err := e.store(pool, reg)
	if err != nil {
		return err
	}
	rep, err := store.RekeyLegacyChains(ctx)
	if err != nil {
		return err
	}
	if rep.Done {
		e.logger.Info("hash chains re-keyed", "streams", rep.Streams, "events", rep.Events)
	}
	return nil
}

// readModelWaiter waits for the Postgres read models (the admin projection).
func readModelWaiter(pool *pgxpool.Pool) *projections.Waiter {
	return projections.NewWaiter(pool, 0, postgres.AdminName)
}
