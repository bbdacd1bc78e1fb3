package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
)

// healthTimeout bounds the store read of a health check: a load balancer would rather hear
// "unavailable" than wait.
const healthTimeout = 2 * time.Second

// MountHealth adds GET /health (no credentials): 200 {"status":"ok","store":"ok"} when the
// store answers a read, else 503 store_unavailable (with Retry-After). The cause is logged,
// never answered.
func MountHealth(mux *http.ServeMux, st store.Store, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		if err := store.Ping(ctx, st); err != nil {
			log.ErrorContext(r.Context(), "health check: the store did not answer", "err", err)
			writeError(w, r, log, errcode.New(errcode.Unavailable, "store_unavailable", "the store does not answer; retry later"))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "store": "ok"})
	})
	mux.Handle("/health", methodNotAllowed([]string{"GET"}))
}
