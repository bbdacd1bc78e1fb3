package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Destinations is what the engine needs of the workspace service (trusted code: no principal).
type Destinations interface {
	Destination(ctx context.Context, wsID, id string) (workspace.Destination, error)
	DestinationSettings(ctx context.Context, wsID, id string) (map[string]any, error)
}

// Backoff is the wait before retry n (n ≥ 1): Base·2^(n-1), at most Max, with "equal
// jitter" (half fixed, half random) so that jobs failing together do not retry together.
type Backoff struct {
	Base time.Duration // DefaultBackoff.Base when 0
	Max  time.Duration // DefaultBackoff.Max when 0
}

// DefaultBackoff: 1 s, 2 s, 4 s … up to 10 minutes; about 30 attempts in RetryFor.
var DefaultBackoff = Backoff{Base: time.Second, Max: 10 * time.Minute}

// Delay returns the wait before retry n, given r in [0, 1).
func (b Backoff) Delay(n int, r float64) time.Duration {
	base, ceiling := b.Base, b.Max
	if base <= 0 {
		base = DefaultBackoff.Base
	}
	if ceiling <= 0 {
		ceiling = DefaultBackoff.Max
	}
	d := base
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return d/2 + time.Duration(r*float64(d/2))
}

// EngineOptions configure an Engine.
type EngineOptions struct {
	Now     func() time.Time // time.Now when nil
	Rand    func() float64   // rand.Float64 when nil
	Backoff Backoff
	// RetryFor is how long after acceptance a job is retried (RetryFor when 0).
	RetryFor time.Duration
	// SendTimeout bounds one Send (30 s when 0): a slow destination holds only its own lane.
	SendTimeout time.Duration
	// ConfigTTL is how long a destination's configuration is kept between reads (30 s when
	// 0): a disabled or deleted destination stops receiving within it.
	ConfigTTL time.Duration
	Logger    *slog.Logger
}

// Engine attempts deliveries and keeps their record (counts, last error, debugger, dead
// letters) in the store. It holds no queue: the caller moves jobs by the decisions.
type Engine struct {
	st      store.Store
	dests   Destinations
	senders map[string]Sender
	now     func() time.Time
	rand    func() float64
	backoff Backoff
	retry   time.Duration
	timeout time.Duration
	ttl     time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	targets map[string]cachedTarget // workspace#destination → its configuration
	seq     uint64
	// queueRetries: the queue counts jobs entering and leaving retries, with its own moves
	// (StoreQueue.settle, one commit on bbolt), so a crash between an attempt's record and
	// the move leaves no job counted as retrying for ever. With SQS the engine counts them:
	// a job's attempts come from the queue's receive count, so a redone attempt is seen.
	queueRetries bool
}

// queueCountsRetries reports whether the queue, not the engine, counts retries.
func (e *Engine) queueCountsRetries() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.queueRetries
}

type cachedTarget struct {
	t   Target
	err error
	at  time.Time
}

