package sqsqueue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/unifiedprofiles/up/shared/delivery"
	dsqs "github.com/unifiedprofiles/up/shared/delivery/sqsqueue"
	"github.com/unifiedprofiles/up/shared/warehouse/sqsqueue/sqstest"
)

var ctx = context.Background()

var acceptedAt = time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.UTC)

var job = delivery.Job{WorkspaceID: "ws_01jdq8x3k2m4n5p6q7r8s9t0v1", DestinationID: "dst_01jdq8x3k2m4n5p6q7r8s9t0v2",
	SourceID: "src_01jdq8x3k2m4n5p6q7r8s9t0v3", MessageID: "ajs-next-1", Type: "track",
	Payload:    json.RawMessage(`{"type":"track","event":"Signed <Up> & \"more\"","messageId":"ajs-next-1","properties":{"plan":"pro"}}`),
	AcceptedAt: acceptedAt, Attempts: 2}

const body = `{"workspace_id":"ws_01jdq8x3k2m4n5p6q7r8s9t0v1","destination_id":"dst_01jdq8x3k2m4n5p6q7r8s9t0v2",` +
	`"source_id":"src_01jdq8x3k2m4n5p6q7r8s9t0v3","message_id":"ajs-next-1","type":"track",` +
	`"payload":{"type":"track","event":"Signed <Up> & \"more\"","messageId":"ajs-next-1","properties":{"plan":"pro"}},` +
	`"accepted_at":"2026-03-01T12:30:45.123456789Z","attempts":2}`

// same compares jobs as delivery sees them: the payload as the JSON value it is (not its
// spacing nor its escapes), the acceptance time as an instant.
func same(a, b delivery.Job) bool {
	if !a.AcceptedAt.Equal(b.AcceptedAt) || !reflect.DeepEqual(value(a.Payload), value(b.Payload)) {
		return false
	}
	a.Payload, b.Payload, a.AcceptedAt, b.AcceptedAt = nil, nil, time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// value decodes a JSON text, numbers kept as their text.
func value(b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err.Error()
	}
	return v
}

