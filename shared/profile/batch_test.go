package profile_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/traits"
)

func track(msgID, userID, anonID, event string, at time.Time) message.Message {
	return message.Message{Type: message.Track, MessageID: msgID, UserID: userID, AnonymousID: anonID, Event: event,
		Timestamp: at, ReceivedAt: at, SourceID: "src_test", Raw: []byte(`{"type":"track","messageId":"` + msgID + `"}`)}
}

// A batch resolves against one snapshot and still does what applying its messages one by one
// does: a profile created, merged and revisited within the batch, a repeated messageId, a
// refusal in the middle.
func TestApplyManyMatchesOneByOne(t *testing.T) {
	t.Parallel()
	batch := func(prefix string) []message.Message {
		at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
		return []message.Message{
			track(prefix+"1", "", "anon-1", "Viewed", at(1)), // 0 new profile
			track(prefix+"2", "", "anon-1", "Viewed", at(2)), // 1 returning, made in this batch
			{Type: message.Identify, MessageID: prefix + "3", UserID: "user-1", // 2 adds user-1 to it
				AnonymousID: "anon-1", Traits: map[string]any{"plan": "pro"}, Timestamp: at(3), ReceivedAt: at(3)},
			track(prefix+"4", "", "anon-2", "Viewed", at(4)), // 3 another new profile
			{Type: message.Identify, MessageID: prefix + "5", // 4 refused: no identifier
				Timestamp: at(5), ReceivedAt: at(5), Traits: map[string]any{"plan": "free"}},
			track(prefix+"2", "", "anon-1", "Viewed", at(2)), // 5 a repeat of 1
			{Type: message.Alias, MessageID: prefix + "6", UserID: "user-1", PreviousID: "anon-2", // 6 merges anon-2's
				AnonymousID: "anon-2", Timestamp: at(6), ReceivedAt: at(6)},
			track(prefix+"7", "user-1", "", "Bought", at(7)), // 7 returning, on the survivor
		}
	}
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		outs, err := svc.ApplyMany(ctx, sp, batch("b-"))
		if err != nil {
			t.Fatal(err)
		}
		one := profile.New(st, profile.Options{Now: c.Now})
		serial := batch("s-")
		var want []profile.Outcome
		for _, m := range serial {
			res, err := one.Apply(ctx, sp+"-serial", m)
			want = append(want, profile.Outcome{Result: res, Err: err})
		}
		// Profile ids differ between the two spaces: compare which messages share one.
		shape := func(outs []profile.Outcome) string {
			names := map[string]string{}
			var b strings.Builder
			for _, o := range outs {
				if o.Err != nil {
					fmt.Fprintf(&b, "[%s] ", errcode.As(o.Err).Code)
					continue
				}
				if names[o.ProfileID] == "" {
					names[o.ProfileID] = fmt.Sprintf("P%d", len(names))
				}
				fmt.Fprintf(&b, "[%s created=%v dup=%v added=%d merged=%d] ", names[o.ProfileID], o.Created, o.Duplicate, len(o.Added), len(o.Merged))
			}
			return b.String()
		}
		// Up to the merge; which of two profiles created in one instant survives it is not
		// decided by their order.
		if got, w := shape(outs[:6]), shape(want[:6]); got != w {
			t.Errorf("batch:\n %s\none by one:\n %s", got, w)
		}
		for _, o := range [][]profile.Outcome{outs, want} {
			if len(o[6].Merged) != 1 || o[6].ProfileID != o[7].ProfileID || o[7].Created || o[7].Duplicate {
				t.Errorf("the alias should merge two profiles and the next track land on the survivor: %+v %+v", o[6], o[7])
			}
		}
		p := lookup(t, svc, "anonymous_id:anon-2")
		if p.ID != lookup(t, svc, "user_id:user-1").ID || p.TraitValues()["plan"] != "pro" {
			t.Errorf("after the batch anon-2 and user-1 should be one profile with plan=pro: %+v", p)
		}
		evs, err := svc.Events(ctx, sp, p, time.Time{}, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 6 { // 1, 2, 3, 4, 6, 7: the repeat and the refusal store nothing
			t.Errorf("the merged profile has %d events, want 6: %+v", len(evs), evs)
		}
	})
}

