package httpapi

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/flex/flextest"
	"github.com/unifiedprofiles/up/shared/secrets"
	"github.com/unifiedprofiles/up/shared/secrets/secretstest"
	"github.com/unifiedprofiles/up/shared/testclock"
)

// newCountedFlexStack is newFlexStack with a Sealer that counts its Opens and a settable
// clock for the webhook.
func newCountedFlexStack(t *testing.T) (*fxStack, *secretstest.Counting, *testclock.Clock) {
	t.Helper()
	var counting *secretstest.Counting
	clock := testclock.New(time.Now().UTC())
	s := newFlexStackWith(t, flexStackOptions{now: clock.Now, sealer: func(inner secrets.Sealer) secrets.Sealer {
		counting = &secretstest.Counting{Sealer: inner}
		return counting
	}})
	return s, counting, clock
}

// forge posts a callback to path signed with a token that is not the workspace's.
func (s *fxStack) forge(path string, n int) response {
	s.t.Helper()
	form := flextest.Callback("reservation.wrapup", "voice", fmt.Sprintf(`{"from":"+1415555%04d"}`, n%10000), time.Now())
	return s.post(path, form, fxSign(s.t, "99999999999999999999999999999999", s.base+path, form))
}

// genuine posts a callback to tn signed with tok as Twilio would.
func (s *fxStack) genuine(tn fxTenant, tok string) response {
	s.t.Helper()
	form := flextest.Callback("reservation.wrapup", "voice", `{"from":"+14155550142"}`, time.Now())
	return s.post(tn.webhookPath(), form, fxSign(s.t, tok, s.base+tn.webhookPath(), form))
}

// A flood of forged callbacks costs no decryption each: the token is opened once per warm
// instance, and after flexFailureLimit failures the workspace's unproven callbacks are
// answered 429 with Retry-After. Twilio's genuine callbacks still pass, other workspaces are
// not affected, and the limit ends with its window.
func TestFlexWebhookForgedCallbacksOpenNothing(t *testing.T) {
	t.Parallel()
	s, sealer, clock := newCountedFlexStack(t)
	a, b, unset := s.tenant(fxTokenA), s.tenant(fxTokenB), s.tenant("")
	if n := sealer.Opens.Load(); n != 0 {
		t.Fatalf("setting tokens opened %d", n)
	}
	for _, tc := range []struct {
		name     string
		path     string
		maxOpens int64
	}{
		{"configured workspace", a.webhookPath(), 1},
		{"workspace without a token", unset.webhookPath(), 0},
		{"unknown workspace", "/v1/flex/ws_nope/webhooks", 0},
	} {
		before := sealer.Opens.Load()
		statuses := map[int]int{}
		for i := range 100 {
			r := s.forge(tc.path, i)
			statuses[r.status]++
			switch r.status {
			case 403:
				if code, _ := r.errorCode(t); code != "invalid_signature" {
					t.Errorf("%s: 403 %s", tc.name, code)
				}
			case 429:
				if code, _ := r.errorCode(t); code != "rate_limited" {
					t.Errorf("%s: 429 %s", tc.name, code)
				}
				if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
					t.Errorf("%s: Retry-After %q", tc.name, r.header.Get("Retry-After"))
				}
			default:
				t.Fatalf("%s: forged callback %d: status %d: %s", tc.name, i, r.status, r.body)
			}
		}
		if opens := sealer.Opens.Load() - before; opens > tc.maxOpens {
			t.Errorf("%s: 100 forged callbacks opened the token %d times, want at most %d", tc.name, opens, tc.maxOpens)
		}
		if statuses[403] != flexFailureLimit || statuses[429] != 100-flexFailureLimit {
			t.Errorf("%s: statuses %v, want %d × 403 then 429", tc.name, statuses, flexFailureLimit)
		}
	}
	opens := sealer.Opens.Load()
	// A is over its limit, yet Twilio's own callbacks pass: its token is already open here.
	if r := s.genuine(a, fxTokenA); r.status != 200 {
		t.Errorf("genuine callback during the flood: %d %s", r.status, r.body)
	}
	// B is not affected.
	if r := s.genuine(b, fxTokenB); r.status != 200 {
		t.Errorf("B's genuine callback: %d %s", r.status, r.body)
	}
	if r := s.forge(b.webhookPath(), 1); r.status != 403 {
		t.Errorf("B's first forged callback: %d", r.status)
	}
	if n := sealer.Opens.Load() - opens; n != 1 {
		t.Errorf("%d Opens for B's first callbacks, want 1", n)
	}
	// The window ends: a forged callback is a plain 403 again.
	clock.Add(flexFailureWindow)
	if r := s.forge(a.webhookPath(), 1); r.status != 403 {
		t.Errorf("after the window: %d", r.status)
	}
}

