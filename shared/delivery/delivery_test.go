package delivery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// fakeDests is the workspace service as the engine sees it.
type fakeDests struct {
	mu sync.Mutex
	ds map[string]workspace.Destination
}

func (f *fakeDests) put(d workspace.Destination) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ds[d.ID] = d
}

func (f *fakeDests) Destination(_ context.Context, ws, id string) (workspace.Destination, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.ds[id]
	if !ok || d.WorkspaceID != ws {
		return workspace.Destination{}, errcode.NotFoundf("destination %s was not found", id)
	}
	return d, nil
}

func (f *fakeDests) DestinationSettings(ctx context.Context, ws, id string) (map[string]any, error) {
	d, err := f.Destination(ctx, ws, id)
	return maps.Clone(d.Settings), err
}

func (f *fakeDests) DestinationsOf(_ context.Context, ws string) ([]workspace.Destination, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []workspace.Destination
	for _, d := range f.ds {
		if d.WorkspaceID == ws {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b workspace.Destination) int { return cmpString(a.ID, b.ID) })
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func openStore(t *testing.T, now func() time.Time) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"), bolt.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func dest(id, typ string, settings map[string]any) workspace.Destination {
	return workspace.Destination{ID: id, WorkspaceID: "ws_1", Name: id, Type: typ, Enabled: true, Settings: settings}
}

func job(dst, msg string, accepted time.Time, attempts int) Job {
	return Job{WorkspaceID: "ws_1", DestinationID: dst, SourceID: "src_1", MessageID: msg, Type: "track",
		Payload: []byte(`{"type":"track","messageId":"` + msg + `"}`), AcceptedAt: accepted, Attempts: attempts}
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	b := Backoff{Base: time.Second, Max: 10 * time.Second}
	for _, c := range []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{1, 0, 500 * time.Millisecond},
		{1, 0.999999, time.Second - time.Microsecond},
		{2, 0, time.Second},
		{3, 0.5, 3 * time.Second},
		{4, 0, 4 * time.Second},
		{5, 0, 5 * time.Second},   // capped at 10 s: half fixed
		{60, 1, 10 * time.Second}, // no overflow however many attempts
	} {
		got := b.Delay(c.n, c.r)
		if d := got - c.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("Delay(%d, %v) = %v, want %v", c.n, c.r, got, c.want)
		}
	}
	if got := (Backoff{}).Delay(1, 0); got != DefaultBackoff.Base/2 {
		t.Errorf("the zero Backoff's first delay is %v, want DefaultBackoff's %v", got, DefaultBackoff.Base/2)
	}
}

