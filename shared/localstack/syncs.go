package localstack

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/unifiedprofiles/up/shared/salesforce"
	"github.com/unifiedprofiles/up/shared/warehouse"
)

// Reverse ETL syncs on the local stack, as in AWS (ARCHITECTURE.md section 3, "Syncs"): a
// dispatcher on a ticker where EventBridge calls the sync-dispatch function every minute, and
// an in-process queue with one worker where SQS feeds the sync worker.

// syncDispatchEvery is how often the local stack starts due syncs and restarts stalled ones.
const syncDispatchEvery = time.Second

// syncQueueSize bounds the tasks waiting for the worker.
const syncQueueSize = 1024

// syncQueue is the local stack's SQS queue of sync tasks.
type syncQueue chan warehouse.Task

func newSyncQueue() syncQueue { return make(syncQueue, syncQueueSize) }

// Send never blocks (it runs inside API requests and the worker itself): a full queue
// refuses the task, and the dispatcher sends it again when the sync's lease runs out.
func (q syncQueue) Send(ctx context.Context, t warehouse.Task) error {
	select {
	case q <- t:
		return nil
	default:
		return errors.New("the local sync queue is full; the dispatcher sends the task again when its lease runs out")
	}
}

// runSyncs works on q's tasks and dispatches due syncs in the background until stop is
// called. The queue is never closed: a Send after stop only fills its buffer.
func runSyncs(svc *warehouse.Service, q syncQueue, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { // the worker: one task at a time, as one Lambda invocation takes one message
		for {
			select {
			case <-ctx.Done():
				return
			case t := <-q:
				// Only ids are logged: an error never carries credentials, but a task's
				// records are customer data and stay out of the log.
				if err := svc.Work(ctx, t); err != nil && ctx.Err() == nil {
					log.Error("reverse ETL task failed; the sync resumes when its lease runs out",
						"workspace_id", t.WorkspaceID, "mapping_id", t.MappingID, "sync_id", t.SyncID, "page", t.Page, "err", err)
				}
			}
		}
	})
	stopDispatch := every(syncDispatchEvery, nil, svc.Dispatch, log, "reverse ETL dispatch")
	return func() { stopDispatch(); cancel(); wg.Wait() }
}

// runSalesforceSyncs runs due Salesforce syncs in the background until stop is called: the
// ticker stands for the EventBridge schedule, and each due source runs in-process, one at a
// time (in AWS the sync-dispatcher would queue one task per source for the sync worker).
func runSalesforceSyncs(r *salesforce.Runner, now func() time.Time, log *slog.Logger) (stop func()) {
	return every(syncDispatchEvery, nil, func(ctx context.Context) error { return r.Dispatch(ctx, now()) }, log, "Salesforce sync dispatch")
}
