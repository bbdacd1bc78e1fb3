package workspace_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
)

const operatorToken = "upo_test_operator"

var operator = workspace.Principal{Kind: workspace.Operator}

// forEachBackend runs fn against every store backend (bolt, minidyn, moto when started).
func forEachBackend(t *testing.T, fn func(t *testing.T, svc *workspace.Service, st store.Store)) {
	t.Helper()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			st := b.Open(t)
			fn(t, workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken)}), st)
		})
	}
}

func sid(n int) string { return fmt.Sprintf("AC%032x", n) }

// newWorkspace accepts an account and creates its workspace, returning the owner principal.
func newWorkspace(t *testing.T, svc *workspace.Service, n int) (workspace.Created, workspace.Principal) {
	t.Helper()
	ctx := context.Background()
	if _, err := svc.AcceptBeta(ctx, operator, sid(n)); err != nil {
		t.Fatalf("AcceptBeta: %v", err)
	}
	c, err := svc.CreateWorkspace(ctx, operator, fmt.Sprintf("Workspace %d", n), sid(n))
	if err != nil {
		t.Fatalf("CreateWorkspace: %v", err)
	}
	p, err := svc.Authenticate(ctx, c.Token)
	if err != nil {
		t.Fatalf("Authenticate workspace token: %v", err)
	}
	return c, p
}

func wantCode(t *testing.T, err error, code string) *errcode.Error {
	t.Helper()
	e := errcode.As(err)
	if e == nil || e.Code != code {
		t.Fatalf("want error %s, got %v", code, err)
	}
	return e
}

func TestCreateWorkspaceMakesSpaceAndProtectedSources(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, _ store.Store) {
		ctx := context.Background()
		c, p := newWorkspace(t, svc, 1)
		if len(c.Spaces) != 1 || len(c.Sources) != 2 {
			t.Fatalf("created %d spaces, %d sources", len(c.Spaces), len(c.Sources))
		}
		flex, personas := c.Sources[0], c.Sources[1]
		if flex.Name != "flex-unify-server-source" || flex.Type != "java" || !flex.AutoCreated {
			t.Errorf("flex source: %+v", flex)
		}
		if personas.Name != "Personas Workspace 1" || personas.Type != "personas" || !personas.AutoCreated {
			t.Errorf("personas source: %+v", personas)
		}
		if flex.WriteKey == "" || flex.WriteKey == personas.WriteKey {
			t.Errorf("write keys %q %q", flex.WriteKey, personas.WriteKey)
		}
		v, err := svc.GetWorkspace(ctx, p, c.Workspace.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := workspace.Usage{
			"sources": {Used: 0, Limit: 4}, "destinations": {Limit: 3}, "spaces": {Used: 1, Limit: 2},
			"computed_traits": {Limit: 2}, "predictions": {Limit: 2},
		}
		if fmt.Sprint(v.Usage) != fmt.Sprint(want) {
			t.Errorf("usage %v, want %v", v.Usage, want)
		}
		// Auto-created sources can be neither edited nor deleted, and stay as they were.
		name := "renamed"
		for _, src := range c.Sources {
			_, err := svc.UpdateSource(ctx, p, c.Workspace.ID, src.ID, workspace.SourceChange{Name: &name})
			wantCode(t, err, "protected_source")
			wantCode(t, svc.DeleteSource(ctx, p, c.Workspace.ID, src.ID), "protected_source")
			got, err := svc.GetSource(ctx, p, c.Workspace.ID, src.ID)
			if err != nil || got.Name != src.Name || got.WriteKey != src.WriteKey {
				t.Errorf("protected source changed: %+v (%v)", got, err)
			}
		}
	})
}

