// Package policy answers Postfix's policy delegation protocol (SMTPD_POLICY_README: Postfix's
// `check_policy_service inet:HOST:PORT`), so that what the admin API decides takes effect where
// mail flows: who may post to a list, and that a closed domain receives nothing. It decides
// from the Postgres read models.
package policy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"mailplane/domain"
	"mailplane/projections/postgres"
)

// Recipients is what the service reads.
type Recipients interface {
	Recipient(ctx context.Context, address string) (postgres.Recipient, error)
}

// Server is the policy service.
type Server struct {
	Recipients Recipients
	Logger     *slog.Logger
	// IdleTimeout closes a connection that sends no request for that long (default 5 min, as
	// Postfix's smtpd_policy_service_max_idle).
	IdleTimeout time.Duration

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Serve answers connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = 5 * time.Minute
	}
	s.mu.Lock()
	s.ln, s.conns = ln, map[net.Conn]struct{}{}
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				s.wg.Wait()
				return nil
			}
			return err
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serveConn(c)
		})
	}
}

// Close stops listening and ends the open connections.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
	if s.ln == nil {
		return nil
	}
	return s.ln.Close()
}

// serveConn answers the requests of one connection: Postfix keeps it open for many.
func (s *Server) serveConn(c net.Conn) {
	r := bufio.NewReaderSize(c, readerSize)
	for {
		_ = c.SetReadDeadline(time.Now().Add(s.IdleTimeout))
		attrs, err := readRequest(r)
		if err != nil {
			return
		}
		action := s.Decide(context.Background(), attrs)
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(c, "action=%s\n\n", action); err != nil {
			return
		}
	}
}

// Bounds of one request: Postfix sends some 30 attributes, none near a kilobyte.
const (
	maxAttributes = 100
	maxLine       = 4096
	// readerSize holds the longest line with its CR LF, so that ReadSlice refuses a longer
	// one after reading that much instead of gathering it whole.
	readerSize = maxLine + 2
)

// readRequest reads name=value lines up to the empty line that ends a request. r must have a
// buffer of readerSize: a line that does not fit is refused unread, so a client sending one
// endless line costs the buffer, not memory until it stops.
func readRequest(r *bufio.Reader) (map[string]string, error) {
	attrs := map[string]string{}
	for n := 0; ; n++ {
		b, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("policy: request line too long")
		}
		if err != nil {
			return nil, err
		}
		line := strings.TrimRight(string(b), "\r\n")
		if line == "" {
			return attrs, nil
		}
		if n >= maxAttributes || len(line) > maxLine {
			return nil, errors.New("policy: request too large")
		}
		name, value, _ := strings.Cut(line, "=")
		attrs[name] = value
	}
}

// Decide answers one request: REJECT for a recipient in a closed domain and for a list the
// sender may not post to, DUNNO (let the other restrictions decide) otherwise. When the read
// models cannot be asked it answers DEFER_IF_PERMIT: a temporary failure, never a silent pass.
func (s *Server) Decide(ctx context.Context, attrs map[string]string) string {
	if attrs["request"] != "smtpd_access_policy" {
		return "DUNNO"
	}
	recipient := strings.ToLower(strings.TrimSpace(attrs["recipient"]))
	if recipient == "" {
		return "DUNNO" // not a RCPT TO: a policy for recipients has nothing to say
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rcpt, err := s.Recipients.Recipient(ctx, recipient)
	if err != nil {
		s.Logger.Error("policy: read models unavailable", "recipient", recipient, "err", err)
		return "DEFER_IF_PERMIT 4.3.0 Service temporarily unavailable"
	}
	if rcpt.DomainStatus == domain.StatusClosed {
		return "REJECT 5.1.2 Recipient domain is closed"
	}
	if l := rcpt.List; l != nil && len(l.AllowedSenders) > 0 {
		sender := strings.ToLower(strings.TrimSpace(attrs["sender"]))
		if !slices.ContainsFunc(l.AllowedSenders, func(a domain.Address) bool { return a.String() == sender }) {
			return fmt.Sprintf("REJECT 5.7.1 %s may not post to %s", printable(sender), l.Address)
		}
	}
	return "DUNNO"
}

// printable names a sender in a reply: the null sender as <>, and nothing that could end the
// reply line or pass for another attribute.
func printable(sender string) string {
	if sender == "" {
		return "<>"
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return '?'
		}
		return r
	}, sender)
}
