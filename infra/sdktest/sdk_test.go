// Package sdktest proves that the real Segment and RudderStack SDKs work against the local
// stack's tracking API unchanged but for the host and the write key: @segment/analytics-node
// 3.1.0 and @rudderstack/rudder-sdk-node 3.0.13 (node/*.mjs, run with node; the packages come
// from `npm ci --prefix infra/sdktest/node`) and github.com/segmentio/analytics-go/v3 3.3.0
// (in process). Each SDK sends identify, track, page, screen, group and alias; the test then
// reads, over HTTP only, the Profile API (traits, events, links, external ids) and the
// source's debugger. A second test loses the response of an SDK's first batch after its
// messages are committed and checks that the SDK's retry applies nothing twice.
package sdktest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

type sdk struct {
	name string
	send func(t *testing.T, e *env, run ids) sent
}

var (
	analyticsNode = sdk{"analytics-node", func(t *testing.T, e *env, run ids) sent { return sendNode(t, e, "segment.mjs", run) }}
	rudderNode    = sdk{"rudder-sdk-node", func(t *testing.T, e *env, run ids) sent { return sendNode(t, e, "rudder.mjs", run) }}
	analyticsGo   = sdk{"analytics-go", func(t *testing.T, e *env, run ids) sent { return sendGo(t, e, run, false) }}
)

func TestSDKsDeliverToProfilesAndDebugger(t *testing.T) {
	t.Parallel()
	for _, s := range []sdk{analyticsNode, rudderNode, analyticsGo} {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{})
			run := newRun(t, s.name)
			got := s.send(t, e, run)
			accepted := checkDebugger(t, e, run, got, false)
			checkProfile(t, e, run, accepted)
			// rudder-sdk-node gzips its batches by default: the stack took them as they came.
			if s.name == rudderNode.name && e.gzipped.Load() == 0 {
				t.Errorf("rudder-sdk-node sent no gzip-encoded batch (%d batches); its default is gzip on", e.batches.Load())
			}
			t.Logf("%s: %d POST /v1/batch request(s) reached the stack, %d gzip-encoded %s", s.name, e.batches.Load(), e.gzipped.Load(), got.Notes)
		})
	}
}

// TestSDKRetryAfterLostResponse commits an SDK's first batch and then closes the connection
// without answering (envOptions.loseFirstBatch): to the SDK that is a network error, which
// both analytics-node (its publisher retries thrown fetch errors, after 500 ms and more) and
// analytics-go (it retries any upload error, after 100 ms and more) retry with the same
// messageIds. A closed connection is used rather than a 503 because it is the case that
// needs de-duplication: the first attempt did commit. The retry must be recorded as
// duplicates and change nothing: every event is listed once.
func TestSDKRetryAfterLostResponse(t *testing.T) {
	t.Parallel()
	retryGo := sdk{"analytics-go", func(t *testing.T, e *env, run ids) sent { return sendGo(t, e, run, true) }}
	for _, s := range []sdk{analyticsNode, retryGo} {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{loseFirstBatch: true})
			run := newRun(t, s.name+"-retry")
			got := s.send(t, e, run)
			if lost, n := e.lost.Load(), e.batches.Load(); lost != 1 || n < 2 {
				t.Fatalf("%s: %d batch response(s) lost and %d batch request(s) received; want 1 lost and a retry (2 or more requests)", s.name, lost, n)
			}
			t.Logf("%s: first batch's response lost; %d POST /v1/batch requests in all %s", s.name, e.batches.Load(), got.Notes)
			accepted := checkDebugger(t, e, run, got, true)
			checkProfile(t, e, run, accepted)
		})
	}
}

