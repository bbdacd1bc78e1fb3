package workspace_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// The status rule of step 3, on the setup state alone.
func TestIdentifiersAndTraitsStatus(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name  string
		setup workspace.Setup
		want  string
	}{
		{"nothing saved", workspace.Setup{}, workspace.StatusNotStarted},
		{"identifiers saved", workspace.Setup{Saved: map[string]time.Time{workspace.SavedIdentifiers: at}}, workspace.StatusInProgress},
		{"traits saved first", workspace.Setup{Saved: map[string]time.Time{workspace.SavedTraits: at}}, workspace.StatusInProgress},
		{"both saved", workspace.Setup{Saved: map[string]time.Time{workspace.SavedIdentifiers: at, workspace.SavedTraits: at}}, workspace.StatusComplete},
		// A feature that completes the step outright (Completed) still wins.
		{"completed outright", workspace.Setup{Completed: map[string]time.Time{workspace.StepIdentifiersAndTraits: at}}, workspace.StatusComplete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.setup.StepStatuses(nil)[workspace.StepIdentifiersAndTraits]; got != tc.want {
				t.Fatalf("status %s, want %s", got, tc.want)
			}
		})
	}
}

func TestMarkSaved(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, _ store.Store) {
		ctx := context.Background()
		c, p := newWorkspace(t, svc, 30)
		_, other := newWorkspace(t, svc, 31)
		ws := c.Workspace.ID
		status := func() string {
			t.Helper()
			v, err := svc.GetWorkspace(ctx, p, ws)
			if err != nil {
				t.Fatal(err)
			}
			return v.Steps[workspace.StepIdentifiersAndTraits]
		}
		if got := status(); got != workspace.StatusNotStarted {
			t.Fatalf("fresh workspace: %s", got)
		}

		if err := svc.MarkSaved(ctx, p, ws, workspace.SavedIdentifiers); err != nil {
			t.Fatal(err)
		}
		if got := status(); got != workspace.StatusInProgress {
			t.Fatalf("after identifiers: %s", got)
		}
		v, _ := svc.GetWorkspace(ctx, p, ws)
		first := v.Workspace.Setup.Saved[workspace.SavedIdentifiers]
		// Saving again keeps the first time and changes nothing else.
		if err := svc.MarkSaved(ctx, p, ws, workspace.SavedIdentifiers); err != nil {
			t.Fatal(err)
		}
		v, _ = svc.GetWorkspace(ctx, p, ws)
		if again := v.Workspace.Setup.Saved[workspace.SavedIdentifiers]; !again.Equal(first) || first.IsZero() {
			t.Fatalf("saved at %v, then %v", first, again)
		}

		if err := svc.MarkSaved(ctx, p, ws, workspace.SavedTraits); err != nil {
			t.Fatal(err)
		}
		if got := status(); got != workspace.StatusComplete {
			t.Fatalf("after traits: %s", got)
		}

		wantCode(t, svc.MarkSaved(ctx, p, ws, "predictions"), "invalid_field")
		wantCode(t, svc.MarkSaved(ctx, p, ws, ""), "invalid_field")
		// Another workspace's token, and the operator's, may not mark this one.
		wantCode(t, svc.MarkSaved(ctx, other, ws, workspace.SavedTraits), "forbidden")
		wantCode(t, svc.MarkSaved(ctx, operator, ws, workspace.SavedTraits), "forbidden")
	})
}

// MarkSaved races the step-1 choice on the same workspace item: the version check makes the
// loser re-read, so every write survives.
func TestMarkSavedConcurrentWithSetupWrites(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, _ store.Store) {
		ctx := context.Background()
		c, p := newWorkspace(t, svc, 32)
		ws := c.Workspace.ID
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for _, f := range []func() error{
			func() error { return svc.MarkSaved(ctx, p, ws, workspace.SavedIdentifiers) },
			func() error { return svc.MarkSaved(ctx, p, ws, workspace.SavedTraits) },
			func() error { _, err := svc.ChooseDataSource(ctx, p, ws, workspace.DataSourceCSV); return err },
		} {
			wg.Go(func() { errs <- f() })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		v, err := svc.GetWorkspace(ctx, p, ws)
		if err != nil {
			t.Fatal(err)
		}
		if v.Workspace.Setup.DataSource != workspace.DataSourceCSV || len(v.Workspace.Setup.Saved) != 2 ||
			v.Steps[workspace.StepIdentifiersAndTraits] != workspace.StatusComplete {
			t.Fatalf("a concurrent write was lost: %+v, steps %v", v.Workspace.Setup, v.Steps)
		}
	})
}
