package profile

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/bolt"
)

func openBoltForTest(t *testing.T) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var headMsgs struct {
	sync.Mutex
	n int
}

func applyForTest(t *testing.T, svc *Service, typ, userID, anonID string, traits map[string]any) Result {
	t.Helper()
	headMsgs.Lock()
	headMsgs.n++
	id := fmt.Sprintf("head-%d", headMsgs.n)
	headMsgs.Unlock()
	at := time.Now().UTC()
	res, err := svc.Apply(context.Background(), "sp_head", message.Message{Type: typ, MessageID: id, UserID: userID,
		AnonymousID: anonID, Traits: traits, Event: "Viewed", Timestamp: at, ReceivedAt: at, SourceID: "src"})
	if err != nil {
		t.Fatalf("Apply %s %s/%s: %v", typ, userID, anonID, err)
	}
	return res
}

// readProfile reads the profile that owns id as resolution does, and the head decoded
// afresh from the bytes read.
func readProfile(t *testing.T, svc *Service, id identity.Identifier) (l *loaded, want Profile) {
	t.Helper()
	ctx := context.Background()
	got := map[store.Key]store.Item{}
	if err := svc.getMany(ctx, got, []store.Key{claimKey("sp_head", id)}); err != nil {
		t.Fatal(err)
	}
	_, profiles, err := svc.owners(ctx, "sp_head", []identity.Identifier{id}, got, nil)
	if err != nil {
		t.Fatal(err)
	}
	var c claim
	json.Unmarshal(got[claimKey("sp_head", id)].Data, &c)
	l = profiles[c.ProfileID]
	var h profileHead
	if err := json.Unmarshal(l.raw, &h); err != nil {
		t.Fatal(err)
	}
	return l, h.profile()
}

// A head handed out from the cache is the reader's own: changing it (as no code does today)
// leaves the cached head and every later reader's as stored.
func TestCachedHeadsAreNotShared(t *testing.T) {
	t.Parallel()
	svc := New(openBoltForTest(t), Options{})
	applyForTest(t, svc, message.Identify, "u-1", "a-1", map[string]any{"plan": "free"})
	user := identity.Identifier{Type: "user_id", Value: "u-1"}
	for i := range 3 { // cached when written, then read
		l, want := readProfile(t, svc, user)
		if !reflect.DeepEqual(l.p, want) || len(want.Identifiers) != 2 {
			t.Fatalf("read %d: head %+v, want %+v", i, l.p, want)
		}
		if _, ok := svc.heads.get(profileKey("sp_head", want.ID), l.version); !ok {
			t.Fatalf("read %d: the head is not cached", i)
		}
		l.p.Identifiers[0].Value = "changed"
		l.p.Identifiers[1].FirstSeen = time.Time{}
		l.p.Identifiers = append(l.p.Identifiers, Identifier{SourceID: "added"})
		l.p.ID, l.p.MergedInto, l.p.First.ID = "other", "elsewhere", "none"
	}
	// And the profile resolves as before.
	if res := applyForTest(t, svc, message.Track, "u-1", "a-1", nil); res.Created || len(res.Added) > 0 {
		t.Errorf("returning visitor after the changes: %+v", res)
	}
}

// Two Services on one store: what one writes, the other reads at once, though it cached the
// profile's earlier head (the cache's key holds the version).
func TestCachedHeadsFollowTheVersion(t *testing.T) {
	t.Parallel()
	st := openBoltForTest(t)
	a, b := New(st, Options{}), New(st, Options{})
	user := identity.Identifier{Type: "user_id", Value: "u-2"}
	anon := identity.Identifier{Type: "anonymous_id", Value: "a-3"}
	p1 := applyForTest(t, a, message.Identify, "u-2", "", nil).ProfileID
	p2 := applyForTest(t, a, message.Track, "", "a-3", nil).ProfileID
	before, _ := readProfile(t, a, user) // both heads cached in a
	readProfile(t, a, anon)

	// b adds an identifier to p1.
	applyForTest(t, b, message.Identify, "u-2", "", map[string]any{"email": "u2@example.com"})
	l, want := readProfile(t, a, user)
	if l.version == before.version || !reflect.DeepEqual(l.p, want) || len(l.p.Identifiers) != 2 {
		t.Errorf("after b's write a reads version %d, head %+v; want version %d, head %+v", l.version, l.p, before.version+1, want)
	}

	// b merges p2 into p1: a resolves p2's identifier to the survivor.
	res := applyForTest(t, b, message.Identify, "u-2", "a-3", nil)
	if len(res.Merged) != 1 {
		t.Fatalf("merge of %s and %s: %+v", p1, p2, res)
	}
	if got := applyForTest(t, a, message.Track, "", "a-3", nil); got.ProfileID != res.ProfileID || got.Created {
		t.Errorf("after the merge a applies a-3's event to %s (created %v), want the survivor %s", got.ProfileID, got.Created, res.ProfileID)
	}
}

