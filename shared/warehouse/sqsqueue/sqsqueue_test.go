package sqsqueue_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/sqsqueue"
	"github.com/unifiedprofiles/up/shared/warehouse/sqsqueue/sqstest"
)

var ctx = context.Background()

var task = warehouse.Task{WorkspaceID: "ws_01jdq8x3k2m4n5p6q7r8s9t0v1", MappingID: "map_01jdq8x3k2m4n5p6q7r8s9t0v2",
	SyncID: "sync_01jdq8x3k2m4n5p6q7r8s9t0v3", Page: 2}

const body = `{"workspace_id":"ws_01jdq8x3k2m4n5p6q7r8s9t0v1","mapping_id":"map_01jdq8x3k2m4n5p6q7r8s9t0v2","sync_id":"sync_01jdq8x3k2m4n5p6q7r8s9t0v3","page":2}`

func TestDecode(t *testing.T) {
	t.Parallel()
	good := []struct{ name, body string }{
		{"as sent", body},
		{"spaces around", " \n" + body + "\n "},
		{"fields in another order, an unknown one", `{"page":2,"sync_id":"sync_01jdq8x3k2m4n5p6q7r8s9t0v3","attempt":3,` +
			`"mapping_id":"map_01jdq8x3k2m4n5p6q7r8s9t0v2","workspace_id":"ws_01jdq8x3k2m4n5p6q7r8s9t0v1"}`},
	}
	for _, tc := range good {
		got, err := sqsqueue.Decode(tc.body)
		if err != nil || got != task {
			t.Errorf("%s: Decode = %+v, %v; want %+v", tc.name, got, err, task)
		}
	}
	plan := `{"workspace_id":"ws_1","mapping_id":"map_1","sync_id":"sync_1"}`
	if got, err := sqsqueue.Decode(plan); err != nil || got.Page != 0 {
		t.Errorf("a task without page (the plan): %+v, %v", got, err)
	}

	// Each refusal names what is wrong: shared/sqsbody's words for the body as JSON, after this
	// queue's; the task's own fields here.
	bad := []struct{ name, body, want string }{
		{"empty", "", "sqsqueue: the message body is empty, not a sync task"},
		{"not JSON", "hello", "sqsqueue: the message body is not a sync task: invalid JSON at byte 1"},
		{"two objects", body + body, "sqsqueue: the message body is not a sync task: data follows the JSON object"},
		{"an S3 event", `{"Records":[{"eventSource":"aws:s3"}]}`, "workspace_id is missing or empty"},
		{"no mapping", `{"workspace_id":"ws_1","sync_id":"sync_1"}`, "mapping_id is missing or empty"},
		{"no sync", `{"workspace_id":"ws_1","mapping_id":"map_1"}`, "sync_id is missing or empty"},
		{"page as text", strings.Replace(body, `"page":2`, `"page":"2"`, 1), "field page is a JSON string, want an integer"},
		{"negative page", strings.Replace(body, `"page":2`, `"page":-1`, 1), "page is -1, want 0 (plan) or more"},
		{"ids swapped", `{"workspace_id":"map_1","mapping_id":"ws_1","sync_id":"sync_1"}`,
			`sqsqueue: the message body is not a sync task: workspace_id "map_1" does not look like an id of its kind: want ws_`},
		{"too long", `{"workspace_id":"ws_1","mapping_id":"map_1","sync_id":"sync_` + strings.Repeat("a", 200) + `"}`, "sync_id is 205 characters long, at most 128"},
	}
	for _, tc := range bad {
		got, err := sqsqueue.Decode(tc.body)
		if err == nil {
			t.Errorf("%s: Decode = %+v, want an error", tc.name, got)
			continue
		}
		if got != (warehouse.Task{}) {
			t.Errorf("%s: a task with the error: %+v", tc.name, got)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want it to say %q", tc.name, err, tc.want)
		}
	}
}

func TestEncode(t *testing.T) {
	t.Parallel()
	if got, err := sqsqueue.Encode(task); err != nil || got != body {
		t.Fatalf("Encode = %s, %v; want %s", got, err, body)
	}
	// What the worker would refuse is not sent.
	if _, err := sqsqueue.Encode(warehouse.Task{WorkspaceID: "ws_1", MappingID: "map_1"}); err == nil || !strings.Contains(err.Error(), "sync_id") {
		t.Fatalf("Encode of a task without sync: %v", err)
	}
	q := sqsqueue.New(nil, "http://unused") // a nil client: Send must stop before using it
	if err := q.Send(ctx, warehouse.Task{WorkspaceID: "ws_1", MappingID: "map_1", SyncID: "sync_1", Page: -1}); err == nil {
		t.Fatal("Send of a negative page succeeded")
	}
}

