package workspace_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/secrets"
	"github.com/unifiedprofiles/up/shared/secrets/localkey"
	"github.com/unifiedprofiles/up/shared/secrets/secretstest"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

func newCountingService(t *testing.T, b storetest.Backend) (*workspace.Service, *secretstest.Counting, store.Store) {
	t.Helper()
	inner, err := localkey.LoadOrCreate(filepath.Join(t.TempDir(), "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	sealer := &secretstest.Counting{Sealer: inner}
	st := b.Open(t)
	return workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken), Secrets: sealer}), sealer, st
}

// The Flex token is opened once per stored ciphertext, however often it is asked for; a new
// token is seen on the next call; CachedFlexAuthToken never opens.
func TestFlexAuthTokenOpenedOncePerVersion(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			svc, sealer, st := newCountingService(t, b)
			tn := workspacetest.New(t, svc, operatorToken)
			if _, err := svc.SetFlexAuthToken(ctx, tn.Owner, tn.ID(), flexToken); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := svc.CachedFlexAuthToken(ctx, tn.ID()); ok || err != nil {
				t.Fatalf("cached before any open: %v, %v", ok, err)
			}
			for range 100 {
				if got, err := svc.FlexAuthToken(ctx, tn.ID()); err != nil || got != flexToken {
					t.Fatalf("FlexAuthToken = %q, %v", got, err)
				}
			}
			if n := sealer.Opens.Load(); n != 1 {
				t.Fatalf("%d Opens for 100 reads of one token, want 1", n)
			}
			if got, ok, err := svc.CachedFlexAuthToken(ctx, tn.ID()); !ok || err != nil || got != flexToken {
				t.Fatalf("cached: %q, %v, %v", got, ok, err)
			}

			// A new token (and even the same one set again: a new ciphertext) is picked up.
			second := strings.Repeat("ab", 16)
			for i, tok := range []string{second, second, flexToken} {
				if _, err := svc.SetFlexAuthToken(ctx, tn.Owner, tn.ID(), tok); err != nil {
					t.Fatal(err)
				}
				if _, ok, _ := svc.CachedFlexAuthToken(ctx, tn.ID()); ok {
					t.Errorf("set %d: the previous token is still served from the cache", i)
				}
				for range 10 {
					if got, err := svc.FlexAuthToken(ctx, tn.ID()); err != nil || got != tok {
						t.Fatalf("set %d: FlexAuthToken = %q, %v, want the new token", i, got, err)
					}
				}
				if n := sealer.Opens.Load(); n != int64(2+i) {
					t.Fatalf("set %d: %d Opens, want %d", i, n, 2+i)
				}
			}
			// Another Service (a cold instance) opens on its own.
			cold := workspace.New(st, workspace.Options{Secrets: sealer})
			if _, ok, err := cold.CachedFlexAuthToken(ctx, tn.ID()); ok || err != nil {
				t.Errorf("a fresh service: cached %v, %v", ok, err)
			}
			if got, err := cold.FlexAuthToken(ctx, tn.ID()); err != nil || got != flexToken {
				t.Errorf("a fresh service: %q, %v", got, err)
			}
		})
	}
}

// A ciphertext that cannot open is opened once, not on every call.
func TestFlexAuthTokenUnopenableOpenedOnce(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			svc, sealer, st := newCountingService(t, b)
			a, victim := workspacetest.New(t, svc, operatorToken), workspacetest.New(t, svc, operatorToken)
			if _, err := svc.SetFlexAuthToken(ctx, a.Owner, a.ID(), flexToken); err != nil {
				t.Fatal(err)
			}
			moved := flexItem(t, st, a.ID())
			moved.Key = store.Key{PK: "WS#" + victim.ID(), SK: "FLEX"}
			if err := st.Transact(ctx, store.PutOp(moved, store.Always)); err != nil {
				t.Fatal(err)
			}
			for range 20 {
				if _, err := svc.FlexAuthToken(ctx, victim.ID()); !errors.Is(err, secrets.ErrOpen) {
					t.Fatalf("want ErrOpen, got %v", err)
				}
			}
			if n := sealer.Opens.Load(); n != 1 {
				t.Errorf("%d Opens of one unopenable ciphertext, want 1", n)
			}
		})
	}
}
