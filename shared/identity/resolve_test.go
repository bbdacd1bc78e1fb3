package identity_test

import (
	"fmt"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/identity/identitytest"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func id(s string) identity.Identifier {
	typ, val, _ := strings.Cut(s, ":")
	return identity.Identifier{Type: typ, Value: val}
}

func ids(ss ...string) []identity.Identifier {
	out := make([]identity.Identifier, len(ss))
	for i, s := range ss {
		out[i] = id(s)
	}
	return out
}

// memGraph applies decisions in memory: the system under test for the resolver alone.
type memGraph struct {
	r        *identity.Resolver
	owner    map[identity.Identifier]string
	profiles map[string]*identity.Candidate
	viol     map[string][]identity.Violation
	next     int
}

func compiled(t testing.TB, s identity.Settings) *identity.Compiled {
	t.Helper()
	c, err := identity.Compile(s)
	if err != nil {
		t.Fatalf("settings: %v", err)
	}
	return c
}

func newMemGraph(t testing.TB, s identity.Settings) *memGraph {
	return &memGraph{r: identity.NewResolver(compiled(t, s)), owner: map[identity.Identifier]string{}, profiles: map[string]*identity.Candidate{}, viol: map[string][]identity.Violation{}}
}

func (g *memGraph) resolve(now time.Time, msg ...identity.Identifier) (string, identity.Decision) {
	cands := map[string]identity.Candidate{}
	for p, c := range g.profiles {
		cands[p] = *c
	}
	d := g.r.Decide(msg, func(i identity.Identifier) string { return g.owner[i] }, cands, now)
	p := d.Profile
	if d.Create {
		g.next++
		p = fmt.Sprintf("prof_%04d", g.next)
		g.profiles[p] = &identity.Candidate{ID: p, CreatedAt: now}
	}
	surv := g.profiles[p]
	for _, m := range d.Merge {
		loser := g.profiles[m]
		surv.Identifiers = append(surv.Identifiers, loser.Identifiers...)
		surv.Merges += 1 + loser.Merges
		for _, s := range loser.Identifiers {
			g.owner[s.Identifier] = p
		}
		g.viol[p] = append(g.viol[p], g.viol[m]...)
		delete(g.profiles, m)
	}
	for _, i := range d.Add {
		surv.Identifiers = append(surv.Identifiers, identity.Seen{Identifier: i, FirstSeen: now})
		g.owner[i] = p
	}
	g.viol[p] = append(g.viol[p], d.Violations...)
	return p, d
}

func testSettings() identity.Settings {
	return identity.Settings{Identifiers: []identity.Rule{
		{Type: "user_id", Limit: 1, Window: identity.WindowEver, Priority: 1},
		{Type: "email", Limit: 5, Window: identity.WindowEver, Priority: 2},
		{Type: "anonymous_id", Limit: 5, Window: identity.WindowWeekly, Priority: 3},
		{Type: "phone", Custom: true, Keys: []string{"phone"}, Limit: 5, Window: identity.WindowAnnually, Priority: 4},
	}}
}

func TestDemotionExample(t *testing.T) {
	t.Parallel()
	g := newMemGraph(t, testSettings())
	jane, _ := g.resolve(t0, ids("user_id:abc123", "email:jane@x")...)
	p, d := g.resolve(t0.Add(time.Minute), ids("user_id:abc456", "email:jane@x")...)
	if p == jane || !d.Create || !slices.Equal(d.Add, ids("user_id:abc456")) {
		t.Fatalf("resolved to %s (jane %s), decision %+v; want a new profile with user_id abc456 only", p, jane, d)
	}
	if len(d.Violations) != 1 || d.Violations[0].Kind != identity.ViolationValueLimit || d.Violations[0].Identifier != id("email:jane@x") {
		t.Fatalf("violations %+v, want one value_limit_exceeded for the email", d.Violations)
	}
	if got := g.profiles[jane].Identifiers; len(got) != 2 {
		t.Fatalf("jane's profile changed: %+v", got)
	}
	if g.owner[id("email:jane@x")] != jane {
		t.Fatal("the email moved")
	}
}

