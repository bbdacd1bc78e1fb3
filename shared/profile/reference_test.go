package profile_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/identity/identitytest"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/testclock"
)

// Random message sequences applied serially through Apply on the embedded store give the same
// partition of identifiers into profiles as the reference model of the rules.
func TestApplyMatchesReferenceModel(t *testing.T) {
	t.Parallel()
	set := identity.Settings{Identifiers: []identity.Rule{
		{Type: "user_id", Limit: 1, Window: identity.WindowEver, Priority: 1},
		{Type: "email", Limit: 2, Window: identity.WindowEver, Priority: 2},
		{Type: "anonymous_id", Limit: 3, Window: identity.WindowWeekly, Priority: 3},
		{Type: "phone", Custom: true, Keys: []string{"phone"}, Limit: 2, Window: identity.WindowMonthly, Priority: 4},
	}}
	pool := map[string]int{"user_id": 5, "email": 5, "anonymous_id": 10, "phone": 4}
	types := []string{"user_id", "email", "anonymous_id", "phone"}
	for seed := range uint64(25) {
		rng := rand.New(rand.NewPCG(seed, 11))
		c := testclock.New(t0)
		svc := profile.New(storetest.Backends(t)[0].Open(t), profile.Options{Now: c.Now})
		ctx := context.Background()
		if _, err := svc.SaveSettings(ctx, sp, set); err != nil {
			t.Fatal(err)
		}
		ref := identitytest.NewReference(set)
		var all []identity.Identifier
		for _, typ := range types {
			for i := range pool[typ] {
				all = append(all, identity.Identifier{Type: typ, Value: fmt.Sprintf("%s%d", typ[:1], i)})
			}
		}
		for n := range 60 {
			c.Add(time.Duration(rng.IntN(48)) * time.Hour)
			m := message.Message{Type: message.Identify, MessageID: fmt.Sprintf("s%d-%d", seed, n), Traits: map[string]any{}, Timestamp: c.Now(), ReceivedAt: c.Now()}
			var ids []identity.Identifier
			for _, typ := range types {
				if rng.IntN(3) != 0 {
					continue
				}
				v := fmt.Sprintf("%s%d", typ[:1], rng.IntN(pool[typ]))
				ids = append(ids, identity.Identifier{Type: typ, Value: v})
				switch typ {
				case "user_id":
					m.UserID = v
				case "anonymous_id":
					m.AnonymousID = v
				default:
					m.Traits[typ] = v
				}
			}
			if len(ids) == 0 {
				m.AnonymousID = fmt.Sprintf("a%d", rng.IntN(pool["anonymous_id"]))
				ids = append(ids, identity.Identifier{Type: "anonymous_id", Value: m.AnonymousID})
			}
			if _, err := svc.Apply(ctx, sp, m); err != nil {
				t.Fatalf("seed %d message %d: %v", seed, n, err)
			}
			ref.Apply(c.Now(), ids)
		}
		groups := map[string][]identity.Identifier{}
		for _, id := range all {
			p, err := svc.Lookup(ctx, sp, id)
			if err != nil {
				continue // never mapped
			}
			groups[p.ID] = append(groups[p.ID], id)
		}
		var got [][]identity.Identifier
		for _, g := range groups {
			got = append(got, g)
		}
		if g, w := identitytest.Partition(got), ref.Partition(); !slices.Equal(g, w) {
			t.Fatalf("seed %d: Apply and the reference disagree\nApply:     %q\nreference: %q", seed, g, w)
		}
	}
}
