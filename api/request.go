package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gowebpki/jcs"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/eventstore"
	"mailplane/projections"
	"mailplane/projections/postgres"
)

// readBody reads the whole (size-limited) body.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, errorf(http.StatusRequestEntityTooLarge, "body-too-large", "request bodies are limited to %d bytes", tooBig.Limit)
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "bad-body", "cannot read the request body: %v", err)
	}
	return b, nil
}

// decodeJSON reads a JSON object into v, refusing unknown fields and trailing data.
func decodeJSON(r *http.Request, v any) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeBytes(b, v)
}

func decodeBytes(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return errorf(http.StatusBadRequest, "bad-json", "a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return errorf(http.StatusBadRequest, "bad-json", "malformed JSON at offset %d: %v", syn.Offset, err)
		case errors.As(err, &typ):
			return &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "a field has the wrong type",
				Fields: []FieldError{{Field: typ.Field, Message: fmt.Sprintf("must be %s", typ.Type)}}}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &Error{Status: http.StatusBadRequest, Type: "unknown-field", Detail: "unknown field " + field,
				Fields: []FieldError{{Field: field, Message: "unknown field"}}}
		}
		return errorf(http.StatusBadRequest, "bad-json", "%v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "bad-json", "one JSON value is expected, found more")
	}
	return nil
}

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// etag is an object's ETag: its stream version.
func etag(version int) string { return `"` + strconv.Itoa(version) + `"` }

// ifMatch reads If-Match: 0 when absent (or "*").
func ifMatch(r *http.Request) (int, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return 0, nil
	}
	v, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(h, "W/"), `"`))
	if err != nil || v <= 0 {
		return 0, errorf(http.StatusBadRequest, "bad-if-match", "If-Match must be an ETag this API returned, like \"3\"")
	}
	return v, nil
}

// commandRequest builds what a command carries from the HTTP request. body is the raw request
// body, which fingerprints an idempotent request.
func (s *Server) commandRequest(r *http.Request, body []byte) (commands.Request, error) {
	v, err := ifMatch(r)
	if err != nil {
		return commands.Request{}, err
	}
	p := principal(r)
	actor := p.Address.String()
	if p.IsService() {
		// A program acting with a service token has no address: the token names it.
		actor = "service-token:" + p.ServiceToken
	}
	meta := eventstore.Metadata{
		Actor:         actor,
		RequestID:     requestID(r),
		CorrelationID: r.Header.Get("X-Correlation-Id"),
		SourceIP:      sourceIP(r),
		SessionID:     p.SessionID,
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" && r.Method == http.MethodPost {
		if len(key) > 255 {
			return commands.Request{}, errorf(http.StatusBadRequest, "bad-idempotency-key", "Idempotency-Key is limited to 255 characters")
		}
		meta.IdempotencyKey = key
		meta.RequestHash = s.Store.HashRequest([]byte(r.Method), []byte(r.URL.Path), withoutSecrets(body))
	}
	return commands.Request{Meta: meta, IfMatch: v}, nil
}

// withoutSecrets returns the body in RFC 8785 form with every secret field left out, so that a
// request's fingerprint neither holds nor depends on a password: it is keyed besides (see
// eventstore.HashRequest), but a secret has no business in it at all. Two spellings of the same
// request fingerprint alike. A body that is not JSON is refused later anyway and is taken as is.
func withoutSecrets(body []byte) []byte {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	stripSecrets(v)
	b, err := json.Marshal(v)
	if err != nil {
		return body
	}
	if canon, err := jcs.Transform(b); err == nil {
		return canon
	}
	return b
}

func stripSecrets(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if isSecretField(k) {
				delete(x, k)
				continue
			}
			stripSecrets(e)
		}
	case []any:
		for _, e := range x {
			stripSecrets(e)
		}
	}
}

// isSecretField names the request fields that carry secrets: passwords and their hashes,
// directory bind passwords, private keys, TOTP secrets and codes.
func isSecretField(name string) bool {
	name = strings.ToLower(name)
	for _, suffix := range []string{"password", "password_hash", "private_key", "secret", "totp_code", "recovery_code"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return domain.IsSecretField(name)
}

// respond finishes a write whose answer is rendered from the read models: it replays the first
// response of a repeated idempotent request; otherwise it waits until the read models show the
// write (read-your-writes), renders, answers, and remembers the answer for the idempotency key.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, req commands.Request, out commands.Outcome,
	status int, render func() (any, int, error)) error {
	return s.finish(w, r, req, out, status, render, true)
}

// respondNow finishes a write whose answer is rendered from what the command itself returned,
// so it need not wait for the read models (reads wait instead: see catchUp).
func (s *Server) respondNow(w http.ResponseWriter, r *http.Request, req commands.Request, out commands.Outcome,
	status int, render func() (any, int, error)) error {
	return s.finish(w, r, req, out, status, render, false)
}

// replayedHeaders are the headers of a first response that its replay repeats: where the
// created object or the started job is, and the version the body shows. The others (request id,
// content type) belong to each answer.
var replayedHeaders = []string{"Location", "ETag"}

