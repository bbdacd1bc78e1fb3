package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/flex"
)

// The Flex webhook is open to anyone who knows a workspace id, and checking a signature needs
// the workspace's auth token, which is sealed (a KMS Decrypt in AWS). Two things keep forged
// callbacks from costing a decryption each: the workspace service opens each stored token at
// most once per warm instance (workspace.Service.FlexAuthToken), and after
// flexFailureLimit failed signatures within flexFailureWindow a workspace's callbacks are
// checked only against a token already opened here; the others are answered 429 with
// Retry-After and open nothing. Twilio's genuine callbacks still pass on a warm instance
// during a flood. Like the other limits, it counts per process.

const (
	flexFailureLimit  = 10
	flexFailureWindow = time.Minute
	// flexFailureKeys bounds the workspaces tracked at once: ids in forged paths are free to
	// invent. Past it, the windows that ended are dropped, then all of them.
	flexFailureKeys = 10000
)

// signatureFailures counts failed signatures per workspace in fixed windows.
type signatureFailures struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu sync.Mutex
	m  map[string]failureWindow
}

type failureWindow struct {
	start time.Time
	n     int
}

func newSignatureFailures(limit int, window time.Duration, now func() time.Time) *signatureFailures {
	return &signatureFailures{limit: limit, window: window, now: now, m: map[string]failureWindow{}}
}

// blocked reports whether ws reached the limit in the current window, and how long until the
// window ends.
func (g *signatureFailures) blocked(ws string) (bool, time.Duration) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	fw, ok := g.m[ws]
	if !ok || !now.Before(fw.start.Add(g.window)) {
		return false, 0
	}
	return fw.n >= g.limit, fw.start.Add(g.window).Sub(now)
}

// fail counts one failed signature for ws.
func (g *signatureFailures) fail(ws string) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	fw, ok := g.m[ws]
	if !ok || !now.Before(fw.start.Add(g.window)) {
		if !ok && len(g.m) >= flexFailureKeys {
			g.sweep(now)
		}
		fw = failureWindow{start: now}
	}
	fw.n++
	g.m[ws] = fw
}

func (g *signatureFailures) sweep(now time.Time) {
	for k, fw := range g.m {
		if !now.Before(fw.start.Add(g.window)) {
			delete(g.m, k)
		}
	}
	if len(g.m) >= flexFailureKeys {
		clear(g.m) // all live: forgetting them only lets each fail flexFailureLimit times more
	}
}

// verifySignature checks that sig is Twilio's signature of this request for wsID's auth
// token. Errors: invalid_signature (403) for every unproven callback alike; rate_limited
// (429, with Retry-After) while wsID is over its limit of failed signatures and the
// signature does not verify against a token already opened here.
func (f *flexAPI) verifySignature(w http.ResponseWriter, r *http.Request, wsID string, form url.Values, sig string) error {
	if blocked, wait := f.failures.blocked(wsID); blocked {
		authToken, ok, err := f.ws.CachedFlexAuthToken(r.Context(), wsID)
		if err != nil && !isNotFound(err) {
			return err
		}
		if ok && flex.ValidSignature(authToken, f.fullURL(r), form, sig) {
			return nil
		}
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
		return errcode.New(errcode.RateLimited, "rate_limited",
			"too many callbacks with a wrong signature for this workspace; retry after the Retry-After delay")
	}
	authToken, err := f.ws.FlexAuthToken(r.Context(), wsID)
	if isNotFound(err) {
		f.failures.fail(wsID)
		return badSignature()
	}
	if err != nil {
		return err
	}
	if !flex.ValidSignature(authToken, f.fullURL(r), form, sig) {
		f.failures.fail(wsID)
		return badSignature()
	}
	return nil
}

func isNotFound(err error) bool {
	e := errcode.As(err)
	return e != nil && e.Kind == errcode.NotFound
}
