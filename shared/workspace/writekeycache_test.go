package workspace_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// readCounter counts the single-item reads that reach the store.
type readCounter struct {
	store.Store
	gets atomic.Int64
}

func (r *readCounter) Get(ctx context.Context, k store.Key) (store.Item, error) {
	r.gets.Add(1)
	return r.Store.Get(ctx, k)
}

// A write key's source is cached per instance for a second: a burst of tracking requests on
// one instance reads the write key's item once (one DynamoDB key cannot serve 10,000 reads a
// second), a source disabled or deleted through the same instance stops at once, and through
// another instance within the second.
func TestWriteKeysAreCachedForASecond(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(ctx context.Context, svc *workspace.Service, p workspace.Principal, ws, src string) error
	}{
		{"disabled", func(ctx context.Context, svc *workspace.Service, p workspace.Principal, ws, src string) error {
			off := false
			_, err := svc.UpdateSource(ctx, p, ws, src, workspace.SourceChange{Enabled: &off})
			return err
		}},
		{"deleted", func(ctx context.Context, svc *workspace.Service, p workspace.Principal, ws, src string) error {
			return svc.DeleteSource(ctx, p, ws, src)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var mu sync.Mutex
			now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
			st := &readCounter{Store: storetest.Backends(t)[0].Open(t)}
			opts := workspace.Options{OperatorTokenHash: token.Hash(operatorToken), Now: clock}
			a, b := workspace.New(st, opts), workspace.New(st, opts) // two instances, one table
			c, owner := newWorkspace(t, a, 1)
			src, err := a.CreateSource(ctx, owner, c.Workspace.ID, workspace.NewSource{Name: "Website", Type: "javascript"})
			if err != nil {
				t.Fatal(err)
			}

			before := st.gets.Load()
			for range 100 {
				got, err := a.SourceByWriteKey(ctx, src.WriteKey)
				if err != nil || got.ID != src.ID {
					t.Fatalf("SourceByWriteKey = %v, %v; want source %s", got.ID, err, src.ID)
				}
			}
			if n := st.gets.Load() - before; n > 2 { // the write key's item and the source's
				t.Fatalf("100 authentications within a second made %d reads, want at most 2", n)
			}
			if _, err := b.SourceByWriteKey(ctx, src.WriteKey); err != nil {
				t.Fatal(err)
			}

			if err := tc.change(ctx, b, owner, c.Workspace.ID, src.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := b.SourceByWriteKey(ctx, src.WriteKey); err == nil {
				t.Fatalf("the instance that %s the source still accepts its write key", tc.name)
			}
			if _, err := a.SourceByWriteKey(ctx, src.WriteKey); err != nil {
				t.Fatalf("another instance refused the write key at once (%v): the cache did not serve it", err)
			}
			advance(time.Second)
			_, err = a.SourceByWriteKey(ctx, src.WriteKey)
			wantCode(t, err, "invalid_write_key")
		})
	}
}
