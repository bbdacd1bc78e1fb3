package warehouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/flex"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Sync triggers and statuses.
const (
	TriggerFirst    = "first"
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"

	StatusInProgress = "in_progress"
	StatusSucceeded  = "succeeded"
	StatusPartial    = "partial"
	StatusFailed     = "failed"
)

// Limits of a sync's report.
const (
	maxSyncErrors = 100 // per-record errors kept in a sync's history
	applyChunk    = 500 // records per profile.ApplyMany (one snapshot, one commit), as CSV
	maxHistory    = 50  // syncs listed
	// phoneRegion reads national phone numbers (no country code) as US numbers.
	phoneRegion = "US"
)

// Extracted counts a diff's changes; Loaded what became of the records sent.
type Extracted struct {
	Added   int `json:"added"`
	Updated int `json:"updated"`
	Deleted int `json:"deleted"`
}

type Loaded struct {
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
}

// RecordError is why one record did not load.
type RecordError struct {
	RecordID string `json:"record_id"`
	Message  string `json:"message"`
}

// Sync is one run of a mapping, and its checkpoint.
type Sync struct {
	ID          string        `json:"id"`
	MappingID   string        `json:"mapping_id"`
	Trigger     string        `json:"trigger"`
	Status      string        `json:"status"`
	Extracted   Extracted     `json:"extracted"`
	Loaded      Loaded        `json:"loaded"`
	Errors      []RecordError `json:"errors"`
	Failure     string        `json:"failure,omitempty"` // why the whole sync failed
	StartedAt   time.Time     `json:"started_at"`
	FinishedAt  *time.Time    `json:"finished_at"`
	Pages       int           `json:"pages"`
	PagesDone   int           `json:"pages_done"`
	WorkspaceID string        `json:"workspace_id"`
	SourceID    string        `json:"source_id"`

	// The checkpoint: planned (diff made), the model's columns then, the lease.
	Planned    bool      `json:"planned,omitempty"`
	Columns    []string  `json:"columns,omitempty"`
	Held       bool      `json:"held,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// Tries counts the workers that took this step and never finished it; LastError is why
	// the last one stopped, when it could say.
	Tries     int    `json:"tries,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// maxTries ends a sync whose step keeps failing (the warehouse down, a page that always
// crashes its worker) instead of retrying it for ever.
const maxTries = 5

// Task kinds: what a task on the sync queue runs.
const (
	// TaskReverseETL is a step of a Reverse ETL sync (Kind "", as before kinds existed).
	TaskReverseETL = ""
	// TaskSalesforce is a run of a Salesforce source's sync (WorkspaceID and SourceID;
	// salesforce.Runner.Run).
	TaskSalesforce = "salesforce"
	// TaskPrediction is a run of a space's prediction (WorkspaceID, SpaceID and
	// PredictionID; predict.Service.Run).
	TaskPrediction = "prediction"
)

// Task is one step of a sync on the queue: Page 0 plans it, page k loads the k-th page. A task
// of Kind TaskSalesforce runs a Salesforce source's sync instead (WorkspaceID, SourceID), one
// of Kind TaskPrediction a prediction's run (WorkspaceID, SpaceID, PredictionID).
type Task struct {
	Kind         string `json:"kind,omitempty"`
	WorkspaceID  string `json:"workspace_id"`
	MappingID    string `json:"mapping_id,omitempty"`
	SyncID       string `json:"sync_id,omitempty"`
	SourceID     string `json:"source_id,omitempty"`
	SpaceID      string `json:"space_id,omitempty"`
	PredictionID string `json:"prediction_id,omitempty"`
	Page         int    `json:"page"`
}

func syncNotFound(id string) error { return errcode.NotFoundf("sync %s was not found", id) }

// SyncNow starts a sync of a mapping (trigger manual). Caller: the workspace's token.
// Errors: forbidden, not_found, not_a_warehouse, sync_in_progress (409), paused (409).
func (s *Service) SyncNow(ctx context.Context, p workspace.Principal, wsID, srcID, modelID, id string) (Sync, error) {
	m, _, err := s.mappingOf(ctx, p, wsID, srcID, modelID, id)
	if err != nil {
		return Sync{}, err
	}
	if !m.Enabled {
		return Sync{}, errcode.New(errcode.Conflict, "paused", "mapping %s is paused: PATCH {\"enabled\":true} to resume it first", id)
	}
	return s.startSync(ctx, wsID, id, TriggerManual)
}

// startSync records a new sync, marks the mapping running, and queues the sync's plan.
func (s *Service) startSync(ctx context.Context, wsID, mappingID, trigger string) (Sync, error) {
	m, version, err := s.loadMapping(ctx, wsID, mappingID)
	if err != nil {
		return Sync{}, err
	}
	if m.Running != "" {
		return Sync{}, errcode.New(errcode.Conflict, "sync_in_progress", "mapping %s is already syncing (sync %s): wait for it to end", mappingID, m.Running)
	}
	now := s.now()
	sy := Sync{ID: s.ids.New("sync_"), MappingID: mappingID, Trigger: trigger, Status: StatusInProgress, Errors: []RecordError{},
		StartedAt: now, WorkspaceID: wsID, SourceID: m.SourceID, LeaseUntil: now.Add(s.lease)}
	ops := []store.Op{}
	if m.NextSyncAt != nil {
		ops = append(ops, store.DeleteOp(dueKey(wsID, mappingID, *m.NextSyncAt), store.Always))
	}
	m.Running, m.NextSyncAt = sy.ID, nil
	ops = append(ops,
		store.ReplaceOp(item(mappingKey(wsID, mappingID), m), version),
		store.ReplaceOp(item(syncKey(mappingID, sy.ID), sy), 0),
		store.PutOp(item(runningKey(wsID, mappingID), Task{WorkspaceID: wsID, MappingID: mappingID, SyncID: sy.ID}), store.Always))
	if err := s.st.Transact(ctx, ops...); err != nil {
		if store.FailedOp(err) == len(ops)-3 {
			return Sync{}, errcode.New(errcode.Conflict, "sync_in_progress", "mapping %s changed or started syncing meanwhile: look at its syncs", mappingID)
		}
		return Sync{}, err
	}
	// A lost send is not lost work: the dispatcher sends the task again once the sync's lease
	// runs out, so the sync stands started either way.
	_ = s.queue.Send(ctx, Task{WorkspaceID: wsID, MappingID: mappingID, SyncID: sy.ID})
	return sy, nil
}

// GetSync returns one sync of a mapping. Errors: forbidden, not_found, not_a_warehouse.
func (s *Service) GetSync(ctx context.Context, p workspace.Principal, wsID, srcID, modelID, mappingID, id string) (Sync, error) {
	if _, _, err := s.mappingOf(ctx, p, wsID, srcID, modelID, mappingID); err != nil {
		return Sync{}, err
	}
	sy, _, err := store.LoadJSON[Sync](ctx, s.st, syncKey(mappingID, id), syncNotFound(id))
	return sy, err
}

// ListSyncs returns a mapping's latest syncs, newest first. Errors: as GetSync.
func (s *Service) ListSyncs(ctx context.Context, p workspace.Principal, wsID, srcID, modelID, mappingID string) ([]Sync, error) {
	if _, _, err := s.mappingOf(ctx, p, wsID, srcID, modelID, mappingID); err != nil {
		return nil, err
	}
	return store.QueryJSON[Sync](ctx, s.st, syncPK(mappingID), store.Page{Desc: true, Limit: maxHistory})
}

// ResetMapping forgets what a mapping synced: its next sync adds every record again.
// Errors: forbidden, not_found, not_a_warehouse, sync_in_progress (409), warehouse_<reason>.
func (s *Service) ResetMapping(ctx context.Context, p workspace.Principal, wsID, srcID, modelID, id string) error {
	m, _, err := s.mappingOf(ctx, p, wsID, srcID, modelID, id)
	if err != nil {
		return err
	}
	if m.Running != "" {
		return errcode.New(errcode.Conflict, "sync_in_progress", "mapping %s is syncing (sync %s): wait for it to end, then reset", id, m.Running)
	}
	db, d, err := s.openSource(ctx, wsID, srcID)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return warehouseError(e)
		}
		return err
	}
	defer db.Close()
	if err := db.Exec(ctx, d.DropTable(sqlgen.StateTable(id))); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return warehouseError(e)
		}
		return err
	}
	return nil
}

