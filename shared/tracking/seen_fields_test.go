package tracking_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/localstack"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

const seenOperator = "upo_seen_fields_test"

type seenEnv struct {
	t        *testing.T
	svc      *tracking.Service
	ws       *workspace.Service
	profiles *profile.Service
	clock    *testclock.Clock
	tenant   workspacetest.Tenant
}

// newSeenEnv assembles the services as the local stack does, on a clock the test moves.
func newSeenEnv(t *testing.T) *seenEnv {
	t.Helper()
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	st, err := localstack.Open(localstack.Config{DataDir: t.TempDir(), OperatorTokenHash: token.Hash(seenOperator), Now: c.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &seenEnv{t: t, svc: st.Tracking, ws: st.Workspaces, profiles: st.Profiles, clock: c, tenant: workspacetest.New(t, st.Workspaces, seenOperator)}
}

// send parses body as the tracking API would and ingests it into src.
func (e *seenEnv) send(src workspace.Source, call string, body any) {
	e.t.Helper()
	b, _ := json.Marshal(body)
	req, err := tracking.Parse(call, b, tracking.Env{ReceivedAt: e.clock.Now()})
	if err != nil {
		e.t.Fatalf("parse %s: %v", b, err)
	}
	if _, err := e.svc.Ingest(context.Background(), src, req); err != nil {
		e.t.Fatalf("ingest %s: %v", b, err)
	}
	e.clock.Add(time.Millisecond) // debugger keys are by time: keep entries apart
}

func (e *seenEnv) seen(sources ...workspace.Source) (ids, traits map[string]int) {
	e.t.Helper()
	f, err := e.svc.SeenFields(context.Background(), sources)
	if err != nil {
		e.t.Fatal(err)
	}
	return f.Identifiers, f.Traits
}

func TestSeenFieldsCountsMessages(t *testing.T) {
	t.Parallel()
	e := newSeenEnv(t)
	ctx := context.Background()
	src := e.tenant.Sources[0]
	// A custom identifier read from a trait or property key.
	set := identity.DefaultSettings()
	set.Identifiers = append(set.Identifiers, identity.Rule{Type: "phone", Custom: true, Keys: []string{"phone"}, Limit: 5, Window: identity.WindowWeekly, Priority: 20})
	if _, err := e.profiles.SaveSettings(ctx, e.tenant.SpaceID(), set); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		call       string
		body       any
		ids, trait map[string]int // what this send adds
	}{
		{"identify: ids, traits and context.traits, a key in both once", "identify", map[string]any{
			"userId": "u1", "traits": map[string]any{"email": "a@example.com", "plan": "pro", "name": "Ada"},
			"context": map[string]any{"traits": map[string]any{"plan": "pro", "company": "Acme"}}},
			map[string]int{"user_id": 1, "email": 1}, map[string]int{"plan": 1, "name": 1, "company": 1}},
		{"track: a custom id in properties, no traits", "track", map[string]any{
			"anonymousId": "a1", "event": "Order Completed", "properties": map[string]any{"phone": "+15550100", "total": 3}},
			map[string]int{"anonymous_id": 1, "phone": 1}, nil},
		{"group: the group's traits are not the user's", "group", map[string]any{
			"userId": "u1", "groupId": "g1", "traits": map[string]any{"email": "team@example.com", "plan": "team"}},
			map[string]int{"user_id": 1, "group_id": 1}, nil},
		{"a blocked value is not an identifier", "identify", map[string]any{
			"userId": "null", "anonymousId": "a2", "traits": map[string]any{"plan": "free"}},
			map[string]int{"anonymous_id": 1}, map[string]int{"plan": 1}},
		{"a device id, and a custom id in context.traits", "screen", map[string]any{
			"userId": "u2", "name": "Home", "context": map[string]any{"device": map[string]any{"type": "ios", "id": "dev-1"},
				"traits": map[string]any{"phone": "+15550101", "tier": "gold"}}},
			map[string]int{"user_id": 1, "ios.id": 1, "phone": 1}, map[string]int{"tier": 1}},
		{"a batch: two values of one type count once; the invalid message not at all", "batch", map[string]any{"batch": []any{
			map[string]any{"type": "identify", "userId": "u3", "traits": map[string]any{"phone": "+15550102", "plan": "pro"},
				"context": map[string]any{"traits": map[string]any{"phone": "+15550103"}}},
			map[string]any{"type": "track", "userId": "u3"}, // no event: rejected
		}}, map[string]int{"user_id": 1, "phone": 1}, map[string]int{"plan": 1}},
		{"a retry (same messageId) counts once", "identify", map[string]any{"messageId": "m-once", "userId": "u4", "traits": map[string]any{"vip": true}},
			map[string]int{"user_id": 1}, map[string]int{"vip": 1}},
		{"…the retry", "identify", map[string]any{"messageId": "m-once", "userId": "u4", "traits": map[string]any{"vip": true}}, nil, nil},
	}
	wantIDs, wantTraits := map[string]int{}, map[string]int{}
	for _, tc := range tests {
		e.send(src, tc.call, tc.body)
		for k, n := range tc.ids {
			wantIDs[k] += n
		}
		for k, n := range tc.trait {
			wantTraits[k] += n
		}
		// Cumulative after each send, so a miscount names the send that caused it.
		ids, traits := e.seen(src)
		if !maps.Equal(ids, wantIDs) || !maps.Equal(traits, wantTraits) {
			t.Fatalf("after %q:\nidentifiers %v, want %v\ntraits %v, want %v", tc.name, ids, wantIDs, traits, wantTraits)
		}
	}

	// Only the sources asked about count.
	other := e.tenant.Sources[1]
	e.send(other, "identify", map[string]any{"userId": "u9", "traits": map[string]any{"plan": "x"}})
	if ids, _ := e.seen(src); ids["user_id"] != wantIDs["user_id"] {
		t.Errorf("another source's message counted: %v", ids)
	}
	if ids, traits := e.seen(src, other); ids["user_id"] != wantIDs["user_id"]+1 || traits["plan"] != wantTraits["plan"]+1 {
		t.Errorf("two sources: %v %v", ids, traits)
	}
	if ids, traits := e.seen(); len(ids)+len(traits) != 0 || ids == nil || traits == nil {
		t.Errorf("no sources: %v %v, want empty maps", ids, traits)
	}
}

// Identifiers are read with the rules of each source's own space, as they are now.
func TestSeenFieldsUsesEachSpacesRulesNow(t *testing.T) {
	t.Parallel()
	e := newSeenEnv(t)
	ctx := context.Background()
	sp, err := e.ws.CreateSpace(ctx, e.tenant.Owner, e.tenant.ID(), "EU")
	if err != nil {
		t.Fatal(err)
	}
	eu, err := e.ws.CreateSource(ctx, e.tenant.Owner, e.tenant.ID(), workspace.NewSource{Name: "EU site", Type: "http", SpaceID: sp.ID})
	if err != nil {
		t.Fatal(err)
	}
	// The EU space reads user_id only: email is a plain trait there, member_no nothing special.
	onlyUserID := identity.Settings{Identifiers: []identity.Rule{{Type: identity.TypeUserID, Limit: 1, Window: identity.WindowEver, Priority: 1}}}
	if _, err := e.profiles.SaveSettings(ctx, sp.ID, onlyUserID); err != nil {
		t.Fatal(err)
	}
	us := e.tenant.Sources[0]
	msg := map[string]any{"userId": "u1", "traits": map[string]any{"email": "a@example.com", "member_no": 42}}
	e.send(us, "identify", msg)
	e.send(eu, "identify", msg)

	for _, tc := range []struct {
		src         workspace.Source
		ids, traits map[string]int
	}{
		{us, map[string]int{"user_id": 1, "email": 1}, map[string]int{"member_no": 1}},
		{eu, map[string]int{"user_id": 1}, map[string]int{"email": 1, "member_no": 1}},
	} {
		if ids, traits := e.seen(tc.src); !maps.Equal(ids, tc.ids) || !maps.Equal(traits, tc.traits) {
			t.Errorf("source of space %s: %v %v, want %v %v", tc.src.SpaceID, ids, traits, tc.ids, tc.traits)
		}
	}

	// A custom identifier defined after the message arrived counts it: the step shows how many
	// recent messages the new identifier would have read.
	withMember := identity.DefaultSettings()
	withMember.Identifiers = append(withMember.Identifiers, identity.Rule{Type: "member", Custom: true, Keys: []string{"member_no"}, Limit: 1, Window: identity.WindowEver, Priority: 12})
	if _, err := e.profiles.SaveSettings(ctx, e.tenant.SpaceID(), withMember); err != nil {
		t.Fatal(err)
	}
	if ids, traits := e.seen(us); ids["member"] != 1 || traits["member_no"] != 0 {
		t.Errorf("after defining member: %v %v", ids, traits)
	}
}

// The debugger keeps the latest DebuggerSize entries; so does the count.
func TestSeenFieldsLatestEntriesOnly(t *testing.T) {
	t.Parallel()
	e := newSeenEnv(t)
	src := e.tenant.Sources[0]
	batch := make([]any, tracking.DebuggerSize+20)
	for i := range batch {
		batch[i] = map[string]any{"type": "identify", "userId": fmt.Sprintf("u%d", i), "traits": map[string]any{"plan": "pro"}}
	}
	e.send(src, "batch", map[string]any{"batch": batch})
	if ids, traits := e.seen(src); ids["user_id"] != tracking.DebuggerSize || traits["plan"] != tracking.DebuggerSize {
		t.Fatalf("counted %v %v over %d messages, want the latest %d", ids, traits, len(batch), tracking.DebuggerSize)
	}
}
