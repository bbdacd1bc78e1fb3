package workspace_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

// Rotating the workspace token: the new one works, the old one stops at once, and rotating
// again works with the new one.
func TestRotateWorkspaceToken(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, st store.Store) {
		ctx := context.Background()
		tn := workspacetest.New(t, svc, operatorToken)
		old := tn.Token
		next, err := svc.RotateWorkspaceToken(ctx, tn.Owner, tn.ID())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(next, "upw_") || next == old {
			t.Fatalf("new token %q", next)
		}
		if _, err := svc.Authenticate(ctx, old); !errcode.Is(err, "unauthorized") {
			t.Errorf("the old token still authenticates: %v", err)
		}
		p, err := svc.Authenticate(ctx, next)
		if err != nil || p.Owns(tn.ID()) != nil {
			t.Fatalf("the new token: %+v, %v", p, err)
		}
		// The old principal cannot rotate again (its token is gone); the new one can.
		_, err = svc.RotateWorkspaceToken(ctx, tn.Owner, tn.ID())
		wantCode(t, err, "unauthorized")
		third, err := svc.RotateWorkspaceToken(ctx, p, tn.ID())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Authenticate(ctx, next); !errcode.Is(err, "unauthorized") {
			t.Errorf("the second token still authenticates: %v", err)
		}
		if _, err := svc.Authenticate(ctx, third); err != nil {
			t.Errorf("the third token: %v", err)
		}
		assertNoTokenStored(t, st, tn.ID(), old, next, third)
	})
}

// Two (here eight) rotations at once with the same token: exactly one wins, and exactly one
// valid token remains — the winner's.
func TestRotateWorkspaceTokenConcurrently(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, _ store.Store) {
		ctx := context.Background()
		tn := workspacetest.New(t, svc, operatorToken)
		const n = 8
		toks, errs := make([]string, n), make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { toks[i], errs[i] = svc.RotateWorkspaceToken(ctx, tn.Owner, tn.ID()) })
		}
		wg.Wait()
		valid := 0
		for i := range n {
			if errs[i] != nil {
				wantCode(t, errs[i], "unauthorized")
				continue
			}
			if _, err := svc.Authenticate(ctx, toks[i]); err == nil {
				valid++
			}
		}
		if _, err := svc.Authenticate(ctx, tn.Token); err == nil {
			valid++
		}
		if valid != 1 {
			t.Fatalf("%d valid tokens after %d concurrent rotations (errors %v)", valid, n, errs)
		}
	})
}

// Space access tokens are listed by id (never the token), and a revoked one stops working at
// once while the others keep working.
func TestAccessTokensListAndRevoke(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, st store.Store) {
		ctx := context.Background()
		tn := workspacetest.New(t, svc, operatorToken)
		ws, sp := tn.ID(), tn.SpaceID()
		first, err := svc.CreateAccessToken(ctx, tn.Owner, ws, sp)
		if err != nil {
			t.Fatal(err)
		}
		second, err := svc.CreateAccessToken(ctx, tn.Owner, ws, sp)
		if err != nil {
			t.Fatal(err)
		}
		other, err := svc.CreateSpace(ctx, tn.Owner, ws, "Other")
		if err != nil {
			t.Fatal(err)
		}
		elsewhere, err := svc.CreateAccessToken(ctx, tn.Owner, ws, other.ID)
		if err != nil {
			t.Fatal(err)
		}
		list, err := svc.ListAccessTokens(ctx, tn.Owner, ws, sp)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != first.ID || list[1].ID != second.ID || list[0].CreatedAt.IsZero() || list[0].SpaceID != sp {
			t.Fatalf("list %+v, want %s then %s", list, first.ID, second.ID)
		}
		if shown := fmt.Sprintf("%#v", list); strings.Contains(shown, first.Token) || strings.Contains(shown, second.Token) {
			t.Errorf("the list holds a token: %s", shown)
		}

		if err := svc.RevokeAccessToken(ctx, tn.Owner, ws, sp, first.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Authenticate(ctx, first.Token); !errcode.Is(err, "unauthorized") {
			t.Errorf("the revoked token still authenticates: %v", err)
		}
		for _, tok := range []string{second.Token, elsewhere.Token} {
			if _, err := svc.Authenticate(ctx, tok); err != nil {
				t.Errorf("another token stopped working: %v", err)
			}
		}
		list, _ = svc.ListAccessTokens(ctx, tn.Owner, ws, sp)
		if len(list) != 1 || list[0].ID != second.ID {
			t.Errorf("list after revoking %+v", list)
		}

		for _, tc := range []struct{ name, sp, id string }{
			{"revoked twice", sp, first.ID},
			{"unknown id", sp, "at_nope"},
			{"id of another space", sp, elsewhere.ID},
			{"unknown space", "sp_nope", second.ID},
			{"over-long id", sp, strings.Repeat("x", 2000)},
		} {
			if err := svc.RevokeAccessToken(ctx, tn.Owner, ws, tc.sp, tc.id); !errcode.Is(err, "not_found") {
				t.Errorf("%s: %v, want not_found", tc.name, err)
			}
		}
		_, err = svc.ListAccessTokens(ctx, tn.Owner, ws, "sp_nope")
		wantCode(t, err, "not_found")
		assertNoTokenStored(t, st, ws, first.Token, second.Token, elsewhere.Token)
	})
}

