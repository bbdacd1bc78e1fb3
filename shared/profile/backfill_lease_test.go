package profile_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/traits"
)

// listStore watches the backfill's walk of the profile list ("#PL#" partitions): it counts
// the queries, can hold the first one until released, and can fail them.
type listStore struct {
	store.Store
	queries atomic.Int64
	hold    chan struct{} // when set, the first list query waits for it to close
	held    chan struct{} // closed when the first list query is waiting
	once    sync.Once
	fail    atomic.Bool
}

func (s *listStore) Query(ctx context.Context, pk string, p store.Page) ([]store.Item, error) {
	if strings.Contains(pk, "#PL#") {
		s.queries.Add(1)
		if s.fail.Load() {
			return nil, errors.New("the list partition is unavailable")
		}
		if s.hold != nil {
			first := false
			s.once.Do(func() { first = true })
			if first {
				close(s.held)
				<-s.hold
			}
		}
	}
	return s.Store.Query(ctx, pk, p)
}

// newBackfill makes a space with a few profiles and a trait whose backfill is due.
func newBackfill(t *testing.T, ls *listStore, c *testclock.Clock) (*profile.Service, profile.ComputedTrait) {
	t.Helper()
	svc := profile.New(ls, profile.Options{Now: c.Now})
	for _, u := range []string{"u1", "u2", "u3"} {
		mustApply(t, svc, identify(u, "", nil, c.Now()))
	}
	d, err := traits.Preset(traits.PresetTotalInbounds)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := svc.CreateComputedTrait(context.Background(), sp, d, traits.PresetTotalInbounds, takeSlot())
	if err != nil {
		t.Fatal(err)
	}
	c.Add(profile.DefaultBackfillDelay)
	return svc, ct
}

// Overlapping runners (scheduled invocations that overrun) never work on one backfill
// together: while one holds its lease, another leaves it alone.
func TestBackfillOneRunnerAtATime(t *testing.T) {
	t.Parallel()
	ls := &listStore{Store: storetest.Backends(t)[0].Open(t), hold: make(chan struct{}), held: make(chan struct{})}
	c := testclock.New(t0)
	svc, ct := newBackfill(t, ls, c)
	ctx := context.Background()

	first := make(chan error, 1)
	go func() { _, err := svc.Backfill(ctx, sp, ct.ID); first <- err }()
	<-ls.held // the first runner is inside the backfill
	done, err := svc.Backfill(ctx, sp, ct.ID)
	if err != nil || done {
		t.Fatalf("second runner: done %v, %v; want it to leave the held backfill", done, err)
	}
	if n := ls.queries.Load(); n != 1 {
		t.Errorf("the second runner walked the list too (%d list queries)", n)
	}
	close(ls.hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if b, _ := svc.BackfillProgress(ctx, sp, ct.ID); b.Status != profile.BackfillDone || b.Profiles != 3 {
		t.Fatalf("progress %+v, want done over 3 profiles", b)
	}
}

// A runner that died holding the lease is replaced once the lease runs out; a backfill that
// keeps failing ends failed (with a reason) instead of staying running forever.
func TestBackfillLeaseExpiresAndFailuresEnd(t *testing.T) {
	t.Parallel()
	ls := &listStore{Store: storetest.Backends(t)[0].Open(t), hold: make(chan struct{}), held: make(chan struct{})}
	c := testclock.New(t0)
	svc, ct := newBackfill(t, ls, c)

	// A runner that is stopped mid-way (its invocation timed out) keeps the lease.
	dead, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { svc.Backfill(dead, sp, ct.ID); close(stopped) }()
	<-ls.held
	cancel()
	close(ls.hold)
	<-stopped
	ctx := context.Background()
	if done, _ := svc.Backfill(ctx, sp, ct.ID); done {
		t.Fatal("a held lease was ignored")
	}
	c.Add(2 * time.Minute)
	if done, err := svc.Backfill(ctx, sp, ct.ID); !done || err != nil {
		t.Fatalf("after the lease ran out: done %v, %v", done, err)
	}

	// Another trait, on a list that cannot be read: five failed runs, then failed.
	d := traits.Definition{Key: "orders", Type: traits.EventCounter, Event: "Order Completed"}
	bad, err := svc.CreateComputedTrait(ctx, sp, d, "", takeSlot())
	if err != nil {
		t.Fatal(err)
	}
	c.Add(profile.DefaultBackfillDelay)
	ls.fail.Store(true)
	for run := 1; run <= 5; run++ {
		if err := svc.RunBackfills(ctx); err == nil {
			t.Fatalf("run %d on an unreadable list succeeded", run)
		}
	}
	b, err := svc.BackfillProgress(ctx, sp, bad.ID)
	if err != nil || b.Status != profile.BackfillFailed || b.Error == "" {
		t.Fatalf("after five failed runs: %+v %v, want failed with a reason", b, err)
	}
	before := ls.queries.Load()
	if err := svc.RunBackfills(ctx); err != nil {
		t.Fatalf("a failed backfill is still run: %v", err)
	}
	if ls.queries.Load() != before {
		t.Error("a failed backfill is still tried")
	}
}