func TestEntitlements(t *testing.T) {
	t.Parallel()
	// With a Sealer: a storage destination always carries its secret access key, sealed.
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		svc := f.svc
		ctx := context.Background()
		c, p := newWorkspace(t, svc, 2)
		ws := c.Workspace.ID
		var created []workspace.Source
		for i, typ := range []string{"javascript", "swift", "postgres", "salesforce"} {
			src, err := svc.CreateSource(ctx, p, ws, workspace.NewSource{Name: fmt.Sprintf("S%d", i), Type: typ})
			if err != nil {
				t.Fatalf("source %d: %v", i, err)
			}
			created = append(created, src)
		}
		_, err := svc.CreateSource(ctx, p, ws, workspace.NewSource{Name: "fifth", Type: "http"})
		e := wantCode(t, err, "entitlement_exceeded")
		if e.Kind != errcode.Forbidden || !strings.Contains(e.Message, "limit is 4") || !strings.Contains(e.Message, "4 are in use") {
			t.Errorf("entitlement message should name the limit and the usage: %q", e.Message)
		}
		_, err = svc.CreateSource(ctx, p, ws, workspace.NewSource{Name: "odd", Type: "mainframe"})
		if e := wantCode(t, err, "invalid_field"); e.Field != "type" {
			t.Errorf("field %q, want type", e.Field)
		}
		// Deleting frees the slot.
		if err := svc.DeleteSource(ctx, p, ws, created[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.CreateSource(ctx, p, ws, workspace.NewSource{Name: "again", Type: "kotlin"}); err != nil {
			t.Fatalf("after delete: %v", err)
		}
		srcs, _ := svc.ListSources(ctx, p, ws)
		if len(srcs) != 6 {
			t.Errorf("%d sources, want 2 auto + 4", len(srcs))
		}

		var dests []workspace.Destination
		settings := map[string]map[string]any{"storage": {"bucket": "lake", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"},
			"analytics":        {"url": "https://hooks.example.com/in"},
			"segment_profiles": {"space_id": c.Spaces[0].ID}}
		for i, cat := range []string{"storage", "analytics", "segment_profiles"} {
			d, err := svc.CreateDestination(ctx, p, ws, workspace.NewDestination{Name: fmt.Sprintf("D%d", i), Category: cat, Settings: settings[cat]})
			if err != nil {
				t.Fatalf("destination %d: %v", i, err)
			}
			dests = append(dests, d)
		}
		_, err = svc.CreateDestination(ctx, p, ws, workspace.NewDestination{Name: "D4", Category: "event_streams", Settings: settings["analytics"]})
		if e := wantCode(t, err, "entitlement_exceeded"); !strings.Contains(e.Message, "limit is 3") {
			t.Errorf("message %q", e.Message)
		}
		_, err = svc.CreateDestination(ctx, p, ws, workspace.NewDestination{Name: "D", Category: "warehouse"})
		wantCode(t, err, "invalid_field")
		if err := svc.DeleteDestination(ctx, p, ws, dests[1].ID); err != nil {
			t.Fatal(err)
		}
		wantCode(t, svc.DeleteDestination(ctx, p, ws, dests[1].ID), "not_found")
		if _, err := svc.CreateDestination(ctx, p, ws, workspace.NewDestination{Name: "D5", Category: "event_streams", Settings: settings["analytics"]}); err != nil {
			t.Fatalf("after delete: %v", err)
		}

		if _, err := svc.CreateSpace(ctx, p, ws, "Second"); err != nil {
			t.Fatal(err)
		}
		_, err = svc.CreateSpace(ctx, p, ws, "Third")
		if e := wantCode(t, err, "entitlement_exceeded"); !strings.Contains(e.Message, "limit is 2") {
			t.Errorf("message %q", e.Message)
		}
		v, err := svc.GetWorkspace(ctx, p, ws)
		if err != nil {
			t.Fatal(err)
		}
		if v.Usage["sources"].Used != 4 || v.Usage["destinations"].Used != 3 || v.Usage["spaces"].Used != 2 {
			t.Errorf("usage %v", v.Usage)
		}
	})
}

// Twenty concurrent creates on a fresh workspace: exactly four are created.
func TestConcurrentCreateSource(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, _ store.Store) {
		ctx := context.Background()
		c, p := newWorkspace(t, svc, 3)
		// A website choice makes the first create also flip the lock: the hardest case.
		if _, err := svc.ChooseDataSource(ctx, p, c.Workspace.ID, "website"); err != nil {
			t.Fatal(err)
		}
		const n = 20
		var wg sync.WaitGroup
		results := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := svc.CreateSource(ctx, p, c.Workspace.ID, workspace.NewSource{Name: fmt.Sprintf("site %d", i), Type: "javascript"})
				results <- err
			}()
		}
		wg.Wait()
		close(results)
		ok, refused := 0, 0
		for err := range results {
			switch {
			case err == nil:
				ok++
			case errcode.Is(err, "entitlement_exceeded"):
				refused++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 4 || refused != 16 {
			t.Fatalf("%d created, %d refused; want 4 and 16", ok, refused)
		}
		srcs, err := svc.ListSources(ctx, p, c.Workspace.ID)
		if err != nil || len(srcs) != 6 {
			t.Fatalf("%d sources (%v), want 6", len(srcs), err)
		}
		v, _ := svc.GetWorkspace(ctx, p, c.Workspace.ID)
		if v.Usage["sources"].Used != 4 || !v.Workspace.Setup.Locked {
			t.Fatalf("usage %v locked %v", v.Usage["sources"], v.Workspace.Setup.Locked)
		}
	})
}

