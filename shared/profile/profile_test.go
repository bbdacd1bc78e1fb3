package profile_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/traits"
)

const sp = "sp_test"

// t0 is near the wall clock: the stores expire items (dedupe keys, events) by real time.
var t0 = time.Now().UTC().Truncate(time.Second)

func forEachBackend(t *testing.T, fn func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store)) {
	t.Helper()
	forBackends(t, storetest.Backends(t), fn)
}

func forBackends(t *testing.T, bs []storetest.Backend, fn func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store)) {
	t.Helper()
	for _, b := range bs {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			st := b.Open(t)
			c := testclock.New(t0)
			fn(t, profile.New(st, profile.Options{Now: c.Now}), c, st)
		})
	}
}

var msgSeq struct {
	sync.Mutex
	n int
}

func identify(userID, anonID string, traits map[string]any, at time.Time) message.Message {
	msgSeq.Lock()
	msgSeq.n++
	n := msgSeq.n
	msgSeq.Unlock()
	return message.Message{Type: message.Identify, MessageID: fmt.Sprintf("msg-%d", n), UserID: userID, AnonymousID: anonID,
		Traits: traits, Timestamp: at, ReceivedAt: at, SourceID: "src_test"}
}

func mustApply(t *testing.T, svc *profile.Service, m message.Message) profile.Result {
	t.Helper()
	res, err := svc.Apply(context.Background(), sp, m)
	if err != nil {
		t.Fatalf("Apply %+v: %v", m, err)
	}
	return res
}

func lookup(t *testing.T, svc *profile.Service, s string) profile.Profile {
	t.Helper()
	id, err := profile.ParseIdentifier("identifier", s)
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Lookup(context.Background(), sp, id)
	if err != nil {
		t.Fatalf("Lookup %s: %v", s, err)
	}
	return p
}

func TestDemotionEndToEnd(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, _ store.Store) {
		jane := mustApply(t, svc, identify("abc123", "", map[string]any{"email": "jane@x"}, t0))
		c.Add(time.Minute)
		res := mustApply(t, svc, identify("abc456", "", map[string]any{"email": "jane@x"}, c.Now()))
		if !res.Created || res.ProfileID == jane.ProfileID {
			t.Fatalf("want a new profile, got %+v", res)
		}
		if len(res.Violations) != 1 || res.Violations[0].Kind != identity.ViolationValueLimit {
			t.Fatalf("violations %+v", res.Violations)
		}
		j := lookup(t, svc, "email:jane@x")
		if j.ID != jane.ProfileID || len(j.Identifiers) != 2 {
			t.Fatalf("jane's profile changed: %+v", j)
		}
		n := lookup(t, svc, "user_id:abc456")
		if n.ID != res.ProfileID || len(n.Violations) != 1 || len(n.Identifiers) != 1 {
			t.Fatalf("new profile %+v", n)
		}
		// The email is a trait of the new profile even though it was not used as an identifier.
		if n.TraitValues()["email"] != "jane@x" {
			t.Fatalf("traits %v", n.TraitValues())
		}
	})
}

func TestIdempotentPerMessageID(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, _ store.Store) {
		m := message.Message{Type: message.Track, MessageID: "retry-me", AnonymousID: "a1", Event: "Viewed", Timestamp: t0, ReceivedAt: t0}
		first := mustApply(t, svc, m)
		again := mustApply(t, svc, m)
		if !again.Duplicate || again.ProfileID != first.ProfileID {
			t.Fatalf("redelivery: %+v", again)
		}
		p := lookup(t, svc, "anonymous_id:a1")
		evs, err := svc.Events(context.Background(), sp, p, t0.Add(-time.Hour), t0.Add(time.Hour))
		if err != nil || len(evs) != 1 {
			t.Fatalf("%d events (%v), want 1", len(evs), err)
		}
	})
}

