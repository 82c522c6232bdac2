package api

import (
	"mailplane/domain"
	"net/http"
	"time"

	"github.com/gorilla/mux"
)

// Sessions of an account: the account itself, the admins of its domain and global admins may
// list them and end one. Ending a session refuses its token from the next request on. An
// account ending its own session is logging out (there, or on another device).
func (s *Server) routeSessions(r *mux.Router) {
	r.Handle("/accounts/{address}/sessions", s.handle(s.listSessions)).Methods(http.MethodGet)
	r.Handle("/accounts/{address}/sessions/{id}", s.handle(s.endSession)).Methods(http.MethodDelete)
}

// sessionJSON is an open session. current marks the one the request came with.
type sessionJSON struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	Current    bool      `json:"current"`
}

// listSessions answers the account's open (not ended, not expired) sessions, newest first. An
// account has few, so the list is not paginated; next_cursor is always null.
func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) error {
	addr, err := pathAddress(r, "address")
	if err != nil {
		return err
	}
	p := principal(r)
	if err := requireSelfOrAdmin(p, addr); err != nil {
		return err
	}
	if err := s.catchUp(r, domain.AccountStreamID(addr)); err != nil {
		return err
	}
	if _, err := s.Reads.Account(r.Context(), addr.String()); err != nil {
		return err
	}
	sessions, err := s.Commands.Sessions(r.Context(), addr)
	if err != nil {
		return err
	}
	items := make([]sessionJSON, len(sessions))
	for i, x := range sessions {
		items[i] = sessionJSON{ID: x.ID, CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, ExpiresAt: x.ExpiresAt,
			IP: x.IP, UserAgent: x.UserAgent, Current: x.ID == p.SessionID}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, listPage{Items: items})
	return nil
}

// endSession ends one open session (404 when the account has no such open session).
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) error {
	addr, err := pathAddress(r, "address")
	if err != nil {
		return err
	}
	p := principal(r)
	if err := requireSelfOrAdmin(p, addr); err != nil {
		return err
	}
	if err := s.mayChange(r, p, addr); err != nil {
		return err
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	out, err := s.Commands.EndSession(r.Context(), req, addr, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	return s.respondNow(w, r, req, out, http.StatusNoContent, nil)
}
