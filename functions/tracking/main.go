// Command tracking is the Segment-compatible tracking API as an AWS Lambda behind API Gateway
// HTTP API (payload 2.0). It only wires: the handler is shared/httpapi, the same code the
// local stack serves.
package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"

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
		// Write keys only: no operator token here.
		ws := workspace.New(st, workspace.Options{})
		tr := tracking.New(st, ws, profile.New(st, profile.Options{}), tracking.Options{Logger: log})
		httpapi.MountTracking(mux, tr, httpapi.TrackingOptions{Logger: log, RateLimit: rate, PublicURL: os.Getenv("UP_PUBLIC_URL"), Limits: st})
	})
}
