package profile_test

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/testclock"
)

const day = 24 * time.Hour

// midnight is the UTC day of t.
func midnight(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// purchase is a track call with properties.
func purchase(msgID, userID, event string, at time.Time, props map[string]any) message.Message {
	m := track(msgID, userID, "", event, at)
	m.Properties = props
	return m
}

// recordingStore records the Add ops it commits, by sort-key prefix, and the Puts of folded
// counters (BackfillCounts), keeping the bbolt store's batching (store.Batcher) when there
// is one.
type recordingStore struct {
	store.Store
	mu    sync.Mutex
	adds  map[string]int // "DC#"/"DR#" → Add ops committed
	folds int            // Puts of "DB#"/"DBR#" items committed
}

func (r *recordingStore) record(ops []store.Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, op := range ops {
		switch {
		case op.Kind == store.Add:
			r.adds[op.Item.SK[:3]]++
		case op.Kind == store.Put && strings.HasPrefix(op.Item.SK, "DB"):
			r.folds++
		}
	}
}

func (r *recordingStore) counted() (adds map[string]int, folds int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.adds), r.folds
}

// predicting registers a prediction in the space, so that it counts messages as they are
// applied.
func predicting(t *testing.T, svc *profile.Service) {
	t.Helper()
	if err := svc.RegisterPrediction(context.Background(), sp, "pred_test", "test_score"); err != nil {
		t.Fatal(err)
	}
}

// mustImport applies msgs as /v1/import does, each without error.
func mustImport(t *testing.T, svc *profile.Service, msgs ...message.Message) []profile.Outcome {
	t.Helper()
	outs, err := svc.ImportMany(context.Background(), sp, msgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		if o.Err != nil {
			t.Fatalf("import %s: %v", msgs[i].MessageID, o.Err)
		}
	}
	return outs
}

func (r *recordingStore) Transact(ctx context.Context, ops ...store.Op) error {
	err := r.Store.Transact(ctx, ops...)
	if err == nil {
		r.record(ops)
	}
	return err
}

func (r *recordingStore) TransactBatch(ctx context.Context, txs []store.Tx) ([]error, error) {
	errs, err := store.TransactBatch(ctx, r.Store, txs)
	for i := range errs {
		if errs[i] == nil {
			r.record(txs[i].Ops)
		}
	}
	return errs, err
}

