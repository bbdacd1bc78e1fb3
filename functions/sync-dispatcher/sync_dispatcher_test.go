package main

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/unifiedprofiles/up/infra/lambdatest"
	"github.com/unifiedprofiles/up/shared/predict"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/secrets/localkey"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/sqsqueue"
	"github.com/unifiedprofiles/up/shared/warehouse/sqsqueue/sqstest"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

const operatorToken = "upo_sync_dispatcher_rie_test"

// The sync-dispatcher bootstrap, under the Lambda Runtime Interface Emulator, takes the sample
// scheduled event and, in DynamoDB and SQS (moto_server): starts the sync of a mapping that is
// due (its plan goes to the queue) and sends again the task of a sync whose lease ran out. A
// second run starts nothing twice.
func TestSyncDispatcherUnderRIE(t *testing.T) {
	t.Parallel()
	sqsClient := sqstest.Client(t, sqstest.Endpoint(t)) // skips (or fails under CI) without moto
	queueURL := sqstest.CreateQueue(t, sqsClient)
	endpoint, table, st := storetest.DynamoStore(t)
	ctx := context.Background()

	// Two mappings, made two days ago by this process: one syncs daily at 00:00 (so it is due
	// now), the other hourly, whose first sync started then and whose worker never took it.
	past := time.Now().UTC().Add(-48 * time.Hour)
	sealer, err := localkey.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken)})
	tn := workspacetest.New(t, ws, operatorToken)
	src := tn.Source(t, "postgres")
	sent := &recorder{}
	svc := warehouse.New(st, ws, profile.New(st, profile.Options{}), sealer,
		map[string]warehouse.Opener{"postgres": func(context.Context, warehouse.Credentials) (warehouse.DB, error) { return fakeDB{}, nil }},
		sent, warehouse.Options{Now: func() time.Time { return past }})
	if _, err := svc.SetConnection(ctx, tn.Owner, tn.ID(), src.ID, warehouse.Credentials{Host: "warehouse.example.com", Port: 5432,
		Database: "crm", User: "retl", Password: "secret", SSLMode: "require"}); err != nil {
		t.Fatal(err)
	}
	name, sql, id := "Contacts", "SELECT id, email FROM contacts", "id"
	model, err := svc.CreateModel(ctx, tn.Owner, tn.ID(), src.ID, warehouse.NewModel{Name: &name, SQL: &sql, IDColumn: &id})
	if err != nil {
		t.Fatal(err)
	}
	mapping := func(sc warehouse.Schedule) warehouse.Mapping {
		m, err := svc.CreateMapping(ctx, tn.Owner, tn.ID(), src.ID, model.ID, warehouse.NewMapping{
			Identifiers: map[string]string{"email": "email"}, Schedule: &sc})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	daily, hourly := mapping(warehouse.Schedule{DailyAt: "00:00"}), mapping(warehouse.Schedule{Interval: "1h"})
	if daily.Running != "" || daily.NextSyncAt == nil || !daily.NextSyncAt.Before(time.Now()) {
		t.Fatalf("the daily mapping is not due: %+v", daily)
	}
	if len(sent.tasks) != 1 || sent.tasks[0].MappingID != hourly.ID || hourly.Running == "" {
		t.Fatalf("the hourly mapping's first sync did not start: %+v, sent %+v", hourly, sent.tasks)
	}
	stalled := sent.tasks[0]

	em := lambdatest.Run(t, "sync-dispatcher", map[string]string{
		"UP_TABLE_NAME":             table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		"UP_SYNC_QUEUE_URL":         queueURL,
		"AWS_ENDPOINT_URL_SQS":      sqstest.Endpoint(t),
	})
	invoke := func() {
		t.Helper()
		out, err := em.Invoke(ctx, lambdatest.LoadEvent(t, "sync-dispatcher-scheduled"))
		if err != nil {
			t.Fatalf("invoke: %v\n%s", err, em.Output())
		}
		if !bytes.Equal(bytes.TrimSpace(out), []byte("null")) {
			t.Errorf("answer %s", out)
		}
	}
	received := func() map[string]warehouse.Task {
		t.Helper()
		got := map[string]warehouse.Task{}
		for _, m := range sqstest.Receive(t, sqsClient, queueURL, time.Second) {
			tk, err := sqsqueue.Decode(aws.ToString(m.Body))
			if err != nil {
				t.Fatalf("a message the worker cannot read: %v", err)
			}
			if _, dup := got[tk.MappingID]; dup {
				t.Errorf("two tasks for mapping %s in one run", tk.MappingID)
			}
			got[tk.MappingID] = tk
		}
		return got
	}

	invoke()
	t.Logf("bootstrap %d bytes, first invocation %v", em.Bootstrap.Size, em.FirstInvocation())
	got := received()
	if len(got) != 2 {
		t.Fatalf("the queue holds %v, want a task for each mapping", got)
	}
	if got[hourly.ID] != stalled {
		t.Errorf("the stalled sync's task sent again is %+v, want %+v", got[hourly.ID], stalled)
	}
	started := got[daily.ID]
	d, err := svc.GetMapping(ctx, tn.Owner, tn.ID(), src.ID, model.ID, daily.ID)
	if err != nil {
		t.Fatal(err)
	}
	if started.Page != 0 || started.WorkspaceID != tn.ID() || started.SyncID == "" || d.Running != started.SyncID || d.NextSyncAt != nil {
		t.Fatalf("the due mapping's sync: task %+v, mapping %+v", started, d)
	}
	sy, err := svc.GetSync(ctx, tn.Owner, tn.ID(), src.ID, model.ID, daily.ID, started.SyncID)
	if err != nil || sy.Trigger != warehouse.TriggerSchedule || sy.Status != warehouse.StatusInProgress {
		t.Fatalf("the started sync: %+v, %v", sy, err)
	}

	// A second run within the lease: the daily sync runs (its lease is fresh), so nothing
	// starts again; the stalled one was sent with a new deadline, so it is not sent again
	// while that copy waits in the queue.
	invoke()
	if got = received(); len(got) != 0 {
		t.Fatalf("second run sent %v, want nothing", got)
	}
	if sy, err := svc.GetSync(ctx, tn.Owner, tn.ID(), src.ID, model.ID, hourly.ID, stalled.SyncID); err != nil || sy.Held || !sy.LeaseUntil.After(time.Now()) {
		t.Fatalf("the stalled sync after it was sent again: %+v, %v", sy, err)
	}
}

