package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Store keeps accepted messages in memory, in arrival order, and writes each
// raw message as an .eml file when it has a folder.
type Store struct {
	dir string

	mu   sync.Mutex
	msgs []Message
}

// NewStore returns a Store that also writes .eml files into dir, creating
// it; an empty dir keeps messages in memory only.
func NewStore(dir string) (*Store, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create message folder: %w", err)
		}
	}
	return &Store{dir: dir}, nil
}

// Add records a message received for the envelope sender from and the
// envelope recipients to.
func (s *Store) Add(from string, to []string, raw []byte) (Message, error) {
	now := time.Now().UTC()
	id := rand.Text()
	if s.dir != "" {
		name := now.Format("20060102T150405.000000000Z") + "-" + id + ".eml"
		if err := os.WriteFile(filepath.Join(s.dir, name), raw, 0o600); err != nil {
			return Message{}, fmt.Errorf("write message file: %w", err)
		}
	}
	m := parseMessage(id, from, to, now, raw)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	return m, nil
}

// List returns the messages in arrival order; a non-empty to keeps only those
// with that envelope recipient (compared without regard to case).
func (s *Store) List(to string) []Message {
	to = strings.Trim(strings.TrimSpace(to), "<>")

	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.msgs))
	for _, m := range s.msgs {
		if to == "" || hasRecipient(m, to) {
			out = append(out, m)
		}
	}
	return out
}

// Clear forgets every message held in memory and returns how many there were.
// Files already written stay on disk.
func (s *Store) Clear() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.msgs)
	s.msgs = nil
	return n
}

func hasRecipient(m Message, addr string) bool {
	for _, rcpt := range m.To {
		if strings.EqualFold(rcpt, addr) {
			return true
		}
	}
	return false
}