func TestTraitPrecedence(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, _ store.Store) {
		at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
		mustApply(t, svc, identify("u", "", map[string]any{"plan": "pro", "city": "Oslo", "nick": "j"}, at(10)))
		mustApply(t, svc, identify("u", "", map[string]any{"plan": "free"}, at(5)))   // older, late: ignored
		mustApply(t, svc, identify("u", "", map[string]any{"city": nil}, at(11)))     // null removes
		mustApply(t, svc, identify("u", "", map[string]any{"city": "Bergen"}, at(9))) // older than the removal
		mustApply(t, svc, identify("u", "", map[string]any{"nick": ""}, at(12)))      // "" is kept
		mustApply(t, svc, identify("u", "", map[string]any{"plan": "team"}, at(13)))  // newer wins
		got := lookup(t, svc, "user_id:u").TraitValues()
		want := map[string]any{"plan": "team", "nick": ""}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("traits %v, want %v", got, want)
		}
		_, err := svc.Apply(context.Background(), sp, identify("u", "", manyTraits(300), at(14)))
		if !errcode.Is(err, "too_many_traits") {
			t.Fatalf("300 traits: %v", err)
		}
		mustApply(t, svc, identify("u", "", manyTraits(299), at(14)))
	})
}

func manyTraits(n int) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[fmt.Sprintf("t%03d", i)] = i
	}
	return m
}

func TestMergeIntoOldestAndForward(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, _ store.Store) {
		oldest := mustApply(t, svc, message.Message{Type: message.Track, MessageID: "m1", AnonymousID: "a", Event: "Visit", Timestamp: t0, ReceivedAt: t0})
		c.Add(time.Hour)
		second := mustApply(t, svc, identify("", "b", map[string]any{"email": "e@x", "tier": "gold"}, c.Now()))
		c.Add(time.Hour)
		third := mustApply(t, svc, identify("u", "", map[string]any{"tier": "silver"}, c.Now()))
		c.Add(time.Hour)
		res := mustApply(t, svc, message.Message{Type: message.Identify, MessageID: "m4", UserID: "u", AnonymousID: "a",
			Traits: map[string]any{"email": "e@x"}, Timestamp: c.Now(), ReceivedAt: c.Now()})
		if res.ProfileID != oldest.ProfileID || len(res.Merged) != 2 {
			t.Fatalf("merge result %+v", res)
		}
		for _, s := range []string{"anonymous_id:a", "anonymous_id:b", "email:e@x", "user_id:u"} {
			if p := lookup(t, svc, s); p.ID != oldest.ProfileID {
				t.Errorf("%s resolves to %s, want %s", s, p.ID, oldest.ProfileID)
			}
		}
		for _, old := range []string{second.ProfileID, third.ProfileID} {
			p, err := svc.Get(context.Background(), sp, old)
			if err != nil || p.ID != oldest.ProfileID {
				t.Errorf("merged id %s forwards to %s (%v)", old, p.ID, err)
			}
		}
		p := lookup(t, svc, "user_id:u")
		if p.TraitValues()["tier"] != "silver" || p.Merges != 2 {
			t.Errorf("merged traits %v merges %d", p.TraitValues(), p.Merges)
		}
		evs, _ := svc.Events(context.Background(), sp, p, t0.Add(-time.Hour), c.Now().Add(time.Hour))
		if len(evs) != 4 {
			t.Errorf("%d events after the merge, want 4", len(evs))
		}
	})
}

func TestBlockedValueKeptInPayloadOnly(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, _ store.Store) {
		raw := []byte(`{"type":"identify","userId":"u1","traits":{"email":"null"}}`)
		m := identify("u1", "", map[string]any{"email": "null"}, t0)
		m.Raw = raw
		res := mustApply(t, svc, m)
		if len(res.Violations) != 1 || res.Violations[0].Kind != identity.ViolationBlocked {
			t.Fatalf("violations %+v", res.Violations)
		}
		if _, err := svc.Lookup(context.Background(), sp, identity.Identifier{Type: "email", Value: "null"}); !errcode.Is(err, "not_found") {
			t.Fatalf("blocked email resolves: %v", err)
		}
		p := lookup(t, svc, "user_id:u1")
		evs, _ := svc.Events(context.Background(), sp, p, t0.Add(-time.Hour), t0.Add(time.Hour))
		if len(evs) != 1 || string(evs[0].Raw) != string(raw) {
			t.Fatalf("stored payload %+v", evs)
		}
	})
}

