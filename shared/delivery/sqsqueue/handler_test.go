package sqsqueue_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/unifiedprofiles/up/shared/delivery"
	dsqs "github.com/unifiedprofiles/up/shared/delivery/sqsqueue"
)

// fakeEngine decides each job by its message id (Delivered when not listed) and records
// the groups it was given.
type fakeEngine struct {
	decide map[string]delivery.Decision
	short  bool // answer one decision fewer than jobs
	panics string

	mu     sync.Mutex
	groups [][]string // message id:attempts of each call, sorted by first message id
}

func (f *fakeEngine) Attempt(_ context.Context, jobs []delivery.Job) []delivery.Decision {
	var ids []string
	out := make([]delivery.Decision, 0, len(jobs))
	for _, j := range jobs {
		if j.DestinationID != jobs[0].DestinationID || j.WorkspaceID != jobs[0].WorkspaceID {
			panic("a batch of two destinations")
		}
		if j.DestinationID == f.panics {
			panic("engine bug")
		}
		ids = append(ids, j.MessageID+":"+strconv.Itoa(j.Attempts))
		d, ok := f.decide[j.MessageID]
		if !ok {
			d = delivery.Decision{Outcome: delivery.Delivered}
		}
		out = append(out, d)
	}
	f.mu.Lock()
	f.groups = append(f.groups, ids)
	slices.SortFunc(f.groups, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	f.mu.Unlock()
	if f.short {
		out = out[:len(out)-1]
	}
	return out
}

// recordingSQS records the visibility changes; those of the receipt handles in fail fail.
type recordingSQS struct {
	fail map[string]bool
	mu   sync.Mutex
	got  map[string]int32 // receipt handle → visibility timeout
	url  string
}

func (r *recordingSQS) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string]int32{}
	}
	r.url = aws.ToString(in.QueueUrl)
	r.got[aws.ToString(in.ReceiptHandle)] = in.VisibilityTimeout
	if r.fail[aws.ToString(in.ReceiptHandle)] {
		return nil, errors.New("AWS.SimpleQueueService.NonExistentQueue")
	}
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

// rec is a record carrying a job of message msg to destination dst (its receipt handle
// "rh-"+msg), received count times ("" leaves the attribute out).
func rec(msg, dst, count string) events.SQSMessage {
	j := job
	j.MessageID, j.DestinationID, j.Attempts = msg, dst, 7
	b, err := dsqs.Encode(j)
	if err != nil {
		panic(err)
	}
	r := events.SQSMessage{MessageId: "sqs-" + msg, ReceiptHandle: "rh-" + msg, Body: b, Attributes: map[string]string{}}
	if count != "" {
		r.Attributes["ApproximateReceiveCount"] = count
	}
	return r
}

