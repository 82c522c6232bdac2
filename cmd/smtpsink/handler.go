package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
)

// Handler serves a Store's messages over HTTP:
//
//	GET    /messages[?to=addr]  the messages as a JSON array, oldest first
//	DELETE /messages            forget all messages (204)
type Handler struct {
	store  *Store
	logger *slog.Logger
	mux    *http.ServeMux
}

// NewHandler returns a Handler for store.
func NewHandler(store *Store, logger *slog.Logger) *Handler {
	h := &Handler{store: store, logger: logger, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /messages", h.list)
	h.mux.HandleFunc("DELETE /messages", h.clear)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(h.store.List(r.URL.Query().Get("to"))); err != nil {
		h.logger.Error("write messages", "err", err)
	}
}

func (h *Handler) clear(w http.ResponseWriter, _ *http.Request) {
	n := h.store.Clear()
	h.logger.Info("messages cleared", "count", n)
	w.WriteHeader(http.StatusNoContent)
}
