package profile_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/testclock"
)

// A space pays for daily counts only when they are read: its track calls are counted (and
// their stored events marked counted) while it has a registered prediction, and always
// when imported; otherwise nothing is written for them, on a new profile (a transaction)
// and a returning visitor (single writes) alike. Identifies and pages are never marked.
func TestCountedOnlyWherePredictionsRead(t *testing.T) {
	t.Parallel()
	register := func(ids ...string) func(*testing.T, *profile.Service) {
		return func(t *testing.T, svc *profile.Service) {
			for _, id := range ids {
				if err := svc.RegisterPrediction(context.Background(), sp, id, id+"_score"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	unregister := func(id string) func(*testing.T, *profile.Service) {
		return func(t *testing.T, svc *profile.Service) {
			if err := svc.UnregisterPrediction(context.Background(), sp, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name     string
		setup    []func(*testing.T, *profile.Service)
		imported bool
		counted  bool
	}{
		{"no prediction", nil, false, false},
		{"a registered prediction", []func(*testing.T, *profile.Service){register("pred_a")}, false, true},
		{"imported, no prediction", nil, true, true},
		{"the last prediction unregistered", []func(*testing.T, *profile.Service){register("pred_a"), unregister("pred_a")}, false, false},
		{"one of two unregistered", []func(*testing.T, *profile.Service){register("pred_a", "pred_b"), unregister("pred_a")}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, _ *profile.Service, c *testclock.Clock, st store.Store) {
				ctx := context.Background()
				rec := &recordingStore{Store: st, adds: map[string]int{}}
				svc := profile.New(rec, profile.Options{Now: c.Now})
				for _, f := range tc.setup {
					f(t, svc)
				}
				at := t0.Add(-time.Minute)
				msgs := []message.Message{
					track("co-1", "u-co", "", "Viewed", at),                                       // creates the profile
					purchase("co-2", "u-co", "Order Completed", at, map[string]any{"revenue": 5}), // changes nothing on it
					identify("u-co", "", map[string]any{"plan": "pro"}, at),
					{Type: message.Page, MessageID: "co-3", UserID: "u-co", Name: "Home", Timestamp: at, ReceivedAt: at},
				}
				apply := svc.ApplyMany
				if tc.imported {
					apply = svc.ImportMany
				}
				if _, err := apply(ctx, sp, msgs); err != nil {
					t.Fatal(err)
				}
				adds, _ := rec.counted()
				counts := dailyCounts(t, svc, "user_id:u-co", at)
				if tc.counted && (adds["DC#"] != 2 || adds["DR#"] != 1 || len(counts) != 2) ||
					!tc.counted && (len(adds) != 0 || len(counts) != 0) {
					t.Errorf("adds %v, daily counts %+v; want counted: %v", adds, counts, tc.counted)
				}
				evs, err := svc.Events(ctx, sp, lookup(t, svc, "user_id:u-co"), time.Time{}, t0)
				if err != nil || len(evs) != len(msgs) {
					t.Fatalf("%d events (%v), want %d", len(evs), err, len(msgs))
				}
				for _, e := range evs {
					if want := tc.counted && e.Type == message.Track; e.Counted != want {
						t.Errorf("%s event %s marked counted: %v, want %v", e.Type, e.MessageID, e.Counted, want)
					}
				}
			})
		})
	}
}

// A redelivery that writes the event a crash lost (a returning visitor's event follows its
// dedupe record) marks it as the first application did, whatever the space's registrations
// are by then: the backfill must neither count it again nor miss it.
func TestRedeliveredEventKeepsItsCountedMark(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                    string
		firstCounts, laterCount bool // a prediction registered at the first delivery, at the redelivery
	}{
		{"counted, no longer", true, false},
		{"not counted, counting since", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
				ctx := context.Background()
				if tc.firstCounts {
					predicting(t, svc)
				}
				mustApply(t, svc, track("rm-1", "u-rm", "", "Viewed", t0))
				m := track("rm-2", "u-rm", "", "Viewed", t0.Add(time.Second))
				mustApply(t, svc, m)
				p := lookup(t, svc, "user_id:u-rm")
				items, err := st.Query(ctx, "SP#"+sp+"#P#"+p.ID, store.Page{Prefix: "E#"})
				if err != nil || len(items) != 2 {
					t.Fatalf("events stored: %d, %v", len(items), err)
				}
				if err := st.Transact(ctx, store.DeleteOp(items[1].Key, store.MustExist)); err != nil {
					t.Fatal(err)
				}
				switch {
				case tc.firstCounts && !tc.laterCount:
					if err := svc.UnregisterPrediction(ctx, sp, "pred_test"); err != nil {
						t.Fatal(err)
					}
				case !tc.firstCounts && tc.laterCount:
					predicting(t, svc)
				}
				if res := mustApply(t, svc, m); !res.Duplicate {
					t.Fatalf("redelivery: %+v", res)
				}
				evs, err := svc.Events(ctx, sp, p, time.Time{}, t0.Add(time.Hour))
				if err != nil || len(evs) != 2 || evs[1].MessageID != "rm-2" {
					t.Fatalf("events %+v (%v), want rm-1 and rm-2", evs, err)
				}
				if evs[1].Counted != tc.firstCounts {
					t.Errorf("the event written again is marked counted: %v, want %v (as at its first delivery)", evs[1].Counted, tc.firstCounts)
				}
			})
		})
	}
}