func TestAttemptDecisions(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	retryable := errors.New("503 from the receiver")
	refused := Permanent(errors.New("400 from the receiver"))
	cases := []struct {
		name     string
		dest     *workspace.Destination // nil: none
		send     func(jobs []Job) error
		accepted time.Time
		attempts int
		want     []Outcome
		counts   Deliveries
	}{
		{name: "delivered", send: func([]Job) error { return nil }, want: []Outcome{Delivered, Delivered},
			counts: Deliveries{Delivered: 2}},
		{name: "retryable error", send: func([]Job) error { return retryable }, want: []Outcome{Retry, Retry},
			counts: Deliveries{Failed: 2, Retrying: 2}},
		{name: "permanent error dead-letters at once", send: func([]Job) error { return refused }, want: []Outcome{DeadLettered, DeadLettered},
			counts: Deliveries{Failed: 2, DeadLettered: 2}},
		{name: "past the retry window", send: func([]Job) error { return retryable }, accepted: start.Add(-RetryFor), attempts: 3,
			want: []Outcome{DeadLettered, DeadLettered}, counts: Deliveries{Failed: 2, DeadLettered: 2}},
		{name: "a retry delivered ends retrying", send: func([]Job) error { return nil }, attempts: 2, want: []Outcome{Delivered, Delivered},
			counts: Deliveries{Delivered: 2}},
		{name: "partial failure", send: func(jobs []Job) error {
			errs := make([]error, len(jobs))
			errs[1] = retryable
			return &JobErrors{Errs: errs}
		}, want: []Outcome{Delivered, Retry}, counts: Deliveries{Delivered: 1, Failed: 1, Retrying: 1}},
		{name: "unknown type", dest: ptr(dest("dst_a", "carrier_pigeon", nil)), want: []Outcome{DeadLettered, DeadLettered},
			counts: Deliveries{Failed: 2, DeadLettered: 2}},
		{name: "deleted destination", dest: &workspace.Destination{}, want: []Outcome{Dropped, Dropped}},
		{name: "disabled destination", dest: ptr(func() workspace.Destination { d := dest("dst_a", TypeWebhook, nil); d.Enabled = false; return d }()),
			want: []Outcome{Dropped, Dropped}},
		{name: "source no longer taken", dest: ptr(func() workspace.Destination {
			d := dest("dst_a", TypeWebhook, nil)
			d.SourceIDs = []string{"src_2"}
			return d
		}()),
			want: []Outcome{Dropped, Dropped}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			clock := testclock.New(start)
			st := openStore(t, clock.Now)
			fd := &fakeDests{ds: map[string]workspace.Destination{}}
			switch {
			case c.dest == nil:
				fd.put(dest("dst_a", TypeWebhook, map[string]any{"batch_size": float64(10)}))
			case c.dest.ID != "":
				fd.put(*c.dest)
			}
			senders := map[string]Sender{TypeWebhook: SenderFunc(func(_ context.Context, _ Target, jobs []Job) error {
				if len(jobs) != 2 {
					t.Errorf("a batch of %d, want both jobs in one", len(jobs))
				}
				return c.send(jobs)
			})}
			e := NewEngine(st, fd, senders, EngineOptions{Now: clock.Now, Rand: func() float64 { return 0.5 }, Backoff: Backoff{Base: time.Second, Max: time.Minute}})
			accepted := c.accepted
			if accepted.IsZero() {
				accepted = start
			}
			jobs := []Job{job("dst_a", "m1", accepted, c.attempts), job("dst_a", "m2", accepted, c.attempts)}
			ds := e.Attempt(context.Background(), jobs)
			for i, d := range ds {
				if d.Outcome != c.want[i] {
					t.Errorf("job %d: %v (%v), want %v", i, d.Outcome, d.Err, c.want[i])
				}
				if d.Outcome == Retry && (d.After <= 0 || d.After > time.Minute) {
					t.Errorf("job %d: retry after %v, want within the backoff", i, d.After)
				}
				if d.Outcome == Delivered && d.Err != nil {
					t.Errorf("job %d delivered with an error: %v", i, d.Err)
				}
			}
			got, err := NewRecords(st, nil, clock.Now).Deliveries(context.Background(), "dst_a")
			if err != nil {
				t.Fatal(err)
			}
			got.LastError, got.LastErrorAt, got.LastDeliveredAt = nil, nil, nil
			if got != c.counts {
				t.Errorf("deliveries %+v, want %+v", got, c.counts)
			}
			dead, _, err := NewRecords(st, nil, clock.Now).DeadLetters(context.Background(), "dst_a", "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(dead)) != c.counts.DeadLettered {
				t.Errorf("%d dead letters listed, want %d", len(dead), c.counts.DeadLettered)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestRetryWindowEndsAtTheDeadline(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := testclock.New(start)
	st := openStore(t, clock.Now)
	fd := &fakeDests{ds: map[string]workspace.Destination{"dst_a": dest("dst_a", TypeWebhook, nil)}}
	e := NewEngine(st, fd, map[string]Sender{TypeWebhook: SenderFunc(func(context.Context, Target, []Job) error { return errors.New("down") })},
		EngineOptions{Now: clock.Now, Rand: func() float64 { return 0.99 }, Backoff: Backoff{Base: time.Minute, Max: time.Hour}})
	// Accepted 3 h 50 min ago: a backoff of up to an hour would pass the 4-hour mark, so the
	// last try is set on it.
	d := e.Attempt(context.Background(), []Job{job("dst_a", "m1", start.Add(-230*time.Minute), 10)})[0]
	if d.Outcome != Retry || d.After != 10*time.Minute {
		t.Fatalf("decision %v after %v, want a retry in exactly 10m (at the deadline)", d.Outcome, d.After)
	}
	clock.Add(10 * time.Minute)
	if d := e.Attempt(context.Background(), []Job{job("dst_a", "m1", start.Add(-230*time.Minute), 11)})[0]; d.Outcome != DeadLettered {
		t.Fatalf("at the deadline: %v, want dead_lettered", d.Outcome)
	}
}

// TestLanesIsolateAFailingDestination: one destination fails every other attempt, the other
// never does. Every message reaches both, the healthy one is never held back by the failing
// one's retries, and a repeat only ever carries a messageId that was queued.
func TestLanesIsolateAFailingDestination(t *testing.T) {
	t.Parallel()
	st := openStore(t, time.Now)
	fd := &fakeDests{ds: map[string]workspace.Destination{}}
	fd.put(dest("dst_flaky", TypeWebhook, map[string]any{"batch_size": float64(10)}))
	fd.put(dest("dst_ok", TypeWebhook, map[string]any{"batch_size": float64(10)}))
	var mu sync.Mutex
	got := map[string]map[string]int{"dst_flaky": {}, "dst_ok": {}}
	calls := 0
	sender := SenderFunc(func(_ context.Context, tg Target, jobs []Job) error {
		mu.Lock()
		defer mu.Unlock()
		if tg.ID == "dst_flaky" {
			calls++
			if calls%2 == 1 {
				return errors.New("503")
			}
		}
		for _, j := range jobs {
			got[tg.ID][j.MessageID]++
		}
		return nil
	})
	e := NewEngine(st, fd, map[string]Sender{TypeWebhook: sender}, EngineOptions{Backoff: Backoff{Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}})
	q := NewStoreQueue(st, nil)
	stop := RunLanes(q, e, LanesOptions{Poll: 50 * time.Millisecond})
	defer stop()
	const n = 300
	var jobs []Job
	now := time.Now()
	for i := range n {
		for _, d := range []string{"dst_flaky", "dst_ok"} {
			jobs = append(jobs, job(d, fmt.Sprintf("m%03d", i), now, 0))
		}
	}
	for c := range slices.Chunk(jobs, 60) {
		if err := q.Enqueue(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	recs := NewRecords(st, q, nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := len(got["dst_flaky"]) == n && len(got["dst_ok"]) == n
		mu.Unlock()
		// Settled too: the record written and the queue empty.
		flaky, _ := recs.Deliveries(context.Background(), "dst_flaky")
		left, _ := q.next(context.Background(), "dst_flaky", 1)
		if done && flaky.Delivered == n && len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("after 30 s: %d of %d reached the flaky destination, %d the healthy one", len(got["dst_flaky"]), n, len(got["dst_ok"]))
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for d, ids := range got {
		for id, k := range ids {
			if k != 1 {
				t.Errorf("%s got %s %d times", d, id, k)
			}
		}
	}
	ok, _ := recs.Deliveries(context.Background(), "dst_ok")
	if ok.Failed != 0 || ok.Delivered != n {
		t.Errorf("healthy destination: %+v, want %d delivered and no failure", ok, n)
	}
	flaky, _ := recs.Deliveries(context.Background(), "dst_flaky")
	if flaky.Failed == 0 || flaky.Delivered != n || flaky.LastError == nil {
		t.Errorf("flaky destination: %+v, want failures recorded, %d delivered and a last error", flaky, n)
	}
}

// TestQueueSurvivesARestart: jobs queued with no lane running (a stack that crashed after
// answering) are delivered once lanes start on the same store.
func TestQueueSurvivesARestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "up.db")
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	q := NewStoreQueue(st, nil)
	if err := q.Enqueue(context.Background(), []Job{job("dst_a", "m1", time.Now(), 0), job("dst_a", "m2", time.Now(), 0)}); err != nil {
		t.Fatal(err)
	}
	st.Close() // the crash
	st, err = bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fd := &fakeDests{ds: map[string]workspace.Destination{"dst_a": dest("dst_a", TypeWebhook, nil)}}
	delivered := make(chan string, 10)
	e := NewEngine(st, fd, map[string]Sender{TypeWebhook: SenderFunc(func(_ context.Context, _ Target, jobs []Job) error {
		for _, j := range jobs {
			delivered <- j.MessageID
		}
		return nil
	})}, EngineOptions{})
	stop := RunLanes(NewStoreQueue(st, nil), e, LanesOptions{Poll: 20 * time.Millisecond})
	defer stop()
	var ids []string
	for len(ids) < 2 {
		select {
		case id := <-delivered:
			ids = append(ids, id)
		case <-time.After(10 * time.Second):
			t.Fatalf("delivered after the restart: %v, want m1 and m2", ids)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"m1", "m2"}) {
		t.Fatalf("delivered %v", ids)
	}
}

func TestDeadLettersReplay(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := testclock.New(start)
	st := openStore(t, clock.Now)
	fd := &fakeDests{ds: map[string]workspace.Destination{"dst_a": dest("dst_a", TypeWebhook, nil)}}
	var mu sync.Mutex
	refuse := true
	var delivered []string
	e := NewEngine(st, fd, map[string]Sender{TypeWebhook: SenderFunc(func(_ context.Context, _ Target, jobs []Job) error {
		mu.Lock()
		defer mu.Unlock()
		if refuse {
			return Permanent(errors.New("401 from the receiver: the token is wrong"))
		}
		for _, j := range jobs {
			delivered = append(delivered, j.MessageID)
		}
		return nil
	})}, EngineOptions{Now: clock.Now})
	q := NewStoreQueue(st, clock.Now)
	ctx := context.Background()
	var jobs []Job
	for i := range 150 { // more than a page of dead letters
		jobs = append(jobs, job("dst_a", fmt.Sprintf("m%03d", i), start, 0))
	}
	for c := range slices.Chunk(jobs, MaxBatch) {
		ds := e.Attempt(ctx, c)
		for _, d := range ds {
			if d.Outcome != DeadLettered {
				t.Fatalf("decision %v, want dead_lettered", d.Outcome)
			}
		}
	}
	recs := NewRecords(st, q, clock.Now)
	page, next, err := recs.DeadLetters(ctx, "dst_a", "", 100)
	if err != nil || len(page) != 100 || next == "" {
		t.Fatalf("first page: %d, next %q, %v; want 100 and a cursor", len(page), next, err)
	}
	if page[0].MessageID != "m000" || page[0].Attempts != 1 || page[0].LastError == "" || string(page[0].Payload) == "" {
		t.Errorf("first dead letter %+v", page[0])
	}
	rest, next, err := recs.DeadLetters(ctx, "dst_a", next, 100)
	if err != nil || len(rest) != 50 || next != "" {
		t.Fatalf("second page: %d, next %q, %v; want 50 and no cursor", len(rest), next, err)
	}
	if d, _ := recs.Deliveries(ctx, "dst_a"); d.DeadLettered != 150 || d.LastError == nil || *d.LastError != "401 from the receiver: the token is wrong" {
		t.Errorf("deliveries before the replay: %+v", d)
	}
	// The receiver is mended; the user replays.
	mu.Lock()
	refuse = false
	mu.Unlock()
	n, more, err := recs.Replay(ctx, "dst_a")
	if err != nil || n != 150 || more {
		t.Fatalf("replay: %d, more %v, %v; want 150", n, more, err)
	}
	if left, _, _ := recs.DeadLetters(ctx, "dst_a", "", 0); len(left) != 0 {
		t.Errorf("%d dead letters left after the replay", len(left))
	}
	queued, err := q.next(ctx, "dst_a", MaxBatch)
	if err != nil || len(queued) != 150 {
		t.Fatalf("%d jobs queued after the replay (%v), want 150", len(queued), err)
	}
	if queued[0].job.Attempts != 0 || !queued[0].job.AcceptedAt.Equal(start) {
		t.Errorf("a replayed job: attempts %d, accepted %v; want 0 and now (a fresh retry window)", queued[0].job.Attempts, queued[0].job.AcceptedAt)
	}
	jobsAgain := make([]Job, len(queued))
	for i, qj := range queued {
		jobsAgain[i] = qj.job
	}
	ds := e.Attempt(ctx, jobsAgain)
	if err := q.settle(ctx, queued, ds); err != nil {
		t.Fatal(err)
	}
	if len(delivered) != 150 {
		t.Errorf("%d delivered after the replay, want 150", len(delivered))
	}
	if d, _ := recs.Deliveries(ctx, "dst_a"); d.DeadLettered != 0 || d.Delivered != 150 {
		t.Errorf("deliveries after the replay: %+v", d)
	}
	if a, _ := recs.Attempts(ctx, "dst_a", 10); len(a) != 2 || a[0].Messages[0].Status != "delivered" || a[1].Messages[0].Status != "dead_lettered" || a[0].Total != 150 || len(a[0].Messages) != maxDebugMessages {
		t.Errorf("attempts, newest first: %+v", a)
	}
}

func TestPayload(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		m    message.Message
		want string
	}{
		{"as sent, with what acceptance set", message.Message{Type: "track", MessageID: "m1", Timestamp: at, ReceivedAt: at.Add(time.Second),
			Raw: []byte(`{"type":"track","event":"Signed Up","userId":"u1","properties":{"a":1},"timestamp":"2020-01-01T00:00:00Z"}`)},
			`{"event":"Signed Up","messageId":"m1","properties":{"a":1},"receivedAt":"2026-12-01T10:00:01Z","timestamp":"2026-12-01T10:00:00Z","type":"track","userId":"u1"}`},
		{"a message made here (Reverse ETL) is built from its fields", message.Message{Type: "identify", MessageID: "retl-1", UserID: "7",
			Traits: map[string]any{"plan": "gold", "gone": nil}, Timestamp: at, ReceivedAt: at},
			`{"messageId":"retl-1","receivedAt":"2026-12-01T10:00:00Z","timestamp":"2026-12-01T10:00:00Z","traits":{"gone":null,"plan":"gold"},"type":"identify","userId":"7"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := Payload(c.m)
			if err != nil || string(got) != c.want {
				t.Errorf("Payload = %s, %v\nwant %s", got, err, c.want)
			}
		})
	}
	if _, err := Payload(message.Message{MessageID: "bad", Raw: []byte(`[1]`)}); err == nil {
		t.Error("a raw message that is not an object was accepted")
	}
}

// TestRetryingCountMovesWithTheQueue: on the store queue the retrying count changes with
// the job's move, so an attempt whose move a crash lost (the job stays as it was and is
// attempted again) leaves nothing counted as retrying for ever.
func TestRetryingCountMovesWithTheQueue(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := testclock.New(start)
	st := openStore(t, clock.Now)
	fd := &fakeDests{ds: map[string]workspace.Destination{"dst_a": dest("dst_a", TypeWebhook, nil)}}
	var mu sync.Mutex
	fail := true
	e := NewEngine(st, fd, map[string]Sender{TypeWebhook: SenderFunc(func(context.Context, Target, []Job) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("503")
		}
		return nil
	})}, EngineOptions{Now: clock.Now, Rand: func() float64 { return 0 }, Backoff: Backoff{Base: time.Second, Max: time.Second}})
	q := NewStoreQueue(st, clock.Now)
	stop := RunLanes(q, e, LanesOptions{Poll: time.Hour}) // the lanes' counting, not their timing, is under test
	stop()
	ctx := context.Background()
	recs := NewRecords(st, q, clock.Now)
	retrying := func() int64 {
		d, err := recs.Deliveries(ctx, "dst_a")
		if err != nil {
			t.Fatal(err)
		}
		return d.Retrying
	}
	if err := q.Enqueue(ctx, []Job{job("dst_a", "m1", start, 0)}); err != nil {
		t.Fatal(err)
	}
	queued, _ := q.next(ctx, "dst_a", 10)
	jobs := []Job{queued[0].job}
	// A failed attempt whose move is lost (a crash): nothing retrying, the job as it was.
	if d := e.Attempt(ctx, jobs); d[0].Outcome != Retry {
		t.Fatalf("decision %v", d[0].Outcome)
	}
	if n := retrying(); n != 0 {
		t.Errorf("retrying %d after an attempt whose move was lost, want 0", n)
	}
	// Attempted again, failing, and moved: retrying.
	ds := e.Attempt(ctx, jobs)
	if err := q.settle(ctx, queued, ds); err != nil {
		t.Fatal(err)
	}
	if n := retrying(); n != 1 {
		t.Errorf("retrying %d after a failed attempt, want 1", n)
	}
	// Due again, delivered and moved: no longer retrying.
	clock.Add(time.Second)
	mu.Lock()
	fail = false
	mu.Unlock()
	queued, _ = q.next(ctx, "dst_a", 10)
	if len(queued) != 1 || queued[0].job.Attempts != 1 {
		t.Fatalf("queued after the retry was set: %+v", queued)
	}
	if err := q.settle(ctx, queued, e.Attempt(ctx, []Job{queued[0].job})); err != nil {
		t.Fatal(err)
	}
	if n := retrying(); n != 0 {
		t.Errorf("retrying %d after the delivery, want 0", n)
	}
	if left, _ := q.next(ctx, "dst_a", 10); len(left) != 0 {
		t.Errorf("%d jobs left", len(left))
	}
}

// TestReplayWithoutAQueue: a deployment without a delivery queue answers replay with
// delivery_not_configured and leaves the dead letters listed (the README's claim).
func TestReplayWithoutAQueue(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := testclock.New(start)
	st := openStore(t, clock.Now)
	fd := &fakeDests{ds: map[string]workspace.Destination{"dst_a": dest("dst_a", TypeWebhook, nil)}}
	e := NewEngine(st, fd, map[string]Sender{TypeWebhook: SenderFunc(func(context.Context, Target, []Job) error {
		return Permanent(errors.New("401"))
	})}, EngineOptions{Now: clock.Now})
	ctx := context.Background()
	e.Attempt(ctx, []Job{job("dst_a", "m1", start, 0)})
	recs := NewRecords(st, nil, clock.Now)
	_, _, err := recs.Replay(ctx, "dst_a")
	if e := errcode.As(err); e == nil || e.Code != "delivery_not_configured" {
		t.Fatalf("replay without a queue: %v, want delivery_not_configured", err)
	}
	if dead, _, _ := recs.DeadLetters(ctx, "dst_a", "", 0); len(dead) != 1 {
		t.Errorf("%d dead letters after the refused replay, want 1", len(dead))
	}
}

// An imported message older than the 30 days other calls take (import takes 360) is
// accepted by its source, so a Segment destination must read it back too; one of another
// call older than that, or past the import window, could not have been accepted.
func TestParsePayloadTakesImportedHistory(t *testing.T) {
	t.Parallel()
	accepted := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		age     time.Duration
		wantErr bool
	}{
		{"today", time.Hour, false},
		{"40 days old", 40 * 24 * time.Hour, false},
		{"200 days old", 200 * 24 * time.Hour, false},
		{"400 days old", 400 * 24 * time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			at := accepted.Add(-tc.age)
			payload := fmt.Sprintf(`{"type":"track","event":"Order Completed","userId":"u1","messageId":"m1","timestamp":%q,"receivedAt":%q,"properties":{"revenue":12.5}}`,
				at.Format(time.RFC3339Nano), accepted.Format(time.RFC3339Nano))
			m, err := parsePayload(Job{MessageID: "m1", Type: message.Track, SourceID: "src_1", Payload: []byte(payload), AcceptedAt: accepted})
			if tc.wantErr {
				if !IsPermanent(err) {
					t.Fatalf("got %v, want a permanent error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.MessageID != "m1" || m.Event != "Order Completed" || !m.Timestamp.Equal(at) || m.SourceID != "src_1" || m.Properties["revenue"] != 12.5 {
				t.Errorf("got %+v", m)
			}
		})
	}
}