func raw(id, body string) events.SQSMessage {
	return events.SQSMessage{MessageId: id, ReceiptHandle: "rh-" + id, Body: body, Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	retry := func(after time.Duration) delivery.Decision {
		return delivery.Decision{Outcome: delivery.Retry, After: after, Err: errors.New("503 from the webhook")}
	}
	for _, tc := range []struct {
		name       string
		records    []events.SQSMessage
		decide     map[string]delivery.Decision
		short      bool
		failVis    map[string]bool
		wantFailed []string         // record ids reported failed, in order
		wantVis    map[string]int32 // receipt handle → visibility timeout
		wantGroups [][]string       // message id:attempts per Attempt call
		wantLog    []string
	}{
		{
			name:       "an empty event",
			wantFailed: []string{},
		},
		{
			name:    "each outcome",
			records: []events.SQSMessage{rec("a", "dst_1", "1"), rec("b", "dst_1", "1"), rec("c", "dst_1", "1"), rec("d", "dst_1", "1")},
			decide: map[string]delivery.Decision{
				"b": retry(1500 * time.Millisecond),
				"c": {Outcome: delivery.DeadLettered, Err: errors.New("400 from the webhook")},
				"d": {Outcome: delivery.Dropped, Err: errors.New("not found")},
			},
			wantFailed: []string{"sqs-b"},
			wantVis:    map[string]int32{"rh-b": 2},
			wantGroups: [][]string{{"a:0", "b:0", "c:0", "d:0"}},
			wantLog:    []string{"dead-lettered", "400 from the webhook", `"retrying":1`, `"dead_lettered":1`, `"dropped":1`, `"delivered":1`},
		},
		{
			name: "jobs grouped by destination, in record order",
			records: []events.SQSMessage{rec("a1", "dst_a", "1"), rec("b1", "dst_b", "1"), rec("a2", "dst_a", "1"),
				rec("c1", "dst_c", "1"), rec("b2", "dst_b", "1")},
			decide:     map[string]delivery.Decision{"b2": retry(10 * time.Minute), "c1": retry(0)},
			wantFailed: []string{"sqs-c1", "sqs-b2"},
			wantVis:    map[string]int32{"rh-b2": 600, "rh-c1": 0},
			wantGroups: [][]string{{"a1:0", "a2:0"}, {"b1:0", "b2:0"}, {"c1:0"}},
		},
		{
			name:       "attempts from the receive count; the body's without it",
			records:    []events.SQSMessage{rec("a", "dst_1", "1"), rec("b", "dst_1", "5"), rec("c", "dst_1", ""), rec("d", "dst_1", "x")},
			wantFailed: []string{},
			wantGroups: [][]string{{"a:0", "b:4", "c:7", "d:7"}},
		},
		{
			name: "bodies that are not jobs",
			records: []events.SQSMessage{raw("hello", "hello"), rec("a", "dst_1", "1"), raw("empty", ""),
				raw("a sync task", `{"workspace_id":"ws_1","mapping_id":"map_1","sync_id":"sync_1","page":0}`)},
			wantFailed: []string{"hello", "empty", "a sync task"},
			wantGroups: [][]string{{"a:0"}},
			wantLog:    []string{`"msg":"not a delivery job"`, `"message_id":"a sync task"`, "destination_id is missing"},
		},
		{
			name:       "visibility: rounded up, at most 12 hours",
			records:    []events.SQSMessage{rec("a", "dst_1", "2"), rec("b", "dst_1", "2"), rec("c", "dst_1", "2"), rec("d", "dst_1", "2")},
			decide:     map[string]delivery.Decision{"a": retry(time.Nanosecond), "b": retry(3 * time.Second), "c": retry(48 * time.Hour), "d": retry(-time.Second)},
			wantFailed: []string{"sqs-a", "sqs-b", "sqs-c", "sqs-d"},
			wantVis:    map[string]int32{"rh-a": 1, "rh-b": 3, "rh-c": 43200, "rh-d": 0},
			wantGroups: [][]string{{"a:1", "b:1", "c:1", "d:1"}},
		},
		{
			name:       "a visibility that cannot change: still a failure",
			records:    []events.SQSMessage{rec("a", "dst_1", "1"), rec("b", "dst_1", "1")},
			decide:     map[string]delivery.Decision{"a": retry(time.Minute), "b": retry(time.Minute)},
			failVis:    map[string]bool{"rh-a": true},
			wantFailed: []string{"sqs-a", "sqs-b"},
			wantVis:    map[string]int32{"rh-a": 60, "rh-b": 60},
			wantGroups: [][]string{{"a:0", "b:0"}},
			wantLog:    []string{"cannot delay the retry", "NonExistentQueue"},
		},
		{
			name:       "a decision missing: the job comes back",
			records:    []events.SQSMessage{rec("a", "dst_1", "1"), rec("b", "dst_1", "1")},
			short:      true,
			wantFailed: []string{"sqs-b"},
			wantGroups: [][]string{{"a:0", "b:0"}},
			wantLog:    []string{"the engine gave no decision"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := &fakeEngine{decide: tc.decide, short: tc.short}
			v := &recordingSQS{fail: tc.failVis}
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, nil))
			resp, err := dsqs.Handler(e, v, "https://sqs.test/up-destinations", log)(context.Background(), events.SQSEvent{Records: tc.records})
			if err != nil {
				t.Fatal(err)
			}
			if resp.BatchItemFailures == nil {
				t.Fatal("BatchItemFailures is nil: want a list, empty when every record succeeded")
			}
			failed := []string{}
			for _, f := range resp.BatchItemFailures {
				failed = append(failed, f.ItemIdentifier)
			}
			if !reflect.DeepEqual(failed, tc.wantFailed) {
				t.Errorf("failures %v, want %v", failed, tc.wantFailed)
			}
			if len(v.got) > 0 || len(tc.wantVis) > 0 {
				if !reflect.DeepEqual(v.got, tc.wantVis) {
					t.Errorf("visibility changes %v, want %v", v.got, tc.wantVis)
				}
				if v.url != "https://sqs.test/up-destinations" {
					t.Errorf("visibility changed on %q", v.url)
				}
			}
			if !reflect.DeepEqual(e.groups, tc.wantGroups) {
				t.Errorf("attempts %v, want %v", e.groups, tc.wantGroups)
			}
			for _, w := range tc.wantLog {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("the log does not say %q:\n%s", w, logs.String())
				}
			}
		})
	}
}

