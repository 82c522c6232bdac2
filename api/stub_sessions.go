package api

import "github.com/gorilla/mux"

// routeSessions is not built yet (this file is replaced by the real sessions.go).
func (s *Server) routeSessions(r *mux.Router) {}