func dailyCounts(t *testing.T, svc *profile.Service, identifier string, since time.Time) []profile.DayCount {
	t.Helper()
	got, err := svc.DailyCounts(context.Background(), sp, lookup(t, svc, identifier), since)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// In a space with a prediction, track calls are counted per UTC day and event, and their
// money properties summed in cents, one Add per counter however many events of a batch it
// counts; a redelivered message, in the same batch or later, counts once; identifies and
// pages are not counted.
func TestDailyCountsFromTrackedEvents(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, _ *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		rec := &recordingStore{Store: st, adds: map[string]int{}}
		svc := profile.New(rec, profile.Options{Now: c.Now})
		predicting(t, svc)
		today := midnight(t0)
		if t0.Sub(today) < time.Hour { // keep "an hour ago" on the same UTC day
			today = today.Add(-day)
		}
		at := today.Add(time.Hour)
		yesterday := at.Add(-day)
		first := purchase("dc-1", "u-dc", "Order Completed", at, map[string]any{"revenue": 10.5, "total": 12.0})
		batch := []message.Message{
			track("dc-0", "u-dc", "", "Viewed", yesterday),
			first,
			purchase("dc-2", "u-dc", "Order Completed", at.Add(time.Minute), map[string]any{"revenue": 20, "price": "5", "value": 0.004}),
			// A refund: counted as an event, its negative revenue left out.
			purchase("dc-3", "u-dc", "Order Completed", at.Add(2*time.Minute), map[string]any{"revenue": -7.25, "total": 3.333}),
			first, // the same messageId again in the batch
			track("dc-4", "u-dc", "", "Viewed", at),
			track("dc-5", "u-dc", "", "Viewed", at.Add(time.Second)),
			identify("u-dc", "", map[string]any{"plan": "pro"}, at),
			{Type: message.Page, MessageID: "dc-6", UserID: "u-dc", Name: "Home", Timestamp: at, ReceivedAt: at},
		}
		c.Set(at.Add(time.Hour))
		if _, err := svc.ApplyMany(ctx, sp, batch); err != nil {
			t.Fatal(err)
		}
		if res := mustApply(t, svc, first); !res.Duplicate { // the SDK sends it again later
			t.Fatalf("redelivery: %+v", res)
		}
		want := []profile.DayCount{
			{Day: midnight(yesterday), Event: "Viewed", Count: 1},
			{Day: today, Event: "Order Completed", Count: 3, Revenue: map[string]float64{"revenue": 30.5, "total": 15.33}},
			{Day: today, Event: "Viewed", Count: 2},
		}
		if got := dailyCounts(t, svc, "user_id:u-dc", yesterday.Add(time.Hour)); !reflect.DeepEqual(got, want) {
			t.Errorf("daily counts\n got %+v\nwant %+v", got, want)
		}
		if got := dailyCounts(t, svc, "user_id:u-dc", today.Add(23*time.Hour)); !reflect.DeepEqual(got, want[1:]) {
			t.Errorf("since today: %+v, want today's only", got)
		}
		// One Add per (profile, day, event) and per money property, for the whole batch.
		if rec.adds["DC#"] != 3 || rec.adds["DR#"] != 2 {
			t.Errorf("%d count and %d revenue Adds committed, want 3 and 2 (one per counter)", rec.adds["DC#"], rec.adds["DR#"])
		}
		// Each counter expires CountsRetention after its day.
		pk := "SP#" + sp + "#P#" + lookup(t, svc, "user_id:u-dc").ID
		for _, sk := range []string{"DC#" + today.Format("20060102") + "#Viewed", "DR#" + today.Format("20060102") + "#revenue#Order Completed"} {
			it, err := st.Get(ctx, store.Key{PK: pk, SK: sk})
			if err != nil {
				t.Fatalf("%s: %v", sk, err)
			}
			if want := today.Add(profile.CountsRetention).Unix(); it.ExpiresAt != want {
				t.Errorf("%s expires at %d, want %d (its day + CountsRetention)", sk, it.ExpiresAt, want)
			}
		}
	})
}

// The counts of profiles merged into another stay under their ids (as their events do) and
// are summed into the survivor's.
func TestDailyCountsAcrossMerge(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		predicting(t, svc)
		at := t0.Add(-time.Minute)
		mustApply(t, svc, track("dm-1", "", "anon-dm", "Viewed", at))
		mustApply(t, svc, purchase("dm-2", "u-dm", "Viewed", at, map[string]any{"value": 1.5}))
		mustApply(t, svc, purchase("dm-3", "u-dm", "Viewed", at, map[string]any{"value": 2}))
		res := mustApply(t, svc, identify("u-dm", "anon-dm", nil, at))
		if len(res.Merged) != 1 {
			t.Fatalf("identify: %+v, want a merge", res)
		}
		want := []profile.DayCount{{Day: midnight(at), Event: "Viewed", Count: 3, Revenue: map[string]float64{"value": 3.5}}}
		if got := dailyCounts(t, svc, "anonymous_id:anon-dm", at); !reflect.DeepEqual(got, want) {
			t.Errorf("after the merge: %+v, want %+v", got, want)
		}
	})
}

// A message older than the event retention (an import) is applied and counted, on a new
// profile and a known one alike, in a space with no prediction, but its event is not
// stored; sent again it counts once.
func TestOldMessageCountedNotKept(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		old := t0.Add(-200 * day)
		msgs := []message.Message{
			purchase("old-1", "u-old", "Order Completed", old, map[string]any{"revenue": 99}), // creates the profile
			purchase("old-2", "u-old", "Order Completed", old.Add(time.Minute), nil),          // a returning visitor
		}
		for _, m := range msgs {
			m.ReceivedAt = t0
			if profile.EventKept(m, t0) {
				t.Fatalf("EventKept(%s) is true for a message 200 days old", m.MessageID)
			}
			mustImport(t, svc, m)
			if outs := mustImport(t, svc, m); !outs[0].Duplicate {
				t.Fatalf("redelivery of %s: %+v", m.MessageID, outs[0])
			}
		}
		p := lookup(t, svc, "user_id:u-old")
		if items, err := st.Query(ctx, "SP#"+sp+"#P#"+p.ID, store.Page{Prefix: "E#"}); err != nil || len(items) != 0 {
			t.Errorf("%d events stored (%v), want none: they would never be shown", len(items), err)
		}
		want := []profile.DayCount{{Day: midnight(old), Event: "Order Completed", Count: 2, Revenue: map[string]float64{"revenue": 99}}}
		if got := dailyCounts(t, svc, "user_id:u-old", old.Add(-day)); !reflect.DeepEqual(got, want) {
			t.Errorf("counts %+v, want %+v", got, want)
		}
		if !p.First.At.Equal(old) {
			t.Errorf("first message at %v, want %v", p.First.At, old)
		}
	})
}

