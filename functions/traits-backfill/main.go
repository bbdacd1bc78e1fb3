// Command traits-backfill backfills new computed traits from stored events, started every
// minute by an EventBridge schedule. It only wires: the logic is profile.Service.RunBackfills,
// which resumes each backfill from its checkpoint, so a run cut short by the timeout loses
// nothing.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/unifiedprofiles/up/shared/lambdactx"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("function", "traits-backfill")
	st, err := dynamo.OpenFromEnv(context.Background())
	if err != nil {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	profiles := profile.New(st, profile.Options{})
	lambda.Start(func(ctx context.Context, _ events.EventBridgeEvent) error {
		ctx, cancel := lambdactx.BeforeDeadline(ctx)
		defer cancel()
		err := profiles.RunBackfills(ctx)
		if err != nil && ctx.Err() != nil {
			return nil // out of time: the next scheduled run continues from the checkpoints
		}
		return err
	})
}