// Batches that collide on the same profiles retry what lost the race: every message is
// applied exactly once and the newest trait wins.
func TestApplyManyConcurrentBatchesLoseNothing(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		const senders, batches, perBatch, users = 4, 5, 10, 3
		var wg sync.WaitGroup
		errs := make(chan error, senders*batches)
		for g := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range batches {
					var msgs []message.Message
					for i := range perBatch {
						n := (g*batches+b)*perBatch + i
						at := t0.Add(time.Duration(n) * time.Millisecond)
						msgs = append(msgs, message.Message{Type: message.Identify, MessageID: fmt.Sprintf("c-%d", n),
							UserID: fmt.Sprintf("u-%d", n%users), Traits: map[string]any{"n": n}, Timestamp: at, ReceivedAt: at})
					}
					outs, err := svc.ApplyMany(ctx, sp, msgs)
					for _, o := range outs {
						err = errors.Join(err, o.Err)
					}
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		total := 0
		for u := range users {
			p := lookup(t, svc, fmt.Sprintf("user_id:u-%d", u))
			evs, err := svc.Events(ctx, sp, p, time.Time{}, t0.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			total += len(evs)
			newest := (senders*batches*perBatch - 1) - ((senders*batches*perBatch - 1 - u) % users)
			if got := p.TraitValues()["n"]; fmt.Sprint(got) != fmt.Sprint(newest) {
				t.Errorf("u-%d: n = %v, want the newest, %d", u, got, newest)
			}
		}
		if total != senders*batches*perBatch {
			t.Errorf("%d events stored, want %d (each message once)", total, senders*batches*perBatch)
		}
	})
}

// A returning visitor's event is written after its dedupe record (two single writes, not a
// transaction): when a crash falls between them, the redelivery writes the missing event.
func TestRedeliveryWritesAnEventLostInACrash(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		mustApply(t, svc, track("r-1", "u-r", "", "Viewed", t0))
		m := track("r-2", "u-r", "", "Viewed", t0.Add(time.Second))
		if res := mustApply(t, svc, m); res.Created || res.Duplicate {
			t.Fatalf("returning visitor: %+v", res)
		}
		p := lookup(t, svc, "user_id:u-r")
		pk := "SP#" + sp + "#P#" + p.ID
		items, err := st.Query(ctx, pk, store.Page{Prefix: "E#"})
		if err != nil || len(items) != 2 {
			t.Fatalf("events stored: %d, %v", len(items), err)
		}
		// The crash: the second event never reached the store.
		if err := st.Transact(ctx, store.DeleteOp(items[1].Key, store.MustExist)); err != nil {
			t.Fatal(err)
		}
		res := mustApply(t, svc, m) // the SDK sends it again
		if !res.Duplicate || res.ProfileID != p.ID {
			t.Fatalf("redelivery: %+v, want a duplicate of %s", res, p.ID)
		}
		evs, err := svc.Events(ctx, sp, p, time.Time{}, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 || evs[1].MessageID != "r-2" || !evs[1].Timestamp.Equal(m.Timestamp) {
			t.Errorf("after the redelivery the events are %+v, want r-1 and r-2", evs)
		}
		mustApply(t, svc, m) // and once more changes nothing
		if evs, _ := svc.Events(ctx, sp, p, time.Time{}, t0.Add(time.Hour)); len(evs) != 2 {
			t.Errorf("a third delivery left %d events", len(evs))
		}
	})
}

// A profile stops growing at MaxProfileBytes: the message that would pass it is refused,
// naming the limit, and the profile goes on taking events that do not grow it. On moto
// (DynamoDB's own 400 KB item limit) the profile would otherwise be written past the limit
// and every later write of it refused.
func TestProfileStopsGrowingAtItsLimit(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		// A computed trait counting the profile's views: its state is an item of its own.
		if _, err := svc.CreateComputedTrait(ctx, sp, traits.Definition{Key: "views", Type: traits.EventCounter, Event: "Viewed", WindowDays: 3650}, "", takeSlot()); err != nil {
			t.Fatal(err)
		}
		value := strings.Repeat("x", 1000)
		var refused *errcode.Error
		n := 0
		for batch := 0; refused == nil; batch++ {
			if batch > 30 {
				t.Fatal("30 identifies of 20 KB each were all taken: the profile has no size limit")
			}
			traits := map[string]any{}
			for i := range 20 {
				traits[fmt.Sprintf("t%03d_%02d", batch, i)] = value
			}
			c.Add(time.Second)
			_, err := svc.Apply(ctx, sp, identify("big", "", traits, c.Now()))
			if err != nil {
				if refused = errcode.As(err); refused == nil || refused.Code != "profile_too_large" {
					t.Fatalf("identify %d: %v, want profile_too_large", batch, err)
				}
				break
			}
			n = batch + 1
		}
		if !strings.Contains(refused.Message, fmt.Sprint(profile.MaxProfileBytes)) || refused.Kind != errcode.Invalid {
			t.Errorf("the refusal does not name the limit or is not a 400: %+v", refused)
		}
		if n < 15 {
			t.Errorf("refused after %d identifies of 20 KB: the limit is lower than it should be", n)
		}
		// What does not grow it still applies: tracks the computed trait counts, an
		// identify changing a trait to a value of the same size, one that removes traits.
		for i := range 3 {
			c.Add(time.Second)
			mustApply(t, svc, track(fmt.Sprintf("big-track-%d", i), "big", "", "Viewed", c.Now()))
		}
		c.Add(time.Second)
		mustApply(t, svc, identify("big", "", map[string]any{"t000_00": strings.Repeat("y", 1000)}, c.Now()))
		c.Add(time.Second)
		mustApply(t, svc, identify("big", "", map[string]any{"t000_01": nil, "t000_02": nil}, c.Now()))
		p := lookup(t, svc, "user_id:big")
		if v := p.TraitValues()["t000_00"]; v != strings.Repeat("y", 1000) {
			t.Errorf("the trait change was not applied")
		}
		if _, ok := p.TraitValues()["t000_01"]; ok {
			t.Errorf("the removal was not applied")
		}
		evs, err := svc.Events(ctx, sp, p, time.Time{}, c.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != n+5 {
			t.Errorf("%d events, want %d (every applied message, not the refused one)", len(evs), n+5)
		}
		vals, err := svc.ComputedTraitValues(ctx, sp, p)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(vals["views"]) != "3" {
			t.Errorf("views = %v, want 3: the full profile's tracks must still be counted", vals["views"])
		}
	})
}