// failDedupeOnce fails, in its first batch, the transaction that writes one message's dedupe
// record as a lost race (nothing written), and runs the rest one by one as DynamoDB would.
type failDedupeOnce struct {
	store.Store
	msgID string
	mu    sync.Mutex
	done  bool
}

func (f *failDedupeOnce) TransactBatch(ctx context.Context, txs []store.Tx) ([]error, error) {
	f.mu.Lock()
	first := !f.done
	f.done = true
	f.mu.Unlock()
	if !first {
		return store.TransactBatch(ctx, f.Store, txs)
	}
	errs := make([]error, len(txs))
	for i, tx := range txs {
		for _, n := range tx.Needs {
			if errs[n] != nil {
				errs[i] = store.ErrSkipped
			}
		}
		if errs[i] != nil {
			continue
		}
		if slices.ContainsFunc(tx.Ops, func(op store.Op) bool { return strings.HasSuffix(op.Item.PK, "#M#"+f.msgID) }) {
			errs[i] = store.ErrContention
			continue
		}
		errs[i] = f.Store.Transact(ctx, tx.Ops...)
	}
	return errs, nil
}

// A counter shared by several messages of a batch, one of which loses a race, still counts
// the others at once, and that one when it is applied again: each exactly once.
func TestCountersWhenOneMessageOfABatchRetries(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, _ *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		svc := profile.New(st, profile.Options{Now: c.Now})
		predicting(t, svc)
		at := t0.Add(-time.Minute)
		mustApply(t, svc, track("rt-0", "u-rt", "", "Viewed", at)) // a known profile: the others change nothing
		fs := &failDedupeOnce{Store: st, msgID: "rt-2"}
		flaky := profile.New(fs, profile.Options{Now: c.Now})
		outs, err := flaky.ApplyMany(ctx, sp, []message.Message{
			track("rt-1", "u-rt", "", "Viewed", at), track("rt-2", "u-rt", "", "Viewed", at), track("rt-3", "u-rt", "", "Viewed", at)})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			if o.Err != nil || o.Duplicate {
				t.Fatalf("outcomes %+v", outs)
			}
		}
		want := []profile.DayCount{{Day: midnight(at), Event: "Viewed", Count: 4}}
		if got := dailyCounts(t, svc, "user_id:u-rt", at); !reflect.DeepEqual(got, want) {
			t.Errorf("counts %+v, want %+v", got, want)
		}
	})
}

