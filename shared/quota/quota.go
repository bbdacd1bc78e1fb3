// Package quota enforces a per-key budget of so many units per second (requests of a
// workspace, of a space) across every process that serves the key: all Lambda instances,
// or the local stack. The budget of each second is a counter item in the store, which
// processes lease in chunks, so the store sees one write per chunk rather than one per
// request.
//
// Cost, on DynamoDB: a chunk is Limit/50 units, but at least 10 (or a tenth of a smaller
// limit), so a key at its limit costs at most about 50 lease writes per second, on one item
// (one partition, far under its 1,000 WCU/s) — at $1.25 per million writes about $0.16 per
// hour for a key held at its limit all hour, and nothing for an idle one — and a request
// waits for a lease write at most once in 10. What a process leased and did not use in a
// second is lost with that second: with n busy instances at most n chunks go unused, so the
// limit never lets more through, and a little less only when many instances share a
// saturated key.
package quota

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/unifiedprofiles/up/shared/store"
)

// chunksPerSecond is how many leases a key's full budget is cut into.
const chunksPerSecond = 50

// keep is how long a second's counter item lives before the store's TTL removes it.
const keep = time.Minute

// Limiter hands out a per-key budget of Limit units per second, shared through st.
type Limiter struct {
	st    store.Store
	name  string // what is limited, in the counter's key: "tracking", "profiles"
	limit int64
	chunk int64
	now   func() time.Time

	mu     sync.Mutex
	leases map[string]*lease
}

// lease is what this process holds of one key's budget, for one second at a time.
type lease struct {
	mu        sync.Mutex // held across a lease write: one at a time per key and process
	second    int64
	left      int64
	exhausted bool // the second's budget is spent: no lease until the next one
}

// New returns a limiter of limit units per second per key (at least 1); now is the clock
// (time.Now when nil).
func New(st store.Store, name string, limit int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := int64(max(limit, 1))
	return &Limiter{st: st, name: name, limit: l, chunk: max(l/chunksPerSecond, min(l/10, 10), 1), now: now, leases: map[string]*lease{}}
}

// Limit is the units per second per key.
func (l *Limiter) Limit() int { return int(l.limit) }

// Take spends n units of key's budget for the current second. When the budget is spent it
// spends nothing and returns false with the time until the next second. An error is the
// store's: the caller decides whether to fail open or closed.
func (l *Limiter) Take(ctx context.Context, key string, n int64) (bool, time.Duration, error) {
	now := l.now()
	sec := now.Unix()
	untilNext := time.Unix(sec+1, 0).Sub(now)
	if n > l.limit {
		return false, untilNext, nil
	}
	l.mu.Lock()
	ls := l.leases[key]
	if ls == nil {
		if len(l.leases) > 10_000 {
			l.forgetBefore(sec)
		}
		ls = &lease{}
		l.leases[key] = ls
	}
	l.mu.Unlock()

	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.second != sec {
		ls.second, ls.left, ls.exhausted = sec, 0, false
	}
	for ls.left < n {
		if ls.exhausted {
			return false, untilNext, nil
		}
		// Lease a chunk; when less than a chunk is left, lease just what this take needs.
		want := max(l.chunk, n-ls.left)
		granted, err := l.lease(ctx, key, sec, want)
		if err != nil {
			return false, 0, err
		}
		if granted == 0 && want > n-ls.left {
			granted, err = l.lease(ctx, key, sec, n-ls.left)
			if err != nil {
				return false, 0, err
			}
		}
		if granted == 0 {
			ls.exhausted = true
			continue
		}
		ls.left += granted
	}
	ls.left -= n
	return true, 0, nil
}

// lease adds want to the second's counter if that keeps it within the limit, and returns
// what was granted (want or 0).
func (l *Limiter) lease(ctx context.Context, key string, sec, want int64) (int64, error) {
	op := store.AddOp(store.Key{PK: "QUOTA#" + l.name + "#" + key, SK: strconv.FormatInt(sec, 10)}, want, l.limit)
	op.Item.ExpiresAt = sec + int64(keep/time.Second)
	switch err := l.st.Transact(ctx, op); {
	case store.FailedOp(err) == 0:
		return 0, nil // over the limit
	case err != nil:
		return 0, err
	}
	return want, nil
}

// forgetBefore drops the leases of past seconds (they can no longer be spent); l.mu is held.
func (l *Limiter) forgetBefore(sec int64) {
	for k, ls := range l.leases {
		if ls.mu.TryLock() {
			if ls.second < sec {
				delete(l.leases, k)
			}
			ls.mu.Unlock()
		}
	}
}
