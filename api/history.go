package api

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/projections/postgres"
)

// historyItem is one event as an auditor sees it. Secrets are shown as "[redacted]".
type historyItem struct {
	Position      int64           `json:"position"`
	Stream        string          `json:"stream"`
	StreamType    string          `json:"stream_type"`
	Version       int             `json:"version"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	Data          json.RawMessage `json:"data"`
	Actor         string          `json:"actor"`
	// SessionID is the session whose token made the request; absent for events of the system
	// (workers) and for events recorded before sessions were noted.
	SessionID     string    `json:"session_id,omitempty"`
	RequestID     string    `json:"request_id,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
	SourceIP      string    `json:"source_ip,omitempty"`
	RecordedAt    time.Time `json:"recorded_at"`
	PrevHash      string    `json:"prev_hash"`
	Hash          string    `json:"hash"`
}

// historyQuery reads the filters every history endpoint takes: after, before, type, actor, ip,
// request_id, correlation_id, session_id, limit and cursor.
func historyQuery(r *http.Request, q *eventstore.DomainQuery) error {
	var fields []FieldError
	query := r.URL.Query()
	if v := query.Get("after"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			fields = append(fields, FieldError{Field: "after", Message: "must be an RFC 3339 time"})
		}
		q.Since = t.Add(time.Microsecond) // after: strictly later
	}
	if v := query.Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			fields = append(fields, FieldError{Field: "before", Message: "must be an RFC 3339 time"})
		}
		q.Until = t
	}
	if v := query.Get("type"); v != "" {
		q.Types = strings.Split(v, ",")
	}
	for _, f := range []struct {
		name string
		to   *string
	}{{"actor", &q.Actor}, {"ip", &q.SourceIP}, {"request_id", &q.RequestID},
		{"correlation_id", &q.CorrelationID}, {"session_id", &q.SessionID}} {
		v := query.Get(f.name)
		if len(v) > 256 {
			fields = append(fields, FieldError{Field: f.name, Message: "is limited to 256 characters"})
		}
		*f.to = v
	}
	if v := query.Get("actor"); v != "" {
		// Actors are stored as addresses in lower case (or a system actor's name).
		q.Actor = strings.ToLower(v)
	}
	if v := query.Get("ip"); v != "" {
		ip, err := netip.ParseAddr(v)
		if err != nil {
			fields = append(fields, FieldError{Field: "ip", Message: "must be an IP address"})
		} else {
			q.SourceIP = ip.Unmap().String()
		}
	}
	if v := query.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			fields = append(fields, FieldError{Field: "limit", Message: "must be an integer from 1 to 500"})
		}
		q.Limit = n
	}
	if v := query.Get("cursor"); v != "" {
		pos, ok := parseHistoryCursor(v)
		if !ok {
			fields = append(fields, FieldError{Field: "cursor", Message: "is not a cursor this API returned"})
		}
		q.After = pos
	}
	if len(fields) > 0 {
		return &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "bad history query", Fields: fields}
	}
	return nil
}

// domainHistory answers the events of the domain and of every object in it, oldest first:
// GET /domains/{domain}/history?after=&before=&type=&actor=&ip=&request_id=&correlation_id=&limit=&cursor=.
func (s *Server) domainHistory(w http.ResponseWriter, r *http.Request) error {
	name, err := domainName(r)
	if err != nil {
		return err
	}
	if err := requireDomainAdmin(principal(r), name); err != nil {
		return err
	}
	q := eventstore.DomainQuery{Domain: name, Limit: 50}
	if err := historyQuery(r, &q); err != nil {
		return err
	}
	return s.history(w, r, q, domain.DomainStreamID(name), fmt.Sprintf("domain %q", name))
}

// objectHistory answers one account's, list's or resource's events, oldest first, with the
// domain history's filters. Its domain's administrators may read it, also after the object
// was removed.
func (s *Server) objectHistory(kind string, streamID func(domain.Address) string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		addr, err := pathAddress(r, "address")
		if err != nil {
			return err
		}
		if err := requireDomainAdmin(principal(r), addr.Domain); err != nil {
			return err
		}
		q := eventstore.DomainQuery{Domain: addr.Domain, StreamID: streamID(addr), Limit: 50}
		if err := historyQuery(r, &q); err != nil {
			return err
		}
		return s.history(w, r, q, q.StreamID, fmt.Sprintf("%s %s", kind, addr))
	}
}

