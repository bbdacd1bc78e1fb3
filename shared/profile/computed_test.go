package profile_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/flex"
	"github.com/unifiedprofiles/up/shared/flex/flextest"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/traits"
)

// slotKey stands in for the workspace's entitlement counter (the workspace package owns
// the real one; the profile package only commits the op it is handed).
var slotKey = store.Key{PK: "TEST", SK: "SLOTS"}

func takeSlot() store.Op { return store.AddOp(slotKey, 1, 2) }
func freeSlot() store.Op { return store.AddOp(slotKey, -1, 2) }

// withPhone adds the custom identifier a contact center resolves callers by (step 3 of the
// setup): "phone", read from traits.phone and context.traits.phone.
func withPhone(t *testing.T, svc *profile.Service) {
	t.Helper()
	set := identity.DefaultSettings()
	set.Identifiers = append(set.Identifiers, identity.Rule{Type: "phone", Custom: true, Keys: []string{"phone"},
		Limit: 5, Window: identity.WindowEver, Priority: len(set.Identifiers) + 1})
	if _, err := svc.SaveSettings(context.Background(), sp, set); err != nil {
		t.Fatal(err)
	}
}

func createPreset(t *testing.T, svc *profile.Service, name string) profile.ComputedTrait {
	t.Helper()
	d, err := traits.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := svc.CreateComputedTrait(context.Background(), sp, d, name, takeSlot())
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return ct
}

// engagement is a TaskRouter reservation wrap-up as Twilio posts it, turned into its message
// by the flex package exactly as the webhook does.
func engagement(t *testing.T, direction, channel, customer string, at time.Time) message.Message {
	t.Helper()
	m, ok, err := flex.EventFromTaskRouter(flextest.Engagement(direction, channel, customer, at), at)
	if err != nil || !ok {
		t.Fatalf("EventFromTaskRouter: %v %v", ok, err)
	}
	if m.Properties["channelType"] != channel || m.Properties["direction"] != direction {
		t.Fatalf("the flex event says channel %v direction %v, want %s %s", m.Properties["channelType"], m.Properties["direction"], channel, direction)
	}
	return m
}

func values(t *testing.T, svc *profile.Service, identifier string) map[string]any {
	t.Helper()
	p := lookup(t, svc, identifier)
	v, err := svc.ComputedTraitValues(context.Background(), sp, p)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantValues(t *testing.T, svc *profile.Service, identifier string, want map[string]any) {
	t.Helper()
	if got := values(t, svc, identifier); !reflect.DeepEqual(got, want) {
		t.Fatalf("computed traits of %s = %v, want %v", identifier, got, want)
	}
}

const alice, bob = "+14155550101", "+14155550102"

// stream is a contact-center day: inbound and outbound over voice, SMS and WhatsApp. For
// alice, inbound: sms ×2, voice ×2 (voice latest), whatsapp ×1, and 3 outbound whatsapp that
// must not count: total_inbounds 5, frequent_inbound_channel voice (tied with sms at 2, seen
// later). For bob: one inbound sms (below the minimum frequency of 2) and outbound voice.
func stream(t *testing.T) []message.Message {
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	return []message.Message{
		engagement(t, "inbound", "sms", alice, at(1)),
		engagement(t, "outbound", "whatsapp", alice, at(2)),
		engagement(t, "inbound", "sms", alice, at(3)),
		engagement(t, "inbound", "whatsapp", alice, at(4)),
		engagement(t, "outbound", "whatsapp", alice, at(5)),
		engagement(t, "inbound", "voice", alice, at(6)),
		engagement(t, "outbound", "whatsapp", alice, at(7)),
		engagement(t, "inbound", "voice", alice, at(8)),
		engagement(t, "inbound", "sms", bob, at(9)),
		engagement(t, "outbound", "voice", bob, at(10)),
	}
}

var (
	aliceWant = map[string]any{"total_inbounds": 5, "frequent_inbound_channel": "voice"}
	bobWant   = map[string]any{"total_inbounds": 1} // one inbound: below the minimum frequency
)

func TestComputedTraitsLive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		withPhone(t, svc)
		createPreset(t, svc, traits.PresetTotalInbounds)
		createPreset(t, svc, traits.PresetFrequentInboundChannel)
		for _, m := range stream(t) {
			mustApply(t, svc, m)
		}
		wantValues(t, svc, "phone:"+alice, aliceWant)
		wantValues(t, svc, "phone:"+bob, bobWant)

		// A Twilio retry is the same messageId: nothing changes.
		again := stream(t)[0]
		again.MessageID = "flex-retry"
		mustApply(t, svc, again)
		res := mustApply(t, svc, again)
		if !res.Duplicate {
			t.Fatal("the retry was applied again")
		}
		wantValues(t, svc, "phone:"+alice, map[string]any{"total_inbounds": 6, "frequent_inbound_channel": "sms"})
	})
}

