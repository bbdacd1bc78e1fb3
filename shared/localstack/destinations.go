package localstack

import (
	"log/slog"
	"time"

	"github.com/unifiedprofiles/up/shared/delivery"
	"github.com/unifiedprofiles/up/shared/delivery/s3sink"
	"github.com/unifiedprofiles/up/shared/delivery/webhook"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Destinations on the local stack, as in AWS (ARCHITECTURE.md section 5, "Destinations"):
// the tracking API queues each committed message for its source's destinations before it
// answers; where SQS feeds the destinations function, a queue in the store feeds one lane
// per destination in this process.

// DeliveryOptions tune delivery, for tests (zero values: the defaults of package delivery).
type DeliveryOptions struct {
	Backoff  delivery.Backoff
	RetryFor time.Duration
	// Poll is how often idle lanes look for work another process queued (1 s when 0).
	Poll time.Duration
}

// deliveryQueue is the store-kept queue and the outbox that fills it.
func deliveryQueue(st store.Store, ws *workspace.Service, now func() time.Time) (*delivery.StoreQueue, *delivery.Outbox) {
	q := delivery.NewStoreQueue(st, now)
	return q, delivery.NewOutbox(ws, q, delivery.OutboxOptions{Now: now})
}

// runDelivery starts the lanes; stop ends them (a job being sent stays queued and is sent
// again at the next start).
func runDelivery(st store.Store, q *delivery.StoreQueue, ws *workspace.Service, profiles *profile.Service, tr *tracking.Service, opts DeliveryOptions, now func() time.Time, log *slog.Logger) (stop func()) {
	senders := map[string]delivery.Sender{
		delivery.TypeWebhook:            webhook.New(webhook.Options{}),
		delivery.TypeS3:                 s3sink.New(s3sink.Options{}),
		delivery.TypeSegmentProfiles:    delivery.NewProfilesSender(ws, profiles),
		delivery.TypeSegmentConnections: delivery.NewConnectionsSender(ws, tr),
	}
	e := delivery.NewEngine(st, ws, senders, delivery.EngineOptions{Now: now, Backoff: opts.Backoff, RetryFor: opts.RetryFor, Logger: log})
	return delivery.RunLanes(q, e, delivery.LanesOptions{Poll: opts.Poll, Logger: log})
}