// recorder is the queue of the process that made the mappings.
type recorder struct {
	mu    sync.Mutex
	tasks []warehouse.Task
}

func (r *recorder) Send(_ context.Context, t warehouse.Task) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks = append(r.tasks, t)
	return nil
}

// fakeDB stands in for the warehouse while the model is saved: the dispatcher itself never
// opens a warehouse (it has no drivers).
type fakeDB struct{}

func (fakeDB) Exec(context.Context, ...string) error { return nil }
func (fakeDB) Close() error                          { return nil }
func (fakeDB) Query(context.Context, string) (warehouse.Rows, error) {
	return warehouse.Rows{Columns: []warehouse.Column{{Name: "id", Type: "int4"}, {Name: "email", Type: "text"}},
		Rows: [][]any{{int64(1), "ada@example.com"}}}, nil
}

// Predictions under the emulator, on DynamoDB and SQS (moto_server): a new prediction is due
// at once, and the dispatcher sends its run to the queue as a task of kind prediction; while
// it is due and no run holds it, each minute's dispatch sends it again (a lost task costs a
// minute); once it ran (here in this process, as the worker would), nothing is sent until its
// next run is due.
func TestSyncDispatcherQueuesPredictionsUnderRIE(t *testing.T) {
	t.Parallel()
	sqsClient := sqstest.Client(t, sqstest.Endpoint(t)) // skips (or fails under CI) without moto
	queueURL := sqstest.CreateQueue(t, sqsClient)
	endpoint, table, st := storetest.DynamoStore(t)
	ctx := context.Background()
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken)})
	tn := workspacetest.New(t, ws, operatorToken)
	preds := predict.New(st, ws, profile.New(st, profile.Options{}), predict.Options{})
	var spec predict.Spec
	if err := json.Unmarshal([]byte(`{"kind":"purchase","key":"will_buy","events":["Order Completed"],"window_days":15}`), &spec); err != nil {
		t.Fatal(err)
	}
	p, err := preds.Create(ctx, tn.Owner, tn.ID(), tn.SpaceID(), spec)
	if err != nil {
		t.Fatal(err)
	}

	em := lambdatest.Run(t, "sync-dispatcher", map[string]string{
		"UP_TABLE_NAME":             table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		"UP_SYNC_QUEUE_URL":         queueURL,
		"AWS_ENDPOINT_URL_SQS":      sqstest.Endpoint(t),
	})
	dispatch := func() []warehouse.Task {
		t.Helper()
		if out, err := em.Invoke(ctx, lambdatest.LoadEvent(t, "sync-dispatcher-scheduled")); err != nil || !bytes.Equal(bytes.TrimSpace(out), []byte("null")) {
			t.Fatalf("invoke: %s %v\n%s", out, err, em.Output())
		}
		var got []warehouse.Task
		for _, m := range sqstest.Receive(t, sqsClient, queueURL, time.Second) {
			tk, err := sqsqueue.Decode(aws.ToString(m.Body))
			if err != nil {
				t.Fatalf("a message the worker cannot read: %v", err)
			}
			got = append(got, tk)
		}
		return got
	}
	want := warehouse.Task{Kind: warehouse.TaskPrediction, WorkspaceID: tn.ID(), SpaceID: tn.SpaceID(), PredictionID: p.ID}
	for i := range 2 {
		if got := dispatch(); len(got) != 1 || got[0] != want {
			t.Fatalf("dispatch %d sent %+v, want %+v", i+1, got, want)
		}
	}
	if ran, err := preds.Run(ctx, tn.ID(), tn.SpaceID(), p.ID); !ran || err != nil {
		t.Fatalf("the run: %v %v", ran, err)
	}
	if got := dispatch(); len(got) != 0 {
		t.Fatalf("after the run the dispatcher sent %+v, want nothing until the next run is due", got)
	}
}
