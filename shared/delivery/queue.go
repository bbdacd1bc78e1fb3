package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/unifiedprofiles/up/shared/store"
)

// StoreQueue is the local stack's queue: a partition of the store per destination, its jobs
// sorted by when they are due, worked by Lanes. It is as durable as the store (bbolt: each
// Enqueue is committed and synced before it returns).
//
//	DQ#<dst>      J#<due, unix ms, 13 digits>#<messageId>   a job
//	DQINDEX       <workspace>#<dst>                         a destination that has a queue
type StoreQueue struct {
	st  store.Store
	now func() time.Time

	mu      sync.Mutex
	indexed map[string]bool // destinations whose index item this process wrote
	wake    func(ws, dst string)
}

// NewStoreQueue returns the queue kept in st.
func NewStoreQueue(st store.Store, now func() time.Time) *StoreQueue {
	if now == nil {
		now = time.Now
	}
	return &StoreQueue{st: st, now: now, indexed: map[string]bool{}}
}

const (
	queuePK      = "DQ#"
	queueIndexPK = "DQINDEX"
	jobPrefix    = "J#"
)

func jobKey(dst string, due time.Time, msgID string) store.Key {
	return store.Key{PK: queuePK + dst, SK: fmt.Sprintf("%s%013d#%s", jobPrefix, max(due.UnixMilli(), 0), msgID)}
}

// dueOf reads the due time out of a job's sort key.
func dueOf(sk string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(sk, jobPrefix)
	if !ok || len(rest) < 13 {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(rest[:13], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// Enqueue stores jobs, due now, in one commit where the store batches (bbolt).
func (q *StoreQueue) Enqueue(ctx context.Context, jobs []Job) error {
	if len(jobs) == 0 {
		return nil
	}
	now := q.now()
	// Each job is a write of its own: nothing needs two of them together, and single writes
	// are what DynamoDB does cheapest (a transaction costs double). bbolt still commits the
	// lot at once.
	var txs []store.Tx
	add := func(op store.Op) { txs = append(txs, store.Tx{Ops: []store.Op{op}}) }
	seen := map[store.Key]bool{}
	var newDests []string
	q.mu.Lock()
	for _, j := range jobs {
		d := j.WorkspaceID + "#" + j.DestinationID
		if !q.indexed[d] && !seen[store.Key{PK: queueIndexPK, SK: d}] {
			seen[store.Key{PK: queueIndexPK, SK: d}] = true
			newDests = append(newDests, d)
		}
	}
	q.mu.Unlock()
	for _, d := range newDests {
		add(store.PutOp(store.Item{Key: store.Key{PK: queueIndexPK, SK: d}, Data: []byte(`{}`)}, store.Always))
	}
	for _, j := range jobs {
		data, err := json.Marshal(j)
		if err != nil {
			return fmt.Errorf("encode the job of message %s: %w", j.MessageID, err)
		}
		k := jobKey(j.DestinationID, now, j.MessageID)
		if seen[k] { // the same message twice in one call: once is enough
			continue
		}
		seen[k] = true
		add(store.PutOp(store.Item{Key: k, Data: data}, store.Always))
	}
	errs, err := store.TransactBatch(ctx, q.st, txs)
	if err != nil {
		return fmt.Errorf("queue %d deliveries: %w", len(jobs), err)
	}
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("queue %d deliveries: %w", len(jobs), err)
		}
	}
	q.mu.Lock()
	for _, d := range newDests {
		q.indexed[d] = true
	}
	wake := q.wake
	q.mu.Unlock()
	if wake != nil {
		woken := map[string]bool{}
		for _, j := range jobs {
			if !woken[j.DestinationID] {
				woken[j.DestinationID] = true
				wake(j.WorkspaceID, j.DestinationID)
			}
		}
	}
	return nil
}

// queued is a job as read from the queue, with its key.
type queued struct {
	key store.Key
	due time.Time
	job Job
}

// next returns up to limit of dst's jobs in due order, and whether more may follow.
func (q *StoreQueue) next(ctx context.Context, dst string, limit int) ([]queued, error) {
	items, err := q.st.Query(ctx, queuePK+dst, store.Page{Prefix: jobPrefix, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]queued, 0, len(items))
	for _, it := range items {
		due, ok := dueOf(it.SK)
		var j Job
		if err := json.Unmarshal(it.Data, &j); !ok || err != nil {
			return nil, fmt.Errorf("the queued job %s does not decode: %v", it.Key, err)
		}
		out = append(out, queued{key: it.Key, due: due, job: j})
	}
	return out, nil
}

// settle moves jobs by their decisions: away when done; on Retry, to their next due time —
// the new item written before the old one is deleted, so a crash between the two leaves the
// job twice (sent twice: at least once), never not at all.
func (q *StoreQueue) settle(ctx context.Context, jobs []queued, ds []Decision) error {
	now := q.now()
	var txs []store.Tx
	// The retrying counts move with the jobs (in the same commit on bbolt).
	counts := map[string]int64{}
	for i, qj := range jobs {
		addRetryCounts(counts, qj.job, ds[i])
	}
	if len(jobs) > 0 {
		for _, op := range retryCountOps(jobs[0].job.DestinationID, counts) {
			txs = append(txs, store.Tx{Ops: []store.Op{op}})
		}
	}
	for i, qj := range jobs {
		var needs []int
		if ds[i].Outcome == Retry {
			j := qj.job
			j.Attempts++
			j.LastError = ""
			if ds[i].Err != nil {
				j.LastError = errorText(ds[i].Err)
			}
			data, err := json.Marshal(j)
			if err != nil {
				return err
			}
			k := jobKey(j.DestinationID, now.Add(ds[i].After), j.MessageID)
			txs = append(txs, store.Tx{Ops: []store.Op{store.PutOp(store.Item{Key: k, Data: data}, store.Always)}})
			if k == qj.key { // due at once (a zero wait): the item is updated in place
				continue
			}
			needs = []int{len(txs) - 1}
		}
		txs = append(txs, store.Tx{Ops: []store.Op{store.DeleteOp(qj.key, store.Always)}, Needs: needs})
	}
	errs, err := store.TransactBatch(ctx, q.st, txs)
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

// destinations lists the destinations that have a queue: workspace and destination ids.
func (q *StoreQueue) destinations(ctx context.Context) ([][2]string, error) {
	items, err := q.st.Query(ctx, queueIndexPK, store.Page{})
	if err != nil {
		return nil, err
	}
	out := make([][2]string, 0, len(items))
	for _, it := range items {
		if ws, dst, ok := strings.Cut(it.SK, "#"); ok {
			out = append(out, [2]string{ws, dst})
		}
	}
	return out, nil
}
