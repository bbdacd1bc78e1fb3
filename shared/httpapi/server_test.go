package httpapi

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The request log names the route, never the path: paths of the Profile API hold emails and
// phone numbers.
func TestLoggedKeepsIdentifiersOut(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	mux := NewMux()
	mux.HandleFunc("GET /v1/spaces/{sp}/collections/users/profiles/{id}/traits", func(w http.ResponseWriter, r *http.Request) {})
	h := Logged(mux, slog.New(slog.NewJSONHandler(&buf, nil)))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/spaces/sp_1/collections/users/profiles/email:jane@example.com/traits", nil))
	line := buf.String()
	if strings.Contains(line, "jane@example.com") || !strings.Contains(line, `"route":"GET /v1/spaces/{sp}/collections/users/profiles/{id}/traits"`) {
		t.Fatalf("log line %s", line)
	}
}
