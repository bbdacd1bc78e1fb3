package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
)

// stalledBody gives some bytes, then fails as a connection does when the server's read
// deadline passes.
type stalledBody struct{ sent bool }

func (b *stalledBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, `{"name":`), nil
	}
	return 0, os.ErrDeadlineExceeded
}

// A body cut by the read deadline is 408 body_timeout, not a 400 about its JSON.
func TestDecodeBodyTimeout(t *testing.T) {
	t.Parallel()
	var in struct {
		Name string `json:"name"`
	}
	req := httptest.NewRequest("POST", "/", io.NopCloser(&stalledBody{}))
	rec := httptest.NewRecorder()
	writeError(rec, req, slog.New(slog.NewTextHandler(io.Discard, nil)), decode(rec, req, &in))
	if rec.Code != 408 || !strings.Contains(rec.Body.String(), `"code":"body_timeout"`) {
		t.Errorf("%d %s, want 408 body_timeout", rec.Code, rec.Body)
	}
}

// Every error answer is bounded, whatever a domain error quotes.
func TestWriteErrorIsBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 1<<19)
	rec := httptest.NewRecorder()
	writeError(rec, httptest.NewRequest("GET", "/", nil), slog.Default(), errcode.InvalidField(long, "is %q", long))
	var env struct{ Error errorDetail }
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || rec.Code != 400 {
		t.Fatalf("%d %.200s", rec.Code, rec.Body)
	}
	if rec.Body.Len() > 2048 || env.Error.Code != "invalid_field" || env.Error.Field == "" || !strings.HasSuffix(env.Error.Message, "…") {
		t.Errorf("a %d-byte answer: field %.80q, message ends %q", rec.Body.Len(), env.Error.Field, env.Error.Message[len(env.Error.Message)-10:])
	}
}

// A throttled store (after the SDK's own retries) is a 503 throttled with Retry-After, which
// SDKs and Twilio retry, not a 500: the caller's retry is the one layer above the SDK.
func TestWriteErrorThrottled(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	err := fmt.Errorf("dynamo: transaction of 3 ops: %w: ThrottlingException", store.ErrThrottled)
	writeError(rec, httptest.NewRequest("POST", "/v1/batch", nil), slog.New(slog.NewTextHandler(io.Discard, nil)), err)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), `"code":"throttled"`) {
		t.Errorf("throttled: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}