// Two revocations of one token at once: one succeeds, the other finds nothing.
func TestRevokeAccessTokenConcurrently(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, _ store.Store) {
		ctx := context.Background()
		tn := workspacetest.New(t, svc, operatorToken)
		at, err := svc.CreateAccessToken(ctx, tn.Owner, tn.ID(), tn.SpaceID())
		if err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { errs[i] = svc.RevokeAccessToken(ctx, tn.Owner, tn.ID(), tn.SpaceID(), at.ID) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errcode.Is(err, "not_found"):
				t.Errorf("revoke: %v", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d revocations succeeded: %v", ok, errs)
		}
	})
}

// Only the workspace's own token may rotate, list or revoke; the operator may not either.
func TestTokenRoutesIsolation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, _ store.Store) {
		ctx := context.Background()
		a, b := workspacetest.New(t, svc, operatorToken), workspacetest.New(t, svc, operatorToken)
		at, err := svc.CreateAccessToken(ctx, a.Owner, a.ID(), a.SpaceID())
		if err != nil {
			t.Fatal(err)
		}
		space, _ := svc.Authenticate(ctx, at.Token)
		for name, p := range map[string]workspace.Principal{"another workspace": b.Owner, "the operator": operator, "a space token": space} {
			_, err := svc.RotateWorkspaceToken(ctx, p, a.ID())
			wantCode(t, err, "forbidden")
			_, err = svc.ListAccessTokens(ctx, p, a.ID(), a.SpaceID())
			wantCode(t, err, "forbidden")
			if err := svc.RevokeAccessToken(ctx, p, a.ID(), a.SpaceID(), at.ID); !errcode.Is(err, "forbidden") {
				t.Errorf("%s revoked: %v", name, err)
			}
		}
		// A principal not made by Authenticate has no token to rotate.
		ghost := workspace.Principal{Kind: workspace.WorkspaceOwner, WorkspaceID: a.ID()}
		_, err = svc.RotateWorkspaceToken(ctx, ghost, a.ID())
		wantCode(t, err, "forbidden")
		for _, tok := range []string{a.Token, at.Token} {
			if _, err := svc.Authenticate(ctx, tok); err != nil {
				t.Errorf("A's token stopped working: %v", err)
			}
		}
	})
}

// assertNoTokenStored checks that no item of ws's partition holds any of toks in clear:
// tokens are kept only as hashes.
func assertNoTokenStored(t *testing.T, st store.Store, ws string, toks ...string) {
	t.Helper()
	items, err := st.Query(context.Background(), "WS#"+ws, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		for _, tok := range toks {
			if bytes.Contains(it.Data, []byte(tok)) || strings.Contains(it.SK, tok) {
				t.Errorf("item %s holds a token in clear", it.Key)
			}
		}
	}
}
