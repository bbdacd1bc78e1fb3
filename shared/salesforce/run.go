package salesforce

// Running a source's sync (issue 15, part 2): the Runner claims a source with a lease, syncs
// each of its objects from the stored checkpoint (SyncObject, the checkpoint stored after
// every page), keeps a history of runs, and makes the next run due through
// Connector.RecordSync. Dispatch runs the sources Connector.Due returns; the local stack calls
// it on a ticker (ARCHITECTURE.md section 3, "Syncs").

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Run triggers and statuses.
const (
	TriggerFirst    = "first"
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"

	RunInProgress = "in_progress"
	RunSucceeded  = "succeeded"
	RunPartial    = "partial"
	RunFailed     = "failed"
)

// Defaults of RunnerOptions.
const (
	DefaultRunLease   = 15 * time.Minute
	DefaultMaxRunTime = 10 * time.Minute
	DefaultRetryAfter = 15 * time.Minute
	// MaxHistory is how many runs a source keeps.
	MaxHistory = 50
)

// SyncRun is one run of a source's sync, as its history keeps it.
type SyncRun struct {
	ID          string         `json:"id"`
	WorkspaceID string         `json:"workspace_id"`
	SourceID    string         `json:"source_id"`
	Trigger     string         `json:"trigger"`
	Status      string         `json:"status"`
	StartedAt   time.Time      `json:"started_at"`
	FinishedAt  *time.Time     `json:"finished_at"`
	Records     map[string]int `json:"records"` // records upserted, by object
	Error       string         `json:"error,omitempty"`
}

// Warehouses opens a warehouse source's database (warehouse.Service implements it).
type Warehouses interface {
	OpenSource(ctx context.Context, wsID, srcID string) (warehouse.DB, sqlgen.Dialect, error)
}

// ClientFunc builds the Salesforce client of a connection (from Connector.Credentials); the
// wiring gives rest.OAuthApp's.
type ClientFunc func(ctx context.Context, conn Connection) (Client, error)

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	Now func() time.Time
	// Lease is how long a run holds its source before another may take it over (a crashed
	// run); DefaultRunLease when 0. It must exceed MaxRunTime.
	Lease time.Duration
	// MaxRunTime bounds one run (DefaultMaxRunTime when 0): a run that reaches it stops with
	// its checkpoints saved, status partial, and the source due again at once.
	MaxRunTime time.Duration
	// RetryAfter is how soon a run stopped by a rate limit or a transient failure is due
	// again (DefaultRetryAfter when 0).
	RetryAfter time.Duration
}

// Runner runs Salesforce sources' syncs.
type Runner struct {
	st         store.Store
	conn       *Connector
	wh         Warehouses
	client     ClientFunc
	now        func() time.Time
	ids        token.IDs
	lease      time.Duration
	maxRun     time.Duration
	retryAfter time.Duration
}

// NewRunner returns a Runner over conn's store and connections.
func NewRunner(conn *Connector, wh Warehouses, client ClientFunc, o RunnerOptions) *Runner {
	r := &Runner{st: conn.st, conn: conn, wh: wh, client: client, now: o.Now, lease: o.Lease, maxRun: o.MaxRunTime, retryAfter: o.RetryAfter}
	if r.now == nil {
		r.now = conn.now
	}
	r.ids = token.IDs{Now: r.now}
	if r.lease <= 0 {
		r.lease = DefaultRunLease
	}
	if r.maxRun <= 0 {
		r.maxRun = DefaultMaxRunTime
	}
	if r.maxRun >= r.lease {
		r.maxRun = r.lease / 2
	}
	if r.retryAfter <= 0 {
		r.retryAfter = DefaultRetryAfter
	}
	return r
}

// runRecord marks a source's run: held until LeaseUntil, or Queued by SyncNow for the next
// Dispatch to take.
type runRecord struct {
	SyncID     string    `json:"sync_id"`
	Trigger    string    `json:"trigger"`
	Queued     bool      `json:"queued,omitempty"`
	LeaseUntil time.Time `json:"lease_until"`
}

func sfPK(ws string) string           { return "WS#" + ws + "#SF" }
func runKey(ws, src string) store.Key { return store.Key{PK: sfPK(ws), SK: "RUN#" + src} }
func cpKey(ws, src, obj string) store.Key {
	return store.Key{PK: sfPK(ws), SK: "CP#" + src + "#" + obj}
}
func historyPK(ws, src string) string { return "SFSYNC#" + ws + "#" + src }
func historyKey(ws, src, id string) store.Key {
	return store.Key{PK: historyPK(ws, src), SK: id}
}