// countingStore counts the items Query returns.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	items int
}

func (c *countingStore) Query(ctx context.Context, pk string, p store.Page) ([]store.Item, error) {
	items, err := c.Store.Query(ctx, pk, p)
	c.mu.Lock()
	c.items += len(items)
	c.mu.Unlock()
	return items, err
}

// A page of a profile's events reads O(page) items, newest or oldest first, however many
// events the profile and the profiles merged into it hold.
func TestEventPagesReadOnlyThePage(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, _ *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		cs := &countingStore{Store: st}
		svc := profile.New(cs, profile.Options{Now: c.Now})
		var msgs []message.Message
		for i := range 400 {
			anon := "page-a"
			if i%2 == 1 {
				anon = "page-b" // a second profile, merged below: its events are read too
			}
			msgs = append(msgs, track(fmt.Sprintf("pg-%d", i), "", anon, "Viewed", t0.Add(time.Duration(i)*time.Second)))
		}
		if _, err := svc.ApplyMany(ctx, sp, msgs); err != nil {
			t.Fatal(err)
		}
		mustApply(t, svc, message.Message{Type: message.Identify, MessageID: "pg-merge", AnonymousID: "page-a", UserID: "page-u",
			Timestamp: t0.Add(-time.Hour), ReceivedAt: t0})
		mustApply(t, svc, message.Message{Type: message.Identify, MessageID: "pg-merge-2", AnonymousID: "page-b", UserID: "page-u",
			Timestamp: t0.Add(-time.Hour), ReceivedAt: t0})
		p := lookup(t, svc, "user_id:page-u")
		if len(p.MergedIDs) != 1 {
			t.Fatalf("want one merged profile, got %+v", p.MergedIDs)
		}
		for _, newestFirst := range []bool{true, false} {
			cs.mu.Lock()
			cs.items = 0
			cs.mu.Unlock()
			var got []string
			for e, err := range svc.EventsInOrder(ctx, sp, p, time.Time{}, t0.Add(time.Hour), newestFirst) {
				if err != nil {
					t.Fatal(err)
				}
				if got = append(got, e.MessageID); len(got) == 10 {
					break
				}
			}
			want := []string{"pg-399", "pg-398", "pg-397", "pg-396", "pg-395", "pg-394", "pg-393", "pg-392", "pg-391", "pg-390"}
			if !newestFirst {
				want = []string{"pg-merge", "pg-merge-2", "pg-0", "pg-1", "pg-2", "pg-3", "pg-4", "pg-5", "pg-6", "pg-7"}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("newestFirst=%v: %v, want %v", newestFirst, got, want)
			}
			if cs.items > 2*50 {
				t.Errorf("newestFirst=%v: a page of 10 read %d items of 402 (want at most one read of 50 per profile)", newestFirst, cs.items)
			}
		}
	})
}

