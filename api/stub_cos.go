package api

import "github.com/gorilla/mux"

// routeCOS is not built yet (this file is replaced by the real cos.go).
func (s *Server) routeCOS(r *mux.Router) {}
