package quota_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/quota"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/testclock"
)

// countingStore counts the writes that reach the store.
type countingStore struct {
	store.Store
	writes atomic.Int64
}

func (c *countingStore) Transact(ctx context.Context, ops ...store.Op) error {
	c.writes.Add(1)
	return c.Store.Transact(ctx, ops...)
}

// Several processes on one store (Lambda instances, each with its own Limiter) grant
// together exactly the limit in a second, however their takes interleave; the next second
// has a fresh budget; the store sees about one write per chunk, not one per take.
func TestLimitHoldsAcrossProcesses(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			st := &countingStore{Store: b.Open(t)}
			clock := testclock.New(time.Unix(1_900_000_000, 0))
			const limit = 500
			procs := []*quota.Limiter{
				quota.New(st, "tracking", limit, clock.Now),
				quota.New(st, "tracking", limit, clock.Now),
				quota.New(st, "tracking", limit, clock.Now),
			}
			var granted, refused atomic.Int64
			var wg sync.WaitGroup
			for i := range 12 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l := procs[i%len(procs)]
					for range 100 {
						ok, wait, err := l.Take(context.Background(), "ws_1", 1)
						if err != nil {
							t.Error(err)
							return
						}
						if ok {
							granted.Add(1)
						} else if wait <= 0 || wait > time.Second {
							t.Errorf("refused with Retry-After %v", wait)
						} else {
							refused.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			// 1,200 takes in one second: the three processes together granted at most the
			// limit, and lost at most one chunk each to leases they could not spend.
			if g := granted.Load(); g > limit || g < limit-3*limit/50 {
				t.Errorf("granted %d of 1,200 takes in one second, want %d less at most 3 chunks", g, limit)
			}
			if w := st.writes.Load(); w > 3*limit/(limit/50)+10 {
				t.Errorf("%d store writes for %d grants: leases are not chunked", w, granted.Load())
			}
			// Another key has its own budget; the next second a fresh one.
			if ok, _, _ := procs[0].Take(context.Background(), "ws_2", 1); !ok {
				t.Error("another key was refused")
			}
			clock.Add(time.Second)
			if ok, _, _ := procs[1].Take(context.Background(), "ws_1", limit/2); !ok {
				t.Error("the next second was refused")
			}
		})
	}
}

func TestTakeBounds(t *testing.T) {
	t.Parallel()
	st := storetest.Backends(t)[0].Open(t)
	clock := testclock.New(time.Unix(1_900_000_000, 250_000_000))
	l := quota.New(st, "profiles", 10, clock.Now)
	for _, tc := range []struct {
		n      int64
		wantOK bool
	}{{11, false}, {10, true}, {1, false}} {
		ok, wait, err := l.Take(context.Background(), "sp_1", tc.n)
		if err != nil || ok != tc.wantOK {
			t.Fatalf("Take(%d) = %v, %v; want %v", tc.n, ok, err, tc.wantOK)
		}
		if !ok && wait != 750*time.Millisecond {
			t.Errorf("Take(%d) refused with wait %v, want the 750ms to the next second", tc.n, wait)
		}
	}
}
