package httpapi

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	t.Parallel()
	type step struct {
		advance time.Duration // clock moves first
		key     string
		n       int           // requests
		allowed int           // how many of them pass
		wait    time.Duration // the wait reported by the last refusal (0: not checked)
	}
	tests := []struct {
		name          string
		rate, burst   int
		steps         []step
		wantRetryLast int // Retry-After of the last refusal
	}{
		{"burst then refusals", 100, 100, []step{
			{key: "sp_a", n: 150, allowed: 100, wait: 10 * time.Millisecond},
		}, 1},
		{"refill at the rate", 100, 100, []step{
			{key: "sp_a", n: 100, allowed: 100},
			{advance: 50 * time.Millisecond, key: "sp_a", n: 10, allowed: 5, wait: 10 * time.Millisecond},
			{advance: 5 * time.Millisecond, key: "sp_a", n: 1, allowed: 0, wait: 5 * time.Millisecond},
		}, 1},
		{"refill stops at the burst", 100, 100, []step{
			{key: "sp_a", n: 1, allowed: 1},
			{advance: time.Hour, key: "sp_a", n: 101, allowed: 100},
		}, 1},
		{"spaces are independent", 2, 2, []step{
			{key: "sp_a", n: 3, allowed: 2, wait: 500 * time.Millisecond},
			{key: "sp_b", n: 3, allowed: 2},
		}, 1},
		{"slow rate asks for a longer wait", 1, 3, []step{
			{key: "sp_a", n: 4, allowed: 3, wait: time.Second},
			{advance: 250 * time.Millisecond, key: "sp_a", n: 1, allowed: 0, wait: 750 * time.Millisecond},
		}, 1},
		{"a clock going back refills nothing", 10, 10, []step{
			{key: "sp_a", n: 10, allowed: 10},
			{advance: -time.Minute, key: "sp_a", n: 1, allowed: 0},
			{advance: 100 * time.Millisecond, key: "sp_a", n: 2, allowed: 1, wait: 100 * time.Millisecond},
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := &paClock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
			l := newRateLimiter(tt.rate, tt.burst, clock.Now)
			var lastWait time.Duration
			for i, s := range tt.steps {
				clock.Add(s.advance)
				allowed := 0
				var wait time.Duration
				for range s.n {
					ok, w := l.take(s.key)
					if ok {
						allowed++
						continue
					}
					if w <= 0 {
						t.Fatalf("step %d: refused with wait %v", i, w)
					}
					wait, lastWait = w, w
				}
				if allowed != s.allowed {
					t.Errorf("step %d: %d of %d allowed, want %d", i, allowed, s.n, s.allowed)
				}
				if s.wait != 0 && (wait < s.wait-time.Microsecond || wait > s.wait+time.Microsecond) {
					t.Errorf("step %d: wait %v, want %v", i, wait, s.wait)
				}
			}
			if got := retryAfterSeconds(lastWait); got != tt.wantRetryLast {
				t.Errorf("Retry-After %d, want %d (wait %v)", got, tt.wantRetryLast, lastWait)
			}
		})
	}
}

// The map of buckets holds only recently active spaces, however many come and go.
func TestRateLimiterForgetsIdleSpaces(t *testing.T) {
	t.Parallel()
	clock := &paClock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	l := newRateLimiter(100, 100, clock.Now)
	most := 0
	for minute := range 30 {
		for i := range 1000 {
			l.take(fmt.Sprintf("sp_%d_%d", minute, i))
		}
		most = max(most, l.size())
		clock.Add(time.Minute)
	}
	l.take("sp_last")
	if most > 2000 {
		t.Errorf("the limiter held %d buckets for 1,000 new spaces a minute", most)
	}
	if n := l.size(); n != 1 {
		t.Errorf("after a quiet minute %d buckets are held, want 1", n)
	}
	// An emptied bucket is remembered until it has refilled: forgetting it earlier would
	// hand out a fresh burst.
	clock.Add(time.Minute - 500*time.Millisecond)
	for range 100 {
		l.take("sp_busy")
	}
	clock.Add(500 * time.Millisecond) // the next sweep runs now, half a second after
	allowed := 0
	for range 100 {
		if ok, _ := l.take("sp_busy"); ok {
			allowed++
		}
	}
	if allowed != 50 || l.size() != 1 {
		t.Errorf("half a second after emptying: %d allowed (want 50), %d buckets held (want 1)", allowed, l.size())
	}
}

func TestRateLimiterConcurrent(t *testing.T) {
	t.Parallel()
	clock := &paClock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	l := newRateLimiter(100, 100, clock.Now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if ok, _ := l.take("sp_a"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != 100 {
		t.Errorf("%d of 400 concurrent requests allowed, want exactly the burst of 100", allowed)
	}
}
