package api

import "github.com/gorilla/mux"

// routeConfig is not built yet (this file is replaced by the real config.go).
func (s *Server) routeConfig(r *mux.Router) {}