func TestEncode(t *testing.T) {
	t.Parallel()
	got, err := dsqs.Encode(job)
	if err != nil || got != body {
		t.Fatalf("Encode = %s, %v\nwant %s", got, err, body)
	}
	// The payload's bytes go as they are: no HTML escaping of <, > and &.
	if strings.Contains(got, `\u003c`) || strings.Contains(got, `\u0026`) {
		t.Errorf("the payload was re-escaped: %s", got)
	}
	// What SQS refuses in a body (invalid UTF-8, U+FFFE, U+FFFF) is escaped; the job means the same.
	odd := job
	odd.MessageID = "m-\uffff"
	odd.Payload = json.RawMessage("{\"name\":\"a\xffb\ufffe\"}")
	b, err := dsqs.Encode(odd)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.ValidString(b) || strings.ContainsAny(b, "\uffff\ufffe") || !strings.Contains(b, `a\ufffdb\ufffe`) {
		t.Fatalf("body %q holds what SQS refuses", b)
	}
	back, err := dsqs.Decode(b)
	if err != nil || back.MessageID != "m-\uffff" {
		t.Fatalf("Decode of the escaped body: %+v, %v", back, err)
	}
	var p map[string]string
	if err := json.Unmarshal(back.Payload, &p); err != nil || p["name"] != "a\ufffdb\ufffe" {
		t.Fatalf("payload %s (%v)", back.Payload, err)
	}
	// A job larger than SQS takes is refused.
	big := job
	big.Payload = json.RawMessage(`{"text":"` + strings.Repeat("x", dsqs.MaxBody) + `"}`)
	if _, err := dsqs.Encode(big); err == nil || !strings.Contains(err.Error(), "over the 262144 SQS takes") {
		t.Fatalf("Encode of a job over 256 KiB: %v", err)
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	good := []struct{ name, body string }{
		{"as sent", body},
		{"spaces around", " \n" + body + "\n "},
		{"fields in another order, an unknown one", `{"attempts":2,"payload":{"type":"track","event":"Signed <Up> & \"more\"",` +
			`"messageId":"ajs-next-1","properties":{"plan":"pro"}},"accepted_at":"2026-03-01T13:30:45.123456789+01:00","priority":1,` +
			`"message_id":"ajs-next-1","source_id":"src_01jdq8x3k2m4n5p6q7r8s9t0v3","type":"track",` +
			`"destination_id":"dst_01jdq8x3k2m4n5p6q7r8s9t0v2","workspace_id":"ws_01jdq8x3k2m4n5p6q7r8s9t0v1"}`},
	}
	for _, tc := range good {
		got, err := dsqs.Decode(tc.body)
		if err != nil || !same(got, job) {
			t.Errorf("%s: Decode = %+v, %v; want %+v", tc.name, got, err, job)
		}
	}
	minimal := `{"workspace_id":"ws_1","destination_id":"dst_1","source_id":"src_1","message_id":"m","payload":{},"accepted_at":"2026-01-01T00:00:00Z"}`
	if got, err := dsqs.Decode(minimal); err != nil || got.Attempts != 0 || got.Hops != 0 || got.Type != "" {
		t.Errorf("the fewest fields: %+v, %v", got, err)
	}

	with := func(field, value string) string { // minimal with one field replaced (or removed, value "")
		var m map[string]json.RawMessage
		_ = json.Unmarshal([]byte(minimal), &m)
		if value == "" {
			delete(m, field)
		} else {
			m[field] = json.RawMessage(value)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	// Each refusal names what is wrong: shared/sqsbody's words for the body as JSON, after this
	// queue's; the job's own fields here.
	bad := []struct{ name, body, want string }{
		{"empty", "", "sqsqueue: the message body is empty, not a delivery job"},
		{"not JSON", "hello", "sqsqueue: the message body is not a delivery job: invalid JSON at byte 1"},
		{"two objects", body + body, "sqsqueue: the message body is not a delivery job: data follows the JSON object"},
		{"a sync task", `{"workspace_id":"ws_1","mapping_id":"map_1","sync_id":"sync_1","page":0}`, "destination_id is missing or empty"},
		{"an S3 event", `{"Records":[{"eventSource":"aws:s3"}]}`, "workspace_id is missing or empty"},
		{"no workspace", with("workspace_id", ""), "workspace_id is missing or empty"},
		{"no destination", with("destination_id", ""), "destination_id is missing or empty"},
		{"no source", with("source_id", ""), "source_id is missing or empty"},
		{"no message id", with("message_id", ""), "message_id is missing or empty"},
		{"empty message id", with("message_id", `""`), "message_id is missing or empty"},
		{"no payload", with("payload", ""), "payload is missing"},
		{"payload null", with("payload", "null"), "payload is JSON null, want a JSON object"},
		{"payload an array", with("payload", `[{}]`), "payload is a JSON array, want a JSON object"},
		{"payload a string", with("payload", `"{}"`), "payload is a JSON string, want a JSON object"},
		{"payload a number", with("payload", `12`), "payload is a JSON number, want a JSON object"},
		{"no acceptance time", with("accepted_at", ""), "accepted_at is missing"},
		{"acceptance time null", with("accepted_at", "null"), "accepted_at is missing"},
		{"acceptance time as a number", with("accepted_at", "1767225600"), "accepted_at is not a time as RFC 3339 text"},
		{"acceptance time not a time", with("accepted_at", `"yesterday"`),
			`sqsqueue: the message body is not a delivery job: accepted_at is not a time as RFC 3339 text (parsing time "yesterday"`},
		{"attempts as text", with("attempts", `"2"`), "field attempts is a JSON string, want an integer"},
		{"negative attempts", with("attempts", `-1`), "attempts is -1, want 0 or more"},
		{"negative hops", with("hops", `-2`), "hops is -2, want 0 or more"},
		{"ids swapped", with("destination_id", `"src_1"`), `destination_id "src_1" does not look like an id of its kind: want dst_`},
		{"too long", with("workspace_id", `"ws_`+strings.Repeat("a", 200)+`"`), "workspace_id is 203 characters long, at most 128"},
	}
	for _, tc := range bad {
		got, err := dsqs.Decode(tc.body)
		if err == nil {
			t.Errorf("%s: Decode = %+v, want an error", tc.name, got)
			continue
		}
		if !reflect.DeepEqual(got, delivery.Job{}) {
			t.Errorf("%s: a job with the error: %+v", tc.name, got)
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "sqsqueue: ") {
			t.Errorf("%s: error %q, want it to say %q", tc.name, err, tc.want)
		}
	}
}

// FuzzDecode: the destinations function decodes whatever body arrives on the queue. Decode
// never panics; what it accepts encodes back (within what SQS takes) to a body that decodes
// to the same job; a job Encode accepts comes back from Decode the same, and one it refuses
// for its fields Decode refuses too.
func FuzzDecode(f *testing.F) {
	f.Add(body, "ws_1", "dst_1", "src_1", "m-1", `{"a":1}`, 0)
	f.Add(`{"workspace_id":"ws_1","destination_id":"dst_1","source_id":"src_1","message_id":"m","payload":{},"accepted_at":"2026-01-01T00:00:00Z","hops":-1}`,
		"ws_", "dst_x", "src_y", "", `[]`, -1)
	f.Add(`{"payload":{"x":"\ud800"},"accepted_at":"0001-01-01T00:00:00Z"}`, "ws_a#b", "dst_é", "src_\x00", "\xff", `{"x":"\xff\uffff"}`, 1<<40)
	f.Add(`[{"workspace_id":"ws_1"}] `, "", "", "", "m", `null`, 7)
	f.Add("null", "WS_1", "DST_1", "SRC_1", "m", ` {"a" : [1, 2]} `, 1)
	f.Fuzz(func(t *testing.T, in, ws, dst, src, msg, payload string, attempts int) {
		if got, err := dsqs.Decode(in); err == nil {
			out, err := dsqs.Encode(got)
			if err != nil {
				if strings.Contains(err.Error(), "SQS takes") {
					return // escaping may grow a body past what SQS takes
				}
				t.Fatalf("Decode accepted %q as %+v, which Encode refuses: %v", in, got, err)
			}
			if !utf8.ValidString(out) || strings.ContainsAny(out, "\ufffe\uffff") {
				t.Fatalf("Encode gave a body SQS refuses: %q", out)
			}
			if back, err := dsqs.Decode(out); err != nil || !same(back, got) {
				t.Fatalf("round trip of %+v: %+v, %v", got, back, err)
			}
		} else if !strings.HasPrefix(err.Error(), "sqsqueue: ") {
			t.Fatalf("error without a message: %q", err)
		}
		j := delivery.Job{WorkspaceID: ws, DestinationID: dst, SourceID: src, MessageID: msg, Payload: json.RawMessage(payload),
			AcceptedAt: acceptedAt, Attempts: attempts}
		out, err := dsqs.Encode(j)
		if err != nil {
			if !json.Valid(j.Payload) || strings.Contains(err.Error(), "SQS takes") {
				return // not a JSON text, or too large: nothing to compare with
			}
			b, _ := json.Marshal(j)
			if got, derr := dsqs.Decode(string(b)); derr == nil {
				t.Fatalf("Encode refused %+v (%v) but Decode accepts it as %+v", j, err, got)
			}
			return
		}
		back, err := dsqs.Decode(out)
		if err != nil {
			t.Fatalf("Decode of what Encode made (%q): %v", out, err)
		}
		if !reflect.DeepEqual(value(back.Payload), value(j.Payload)) || !back.AcceptedAt.Equal(acceptedAt) || back.Attempts != attempts ||
			back.WorkspaceID != ws || back.DestinationID != dst || back.SourceID != src || back.MessageID != strings.Map(func(r rune) rune { return r }, msg) {
			t.Fatalf("round trip of %+v: %+v", j, back)
		}
	})
}

// fakeSQS answers SendMessageBatch: entries listed in failTimes fail that many times.
type fakeSQS struct {
	mu        sync.Mutex
	failTimes map[string]int // entry id → failures left
	callErr   error
	calls     [][]string // the entry ids of each call
	bodies    map[string]string
	groups    map[string]string // entry id → its MessageGroupId
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	total := 0
	for _, e := range in.Entries {
		ids = append(ids, aws.ToString(e.Id))
		total += len(aws.ToString(e.MessageBody))
		if f.groups == nil {
			f.groups = map[string]string{}
		}
		f.groups[aws.ToString(e.Id)] = aws.ToString(e.MessageGroupId)
	}
	f.calls = append(f.calls, ids)
	if len(in.Entries) > 10 || total > dsqs.MaxBody {
		return nil, fmt.Errorf("fake: %d entries, %d bytes", len(in.Entries), total)
	}
	if f.callErr != nil {
		return nil, f.callErr
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		id := aws.ToString(e.Id)
		if f.failTimes[id] > 0 {
			f.failTimes[id]--
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again"), SenderFault: false})
			continue
		}
		if f.bodies == nil {
			f.bodies = map[string]string{}
		}
		f.bodies[id] = aws.ToString(e.MessageBody)
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("sqs-" + id)})
	}
	return out, nil
}

func jobs(n int) []delivery.Job {
	js := make([]delivery.Job, n)
	for i := range js {
		js[i] = job
		js[i].MessageID = "m-" + strconv.Itoa(i)
		js[i].Attempts = 0
	}
	return js
}

// Enqueue sends ten jobs to a call; an entry SQS refuses is sent once more, and if it fails
// again the error counts the jobs not queued.
func TestEnqueueBatchesAndRetriesOnce(t *testing.T) {
	t.Parallel()
	js := jobs(23)
	f := &fakeSQS{failTimes: map[string]int{"4": 1, "17": 1}}
	if err := dsqs.New(f, "https://sqs.test/q").Enqueue(ctx, js); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, {"10", "11", "12", "13", "14", "15", "16", "17", "18", "19"},
		{"20", "21", "22"}, {"4", "17"}}
	if !reflect.DeepEqual(f.calls, want) {
		t.Fatalf("calls %v, want %v", f.calls, want)
	}
	// Each message's group is its destination (a fair queue: one backlog does not delay the rest).
	for i, j := range js {
		if g := f.groups[strconv.Itoa(i)]; g != j.DestinationID {
			t.Errorf("entry %d: message group %q, want the destination %q", i, g, j.DestinationID)
		}
	}
	for i, j := range js {
		got, err := dsqs.Decode(f.bodies[strconv.Itoa(i)])
		if err != nil || !same(got, j) {
			t.Fatalf("job %d sent as %s (%v)", i, f.bodies[strconv.Itoa(i)], err)
		}
	}

	f = &fakeSQS{failTimes: map[string]int{"3": 2, "5": 1, "8": 5}}
	err := dsqs.New(f, "https://sqs.test/q").Enqueue(ctx, jobs(10))
	if err == nil || !strings.Contains(err.Error(), "2 of 10 jobs were not queued") || !strings.Contains(err.Error(), "message m-3") ||
		!strings.Contains(err.Error(), "InternalError: try again") {
		t.Fatalf("Enqueue with entries failing twice: %v", err)
	}
	if len(f.calls) != 2 || !reflect.DeepEqual(f.calls[1], []string{"3", "5", "8"}) {
		t.Fatalf("calls %v, want one retry of 3, 5 and 8", f.calls)
	}

	f = &fakeSQS{callErr: errors.New("connection refused")}
	if err := dsqs.New(f, "https://sqs.test/q").Enqueue(ctx, jobs(12)); err == nil || !strings.Contains(err.Error(), "12 of 12 jobs were not queued") ||
		!strings.Contains(err.Error(), "connection refused") || len(f.calls) != 4 {
		t.Fatalf("Enqueue with SQS down: %v after %d calls", err, len(f.calls))
	}

	// Large jobs: a call's bodies stay within what SQS takes together.
	big := jobs(5)
	for i := range big {
		big[i].Payload = json.RawMessage(`{"text":"` + strings.Repeat("x", 100<<10) + `"}`)
	}
	f = &fakeSQS{}
	if err := dsqs.New(f, "https://sqs.test/q").Enqueue(ctx, big); err != nil || len(f.calls) != 3 {
		t.Fatalf("Enqueue of 5 jobs of 100 KiB: %v, calls %v", err, f.calls)
	}

	// A job Decode would refuse, or too large, sends nothing.
	f = &fakeSQS{}
	bad := jobs(3)
	bad[2].DestinationID = ""
	if err := dsqs.New(f, "https://sqs.test/q").Enqueue(ctx, bad); err == nil || !strings.Contains(err.Error(), "destination_id") || len(f.calls) != 0 {
		t.Fatalf("Enqueue of a job without destination: %v, calls %v", err, f.calls)
	}
	bad[2] = job
	bad[2].Payload = json.RawMessage(`{"text":"` + strings.Repeat("x", dsqs.MaxBody) + `"}`)
	if err := dsqs.New(f, "https://sqs.test/q").Enqueue(ctx, bad); err == nil || !strings.Contains(err.Error(), "over the 262144") || len(f.calls) != 0 {
		t.Fatalf("Enqueue of a job over 256 KiB: %v, calls %v", err, f.calls)
	}
	if err := dsqs.New(nil, "https://unused").Enqueue(ctx, nil); err != nil {
		t.Fatalf("Enqueue of nothing: %v", err)
	}
}