// A head cached at one version is not taken for another, whatever the bytes.
func TestHeadCacheMatchesVersions(t *testing.T) {
	t.Parallel()
	var heads headCache
	k := profileKey("sp", "prof_1")
	old, _ := json.Marshal(Profile{ID: "prof_1", Identifiers: []Identifier{{SourceID: "one"}}})
	cur, _ := json.Marshal(Profile{ID: "prof_1", MergedInto: "prof_0"})
	for _, c := range []struct {
		version int64
		raw     []byte
		merged  string
	}{{3, old, ""}, {3, cur, ""}, {4, cur, "prof_0"}, {4, old, "prof_0"}, {3, old, ""}, {5, old, ""}} {
		l := &loaded{version: c.version, raw: c.raw}
		if err := l.decodeHead(&heads, k); err != nil {
			t.Fatal(err)
		}
		if l.p.MergedInto != c.merged {
			t.Errorf("version %d: merged into %q, want %q", c.version, l.p.MergedInto, c.merged)
		}
	}
	if l := (&loaded{version: 0, raw: old}); l.decodeHead(&heads, profileKey("sp", "prof_2")) != nil || len(heads.cur) != 1 {
		t.Errorf("a version 0 (no ReplaceOp's) was cached")
	}
}

// The cache takes at most about headCacheBytes, and keeps the heads used latest; it is safe
// for concurrent use (run with -race).
func TestHeadCacheIsBounded(t *testing.T) {
	t.Parallel()
	var heads headCache
	key := func(i int) store.Key { return profileKey("sp", fmt.Sprintf("prof_%06d", i)) }
	h := &profileHead{Identifiers: make([]Identifier, 2)}
	gen := headCacheBytes / 2 / headBytes(key(0), h) // heads per generation
	n := 4 * gen
	for i := range n {
		heads.put(key(i), 1, h)
		if i%(gen/3) == 0 {
			heads.get(key(0), 1) // keeps it
		}
	}
	total, cur := 0, 0
	for k, e := range heads.cur {
		cur += e.bytes
		total += e.bytes + heads.prev[k].bytes
	}
	for k, e := range heads.prev {
		if _, ok := heads.cur[k]; !ok {
			total += e.bytes
		}
	}
	if total > headCacheBytes || cur != heads.curBytes {
		t.Errorf("the heads cached take %d bytes (limit %d); cur takes %d, counted %d", total, headCacheBytes, cur, heads.curBytes)
	}
	for _, i := range []int{n - 1, n - gen/2, 0} {
		if _, ok := heads.get(key(i), 1); !ok {
			t.Errorf("head %d was dropped", i)
		}
	}
	for _, i := range []int{1, n / 4} {
		if _, ok := heads.get(key(i), 1); ok {
			t.Errorf("head %d, long unused, is still cached", i)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20000 {
				k := key(i % 5000)
				if _, ok := heads.get(k, int64(g)+1); !ok {
					heads.put(k, int64(g)+1, h)
				}
			}
		})
	}
	wg.Wait()
}

// A profile a committed message changes is cached at the version it wrote, exactly as its
// stored bytes decode: the next message of that visitor decodes nothing. A profile it
// creates is not (it is cached when first read): 9,999 new profiles of a CSV upload would
// otherwise take the whole cache (32 MB of the upload's 100 MB budget).
func TestWrittenHeadsAreCached(t *testing.T) {
	t.Parallel()
	svc := New(openBoltForTest(t), Options{})
	user := identity.Identifier{Type: "user_id", Value: "u-9"}
	check := func(step string, id identity.Identifier, wantIdentifiers int, wantCached bool) {
		t.Helper()
		got := map[store.Key]store.Item{}
		if err := svc.getMany(context.Background(), got, []store.Key{claimKey("sp_head", id)}); err != nil {
			t.Fatal(err)
		}
		pid, _ := claimOwner(got[claimKey("sp_head", id)].Data)
		it, err := svc.st.Get(context.Background(), profileKey("sp_head", pid))
		if err != nil {
			t.Fatal(err)
		}
		h, ok := svc.heads.get(profileKey("sp_head", pid), it.Version)
		if ok != wantCached {
			t.Fatalf("%s: the head of %s at version %d cached: %v, want %v", step, pid, it.Version, ok, wantCached)
		}
		if !ok {
			return
		}
		var want profileHead
		if err := json.Unmarshal(it.Data, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*h, want) || len(h.Identifiers) != wantIdentifiers {
			t.Fatalf("%s: cached head\n %+v\nstored head\n %+v", step, *h, want)
		}
	}
	applyForTest(t, svc, message.Identify, "u-9", "", map[string]any{"plan": "free"})
	check("created", user, 1, false)
	applyForTest(t, svc, message.Identify, "u-9", "a-9", map[string]any{"email": "u9@example.com"})
	check("identifiers added", user, 3, true)
	applyForTest(t, svc, message.Track, "", "a-10", nil)
	res := applyForTest(t, svc, message.Identify, "u-9", "a-10", nil)
	if len(res.Merged) != 1 {
		t.Fatalf("merge: %+v", res)
	}
	check("merged", user, 4, true)
	if h, ok := svc.heads.get(profileKey("sp_head", res.Merged[0]), 2); !ok || h.MergedInto != res.ProfileID {
		t.Errorf("the merged profile's forward is not cached at version 2: %+v %v", h, ok)
	}
}