// dropState drops a deleted mapping's state table, if the warehouse can be reached.
func (s *Service) dropState(ctx context.Context, wsID, srcID, mappingID string) {
	db, d, err := s.openSource(ctx, wsID, srcID)
	if err != nil {
		return
	}
	defer db.Close()
	_ = db.Exec(ctx, d.DropTable(sqlgen.StateTable(mappingID)))
}

// Dispatch starts every due sync and restarts the chain of every running sync whose worker
// went quiet (its lease ran out). It reads two partitions, never scans. The EventBridge
// schedule calls it every minute; the local stack on a ticker.
func (s *Service) Dispatch(ctx context.Context) error {
	now := s.now()
	var errs []error
	due, err := s.st.Query(ctx, duePK, store.Page{Limit: 100})
	if err != nil {
		return fmt.Errorf("list due syncs: %w", err)
	}
	for _, it := range due {
		if it.SK > now.UTC().Format("2006-01-02T15:04:05Z")+"#~" {
			break // ordered by time: the rest is later
		}
		var ref dueRef
		if err := json.Unmarshal(it.Data, &ref); err != nil {
			errs = append(errs, fmt.Errorf("decode due item %s: %w", it.SK, err))
			continue
		}
		m, _, err := s.loadMapping(ctx, ref.WorkspaceID, ref.MappingID)
		if errcode.Is(err, "not_found") || err == nil && (m.NextSyncAt == nil || dueKey(ref.WorkspaceID, m.ID, *m.NextSyncAt) != it.Key) {
			errs = append(errs, s.st.Transact(ctx, store.DeleteOp(it.Key, store.Always))) // stale
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := s.startSync(ctx, ref.WorkspaceID, ref.MappingID, TriggerSchedule); err != nil && !errcode.Is(err, "sync_in_progress") {
			errs = append(errs, err)
		}
	}
	running, err := s.st.Query(ctx, runningPK, store.Page{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list running syncs: %w", err))...)
	}
	for _, it := range running {
		var t Task
		if err := json.Unmarshal(it.Data, &t); err != nil {
			errs = append(errs, fmt.Errorf("decode running item %s: %w", it.SK, err))
			continue
		}
		sy, version, err := store.LoadJSON[Sync](ctx, s.st, syncKey(t.MappingID, t.SyncID), syncNotFound(t.SyncID))
		if errcode.Is(err, "not_found") || err == nil && sy.Status != StatusInProgress {
			errs = append(errs, s.st.Transact(ctx, store.DeleteOp(it.Key, store.Always)))
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if now.After(sy.LeaseUntil) {
			t.Page = 0
			if sy.Planned {
				t.Page = sy.PagesDone + 1
			}
			// A holder whose lease ran out died in the step: count the try, and free the step
			// for the task sent now. Push the deadline on first, so the next run does not send
			// another copy while this one waits in the queue; of two dispatchers, one writes it.
			if sy.Held {
				sy.Tries++
			}
			sy.Held, sy.LeaseUntil = false, now.Add(s.lease)
			if _, err := s.saveSync(ctx, sy, version); err != nil {
				if store.FailedOp(err) != 0 {
					errs = append(errs, err)
				}
				continue
			}
			errs = append(errs, s.queue.Send(ctx, t))
		}
	}
	return errors.Join(errs...)
}

// Work runs one task: it plans the sync or loads one page, then checkpoints and queues the
// next task. A task that is stale (done already) or whose sync another worker holds is
// dropped: the holder goes on, or the dispatcher sends the task again when its lease ends.
// An error leaves the sync held until its lease ends, as a crash does.
func (s *Service) Work(ctx context.Context, t Task) error {
	sy, version, err := store.LoadJSON[Sync](ctx, s.st, syncKey(t.MappingID, t.SyncID), syncNotFound(t.SyncID))
	if errcode.Is(err, "not_found") {
		return nil
	}
	if err != nil {
		return err
	}
	now := s.now()
	want := 0
	if sy.Planned {
		want = sy.PagesDone + 1
	}
	if sy.Status != StatusInProgress || t.Page != want || sy.Held && now.Before(sy.LeaseUntil) {
		return nil
	}
	// Take the lease: of two workers with the same task, one writes this version. A step still
	// held was taken by a worker that never finished it.
	if sy.Held {
		sy.Tries++
	}
	if sy.Tries >= maxTries {
		sy.Failure = fmt.Sprintf("gave up after %d tries of the same step", sy.Tries)
		if sy.LastError != "" {
			sy.Failure += "; the last failed with: " + sy.LastError
		}
		return s.finish(ctx, sy, version, nil)
	}
	sy.Held, sy.LeaseUntil = true, now.Add(s.lease)
	if version, err = s.saveSync(ctx, sy, version); err != nil {
		if store.FailedOp(err) == 0 {
			return nil
		}
		return err
	}
	if err := s.step(ctx, t, sy, version); err != nil {
		// Say why, for the next try and for people; a crash says nothing, and a lost lease
		// means another worker has the step.
		if cur, v, lerr := store.LoadJSON[Sync](ctx, s.st, syncKey(t.MappingID, t.SyncID), syncNotFound(t.SyncID)); lerr == nil && cur.Held && cur.Status == StatusInProgress {
			cur.LastError = err.Error()
			s.saveSync(ctx, cur, v)
		}
		return err
	}
	return nil
}

// step plans the sync or loads one page, with the lease held.
func (s *Service) step(ctx context.Context, t Task, sy Sync, version int64) error {
	m, _, err := s.loadMapping(ctx, t.WorkspaceID, t.MappingID)
	if errcode.Is(err, "not_found") {
		sy.Failure = "the mapping was deleted during the sync"
		return s.finish(ctx, sy, version, nil)
	}
	if err != nil {
		return err
	}
	model, _, err := store.LoadJSON[Model](ctx, s.st, modelKey(t.WorkspaceID, m.SourceID, m.ModelID), modelNotFound(m.ModelID))
	if err != nil {
		return err
	}
	db, d, err := s.openSource(ctx, t.WorkspaceID, m.SourceID)
	if err != nil {
		if e := AsError(err); e.Reason != ReasonUnknown && e.Reason != ReasonNetwork && e.Reason != ReasonTimeout {
			sy.Failure = "cannot connect to the warehouse: " + e.Message + ". " + e.Hint
			return s.finish(ctx, sy, version, nil)
		}
		return err
	}
	defer db.Close()
	if !sy.Planned {
		return s.plan(ctx, db, d, m, model, sy, version)
	}
	return s.page(ctx, db, d, m, sy, version, t.Page)
}

func (s *Service) saveSync(ctx context.Context, sy Sync, version int64) (int64, error) {
	err := s.st.Transact(ctx, store.ReplaceOp(item(syncKey(sy.MappingID, sy.ID), sy), version))
	return version + 1, err
}

// plan snapshots the model, checks its ids and builds the diff, then queues page 1.
func (s *Service) plan(ctx context.Context, db DB, d sqlgen.Dialect, m Mapping, model Model, sy Sync, version int64) error {
	diff, out, state := sqlgen.WorkTable(sy.ID, "diff"), sqlgen.WorkTable(sy.ID, "out"), sqlgen.StateTable(m.ID)
	cols := make([]string, len(model.Columns))
	typed := make([]sqlgen.Column, len(model.Columns))
	for i, c := range model.Columns {
		cols[i], typed[i] = c.Name, sqlgen.Column{Name: c.Name, Type: c.Type}
	}
	fail := func(why string, err error) error {
		if e := AsError(err); e.Reason == ReasonNetwork || e.Reason == ReasonTimeout || e.Reason == ReasonUnknown && ctx.Err() != nil {
			return err // worth another try: the lease ends and the dispatcher sends the task again
		}
		sy.Failure = why + ": " + AsError(modelPosition(err)).Message
		_ = db.Exec(ctx, d.DropTable(diff), d.DropTable(out))
		return s.finish(ctx, sy, version, nil)
	}
	if err := db.Exec(ctx, d.CreateSchema(), d.CreateState(m.ID)); err != nil {
		return fail("cannot write the schema "+sqlgen.Schema, schemaDenied(err))
	}
	var stmts []string
	for _, st := range []string{d.DropTable(diff), d.DropTable(out), d.Diff(diff, model.SQL, model.IDColumn, state, typed), d.FillIdentifiers(diff, state), d.CreateOutcomes(out), d.IndexDiff(diff)} {
		if st != "" {
			stmts = append(stmts, st)
		}
	}
	if err := db.Exec(ctx, stmts...); err != nil {
		return fail("the model did not run", err)
	}
	bad, err := db.Query(ctx, d.FirstBadID(diff))
	if err != nil {
		return fail("the id check did not run", err)
	}
	if len(bad.Rows) > 0 {
		_ = db.Exec(ctx, d.DropTable(diff), d.DropTable(out))
		id, n := bad.Rows[0][0], bad.Rows[0][1]
		if id == nil {
			sy.Failure = fmt.Sprintf("%d records have no %s (NULL): every record needs an id", toInt(n), model.IDColumn)
		} else {
			sy.Failure = fmt.Sprintf("duplicate id %q: %d records have %s = %v; the id column must be unique per record", fmt.Sprint(id), toInt(n), model.IDColumn, id)
			sy.Errors = append(sy.Errors, RecordError{RecordID: fmt.Sprint(id), Message: sy.Failure})
		}
		return s.finish(ctx, sy, version, nil)
	}
	counts, err := db.Query(ctx, d.Counts(diff))
	if err != nil {
		return fail("the diff did not count", err)
	}
	total := 0
	for _, r := range counts.Rows {
		n := toInt(r[1])
		total += n
		switch fmt.Sprint(r[0]) {
		case sqlgen.OpAdd:
			sy.Extracted.Added = n
		case sqlgen.OpUpdate:
			sy.Extracted.Updated = n
		case sqlgen.OpDelete:
			sy.Extracted.Deleted = n
		}
	}
	sy.Planned, sy.Columns = true, cols
	sy.Pages = int(math.Ceil(float64(total) / float64(s.pageSize)))
	return s.next(ctx, db, d, sy, version)
}

// next releases the lease after a step and queues the next page, or finishes the sync.
func (s *Service) next(ctx context.Context, db DB, d sqlgen.Dialect, sy Sync, version int64) error {
	if sy.PagesDone >= sy.Pages {
		return s.finish(ctx, sy, version, func() {
			_ = db.Exec(ctx, d.DropTable(sqlgen.WorkTable(sy.ID, "diff")), d.DropTable(sqlgen.WorkTable(sy.ID, "out")))
			if st := d.Maintain(sqlgen.StateTable(sy.MappingID)); st != "" && sy.Pages > 0 {
				_ = db.Exec(ctx, st) // only speeds up the next diff: a failure changes nothing
			}
		})
	}
	sy.Held, sy.LeaseUntil, sy.Tries, sy.LastError = false, s.now().Add(s.lease), 0, ""
	version, err := s.saveSync(ctx, sy, version)
	if err != nil {
		return err
	}
	_ = version
	return s.queue.Send(ctx, Task{WorkspaceID: sy.WorkspaceID, MappingID: sy.MappingID, SyncID: sy.ID, Page: sy.PagesDone + 1})
}

// selected reports whether a mapping sends changes of op.
func selected(records, op string) bool {
	switch records {
	case RecordsAdded:
		return op == sqlgen.OpAdd
	case RecordsUpdated:
		return op == sqlgen.OpUpdate
	case RecordsAddedOrUpdated:
		return op == sqlgen.OpAdd || op == sqlgen.OpUpdate
	case RecordsDeleted:
		return op == sqlgen.OpDelete
	}
	return true // all
}

// page loads page k of the diff: each change becomes an identify (or is only recorded, when
// the mapping does not send its kind), the outcomes go into the warehouse's state, then the
// checkpoint.
func (s *Service) page(ctx context.Context, db DB, d sqlgen.Dialect, m Mapping, sy Sync, version int64, k int) error {
	diff := sqlgen.WorkTable(sy.ID, "diff")
	rows, err := db.Query(ctx, d.Page(diff, sy.Columns, int64(k-1)*int64(s.pageSize), int64(s.pageSize)))
	if err != nil {
		return err
	}
	set, err := s.profiles.Settings(ctx, m.SpaceID)
	if err != nil {
		return err
	}
	outs := make([]sqlgen.Outcome, len(rows.Rows))
	var msgs []message.Message
	var sent []int // index in outs of each message
	now := s.now()
	for i, r := range rows.Rows {
		o := sqlgen.Outcome{RecordID: fmt.Sprint(r[1]), Op: fmt.Sprint(r[2])}
		if r[3] != nil {
			o.Checksum = fmt.Sprint(r[3])
		}
		values := map[string]any{}
		for j, c := range sy.Columns {
			values[c] = jsonValue(r[5+j])
		}
		var last map[string]string
		if r[4] != nil {
			_ = json.Unmarshal([]byte(fmt.Sprint(r[4])), &last)
		}
		msg, ids, err := recordMessage(m, set, sy, o, values, last, now)
		o.Identifiers = ids
		if err != nil {
			o.Failed = true
			sy.Loaded.Failed++
			sy.Errors = addError(sy.Errors, RecordError{RecordID: o.RecordID, Message: err.Error()})
		} else if selected(m.Records, o.Op) {
			msgs = append(msgs, msg)
			sent = append(sent, i)
		}
		outs[i] = o
	}
	results, err := s.applyAll(ctx, m.SpaceID, msgs)
	if err != nil {
		return err
	}
	var committed []message.Message
	for start, res := range results {
		start *= applyChunk
		for j, r := range res {
			if r.Err == nil {
				committed = append(committed, msgs[start+j])
			}
			o := &outs[sent[start+j]]
			if r.Err != nil {
				if e := errcode.As(r.Err); e == nil || e.Kind != errcode.Invalid {
					return r.Err // not the record's fault: the task is tried again
				}
				o.Failed = true
				sy.Loaded.Failed++
				sy.Errors = addError(sy.Errors, RecordError{RecordID: o.RecordID, Message: r.Err.Error()})
				continue
			}
			sy.Loaded.Succeeded++
		}
	}
	// The source's destinations get the page's identifies before its checkpoint: a task
	// stopped in between loads the page again and queues them again (at least once).
	if s.outbox != nil {
		if err := s.outbox.Enqueue(ctx, workspace.Source{ID: m.SourceID, WorkspaceID: sy.WorkspaceID}, committed, 0); err != nil {
			return fmt.Errorf("queue page %d's records for the destinations: %w", k, err)
		}
	}
	if err := db.Exec(ctx, d.RecordOutcomes(sqlgen.StateTable(m.ID), sqlgen.WorkTable(sy.ID, "out"), sy.ID, outs)...); err != nil {
		return err
	}
	if s.afterPage != nil {
		if err := s.afterPage(sy.ID, k); err != nil {
			return err // as a crash between the page's load and its checkpoint
		}
	}
	sy.PagesDone = k
	return s.next(ctx, db, d, sy, version)
}

// applyWorkers is how many chunks of a page are applied at once: the profile entry point
// commits each chunk with one fsync, and the records of a page are distinct, so chunks in
// flight share commits and keep both cores busy while one waits (100,000 rows: 12.6 s one at
// a time, 10.4 s with 2, 9.2 s with 4; BENCHMARKS.md).
const applyWorkers = 4

// applyAll applies msgs in chunks of applyChunk, applyWorkers at a time, and returns each
// chunk's outcomes in order, or the first error.
func (s *Service) applyAll(ctx context.Context, spaceID string, msgs []message.Message) ([][]profile.Outcome, error) {
	n := (len(msgs) + applyChunk - 1) / applyChunk
	results := make([][]profile.Outcome, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(applyWorkers, n) {
		wg.Go(func() {
			for i := range next {
				results[i], errs[i] = s.profiles.ApplyMany(ctx, spaceID, msgs[i*applyChunk:min((i+1)*applyChunk, len(msgs))])
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return results, errors.Join(errs...)
}

func addError(list []RecordError, e RecordError) []RecordError {
	if len(list) >= maxSyncErrors {
		return list
	}
	return append(list, e)
}

// recordMessage turns one change into an identify: the mapped identifiers (phone columns to
// E.164) and traits; a deleted record is addressed by the identifiers last sent, with every
// mapped trait set to null. It returns the identifiers used, as JSON, for the state.
func recordMessage(m Mapping, set identity.Settings, sy Sync, o sqlgen.Outcome, values map[string]any, last map[string]string, now time.Time) (message.Message, string, error) {
	msg := message.Message{Type: message.Identify, MessageID: messageID(sy.ID, o.RecordID), Traits: map[string]any{},
		Timestamp: now, ReceivedAt: now, SourceID: m.SourceID}
	ids := map[string]string{}
	if o.Op == sqlgen.OpDelete {
		ids = last
		for name := range m.Traits {
			msg.Traits[name] = nil
		}
	} else {
		for typ, col := range m.Identifiers {
			v := values[col]
			if v == nil {
				continue
			}
			text, ok := identifierText(v)
			if !ok || text == "" {
				continue
			}
			if isPhone(typ) {
				e164, err := flex.NormalizePhone(text, phoneRegion)
				if err != nil {
					return msg, "", fmt.Errorf("column %s (%s): %s", col, typ, errcode.As(err).Message)
				}
				text = e164
			}
			ids[typ] = text
		}
		for name, col := range m.Traits {
			v := values[col]
			if v == nil && !m.SyncNulls {
				continue
			}
			if s, ok := v.(string); ok && isPhone(name) {
				if e164, err := flex.NormalizePhone(s, phoneRegion); err == nil {
					v = e164
				}
			}
			msg.Traits[name] = v
		}
	}
	if len(ids) == 0 {
		cols := make([]string, 0, len(m.Identifiers))
		for _, c := range m.Identifiers {
			cols = append(cols, c)
		}
		return msg, "", fmt.Errorf("no identifier: the mapped identifier columns (%v) are empty", cols)
	}
	for typ, v := range ids {
		switch typ {
		case identity.TypeUserID:
			msg.UserID = v
		case identity.TypeAnonymousID:
			msg.AnonymousID = v
		case identity.TypeEmail:
			msg.Traits["email"] = v
		default:
			if r, ok := ruleOf(set, typ); ok && len(r.Keys) > 0 {
				msg.Traits[r.Keys[0]] = v
			} else {
				msg.Traits[typ] = v
			}
		}
	}
	raw, _ := json.Marshal(values)
	if o.Op == sqlgen.OpDelete {
		raw, _ = json.Marshal(map[string]any{"record_id": o.RecordID, "deleted": true})
	}
	msg.Raw = raw
	b, _ := json.Marshal(ids)
	return msg, string(b), nil
}

func isPhone(name string) bool {
	return name == "phone" || name == "phone_number" || name == "phoneNumber"
}

// messageID is a record's message id in a sync: a page loaded again after a crash sends the
// same ids, which the profile entry point de-duplicates.
func messageID(syncID, recordID string) string {
	if len(recordID) > 64 {
		h := sha256.Sum256([]byte(recordID))
		recordID = hex.EncodeToString(h[:16])
	}
	return "retl-" + syncID + "-" + recordID
}

// identifierText is a column value as an identifier: text, or a number's decimal form.
func identifierText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// jsonValue turns a driver's value into what a trait holds.
func jsonValue(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64) // JSON has no NaN or infinity
		}
		return x
	case float32:
		return jsonValue(float64(x))
	case nil, string, bool, int64, map[string]any, []any:
		return x
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case int16:
		return int64(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

func toInt(v any) int {
	switch x := v.(type) {
	case int64:
		return int(x)
	case int32:
		return int(x)
	case int:
		return x
	case float64:
		return int(x)
	case string:
		n, _ := strconv.Atoi(x)
		return n
	}
	return 0
}

// finish ends a sync: its status from what loaded, the mapping's last sync and next run, and
// (for a first success) the source's step-2 tile. cleanup runs after the sync is saved.
func (s *Service) finish(ctx context.Context, sy Sync, version int64, cleanup func()) error {
	now := s.now()
	sy.FinishedAt, sy.Held, sy.LeaseUntil = &now, false, time.Time{}
	switch {
	case sy.Failure != "":
		sy.Status = StatusFailed
	case sy.Loaded.Failed == 0:
		sy.Status = StatusSucceeded
	case sy.Loaded.Succeeded > 0:
		sy.Status = StatusPartial
	default:
		sy.Status = StatusFailed
	}
	for {
		m, mv, err := s.loadMapping(ctx, sy.WorkspaceID, sy.MappingID)
		ops := []store.Op{store.ReplaceOp(item(syncKey(sy.MappingID, sy.ID), sy), version), store.DeleteOp(runningKey(sy.WorkspaceID, sy.MappingID), store.Always)}
		if err == nil && m.Running == sy.ID {
			summary := sy
			summary.Errors, summary.Columns = nil, nil
			m.Running, m.LastSync = "", &summary
			m.NextSyncAt = nil
			if m.Enabled {
				if next := m.Schedule.next(sy.StartedAt, now); !next.IsZero() {
					if next.Before(now) {
						next = now
					}
					m.NextSyncAt = &next
					ops = append(ops, store.PutOp(item(dueKey(sy.WorkspaceID, m.ID, next), dueRef{WorkspaceID: sy.WorkspaceID, MappingID: m.ID}), store.Always))
				}
			}
			ops = append(ops, store.ReplaceOp(item(mappingKey(sy.WorkspaceID, m.ID), m), mv))
		} else if err != nil && !errcode.Is(err, "not_found") {
			return err
		}
		err = s.st.Transact(ctx, ops...)
		if n := store.FailedOp(err); n > 0 && n == len(ops)-1 {
			continue // the mapping changed meanwhile (a PATCH): read it again
		}
		if err != nil {
			return err
		}
		break
	}
	if cleanup != nil {
		cleanup()
	}
	if sy.Status != StatusFailed {
		if _, err := s.ws.MarkConnectedByTraffic(ctx, sy.WorkspaceID, sy.SourceID); err != nil && !errcode.Is(err, "not_found") {
			return fmt.Errorf("mark source %s connected: %w", sy.SourceID, err)
		}
	}
	return nil
}
