package api

import "net/http"

// openapi is not built yet (this file is replaced by the real openapi.go).
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {}