func (s *Server) finish(w http.ResponseWriter, r *http.Request, req commands.Request, out commands.Outcome,
	status int, render func() (any, int, error), wait bool) error {
	if out.Replayed && out.Record.ResponseStatus != 0 {
		for _, k := range replayedHeaders {
			if v, ok := out.Record.ResponseHeaders[k]; ok {
				w.Header().Set(k, v)
			}
		}
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(out.Record.ResponseStatus)
		_, _ = w.Write(out.Record.ResponseBody)
		return nil
	}
	if wait && out.Appended() {
		if err := s.waitFor(r, out.Position); err != nil {
			return err
		}
	}
	var body []byte
	if render != nil {
		v, version, err := render()
		if err != nil {
			return err
		}
		if body, err = json.Marshal(v); err != nil {
			return err
		}
		body = append(body, '\n')
		if version > 0 {
			w.Header().Set("ETag", etag(version))
		}
	}
	if req.Meta.IdempotencyKey != "" && out.Appended() && !out.Replayed {
		headers := map[string]string{}
		for _, k := range replayedHeaders {
			if v := w.Header().Get(k); v != "" {
				headers[k] = v
			}
		}
		if err := s.Store.SaveIdempotentResponse(r.Context(), req.Meta.Actor, req.Meta.IdempotencyKey, status, headers, body); err != nil {
			s.Logger.Warn("idempotent response not saved", "err", err)
		}
	}
	if out.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	if body == nil {
		w.WriteHeader(status)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}

// waitFor waits, within a bound, until the read models have caught up with pos.
func (s *Server) waitFor(r *http.Request, pos eventstore.Position) error {
	if s.Waiter == nil || pos == (eventstore.Position{}) {
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadYourWritesTimeout)
	defer cancel()
	if err := s.Waiter.Wait(ctx, pos); errors.Is(err, projections.ErrStopped) {
		// The write is safe; the read behind it waits for an operator, not for time.
		return &Error{Status: http.StatusServiceUnavailable, Type: "projection-stopped", RetryAfter: 60,
			Detail: "the change is recorded, but the read models are stopped until an operator resumes them: " + err.Error(), Internal: err}
	} else if err != nil {
		// The write is safe; only the read behind it is late. Say so rather than show stale data.
		return &Error{Status: http.StatusServiceUnavailable, Type: "read-model-behind", RetryAfter: 1,
			Detail: fmt.Sprintf("the change is recorded, but the read models have not caught up with it within %s; read again shortly", s.cfg.ReadYourWritesTimeout), Internal: err}
	}
	return nil
}

// waitBefore is waitFor before a request is carried out: when the wait fails, its problem says
// that nothing was done (waitFor's says the change is recorded).
func (s *Server) waitBefore(r *http.Request, pos eventstore.Position) error {
	err := s.waitFor(r, pos)
	var e *Error
	if errors.As(err, &e) {
		switch e.Type {
		case "projection-stopped":
			e.Detail = "nothing was done: the read models this request needs are stopped until an operator resumes them: " + e.Internal.Error()
		case "read-model-behind":
			e.Detail = fmt.Sprintf("nothing was done: the read models have not caught up with the latest changes within %s; send it again shortly", s.cfg.ReadYourWritesTimeout)
		}
	}
	return err
}

// catchUp makes a read see every write committed before it began, whoever made it: it waits,
// within a bound, until the read models hold the stream's last event (every stream's, for
// streamID ""). A reader that just wrote therefore always reads its write, on any process.
func (s *Server) catchUp(r *http.Request, streamID string) error {
	if s.Waiter == nil {
		return nil
	}
	var pos eventstore.Position
	var err error
	if streamID == "" {
		pos, err = s.Store.Head(r.Context())
	} else {
		_, pos, err = s.Store.StreamHead(r.Context(), streamID)
	}
	if err != nil {
		return err
	}
	return s.waitBefore(r, pos)
}

// catchUpStreams waits, before a request is carried out, until the read models hold every event
// of the streams committed so far.
func (s *Server) catchUpStreams(r *http.Request, streamIDs []string) error {
	if s.Waiter == nil || len(streamIDs) == 0 {
		return nil
	}
	pos, err := s.Store.StreamsHead(r.Context(), streamIDs)
	if err != nil {
		return err
	}
	return s.waitBefore(r, pos)
}

// page reads ?q, ?status, ?limit and ?cursor.
func page(r *http.Request) (postgres.ListQuery, error) {
	q := postgres.ListQuery{Q: r.URL.Query().Get("q"), Status: r.URL.Query().Get("status"), Limit: 50}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return q, &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "bad limit",
				Fields: []FieldError{{Field: "limit", Message: "must be an integer from 1 to 500"}}}
		}
		q.Limit = n
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) == 0 {
			return q, &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "bad cursor",
				Fields: []FieldError{{Field: "cursor", Message: "is not a cursor this API returned"}}}
		}
		q.After = string(b)
	}
	if len(q.Q) > 256 {
		return q, &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "filter too long",
			Fields: []FieldError{{Field: "q", Message: "must be at most 256 characters"}}}
	}
	return q, nil
}

// checkStatusFilter refuses a ?status= that no object of the kind can have: an empty page would
// hide the typo.
func checkStatusFilter(q postgres.ListQuery, allowed []string) error {
	if q.Status == "" || slices.Contains(allowed, q.Status) {
		return nil
	}
	return &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "bad status filter",
		Fields: []FieldError{{Field: "status", Message: "must be one of " + strings.Join(allowed, ", ")}}}
}

// listPage is a page of a list.
type listPage struct {
	Items      any     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// pageOf trims a result fetched with limit+1 rows and sets the cursor from the last key.
func pageOf[T any, V any](rows []T, limit int, key func(T) string, render func(T) V) listPage {
	items := make([]V, 0, min(len(rows), limit))
	var next *string
	for i, row := range rows {
		if i == limit {
			c := base64.RawURLEncoding.EncodeToString([]byte(key(rows[i-1])))
			next = &c
			break
		}
		items = append(items, render(row))
	}
	return listPage{Items: items, NextCursor: next}
}
