// Command sync-worker runs Reverse ETL sync tasks from SQS. It only wires: the logic is
// warehouse.Service.Work, which plans a sync or loads one page of it, checkpoints, and sends
// the sync's next task to the same queue. A task of kind salesforce runs a Salesforce
// source's sync (salesforce.Runner.Run) into its warehouse source; one of kind prediction a
// prediction's run (predict.Service.Run: load the space's activity, train or rescore, put
// the scores).
//
// It answers with partial batch responses: a task that fails comes back alone, after the
// queue's visibility timeout, and goes to the dead-letter queue after 5 receives; a body that
// is not a task fails the same way (and so ends in the dead-letter queue, whose alarm tells
// someone). A sync never depends on that redelivery alone: the dispatcher sends a task again
// once its sync's lease has run out.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/unifiedprofiles/up/shared/delivery"
	dsqs "github.com/unifiedprofiles/up/shared/delivery/sqsqueue"
	"github.com/unifiedprofiles/up/shared/lambdactx"
	"github.com/unifiedprofiles/up/shared/predict"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/salesforce"
	sfrest "github.com/unifiedprofiles/up/shared/salesforce/rest"
	"github.com/unifiedprofiles/up/shared/secrets/kms"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/bigquery"
	"github.com/unifiedprofiles/up/shared/warehouse/postgres"
	"github.com/unifiedprofiles/up/shared/warehouse/snowflake"
	"github.com/unifiedprofiles/up/shared/warehouse/sqsqueue"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// openers are the warehouse drivers: all four here, where syncs run.
var openers = map[string]warehouse.Opener{
	"postgres": postgres.Open, "redshift": postgres.OpenRedshift,
	// The BigQuery and Snowflake drivers add 13 and 17.5 MB: this function alone has them.
	"bigquery": bigquery.Open, "snowflake": snowflake.Open,
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("function", "sync-worker")
	ctx := context.Background()
	st, err := dynamo.OpenFromEnv(ctx)
	if err != nil {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	queue, err := sqsqueue.FromEnv(ctx)
	if err != nil {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	// Warehouse credentials are sealed with KMS (the setup API seals them). Unlike the setup
	// API, which serves without a key, every task needs them: no key, no start.
	sealer, err := kms.FromEnv(ctx)
	if err != nil {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	// A sync's identifies are the warehouse source's messages: queued for its destinations.
	deliveries, err := dsqs.FromEnv(ctx)
	if err != nil {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	profiles := profile.New(st, profile.Options{})
	ws := workspace.New(st, workspace.Options{})
	svc := warehouse.New(st, ws, profiles, sealer, openers, queue, warehouse.Options{Outbox: delivery.NewOutbox(ws, deliveries, delivery.OutboxOptions{})})
	// Salesforce syncs need the connected app; without it their tasks fail (and say why),
	// Reverse ETL's still run.
	var client salesforce.ClientFunc
	app, appErr := sfrest.FromEnv()
	if appErr == nil {
		client = app.SyncClient
	} else {
		client = func(context.Context, salesforce.Connection) (salesforce.Client, error) { return nil, appErr }
	}
	sf := salesforce.NewRunner(salesforce.NewConnector(st, ws, sealer, nil, salesforce.ConnectorOptions{}), svc, client, salesforce.RunnerOptions{})
	preds := predict.New(st, ws, profiles, predict.Options{})
	lambda.Start(handler(router{retl: svc, sf: sf, pred: preds}, log))
}

// router runs a task by its kind: Reverse ETL's on warehouse.Service, Salesforce's on the
// Runner, a prediction's on predict.Service (a run held by another worker does nothing; a
// run's failures end in its history or the prediction's status).
type router struct {
	retl worker
	sf   interface {
		Run(ctx context.Context, ws, src string) (salesforce.SyncRun, bool, error)
	}
	pred interface {
		Run(ctx context.Context, ws, sp, id string) (bool, error)
	}
}

func (r router) Work(ctx context.Context, t warehouse.Task) error {
	switch t.Kind {
	case warehouse.TaskSalesforce:
		_, _, err := r.sf.Run(ctx, t.WorkspaceID, t.SourceID)
		return err
	case warehouse.TaskPrediction:
		_, err := r.pred.Run(ctx, t.WorkspaceID, t.SpaceID, t.PredictionID)
		return err
	}
	return r.retl.Work(ctx, t)
}

// worker is what the handler needs of warehouse.Service.
type worker interface {
	Work(ctx context.Context, t warehouse.Task) error
}

// handler runs each record's task in turn and reports the records that failed.
func handler(w worker, log *slog.Logger) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		ctx, cancel := lambdactx.BeforeDeadline(ctx)
		defer cancel()
		// An empty list, not null: every record succeeded.
		resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
		fail := func(rec events.SQSMessage) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
		for _, rec := range ev.Records {
			if ctx.Err() != nil {
				fail(rec) // out of time before this task began: it comes back
				continue
			}
			t, err := sqsqueue.Decode(rec.Body)
			if err != nil {
				log.Error("not a sync task", "message_id", rec.MessageId, "err", err)
				fail(rec)
				continue
			}
			if err := w.Work(ctx, t); err != nil {
				lvl := slog.LevelError
				if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
					lvl = slog.LevelWarn // out of time: the lease runs out and the dispatcher sends the task again
				}
				log.Log(ctx, lvl, "task failed", "message_id", rec.MessageId, "kind", t.Kind, "workspace_id", t.WorkspaceID,
					"mapping_id", t.MappingID, "sync_id", t.SyncID, "source_id", t.SourceID, "space_id", t.SpaceID,
					"prediction_id", t.PredictionID, "page", t.Page, "err", err)
				fail(rec)
			}
		}
		return resp, nil
	}
}
