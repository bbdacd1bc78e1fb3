// Command tracking is the Segment-compatible tracking API as an AWS Lambda behind API Gateway
// HTTP API (payload 2.0). It only wires: the handler is shared/httpapi, the same code the
// local stack serves; committed messages go to the destinations queue (SQS).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"

	"github.com/unifiedprofiles/up/shared/delivery"
	dsqs "github.com/unifiedprofiles/up/shared/delivery/sqsqueue"
	"github.com/unifiedprofiles/up/shared/httpapi"
	"github.com/unifiedprofiles/up/shared/lambdahttp"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/workspace"
)

func main() {
	lambdahttp.Serve("tracking", func(mux *http.ServeMux, st store.Store, log *slog.Logger) {
		rate, err := strconv.Atoi(os.Getenv("UP_TRACKING_RATE_LIMIT"))
		if err != nil && os.Getenv("UP_TRACKING_RATE_LIMIT") != "" {
			log.Error("cannot start", "err", fmt.Errorf("UP_TRACKING_RATE_LIMIT: %w", err))
			os.Exit(1)
		}
		// Every committed message is queued for its source's destinations before the answer
		// (the destinations function delivers): no queue, no start, or messages would be
		// accepted that no destination ever gets.
		q, err := dsqs.FromEnv(context.Background())
		if err != nil {
			log.Error("cannot start", "err", err)
			os.Exit(1)
		}
		// Write keys only: no operator token here.
		ws := workspace.New(st, workspace.Options{})
		outbox := delivery.NewOutbox(ws, q, delivery.OutboxOptions{})
		tr := tracking.New(st, ws, profile.New(st, profile.Options{}), tracking.Options{Logger: log, Outbox: outbox})
		httpapi.MountTracking(mux, tr, httpapi.TrackingOptions{Logger: log, RateLimit: rate, PublicURL: os.Getenv("UP_PUBLIC_URL"), Limits: st})
	})
}
