package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/unifiedprofiles/up/infra/lambdatest"
	"github.com/unifiedprofiles/up/infra/pgtest"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/predict"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/salesforce"
	"github.com/unifiedprofiles/up/shared/secrets/kms"
	"github.com/unifiedprofiles/up/shared/secrets/kms/kmstest"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/postgres"
	"github.com/unifiedprofiles/up/shared/warehouse/sqsqueue"
	"github.com/unifiedprofiles/up/shared/warehouse/sqsqueue/sqstest"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

const operatorToken = "upo_sync_worker_rie_test"

// unreachable is an address nothing listens on: the tasks of TestSyncWorkerUnderRIE never
// queue a next task nor open credentials, and must not try.
const unreachable = "http://127.0.0.1:9"

// The sync-worker bootstrap, under the Lambda Runtime Interface Emulator, with DynamoDB: the
// sample SQS event's task, for a sync that does not exist, succeeds with no batch item
// failure; in a batch, only the record whose body is not a task is reported failed. Without
// the KMS key it refuses to start.
func TestSyncWorkerUnderRIE(t *testing.T) {
	t.Parallel()
	endpoint, table := storetest.DynamoTable(t)
	ctx := context.Background()
	env := map[string]string{
		"UP_TABLE_NAME":             table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		"UP_SYNC_QUEUE_URL":         unreachable + "/123456789012/up-sync-unused",
		"UP_DESTINATIONS_QUEUE_URL": unreachable + "/123456789012/up-destinations-unused", // no destination: never called
		"AWS_ENDPOINT_URL_SQS":      unreachable,
		"UP_KMS_KEY_ID":             "alias/up-unused",
		"UP_KMS_ENDPOINT":           unreachable,
	}
	em := lambdatest.Run(t, "sync-worker", env)

	sample := lambdatest.LoadEvent(t, "sync-worker-sqs")
	if failed := invoke(t, em, sample); len(failed) != 0 {
		t.Fatalf("a task of a sync that does not exist failed: %v", failed)
	}
	t.Logf("bootstrap %d bytes, first invocation %v", em.Bootstrap.Size, em.FirstInvocation())

	var ev events.SQSEvent
	if err := json.Unmarshal(sample, &ev); err != nil {
		t.Fatal(err)
	}
	if _, err := sqsqueue.Decode(ev.Records[0].Body); err != nil {
		t.Fatalf("the sample's body is not a task: %v", err)
	}
	record := func(id, body string) events.SQSMessage {
		r := ev.Records[0]
		r.MessageId, r.Body = id, body
		return r
	}
	other := strings.Replace(ev.Records[0].Body, `"page":0`, `"page":3`, 1)
	batch := events.SQSEvent{Records: []events.SQSMessage{
		record("m-task", ev.Records[0].Body),
		record("m-not-json", "hello"),
		record("m-s3-event", `{"Records":[{"eventSource":"aws:s3"}]}`),
		record("m-another-task", other),
	}}
	payload, _ := json.Marshal(batch)
	if failed := invoke(t, em, payload); !reflect.DeepEqual(failed, []string{"m-not-json", "m-s3-event"}) {
		t.Fatalf("batch item failures %v, want the two records that are not tasks", failed)
	}
	if out := em.WaitOutput(5*time.Second, `"msg":"not a sync task"`, "m-s3-event"); !strings.Contains(out, `"msg":"not a sync task"`) || !strings.Contains(out, "m-s3-event") {
		t.Errorf("the refused bodies are not logged:\n%s", out)
	}

	// No key, no start: the worker could open no warehouse credentials.
	delete(env, "UP_KMS_KEY_ID")
	noKey := lambdatest.Start(t, em.Bootstrap, env)
	if _, err := noKey.Invoke(ctx, sample); err == nil || !strings.Contains(noKey.Output(), kms.KeyIDEnv+" is not set") {
		t.Fatalf("started without a KMS key: %v\n%s", err, noKey.Output())
	}
}

// invoke sends an SQS event and returns the ids of the records reported failed.
func invoke(t *testing.T, em *lambdatest.Emulator, event []byte) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := em.Invoke(ctx, event)
	if err != nil {
		t.Fatalf("invoke: %v\n%s", err, em.Output())
	}
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || resp.BatchItemFailures == nil {
		t.Fatalf("answer %s (%v): want a partial batch response", out, err)
	}
	failed := []string{}
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	return failed
}

