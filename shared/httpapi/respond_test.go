package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/errcode"
)

func TestWriteErrorStatuses(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cases := []struct {
		err        error
		status     int
		code       string
		retryAfter string
	}{
		{errcode.New(errcode.Unavailable, "identity_contention", "retry"), 503, "identity_contention", "1"},
		{errcode.New(errcode.Unavailable, "upload_busy", "later"), 503, "upload_busy", "1"},
		{errcode.New(errcode.Conflict, "computed_trait_exists", "taken"), 409, "computed_trait_exists", ""},
		{errcode.New(errcode.Forbidden, "entitlement_exceeded", "full"), 403, "entitlement_exceeded", ""},
		{errors.New("disk on fire: /var/secret"), 500, "internal", ""},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		writeError(rec, httptest.NewRequest("GET", "/", nil), log, c.err)
		if rec.Code != c.status || rec.Header().Get("Retry-After") != c.retryAfter {
			t.Errorf("%v: %d Retry-After %q, want %d %q", c.err, rec.Code, rec.Header().Get("Retry-After"), c.status, c.retryAfter)
		}
		if body := rec.Body.String(); !strings.Contains(body, `"code":"`+c.code+`"`) || strings.Contains(body, "/var/secret") {
			t.Errorf("%v: body %s", c.err, body)
		}
	}
}
