package httpapi

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/browsersdk"
	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/tracking"
)

// DefaultTrackingRateLimit is each workspace's tracking-API budget, in requests per second
// across every instance: well above what one workspace's SDKs send in an ordinary burst (16
// senders with batches of 10 reach about 1,500 requests/s on this kind of machine).
const DefaultTrackingRateLimit = 5000

// TrackingOptions configure the tracking API.
type TrackingOptions struct {
	Logger    *slog.Logger
	RateLimit int // requests per second per workspace; DefaultTrackingRateLimit when 0
	// Limits is where the per-workspace budget is counted, shared by every instance (the
	// table on AWS, the embedded store locally). Required.
	Limits store.Store
	Now    func() time.Time // receivedAt and the rate limiter's clock; time.Now when nil
	// PublicURL is the base URL SDKs reach this API at, given to them by the SDK settings
	// route; when empty it is taken from the request (see AdminOptions).
	PublicURL string
	// AfterCommit, when set, runs after a request's messages are committed and before the
	// answer is written; a test uses it to lose a response the way a network can.
	AfterCommit func(w http.ResponseWriter, r *http.Request) (answered bool)
}

type trackingAPI struct {
	svc         *tracking.Service
	log         *slog.Logger
	now         func() time.Time
	budget      requestBudget
	afterCommit func(w http.ResponseWriter, r *http.Request) bool
	publicURL   string
}

// sdkPaths are the paths Segment's own SDKs post to, each the same handler as a tracking
// call: analytics-next abbreviates a call to its initial, analytics-swift and
// analytics-kotlin post batches to /v1/b, analytics-java to /v1/import/ (the slash is theirs;
// {$} keeps the pattern from matching the whole subtree).
var sdkPaths = []struct{ pattern, call string }{
	{"/v1/t", "track"}, {"/v1/p", "page"}, {"/v1/i", "identify"}, {"/v1/g", "group"},
	{"/v1/a", "alias"}, {"/v1/s", "screen"}, {"/v1/b", "batch"}, {"/v1/import/{$}", "import"},
}

// MountTracking adds the Segment-compatible tracking API (POST /v1/<call> and the SDKs' own
// paths), the SDK settings (GET /v1/projects/{writeKey}/settings) and the analytics-next
// bundle with its chunks, all open to any web page (publicCORS).
func MountTracking(mux *http.ServeMux, svc *tracking.Service, opts TrackingOptions) {
	t := &trackingAPI{svc: svc, log: opts.Logger, now: opts.Now, afterCommit: opts.AfterCommit, publicURL: strings.TrimRight(opts.PublicURL, "/")}
	if t.log == nil {
		t.log = slog.Default()
	}
	if t.now == nil {
		t.now = time.Now
	}
	t.budget = newRequestBudget(opts.Limits, "tracking", "tracking", "workspace", opts.RateLimit, DefaultTrackingRateLimit, t.now)
	public := func(pattern, method string, h http.Handler) {
		mux.Handle(method+" "+pattern, publicCORS.handle(h))
		mux.Handle("OPTIONS "+pattern, publicCORS.preflight([]string{method}))
		mux.Handle(pattern, publicCORS.handle(methodNotAllowed([]string{method, "OPTIONS"})))
	}
	for _, call := range tracking.Calls {
		public("/v1/"+call, "POST", t.handler(call))
	}
	for _, p := range sdkPaths {
		public(p.pattern, "POST", t.handler(p.call))
	}
	public("/v1/projects/{writeKey}/settings", "GET", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := t.settings(w, r); err != nil {
			writeError(w, r, t.log, err)
		}
	}))
	files := loadSDKFiles()
	public(browsersdk.BundlePath, "GET", files.handler(browsersdk.Standalone))
	public(browsersdk.ChunkPrefix+"{file}", "GET", files.handler(""))
}

func (t *trackingAPI) handler(call string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := t.serve(w, r, call); err != nil {
			writeError(basicChallenge{w, `Basic realm="tracking"`}, r, t.log, err)
		}
	})
}

func (t *trackingAPI) serve(w http.ResponseWriter, r *http.Request, call string) error {
	received := t.now().UTC()
	body, err := readTrackingBody(r)
	if err != nil {
		return err
	}
	env := tracking.Env{ReceivedAt: received, IP: clientIP(r), NewID: func() string { return token.New("up-") }}
	req, parseErr := tracking.Parse(call, body, env)
	key, _, hasBasic := r.BasicAuth()
	if !hasBasic {
		if parseErr != nil {
			return parseErr // no credentials to check, and nothing to record them against
		}
		key = req.WriteKey
	}
	src, err := t.svc.Authenticate(r.Context(), key)
	if err != nil {
		return err
	}
	// Counted after authentication, so a stranger cannot spend a workspace's budget.
	if err := t.budget.take(w, r, src.WorkspaceID); err != nil {
		return err
	}
	if parseErr != nil {
		// The debugger shows what was refused and why (the body, up to one message's size).
		e := errcode.As(parseErr)
		if e == nil {
			return parseErr
		}
		req = tracking.Request{Total: 1, Rejected: []tracking.Rejection{{Code: e.Code, Message: e.Message, Field: e.Field, Raw: body[:min(len(body), tracking.MaxMessageBytes)]}}}
		if _, err := t.svc.Ingest(r.Context(), src, req); err != nil {
			return err
		}
		return parseErr
	}
	res, err := t.svc.Ingest(r.Context(), src, req)
	if err != nil {
		return err
	}
	if t.afterCommit != nil && t.afterCommit(w, r) {
		return nil
	}
	if call != "batch" && call != "import" && len(res.Rejected) > 0 {
		rj := res.Rejected[0]
		return &errcode.Error{Kind: errcode.Invalid, Code: rj.Code, Message: rj.Message, Field: rj.Field}
	}
	out := struct {
		Success  bool                 `json:"success"`
		Rejected []tracking.Rejection `json:"rejected,omitempty"`
		NotKept  int                  `json:"not_kept,omitempty"`
		Warnings []trackingWarning    `json:"warnings,omitempty"`
	}{Success: true, Rejected: res.Rejected}
	// Only /v1/import takes messages older than the retention; it says how many it applied
	// without keeping their events, so nobody looks for them in the explorer. NotKept counts
	// every type (an old identify still sets traits); only track calls are counted.
	if call == "import" && res.NotKept > 0 {
		out.NotKept = res.NotKept
		out.Warnings = []trackingWarning{{Code: "events_not_kept", Message: fmt.Sprintf(
			"%d messages older than %d days were applied and their track events counted for predictions; their raw events are not kept",
			res.NotKept, int(profile.EventRetention/(24*time.Hour)))}}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// trackingWarning is something the caller should know about an accepted request.
type trackingWarning struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// readTrackingBody reads at most MaxRequestBytes (compressed or not) and gunzips it.
func readTrackingBody(r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, tracking.MaxRequestBytes+1))
	if err != nil {
		return nil, readError(err)
	}
	if len(raw) > tracking.MaxRequestBytes {
		return nil, errcode.New(errcode.Invalid, "request_too_large", "the request body is over the limit of %d bytes", tracking.MaxRequestBytes)
	}
	return tracking.Decompress(raw, r.Header.Get("Content-Encoding"), tracking.MaxRequestBytes)
}

// clientIP is the caller's address as the server saw it (API Gateway's source IP on AWS).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
