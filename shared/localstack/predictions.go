package localstack

import (
	"context"
	"log/slog"
	"time"

	"github.com/unifiedprofiles/up/shared/predict"
)

// Predictions on the local stack, as in AWS (ARCHITECTURE.md section 3, "Syncs"): where
// EventBridge invokes the sync-dispatcher every minute and the sync worker runs each due
// prediction from SQS, a ticker runs the due ones in-process, one at a time; a new
// prediction or "train now" wakes it at once, as the setup API's task on the queue does.

// predictionsEvery is how often the local stack looks for due predictions.
const predictionsEvery = time.Second

// predictionWaker is the wake-up the runner listens to; Wake never blocks (it runs inside
// API requests): a wake-up already pending covers the new one.
type predictionWaker chan struct{}

func newPredictionWaker() predictionWaker { return make(predictionWaker, 1) }

func (w predictionWaker) Wake(context.Context, predict.Due) error {
	select {
	case w <- struct{}{}:
	default:
	}
	return nil
}

// runPredictions runs due predictions in the background until stop is called: on every tick
// and wake-up.
func runPredictions(svc *predict.Service, wake predictionWaker, now func() time.Time, log *slog.Logger) (stop func()) {
	return every(predictionsEvery, wake, func(ctx context.Context) error { return svc.Dispatch(ctx, now()) }, log, "prediction runs")
}
