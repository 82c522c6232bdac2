package api

import (
	"net/http"

	"github.com/gorilla/mux"
)

func (s *Server) routeConfig(r *mux.Router)   {}
func (s *Server) routeCOS(r *mux.Router)      {}
func (s *Server) routeAccounts(r *mux.Router) {}
func (s *Server) routeSessions(r *mux.Router) {}
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {}
