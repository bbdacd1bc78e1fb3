package delivery

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// LanesOptions configure Lanes.
type LanesOptions struct {
	// Poll is the longest a lane sleeps before it looks at its queue again (1 s when 0); a
	// job queued by this process wakes its lane at once.
	Poll time.Duration
	// Pull is how many due jobs a lane takes at a time (MaxBatch when 0).
	Pull   int
	Logger *slog.Logger
}

// Lanes works a StoreQueue in the background: one goroutine per destination, so a slow or
// failing destination only ever holds up its own jobs. It is the local stack's stand-in for
// the SQS queue and the destinations function.
type Lanes struct {
	q    *StoreQueue
	e    *Engine
	opts LanesOptions
	log  *slog.Logger
	ctx  context.Context

	mu    sync.Mutex
	lanes map[string]chan struct{} // destination → its wake-up signal
	wg    sync.WaitGroup
}

// RunLanes starts working q's jobs through e, and the lanes of destinations queued before
// (by this process or one that stopped). stop ends them; a job being sent then stays queued.
func RunLanes(q *StoreQueue, e *Engine, opts LanesOptions) (stop func()) {
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Pull <= 0 {
		opts.Pull = MaxBatch
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Lanes{q: q, e: e, opts: opts, log: log, ctx: ctx, lanes: map[string]chan struct{}{}}
	q.mu.Lock()
	q.wake = l.wake
	q.mu.Unlock()
	e.mu.Lock()
	e.queueRetries = true
	e.mu.Unlock()
	l.wg.Go(func() {
		// Lanes of queues another process left behind (a restart after a crash).
		t := time.NewTicker(opts.Poll)
		defer t.Stop()
		for {
			ds, err := q.destinations(ctx)
			if err != nil && ctx.Err() == nil {
				log.Warn("delivery queues not listed", "err", err)
			}
			for _, d := range ds {
				l.wake(d[0], d[1])
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return func() {
		q.mu.Lock()
		q.wake = nil
		q.mu.Unlock()
		cancel()
		l.wg.Wait()
	}
}

// wake starts dst's lane, or tells it that jobs arrived.
func (l *Lanes) wake(ws, dst string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx.Err() != nil {
		return
	}
	ch, ok := l.lanes[dst]
	if !ok {
		ch = make(chan struct{}, 1)
		l.lanes[dst] = ch
		l.wg.Go(func() { l.run(dst, ch) })
	}
	select {
	case ch <- struct{}{}:
	default: // already signalled
	}
}

// run works dst's queue until the lanes stop.
func (l *Lanes) run(dst string, wake <-chan struct{}) {
	ctx := l.ctx
	for ctx.Err() == nil {
		wait := l.opts.Poll
		jobs, err := l.q.next(ctx, dst, l.opts.Pull)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Error("delivery queue not read", "destination_id", dst, "err", err)
			}
		} else {
			now := l.q.now()
			n := 0
			for n < len(jobs) && !jobs[n].due.After(now) {
				n++
			}
			if n > 0 {
				l.work(ctx, jobs[:n])
				continue
			}
			if len(jobs) > 0 {
				wait = min(wait, jobs[0].due.Sub(now)+time.Millisecond)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// work attempts due jobs and settles them. When the lanes stop during the attempt, nothing
// is settled: the jobs are sent again later (at least once).
func (l *Lanes) work(ctx context.Context, due []queued) {
	jobs := make([]Job, len(due))
	for i, q := range due {
		jobs[i] = q.job
	}
	ds := l.e.Attempt(ctx, jobs)
	if ctx.Err() != nil {
		return
	}
	if err := l.q.settle(ctx, due, ds); err != nil && ctx.Err() == nil {
		l.log.Error("delivery queue not updated; its jobs will be sent again", "destination_id", due[0].job.DestinationID, "err", err)
		time.Sleep(l.opts.Poll) // the store is failing: do not spin
	}
}