func TestComputedTraitsBackfill(t *testing.T) {
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		withPhone(t, svc)
		ctx := context.Background()
		msgs := stream(t)
		// Half the stream arrives before the traits exist, half after.
		for _, m := range msgs[:5] {
			mustApply(t, svc, m)
		}
		total := createPreset(t, svc, traits.PresetTotalInbounds)
		createPreset(t, svc, traits.PresetFrequentInboundChannel)
		for _, m := range msgs[5:] {
			mustApply(t, svc, m)
		}
		// Only the live half so far: alice's inbound voice ×2 after the traits existed.
		wantValues(t, svc, "phone:"+alice, map[string]any{"total_inbounds": 2, "frequent_inbound_channel": "voice"})

		// Not due yet: nothing happens.
		if err := svc.RunBackfills(ctx); err != nil {
			t.Fatal(err)
		}
		if b, _ := svc.BackfillProgress(ctx, sp, total.ID); b.Status != profile.BackfillPending {
			t.Fatalf("backfill before its delay: %+v", b)
		}
		c.Add(profile.DefaultBackfillDelay)
		if err := svc.RunBackfills(ctx); err != nil {
			t.Fatal(err)
		}
		b, err := svc.BackfillProgress(ctx, sp, total.ID)
		if err != nil || b.Status != profile.BackfillDone || b.Profiles != 2 {
			t.Fatalf("backfill progress %+v %v, want done over 2 profiles", b, err)
		}
		wantValues(t, svc, "phone:"+alice, aliceWant)
		wantValues(t, svc, "phone:"+bob, bobWant)

		// Rerunning changes nothing: the backfilled half is replaced, never added twice.
		if _, err := svc.Backfill(ctx, sp, total.ID); err != nil {
			t.Fatal(err)
		}
		wantValues(t, svc, "phone:"+alice, aliceWant)
	})
}

// TestComputedTraitsAcrossMerge splits alice's stream over two profiles (one known by phone,
// one by email), merges them, and expects the values of the whole stream — whether the
// traits were live all along, or created in the middle and backfilled before or after the
// merge.
func TestComputedTraitsAcrossMerge(t *testing.T) {
	cases := []struct {
		name string
		// createAfter: how many messages arrive before the traits exist (-1: from the start);
		// backfillBeforeMerge: run the backfill before the merging identify.
		createAfter         int
		backfillBeforeMerge bool
	}{
		{"live", -1, false},
		{"backfill after merge", 4, false},
		{"backfill before merge", 4, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
				withPhone(t, svc)
				ctx := context.Background()
				msgs := stream(t)[:8] // alice's
				for i := range msgs {
					if i%2 == 1 { // every other interaction came by email, on a second profile
						msgs[i].Context = map[string]any{"traits": map[string]any{"email": "alice@example.com"}}
						msgs[i].AnonymousID = "flex:alice@example.com"
					}
				}
				create := func() {
					createPreset(t, svc, traits.PresetTotalInbounds)
					createPreset(t, svc, traits.PresetFrequentInboundChannel)
				}
				if tc.createAfter < 0 {
					create()
				}
				for i, m := range msgs {
					if i == tc.createAfter {
						create()
					}
					mustApply(t, svc, m)
				}
				if lookup(t, svc, "phone:"+alice).ID == lookup(t, svc, "email:alice@example.com").ID {
					t.Fatal("the two halves should be two profiles before the merge")
				}
				c.Add(profile.DefaultBackfillDelay)
				if tc.backfillBeforeMerge {
					if err := svc.RunBackfills(ctx); err != nil {
						t.Fatal(err)
					}
				}
				mustApply(t, svc, identify("", "agent-merge", map[string]any{"phone": alice, "email": "alice@example.com"}, t0.Add(time.Hour)))
				if err := svc.RunBackfills(ctx); err != nil {
					t.Fatal(err)
				}
				if lookup(t, svc, "phone:"+alice).ID != lookup(t, svc, "email:alice@example.com").ID {
					t.Fatal("the identify did not merge the two profiles")
				}
				wantValues(t, svc, "email:alice@example.com", aliceWant)
			})
		})
	}
}

