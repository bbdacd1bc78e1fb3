// Package lambdactx holds what the scheduled and queue-driven functions share about an
// invocation's time.
package lambdactx

import (
	"context"
	"time"
)

// Margin is left of an invocation's time for the work to stop cleanly and save its last
// checkpoint: 10 s, or a tenth of the time there is when that is less.
const Margin = 10 * time.Second

// BeforeDeadline returns ctx ending Margin before the invocation's deadline (ctx unchanged
// when it has none).
func BeforeDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, deadline.Add(-min(Margin, time.Until(deadline)/10)))
}
