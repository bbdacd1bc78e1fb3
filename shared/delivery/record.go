package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/unifiedprofiles/up/shared/store"
)

// What the engine keeps per destination, in partitions of its own (ACCESS_PATTERNS.md):
//
//	DSTAT#<dst>  delivered, failed, dead_lettered, replayed, retries_started, retries_ended   counters
//	             last_delivered, last_error                                          items
//	DDBG#<dst>   one item per attempt, newest last, kept DebuggerTTL
//	DDLQ#<dst>   the dead letters, kept DeadLetterTTL
//
// Counters only grow (a store Add may not go below zero, and a counter that only grows
// cannot): "retrying" is retries_started − retries_ended, the dead letters listed now are
// dead_lettered − replayed.
func statsPK(dst string) string { return "DSTAT#" + dst }
func debugPK(dst string) string { return "DDBG#" + dst }
func deadPK(dst string) string  { return "DDLQ#" + dst }

const (
	counterDelivered     = "delivered"
	counterFailed        = "failed"
	counterDeadLettered  = "dead_lettered"
	counterRetryStarted  = "retries_started"
	counterRetryEnded    = "retries_ended"
	counterReplayed      = "replayed"
	itemLastDelivered    = "last_delivered"
	itemLastError        = "last_error"
	maxDebugMessages     = 20
	maxRecordedErrorText = 500
)

// DebuggerTTL and DeadLetterTTL bound how long attempts and dead letters are kept.
const (
	DebuggerTTL   = 7 * 24 * time.Hour
	DeadLetterTTL = 14 * 24 * time.Hour
)

// Attempt is one entry of a destination's debugger: a send of up to maxDebugMessages
// messages (a larger batch shows its first ones and its size).
type AttemptEntry struct {
	At         time.Time      `json:"at"`
	DurationMS int64          `json:"duration_ms"`
	Messages   []AttemptEvent `json:"messages"`
	Total      int            `json:"total"`
}

// AttemptEvent is one message of an attempt and its decision.
type AttemptEvent struct {
	MessageID string     `json:"message_id"`
	Type      string     `json:"type"`
	SourceID  string     `json:"source_id"`
	Attempt   int        `json:"attempt"`
	Status    string     `json:"status"` // delivered, retrying, dead_lettered, dropped
	Error     string     `json:"error,omitempty"`
	RetryAt   *time.Time `json:"retry_at,omitempty"`
}

type stamp struct {
	At    time.Time `json:"at"`
	Error string    `json:"error,omitempty"`
}

// errorText is an error as recorded: bounded (senders keep secrets out of their errors).
func errorText(err error) string {
	s := err.Error()
	if len(s) > maxRecordedErrorText {
		s = s[:maxRecordedErrorText] + "…"
	}
	return s
}

// record writes what an attempt did. Dead letters are written first and must succeed (the
// caller forgets those jobs); the rest is the record of the attempt, and a failure to write
// it is logged, never a reason to send again.
func (e *Engine) record(ctx context.Context, t Target, jobs []Job, out []Decision, start time.Time) {
	now := e.now()
	dst := jobs[0].DestinationID
	var dead []store.Op
	counts := map[string]int64{}
	var lastErr error
	delivered := false
	for i, j := range jobs {
		d := &out[i]
		if !e.queueCountsRetries() {
			addRetryCounts(counts, j, *d)
		}
		switch d.Outcome {
		case Delivered:
			counts[counterDelivered]++
			delivered = true
		case Retry:
			counts[counterFailed]++
			lastErr = d.Err
		case DeadLettered:
			counts[counterFailed]++
			counts[counterDeadLettered]++
			lastErr = d.Err
			dj := j
			dj.Attempts++
			dj.LastError = errorText(d.Err)
			data, err := json.Marshal(deadLetter{Job: dj, DeadAt: now})
			if err != nil { // a Job always encodes
				panic(err)
			}
			dead = append(dead, store.PutOp(store.Item{Key: deadLetterKey(j), Data: data, ExpiresAt: now.Add(DeadLetterTTL).Unix()}, store.Always))
		}
	}
	if err := writeEach(ctx, e.st, dead); err != nil {
		// Not all written: these jobs must stay queued and come back (one written already is
		// written again, under the same key).
		e.log.Error("dead letters not written; the messages will be tried again", "destination_id", dst, "err", err)
		for i := range out {
			if out[i].Outcome == DeadLettered {
				out[i] = Decision{Outcome: Retry, After: e.backoff.Delay(jobs[i].Attempts+1, e.rand()), Err: out[i].Err}
			}
		}
		return
	}
	ops := retryCountOps(dst, counts)
	if delivered {
		data, _ := json.Marshal(stamp{At: now})
		ops = append(ops, store.PutOp(store.Item{Key: store.Key{PK: statsPK(dst), SK: itemLastDelivered}, Data: data}, store.Always))
	}
	if lastErr != nil {
		data, _ := json.Marshal(stamp{At: now, Error: errorText(lastErr)})
		ops = append(ops, store.PutOp(store.Item{Key: store.Key{PK: statsPK(dst), SK: itemLastError}, Data: data}, store.Always))
	}
	ops = append(ops, e.debugOp(jobs, out, start, now))
	if err := writeEach(ctx, e.st, ops); err != nil {
		e.log.Warn("delivery record not written", "destination_id", dst, "err", err)
	}
}