// history answers one page of q; exists is the stream whose events make the history exist
// (the domain's, or the object's own), named by what for the 404.
func (s *Server) history(w http.ResponseWriter, r *http.Request, q eventstore.DomainQuery, exists, what string) error {
	// What existed once has a history, even after it is gone.
	if v, _, err := s.Store.StreamHead(r.Context(), exists); err != nil {
		return err
	} else if v == 0 {
		return errorf(http.StatusNotFound, "not-found", "%s has no history", what)
	}
	// Show every event committed before this request (within the read-your-writes bound).
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadYourWritesTimeout)
	err := s.Store.AwaitDomainStable(ctx, q.Domain)
	cancel()
	if err != nil {
		return err
	}
	limit := q.Limit
	q.Limit++
	events, err := s.Store.ReadDomain(r.Context(), q)
	if err != nil {
		return err
	}
	items := make([]historyItem, 0, min(len(events), limit))
	var next *string
	for i, e := range events {
		if i == limit {
			c := historyCursor(events[i-1].GlobalPosition())
			next = &c
			break
		}
		data, err := redact(e.Data)
		if err != nil {
			return err
		}
		m := e.Metadata
		items = append(items, historyItem{
			Position: e.Position, Stream: e.StreamID, StreamType: e.StreamType, Version: e.Version, Type: e.Type,
			SchemaVersion: e.SchemaVersion, Data: data, Actor: m.Actor, SessionID: m.SessionID, RequestID: m.RequestID,
			CorrelationID: m.CorrelationID, CausationID: m.CausationID, SourceIP: m.SourceIP, RecordedAt: e.RecordedAt,
			PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash),
		})
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, listPage{Items: items, NextCursor: next})
	return nil
}

func historyCursor(p eventstore.Position) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d.%d", p.TransactionID, p.Position))
}

func parseHistoryCursor(c string) (eventstore.Position, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return eventstore.Position{}, false
	}
	tx, pos, ok := strings.Cut(string(b), ".")
	t, err1 := strconv.ParseUint(tx, 10, 64)
	p, err2 := strconv.ParseInt(pos, 10, 64)
	return eventstore.Position{TransactionID: t, Position: p}, ok && err1 == nil && err2 == nil
}

// redact replaces every secret member (at any depth) with "[redacted]". Secrets are sealed in
// events already; even their ciphertext stays out of history views.
func redact(data json.RawMessage) (json.RawMessage, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	var walk func(any) any
	walk = func(x any) any {
		switch t := x.(type) {
		case map[string]any:
			for k, e := range t {
				if domain.IsSecretField(k) {
					t[k] = domain.RedactedValue
				} else {
					t[k] = walk(e)
				}
			}
		case []any:
			for i, e := range t {
				t[i] = walk(e)
			}
		}
		return x
	}
	return json.Marshal(walk(v))
}

// readObject answers the read of one object, the shape every object's GET shares: with
// ?as_of= as it stood then (past), else from the read models once they hold every event of
// stream ("": every stream) committed before the request (current); the version is the ETag.
func (s *Server) readObject(w http.ResponseWriter, r *http.Request, stream string,
	past func(ctx context.Context, t time.Time) (any, int, error), current func(ctx context.Context) (any, int, error)) error {
	t, isPast, err := asOf(r)
	if err != nil {
		return err
	}
	var v any
	var version int
	if isPast {
		v, version, err = past(r.Context(), t)
	} else {
		if err := s.catchUp(r, stream); err != nil {
			return err
		}
		v, version, err = current(r.Context())
	}
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(version))
	writeJSON(w, http.StatusOK, v)
	return nil
}

// asOf reads ?as_of=; ok is false when the parameter is absent.
func asOf(r *http.Request) (time.Time, bool, error) {
	v := r.URL.Query().Get("as_of")
	if v == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, false, &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "bad as_of",
			Fields: []FieldError{{Field: "as_of", Message: "must be an RFC 3339 time"}}}
	}
	return t, true, nil
}

// pastState folds a stream up to a moment; first and last are the times of its first and last
// events then.
func pastState[S interface{ Evolve(domain.Event) S }](ctx context.Context, s *Server, streamID string, t time.Time) (S, int, time.Time, time.Time, error) {
	var zero S
	events, err := s.Store.Load(ctx, streamID, eventstore.LoadOptions{AsOf: t, SkipMetadata: true})
	if err != nil {
		return zero, 0, time.Time{}, time.Time{}, err
	}
	state, err := commands.Fold[S](s.Store.Registry(), events)
	if err != nil || len(events) == 0 {
		return state, 0, time.Time{}, time.Time{}, err
	}
	return state, len(events), events[0].RecordedAt, events[len(events)-1].RecordedAt, nil
}

