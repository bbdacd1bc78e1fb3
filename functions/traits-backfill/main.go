// Command traits-backfill backfills new computed traits from stored events, started every
// minute by an EventBridge schedule. It only wires: the logic is profile.Service.RunBackfills,
// which resumes each backfill from its checkpoint, so a run cut short by the timeout loses
// nothing.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
)

// margin is left of the invocation's time to save the last checkpoint (at most a tenth of
// the time there is).
const margin = 10 * time.Second

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("function", "traits-backfill")
	st, err := dynamo.OpenFromEnv(context.Background())
	if err != nil {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	profiles := profile.New(st, profile.Options{})
	lambda.Start(func(ctx context.Context, _ events.EventBridgeEvent) error {
		if deadline, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline.Add(-min(margin, time.Until(deadline)/10)))
			defer cancel()
		}
		err := profiles.RunBackfills(ctx)
		if err != nil && ctx.Err() != nil {
			return nil // out of time: the next scheduled run continues from the checkpoints
		}
		return err
	})
}