// Dispatch runs every source due at now, one after the other, and returns their errors
// joined. A source another run holds is skipped (it stays due until that run records).
func (r *Runner) Dispatch(ctx context.Context, now time.Time) error {
	due, err := r.conn.Due(ctx, now, 0)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, d := range due {
		if ctx.Err() != nil {
			break
		}
		if _, _, err := r.Run(ctx, d.WorkspaceID, d.SourceID); err != nil {
			errs = append(errs, fmt.Errorf("salesforce sync of %s: %w", d.SourceID, err))
		}
	}
	return errors.Join(errs...)
}

// Queue hands every source due at now that no run holds to send (the sync-dispatcher sends
// one queue task per source for the sync worker, which calls Run), and returns the errors
// joined. A source stays due until its run records, so a lost or duplicate task costs
// nothing: the next minute's Queue sends it again, and Run's claim lets one run only.
func (r *Runner) Queue(ctx context.Context, now time.Time, send func(context.Context, DueSource) error) error {
	due, err := r.conn.Due(ctx, now, 0)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, d := range due {
		cur, _, err := store.LoadJSON[runRecord](ctx, r.st, runKey(d.WorkspaceID, d.SourceID), errcode.NotFoundf("no run"))
		if err == nil && !cur.Queued && now.Before(cur.LeaseUntil) {
			continue // running
		}
		if err != nil && !errcode.Is(err, "not_found") {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, send(ctx, d))
	}
	return errors.Join(errs...)
}

// claim takes the source's run: it is free, queued by SyncNow, or its holder's lease ran
// out. Of two claims, one writes the record's version.
func (r *Runner) claim(ctx context.Context, ws, src string, fresh func() runRecord) (runRecord, bool, error) {
	now := r.now()
	cur, version, err := store.LoadJSON[runRecord](ctx, r.st, runKey(ws, src), errcode.NotFoundf("no run"))
	switch {
	case errcode.Is(err, "not_found"):
		cur, version = fresh(), 0
	case err != nil:
		return runRecord{}, false, err
	case cur.Queued:
	case now.Before(cur.LeaseUntil):
		return cur, false, nil
	default: // the holder stopped without finishing: its entry ends failed
		r.endStale(ctx, ws, src, cur.SyncID)
		cur = fresh()
	}
	cur.Queued, cur.LeaseUntil = false, now.Add(r.lease)
	if err := r.st.Transact(ctx, store.ReplaceOp(store.JSONItem(runKey(ws, src), cur), version)); err != nil {
		if store.FailedOp(err) == 0 {
			return cur, false, nil
		}
		return runRecord{}, false, err
	}
	return cur, true, nil
}

func (r *Runner) endStale(ctx context.Context, ws, src, id string) {
	k := historyKey(ws, src, id)
	run, v, err := store.LoadJSON[SyncRun](ctx, r.st, k, errcode.NotFoundf("no sync"))
	if err != nil || run.Status != RunInProgress {
		return
	}
	now := r.now()
	run.Status, run.FinishedAt, run.Error = RunFailed, &now, "the run stopped without finishing (its lease ran out); the next run resumes from the checkpoints"
	_ = r.st.Transact(ctx, store.ReplaceOp(store.JSONItem(k, run), v))
}

// Run syncs one source now if no other run holds it, and returns the run and whether it
// ran. Salesforce's and the warehouse's failures end the run (failed or partial, in its
// history); the error is for the store's own failures.
func (r *Runner) Run(ctx context.Context, ws, src string) (SyncRun, bool, error) {
	rec, _, err := r.conn.load(ctx, ws, src)
	if err != nil {
		return SyncRun{}, false, err
	}
	trigger := TriggerSchedule
	if rec.LastSync == nil {
		trigger = TriggerFirst
	}
	held, ok, err := r.claim(ctx, ws, src, func() runRecord { return runRecord{SyncID: r.ids.New("sfsync_"), Trigger: trigger} })
	if err != nil || !ok {
		return SyncRun{}, false, err
	}
	run := SyncRun{ID: held.SyncID, WorkspaceID: ws, SourceID: src, Trigger: held.Trigger, Status: RunInProgress,
		StartedAt: r.now().UTC(), Records: map[string]int{}}
	if old, _, err := store.LoadJSON[SyncRun](ctx, r.st, historyKey(ws, src, run.ID), errcode.NotFoundf("no sync")); err == nil {
		run.StartedAt = old.StartedAt // queued by SyncNow
	}
	if err := r.st.Transact(ctx, store.PutOp(store.JSONItem(historyKey(ws, src, run.ID), run), store.Always)); err != nil {
		return run, true, err
	}
	runCtx, cancel := context.WithTimeout(ctx, r.maxRun)
	defer cancel()
	next, reauth := r.sync(runCtx, &run)
	// Record even when ctx ended: what landed is saved, and the source must stay due.
	return run, true, r.finish(context.WithoutCancel(ctx), run, next, reauth)
}

