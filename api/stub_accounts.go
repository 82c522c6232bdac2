package api

import "github.com/gorilla/mux"

// routeAccounts is not built yet (this file is replaced by the real accounts.go).
func (s *Server) routeAccounts(r *mux.Router) {}
