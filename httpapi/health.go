package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flashbacktech/flashauth"
)

func (s *server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "status": "ok"})
	})
}

// handleReadyz reports whether the store answers. Stores apply their
// migrations before they are handed to the server, so a store that answers
// is migrated.
func (s *server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Store.Ping(ctx); err != nil {
			s.log.WarnContext(r.Context(), "readiness check failed", "request_id", RequestID(r.Context()), "err", err)
			writeError(w, &flashauth.Error{Code: flashauth.CodeStoreUnavailable, Message: "The database is unavailable.", RetryAfter: time.Second, Err: err})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "status": "ready"})
	})
}

func (s *server) handleMetrics() http.Handler {
	return promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{})
}
