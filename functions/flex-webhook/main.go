// Command flex-webhook is the Flex API as an AWS Lambda behind API Gateway HTTP API (payload
// 2.0): TaskRouter event callbacks (POST /v1/flex/{ws}/webhooks, Twilio-signed) and the agent
// lookup (GET /v1/flex/{ws}/profiles, workspace token). It only wires: the handler is
// shared/httpapi, the same code the local stack serves.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"

	"github.com/unifiedprofiles/up/shared/delivery"
	dsqs "github.com/unifiedprofiles/up/shared/delivery/sqsqueue"
	"github.com/unifiedprofiles/up/shared/httpapi"
	"github.com/unifiedprofiles/up/shared/lambdahttp"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/secrets/kms"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/workspace"
)

func main() {
	lambdahttp.Serve("flex-webhook", func(mux *http.ServeMux, st store.Store, log *slog.Logger) {
		// The workspaces' Twilio auth tokens are sealed with KMS; without the key no callback
		// could be verified, so the function does not start.
		sealer, err := kms.FromEnv(context.Background())
		if err != nil {
			log.Error("cannot start", "err", err)
			os.Exit(1)
		}
		// Workspace tokens and signatures only: no operator token here. One Service per
		// instance: it keeps the auth tokens it opened, so a warm instance calls KMS once per
		// stored token, not once per callback.
		ws := workspace.New(st, workspace.Options{Secrets: sealer})
		profiles := profile.New(st, profile.Options{})
		// Flex events are a source's messages like any other: queued for its destinations.
		q, err := dsqs.FromEnv(context.Background())
		if err != nil {
			log.Error("cannot start", "err", err)
			os.Exit(1)
		}
		outbox := delivery.NewOutbox(ws, q, delivery.OutboxOptions{})
		tr := tracking.New(st, ws, profiles, tracking.Options{Logger: log, Outbox: outbox})
		httpapi.MountFlex(mux, ws, profiles, tr, httpapi.FlexOptions{Logger: log, PublicURL: os.Getenv("UP_PUBLIC_URL")})
	})
}