func TestDataSourceLock(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, _ store.Store) {
		ctx := context.Background()
		web, pw := newWorkspace(t, svc, 4)
		if _, err := svc.ChooseDataSource(ctx, pw, web.Workspace.ID, "website"); err != nil {
			t.Fatal(err)
		}
		// Before any action in step 2 the choice may still change.
		if _, err := svc.ChooseDataSource(ctx, pw, web.Workspace.ID, "mobile"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ChooseDataSource(ctx, pw, web.Workspace.ID, "website"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.CreateSource(ctx, pw, web.Workspace.ID, workspace.NewSource{Name: "Site", Type: "javascript", URL: "https://acme.example"}); err != nil {
			t.Fatal(err)
		}
		_, err := svc.ChooseDataSource(ctx, pw, web.Workspace.ID, "csv")
		wantCode(t, err, "data_source_locked")
		v, err := svc.ChooseDataSource(ctx, pw, web.Workspace.ID, "website") // the same choice is fine
		if err != nil || v.Workspace.Setup.DataSource != "website" || !v.Workspace.Setup.Locked {
			t.Fatalf("re-choosing the locked choice: %+v %v", v.Workspace.Setup, err)
		}
		if v.Steps["select_data_source"] != "complete" || v.Steps["add_connections"] != "in_progress" {
			t.Errorf("steps %v", v.Steps)
		}

		csv, pc := newWorkspace(t, svc, 5)
		if _, err := svc.ChooseDataSource(ctx, pc, csv.Workspace.ID, "csv"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.CreateSource(ctx, pc, csv.Workspace.ID, workspace.NewSource{Name: "Site", Type: "javascript"}); err != nil {
			t.Fatal(err)
		}
		v, err = svc.ChooseDataSource(ctx, pc, csv.Workspace.ID, "warehouse")
		if err != nil || v.Workspace.Setup.DataSource != "warehouse" {
			t.Fatalf("csv workspace could not change its choice: %v", err)
		}
		_, err = svc.ChooseDataSource(ctx, pc, csv.Workspace.ID, "ftp")
		if e := wantCode(t, err, "invalid_field"); e.Field != "kind" {
			t.Errorf("field %q", e.Field)
		}
	})
}

func TestBetaPrerequisite(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, _ store.Store) {
		ctx := context.Background()
		_, err := svc.CreateWorkspace(ctx, operator, "Nope", sid(10))
		wantCode(t, err, "not_in_beta")

		acc, err := svc.AcceptBeta(ctx, operator, sid(11))
		if err != nil || !acc.New {
			t.Fatalf("accept: %+v %v", acc, err)
		}
		// Re-accepting re-issues the invite and revokes the old one.
		again, err := svc.AcceptBeta(ctx, operator, sid(11))
		if err != nil || again.New || again.InviteToken == acc.InviteToken {
			t.Fatalf("re-accept: %+v %v", again, err)
		}
		_, err = svc.Authenticate(ctx, acc.InviteToken)
		wantCode(t, err, "unauthorized")
		invite, err := svc.Authenticate(ctx, again.InviteToken)
		if err != nil || invite.Kind != workspace.Invite {
			t.Fatalf("invite principal %+v %v", invite, err)
		}
		// An invite only works for its own account.
		if _, err := svc.AcceptBeta(ctx, operator, sid(12)); err != nil {
			t.Fatal(err)
		}
		_, err = svc.CreateWorkspace(ctx, invite, "Other", sid(12))
		wantCode(t, err, "forbidden")
		// Nobody but the operator accepts accounts.
		_, err = svc.AcceptBeta(ctx, invite, sid(13))
		wantCode(t, err, "forbidden")

		// Concurrent creations with one invite: exactly one workspace.
		var wg sync.WaitGroup
		results := make(chan error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := svc.CreateWorkspace(ctx, invite, fmt.Sprintf("Acme %d", i), sid(11))
				results <- err
			}()
		}
		wg.Wait()
		close(results)
		created := 0
		for err := range results {
			if err == nil {
				created++
			} else if !errcode.Is(err, "workspace_exists") && !errcode.Is(err, "unauthorized") {
				t.Errorf("unexpected: %v", err)
			}
		}
		if created != 1 {
			t.Fatalf("%d workspaces created for one account", created)
		}
		// The invite is spent, and the operator cannot make a second workspace either.
		_, err = svc.Authenticate(ctx, again.InviteToken)
		wantCode(t, err, "unauthorized")
		_, err = svc.CreateWorkspace(ctx, operator, "Second", sid(11))
		if e := wantCode(t, err, "workspace_exists"); e.Kind != errcode.Conflict {
			t.Errorf("kind %v", e.Kind)
		}
		_, err = svc.AcceptBeta(ctx, operator, sid(11))
		wantCode(t, err, "workspace_exists")
	})
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, _ store.Store) {
		ctx := context.Background()
		a, pa := newWorkspace(t, svc, 20)
		b, _ := newWorkspace(t, svc, 21)
		bws, bsrc := b.Workspace.ID, b.Sources[0].ID
		name := "x"
		calls := map[string]error{}
		_, calls["GetWorkspace"] = svc.GetWorkspace(ctx, pa, bws)
		_, calls["ChooseDataSource"] = svc.ChooseDataSource(ctx, pa, bws, "csv")
		_, calls["ListSpaces"] = svc.ListSpaces(ctx, pa, bws)
		_, calls["CreateSpace"] = svc.CreateSpace(ctx, pa, bws, "s")
		_, calls["CreateAccessToken"] = svc.CreateAccessToken(ctx, pa, bws, b.Spaces[0].ID)
		_, calls["ListSources"] = svc.ListSources(ctx, pa, bws)
		_, calls["CreateSource"] = svc.CreateSource(ctx, pa, bws, workspace.NewSource{Name: "s", Type: "http"})
		_, calls["GetSource"] = svc.GetSource(ctx, pa, bws, bsrc)
		_, calls["UpdateSource"] = svc.UpdateSource(ctx, pa, bws, bsrc, workspace.SourceChange{Name: &name})
		calls["DeleteSource"] = svc.DeleteSource(ctx, pa, bws, bsrc)
		_, calls["SourceSnippet"] = svc.SourceSnippet(ctx, pa, bws, bsrc, "http://x")
		_, calls["ListDestinations"] = svc.ListDestinations(ctx, pa, bws)
		_, calls["CreateDestination"] = svc.CreateDestination(ctx, pa, bws, workspace.NewDestination{Name: "d", Category: "storage"})
		for name, err := range calls {
			if e := errcode.As(err); e == nil || e.Code != "forbidden" {
				t.Errorf("%s on another workspace: %v, want forbidden", name, err)
			}
		}
		// Resources of B addressed through A's own workspace path are simply not there.
		_, err := svc.GetSource(ctx, pa, a.Workspace.ID, bsrc)
		wantCode(t, err, "not_found")
		_, err = svc.CreateAccessToken(ctx, pa, a.Workspace.ID, b.Spaces[0].ID)
		wantCode(t, err, "not_found")
		_, err = svc.CreateSource(ctx, pa, a.Workspace.ID, workspace.NewSource{Name: "s", Type: "http", SpaceID: b.Spaces[0].ID})
		if e := wantCode(t, err, "invalid_field"); e.Field != "space_id" {
			t.Errorf("field %q", e.Field)
		}
	})
}