// tally is what DailyCounts should answer for the track calls msgs, each counted once:
// their number per UTC day and event, and the sum of their "revenue".
func tally(msgs ...message.Message) []profile.DayCount {
	type dayEvent struct {
		day   time.Time
		event string
	}
	sums := map[dayEvent]*profile.DayCount{}
	for _, m := range msgs {
		k := dayEvent{midnight(m.Timestamp), m.Event}
		dc := sums[k]
		if dc == nil {
			dc = &profile.DayCount{Day: k.day, Event: k.event}
			sums[k] = dc
		}
		dc.Count++
		if v, ok := m.Properties["revenue"].(float64); ok {
			if dc.Revenue == nil {
				dc.Revenue = map[string]float64{}
			}
			dc.Revenue["revenue"] += v
		}
	}
	var out []profile.DayCount
	for _, dc := range sums {
		out = append(out, *dc)
	}
	slices.SortFunc(out, func(a, b profile.DayCount) int {
		if c := a.Day.Compare(b.Day); c != 0 {
			return c
		}
		return strings.Compare(a.Event, b.Event)
	})
	return out
}

// failCheckpoint fails the n-th write of the counts backfill's checkpoint, as a runner that
// died after a page's writes and before its checkpoint would leave things.
type failCheckpoint struct {
	store.Store
	n    int
	mu   sync.Mutex
	seen int
}

func (f *failCheckpoint) Transact(ctx context.Context, ops ...store.Op) error {
	if len(ops) == 1 && ops[0].Item.SK == "COUNTS#BACKFILL" {
		f.mu.Lock()
		f.seen++
		fail := f.seen == f.n
		f.mu.Unlock()
		if fail {
			return errors.New("the checkpoint was not written")
		}
	}
	return f.Store.Transact(ctx, ops...)
}