// A whole sync through the worker under the emulator, on real parts: PostgreSQL (pgtest) as
// the warehouse, credentials sealed by KMS, DynamoDB and the queue on moto_server. This
// process sets the source up and starts the sync as the setup API would; each message then
// taken off the queue is handed to the worker in an SQS event, as Lambda's event source
// mapping would: the plan queues page 1, page 1 loads both records and ends the sync.
func TestSyncWorkerRunsASyncUnderRIE(t *testing.T) {
	t.Parallel()
	endpoint := sqstest.Endpoint(t) // skips (or fails under CI) without moto
	pg := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pg.Exec(t,
		"CREATE ROLE retl LOGIN PASSWORD 'retl-password'", "GRANT CREATE ON DATABASE postgres TO retl",
		"CREATE TABLE contacts (id integer, email text, plan text)", "GRANT SELECT ON contacts TO retl",
		"INSERT INTO contacts VALUES (1, 'ada@example.com', 'pro'), (2, 'grace@example.com', 'free')",
	)

	_, table, st := storetest.DynamoStore(t)
	kmsClient := kmstest.Client(t, endpoint)
	keyID := kmstest.CreateKey(t, kmsClient)
	sealer := kms.New(kmsClient, keyID)
	sqsClient := sqstest.Client(t, endpoint)
	queueURL := sqstest.CreateQueue(t, sqsClient)
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken)})
	tn := workspacetest.New(t, ws, operatorToken)
	src := tn.Source(t, "postgres")
	profiles := profile.New(st, profile.Options{})
	svc := warehouse.New(st, ws, profiles, sealer, map[string]warehouse.Opener{"postgres": postgres.Open},
		sqsqueue.New(sqsClient, queueURL), warehouse.Options{})
	conn, err := svc.SetConnection(ctx, tn.Owner, tn.ID(), src.ID, warehouse.Credentials{Host: pg.Socket, Port: 5432,
		Database: "postgres", User: "retl", Password: "retl-password", SSLMode: "disable"})
	if err != nil || conn.LastTest == nil || !conn.LastTest.OK {
		t.Fatalf("connection: %+v, %v", conn, err)
	}
	name, sql, id := "Contacts", "SELECT id, email, plan FROM contacts", "id"
	model, err := svc.CreateModel(ctx, tn.Owner, tn.ID(), src.ID, warehouse.NewModel{Name: &name, SQL: &sql, IDColumn: &id})
	if err != nil {
		t.Fatal(err)
	}
	mp, err := svc.CreateMapping(ctx, tn.Owner, tn.ID(), src.ID, model.ID, warehouse.NewMapping{
		Identifiers: map[string]string{"email": "email"}, Traits: map[string]string{"plan": "plan"},
		Schedule: &warehouse.Schedule{Manual: true}})
	if err != nil {
		t.Fatal(err)
	}
	started, err := svc.SyncNow(ctx, tn.Owner, tn.ID(), src.ID, model.ID, mp.ID)
	if err != nil {
		t.Fatal(err)
	}

	em := lambdatest.Run(t, "sync-worker", map[string]string{
		"UP_TABLE_NAME":             table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		"UP_SYNC_QUEUE_URL":         queueURL,
		"UP_DESTINATIONS_QUEUE_URL": queueURL + "-destinations-unused", // no destination: never called
		"AWS_ENDPOINT_URL_SQS":      endpoint,
		"UP_KMS_KEY_ID":             keyID,
		"UP_KMS_ENDPOINT":           endpoint,
	})
	var sample events.SQSEvent
	if err := json.Unmarshal(lambdatest.LoadEvent(t, "sync-worker-sqs"), &sample); err != nil {
		t.Fatal(err)
	}
	var pages []int
	for len(pages) < 5 {
		msgs := sqstest.Receive(t, sqsClient, queueURL, 2*time.Second)
		if len(msgs) == 0 {
			break
		}
		ev := events.SQSEvent{}
		for _, m := range msgs {
			tk, err := sqsqueue.Decode(aws.ToString(m.Body))
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, tk.Page)
			r := sample.Records[0]
			r.MessageId, r.ReceiptHandle, r.Body, r.Md5OfBody = aws.ToString(m.MessageId), aws.ToString(m.ReceiptHandle), aws.ToString(m.Body), aws.ToString(m.MD5OfBody)
			ev.Records = append(ev.Records, r)
		}
		payload, _ := json.Marshal(ev)
		if failed := invoke(t, em, payload); len(failed) != 0 {
			t.Fatalf("tasks failed: %v\n%s", failed, em.Output())
		}
	}
	if !reflect.DeepEqual(pages, []int{0, 1}) {
		t.Fatalf("the worker was handed pages %v, want the plan (0) then page 1", pages)
	}

	sy, err := svc.GetSync(ctx, tn.Owner, tn.ID(), src.ID, model.ID, mp.ID, started.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sy.Status != warehouse.StatusSucceeded || sy.Extracted.Added != 2 || sy.Loaded.Succeeded != 2 || sy.FinishedAt == nil {
		t.Fatalf("sync %+v", sy)
	}
	p, err := profiles.Lookup(ctx, tn.SpaceID(), identity.Identifier{Type: identity.TypeEmail, Value: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.TraitValues()["plan"]; got != "pro" {
		t.Errorf("ada's plan is %v, want pro (traits %v)", got, p.TraitValues())
	}
}

// The handler alone, with a stand-in for the service: a task that fails is reported, the
// others are not; once out of time, the tasks not begun are reported without being tried.
func TestHandlerReportsEachFailedRecord(t *testing.T) {
	t.Parallel()
	body := func(page int) string {
		b, err := sqsqueue.Encode(warehouse.Task{WorkspaceID: "ws_1", MappingID: "map_1", SyncID: "sync_1", Page: page})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "ok", Body: body(0)}, {MessageId: "fails", Body: body(1)}, {MessageId: "slow", Body: body(2)},
		{MessageId: "not-begun", Body: body(3)},
	}}
	w := &fakeWorker{fail: map[int]bool{1: true}, slow: 2}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // a margin of 0.2 s
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	resp, err := handler(w, log)(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if !reflect.DeepEqual(failed, []string{"fails", "slow", "not-begun"}) {
		t.Errorf("failures %v, want fails, slow, not-begun", failed)
	}
	if !reflect.DeepEqual(w.pages, []int{0, 1, 2}) {
		t.Errorf("worked pages %v, want 0, 1, 2 (page 3 began after the time was up)", w.pages)
	}
}

// fakeWorker fails the pages in fail; page slow runs until the handler's time is up (the
// test's deadline less the handler's margin).
type fakeWorker struct {
	fail  map[int]bool
	slow  int
	pages []int
}

func (w *fakeWorker) Work(ctx context.Context, t warehouse.Task) error {
	w.pages = append(w.pages, t.Page)
	if t.Page == w.slow {
		<-ctx.Done()
		return ctx.Err()
	}
	if w.fail[t.Page] {
		return errors.New("the warehouse is unreachable")
	}
	return nil
}

// A task of kind salesforce goes to the Salesforce runner, one of kind prediction to the
// predictions, the others to Reverse ETL.
func TestRouterByKind(t *testing.T) {
	t.Parallel()
	retl, sf, pred := &fakeWorker{fail: map[int]bool{}, slow: -1}, &fakeRunner{}, &fakePredictions{}
	r := router{retl: retl, sf: sf, pred: pred}
	for _, body := range []string{
		`{"kind":"salesforce","workspace_id":"ws_1","source_id":"src_1","page":0}`,
		`{"workspace_id":"ws_1","mapping_id":"map_1","sync_id":"sync_1","page":4}`,
		`{"kind":"prediction","workspace_id":"ws_1","space_id":"sp_1","prediction_id":"pred_1"}`,
	} {
		task, err := sqsqueue.Decode(body)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Work(context.Background(), task); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(sf.runs, []string{"ws_1/src_1"}) || !reflect.DeepEqual(retl.pages, []int{4}) || !reflect.DeepEqual(pred.runs, []string{"ws_1/sp_1/pred_1"}) {
		t.Fatalf("salesforce runs %v, reverse ETL pages %v, prediction runs %v", sf.runs, retl.pages, pred.runs)
	}
}

type fakePredictions struct{ runs []string }

func (f *fakePredictions) Run(_ context.Context, ws, sp, id string) (bool, error) {
	f.runs = append(f.runs, ws+"/"+sp+"/"+id)
	return true, nil
}

// A prediction's run through the worker under the emulator, on DynamoDB: this process
// applies a little activity and creates a churn prediction as the setup API would; the task
// the dispatcher would send runs it in the worker (first before the space's counts backfill
// may start, then after: too little data, waiting_for_data, with each requirement and the
// anonymous profile left out), and the same task again (SQS delivers at least once) runs
// nothing.
func TestSyncWorkerRunsAPredictionUnderRIE(t *testing.T) {
	t.Parallel()
	endpoint, table, st := storetest.DynamoStore(t)
	ctx := context.Background()
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken)})
	tn := workspacetest.New(t, ws, operatorToken)
	profiles := profile.New(st, profile.Options{})
	now := time.Now().UTC()
	var msgs []message.Message
	for i, who := range []string{"ada", "grace", "anon"} {
		m := message.Message{Type: message.Track, MessageID: fmt.Sprintf("m-%d", i), Event: "Order Completed",
			Timestamp: now.Add(-48 * time.Hour), ReceivedAt: now, Raw: []byte(`{}`)}
		if who == "anon" {
			m.AnonymousID = "anon-1"
		} else {
			m.UserID = who
		}
		msgs = append(msgs, m)
	}
	if outs, err := profiles.ApplyMany(ctx, tn.SpaceID(), msgs); err != nil || outs[0].Err != nil {
		t.Fatalf("apply: %v %+v", err, outs)
	}
	preds := predict.New(st, ws, profiles, predict.Options{})
	var spec predict.Spec
	json.Unmarshal([]byte(`{"kind":"churn","key":"likely_to_churn","event":"Order Completed","window_days":30}`), &spec)
	p, err := preds.Create(ctx, tn.Owner, tn.ID(), tn.SpaceID(), spec)
	if err != nil {
		t.Fatal(err)
	}

	em := lambdatest.Run(t, "sync-worker", map[string]string{
		"UP_TABLE_NAME":             table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		"UP_SYNC_QUEUE_URL":         unreachable + "/123456789012/up-sync-unused",
		"UP_DESTINATIONS_QUEUE_URL": unreachable + "/123456789012/up-destinations-unused",
		"AWS_ENDPOINT_URL_SQS":      unreachable,
		"UP_KMS_KEY_ID":             "alias/up-unused",
		"UP_KMS_ENDPOINT":           unreachable,
	})
	var ev events.SQSEvent
	if err := json.Unmarshal(lambdatest.LoadEvent(t, "sync-worker-sqs"), &ev); err != nil {
		t.Fatal(err)
	}
	body, err := sqsqueue.Encode(warehouse.Task{Kind: warehouse.TaskPrediction, WorkspaceID: tn.ID(), SpaceID: tn.SpaceID(), PredictionID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	ev.Records[0].Body = body
	payload, _ := json.Marshal(ev)
	get := func() predict.Prediction {
		t.Helper()
		got, err := preds.Get(ctx, tn.Owner, tn.ID(), tn.SpaceID(), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	// As the setup API's task arrives: if the space's counts backfill may not start yet (a few
	// seconds after its first prediction; the emulator may take longer than that to start),
	// the run judges nothing and is due again then, and the task is sent again then.
	if failed := invoke(t, em, payload); len(failed) != 0 {
		t.Fatalf("the prediction's task failed: %v\n%s", failed, em.Output())
	}
	if first := get(); first.Status == predict.StatusTraining {
		if len(first.Requirements) != 0 || first.NextRunAt == nil || first.NextRunAt.After(time.Now().Add(10*time.Second)) {
			t.Fatalf("the run before the counts backfill could start: %+v", first)
		}
		time.Sleep(time.Until(*first.NextRunAt) + 100*time.Millisecond)
		if failed := invoke(t, em, payload); len(failed) != 0 {
			t.Fatalf("the prediction's task failed: %v\n%s", failed, em.Output())
		}
	}
	got := get()
	if got.Status != predict.StatusWaitingForData || len(got.Requirements) != 5 || got.AnonymousProfiles != 1 || got.LastRunAt == nil ||
		got.NextRunAt == nil || got.NextRunAt.Sub(*got.LastRunAt) < 23*time.Hour {
		t.Fatalf("after the worker's run: %+v", got)
	}
	for _, r := range got.Requirements {
		if r.Met && r.Rule != "event_types" {
			t.Errorf("requirement met on two profiles: %+v", r)
		}
	}
	// The same task again: the run already ended and the next is a day away.
	if failed := invoke(t, em, payload); len(failed) != 0 {
		t.Fatalf("the repeated task failed: %v", failed)
	}
	if again, _ := preds.Get(ctx, tn.Owner, tn.ID(), tn.SpaceID(), p.ID); !again.LastRunAt.Equal(*got.LastRunAt) {
		t.Fatalf("the repeated task ran the prediction again: %+v", again)
	}
}

type fakeRunner struct{ runs []string }

func (f *fakeRunner) Run(_ context.Context, ws, src string) (salesforce.SyncRun, bool, error) {
	f.runs = append(f.runs, ws+"/"+src)
	return salesforce.SyncRun{}, true, nil
}