// FuzzDecode: the worker decodes whatever body arrives on the queue. Decode never panics;
// what it accepts encodes back to a body that decodes to the same task; every task Encode
// accepts comes back from Decode unchanged.
func FuzzDecode(f *testing.F) {
	f.Add(body, "ws_1", "map_1", "sync_1", 0)
	f.Add(`{"workspace_id":"ws_1","mapping_id":"map_1","sync_id":"sync_1","page":-3}`, "ws_", "map_x", "sync_y", -1)
	f.Add(`{"page":1e3}`, "ws_a#b", "map_é", "sync_\x00", 1<<40)
	f.Add(`[{"workspace_id":"ws_1"}] `, "", "", "", 7)
	f.Add("null", "WS_1", "MAP_1", "SYNC_1", 1)
	f.Fuzz(func(t *testing.T, in, ws, mapping, sync string, page int) {
		if got, err := sqsqueue.Decode(in); err == nil {
			out, err := sqsqueue.Encode(got)
			if err != nil {
				t.Fatalf("Decode accepted %q as %+v, which Encode refuses: %v", in, got, err)
			}
			if back, err := sqsqueue.Decode(out); err != nil || back != got {
				t.Fatalf("round trip of %+v: %+v, %v", got, back, err)
			}
		} else if err.Error() == "" || !strings.HasPrefix(err.Error(), "sqsqueue: ") {
			t.Fatalf("error without a message: %q", err)
		}
		tk := warehouse.Task{WorkspaceID: ws, MappingID: mapping, SyncID: sync, Page: page}
		out, err := sqsqueue.Encode(tk)
		if err != nil {
			// The same fields as JSON: Decode refuses them too (one set of rules for both).
			b, _ := json.Marshal(tk)
			if got, derr := sqsqueue.Decode(string(b)); derr == nil {
				t.Fatalf("Encode refused %+v (%v) but Decode accepts it as %+v", tk, err, got)
			}
			return
		}
		if back, err := sqsqueue.Decode(out); err != nil || back != tk {
			t.Fatalf("round trip of %+v: %+v, %v", tk, back, err)
		}
	})
}

