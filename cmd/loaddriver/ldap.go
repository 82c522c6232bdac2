package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// ldapWatch follows the directory with a syncrepl refreshAndPersist search (RFC 4533: slapd's
// syncprov pushes each change as it commits), and times each created account from the API's
// 201 until its entry is readable there: the LDAP projection's lag as a reader sees it.
type ldapWatch struct {
	conn   *ldap.Conn
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	created map[string]time.Time
	seen    map[string]time.Time
	lags    []time.Duration
	lastAt  time.Time
	err     error
	// pending is, for each second of the run, how many created accounts were not in the
	// directory yet at its end: the projection's backlog.
	pending []int
}

// watchLDAP binds to url and starts following ou=accounts,base for accounts whose address
// starts with prefix; it returns once the refresh phase is over, so nothing is missed.
func watchLDAP(ctx context.Context, url, base, bindDN, password, prefix string) (*ldapWatch, error) {
	conn, err := ldap.DialURL(url, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		return nil, fmt.Errorf("ldap: %w", err)
	}
	if bindDN != "" {
		if err := conn.Bind(bindDN, password); err != nil {
			conn.Close()
			return nil, fmt.Errorf("ldap: bind as %s: %w", bindDN, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &ldapWatch{conn: conn, cancel: cancel, done: make(chan struct{}),
		created: map[string]time.Time{}, seen: map[string]time.Time{}}
	filter := "(&(objectClass=mailplaneAccount)(mail=" + ldap.EscapeFilter(prefix) + "*))"
	req := ldap.NewSearchRequest("ou=accounts,"+base, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
		filter, []string{"mail"}, nil)
	resp := conn.Syncrepl(ctx, req, 4096, ldap.SyncRequestModeRefreshAndPersist, nil, false)
	refreshed := make(chan struct{})
	go func() {
		defer close(w.done)
		once := sync.Once{}
		for resp.Next() {
			now := time.Now()
			e := resp.Entry()
			if e == nil {
				// A sync info message: the first one ends the refresh phase.
				once.Do(func() { close(refreshed) })
				continue
			}
			addr := strings.ToLower(e.GetAttributeValue("mail"))
			w.mu.Lock()
			if _, ok := w.seen[addr]; !ok && addr != "" {
				w.seen[addr] = now
				w.lastAt = now
				if c, ok := w.created[addr]; ok {
					w.lags = append(w.lags, max(time.Nanosecond, now.Sub(c))) // quantiles skips zeros
				}
			}
			w.mu.Unlock()
		}
		if err := resp.Err(); err != nil && ctx.Err() == nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
		}
		once.Do(func() { close(refreshed) })
	}()
	select {
	case <-refreshed:
	case <-time.After(30 * time.Second):
		w.stop()
		return nil, errors.New("ldap: the refresh phase of the sync search did not end within 30 s")
	}
	if err := w.error(); err != nil {
		w.stop()
		return nil, err
	}
	return w, nil
}

// create records the 201 of an account (its address in lower case).
func (w *ldapWatch) create(addr string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.created[addr] = at
	if s, ok := w.seen[addr]; ok { // read before the client had its 201
		w.lags = append(w.lags, max(time.Nanosecond, s.Sub(at)))
	}
}

// tick records the backlog at the end of a second.
func (w *ldapWatch) tick() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.backlog()
	w.pending = append(w.pending, n)
	return n
}

func (w *ldapWatch) backlog() int {
	n := 0
	for a := range w.created {
		if _, ok := w.seen[a]; !ok {
			n++
		}
	}
	return n
}

func (w *ldapWatch) error() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// drain waits until every created account is in the directory, or timeout; it returns how
// many are still missing and when the last one arrived.
func (w *ldapWatch) drain(timeout time.Duration) (missing int, last time.Time) {
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		missing, last = w.backlog(), w.lastAt
		w.mu.Unlock()
		if missing == 0 || time.Now().After(deadline) || w.error() != nil {
			return missing, last
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *ldapWatch) stop() {
	w.cancel()
	<-w.done
	w.conn.Close()
}

// ldapStats are the watch's results.
type ldapStats struct {
	lags                  []time.Duration
	missing               int
	drain                 time.Duration
	pending               []int
	pendingMax            int
	pendingFirst, pendLst float64
	err                   error
}

func (w *ldapWatch) stats(end time.Time, timeout time.Duration) ldapStats {
	missing, last := w.drain(timeout)
	w.mu.Lock()
	defer w.mu.Unlock()
	st := ldapStats{lags: append([]time.Duration(nil), w.lags...), missing: missing, pending: append([]int(nil), w.pending...), err: w.err}
	if missing == 0 && last.After(end) {
		st.drain = last.Sub(end)
	}
	for _, p := range st.pending {
		st.pendingMax = max(st.pendingMax, p)
	}
	// The mean backlog over the first and the last third of the run: a backlog that grows
	// shows as a last third well above the first.
	if n := len(st.pending); n >= 3 {
		mean := func(ps []int) float64 {
			s := 0
			for _, p := range ps {
				s += p
			}
			return float64(s) / float64(len(ps))
		}
		st.pendingFirst, st.pendLst = mean(st.pending[:n/3]), mean(st.pending[n-n/3:])
	}
	return st
}