// A profile belongs to at most MaxGroups groups: the group call past it is refused and
// the others keep applying.
func TestGroupsAreBounded(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		var msgs []message.Message
		for i := range profile.MaxGroups + 1 {
			msgs = append(msgs, message.Message{Type: message.Group, MessageID: fmt.Sprintf("g-%d", i), UserID: "joiner",
				GroupID: fmt.Sprintf("acct-%d", i), Timestamp: t0, ReceivedAt: t0})
		}
		outs, err := svc.ApplyMany(ctx, sp, msgs)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range outs[:profile.MaxGroups] {
			if o.Err != nil {
				t.Fatalf("group %d: %v", i, o.Err)
			}
		}
		if e := errcode.As(outs[profile.MaxGroups].Err); e == nil || e.Code != "too_many_groups" {
			t.Errorf("group %d: %v, want too_many_groups", profile.MaxGroups, outs[profile.MaxGroups].Err)
		}
		mustApply(t, svc, track("g-after", "joiner", "", "Viewed", t0.Add(time.Second)))
		if n := len(lookup(t, svc, "user_id:joiner").Groups); n != profile.MaxGroups {
			t.Errorf("%d groups kept, want %d", n, profile.MaxGroups)
		}
	})
}

// loseFirstBatch reports every transaction of its first batch as having lost a race,
// writing nothing: the messages go round again.
type loseFirstBatch struct {
	store.Store
	mu   sync.Mutex
	lost bool
}

func (l *loseFirstBatch) TransactBatch(ctx context.Context, txs []store.Tx) ([]error, error) {
	l.mu.Lock()
	first := !l.lost
	l.lost = true
	l.mu.Unlock()
	if first {
		errs := make([]error, len(txs))
		for i := range errs {
			errs[i] = store.ErrContention
		}
		return errs, nil
	}
	return store.TransactBatch(ctx, l.Store, txs)
}

// The caller's writes commit with the batch when every message commits at the first
// attempt; when one does not, they are left to the caller, who writes them from the final
// outcomes.
func TestApplyManyWithCommitsTheCallersWritesWithTheBatch(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, _ *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		for _, lose := range []bool{false, true} {
			var s store.Store = st
			if lose {
				s = &loseFirstBatch{Store: st}
			}
			svc := profile.New(s, profile.Options{Now: c.Now})
			k := store.Key{PK: "EXTRA", SK: fmt.Sprint(lose)}
			msgs := []message.Message{track(fmt.Sprintf("x-%v-1", lose), "", "x-anon", "Viewed", t0), track(fmt.Sprintf("x-%v-2", lose), "", "x-anon", "Viewed", t0)}
			calls := 0
			outs, written, err := svc.ApplyManyWith(ctx, sp, msgs, func(outs []profile.Outcome) []store.Op {
				calls++
				return []store.Op{store.PutOp(store.Item{Key: k, Data: []byte(outs[0].ProfileID)}, store.Always)}
			})
			if err != nil || outs[0].Err != nil || outs[1].Err != nil || outs[0].ProfileID != outs[1].ProfileID {
				t.Fatalf("lose=%v: %+v %v", lose, outs, err)
			}
			_, getErr := st.Get(ctx, k)
			if written != !lose || (getErr == nil) != !lose || calls != 1 {
				t.Errorf("lose=%v: written=%v, stored: %v, with called %d times", lose, written, getErr == nil, calls)
			}
		}
	})
}

// Identity settings are read once per configTTL (a second) per Service: a change applies at
// once on the Service that made it, and within the second on every other one.
func TestSettingsChangeReachesOtherInstancesWithinASecond(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, a *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		b := profile.New(st, profile.Options{Now: c.Now}) // another warm instance
		n := 0
		apply := func(svc *profile.Service) error {
			n++
			_, err := svc.Apply(ctx, sp, message.Message{Type: message.Track, MessageID: fmt.Sprintf("cfg-%d", n), UserID: "blockme",
				Event: "E", Timestamp: c.Now(), ReceivedAt: c.Now()})
			return err
		}
		if err := apply(b); err != nil { // b reads and caches the defaults
			t.Fatal(err)
		}
		set := identity.DefaultSettings()
		for i := range set.Identifiers {
			if set.Identifiers[i].Type == identity.TypeUserID {
				set.Identifiers[i].Blocked = []identity.Blocked{{Match: identity.MatchExact, Value: "blockme"}}
			}
		}
		if _, err := a.SaveSettings(ctx, sp, set); err != nil {
			t.Fatal(err)
		}
		if !errcode.Is(apply(a), "no_identifiers") {
			t.Errorf("the Service that saved the settings does not apply them at once")
		}
		if err := apply(b); err != nil {
			t.Errorf("within the second the other instance still applies its cached settings: %v", err)
		}
		c.Add(time.Second)
		if !errcode.Is(apply(b), "no_identifiers") {
			t.Errorf("a second later the other instance still does not apply the new settings")
		}
	})
}