// The adapter against moto_server's SQS: what Send puts on the queue, Decode reads back as the
// same task; a queue that does not exist is an error, not a silent loss.
func TestQueueOnMoto(t *testing.T) {
	t.Parallel()
	client := sqstest.Client(t, sqstest.Endpoint(t))
	url := sqstest.CreateQueue(t, client)
	q := sqsqueue.New(client, url)
	plan := warehouse.Task{WorkspaceID: task.WorkspaceID, MappingID: task.MappingID, SyncID: task.SyncID}
	for _, tk := range []warehouse.Task{plan, task} {
		if err := q.Send(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	got := map[warehouse.Task]bool{}
	for deadline := time.Now().Add(20 * time.Second); len(got) < 2 && time.Now().Before(deadline); {
		for _, m := range sqstest.Receive(t, client, url, time.Second) {
			tk, err := sqsqueue.Decode(aws.ToString(m.Body))
			if err != nil {
				t.Fatalf("body %s: %v", aws.ToString(m.Body), err)
			}
			got[tk] = true
		}
	}
	if len(got) != 2 || !got[plan] || !got[task] {
		t.Fatalf("received %v, want the plan and page 2", got)
	}

	err := sqsqueue.New(client, url+"-missing").Send(ctx, task)
	if err == nil || !strings.Contains(err.Error(), "send page 2 of sync "+task.SyncID) {
		t.Fatalf("Send to a missing queue: %v", err)
	}
}

// FromEnv reads the queue URL from the environment and the endpoint the SDK's way
// (t.Setenv: not parallel).
func TestFromEnv(t *testing.T) {
	t.Setenv(sqsqueue.QueueURLEnv, "")
	if _, err := sqsqueue.FromEnv(ctx); !errors.Is(err, sqsqueue.ErrNoQueueURL) {
		t.Fatalf("without %s: %v, want ErrNoQueueURL", sqsqueue.QueueURLEnv, err)
	}
	client, url := sqstest.Env(t, sqsqueue.QueueURLEnv)
	q, err := sqsqueue.FromEnv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Send(ctx, task); err != nil {
		t.Fatal(err)
	}
	msgs := sqstest.Receive(t, client, url, 5*time.Second)
	if len(msgs) != 1 || aws.ToString(msgs[0].Body) != body {
		t.Fatalf("received %d messages, first %v; want %s", len(msgs), msgs, body)
	}
}

// A Salesforce task carries its kind, workspace and source; a Reverse ETL task encodes as
// before kinds existed, and one from before decodes as Reverse ETL.
func TestSalesforceTask(t *testing.T) {
	sf := warehouse.Task{Kind: warehouse.TaskSalesforce, WorkspaceID: "ws_01jdq8x3k2m4n5p6q7r8s9t0v1", SourceID: "src_01jdq8x3k2m4n5p6q7r8s9t0v3"}
	body, err := sqsqueue.Encode(sf)
	if err != nil || body != `{"kind":"salesforce","workspace_id":"ws_01jdq8x3k2m4n5p6q7r8s9t0v1","source_id":"src_01jdq8x3k2m4n5p6q7r8s9t0v3","page":0}` {
		t.Fatalf("Encode: %s %v", body, err)
	}
	if got, err := sqsqueue.Decode(body); err != nil || got != sf {
		t.Fatalf("Decode: %+v %v", got, err)
	}
	old := `{"workspace_id":"ws_01jdq8x3k2m4n5p6q7r8s9t0v1","mapping_id":"map_01jdq8x3k2m4n5p6q7r8s9t0v2","sync_id":"sync_01jdq8x3k2m4n5p6q7r8s9t0v3","page":2}`
	if got, err := sqsqueue.Decode(old); err != nil || got.Kind != warehouse.TaskReverseETL || got.Page != 2 {
		t.Fatalf("an old task: %+v %v", got, err)
	}
	if b, err := sqsqueue.Encode(warehouse.Task{WorkspaceID: "ws_1", MappingID: "map_1", SyncID: "sync_1", Page: 1}); err != nil || b != `{"workspace_id":"ws_1","mapping_id":"map_1","sync_id":"sync_1","page":1}` {
		t.Fatalf("a Reverse ETL task: %s %v", b, err)
	}
	for body, want := range map[string]string{
		`{"kind":"salesforce","workspace_id":"ws_1"}`:                     "source_id is missing",
		`{"kind":"salesforce","workspace_id":"ws_1","source_id":"map_1"}`: "source_id",
		`{"kind":"hubspot","workspace_id":"ws_1","source_id":"src_1"}`:    `kind "hubspot" is unknown`,
	} {
		if _, err := sqsqueue.Decode(body); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(%s): %v, want %q", body, err, want)
		}
	}
}

// A prediction task carries its kind, workspace, space and prediction, and decodes back the
// same; what it lacks, or an id of the wrong kind, is named.
func TestPredictionTask(t *testing.T) {
	t.Parallel()
	pt := warehouse.Task{Kind: warehouse.TaskPrediction, WorkspaceID: "ws_01jdq8x3k2m4n5p6q7r8s9t0v1", SpaceID: "sp_01jdq8x3k2m4n5p6q7r8s9t0v4",
		PredictionID: "pred_01jdq8x3k2m4n5p6q7r8s9t0v5"}
	body, err := sqsqueue.Encode(pt)
	want := `{"kind":"prediction","workspace_id":"ws_01jdq8x3k2m4n5p6q7r8s9t0v1","space_id":"sp_01jdq8x3k2m4n5p6q7r8s9t0v4","prediction_id":"pred_01jdq8x3k2m4n5p6q7r8s9t0v5","page":0}`
	if err != nil || body != want {
		t.Fatalf("Encode: %s %v, want %s", body, err, want)
	}
	if got, err := sqsqueue.Decode(body); err != nil || got != pt {
		t.Fatalf("Decode: %+v %v", got, err)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"no space", `{"kind":"prediction","workspace_id":"ws_1","prediction_id":"pred_1"}`, "space_id is missing"},
		{"no prediction", `{"kind":"prediction","workspace_id":"ws_1","space_id":"sp_1"}`, "prediction_id is missing"},
		{"a source for a space", `{"kind":"prediction","workspace_id":"ws_1","space_id":"src_1","prediction_id":"pred_1"}`, `space_id "src_1" does not look like an id`},
		{"a key separator", `{"kind":"prediction","workspace_id":"ws_1","space_id":"sp_1","prediction_id":"pred_1#x"}`, "prediction_id"},
		{"a prediction without its kind", `{"workspace_id":"ws_1","space_id":"sp_1","prediction_id":"pred_1"}`, "mapping_id is missing"},
		{"unknown kind", `{"kind":"predictions","workspace_id":"ws_1","space_id":"sp_1","prediction_id":"pred_1"}`, `kind "predictions" is unknown`},
	} {
		if got, err := sqsqueue.Decode(tc.body); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Decode = %+v, %v; want an error saying %q", tc.name, got, err, tc.want)
		}
	}
	q := sqsqueue.New(nil, "http://unused") // a nil client: Send must stop before using it
	if err := q.Send(ctx, warehouse.Task{Kind: warehouse.TaskPrediction, WorkspaceID: "ws_1", SpaceID: "sp_1"}); err == nil || !strings.Contains(err.Error(), "prediction_id") {
		t.Fatalf("Send of a prediction task without its prediction: %v", err)
	}
}