// A new auth token is used from the next callback on, and the old one is refused: the cache
// follows the stored token.
func TestFlexWebhookSeesNewToken(t *testing.T) {
	t.Parallel()
	s, sealer, _ := newCountedFlexStack(t)
	tn := s.tenant(fxTokenA)
	for range 3 {
		if r := s.genuine(tn, fxTokenA); r.status != 200 {
			t.Fatalf("signed with A: %d %s", r.status, r.body)
		}
	}
	if n := sealer.Opens.Load(); n != 1 {
		t.Errorf("%d Opens for three callbacks, want 1", n)
	}
	s.want(200, "PUT", "/v1/workspaces/"+tn.ID()+"/flex", tn.Token, map[string]any{"auth_token": fxTokenB})
	if r := s.genuine(tn, fxTokenB); r.status != 200 {
		t.Errorf("signed with the new token: %d %s", r.status, r.body)
	}
	if r := s.genuine(tn, fxTokenA); r.status != 403 {
		t.Errorf("signed with the old token: %d", r.status)
	}
	if n := sealer.Opens.Load(); n != 2 {
		t.Errorf("%d Opens after one change of token, want 2", n)
	}
}

// Over the limit, a token not yet opened here is not opened at all: even a genuine callback
// waits for the window (429 with Retry-After), and passes after it.
func TestFlexWebhookOverLimitOpensNothing(t *testing.T) {
	t.Parallel()
	s, sealer, clock := newCountedFlexStack(t)
	tn := s.tenant(fxTokenA)
	for i := range flexFailureLimit {
		s.forge(tn.webhookPath(), i)
	}
	s.want(200, "PUT", "/v1/workspaces/"+tn.ID()+"/flex", tn.Token, map[string]any{"auth_token": fxTokenB})
	opens := sealer.Opens.Load()
	r := s.genuine(tn, fxTokenB)
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Errorf("over the limit with a token not yet opened: %d (Retry-After %q)", r.status, r.header.Get("Retry-After"))
	}
	if n := sealer.Opens.Load() - opens; n != 0 {
		t.Errorf("%d Opens over the limit", n)
	}
	clock.Add(flexFailureWindow)
	if r := s.genuine(tn, fxTokenB); r.status != 200 {
		t.Errorf("after the window: %d %s", r.status, r.body)
	}
}

func TestSignatureFailuresWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		fails    []time.Duration // when each failure happens, from t0
		at       time.Duration   // when blocked is asked
		blocked  bool
		wantWait time.Duration
	}{
		{"none", nil, 0, false, 0},
		{"under the limit", []time.Duration{0, time.Second}, 2 * time.Second, false, 0},
		{"at the limit", []time.Duration{0, time.Second, 2 * time.Second}, 10 * time.Second, true, 50 * time.Second},
		{"window over", []time.Duration{0, time.Second, 2 * time.Second}, time.Minute, false, 0},
		{"new window counts afresh", []time.Duration{0, time.Second, time.Minute, time.Minute + time.Second}, time.Minute + 2*time.Second, false, 0},
		{"full new window", []time.Duration{0, time.Minute, time.Minute + time.Second, time.Minute + 2*time.Second}, time.Minute + 30*time.Second, true, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := testclock.New(t0)
			g := newSignatureFailures(3, time.Minute, clock.Now)
			for _, at := range tc.fails {
				clock.Set(t0.Add(at))
				g.fail("ws_a")
			}
			clock.Set(t0.Add(tc.at))
			blocked, wait := g.blocked("ws_a")
			if blocked != tc.blocked || (blocked && wait != tc.wantWait) {
				t.Errorf("blocked %v wait %v, want %v %v", blocked, wait, tc.blocked, tc.wantWait)
			}
			if b, _ := g.blocked("ws_b"); b {
				t.Error("another workspace is blocked")
			}
		})
	}
}

// Invented workspace ids cannot grow the table without bound.
func TestSignatureFailuresBounded(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	g := newSignatureFailures(3, time.Minute, clock.Now)
	for i := range 3 * flexFailureKeys {
		g.fail("ws_" + strings.Repeat("x", i%7) + strconv.Itoa(i))
	}
	if n := len(g.m); n > flexFailureKeys {
		t.Errorf("%d workspaces tracked, the bound is %d", n, flexFailureKeys)
	}
}