func TestSharedAnonymousIDDoesNotMerge(t *testing.T) {
	t.Parallel()
	g := newMemGraph(t, testSettings())
	a, _ := g.resolve(t0, ids("user_id:u1", "anonymous_id:shared-kiosk")...)
	b, d := g.resolve(t0.Add(time.Hour), ids("user_id:u2", "anonymous_id:shared-kiosk")...)
	if a == b || len(d.Merge) != 0 {
		t.Fatalf("two user_ids merged through a shared anonymous id: %s %s %+v", a, b, d)
	}
	// An event from the kiosk alone still resolves: to the profile that owns it.
	c, _ := g.resolve(t0.Add(2*time.Hour), ids("anonymous_id:shared-kiosk")...)
	if c != a {
		t.Fatalf("anonymous event resolved to %s, want %s", c, a)
	}
}

func TestWeeklyLimitAgesOut(t *testing.T) {
	t.Parallel()
	g := newMemGraph(t, testSettings())
	var p string
	for i := range 5 {
		p, _ = g.resolve(t0.Add(time.Duration(i)*time.Hour), id("user_id:u"), id(fmt.Sprintf("anonymous_id:a%d", i)))
	}
	q, d := g.resolve(t0.Add(6*time.Hour), ids("user_id:u", "anonymous_id:a5")...)
	if q != p || len(d.Add) != 0 || len(d.Violations) != 1 || d.Violations[0].Identifier != id("anonymous_id:a5") {
		t.Fatalf("6th anonymous_id within a week: %s %+v", q, d)
	}
	if g.owner[id("anonymous_id:a5")] != "" {
		t.Fatal("the demoted anonymous id was mapped")
	}
	// Eight days on, the first five are out of the window: the sixth is accepted.
	q, d = g.resolve(t0.Add(8*24*time.Hour), ids("user_id:u", "anonymous_id:a5")...)
	if q != p || !slices.Equal(d.Add, ids("anonymous_id:a5")) || len(d.Violations) != 0 {
		t.Fatalf("after the window: %s %+v", q, d)
	}
}

func TestThreeProfilesMergeIntoOldest(t *testing.T) {
	t.Parallel()
	g := newMemGraph(t, testSettings())
	oldest, _ := g.resolve(t0, ids("anonymous_id:a")...)
	second, _ := g.resolve(t0.Add(time.Hour), ids("email:e@x")...)
	third, _ := g.resolve(t0.Add(2*time.Hour), ids("user_id:u")...)
	p, d := g.resolve(t0.Add(3*time.Hour), ids("user_id:u", "email:e@x", "anonymous_id:a", "phone:+15550100")...)
	if p != oldest || !slices.Equal(d.Merge, []string{second, third}) || !slices.Equal(d.Add, ids("phone:+15550100")) {
		t.Fatalf("merge: %s %+v", p, d)
	}
	for _, i := range ids("user_id:u", "email:e@x", "anonymous_id:a", "phone:+15550100") {
		if g.owner[i] != oldest {
			t.Errorf("%s resolves to %s", i, g.owner[i])
		}
	}
	if g.profiles[oldest].Merges != 2 {
		t.Errorf("merges %d", g.profiles[oldest].Merges)
	}
}

func TestMergeCap(t *testing.T) {
	t.Parallel()
	r := identity.NewResolver(compiled(t, testSettings()))
	cands := map[string]identity.Candidate{
		"old": {ID: "old", CreatedAt: t0, Merges: identity.MaxMerges, Identifiers: []identity.Seen{{Identifier: id("anonymous_id:a"), FirstSeen: t0}}},
		"new": {ID: "new", CreatedAt: t0.Add(time.Hour), Identifiers: []identity.Seen{{Identifier: id("email:e"), FirstSeen: t0}}},
	}
	owner := map[identity.Identifier]string{id("anonymous_id:a"): "old", id("email:e"): "new"}
	d := r.Decide(ids("email:e", "anonymous_id:a", "phone:1"), func(i identity.Identifier) string { return owner[i] }, cands, t0.Add(2*time.Hour))
	if d.Profile != "old" || len(d.Merge) != 0 || len(d.Add) != 0 {
		t.Fatalf("the 101st merge happened: %+v", d)
	}
	if len(d.Violations) != 1 || d.Violations[0].Kind != identity.ViolationMergeLimit || !strings.Contains(d.Violations[0].Detail, "new") {
		t.Fatalf("violations %+v", d.Violations)
	}
}