// When a space's first prediction registers, BackfillCounts folds the events it stored
// uncounted into the daily counts: it waits until every Apply counts (counting_since),
// folds exactly the unmarked events — a merged-away profile's too, and one an Apply with a
// config read before the registration stored in the grace — so that with the events
// counted live each counts once; it is idempotent run again, after a crash between pages,
// or from the start; and a later registration's backfill, after events expired, keeps the
// larger sums and adds what was stored uncounted meanwhile.
func TestBackfillCounts(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, _ *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		rec := &recordingStore{Store: st, adds: map[string]int{}}
		svc := profile.New(rec, profile.Options{Now: c.Now})
		// Another instance, whose cached config misses the registration for a while.
		stale := profile.New(rec, profile.Options{Now: c.Now})
		if done, err := svc.BackfillCounts(ctx, sp); !done || err != nil {
			t.Fatalf("no prediction: done %v, %v; want nothing to do", done, err)
		}
		day2 := midnight(t0).Add(-day + 10*time.Hour)
		day1 := day2.Add(-day)
		var user, other []message.Message // the track calls of u-bf (with anon-bf merged in), of u-bf2
		apply := func(svc *profile.Service, into *[]message.Message, m message.Message) {
			t.Helper()
			mustApply(t, svc, m)
			*into = append(*into, m)
		}
		apply(svc, &user, track("bf-1", "u-bf", "", "Viewed", day1))
		apply(svc, &user, track("bf-2", "u-bf", "", "Viewed", day1.Add(time.Minute)))
		apply(svc, &user, purchase("bf-3", "u-bf", "Order Completed", day2, map[string]any{"revenue": 10.5}))
		mustApply(t, svc, identify("u-bf", "", map[string]any{"plan": "pro"}, day2))
		anon := track("bf-4", "", "anon-bf", "Viewed", day2)
		apply(svc, &user, anon)
		apply(svc, &user, track("bf-4b", "", "anon-bf", "Viewed", day2.Add(time.Second))) // the same counter as bf-4
		anonBuy := purchase("bf-5", "", "Order Completed", day2.Add(time.Minute), map[string]any{"revenue": 4.0})
		anonBuy.UserID, anonBuy.AnonymousID = "", "anon-bf"
		apply(svc, &user, anonBuy)
		if res := mustApply(t, svc, identify("u-bf", "anon-bf", nil, day2)); len(res.Merged) != 1 {
			t.Fatalf("identify: %+v, want anon-bf merged into u-bf", res)
		}
		apply(stale, &other, track("bf-6", "u-bf2", "", "Viewed", day2)) // stale reads the config now

		predicting(t, svc)
		wait, err := svc.CountsBackfillProgress(ctx, sp)
		if err != nil || wait.Status != profile.BackfillPending || !wait.NotBefore.After(c.Now()) {
			t.Fatalf("progress %+v (%v), want pending until a grace after now", wait, err)
		}
		if done, err := svc.BackfillCounts(ctx, sp); done || err != nil {
			t.Fatalf("before counting_since: done %v, %v; want it to wait", done, err)
		}
		// In the grace: an instance with the config read before the registration stores an
		// event uncounted; one that read it after counts its event.
		apply(stale, &user, track("bf-7", "u-bf", "", "Viewed", day2))
		apply(svc, &user, track("bf-8", "u-bf", "", "Viewed", day2))
		c.Set(wait.NotBefore)
		apply(svc, &user, purchase("bf-9", "u-bf", "Order Completed", day2, map[string]any{"revenue": 1.0}))
		apply(stale, &other, track("bf-10", "u-bf2", "", "Viewed", day1)) // its config is read again: counted
		evs, err := svc.Events(ctx, sp, lookup(t, svc, "user_id:u-bf"), time.Time{}, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if want := e.Type == message.Track && slices.Contains([]string{"bf-8", "bf-9"}, e.MessageID); e.Counted != want {
				t.Errorf("%s marked counted: %v, want %v", e.MessageID, e.Counted, want)
			}
		}

		// A runner stops after its second page's writes, before their checkpoint.
		crashy := profile.New(&failCheckpoint{Store: rec, n: 3}, profile.Options{Now: c.Now})
		if done, err := crashy.BackfillCounts(ctx, sp); done || err == nil {
			t.Fatalf("a failed checkpoint: done %v, %v; want the error", done, err)
		}
		if b, err := svc.CountsBackfillProgress(ctx, sp); err != nil || b.Status != profile.BackfillRunning || b.Error == "" {
			t.Fatalf("after the failure: %+v (%v), want running with the reason", b, err)
		}
		if done, err := svc.BackfillCounts(ctx, sp); !done || err != nil {
			t.Fatalf("the next run: done %v, %v", done, err)
		}
		if b, err := svc.CountsBackfillProgress(ctx, sp); err != nil || b.Status != profile.BackfillDone || b.Error != "" || b.Profiles < 3 {
			t.Fatalf("progress %+v (%v), want done over the 3 listed profiles (and the page done twice)", b, err)
		}
		check := func(when string) {
			t.Helper()
			if got, want := dailyCounts(t, svc, "user_id:u-bf", day1), tally(user...); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: u-bf's counts\n got %+v\nwant %+v", when, got, want)
			}
			if got, want := dailyCounts(t, svc, "user_id:u-bf2", day1), tally(other...); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: u-bf2's counts\n got %+v\nwant %+v", when, got, want)
			}
		}
		check("backfilled")

		// Done is done; and a backfill run again from the start writes nothing new.
		_, folds := rec.counted()
		if done, err := svc.BackfillCounts(ctx, sp); !done || err != nil {
			t.Fatalf("again: done %v, %v", done, err)
		}
		if err := st.Transact(ctx, store.DeleteOp(store.Key{PK: "SP#" + sp, SK: "COUNTS#BACKFILL"}, store.MustExist)); err != nil {
			t.Fatal(err)
		}
		if done, err := svc.BackfillCounts(ctx, sp); !done || err != nil {
			t.Fatalf("from the start: done %v, %v", done, err)
		}
		if _, again := rec.counted(); again != folds {
			t.Errorf("running the backfill again wrote %d folded counters", again-folds)
		}
		check("backfilled twice")

		// Without predictions the space stops counting; registered again, the new backfill
		// folds what was stored meanwhile, and keeps a sum one of whose events expired since
		// (bf-4 of the merged-away profile, deleted as its TTL would; bf-4b stays).
		if err := svc.UnregisterPrediction(ctx, sp, "pred_test"); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Minute)
		apply(svc, &user, track("bf-11", "u-bf", "", "Viewed", day1))
		expire(t, st, lookup(t, svc, "user_id:u-bf"), anon.MessageID)
		predicting(t, svc)
		wait, err = svc.CountsBackfillProgress(ctx, sp)
		if err != nil || wait.Status != profile.BackfillPending {
			t.Fatalf("registered again: %+v (%v), want a new backfill pending", wait, err)
		}
		c.Set(wait.NotBefore)
		if done, err := svc.BackfillCounts(ctx, sp); !done || err != nil {
			t.Fatalf("the new backfill: done %v, %v", done, err)
		}
		check("backfilled after a new registration")
	})
}

// expire deletes the stored event msgID of p (under its id or a merged one), as its TTL
// would.
func expire(t *testing.T, st store.Store, p profile.Profile, msgID string) {
	t.Helper()
	ctx := context.Background()
	for _, pid := range append([]string{p.ID}, p.MergedIDs...) {
		items, err := st.Query(ctx, "SP#"+sp+"#P#"+pid, store.Page{Prefix: "E#"})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			var e profile.Event
			if err := json.Unmarshal(it.Data, &e); err != nil {
				t.Fatal(err)
			}
			if e.MessageID == msgID {
				if err := st.Transact(ctx, store.DeleteOp(it.Key, store.MustExist)); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
	}
	t.Fatalf("event %s of %s not found", msgID, p.ID)
}
