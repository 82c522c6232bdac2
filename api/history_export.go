package api

import (
	"context"
	"fmt"
	"net/http"

	"mailplane/domain"
	"mailplane/eventstore"
)

// mediaJSONLines is the export's media type: one JSON document a line.
const mediaJSONLines = "application/jsonl"

// domainHistoryExport streams the domain's whole history as JSON lines (eventstore.ExportHeader,
// ExportEvent, ExportAnchor, ExportEnd): every event as stored — sealed secrets stay sealed,
// since the chain is over what is stored — with its chain hash, and the signed anchors that
// cover them, so that `mailplane verify-export` can check the file without the database.
// GET /domains/{domain}/history/export.
func (s *Server) domainHistoryExport(w http.ResponseWriter, r *http.Request) error {
	name, err := domainName(r)
	if err != nil {
		return err
	}
	if err := requireDomainAdmin(principal(r), name); err != nil {
		return err
	}
	if v, _, err := s.Store.StreamHead(r.Context(), domain.DomainStreamID(name)); err != nil {
		return err
	} else if v == 0 {
		return errorf(http.StatusNotFound, "not-found", "domain %q has no history", name)
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadYourWritesTimeout)
	err = s.Store.AwaitDomainStable(ctx, name)
	cancel()
	if err != nil {
		return err
	}
	// A long history outlasts the request timeout; what bounds it instead is each page's own
	// deadline and the client: a write to a client that left fails and ends the export.
	stream := context.WithoutCancel(r.Context())
	flush := func() {}
	if f, ok := w.(http.Flusher); ok {
		flush = f.Flush
	}
	out := &startWriter{w: w, start: func() {
		w.Header().Set("Content-Type", mediaJSONLines)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-history.jsonl"`, name))
		w.WriteHeader(http.StatusOK)
	}}
	err = s.Store.ExportDomain(stream, out, eventstore.ExportOptions{
		Domain: name, ExportedAt: s.now(), PageTimeout: s.cfg.RequestTimeout, Flush: flush, Signer: s.Anchors})
	if err != nil && out.started {
		// Once the status is sent, a failure can only cut the stream: the file then has no end
		// line, which verify-export names.
		s.Logger.Error("history export cut short", "domain", name, "err", err)
		panic(http.ErrAbortHandler)
	}
	return err
}

// startWriter sends the headers and status with the first line, so that a failure before it
// is still answered with a problem document.
type startWriter struct {
	w       http.ResponseWriter
	start   func()
	started bool
}

func (s *startWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.started = true
		s.start()
	}
	return s.w.Write(p)
}