// Concurrent writers over a shared pool of identifiers (never two user_ids on one profile,
// so no limit decides anything) end with the same partition as serial application: every
// identifier resolves to exactly one live profile, and no trait is lost.
func TestConcurrentWritersMatchSerial(t *testing.T) {
	t.Parallel()
	const writers = 8
	const perWriter = 2000 // messages, tracks included
	// Identifies link user u<k> with anonymous ids drawn from u<k>'s own pool, so the
	// expected partition is known: one profile per user, holding its anonymous ids. A third
	// of them are preceded by a track carrying the anonymous id alone, which creates an
	// anonymous profile that the identify then merges or extends.
	const users, anonsPerUser = 40, 5 // 5: within the default anonymous_id limit
	type msg struct {
		track             bool
		user, anon, trait string
		value             int
	}
	var all [][]msg
	for w := range writers {
		rng := rand.New(rand.NewPCG(uint64(w), 99))
		var ms []msg
		for len(ms) < perWriter {
			u := rng.IntN(users)
			m := msg{user: fmt.Sprintf("u%02d", u), anon: fmt.Sprintf("a%02d-%d", u, rng.IntN(anonsPerUser)),
				trait: fmt.Sprintf("w%d", w), value: len(ms)}
			if rng.IntN(3) == 0 && len(ms)+2 <= perWriter {
				ms = append(ms, msg{track: true, anon: m.anon})
			}
			ms = append(ms, m)
		}
		all = append(all, ms)
	}
	// The full load on bolt and on moto_server (journaled: stock moto copies the whole
	// table on every transaction, which makes this run take hours; see storetest).
	forBackends(t, storetest.LoadBackends(t), func(t *testing.T, svc *profile.Service, c *testclock.Clock, _ store.Store) {
		// A computed trait counts the tracks live, through every concurrent merge.
		seenCount := traits.Definition{Key: "seen_count", Type: traits.EventCounter, Event: "Seen"}
		if _, err := svc.CreateComputedTrait(context.Background(), sp, seenCount, "", takeSlot()); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		var seenMu sync.Mutex
		seen := map[string]bool{} // every profile id Apply answered with
		for w, ms := range all {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i, m := range ms {
					at := t0.Add(time.Duration(i) * time.Second)
					mm := message.Message{Type: message.Identify, MessageID: fmt.Sprintf("w%d-%d", w, i), UserID: m.user, AnonymousID: m.anon,
						Traits: map[string]any{m.trait: m.value}, Timestamp: at, ReceivedAt: at}
					if m.track {
						mm = message.Message{Type: message.Track, MessageID: fmt.Sprintf("w%d-%d", w, i), AnonymousID: m.anon, Event: "Seen", Timestamp: at, ReceivedAt: at}
					}
					res, err := svc.Apply(context.Background(), sp, mm)
					if err != nil {
						errs <- err
						return
					}
					seenMu.Lock()
					seen[res.ProfileID] = true
					seenMu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// Expected: per user, the anonymous ids it was seen with; its last trait per writer;
		// its number of tracks.
		want := map[string][]string{}
		lastTrait := map[string]map[string]int{}
		tracks := map[string]int{}
		for _, ms := range all {
			for _, m := range ms {
				if m.track {
					tracks[m.anon[1:3]]++ // a<k>-…: user u<k>'s pool
					continue              // its anonymous id comes with the identify that follows
				}
				if !slices.Contains(want[m.user], m.anon) {
					want[m.user] = append(want[m.user], m.anon)
				}
				if lastTrait[m.user] == nil {
					lastTrait[m.user] = map[string]int{}
				}
				lastTrait[m.user][m.trait] = m.value // messages of one writer are in time order
			}
		}
		for u, anons := range want {
			p := lookup(t, svc, "user_id:"+u)
			var got []string
			for _, id := range p.Identifiers {
				if id.Type == "anonymous_id" {
					got = append(got, id.Value)
				}
				if id.Type == "user_id" && id.Value != u {
					t.Errorf("profile of %s also holds user_id %s", u, id.Value)
				}
			}
			sort.Strings(got)
			sort.Strings(anons)
			if !slices.Equal(got, anons) {
				t.Errorf("%s: anonymous ids %v, want %v", u, got, anons)
			}
			for _, a := range anons {
				if q := lookup(t, svc, "anonymous_id:"+a); q.ID != p.ID {
					t.Errorf("%s resolves to %s, not %s's profile %s", a, q.ID, u, p.ID)
				}
			}
			tv := p.TraitValues()
			for k, v := range lastTrait[u] {
				if fmt.Sprint(tv[k]) != fmt.Sprint(v) {
					t.Errorf("%s: trait %s = %v, want %v (lost)", u, k, tv[k], v)
				}
			}
			computed, err := svc.ComputedTraitValues(context.Background(), sp, p)
			if err != nil {
				t.Fatal(err)
			}
			if computed["seen_count"] != tracks[u[1:]] {
				t.Errorf("%s: seen_count %v, want %d tracks", u, computed["seen_count"], tracks[u[1:]])
			}
		}
		// Every profile ever answered is live or forwards to a live one, and each identifier
		// of a live profile resolves back to it: no split was left behind.
		for pid := range seen {
			p, err := svc.Get(context.Background(), sp, pid)
			if err != nil {
				t.Fatalf("profile %s: %v", pid, err)
			}
			for _, id := range p.Identifiers {
				if q := lookup(t, svc, id.String()); q.ID != p.ID {
					t.Errorf("%s is on %s but resolves to %s", id, p.ID, q.ID)
				}
			}
		}
	})
}

// The 101st merge into one profile is refused with a violation; the message still resolves
// and its event is kept.
func TestMergeCapEndToEnd(t *testing.T) {
	t.Parallel()
	st := storetest.Backends(t)[0].Open(t) // bolt: 200 messages in sequence
	svc := profile.New(st, profile.Options{})
	ctx := context.Background()
	set := identity.DefaultSettings()
	for i := range set.Identifiers {
		if set.Identifiers[i].Type == identity.TypeAnonymousID {
			set.Identifiers[i].Limit = 1000
			set.Identifiers[i].Window = identity.WindowEver
		}
	}
	if _, err := svc.SaveSettings(ctx, sp, set); err != nil {
		t.Fatal(err)
	}
	user := mustApply(t, svc, identify("cap-user", "", nil, t0))
	for i := range identity.MaxMerges + 1 {
		anon := fmt.Sprintf("visitor-%03d", i)
		mustApply(t, svc, message.Message{Type: message.Track, MessageID: "t-" + anon, AnonymousID: anon, Event: "Visit", Timestamp: t0, ReceivedAt: t0})
		res := mustApply(t, svc, message.Message{Type: message.Identify, MessageID: "i-" + anon, UserID: "cap-user", AnonymousID: anon, Timestamp: t0, ReceivedAt: t0})
		if res.ProfileID != user.ProfileID {
			t.Fatalf("merge %d resolved to %s", i+1, res.ProfileID)
		}
		if i < identity.MaxMerges && len(res.Merged) != 1 {
			t.Fatalf("merge %d did not happen: %+v", i+1, res)
		}
		if i == identity.MaxMerges {
			if len(res.Merged) != 0 || len(res.Violations) != 1 || res.Violations[0].Kind != identity.ViolationMergeLimit {
				t.Fatalf("the 101st merge: %+v", res)
			}
		}
	}
	p := lookup(t, svc, "user_id:cap-user")
	if p.Merges != identity.MaxMerges {
		t.Fatalf("merges %d", p.Merges)
	}
	if q := lookup(t, svc, fmt.Sprintf("anonymous_id:visitor-%03d", identity.MaxMerges)); q.ID == p.ID {
		t.Fatal("the refused visitor was merged anyway")
	}
	evs, err := svc.Events(ctx, sp, p, t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil || len(evs) != 1+2*identity.MaxMerges+1 {
		t.Fatalf("%d events on the capped profile (%v), want %d", len(evs), err, 2+2*identity.MaxMerges)
	}
}

// The default weekly limit of 5 anonymous ids: the 6th within a week is not mapped (a
// violation says so); a week later it is.
func TestWeeklyLimitEndToEnd(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, _ store.Store) {
		for i := range 5 {
			mustApply(t, svc, identify("weekly", fmt.Sprintf("device-%d", i), nil, c.Now()))
			c.Add(time.Hour)
		}
		res := mustApply(t, svc, identify("weekly", "device-5", nil, c.Now()))
		if len(res.Added) != 0 || len(res.Violations) != 1 || res.Violations[0].Kind != identity.ViolationValueLimit {
			t.Fatalf("6th anonymous id in a week: %+v", res)
		}
		if _, err := svc.Lookup(context.Background(), sp, identity.Identifier{Type: "anonymous_id", Value: "device-5"}); !errcode.Is(err, "not_found") {
			t.Fatalf("device-5 was mapped: %v", err)
		}
		c.Add(8 * 24 * time.Hour)
		res = mustApply(t, svc, identify("weekly", "device-5", nil, c.Now()))
		if len(res.Added) != 1 || len(res.Violations) != 0 {
			t.Fatalf("after the week: %+v", res)
		}
		if p := lookup(t, svc, "anonymous_id:device-5"); p.ID != res.ProfileID {
			t.Fatalf("device-5 resolves to %s", p.ID)
		}
	})
}