// The adapter against moto_server's SQS: what Enqueue puts on the queue, Decode reads back as
// the same jobs; a queue that does not exist is an error, not a silent loss.
func TestQueueOnMoto(t *testing.T) {
	t.Parallel()
	client := sqstest.Client(t, sqstest.Endpoint(t))
	url := sqstest.CreateQueue(t, client)
	q := dsqs.New(client, url)
	js := jobs(13)
	js[5].Payload = json.RawMessage("{\"name\":\"Zoë \xff\ufffe\"}") // what SQS would refuse, escaped
	js[7].Hops = 1
	if err := q.Enqueue(ctx, js); err != nil {
		t.Fatal(err)
	}
	got := map[string]delivery.Job{}
	for deadline := time.Now().Add(20 * time.Second); len(got) < len(js) && time.Now().Before(deadline); {
		for _, m := range sqstest.Receive(t, client, url, time.Second) {
			j, err := dsqs.Decode(aws.ToString(m.Body))
			if err != nil {
				t.Fatalf("body %s: %v", aws.ToString(m.Body), err)
			}
			got[j.MessageID] = j
			if g := m.Attributes["MessageGroupId"]; g != "" && g != j.DestinationID {
				t.Errorf("%s: message group %q, want its destination", j.MessageID, g)
			}
		}
	}
	if len(got) != len(js) {
		t.Fatalf("received %d jobs, want %d", len(got), len(js))
	}
	for _, j := range js {
		if j.MessageID == "m-5" {
			var p map[string]string
			if err := json.Unmarshal(got["m-5"].Payload, &p); err != nil || p["name"] != "Zoë \ufffd\ufffe" {
				t.Errorf("payload of m-5: %s", got["m-5"].Payload)
			}
			continue
		}
		if !same(got[j.MessageID], j) {
			t.Errorf("sent %+v, received %+v", j, got[j.MessageID])
		}
	}

	err := dsqs.New(client, url+"-missing").Enqueue(ctx, jobs(2))
	if err == nil || !strings.Contains(err.Error(), "2 of 2 jobs were not queued") {
		t.Fatalf("Enqueue to a missing queue: %v", err)
	}
}

// FromEnv reads the queue URL from the environment and the endpoint the SDK's way
// (t.Setenv: not parallel).
func TestFromEnv(t *testing.T) {
	t.Setenv(dsqs.QueueURLEnv, "")
	if _, err := dsqs.FromEnv(ctx); !errors.Is(err, dsqs.ErrNoQueueURL) {
		t.Fatalf("without %s: %v, want ErrNoQueueURL", dsqs.QueueURLEnv, err)
	}
	client, url := sqstest.Env(t, dsqs.QueueURLEnv)
	q, err := dsqs.FromEnv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, []delivery.Job{job}); err != nil {
		t.Fatal(err)
	}
	msgs := sqstest.Receive(t, client, url, 5*time.Second)
	if len(msgs) != 1 || aws.ToString(msgs[0].Body) != body {
		t.Fatalf("received %d messages, first %v; want %s", len(msgs), msgs, body)
	}
	c, u, err := dsqs.ClientFromEnv(ctx)
	if err != nil || c == nil || u != url {
		t.Fatalf("ClientFromEnv: %v %q %v", c, u, err)
	}
}