// NewEngine returns an Engine sending through senders, by destination type.
func NewEngine(st store.Store, dests Destinations, senders map[string]Sender, opts EngineOptions) *Engine {
	e := &Engine{st: st, dests: dests, senders: senders, now: opts.Now, rand: opts.Rand, backoff: opts.Backoff,
		retry: opts.RetryFor, timeout: opts.SendTimeout, ttl: opts.ConfigTTL, log: opts.Logger, targets: map[string]cachedTarget{}}
	if e.now == nil {
		e.now = time.Now
	}
	if e.rand == nil {
		e.rand = rand.Float64
	}
	if e.retry <= 0 {
		e.retry = RetryFor
	}
	if e.timeout <= 0 {
		e.timeout = 30 * time.Second
	}
	if e.ttl <= 0 {
		e.ttl = 30 * time.Second
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	return e
}

// target returns the destination's configuration with its settings opened, cached for ttl.
// A destination that no longer exists gives an error of code not_found.
func (e *Engine) target(ctx context.Context, ws, id string) (Target, error) {
	k := ws + "#" + id
	now := e.now()
	e.mu.Lock()
	c, ok := e.targets[k]
	e.mu.Unlock()
	if ok && now.Sub(c.at) < e.ttl {
		return c.t, c.err
	}
	d, err := e.dests.Destination(ctx, ws, id)
	var t Target
	if err == nil {
		t.Destination = d
		t.Settings, err = e.dests.DestinationSettings(ctx, ws, id)
	}
	if err != nil && !isNotFound(err) {
		return Target{}, err // a store failure: not cached, the next attempt reads again
	}
	e.mu.Lock()
	e.targets[k] = cachedTarget{t: t, err: err, at: now}
	e.mu.Unlock()
	return t, err
}

func isNotFound(err error) bool {
	e := errcode.As(err)
	return e != nil && e.Kind == errcode.NotFound
}

// BatchSize is how many of the destination's jobs one Send carries: the webhook's
// batch_size (1 unless set), 100 for the Segment destinations, MaxBatch for storage.
func BatchSize(t Target) int {
	switch t.Type {
	case TypeWebhook:
		if n, ok := t.Settings["batch_size"].(float64); ok && n >= 1 {
			return min(int(n), 100)
		}
		return 1
	case TypeS3:
		return MaxBatch
	}
	return 100
}

// maxParallelSends bounds the sends of one Attempt in flight at once (a webhook that takes
// one message per request is sent to in parallel, as Segment does).
const maxParallelSends = 8

// Attempt delivers jobs, all of one destination (as Job.DestinationID says), and returns
// each job's decision, in order. It records the attempt: the destination's counts, its last
// error or delivery, a debugger entry, and the dead-lettered jobs. It never returns before
// the dead letters are written, so a caller may forget a job once it has its decision.
// A failure to reach the store itself makes every job Retry.
func (e *Engine) Attempt(ctx context.Context, jobs []Job) []Decision {
	out := make([]Decision, len(jobs))
	if len(jobs) == 0 {
		return out
	}
	ws, id := jobs[0].WorkspaceID, jobs[0].DestinationID
	start := e.now()
	t, err := e.target(ctx, ws, id)
	switch {
	case isNotFound(err):
		for i := range out {
			out[i] = Decision{Outcome: Dropped, Err: err}
		}
		return out
	case err != nil:
		for i, j := range jobs {
			out[i] = e.failed(j, err, start)
		}
		e.record(ctx, t, jobs, out, start)
		return out
	}
	// Jobs of a disabled destination, or from a source it no longer takes, are dropped.
	var send []int
	for i, j := range jobs {
		if !t.Enabled || (len(t.SourceIDs) > 0 && !slices.Contains(t.SourceIDs, j.SourceID)) {
			out[i] = Decision{Outcome: Dropped, Err: errors.New("the destination is disabled or no longer takes this source")}
			continue
		}
		send = append(send, i)
	}
	sender := e.senders[t.Type]
	size := BatchSize(t)
	// Batches of one source each, in order.
	var batches [][]int
	bySource := map[string]int{} // source → its open batch
	for _, i := range send {
		b, ok := bySource[jobs[i].SourceID]
		if !ok || len(batches[b]) == size {
			batches = append(batches, nil)
			b = len(batches) - 1
			bySource[jobs[i].SourceID] = b
		}
		batches[b] = append(batches[b], i)
	}
	sem := make(chan struct{}, maxParallelSends)
	var wg sync.WaitGroup
	for _, b := range batches {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			batch := make([]Job, len(b))
			for k, i := range b {
				batch[k] = jobs[i]
			}
			var err error
			if sender == nil {
				err = Permanent(fmt.Errorf("this deployment cannot deliver to destinations of type %q", t.Type))
			} else {
				sctx, cancel := context.WithTimeout(ctx, e.timeout)
				err = sender.Send(sctx, t, batch)
				cancel()
			}
			var je *JobErrors
			if errors.As(err, &je) && len(je.Errs) == len(batch) {
				for k, i := range b {
					out[i] = e.decide(jobs[i], je.Errs[k])
				}
				return
			}
			for _, i := range b {
				out[i] = e.decide(jobs[i], err)
			}
		})
	}
	wg.Wait()
	e.record(ctx, t, jobs, out, start)
	return out
}

// decide turns one job's send error into its decision.
func (e *Engine) decide(j Job, err error) Decision {
	if err == nil {
		return Decision{Outcome: Delivered}
	}
	return e.failed(j, err, e.now())
}

// failed is the decision for a job whose attempt failed with err: retry after the backoff,
// unless err is permanent or the retry window has passed.
func (e *Engine) failed(j Job, err error, now time.Time) Decision {
	deadline := j.AcceptedAt.Add(e.retry)
	if IsPermanent(err) || !now.Before(deadline) {
		return Decision{Outcome: DeadLettered, Err: err}
	}
	wait := e.backoff.Delay(j.Attempts+1, e.rand())
	if now.Add(wait).After(deadline) {
		wait = deadline.Sub(now) // the last try falls on the deadline
	}
	return Decision{Outcome: Retry, After: wait, Err: err}
}
