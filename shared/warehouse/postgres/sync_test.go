package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/unifiedprofiles/up/infra/pgtest"
	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/secrets/localkey"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/postgres"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

const operator = "op-token-for-tests"

// env is a workspace with a postgres source connected to a throwaway cluster, and the sync
// queue as a list the test drains by hand.
type env struct {
	t        *testing.T
	ctx      context.Context
	pg       *pgtest.Cluster
	admin    *pgx.Conn
	clock    *testclock.Clock
	svc      *warehouse.Service
	profiles *profile.Service
	ws       *workspace.Service
	tn       workspacetest.Tenant
	src      workspace.Source
	mu       sync.Mutex
	queue    []warehouse.Task
	crash    func(syncID string, page int) error
}

func (e *env) Send(_ context.Context, t warehouse.Task) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.queue = append(e.queue, t)
	return nil
}

// drain works every queued task, as the worker would, and returns the first error.
func (e *env) drain() error {
	for {
		e.mu.Lock()
		if len(e.queue) == 0 {
			e.mu.Unlock()
			return nil
		}
		t := e.queue[0]
		e.queue = e.queue[1:]
		e.mu.Unlock()
		if err := e.svc.Work(e.ctx, t); err != nil {
			return err
		}
	}
}

func newEnv(t *testing.T, pageSize int) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	pg := pgtest.Start(t)
	admin, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	// The role a user would give us: it logs in with a password, reads the model's tables and
	// may create our schema.
	e := &env{t: t, ctx: ctx, pg: pg, admin: admin, clock: testclock.New(time.Now().UTC().Truncate(time.Second))}
	e.sql("CREATE ROLE retl LOGIN PASSWORD 'right-password'", "GRANT CREATE ON DATABASE postgres TO retl",
		"CREATE TABLE contacts (id integer, email text, name text, plan text, updated_at timestamptz DEFAULT now())",
		"GRANT SELECT ON contacts TO retl")
	st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"), bolt.WithClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := make([]byte, 32)
	sealer, err := localkey.New(key)
	if err != nil {
		t.Fatal(err)
	}
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operator), Now: e.clock.Now, Secrets: sealer})
	e.profiles = profile.New(st, profile.Options{Now: e.clock.Now})
	e.ws = ws
	e.tn = workspacetest.New(t, ws, operator)
	e.src = e.tn.Source(t, "postgres")
	e.svc = warehouse.New(st, ws, e.profiles, sealer, map[string]warehouse.Opener{"postgres": postgres.Open}, e,
		warehouse.Options{Now: e.clock.Now, PageSize: pageSize, Lease: time.Minute,
			AfterPage: func(id string, page int) error {
				if e.crash != nil {
					return e.crash(id, page)
				}
				return nil
			}})
	return e
}

func (e *env) sql(stmts ...string) {
	e.t.Helper()
	for _, s := range stmts {
		if _, err := e.admin.Exec(e.ctx, s); err != nil {
			e.t.Fatalf("%s: %v", s, err)
		}
	}
}

func (e *env) creds(password string) warehouse.Credentials {
	return warehouse.Credentials{Host: e.pg.Socket, Port: 5432, Database: "postgres", User: "retl", Password: password, SSLMode: "disable"}
}

func (e *env) connect() {
	e.t.Helper()
	c, err := e.svc.SetConnection(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, e.creds("right-password"))
	if err != nil {
		e.t.Fatal(err)
	}
	if c.LastTest == nil || !c.LastTest.OK {
		e.t.Fatalf("connection test: %+v", c.LastTest)
	}
}

