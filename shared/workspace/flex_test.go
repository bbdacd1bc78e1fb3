package workspace_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/secrets"
	"github.com/unifiedprofiles/up/shared/secrets/localkey"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

const flexToken = "0123456789abcdef0123456789abcdef"

// flexFixture is a workspace service with a local-key Sealer on one backend.
type flexFixture struct {
	svc   *workspace.Service
	st    store.Store
	clock *testclock.Clock
}

// forEachFlexBackend runs fn on every store backend with a Sealer configured.
func forEachFlexBackend(t *testing.T, fn func(t *testing.T, f flexFixture)) {
	t.Helper()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			sealer, err := localkey.LoadOrCreate(filepath.Join(t.TempDir(), "secrets.key"))
			if err != nil {
				t.Fatal(err)
			}
			clock := testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			st := b.Open(t)
			svc := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken), Secrets: sealer, Now: clock.Now})
			fn(t, flexFixture{svc: svc, st: st, clock: clock})
		})
	}
}

func flexItem(t *testing.T, st store.Store, ws string) store.Item {
	t.Helper()
	it, err := st.Get(context.Background(), store.Key{PK: "WS#" + ws, SK: "FLEX"})
	if err != nil {
		t.Fatalf("read the Flex item of %s: %v", ws, err)
	}
	return it
}

func TestFlexAuthTokenStoredSealed(t *testing.T) {
	t.Parallel()
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		tn := workspacetest.New(t, f.svc, operatorToken)

		wantCode(t, func() error { _, err := f.svc.FlexAuthToken(ctx, tn.ID()); return err }(), "flex_not_configured")

		cfg, err := f.svc.SetFlexAuthToken(ctx, tn.Owner, tn.ID(), flexToken)
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.Configured || !cfg.UpdatedAt.Equal(f.clock.Now()) {
			t.Errorf("config %+v, want configured at %v", cfg, f.clock.Now())
		}
		got, err := f.svc.FlexAuthToken(ctx, tn.ID())
		if err != nil || got != flexToken {
			t.Fatalf("FlexAuthToken = %q, %v", got, err)
		}
		// At rest there is only ciphertext.
		if it := flexItem(t, f.st, tn.ID()); bytes.Contains(it.Data, []byte(flexToken)) {
			t.Errorf("the stored item holds the token in clear: %s", it.Data)
		}

		// A new token replaces the old one.
		f.clock.Add(time.Hour)
		second := strings.Repeat("ab", 16)
		cfg, err = f.svc.SetFlexAuthToken(ctx, tn.Owner, tn.ID(), second)
		if err != nil || !cfg.UpdatedAt.Equal(f.clock.Now()) {
			t.Fatalf("replace: %+v, %v", cfg, err)
		}
		if got, _ := f.svc.FlexAuthToken(ctx, tn.ID()); got != second {
			t.Errorf("after replacing, FlexAuthToken = %q", got)
		}
	})
}

func TestFlexAuthTokenRefused(t *testing.T) {
	t.Parallel()
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		tn := workspacetest.New(t, f.svc, operatorToken)
		for _, tc := range []struct{ name, tok string }{
			{"empty", ""},
			{"short", flexToken[:31]},
			{"long", flexToken + "0"},
			{"upper case", strings.ToUpper(flexToken)},
			{"not hex", "g123456789abcdef0123456789abcdef"},
			{"trailing newline", flexToken[:31] + "\n"},
			{"surrounded by spaces", " " + flexToken[:30] + " "},
			{"an account SID", "AC0123456789abcdef0123456789abcd"},
		} {
			_, err := f.svc.SetFlexAuthToken(ctx, tn.Owner, tn.ID(), tc.tok)
			e := errcode.As(err)
			if e == nil || e.Code != "invalid_field" || e.Field != "auth_token" {
				t.Errorf("%s: %v, want invalid_field on auth_token", tc.name, err)
				continue
			}
			// The message says what is wrong without repeating what was sent.
			if tc.tok != "" && strings.Contains(e.Message, strings.TrimSpace(tc.tok)) {
				t.Errorf("%s: the message repeats the value: %q", tc.name, e.Message)
			}
		}
		wantCode(t, func() error { _, err := f.svc.FlexAuthToken(ctx, tn.ID()); return err }(), "flex_not_configured")
	})
}

