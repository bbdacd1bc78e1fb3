// Package deliverytest is a webhook endpoint for tests: it checks each request's
// X-Signature (hex HMAC-SHA1 of the body keyed with the destination's secret) and counts
// the messageIds of the requests it accepts, one message or {"batch":[…]} per request.
package deliverytest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Options are a Receiver's failures; the zero value answers every signed request 200.
type Options struct {
	// Fail decides, per signed request (with its messageIds), whether to answer FailStatus
	// instead of 200. It is called under the receiver's lock.
	Fail func(ids []string) bool
	// FailStatus is what a failed request is answered; 0 is 500.
	FailStatus int
	// FailDelay is waited before answering a failed request, without holding up others.
	FailDelay time.Duration
}

// Receiver is a webhook endpoint. A request whose signature does not verify is answered
// 400 and counted in BadSig; one that Fail picks is answered FailStatus and counted in
// Failed; any other is answered 200 and its messageIds counted.
type Receiver struct {
	URL string // where it listens

	srv    *httptest.Server
	secret string
	opts   Options

	mu       sync.Mutex
	requests int
	failed   int
	badSig   int
	count    map[string]int
	first    map[string]time.Time // when each messageId first arrived
	inflight int                  // requests being answered
	last     time.Time            // when the last request came
	changed  chan struct{}        // closed, and replaced, when a new messageId arrives
}

// New starts a receiver for a destination with secret; it is closed when the test ends.
func New(t testing.TB, secret string, opts Options) *Receiver {
	if opts.FailStatus == 0 {
		opts.FailStatus = http.StatusInternalServerError
	}
	r := &Receiver{secret: secret, opts: opts, count: map[string]int{}, first: map[string]time.Time{}, changed: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL
	t.Cleanup(r.srv.Close)
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.inflight++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inflight--
		r.mu.Unlock()
	}()
	body, _ := io.ReadAll(req.Body)
	mac := hmac.New(sha1.New, []byte(r.secret))
	mac.Write(body)
	signed := hmac.Equal([]byte(req.Header.Get("X-Signature")), []byte(hex.EncodeToString(mac.Sum(nil))))
	type msg struct {
		MessageID string `json:"messageId"`
	}
	var batch struct {
		Batch []msg `json:"batch"`
	}
	var ids []string
	if json.Unmarshal(body, &batch); batch.Batch != nil {
		for _, m := range batch.Batch {
			ids = append(ids, m.MessageID)
		}
	} else {
		var one msg
		json.Unmarshal(body, &one)
		ids = []string{one.MessageID}
	}
	if status := r.take(signed, ids); status != http.StatusOK {
		if status != http.StatusBadRequest {
			time.Sleep(r.opts.FailDelay)
		}
		w.WriteHeader(status)
	}
}

// take records one request and returns the status to answer.
func (r *Receiver) take(signed bool, ids []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.requests++
	r.last = now
	if !signed {
		r.badSig++
		return http.StatusBadRequest
	}
	if r.opts.Fail != nil && r.opts.Fail(ids) {
		r.failed++
		return r.opts.FailStatus
	}
	grew := false
	for _, id := range ids {
		if r.count[id]++; r.count[id] == 1 {
			r.first[id] = now
			grew = true
		}
	}
	if grew {
		close(r.changed)
		r.changed = make(chan struct{})
	}
	return http.StatusOK
}

// Heal stops the failures: every signed request is answered 200 from now on.
func (r *Receiver) Heal() {
	r.mu.Lock()
	r.opts.Fail = nil
	r.mu.Unlock()
}

// Distinct is how many messageIds have arrived.
func (r *Receiver) Distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.count)
}

// WaitDistinct waits at most d for n messageIds to have arrived, and reports whether they had.
func (r *Receiver) WaitDistinct(n int, d time.Duration) bool {
	timeout := time.After(d)
	for {
		r.mu.Lock()
		done, changed := len(r.count) >= n, r.changed
		r.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-changed:
		case <-timeout:
			return false
		}
	}
}

// Counts is how many times each messageId arrived (a copy).
func (r *Receiver) Counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.count)
}

// Received is how many messages arrived, repeats included.
func (r *Receiver) Received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, k := range r.count {
		n += k
	}
	return n
}

// First is when each messageId first arrived (a copy).
func (r *Receiver) First() map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.first)
}

// Requests is how many requests came, whatever they were answered.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Failed is how many signed requests were answered FailStatus.
func (r *Receiver) Failed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// BadSig is how many requests had a wrong X-Signature.
func (r *Receiver) BadSig() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.badSig
}

// Quiet reports whether no request is being answered and none came for the last d.
func (r *Receiver) Quiet(d time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight == 0 && time.Since(r.last) >= d
}

// CloseClientConnections closes the connections senders have open to it.
func (r *Receiver) CloseClientConnections() { r.srv.CloseClientConnections() }