// pastObject is pastState of an object that must have existed at t: domain.ErrNotFound when it
// did not, what naming it in the error ("list a@example.com").
func pastObject[S interface {
	Evolve(domain.Event) S
	Exists() bool
}](ctx context.Context, s *Server, streamID, what string, t time.Time) (S, int, time.Time, time.Time, error) {
	state, version, first, last, err := pastState[S](ctx, s, streamID, t)
	if err == nil && !state.Exists() {
		err = fmt.Errorf("%s at %s: %w", what, t.Format(time.RFC3339), domain.ErrNotFound)
	}
	return state, version, first, last, err
}

// domainAsOf renders a domain as it stood at t, with its counts then.
func (s *Server) domainAsOf(ctx context.Context, name string, t time.Time) (any, int, error) {
	d, version, created, updated, err := pastObject[domain.Domain](ctx, s, domain.DomainStreamID(name), fmt.Sprintf("domain %q", name), t)
	if err != nil {
		return nil, 0, err
	}
	g, _, _, _, err := pastState[domain.GlobalConfig](ctx, s, domain.GlobalConfigStreamID, t)
	if err != nil {
		return nil, 0, err
	}
	// Count its accounts, lists, resources and their aliases then, from their own streams.
	var counts postgres.Counts
	aliases := func(as []domain.Address) {
		for _, al := range as {
			if al.Domain == name {
				counts.Aliases++
			}
		}
	}
	for _, kind := range []string{domain.StreamTypeAccount, domain.StreamTypeList, domain.StreamTypeResource} {
		events, err := s.Store.ReadDomain(ctx, eventstore.DomainQuery{Domain: name, StreamType: kind, Until: t.Add(time.Microsecond)})
		if err != nil {
			return nil, 0, err
		}
		byStream := map[string][]eventstore.RecordedEvent{}
		for _, e := range events {
			byStream[e.StreamID] = append(byStream[e.StreamID], e)
		}
		for _, evs := range byStream {
			switch kind {
			case domain.StreamTypeAccount:
				a, err := commands.Fold[domain.Account](s.Store.Registry(), evs)
				if err != nil {
					return nil, 0, err
				}
				if a.Exists() {
					counts.Accounts++
					aliases(a.Aliases)
				}
			case domain.StreamTypeList:
				l, err := commands.Fold[domain.MailingList](s.Store.Registry(), evs)
				if err != nil {
					return nil, 0, err
				}
				if l.Exists() {
					counts.Lists++
					aliases(l.Aliases)
				}
			case domain.StreamTypeResource:
				r, err := commands.Fold[domain.Resource](s.Store.Registry(), evs)
				if err != nil {
					return nil, 0, err
				}
				if r.Exists() {
					counts.Resources++
					aliases(r.Aliases)
				}
			}
		}
	}
	row := postgres.DomainRow{Row: postgres.Row{Version: version, CreatedAt: created, UpdatedAt: updated}, Domain: d, Counts: counts}
	return renderDomain(g.WithDefaults(), row), version, nil
}

// accountAsOf renders an account as it stood at t, its effective values resolved against the
// domain, COS and global configuration of that moment.
func (s *Server) accountAsOf(ctx context.Context, addr domain.Address, t time.Time) (any, int, error) {
	a, version, _, updated, err := pastObject[domain.Account](ctx, s, domain.AccountStreamID(addr), "account "+addr.String(), t)
	if err != nil {
		return nil, 0, err
	}
	d, _, _, _, err := pastState[domain.Domain](ctx, s, domain.DomainStreamID(addr.Domain), t)
	if err != nil {
		return nil, 0, err
	}
	g, _, _, _, err := pastState[domain.GlobalConfig](ctx, s, domain.GlobalConfigStreamID, t)
	if err != nil {
		return nil, 0, err
	}
	sc := accountScope{global: g.WithDefaults(), domain: d, cos: map[string]domain.COS{}}
	name, _ := domain.EffectiveCOSName(sc.global, d, a)
	c, _, _, _, err := pastState[domain.COS](ctx, s, domain.COSStreamID(name), t)
	if err != nil {
		return nil, 0, err
	}
	if c.Exists() {
		sc.cos[name] = c
	}
	row := postgres.AccountRow{Row: postgres.Row{Version: version, CreatedAt: a.CreatedAt, UpdatedAt: updated}, Account: a}
	return sc.render(row), version, nil
}
