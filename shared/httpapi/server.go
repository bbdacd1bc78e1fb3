package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
)

// NewMux returns a mux that answers unknown paths with the error envelope; the APIs mount on it.
func NewMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, slog.Default(), errcode.NotFoundf("no API at %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// Logged logs one line per request: method, route pattern, status, duration. Headers,
// bodies and raw paths are never logged: they carry tokens and customer data (a Profile API
// path holds an email or a phone number).
func Logged(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				log.ErrorContext(r.Context(), "panic", "method", r.Method, "route", r.Pattern, "panic", v)
				if !rec.wrote {
					writeError(rec, r, log, errcode.New(errcode.Internal, "internal", "something went wrong on our side; retry, and contact support if it persists"))
				}
			}
			log.InfoContext(r.Context(), "request", "method", r.Method, "route", r.Pattern, "status", rec.status, "ms", float64(time.Since(start).Microseconds())/1000)
		}()
		h.ServeHTTP(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (flushing for live tails).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