// sync runs the objects and sets run's status, records and error; it returns when the next
// run is due, and the reason to reauthorize ("" when not).
func (r *Runner) sync(ctx context.Context, run *SyncRun) (time.Time, string) {
	ws, src := run.WorkspaceID, run.SourceID
	fail := func(status, msg string, next time.Time) (time.Time, string) {
		run.Status, run.Error = status, errcode.Cut(msg, 1000)
		return next, ""
	}
	conn, err := r.conn.Credentials(ctx, ws, src)
	if errcode.Is(err, "reauthorize_required") {
		run.Status, run.Error = RunFailed, err.Error()
		return time.Time{}, ""
	}
	if err != nil {
		return fail(RunFailed, "reading the connection: "+err.Error(), r.now().Add(r.retryAfter))
	}
	c, err := r.client(ctx, conn)
	if err != nil {
		return fail(RunFailed, "building the Salesforce client: "+err.Error(), r.now().Add(r.retryAfter))
	}
	db, d, err := r.wh.OpenSource(ctx, ws, conn.WarehouseSourceID)
	if err != nil {
		return fail(RunFailed, "opening the warehouse source "+conn.WarehouseSourceID+": "+err.Error(), r.now().Add(r.retryAfter))
	}
	defer db.Close()
	landed := false
	for _, obj := range conn.Objects {
		k := cpKey(ws, src, obj)
		cp, _, err := store.LoadJSON[Checkpoint](ctx, r.st, k, errcode.NotFoundf("no checkpoint"))
		if err != nil && !errcode.Is(err, "not_found") {
			return fail(RunFailed, "reading the checkpoint of "+obj+": "+err.Error(), r.now().Add(r.retryAfter))
		}
		save := func(ctx context.Context, cp Checkpoint) error {
			return r.st.Transact(ctx, store.PutOp(store.JSONItem(k, cp), store.Always))
		}
		_, res, err := SyncObject(ctx, c, db, d, obj, cp, save, r.now)
		if res.Records > 0 {
			run.Records[obj] += res.Records
			landed = true
		}
		if err == nil {
			continue
		}
		partial := RunFailed
		if landed {
			partial = RunPartial
		}
		switch {
		case errors.Is(err, ErrReauthorize):
			run.Status, run.Error = RunFailed, err.Error()+". "+ReauthorizeHint
			return time.Time{}, err.Error()
		case errors.Is(err, ErrRateLimited):
			return fail(partial, err.Error()+" (next run in "+r.retryAfter.String()+")", r.now().Add(r.retryAfter))
		case errors.Is(err, ErrPermission):
			return fail(RunFailed, err.Error(), r.now().Add(SyncInterval))
		case ctx.Err() != nil:
			return fail(RunPartial, "the run reached its time limit with its checkpoints saved; the next run continues at once", r.now())
		}
		return fail(partial, err.Error(), r.now().Add(r.retryAfter))
	}
	run.Status = RunSucceeded
	return r.now().Add(SyncInterval), ""
}