// checkDebugger checks that the source's debugger lists each of the six calls as accepted
// exactly once, all for the run's user on one profile, with what the SDK sent; with retried,
// that each was then received again and recorded as a duplicate of the same profile (and
// without, that nothing else is there). It returns the accepted entries by type.
func checkDebugger(t *testing.T, e *env, run ids, s sent, retried bool) map[string]debugEntry {
	t.Helper()
	entries, body := e.debugger(t)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("debugger: "+format+"\ndebugger answer:\n%s", append(args, body)...)
	}
	accepted := map[string]debugEntry{} // by type
	dups := map[string]debugEntry{}     // by messageId
	for _, d := range entries {
		if d.Normalised == nil || d.Outcome == nil {
			fail("entry %s is %s, not accepted", d, d.Status)
		}
		switch d.Status {
		case "accepted":
			if prev, ok := accepted[d.Normalised.Type]; ok {
				fail("two accepted %s messages: %s and %s", d.Normalised.Type, prev.Normalised.MessageID, d.Normalised.MessageID)
			}
			accepted[d.Normalised.Type] = d
		case "duplicate":
			if _, ok := dups[d.Normalised.MessageID]; ok {
				fail("messageId %s is a duplicate twice", d.Normalised.MessageID)
			}
			dups[d.Normalised.MessageID] = d
		default:
			fail("entry %s has status %q", d, d.Status)
		}
	}
	if len(accepted) != len(wantTypes) {
		fail("%d accepted messages (%v), want one of each of %v", len(accepted), keys(accepted), wantTypes)
	}
	profileID := accepted["identify"].Outcome.ProfileID
	if profileID == "" {
		fail("the identify has no outcome.profile_id")
	}
	for _, typ := range wantTypes {
		d, ok := accepted[typ]
		if !ok {
			fail("no accepted %s", typ)
		}
		n := d.Normalised
		if n.UserID != run.UserID {
			fail("the %s is for user %q, want %q", typ, n.UserID, run.UserID)
		}
		if d.Outcome.ProfileID != profileID {
			fail("the %s went to profile %s, the identify to %s: one user, one profile", typ, d.Outcome.ProfileID, profileID)
		}
		if id := s.MessageIDs[typ]; id != "" && id != n.MessageID {
			fail("the %s has messageId %s; the SDK reported %s", typ, n.MessageID, id)
		}
		if retried {
			dup, ok := dups[n.MessageID]
			if !ok {
				fail("the %s (%s) was not received again as a duplicate after the lost response", typ, n.MessageID)
			}
			if dup.Outcome.ProfileID != profileID || !dup.ReceivedAt.After(d.ReceivedAt) {
				fail("the duplicate %s should be newer than the accepted %s and name its profile", dup, d)
			}
		}
	}
	if !retried && len(dups) > 0 {
		fail("%d duplicates without a retry", len(dups))
	}
	if retried && len(dups) != len(wantTypes) {
		fail("%d duplicates, want %d (the retried batch)", len(dups), len(wantTypes))
	}
	for _, c := range []struct{ typ, field, got, want string }{
		{"track", "event", accepted["track"].Normalised.Event, "Order Completed"},
		{"page", "name", accepted["page"].Normalised.Name, "Intro"},
		{"screen", "name", accepted["screen"].Normalised.Name, "Home"},
		{"group", "group_id", accepted["group"].Normalised.GroupID, run.GroupID},
		{"alias", "previous_id", accepted["alias"].Normalised.PreviousID, run.PreviousID},
	} {
		if c.got != c.want {
			fail("the %s's normalised %s is %q, want %q", c.typ, c.field, c.got, c.want)
		}
	}
	return accepted
}

// paEvent is an event as the Profile API lists it.
type paEvent struct {
	Type       string         `json:"type"`
	Event      string         `json:"event"`
	Name       string         `json:"name"`
	MessageID  string         `json:"message_id"`
	SourceID   string         `json:"source_id"`
	Properties map[string]any `json:"properties"`
}