// writeEach applies ops, each on its own (single writes: DynamoDB's cheapest, no transaction
// needed between them), in one commit where the store batches (bbolt).
func writeEach(ctx context.Context, st store.Store, ops []store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	txs := make([]store.Tx, len(ops))
	for i, op := range ops {
		txs[i] = store.Tx{Ops: []store.Op{op}}
	}
	errs, err := store.TransactBatch(ctx, st, txs)
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

// addRetryCounts counts a job entering or leaving the retrying state by its decision d.
func addRetryCounts(counts map[string]int64, j Job, d Decision) {
	if d.Outcome == Retry && j.Attempts == 0 {
		counts[counterRetryStarted]++
	}
	if d.Outcome != Retry && j.Attempts > 0 {
		counts[counterRetryEnded]++
	}
}

// retryCountOps are the counter adds of counts on destination dst.
func retryCountOps(dst string, counts map[string]int64) []store.Op {
	var ops []store.Op
	for name, n := range counts {
		ops = append(ops, store.AddOp(store.Key{PK: statsPK(dst), SK: name}, n, math.MaxInt64))
	}
	return ops
}

// debugOp is the debugger entry of an attempt.
func (e *Engine) debugOp(jobs []Job, out []Decision, start, now time.Time) store.Op {
	entry := AttemptEntry{At: start, DurationMS: now.Sub(start).Milliseconds(), Total: len(jobs)}
	for i, j := range jobs[:min(len(jobs), maxDebugMessages)] {
		ev := AttemptEvent{MessageID: j.MessageID, Type: j.Type, SourceID: j.SourceID, Attempt: j.Attempts + 1, Status: out[i].Outcome.String()}
		if out[i].Err != nil {
			ev.Error = errorText(out[i].Err)
		}
		if out[i].Outcome == Retry {
			at := now.Add(out[i].After).UTC()
			ev.RetryAt = &at
		}
		entry.Messages = append(entry.Messages, ev)
	}
	data, _ := json.Marshal(entry)
	e.mu.Lock()
	e.seq++
	seq := e.seq
	e.mu.Unlock()
	k := store.Key{PK: debugPK(jobs[0].DestinationID), SK: fmt.Sprintf("%020d#%06d", start.UnixNano(), seq%1_000_000)}
	return store.PutOp(store.Item{Key: k, Data: data, ExpiresAt: now.Add(DebuggerTTL).Unix()}, store.Always)
}

// deadLetter is a dead-lettered job as stored.
type deadLetter struct {
	Job
	DeadAt time.Time `json:"dead_at"`
}

// deadLetterKey is one key per message and destination, so writing it twice (an attempt
// redone after a crash) keeps one dead letter.
func deadLetterKey(j Job) store.Key {
	return store.Key{PK: deadPK(j.DestinationID), SK: fmt.Sprintf("%020d#%s", j.AcceptedAt.UnixNano(), j.MessageID)}
}
