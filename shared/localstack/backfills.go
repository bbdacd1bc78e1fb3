package localstack

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/unifiedprofiles/up/shared/profile"
)

// backfillEvery is how often the local stack looks for due computed-trait backfills, as the
// traits-backfill function's schedule does in AWS.
const backfillEvery = time.Second

// runBackfills works on due backfills in the background until stop is called.
func runBackfills(profiles *profile.Service, log *slog.Logger) (stop func()) {
	return every(backfillEvery, nil, profiles.RunBackfills, log, "computed-trait backfill")
}

// every runs fn every interval in the background, as an EventBridge schedule invokes a
// function in AWS, and at once on each signal of wake (nil: never), until stop is called; a
// failure is logged and fn runs again on the next tick.
func every(interval time.Duration, wake <-chan struct{}, fn func(context.Context) error, log *slog.Logger, what string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			case <-wake:
			}
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				log.Error(what+" failed; retrying on the next tick", "err", err)
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}