// checkProfile reads the user's profile through the Profile API: the identify's traits, each
// of the run's messages listed once as an event (track, page and screen with their names and
// properties), the group as a link to the account, and the user's external ids.
func checkProfile(t *testing.T, e *env, run ids, accepted map[string]debugEntry) {
	t.Helper()
	user := "user_id:" + run.UserID

	var traits struct {
		Traits map[string]any `json:"traits"`
	}
	body := e.profile(t, user, "traits", "limit=200", &traits)
	want := map[string]any{"email": run.Email}
	for k, v := range wantTraits {
		want[k] = v
	}
	for k, v := range want {
		if !jsonEqual(traits.Traits[k], v) {
			t.Errorf("Profile API traits: %s is %v, want %v (the identify's); answer:\n%s", k, traits.Traits[k], v, body)
		}
	}

	var events struct {
		Data []paEvent `json:"data"`
	}
	body = e.profile(t, user, "events", "limit=100", &events)
	seen := map[string]int{}
	byID := map[string]paEvent{}
	for _, ev := range events.Data {
		seen[ev.MessageID]++
		byID[ev.MessageID] = ev
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("Profile API events: messageId %s is listed %d times, want once; answer:\n%s", id, n, body)
		}
	}
	for _, typ := range wantTypes {
		id := accepted[typ].Normalised.MessageID
		ev, ok := byID[id]
		if !ok {
			t.Errorf("Profile API events: the %s (%s) is not listed; answer:\n%s", typ, id, body)
			continue
		}
		if ev.Type != typ || ev.SourceID != e.SourceID {
			t.Errorf("Profile API events: %s is a %s from source %s, want a %s from %s; answer:\n%s", id, ev.Type, ev.SourceID, typ, e.SourceID, body)
		}
	}
	if len(events.Data) != len(wantTypes) {
		t.Errorf("Profile API events: %d events, want the run's %d; answer:\n%s", len(events.Data), len(wantTypes), body)
	}
	for _, c := range []struct {
		typ, field, want string
		props            map[string]any
	}{
		{"track", "event", "Order Completed", map[string]any{"revenue": 42.5, "currency": "USD"}},
		{"page", "name", "Intro", map[string]any{"url": "https://x.test/intro"}},
		{"screen", "name", "Home", map[string]any{"variant": "a"}},
	} {
		ev, ok := byID[accepted[c.typ].Normalised.MessageID]
		if !ok {
			continue // reported above
		}
		got := ev.Event
		if c.field == "name" {
			got = ev.Name
		}
		if got != c.want {
			t.Errorf("Profile API events: the %s's %s is %q, want %q; answer:\n%s", c.typ, c.field, got, c.want, body)
		}
		for k, v := range c.props {
			if !jsonEqual(ev.Properties[k], v) {
				t.Errorf("Profile API events: the %s's property %s is %v, want %v; answer:\n%s", c.typ, k, ev.Properties[k], v, body)
			}
		}
	}

	// group: the user is linked to the account.
	var links struct {
		Data []struct {
			ToCollection string `json:"to_collection"`
			ExternalIDs  []struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			} `json:"external_ids"`
		} `json:"data"`
	}
	body = e.profile(t, user, "links", "", &links)
	linked := false
	for _, l := range links.Data {
		for _, x := range l.ExternalIDs {
			linked = linked || (l.ToCollection == "accounts" && x.Type == "group_id" && x.ID == run.GroupID)
		}
	}
	if !linked || len(links.Data) != 1 {
		t.Errorf("Profile API links: want one link to accounts with group_id %s (the group call); answer:\n%s", run.GroupID, body)
	}

	// The identifiers the messages carried: userId and the identify's email.
	var xids struct {
		Data []struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"data"`
	}
	body = e.profile(t, user, "external_ids", "limit=100", &xids)
	have := map[string]bool{}
	for _, x := range xids.Data {
		have[x.Type+":"+x.ID] = true
	}
	for _, id := range []string{user, "email:" + run.Email} {
		if !have[id] {
			t.Errorf("Profile API external_ids: %s is missing; answer:\n%s", id, body)
		}
	}
	// alias: previousId is not an identifier in this product (shared/identity), so the alias
	// is an event of the user's profile (checked above) and merges nothing.
	t.Logf("external_ids of %s: %s", user, strings.TrimSpace(string(body)))
}

// jsonEqual compares a decoded JSON value with a Go one as JSON (3 == 3.0).
func jsonEqual(got, want any) bool {
	a, err1 := json.Marshal(got)
	b, err2 := json.Marshal(want)
	return err1 == nil && err2 == nil && string(a) == string(b)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
