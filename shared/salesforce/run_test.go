package salesforce_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/unifiedprofiles/up/infra/pgtest"
	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/salesforce"
	"github.com/unifiedprofiles/up/shared/salesforce/sfake"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/postgres"
	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
)

var runDBSeq atomic.Int64

// pgWarehouse opens one PostgreSQL database for every warehouse source (the Runner's
// Warehouses), a new pool each run as warehouse.Service does.
type pgWarehouse struct{ creds warehouse.Credentials }

func (w pgWarehouse) OpenSource(ctx context.Context, _, _ string) (warehouse.DB, sqlgen.Dialect, error) {
	d, _ := sqlgen.For("postgres")
	db, err := postgres.Open(ctx, w.creds)
	return db, d, err
}

type runEnv struct {
	*connectEnv
	tn     cxTenant
	admin  *pgx.Conn
	runner *salesforce.Runner
	client salesforce.ClientFunc // what the runner builds clients with; tests may wrap it
}

// newRunEnv connects a tenant's Salesforce source through the OAuth round trip, into a
// database of its own on pg.
func newRunEnv(t *testing.T, pg *pgtest.Cluster) *runEnv {
	t.Helper()
	name := fmt.Sprintf("sfrun_%d", runDBSeq.Add(1))
	pg.Exec(t, "CREATE DATABASE "+name+" OWNER retl")
	admin, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s user=postgres dbname=%s sslmode=disable", pg.Socket, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	e := &runEnv{connectEnv: newConnectEnv(t), admin: admin}
	e.client = e.app.SyncClient
	wh := pgWarehouse{warehouse.Credentials{Type: "postgres", Host: pg.Socket, Port: 5432, Database: name, User: "retl", Password: "right-password", SSLMode: "disable"}}
	e.runner = salesforce.NewRunner(e.conn, wh, func(ctx context.Context, c salesforce.Connection) (salesforce.Client, error) {
		return e.client(ctx, c)
	}, salesforce.RunnerOptions{})
	e.tn = e.tenant()
	code, state := cxAuthorize(t, e.connect(e.tn))
	if _, err := e.conn.Callback(e.ctx, state, code); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *runEnv) dispatch() {
	e.t.Helper()
	if err := e.runner.Dispatch(e.ctx, e.clock.Now()); err != nil {
		e.t.Fatalf("Dispatch: %v", err)
	}
}

func (e *runEnv) syncs() []salesforce.SyncRun {
	e.t.Helper()
	runs, err := e.runner.ListSyncs(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.sf)
	if err != nil {
		e.t.Fatal(err)
	}
	return runs
}