func TestIdentifierCap(t *testing.T) {
	t.Parallel()
	s := testSettings()
	s.Identifiers[3].Limit = 1000
	s.Identifiers[3].Window = identity.WindowEver
	r := identity.NewResolver(compiled(t, s))
	full := identity.Candidate{ID: "p", CreatedAt: t0}
	owner := map[identity.Identifier]string{}
	for i := range identity.MaxIdentifiers {
		sn := identity.Seen{Identifier: identity.Identifier{Type: "phone", Value: fmt.Sprint(i)}, FirstSeen: t0}
		full.Identifiers = append(full.Identifiers, sn)
		owner[sn.Identifier] = "p"
	}
	d := r.Decide([]identity.Identifier{{Type: "phone", Value: "0"}, {Type: "email", Value: "e"}}, func(i identity.Identifier) string { return owner[i] }, map[string]identity.Candidate{"p": full}, t0)
	if d.Profile != "p" || len(d.Add) != 0 || len(d.Violations) != 1 || d.Violations[0].Kind != identity.ViolationMappingLimit {
		t.Fatalf("mapping past the cap: %+v", d)
	}
}

// Random message sequences over a small pool of identifiers, applied serially, give the same
// profiles through the resolver as through the reference model.
func TestResolverMatchesReferenceModel(t *testing.T) {
	t.Parallel()
	s := identity.Settings{Identifiers: []identity.Rule{
		{Type: "user_id", Limit: 1, Window: identity.WindowEver, Priority: 1},
		{Type: "email", Limit: 2, Window: identity.WindowEver, Priority: 2},
		{Type: "anonymous_id", Limit: 3, Window: identity.WindowWeekly, Priority: 3},
		{Type: "phone", Custom: true, Keys: []string{"phone"}, Limit: 2, Window: identity.WindowMonthly, Priority: 4},
	}}
	pool := map[string]int{"user_id": 6, "email": 6, "anonymous_id": 12, "phone": 5}
	types := []string{"user_id", "email", "anonymous_id", "phone"}
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 7))
		g := newMemGraph(t, s)
		ref := identitytest.NewReference(s)
		now := t0
		for range 60 {
			now = now.Add(time.Duration(rng.IntN(48)) * time.Hour)
			var msg []identity.Identifier
			for _, typ := range types {
				if rng.IntN(3) == 0 {
					msg = append(msg, identity.Identifier{Type: typ, Value: fmt.Sprintf("%s%d", typ[:1], rng.IntN(pool[typ]))})
				}
			}
			if len(msg) == 0 {
				msg = append(msg, identity.Identifier{Type: "anonymous_id", Value: fmt.Sprintf("a%d", rng.IntN(pool["anonymous_id"]))})
			}
			g.resolve(now, msg...)
			ref.Apply(now, msg)
		}
		var got [][]identity.Identifier
		for _, p := range g.profiles {
			var l []identity.Identifier
			for _, s := range p.Identifiers {
				l = append(l, s.Identifier)
			}
			got = append(got, l)
		}
		if g, w := identitytest.Partition(got), ref.Partition(); !slices.Equal(g, w) {
			t.Fatalf("seed %d: resolver and reference disagree\nresolver:  %q\nreference: %q", seed, g, w)
		}
		// Every mapped identifier resolves to exactly one live profile.
		for i, p := range g.owner {
			if _, ok := g.profiles[p]; !ok {
				t.Fatalf("seed %d: %s resolves to dead profile %s", seed, i, p)
			}
		}
	}
}