// finish records the run's end on the connection (making the next run due), frees the
// source, then writes the run's end in the history and trims it. The history comes last:
// whoever sees the run finished there finds it as the source's last sync, and the source
// free for the next run.
func (r *Runner) finish(ctx context.Context, run SyncRun, next time.Time, reauth string) error {
	now := r.now().UTC()
	run.FinishedAt = &now
	var errs []error
	if reauth != "" {
		errs = append(errs, r.conn.MarkReauthorize(ctx, run.WorkspaceID, run.SourceID, reauth))
	}
	last := LastSync{Status: run.Status, StartedAt: run.StartedAt, FinishedAt: run.FinishedAt, Records: run.Records, Error: run.Error}
	errs = append(errs, r.conn.RecordSync(ctx, run.WorkspaceID, run.SourceID, last, next))
	errs = append(errs, r.st.Transact(ctx, store.DeleteOp(runKey(run.WorkspaceID, run.SourceID), store.Always)))
	errs = append(errs, r.st.Transact(ctx, store.PutOp(store.JSONItem(historyKey(run.WorkspaceID, run.SourceID, run.ID), run), store.Always)))
	if items, err := r.st.Query(ctx, historyPK(run.WorkspaceID, run.SourceID), store.Page{Desc: true, Limit: MaxHistory + 20}); err == nil {
		for i := MaxHistory; i < len(items); i++ {
			errs = append(errs, r.st.Transact(ctx, store.DeleteOp(items[i].Key, store.Always)))
		}
	}
	return errors.Join(errs...)
}

// SyncNow queues a manual run of the source for the next Dispatch (within a minute) and
// returns it, in_progress. Caller: the workspace's token. Errors: forbidden, not_found,
// not_salesforce, not_connected, reauthorize_required (409), sync_in_progress (409).
func (r *Runner) SyncNow(ctx context.Context, p workspace.Principal, ws, src string) (SyncRun, error) {
	if _, err := r.conn.salesforceSource(ctx, p, ws, src); err != nil {
		return SyncRun{}, err
	}
	rec, _, err := r.conn.load(ctx, ws, src)
	if err != nil {
		return SyncRun{}, err
	}
	if rec.Reauthorize {
		return SyncRun{}, errcode.New(errcode.Conflict, "reauthorize_required", "source %s: %s", src, ReauthorizeHint)
	}
	now := r.now().UTC()
	inProgress := func(id string) error {
		return errcode.New(errcode.Conflict, "sync_in_progress", "source %s is already syncing (sync %s): wait for it to end", src, id)
	}
	cur, version, err := store.LoadJSON[runRecord](ctx, r.st, runKey(ws, src), errcode.NotFoundf("no run"))
	switch {
	case errcode.Is(err, "not_found"):
		version = 0
	case err != nil:
		return SyncRun{}, err
	case cur.Queued || now.Before(cur.LeaseUntil):
		return SyncRun{}, inProgress(cur.SyncID)
	}
	run := SyncRun{ID: r.ids.New("sfsync_"), WorkspaceID: ws, SourceID: src, Trigger: TriggerManual, Status: RunInProgress, StartedAt: now, Records: map[string]int{}}
	held := runRecord{SyncID: run.ID, Trigger: TriggerManual, Queued: true}
	if err := r.st.Transact(ctx,
		store.ReplaceOp(store.JSONItem(runKey(ws, src), held), version),
		store.PutOp(store.JSONItem(historyKey(ws, src, run.ID), run), store.Always)); err != nil {
		if store.FailedOp(err) == 0 {
			return SyncRun{}, inProgress("")
		}
		return SyncRun{}, err
	}
	// Due now, so the next Dispatch takes the queued run.
	if err := r.conn.update(ctx, ws, src, func(rec *connRecord) []store.Op {
		var ops []store.Op
		if rec.NextSyncAt != nil && rec.NextSyncAt.Equal(now) {
			return nil
		}
		if rec.NextSyncAt != nil {
			ops = append(ops, store.DeleteOp(dueKey(ws, src, *rec.NextSyncAt), store.Always))
		}
		ops = append(ops, store.PutOp(store.JSONItem(dueKey(ws, src, now), DueSource{WorkspaceID: ws, SourceID: src, At: now}), store.Always))
		rec.NextSyncAt = &now
		return ops
	}); err != nil {
		return SyncRun{}, err
	}
	return run, nil
}

// ListSyncs returns the source's latest runs, newest first. Caller: the workspace's token.
// Errors: forbidden, not_found, not_salesforce.
func (r *Runner) ListSyncs(ctx context.Context, p workspace.Principal, ws, src string) ([]SyncRun, error) {
	if _, err := r.conn.salesforceSource(ctx, p, ws, src); err != nil {
		return nil, err
	}
	return store.QueryJSON[SyncRun](ctx, r.st, historyPK(ws, src), store.Page{Desc: true, Limit: MaxHistory})
}