func (e *env) model(sql string) warehouse.Model {
	e.t.Helper()
	name, id := "Contacts", "id"
	m, err := e.svc.CreateModel(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, warehouse.NewModel{Name: &name, SQL: &sql, IDColumn: &id})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) mapping(m warehouse.Model, sc warehouse.Schedule) warehouse.Mapping {
	e.t.Helper()
	all := warehouse.RecordsAll
	mp, err := e.svc.CreateMapping(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, m.ID, warehouse.NewMapping{
		Records:     &all,
		Identifiers: map[string]string{"user_id": "id", "email": "email"},
		Traits:      map[string]string{"name": "name", "plan": "plan"},
		Schedule:    &sc,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return mp
}

// syncNow starts a sync, works it to the end and returns it.
func (e *env) syncNow(mp warehouse.Mapping) warehouse.Sync {
	e.t.Helper()
	sy, err := e.svc.SyncNow(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, mp.ModelID, mp.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.drain(); err != nil {
		e.t.Fatal(err)
	}
	return e.sync(mp, sy.ID)
}

func (e *env) sync(mp warehouse.Mapping, id string) warehouse.Sync {
	e.t.Helper()
	sy, err := e.svc.GetSync(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, mp.ModelID, mp.ID, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return sy
}

func (e *env) traits(userID string) map[string]any {
	e.t.Helper()
	p, err := e.profiles.Lookup(e.ctx, e.tn.SpaceID(), identity.Identifier{Type: "user_id", Value: userID})
	if err != nil {
		e.t.Fatalf("profile of user %s: %v", userID, err)
	}
	out := map[string]any{}
	for k, tr := range p.Traits {
		out[k] = tr.Value
	}
	return out
}

func (e *env) events(userID string) int {
	e.t.Helper()
	p, err := e.profiles.Lookup(e.ctx, e.tn.SpaceID(), identity.Identifier{Type: "user_id", Value: userID})
	if err != nil {
		e.t.Fatalf("profile of user %s: %v", userID, err)
	}
	evs, err := e.profiles.Events(e.ctx, e.tn.SpaceID(), p, time.Time{}, e.clock.Now().Add(time.Hour))
	if err != nil {
		e.t.Fatal(err)
	}
	return len(evs)
}

func seed(e *env, from, to int) {
	e.t.Helper()
	e.sql(fmt.Sprintf("INSERT INTO contacts (id, email, name, plan) SELECT i, 'user' || i || '@example.com', 'Name ' || i, 'free' FROM generate_series(%d, %d) i", from, to))
}

// The first sync sends every record; an update of some rows, a delete and an insert then
// move exactly those; a sync with no change moves nothing.
func TestSyncMovesOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1000)
	seed(e, 1, 2500)
	e.connect()
	mp := e.mapping(e.model("SELECT id, email, name, plan FROM contacts"), warehouse.Schedule{Interval: "1h"})
	if mp.Running == "" {
		t.Fatalf("an interval schedule starts its first sync at once: %+v", mp)
	}
	connected := func() bool {
		src, err := e.ws.GetSource(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID)
		if err != nil {
			t.Fatal(err)
		}
		return src.ConnectedAt != nil
	}
	if connected() {
		t.Fatal("the step-2 tile is complete before a sync succeeded")
	}
	if err := e.drain(); err != nil {
		t.Fatal(err)
	}
	first := e.sync(mp, mp.Running)
	want := warehouse.Sync{Trigger: "first", Status: "succeeded", Extracted: warehouse.Extracted{Added: 2500}, Loaded: warehouse.Loaded{Succeeded: 2500}, Pages: 3, PagesDone: 3}
	check(t, "first sync", first, want)
	if !connected() {
		t.Error("the first successful sync did not complete the step-2 tile")
	}
	if got, _ := e.svc.GetMapping(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, mp.ModelID, mp.ID); got.LastSync == nil || got.LastSync.ID != first.ID ||
		got.NextSyncAt == nil || !got.NextSyncAt.Equal(first.StartedAt.Add(time.Hour)) {
		t.Errorf("mapping after its first sync: last %+v, next %v (want an hour after the start)", got.LastSync, got.NextSyncAt)
	}
	if got := e.traits("1234"); got["name"] != "Name 1234" || got["email"] != "user1234@example.com" {
		t.Fatalf("profile 1234 traits: %v", got)
	}

	e.sql("UPDATE contacts SET plan = 'pro' WHERE id <= 10", "DELETE FROM contacts WHERE id BETWEEN 2001 AND 2005")
	seed(e, 3001, 3003)
	second := e.syncNow(mp)
	check(t, "second sync", second, warehouse.Sync{Trigger: "manual", Status: "succeeded",
		Extracted: warehouse.Extracted{Added: 3, Updated: 10, Deleted: 5}, Loaded: warehouse.Loaded{Succeeded: 18}, Pages: 1, PagesDone: 1})
	if got := e.traits("7"); got["plan"] != "pro" {
		t.Errorf("updated record: plan = %v", got["plan"])
	}
	if got := e.traits("2003"); got["plan"] != nil || got["name"] != nil {
		t.Errorf("deleted record: traits %v, want name and plan null", got)
	}
	if got := e.traits("3002"); got["name"] != "Name 3002" {
		t.Errorf("inserted record: %v", got)
	}
	third := e.syncNow(mp)
	check(t, "sync without change", third, warehouse.Sync{Trigger: "manual", Status: "succeeded"})
	// The schedule: an hour after the last sync started the dispatcher starts the next; a paused
	// mapping is left alone until resumed.
	e.clock.Add(61 * time.Minute)
	if err := e.svc.Dispatch(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.drain(); err != nil {
		t.Fatal(err)
	}
	latest := func() warehouse.Sync {
		syncs, err := e.svc.ListSyncs(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, mp.ModelID, mp.ID)
		if err != nil {
			t.Fatal(err)
		}
		return syncs[0]
	}
	check(t, "scheduled sync", latest(), warehouse.Sync{Trigger: "schedule", Status: "succeeded"})
	off := false
	if _, err := e.svc.UpdateMapping(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, mp.ModelID, mp.ID, warehouse.NewMapping{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(3 * time.Hour)
	if err := e.svc.Dispatch(e.ctx); err != nil || len(e.queue) != 0 {
		t.Fatalf("a paused mapping was dispatched: %v, %d tasks", err, len(e.queue))
	}
	on := true
	if _, err := e.svc.UpdateMapping(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, mp.ModelID, mp.ID, warehouse.NewMapping{Enabled: &on}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Dispatch(e.ctx); err != nil || len(e.queue) != 1 {
		t.Fatalf("a resumed mapping past its time is dispatched: %v, %d tasks", err, len(e.queue))
	}
	if err := e.drain(); err != nil {
		t.Fatal(err)
	}
	// Nothing per record is kept on our side: the diff tables are gone, the state is in the warehouse.
	var work int
	if err := e.admin.QueryRow(e.ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = '__unify_retl' AND tablename NOT LIKE 'state_%'").Scan(&work); err != nil || work != 0 {
		t.Errorf("work tables left: %d %v", work, err)
	}
}

func check(t *testing.T, what string, got, want warehouse.Sync) {
	t.Helper()
	if got.Trigger != want.Trigger || got.Status != want.Status || got.Extracted != want.Extracted || got.Loaded != want.Loaded ||
		got.Pages != want.Pages || got.PagesDone != want.PagesDone || got.FinishedAt == nil {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// A duplicate id fails the sync, naming the id; nothing is sent.
func TestDuplicateIDFailsTheSync(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1000)
	seed(e, 1, 50)
	e.sql("INSERT INTO contacts (id, email, name, plan) VALUES (17, 'other@example.com', 'Other', 'free')")
	e.connect()
	mp := e.mapping(e.model("SELECT id, email, name, plan FROM contacts"), warehouse.Schedule{Manual: true})
	sy := e.syncNow(mp)
	if sy.Status != "failed" || !strings.Contains(sy.Failure, `duplicate id "17"`) || len(sy.Errors) != 1 || sy.Errors[0].RecordID != "17" {
		t.Fatalf("sync: %+v", sy)
	}
	if _, err := e.profiles.Lookup(e.ctx, e.tn.SpaceID(), identity.Identifier{Type: "user_id", Value: "1"}); err == nil {
		t.Error("a record was sent by a sync that failed its id check")
	}
	// A NULL id fails the sync too, saying how many records have none.
	e.sql("DELETE FROM contacts WHERE id = 17 AND name = 'Other'", "INSERT INTO contacts (id, email, name, plan) VALUES (NULL, 'x@example.com', 'X', 'free'), (NULL, 'y@example.com', 'Y', 'free')")
	sy = e.syncNow(mp)
	if sy.Status != "failed" || !strings.Contains(sy.Failure, "2 records have no id (NULL)") {
		t.Fatalf("NULL ids: %+v", sy)
	}
}

// A record that fails is tried again on the next syncs, and left after 5 tries until it changes.
func TestFailingRecordStopsAfterFiveTries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1000)
	seed(e, 1, 3)
	e.sql("INSERT INTO contacts (id, email, name, plan) VALUES (NULL, NULL, 'Nobody', 'free')")
	e.connect()
	// id is not an identifier here: the record with no email has none.
	sql, name, idc := "SELECT coalesce(id, 0) AS rid, email, name, plan FROM contacts", "No ids", "rid"
	m, err := e.svc.CreateModel(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, warehouse.NewModel{Name: &name, SQL: &sql, IDColumn: &idc})
	if err != nil {
		t.Fatal(err)
	}
	sc := warehouse.Schedule{Manual: true}
	mp, err := e.svc.CreateMapping(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, m.ID, warehouse.NewMapping{
		Identifiers: map[string]string{"email": "email"}, Traits: map[string]string{"name": "name"}, Schedule: &sc})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 7; i++ {
		sy := e.syncNow(mp)
		switch {
		case i == 1:
			if sy.Status != "partial" || sy.Loaded != (warehouse.Loaded{Succeeded: 3, Failed: 1}) || len(sy.Errors) != 1 || sy.Errors[0].RecordID != "0" ||
				!strings.Contains(sy.Errors[0].Message, "no identifier") {
				t.Fatalf("sync 1: %+v", sy)
			}
		case i <= 5:
			if sy.Status != "failed" || sy.Extracted.Added != 1 || sy.Loaded.Failed != 1 {
				t.Fatalf("sync %d: the failed record is tried again: %+v", i, sy)
			}
		default:
			if sy.Status != "succeeded" || sy.Extracted != (warehouse.Extracted{}) {
				t.Fatalf("sync %d: a record failed 5 times is left: %+v", i, sy)
			}
		}
	}
	e.sql("UPDATE contacts SET email = 'found@example.com' WHERE id IS NULL")
	if sy := e.syncNow(mp); sy.Status != "succeeded" || sy.Loaded.Succeeded != 1 {
		t.Fatalf("a changed record is tried again: %+v", sy)
	}
}

// A sync killed part-way resumes from its checkpoint once its lease ends, and every record
// is applied once.
func TestSyncResumesAfterACrash(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 400)
	seed(e, 1, 2000)
	e.connect()
	mp := e.mapping(e.model("SELECT id, email, name, plan FROM contacts"), warehouse.Schedule{Manual: true})
	crashed := errors.New("killed")
	e.crash = func(_ string, page int) error {
		if page == 3 {
			e.crash = nil
			return crashed // page 3 applied, not checkpointed
		}
		return nil
	}
	sy, err := e.svc.SyncNow(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, mp.ModelID, mp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.drain(); !errors.Is(err, crashed) {
		t.Fatalf("drain: %v", err)
	}
	if got := e.sync(mp, sy.ID); got.Status != "in_progress" || got.PagesDone != 2 {
		t.Fatalf("after the crash: %+v", got)
	}
	// Before the lease ends nothing restarts it; after, the dispatcher does.
	if err := e.svc.Dispatch(e.ctx); err != nil || len(e.queue) != 0 {
		t.Fatalf("dispatch during the lease: %v, %d tasks", err, len(e.queue))
	}
	e.clock.Add(2 * time.Minute)
	if err := e.svc.Dispatch(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.drain(); err != nil {
		t.Fatal(err)
	}
	check(t, "resumed sync", e.sync(mp, sy.ID), warehouse.Sync{Trigger: "manual", Status: "succeeded",
		Extracted: warehouse.Extracted{Added: 2000}, Loaded: warehouse.Loaded{Succeeded: 2000}, Pages: 5, PagesDone: 5})
	for id := 1; id <= 2000; id++ {
		if n := e.events(fmt.Sprint(id)); n != 1 {
			t.Fatalf("record %d: %d events, want 1", id, n)
		}
	}
}

// A connection test names what is wrong and what to do.
func TestConnectionTestReasons(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1000)
	e.sql("CREATE ROLE reader LOGIN PASSWORD 'pw'", "REVOKE CREATE ON DATABASE postgres FROM PUBLIC", "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
	for _, tc := range []struct {
		name   string
		creds  func() warehouse.Credentials
		reason string
		hint   string
	}{
		{"wrong password", func() warehouse.Credentials { return e.creds("wrong") }, "auth", "password"},
		{"wrong host", func() warehouse.Credentials {
			c := e.creds("right-password")
			c.Host = "warehouse.invalid"
			return c
		}, "network", "host and port"},
		{"no such database", func() warehouse.Credentials {
			c := e.creds("right-password")
			c.Database = "nope"
			return c
		}, "database", "database name"},
		{"missing permission", func() warehouse.Credentials {
			c := e.creds("pw")
			c.User = "reader"
			return c
		}, "permission", "__unify_retl"},
		{"right", func() warehouse.Credentials { return e.creds("right-password") }, "", ""},
	} {
		c, err := e.svc.SetConnection(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, tc.creds())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := c.LastTest
		if got.OK != (tc.reason == "") || got.Reason != tc.reason || !strings.Contains(got.Hint, tc.hint) {
			t.Errorf("%s: %+v, want reason %q and a hint about %q", tc.name, got, tc.reason, tc.hint)
		}
		if strings.Contains(got.Message+got.Hint, "right-password") {
			t.Errorf("%s: the answer repeats the password", tc.name)
		}
	}
}

// A preview shows the first 10 records with column names and types; wrong SQL gets the
// warehouse's message and its position in the model.
func TestPreview(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1000)
	seed(e, 1, 25)
	e.connect()
	pv, err := e.svc.PreviewModel(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, "SELECT id, email, updated_at FROM contacts ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	if len(pv.Rows) != 10 || len(pv.Columns) != 3 || pv.Columns[0] != (warehouse.Column{Name: "id", Type: "int4"}) || pv.Columns[2].Type != "timestamptz" {
		t.Fatalf("preview: %d rows, columns %+v", len(pv.Rows), pv.Columns)
	}
	if pv.Rows[0]["id"] != int64(1) || pv.Rows[0]["email"] != "user1@example.com" {
		t.Errorf("first row: %v", pv.Rows[0])
	}
	_, err = e.svc.PreviewModel(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, "SELECT idd FROM contacts")
	if e := errcode.As(err); e == nil || e.Code != "sql_error" || !strings.Contains(e.Message, `column "idd" does not exist`) || !strings.Contains(e.Message, "at character 8") {
		t.Fatalf("wrong SQL: %v", err)
	}
	_, err = e.svc.PreviewModel(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, "SELECT 1; DROP TABLE contacts")
	if e := errcode.As(err); e == nil || e.Field != "sql" || !strings.Contains(e.Message, "';'") {
		t.Fatalf("two statements: %v", err)
	}
	name, sql, id := "m", "SELECT email FROM contacts", "id"
	_, err = e.svc.CreateModel(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, warehouse.NewModel{Name: &name, SQL: &sql, IDColumn: &id})
	if e := errcode.As(err); e == nil || e.Field != "id_column" || !strings.Contains(e.Message, "email") {
		t.Fatalf("missing id column: %v", err)
	}
}

// A step that fails every time ends the sync after 5 tries, saying why, instead of being
// retried for ever; the dispatcher sends a stalled step once per lease, not on every run.
func TestSyncGivesUpAfterFiveTries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1000)
	seed(e, 1, 10)
	e.connect()
	mp := e.mapping(e.model("SELECT id, email, name, plan FROM contacts"), warehouse.Schedule{Manual: true})
	broken := errors.New("the page always breaks")
	e.crash = func(string, int) error { return broken }
	sy, err := e.svc.SyncNow(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, mp.ModelID, mp.ID)
	if err != nil {
		t.Fatal(err)
	}
	for try := 1; try <= 10; try++ {
		if err := e.drain(); err != nil && !errors.Is(err, broken) {
			t.Fatal(err)
		}
		if got := e.sync(mp, sy.ID); got.Status != "in_progress" {
			// Five deliveries ran the step and failed; the sixth ends the sync without running it.
			if try != 6 || got.Status != "failed" || !strings.Contains(got.Failure, "gave up after 5 tries") || !strings.Contains(got.Failure, broken.Error()) {
				t.Fatalf("after try %d: %+v", try, got)
			}
			return
		}
		e.clock.Add(2 * time.Minute)
		for range 2 { // two dispatcher runs within one lease send the step once
			if err := e.svc.Dispatch(e.ctx); err != nil {
				t.Fatal(err)
			}
		}
		if len(e.queue) != 1 {
			t.Fatalf("try %d: %d tasks queued, want 1", try, len(e.queue))
		}
	}
	t.Fatal("the sync never gave up")
}

// The cause of a failed connection is kept without pgx's preamble, which repeats the settings.
func TestLastPart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"failed to connect to `user=unify database=shop`: hostname resolving error: lookup db.invalid: no such host", "hostname resolving error: lookup db.invalid: no such host"},
		{"failed to connect to `user=u database=d`: /tmp/.s.PGSQL.5432 (/tmp): server error: FATAL: password authentication failed (SQLSTATE 28P01)", "server error: FATAL: password authentication failed (SQLSTATE 28P01)"},
		{"some other error", "some other error"},
	} {
		if got := postgres.LastPart(tc.in); got != tc.want {
			t.Errorf("LastPart(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A record the profile entry point refuses (its only identifier is a blocked value) fails
// alone: the others load, and the refusal is listed with the record's id.
func TestRefusedRecordFailsAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1000)
	seed(e, 1, 3)
	e.sql("UPDATE contacts SET email = 'null' WHERE id = 2")
	e.connect()
	sql, name, idc := "SELECT id, email, name FROM contacts", "Emails", "id"
	m, err := e.svc.CreateModel(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, warehouse.NewModel{Name: &name, SQL: &sql, IDColumn: &idc})
	if err != nil {
		t.Fatal(err)
	}
	sc := warehouse.Schedule{Manual: true}
	mp, err := e.svc.CreateMapping(e.ctx, e.tn.Owner, e.tn.ID(), e.src.ID, m.ID, warehouse.NewMapping{
		Identifiers: map[string]string{"email": "email"}, Traits: map[string]string{"name": "name"}, Schedule: &sc})
	if err != nil {
		t.Fatal(err)
	}
	sy := e.syncNow(mp)
	if sy.Status != "partial" || sy.Loaded != (warehouse.Loaded{Succeeded: 2, Failed: 1}) || len(sy.Errors) != 1 ||
		sy.Errors[0].RecordID != "2" || !strings.Contains(sy.Errors[0].Message, "no usable identifier") {
		t.Fatalf("sync: %+v", sy)
	}
}

// A server older than PostgreSQL 14 is refused as it connects, with the reason database and
// what is needed (the generated SQL uses hash_record_extended).
func TestSupported(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version string
		ok      bool
	}{
		{"15.4", true},
		{"14.10 (Debian 14.10-1.pgdg120+1)", true},
		{"17beta1", true},
		{"17.0", true},
		{"13.12", false},
		{"9.6.24", false},
		{"", false},
	} {
		err := postgres.Supported(tc.version)
		if tc.ok != (err == nil) {
			t.Errorf("supported(%q) = %v, want ok %v", tc.version, err, tc.ok)
		}
		if err == nil {
			continue
		}
		if e := warehouse.AsError(err); e.Reason != warehouse.ReasonDatabase || !strings.Contains(e.Hint, "PostgreSQL 14 or later") || !strings.Contains(e.Message, tc.version) {
			t.Errorf("supported(%q) = %+v", tc.version, e)
		}
	}
}