// Only the workspace's own token may set it; and a sealed token moved into another
// workspace's item does not open there (the workspace id is its encryption context).
func TestFlexAuthTokenIsolation(t *testing.T) {
	t.Parallel()
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		a, b := workspacetest.New(t, f.svc, operatorToken), workspacetest.New(t, f.svc, operatorToken)
		op, _ := f.svc.Authenticate(ctx, operatorToken)
		for name, p := range map[string]workspace.Principal{"another workspace": b.Owner, "the operator": op} {
			if _, err := f.svc.SetFlexAuthToken(ctx, p, a.ID(), flexToken); !errcode.Is(err, "forbidden") {
				t.Errorf("%s set A's token: %v", name, err)
			}
		}
		if _, err := f.svc.SetFlexAuthToken(ctx, a.Owner, a.ID(), flexToken); err != nil {
			t.Fatal(err)
		}
		moved := flexItem(t, f.st, a.ID())
		moved.Key = store.Key{PK: "WS#" + b.ID(), SK: "FLEX"}
		if err := f.st.Transact(ctx, store.PutOp(moved, store.Always)); err != nil {
			t.Fatal(err)
		}
		if got, err := f.svc.FlexAuthToken(ctx, b.ID()); !errors.Is(err, secrets.ErrOpen) {
			t.Errorf("A's sealed token under B: %q, %v; want ErrOpen", got, err)
		}
		// An unknown workspace answers exactly as one without a token.
		wantCode(t, func() error { _, err := f.svc.FlexAuthToken(ctx, "ws_unknown"); return err }(), "flex_not_configured")
		// A principal that owns an id no workspace has still cannot create one's settings.
		ghost := workspace.Principal{Kind: workspace.WorkspaceOwner, WorkspaceID: "ws_ghost"}
		wantCode(t, func() error { _, err := f.svc.SetFlexAuthToken(ctx, ghost, "ws_ghost", flexToken); return err }(), "not_found")
	})
}

func TestFlexWithoutSealer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.Backends(t)[0].Open(t)
	svc := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken)})
	tn := workspacetest.New(t, svc, operatorToken)
	_, err := svc.SetFlexAuthToken(ctx, tn.Owner, tn.ID(), flexToken)
	if e := wantCode(t, err, "secrets_not_configured"); e.Kind != errcode.Internal {
		t.Errorf("kind %v", e.Kind)
	}
	if _, err := st.Get(ctx, store.Key{PK: "WS#" + tn.ID(), SK: "FLEX"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an item was written: %v", err)
	}
}

func TestFlexSource(t *testing.T) {
	t.Parallel()
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		tn := workspacetest.New(t, f.svc, operatorToken)
		// A source of the user's own with the same name and type is not the Flex source.
		if _, err := f.svc.CreateSource(ctx, tn.Owner, tn.ID(), workspace.NewSource{Name: workspace.FlexSourceName, Type: workspace.FlexSourceType}); err != nil {
			t.Fatal(err)
		}
		src, err := f.svc.FlexSource(ctx, tn.ID())
		if err != nil {
			t.Fatal(err)
		}
		if src.ID != tn.Sources[0].ID || !src.AutoCreated || src.SpaceID != tn.SpaceID() {
			t.Errorf("FlexSource = %+v, want the auto-created %+v", src, tn.Sources[0])
		}
		wantCode(t, func() error { _, err := f.svc.FlexSource(ctx, "ws_unknown"); return err }(), "not_found")
	})
}
