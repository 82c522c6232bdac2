package main

import (
	"log/slog"

	"github.com/emersion/go-smtp"
)

// Backend is a go-smtp backend that accepts every message, without
// authentication, and records it in a Store.
type Backend struct {
	store  *Store
	logger *slog.Logger
}

// NewBackend returns a Backend recording into store.
func NewBackend(store *Store, logger *slog.Logger) *Backend {
	return &Backend{store: store, logger: logger}
}

// NewSession implements smtp.Backend.
func (b *Backend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &session{backend: b}, nil
}
