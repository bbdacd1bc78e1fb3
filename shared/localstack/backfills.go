package localstack

import (
	"context"
	"log/slog"
	"time"

	"github.com/unifiedprofiles/up/shared/profile"
)

// backfillEvery is how often the local stack looks for due computed-trait backfills, as the
// traits-backfill function's schedule does in AWS.
const backfillEvery = time.Second

// runBackfills works on due backfills in the background until stop is called.
func runBackfills(profiles *profile.Service, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(backfillEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if err := profiles.RunBackfills(ctx); err != nil && ctx.Err() == nil {
				log.Error("computed-trait backfill failed; retrying on the next tick", "err", err)
			}
		}
	}()
	return func() { cancel(); <-done }
}
