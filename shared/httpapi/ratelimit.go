package httpapi

import (
	"math"
	"sync"
	"time"
)

// rateLimiter is an in-process token bucket per key (a space, for the Profile API). Each
// bucket holds up to burst tokens and refills at rate tokens per second; a request spends
// one. It is per process: each Lambda instance (or the local stack) counts on its own.
type rateLimiter struct {
	rate       float64 // tokens per second
	burst      float64
	now        func() time.Time
	sweepEvery time.Duration

	mu        sync.Mutex
	buckets   map[string]*bucket
	nextSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// newRateLimiter returns a limiter of perSecond requests per second per key with a burst
// of burst; now is the clock (time.Now when nil).
func newRateLimiter(perSecond, burst int, now func() time.Time) *rateLimiter {
	if now == nil {
		now = time.Now
	}
	return &rateLimiter{
		rate: float64(max(perSecond, 1)), burst: float64(max(burst, 1)), now: now,
		sweepEvery: time.Minute, buckets: map[string]*bucket{},
	}
}

// perSecondLimiter is a limiter of perSecond requests per second per key (fallback when
// perSecond ≤ 0) with a burst of one second's worth: how each API configures its limit.
func perSecondLimiter(perSecond, fallback int, now func() time.Time) *rateLimiter {
	if perSecond <= 0 {
		perSecond = fallback
	}
	return newRateLimiter(perSecond, perSecond, now)
}

// take spends one token of key's bucket. When the bucket is empty it spends nothing and
// returns false with the time until a token is back.
func (l *rateLimiter) take(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	} else {
		// A clock that went back refills nothing, and refilling resumes from its new reading.
		if elapsed := now.Sub(b.at); elapsed > 0 {
			b.tokens = math.Min(l.burst, b.tokens+elapsed.Seconds()*l.rate)
		}
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration(math.Ceil((1 - b.tokens) / l.rate * float64(time.Second)))
}

// sweep forgets the buckets that have refilled completely, at most once per sweepEvery. A
// full bucket behaves exactly like a new one, so forgetting it changes no answer; the map
// holds only the keys seen in the last sweep interval, however many keys come and go.
func (l *rateLimiter) sweep(now time.Time) {
	if now.Before(l.nextSweep) {
		return
	}
	l.nextSweep = now.Add(l.sweepEvery)
	refill := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.at) >= refill {
			delete(l.buckets, k)
		}
	}
}

// size is the number of buckets held (for tests).
func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// retryAfterSeconds is wait as a Retry-After value: whole seconds, at least 1.
func retryAfterSeconds(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}