// The destinations of a batch are attempted at once: one that hangs does not hold the
// others, which are attempted (and answered) while it still runs.
func TestHandlerAttemptsDestinationsConcurrently(t *testing.T) {
	t.Parallel()
	e := &blockingEngine{slow: "dst_slow", others: make(chan string, 10), release: make(chan struct{})}
	ev := events.SQSEvent{Records: []events.SQSMessage{rec("s1", "dst_slow", "1"), rec("a1", "dst_a", "1"), rec("b1", "dst_b", "1")}}
	done := make(chan events.SQSEventResponse, 1)
	go func() {
		resp, _ := dsqs.Handler(e, &recordingSQS{}, "https://sqs.test/q", nil)(context.Background(), ev)
		done <- resp
	}()
	got := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case d := <-e.others:
			got[d] = true
		case <-timeout:
			t.Fatalf("the other destinations were not attempted while dst_slow hung (attempted: %v)", got)
		}
	}
	select {
	case <-done:
		t.Fatal("the handler answered before the slow destination's attempt ended")
	default:
	}
	close(e.release)
	if resp := <-done; len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.BatchItemFailures)
	}
}

type blockingEngine struct {
	slow    string
	others  chan string
	release chan struct{}
}

func (e *blockingEngine) Attempt(_ context.Context, jobs []delivery.Job) []delivery.Decision {
	if jobs[0].DestinationID == e.slow {
		<-e.release
	} else {
		e.others <- jobs[0].DestinationID
	}
	out := make([]delivery.Decision, len(jobs))
	for i := range out {
		out[i] = delivery.Decision{Outcome: delivery.Delivered}
	}
	return out
}

// Out of time (the invocation's deadline less lambdactx's margin already past), nothing is
// attempted and every record comes back; an engine that panics fails its destination's
// records only.
func TestHandlerOutOfTimeAndPanics(t *testing.T) {
	t.Parallel()
	e := &fakeEngine{}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	ev := events.SQSEvent{Records: []events.SQSMessage{rec("a", "dst_1", "1"), rec("b", "dst_2", "1")}}
	resp, err := dsqs.Handler(e, &recordingSQS{}, "https://sqs.test/q", slog.New(slog.DiscardHandler))(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != 2 || len(e.groups) != 0 {
		t.Fatalf("out of time: %v %v, attempted %v", resp, err, e.groups)
	}

	e = &fakeEngine{panics: "dst_2"}
	resp, err = dsqs.Handler(e, &recordingSQS{}, "https://sqs.test/q", slog.New(slog.DiscardHandler))(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "sqs-b" {
		t.Fatalf("an engine that panics: %v %v", resp, err)
	}
}