func TestComputedTraitWindowAgesOut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		withPhone(t, svc)
		d := traits.Definition{Key: "inbounds_7d", Type: traits.EventCounter, Event: flex.EventEngagementInitiated,
			Conditions: []traits.Condition{{Property: "direction", Op: traits.OpEquals, Value: "inbound"}}, WindowDays: 7}
		if _, err := svc.CreateComputedTrait(context.Background(), sp, d, "", takeSlot()); err != nil {
			t.Fatal(err)
		}
		mustApply(t, svc, engagement(t, "inbound", "sms", alice, t0))
		c.Add(3 * 24 * time.Hour)
		mustApply(t, svc, engagement(t, "inbound", "voice", alice, c.Now()))
		wantValues(t, svc, "phone:"+alice, map[string]any{"inbounds_7d": 2})
		c.Add(5 * 24 * time.Hour) // the first is 8 days old now
		wantValues(t, svc, "phone:"+alice, map[string]any{"inbounds_7d": 1})
		c.Add(5 * 24 * time.Hour)
		wantValues(t, svc, "phone:"+alice, map[string]any{"inbounds_7d": 0})
	})
}

func TestComputedTraitDefinitions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		withPhone(t, svc)
		ctx := context.Background()
		total := createPreset(t, svc, traits.PresetTotalInbounds)
		if _, err := svc.CreateComputedTrait(ctx, sp, total.Definition, "", takeSlot()); !errcode.Is(err, "computed_trait_exists") {
			t.Fatalf("same key again: %v, want computed_trait_exists", err)
		}
		if _, err := svc.CreateComputedTrait(ctx, sp, traits.Definition{Key: "Bad Key"}, "", takeSlot()); !errcode.Is(err, "invalid_field") {
			t.Fatalf("invalid definition: %v", err)
		}
		createPreset(t, svc, traits.PresetFrequentInboundChannel)
		d := traits.Definition{Key: "third", Type: traits.EventCounter, Event: "x"}
		if _, err := svc.CreateComputedTrait(ctx, sp, d, "", takeSlot()); !errors.Is(err, profile.ErrNoSlot) {
			t.Fatalf("third trait with the slots taken: %v, want ErrNoSlot", err)
		}
		if list, _ := svc.ComputedTraits(ctx, sp); len(list) != 2 {
			t.Fatalf("a refused create wrote something: %d traits", len(list))
		}
		mustApply(t, svc, engagement(t, "inbound", "sms", alice, t0))
		if err := svc.DeleteComputedTrait(ctx, sp, total.ID, freeSlot()); err != nil {
			t.Fatal(err)
		}
		if err := svc.DeleteComputedTrait(ctx, sp, total.ID, freeSlot()); !errcode.Is(err, "not_found") {
			t.Fatalf("delete twice: %v", err)
		}
		wantValues(t, svc, "phone:"+alice, map[string]any{}) // frequent needs 2; total is gone
		if _, err := svc.CreateComputedTrait(ctx, sp, d, "", takeSlot()); err != nil {
			t.Fatalf("the freed slot: %v", err)
		}
	})
}

// TestBackfillConcurrentWithLive runs a backfill while events for the same callers keep
// arriving: every inbound engagement is counted exactly once, whichever side counted it.
func TestBackfillConcurrentWithLive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		withPhone(t, svc)
		ctx := context.Background()
		callers := []string{"+14155550111", "+14155550112", "+14155550113", "+14155550114"}
		want := map[string]int{}
		var before, after []message.Message
		for i := range 80 {
			caller := callers[i%len(callers)]
			dir := []string{"inbound", "outbound", "inbound"}[i%3]
			m := engagement(t, dir, "sms", caller, t0.Add(time.Duration(i)*time.Second))
			if dir == "inbound" {
				want[caller]++
			}
			if i < 40 {
				before = append(before, m)
			} else {
				after = append(after, m)
			}
		}
		for _, m := range before {
			mustApply(t, svc, m)
		}
		createPreset(t, svc, traits.PresetTotalInbounds)
		c.Add(profile.DefaultBackfillDelay)
		done := make(chan error, 1)
		go func() { done <- svc.RunBackfills(ctx) }()
		for _, m := range after {
			mustApply(t, svc, m)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for _, caller := range callers {
			wantValues(t, svc, "phone:"+caller, map[string]any{"total_inbounds": want[caller]})
		}
	})
}
