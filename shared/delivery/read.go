package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
)

// Records reads what the engine recorded, and replays dead letters. Its methods take a
// destination id the caller has already checked belongs to the workspace asking
// (workspace.Service.GetDestination).
type Records struct {
	st  store.Store
	q   Queue
	now func() time.Time
}

// NewRecords returns the records kept in st; replayed jobs go to q (nil: Replay answers
// delivery_not_configured).
func NewRecords(st store.Store, q Queue, now func() time.Time) *Records {
	if now == nil {
		now = time.Now
	}
	return &Records{st: st, q: q, now: now}
}

// Deliveries is a destination's delivery record (GET …/destinations/{id}/deliveries).
type Deliveries struct {
	Delivered       int64      `json:"delivered"`
	Failed          int64      `json:"failed"` // failed attempts, retried or not
	Retrying        int64      `json:"retrying"`
	DeadLettered    int64      `json:"dead_lettered"` // in the dead-letter list now
	LastError       *string    `json:"last_error"`
	LastErrorAt     *time.Time `json:"last_error_at"`
	LastDeliveredAt *time.Time `json:"last_delivered_at"`
}

// Deliveries reads the delivery record of destination dst.
func (r *Records) Deliveries(ctx context.Context, dst string) (Deliveries, error) {
	st := r.st
	items, err := st.Query(ctx, statsPK(dst), store.Page{})
	if err != nil {
		return Deliveries{}, fmt.Errorf("read the deliveries of %s: %w", dst, err)
	}
	var d Deliveries
	var started, ended, dead, replayedN int64
	for _, it := range items {
		switch it.SK {
		case counterDelivered:
			d.Delivered = it.Count
		case counterFailed:
			d.Failed = it.Count
		case counterDeadLettered:
			dead = it.Count
		case counterReplayed:
			replayedN = it.Count
		case counterRetryStarted:
			started = it.Count
		case counterRetryEnded:
			ended = it.Count
		case itemLastDelivered, itemLastError:
			var s stamp
			if err := json.Unmarshal(it.Data, &s); err != nil {
				return Deliveries{}, fmt.Errorf("read the deliveries of %s: %s: %w", dst, it.SK, err)
			}
			at := s.At.UTC()
			if it.SK == itemLastDelivered {
				d.LastDeliveredAt = &at
			} else {
				d.LastError, d.LastErrorAt = &s.Error, &at
			}
		}
	}
	// Counters only grow; these differences are what is in each state now (a crash between
	// an attempt and its record may skew them a little, never below zero).
	d.Retrying = max(started-ended, 0)
	d.DeadLettered = max(dead-replayedN, 0)
	return d, nil
}

// MaxListed is the most entries a debugger or dead-letter page holds.
const MaxListed = 100

// Attempts returns destination dst's latest attempts, newest first (at most limit, ≤ MaxListed).
func (r *Records) Attempts(ctx context.Context, dst string, limit int) ([]AttemptEntry, error) {
	st := r.st
	if limit <= 0 || limit > MaxListed {
		limit = MaxListed
	}
	items, err := st.Query(ctx, debugPK(dst), store.Page{Limit: limit, Desc: true})
	if err != nil {
		return nil, fmt.Errorf("read the attempts of %s: %w", dst, err)
	}
	out := make([]AttemptEntry, 0, len(items))
	for _, it := range items {
		var e AttemptEntry
		if err := json.Unmarshal(it.Data, &e); err != nil {
			return nil, fmt.Errorf("read the attempts of %s: %w", dst, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// DeadLetter is a message given up on, as listed.
type DeadLetter struct {
	MessageID  string          `json:"message_id"`
	Type       string          `json:"type"`
	SourceID   string          `json:"source_id"`
	AcceptedAt time.Time       `json:"accepted_at"`
	DeadAt     time.Time       `json:"dead_lettered_at"`
	Attempts   int             `json:"attempts"`
	LastError  string          `json:"last_error"`
	Payload    json.RawMessage `json:"payload"`
}

// DeadLetters returns up to limit (≤ MaxListed) of destination dst's dead letters, oldest
// message first, after the cursor (the last one's cursor, "" from the start), and the cursor
// of the next page ("" at the end).
func (r *Records) DeadLetters(ctx context.Context, dst, after string, limit int) ([]DeadLetter, string, error) {
	st := r.st
	if limit <= 0 || limit > MaxListed {
		limit = MaxListed
	}
	items, err := st.Query(ctx, deadPK(dst), store.Page{After: after, Limit: limit + 1})
	if err != nil {
		return nil, "", fmt.Errorf("read the dead letters of %s: %w", dst, err)
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = items[limit-1].SK
	}
	out := make([]DeadLetter, 0, len(items))
	for _, it := range items {
		var d deadLetter
		if err := json.Unmarshal(it.Data, &d); err != nil {
			return nil, "", fmt.Errorf("read the dead letters of %s: %w", dst, err)
		}
		out = append(out, DeadLetter{MessageID: d.MessageID, Type: d.Type, SourceID: d.SourceID, AcceptedAt: d.AcceptedAt.UTC(),
			DeadAt: d.DeadAt.UTC(), Attempts: d.Attempts, LastError: d.LastError, Payload: d.Payload})
	}
	return out, next, nil
}

// Replay puts destination dst's dead letters back on q, as new jobs (attempts from 0, a
// fresh retry window), and removes them from the list: up to 1,000 per call; the
// answer says how many were replayed and whether more remain. A dead letter leaves the list
// only after its job is queued, so a failure halfway loses nothing (a repeat may follow).
func (r *Records) Replay(ctx context.Context, dst string) (replayed int, more bool, err error) {
	if r.q == nil {
		return 0, false, errcode.New(errcode.Internal, "delivery_not_configured", "this deployment has no delivery queue to replay dead letters onto")
	}
	st, q, now := r.st, r.q, r.now().UTC()
	after := ""
	for range 10 {
		items, err := st.Query(ctx, deadPK(dst), store.Page{After: after, Limit: MaxListed})
		if err != nil {
			return replayed, true, fmt.Errorf("read the dead letters of %s: %w", dst, err)
		}
		if len(items) == 0 {
			return replayed, false, nil
		}
		jobs := make([]Job, len(items))
		ops := make([]store.Op, len(items))
		for i, it := range items {
			var d deadLetter
			if err := json.Unmarshal(it.Data, &d); err != nil {
				return replayed, true, fmt.Errorf("read the dead letters of %s: %w", dst, err)
			}
			j := d.Job
			j.Attempts, j.LastError, j.AcceptedAt = 0, "", now
			jobs[i] = j
			ops[i] = store.DeleteOp(it.Key, store.Always)
		}
		if err := q.Enqueue(ctx, jobs); err != nil {
			return replayed, true, fmt.Errorf("queue the dead letters of %s again: %w", dst, err)
		}
		ops = append(ops, store.AddOp(store.Key{PK: statsPK(dst), SK: counterReplayed}, int64(len(items)), math.MaxInt64))
		if err := writeEach(ctx, st, ops); err != nil {
			return replayed, true, fmt.Errorf("remove the replayed dead letters of %s: %w", dst, err)
		}
		replayed += len(items)
		after = items[len(items)-1].SK
	}
	items, err := st.Query(ctx, deadPK(dst), store.Page{Limit: 1})
	return replayed, err == nil && len(items) > 0, err
}
