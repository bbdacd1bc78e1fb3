package workspace_test

import (
	"context"
	"testing"

	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Me answers for a workspace token only; every other kind of principal names no workspace.
func TestMe(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, _ store.Store) {
		ctx := context.Background()
		c, p := newWorkspace(t, svc, 40)
		at, err := svc.CreateAccessToken(ctx, p, c.Workspace.ID, c.Spaces[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		space, err := svc.Authenticate(ctx, at.Token)
		if err != nil {
			t.Fatal(err)
		}
		ws, err := svc.Me(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if ws.ID != c.Workspace.ID || ws.Name != "Workspace 40" {
			t.Fatalf("Me: %+v, want %s", ws, c.Workspace.ID)
		}
		for name, q := range map[string]workspace.Principal{
			"operator":     operator,
			"space access": space,
			"zero":         {},
			"invite":       {Kind: workspace.Invite, AccountSID: sid(40)},
		} {
			t.Run(name, func(t *testing.T) {
				_, err := svc.Me(ctx, q)
				wantCode(t, err, "forbidden")
			})
		}
		// A workspace token of a workspace that is not there (never for a real token).
		_, err = svc.Me(ctx, workspace.Principal{Kind: workspace.WorkspaceOwner, WorkspaceID: "ws_gone"})
		wantCode(t, err, "not_found")
	})
}

// MarkChecked completes step 4 once, for the workspace's own token only, and nothing but
// it does.
func TestMarkChecked(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, _ store.Store) {
		ctx := context.Background()
		c, p := newWorkspace(t, svc, 41)
		_, other := newWorkspace(t, svc, 42)
		ws := c.Workspace.ID
		view := func() workspace.View {
			t.Helper()
			v, err := svc.GetWorkspace(ctx, p, ws)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		if got := view().Steps[workspace.StepCheckConfiguration]; got != workspace.StatusNotStarted {
			t.Fatalf("fresh workspace: step 4 %s", got)
		}
		wantCode(t, svc.MarkChecked(ctx, other, ws), "forbidden")
		wantCode(t, svc.MarkChecked(ctx, operator, ws), "forbidden")
		if got := view().Steps[workspace.StepCheckConfiguration]; got != workspace.StatusNotStarted {
			t.Fatalf("after refused marks: step 4 %s", got)
		}
		if err := svc.MarkChecked(ctx, p, ws); err != nil {
			t.Fatal(err)
		}
		v := view()
		first := v.Workspace.Setup.Completed[workspace.StepCheckConfiguration]
		if v.Steps[workspace.StepCheckConfiguration] != workspace.StatusComplete || first.IsZero() {
			t.Fatalf("after the check: step 4 %s at %v", v.Steps[workspace.StepCheckConfiguration], first)
		}
		// Again: the first time stays; the other steps are untouched.
		if err := svc.MarkChecked(ctx, p, ws); err != nil {
			t.Fatal(err)
		}
		v = view()
		if again := v.Workspace.Setup.Completed[workspace.StepCheckConfiguration]; !again.Equal(first) {
			t.Fatalf("completed at %v, then %v", first, again)
		}
		if v.Steps[workspace.StepSelectDataSource] != workspace.StatusNotStarted || v.Steps[workspace.StepAddConnections] != workspace.StatusNotStarted {
			t.Fatalf("other steps changed: %v", v.Steps)
		}
	})
}