// EachProfile yields every live profile of a space once, from every shard of its list, and
// leaves out those merged away; it stops when the caller does.
func TestEachProfile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		backends func(t *testing.T) []storetest.Backend
		profiles int
	}{
		{"every backend", storetest.Backends, 120},
		// More than a page (100) in each of the 8 shards.
		{"pages within shards", func(t *testing.T) []storetest.Backend { return storetest.Backends(t)[:1] }, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forBackends(t, tc.backends(t), func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
				ctx := context.Background()
				var msgs []message.Message
				for i := range tc.profiles {
					msgs = append(msgs, track(fmt.Sprintf("ep-%d", i), "", fmt.Sprintf("anon-ep-%d", i), "Viewed", t0))
				}
				for chunk := range slices.Chunk(msgs, 500) {
					if _, err := svc.ApplyMany(ctx, sp, chunk); err != nil {
						t.Fatal(err)
					}
				}
				// Two profiles become one: the younger is merged away.
				res := mustApply(t, svc, identify("u-ep", "anon-ep-0", nil, t0))
				res2 := mustApply(t, svc, message.Message{Type: message.Identify, MessageID: "ep-merge", UserID: "u-ep", AnonymousID: "anon-ep-1", Timestamp: t0, ReceivedAt: t0})
				if len(res2.Merged) != 1 {
					t.Fatalf("merge: %+v %+v", res, res2)
				}
				seen := map[string]bool{}
				for p, err := range svc.EachProfile(ctx, sp) {
					if err != nil {
						t.Fatal(err)
					}
					if seen[p.ID] || p.MergedInto != "" {
						t.Fatalf("%s yielded twice or merged away: %+v", p.ID, p)
					}
					seen[p.ID] = true
				}
				if len(seen) != tc.profiles-1 || seen[res2.Merged[0]] || !seen[res2.ProfileID] {
					t.Errorf("%d profiles yielded, want %d: every live one, not the merged-away %s", len(seen), tc.profiles-1, res2.Merged[0])
				}
				// Every shard of the list held some of them, so every shard was read.
				for shard := range 8 {
					items, err := st.Query(ctx, fmt.Sprintf("SP#%s#PL#%02d", sp, shard), store.Page{Limit: 1})
					if err != nil || len(items) == 0 {
						t.Fatalf("shard %d of the list is empty (%v): the test does not cover it", shard, err)
					}
				}
				n := 0
				for range svc.EachProfile(ctx, sp) {
					if n++; n == 3 {
						break
					}
				}
			})
		})
	}
}

func TestIsAnonymous(t *testing.T) {
	t.Parallel()
	id := func(typ string) profile.Identifier {
		return profile.Identifier{Seen: identity.Seen{Identifier: identity.Identifier{Type: typ, Value: "x"}}}
	}
	for _, tc := range []struct {
		name string
		ids  []profile.Identifier
		want bool
	}{
		{"one anonymous id", []profile.Identifier{id(identity.TypeAnonymousID)}, true},
		{"several anonymous ids", []profile.Identifier{id(identity.TypeAnonymousID), id(identity.TypeAnonymousID)}, true},
		{"no identifiers", nil, true},
		{"a user id", []profile.Identifier{id(identity.TypeUserID)}, false},
		{"anonymous and an email", []profile.Identifier{id(identity.TypeAnonymousID), id(identity.TypeEmail)}, false},
		{"anonymous and a device id", []profile.Identifier{id(identity.TypeAnonymousID), id(identity.TypeIOSIDFA)}, false},
		{"a custom identifier", []profile.Identifier{id("phone")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := profile.IsAnonymous(profile.Profile{Identifiers: tc.ids}); got != tc.want {
				t.Errorf("IsAnonymous = %v, want %v", got, tc.want)
			}
		})
	}
}

// FirstActivity is a profile's first counted day, over the profiles merged into it; none
// before any count.
func TestFirstActivity(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		predicting(t, svc)
		at := t0.Add(-time.Minute)
		mustApply(t, svc, purchase("fa-1", "u-fa", "Viewed", at, nil))
		m := purchase("fa-2", "", "Order Completed", t0.Add(-150*day), nil)
		m.AnonymousID, m.ReceivedAt = "anon-fa", t0
		mustImport(t, svc, m)
		for _, tc := range []struct {
			who  string
			want time.Time
		}{
			{"user_id:u-fa", midnight(at)},
			{"anonymous_id:anon-fa", midnight(t0.Add(-150 * day))},
		} {
			first, ok, err := svc.FirstActivity(ctx, sp, lookup(t, svc, tc.who))
			if err != nil || !ok || !first.Equal(tc.want) {
				t.Errorf("%s: %v %v %v, want %v", tc.who, first, ok, err, tc.want)
			}
		}
		mustApply(t, svc, identify("u-fa", "anon-fa", nil, at)) // merges the older profile in
		first, ok, err := svc.FirstActivity(ctx, sp, lookup(t, svc, "user_id:u-fa"))
		if err != nil || !ok || !first.Equal(midnight(t0.Add(-150*day))) {
			t.Errorf("after the merge: %v %v %v, want the merged profile's day", first, ok, err)
		}
		mustApply(t, svc, identify("u-none", "", nil, at)) // no track call: no counts
		if _, ok, err := svc.FirstActivity(ctx, sp, lookup(t, svc, "user_id:u-none")); ok || err != nil {
			t.Errorf("a profile without counts: %v %v, want none", ok, err)
		}
	})
}