func TestValidation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *workspace.Service, st store.Store) {
		ctx := context.Background()
		c, p := newWorkspace(t, svc, 30)
		ws := c.Workspace.ID
		long := strings.Repeat("é", 101)
		tests := []struct {
			name  string
			call  func() error
			field string
		}{
			{"empty name", func() error { _, err := svc.CreateSource(ctx, p, ws, workspace.NewSource{Type: "http"}); return err }, "name"},
			{"long name", func() error {
				_, err := svc.CreateSource(ctx, p, ws, workspace.NewSource{Name: long, Type: "http"})
				return err
			}, "name"},
			{"padded name", func() error { _, err := svc.CreateSpace(ctx, p, ws, " x"); return err }, "name"},
			{"control char", func() error { _, err := svc.CreateSpace(ctx, p, ws, "a\x00b"); return err }, "name"},
			{"missing type", func() error { _, err := svc.CreateSource(ctx, p, ws, workspace.NewSource{Name: "x"}); return err }, "type"},
			{"bad url", func() error {
				_, err := svc.CreateSource(ctx, p, ws, workspace.NewSource{Name: "x", Type: "javascript", URL: "ftp://x"})
				return err
			}, "url"},
			{"url on non-website", func() error {
				_, err := svc.CreateSource(ctx, p, ws, workspace.NewSource{Name: "x", Type: "http", URL: "https://x"})
				return err
			}, "url"},
			{"nested settings", func() error {
				_, err := svc.CreateDestination(ctx, p, ws, workspace.NewDestination{Name: "d", Category: "storage", Settings: map[string]any{"a": map[string]any{}}})
				return err
			}, "settings.a"},
			{"bad sid", func() error { _, err := svc.AcceptBeta(ctx, operator, "AC123"); return err }, "account_sid"},
			{"long workspace name", func() error { _, err := svc.CreateWorkspace(ctx, operator, long, sid(31)); return err }, "name"},
		}
		for _, tc := range tests {
			e := errcode.As(tc.call())
			if e == nil || e.Kind != errcode.Invalid || e.Field != tc.field {
				t.Errorf("%s: got %v, want invalid field %s", tc.name, e, tc.field)
			}
		}
		// Nothing was written: usage is as created and no extra items exist.
		v, _ := svc.GetWorkspace(ctx, p, ws)
		if v.Usage["sources"].Used != 0 || v.Usage["destinations"].Used != 0 || v.Usage["spaces"].Used != 1 {
			t.Errorf("usage after refused requests: %v", v.Usage)
		}
		items, err := st.Query(ctx, "WS#"+ws, store.Page{})
		if err != nil || len(items) != 5 { // workspace, space, 2 sources, spaces counter
			t.Errorf("%d items in the workspace partition (%v), want 5", len(items), err)
		}
	})
}

func TestClockIsInjected(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, b := range storetest.Backends(t)[:1] {
		svc := workspace.New(b.Open(t), workspace.Options{OperatorTokenHash: token.Hash(operatorToken), Now: func() time.Time { return at }})
		acc, err := svc.AcceptBeta(context.Background(), operator, sid(40))
		if err != nil || !acc.Account.AcceptedAt.Equal(at) {
			t.Fatalf("accepted at %v (%v)", acc.Account.AcceptedAt, err)
		}
	}
}