func (e *runEnv) count(where string) int {
	e.t.Helper()
	var n int
	if err := e.admin.QueryRow(e.ctx, "SELECT count(*) FROM salesforce.contact "+where).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *runEnv) conn1() salesforce.Connection {
	e.t.Helper()
	c, err := e.conn.Get(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.sf)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func TestRunner(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(t, "CREATE ROLE retl LOGIN PASSWORD 'right-password'")

	// The first sync runs when dispatched after connecting: 25,000 contacts land; the next is
	// due in 3 hours and moves only the changed records; a deletion arrives as is_deleted.
	t.Run("first then scheduled", func(t *testing.T) {
		t.Parallel()
		e := newRunEnv(t, pg)
		// The last one two minutes later: the next run re-reads only it within SafetyMargin.
		ids := e.fake.SeedContacts(24999)
		e.fake.Advance(2 * time.Minute)
		ids = append(ids, e.fake.Insert("Contact", sfake.Contact(24999)))
		e.dispatch()
		runs := e.syncs()
		if len(runs) != 1 || runs[0].Trigger != salesforce.TriggerFirst || runs[0].Status != salesforce.RunSucceeded ||
			runs[0].Records["Contact"] != 25000 || runs[0].FinishedAt == nil || runs[0].Error != "" {
			t.Fatalf("first run: %+v", runs)
		}
		if n := e.count(""); n != 25000 {
			t.Fatalf("%d contacts landed", n)
		}
		now := e.clock.Now()
		c := e.conn1()
		if c.NextSyncAt == nil || !c.NextSyncAt.Equal(now.Add(salesforce.SyncInterval)) || c.LastSync == nil ||
			c.LastSync.Status != salesforce.RunSucceeded || c.LastSync.Records["Contact"] != 25000 {
			t.Fatalf("connection after the first run: %+v", c)
		}
		// Not due before 3 hours: a dispatch does nothing.
		e.clock.Add(time.Hour)
		e.dispatch()
		if runs := e.syncs(); len(runs) != 1 {
			t.Fatalf("ran before it was due: %+v", runs)
		}
		e.fake.Advance(time.Hour)
		for _, id := range ids[:3] {
			if err := e.fake.Update("Contact", id, map[string]any{"Title": "CTO"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.fake.Delete("Contact", ids[3]); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(2 * time.Hour)
		e.dispatch()
		runs = e.syncs()
		if len(runs) != 2 || runs[0].Trigger != salesforce.TriggerSchedule || runs[0].Status != salesforce.RunSucceeded || runs[0].Records["Contact"] != 5 {
			t.Fatalf("scheduled run (newest first): %+v", runs)
		}
		if n := e.count("WHERE title = 'CTO'"); n != 3 {
			t.Fatalf("%d updated contacts", n)
		}
		if n := e.count("WHERE is_deleted"); n != 1 {
			t.Fatalf("%d deleted contacts", n)
		}
	})

	// A rate limit mid-run ends it partial with the checkpoint kept; the next run, due in 15
	// minutes, resumes from it.
	t.Run("rate limit resumes", func(t *testing.T) {
		t.Parallel()
		e := newRunEnv(t, pg)
		e.fake.SeedContacts(5000)
		e.fake.RateLimitCall(3) // describe, queryAll, then the second page
		e.dispatch()
		runs := e.syncs()
		if len(runs) != 1 || runs[0].Status != salesforce.RunPartial || runs[0].Records["Contact"] != 2000 || runs[0].Error == "" {
			t.Fatalf("rate-limited run: %+v", runs)
		}
		now := e.clock.Now()
		if c := e.conn1(); c.NextSyncAt == nil || !c.NextSyncAt.Equal(now.Add(salesforce.DefaultRetryAfter)) {
			t.Fatalf("next run: %+v", c.NextSyncAt)
		}
		queries := e.fake.Counts().Query
		e.clock.Add(salesforce.DefaultRetryAfter)
		e.dispatch()
		runs = e.syncs()
		if len(runs) != 2 || runs[0].Status != salesforce.RunSucceeded || runs[0].Records["Contact"] != 3000 {
			t.Fatalf("resumed run: %+v", runs)
		}
		// Contact resumed from its nextRecordsUrl; Lead and Account ran their first query.
		if q := e.fake.Counts().Query - queries; q != 2 {
			t.Errorf("%d new queries, want 2 (Lead, Account): Contact did not resume", q)
		}
		if n := e.count(""); n != 5000 {
			t.Fatalf("%d contacts", n)
		}
	})

	// A revoked grant ends the run failed and shows reauthorize; nothing is due any more.
	t.Run("revoked grant", func(t *testing.T) {
		t.Parallel()
		e := newRunEnv(t, pg)
		e.fake.RevokeRefreshTokens()
		e.dispatch()
		runs := e.syncs()
		if len(runs) != 1 || runs[0].Status != salesforce.RunFailed || runs[0].Error == "" {
			t.Fatalf("run: %+v", runs)
		}
		c := e.conn1()
		if c.Status() != salesforce.StatusReauthorize || c.NextSyncAt != nil || c.LastSync == nil || c.LastSync.Status != salesforce.RunFailed {
			t.Fatalf("connection: %+v", c)
		}
		if due, _ := e.conn.Due(e.ctx, e.clock.Now().Add(24*time.Hour), 0); len(due) != 0 {
			t.Fatalf("still due: %+v", due)
		}
		if _, err := e.runner.SyncNow(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.sf); !errcode.Is(err, "reauthorize_required") {
			t.Fatalf("SyncNow: %v", err)
		}
	})

	// Without View All Records the run fails saying so.
	t.Run("permission", func(t *testing.T) {
		t.Parallel()
		e := newRunEnv(t, pg)
		e.fake.DenyQueries("Contact")
		e.dispatch()
		if runs := e.syncs(); len(runs) != 1 || runs[0].Status != salesforce.RunFailed || !strings.Contains(runs[0].Error, "View All Records") {
			t.Fatalf("run: %+v", runs)
		}
	})

	// Two runs of one source at once: one syncs, the other does nothing; a manual sync is
	// refused meanwhile, queued after, and run by the next dispatch.
	t.Run("one run at a time", func(t *testing.T) {
		t.Parallel()
		e := newRunEnv(t, pg)
		e.fake.SeedContacts(10)
		entered, release := make(chan struct{}), make(chan struct{})
		var first atomic.Bool
		app := e.app
		e.client = func(ctx context.Context, c salesforce.Connection) (salesforce.Client, error) {
			if first.CompareAndSwap(false, true) {
				close(entered)
				<-release
			}
			return app.SyncClient(ctx, c)
		}
		type result struct {
			ran bool
			err error
		}
		done := make(chan result)
		go func() {
			_, ran, err := e.runner.Run(e.ctx, e.tn.ID(), e.tn.sf)
			done <- result{ran, err}
		}()
		queued := func() []salesforce.DueSource {
			var sent []salesforce.DueSource
			if err := e.runner.Queue(e.ctx, e.clock.Now(), func(_ context.Context, d salesforce.DueSource) error { sent = append(sent, d); return nil }); err != nil {
				t.Fatal(err)
			}
			return sent
		}
		<-entered
		// The sync-dispatcher's Queue sends no task for a source a run holds.
		if sent := queued(); len(sent) != 0 {
			t.Fatalf("queued a held source: %v", sent)
		}
		if _, ran, err := e.runner.Run(e.ctx, e.tn.ID(), e.tn.sf); ran || err != nil {
			t.Fatalf("second run: ran %v, %v", ran, err)
		}
		if _, err := e.runner.SyncNow(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.sf); !errcode.Is(err, "sync_in_progress") {
			t.Fatalf("SyncNow during a run: %v", err)
		}
		close(release)
		if r := <-done; !r.ran || r.err != nil {
			t.Fatalf("first run: ran %v, %v", r.ran, r.err)
		}
		if runs := e.syncs(); len(runs) != 1 || runs[0].Records["Contact"] != 10 {
			t.Fatalf("runs: %+v", runs)
		}
		if sent := queued(); len(sent) != 0 {
			t.Fatalf("queued a source not due: %v", sent)
		}
		e.clock.Add(time.Minute)
		manual, err := e.runner.SyncNow(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.sf)
		if err != nil || manual.Status != salesforce.RunInProgress || manual.Trigger != salesforce.TriggerManual {
			t.Fatalf("SyncNow: %+v %v", manual, err)
		}
		// A manual sync is due at once: Queue sends it.
		if sent := queued(); len(sent) != 1 || sent[0].SourceID != e.tn.sf {
			t.Fatalf("queued after SyncNow: %v", sent)
		}
		if _, err := e.runner.SyncNow(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.sf); !errcode.Is(err, "sync_in_progress") {
			t.Fatalf("second SyncNow: %v", err)
		}
		e.dispatch()
		runs := e.syncs()
		if len(runs) != 2 || runs[0].ID != manual.ID || runs[0].Status != salesforce.RunSucceeded || runs[0].Trigger != salesforce.TriggerManual {
			t.Fatalf("after the manual run: %+v", runs)
		}
	})
}
