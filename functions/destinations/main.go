// Command destinations delivers committed messages to their destinations from SQS
// (ARCHITECTURE.md section 5, "Destinations"). It only wires: the tracking function's outbox
// puts one job per (message, destination) on DestinationsQueue; the handler
// (shared/delivery/sqsqueue.Handler) attempts each destination's jobs of a batch through
// delivery.Engine, all destinations at once, and leaves a job to retry on the queue, hidden
// until its backoff has passed. The engine dead-letters a job refused for good or still
// failing 4 hours after it was accepted, into the destination's own dead-letter list.
//
// It answers with partial batch responses: a job to retry and a body that is not a job are
// reported failed; the latter ends, after the queue's maxReceiveCount, in
// DestinationsDeadLetterQueue, whose alarm tells someone.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/unifiedprofiles/up/shared/delivery"
	"github.com/unifiedprofiles/up/shared/delivery/s3sink"
	dsqs "github.com/unifiedprofiles/up/shared/delivery/sqsqueue"
	"github.com/unifiedprofiles/up/shared/delivery/webhook"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/secrets/kms"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// allowLoopbackEnv, "true" in tests only, lets webhooks reach receivers on loopback.
const allowLoopbackEnv = "UP_WEBHOOK_ALLOW_LOOPBACK"

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("function", "destinations")
	ctx := context.Background()
	fail := func(err error) {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	st, err := dynamo.OpenFromEnv(ctx)
	if err != nil {
		fail(err)
	}
	client, url, err := dsqs.ClientFromEnv(ctx)
	if err != nil {
		fail(err)
	}
	queue := dsqs.New(client, url)
	// Destinations' secret settings (a webhook's secret, S3 keys) are sealed with KMS: no key,
	// no start.
	sealer, err := kms.FromEnv(ctx)
	if err != nil {
		fail(err)
	}
	ws := workspace.New(st, workspace.Options{Secrets: sealer})
	profiles := profile.New(st, profile.Options{})
	// Segment Connections forwards a message into another source as if its client had sent
	// it: that source's destinations get it through this same queue.
	tr := tracking.New(st, ws, profiles, tracking.Options{Logger: log, Outbox: delivery.NewOutbox(ws, queue, delivery.OutboxOptions{})})
	senders := map[string]delivery.Sender{
		// In Lambda, loopback is the function's own Runtime API: refused, unless a test
		// (webhook receivers on this machine) says otherwise.
		delivery.TypeWebhook:            webhook.New(webhook.Options{RefuseLoopback: os.Getenv(allowLoopbackEnv) != "true"}),
		delivery.TypeS3:                 s3sink.New(s3sink.Options{}),
		delivery.TypeSegmentProfiles:    delivery.NewProfilesSender(ws, profiles),
		delivery.TypeSegmentConnections: delivery.NewConnectionsSender(ws, tr),
	}
	engine := delivery.NewEngine(st, ws, senders, delivery.EngineOptions{Logger: log})
	lambda.Start(dsqs.Handler(engine, client, url, log))
}
