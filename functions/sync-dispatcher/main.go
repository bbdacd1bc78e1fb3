// Command sync-dispatcher starts Reverse ETL syncs, invoked every minute by an EventBridge
// schedule. It only wires: the logic is warehouse.Service.Dispatch, which starts every due
// sync (its first task goes to the SQS queue that sync-worker consumes) and sends again the
// task of every sync whose worker went quiet (its lease ran out). It also sends one task of
// kind salesforce per Salesforce source whose sync is due (salesforce.Runner.Queue), and one
// of kind prediction per prediction due to run (predict.Service.Queue: first run, daily
// recheck, rescore every 7 days, retrain every 30); the sync worker runs them.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/unifiedprofiles/up/shared/lambdactx"
	"github.com/unifiedprofiles/up/shared/predict"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/salesforce"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/sqsqueue"
	"github.com/unifiedprofiles/up/shared/workspace"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("function", "sync-dispatcher")
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
	// Dispatching reads and writes the table and sends tasks; it never opens a warehouse, so
	// this function has neither drivers nor the key that opens warehouse credentials.
	ws := workspace.New(st, workspace.Options{})
	profiles := profile.New(st, profile.Options{})
	svc := warehouse.New(st, ws, profiles, nil, nil, queue, warehouse.Options{})
	// Salesforce: only the due list and the runs' leases are read here, never a credential.
	sf := salesforce.NewRunner(salesforce.NewConnector(st, ws, nil, nil, salesforce.ConnectorOptions{}), nil, nil, salesforce.RunnerOptions{})
	// Predictions: only the due list and the runs' leases are read here.
	preds := predict.New(st, ws, profiles, predict.Options{})
	lambda.Start(func(ctx context.Context, _ events.EventBridgeEvent) error {
		ctx, cancel := lambdactx.BeforeDeadline(ctx)
		defer cancel()
		now := time.Now()
		err := errors.Join(svc.Dispatch(ctx), sf.Queue(ctx, now, func(ctx context.Context, d salesforce.DueSource) error {
			return queue.Send(ctx, warehouse.Task{Kind: warehouse.TaskSalesforce, WorkspaceID: d.WorkspaceID, SourceID: d.SourceID})
		}), preds.Queue(ctx, now, func(ctx context.Context, d predict.Due) error {
			return queue.Send(ctx, warehouse.Task{Kind: warehouse.TaskPrediction, WorkspaceID: d.WorkspaceID, SpaceID: d.SpaceID, PredictionID: d.PredictionID})
		}))
		if err != nil && ctx.Err() != nil {
			log.Warn("out of time: the next minute's run finds what is left", "err", err)
			return nil
		}
		return err
	})
}
