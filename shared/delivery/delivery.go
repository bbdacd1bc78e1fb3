// Package delivery sends every committed message on to the enabled destinations of its
// source, at least once and with its original messageId (ARCHITECTURE.md section 5,
// "Destinations"): S3 storage, webhooks (analytics and event streams), Segment Profiles (into
// another space) and Segment Connections (into another source).
//
// The shape, the same in both worlds:
//   - Outbox: after a tracking request's messages commit, and before the request is answered,
//     one Job per (message, destination) goes to a Queue. A crash before that means no answer,
//     so the client sends again; a redelivered message (a duplicate) is queued again, so
//     nothing committed is lost, and a repeat only ever carries the same messageId.
//   - Queue: durable. Locally StoreQueue, a partition of the store per destination, worked by
//     Lanes, one goroutine per destination; in AWS an SQS queue feeding the destinations
//     function (package sqsqueue beside this one).
//   - Engine.Attempt sends a batch of one destination's jobs through the Sender of its type,
//     and decides each job's fate: delivered, retry after a backoff with jitter, or
//     dead-lettered (refused for good, or still failing 4 hours after it was accepted). It keeps
//     the destination's counts, its last error and a debugger of the latest attempts.
//
// A destination never waits for another: each has its own lane (locally) or its own messages
// (SQS, no head-of-line blocking), every send has a timeout, and a failing one backs off alone.
package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/unifiedprofiles/up/shared/workspace"
)

// Job is one message to deliver to one destination.
type Job struct {
	WorkspaceID   string `json:"workspace_id"`
	DestinationID string `json:"destination_id"`
	SourceID      string `json:"source_id"`
	MessageID     string `json:"message_id"`
	Type          string `json:"type"`
	// Payload is the message as delivered: the bytes the client sent, with messageId,
	// receivedAt and timestamp set as the message was committed (see Payload).
	Payload json.RawMessage `json:"payload"`
	// AcceptedAt is when the message was committed; retries stop RetryFor after it.
	AcceptedAt time.Time `json:"accepted_at"`
	// Attempts made so far (0 before the first).
	Attempts int `json:"attempts"`
	// Hops counts forwards through Segment Connections destinations: a forwarded message is
	// never forwarded again, so two sources forwarding to each other make no loop.
	Hops int `json:"hops,omitempty"`
	// LastError is the last attempt's error, for the dead-letter list.
	LastError string `json:"last_error,omitempty"`
}

// Target is a destination as a Sender needs it: its configuration with its secret settings
// opened. It must never be logged or shown.
type Target struct {
	workspace.Destination
	Settings map[string]any
}

// Sender delivers a batch of one destination's jobs (at most the batch size its type asks,
// all of one source). It returns nil when every job was delivered. An error applies to the
// whole batch, except a *JobErrors, which names the jobs that failed (the others were
// delivered). An error wrapped by Permanent is not retried: its jobs go to the dead-letter
// list at once (a webhook's 4xx answer, a destination whose settings are wrong).
type Sender interface {
	Send(ctx context.Context, t Target, jobs []Job) error
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, t Target, jobs []Job) error

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, t Target, jobs []Job) error { return f(ctx, t, jobs) }

// JobErrors is a partial failure of a batch: Errs[i] is the error of jobs[i], nil when it was
// delivered. len(Errs) is the batch's length.
type JobErrors struct {
	Errs []error
}

func (e *JobErrors) Error() string {
	n, first := 0, error(nil)
	for _, err := range e.Errs {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	return fmt.Sprintf("%d of %d messages failed; the first: %v", n, len(e.Errs), first)
}

// permanent marks an error that retrying cannot mend.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that its jobs are dead-lettered at once instead of retried.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err (or an error it wraps) was made by Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Queue carries jobs to whatever works them, durably: once Enqueue returns nil the jobs
// survive a crash. Delivery is at least once.
type Queue interface {
	Enqueue(ctx context.Context, jobs []Job) error
}

// Destination types, by category (workspace.DestinationCategories).
const (
	TypeS3                 = "s3"
	TypeWebhook            = "webhook"
	TypeSegmentProfiles    = "segment_profiles"
	TypeSegmentConnections = "segment_connections"
)

// MaxBatch is the most jobs one Send carries.
const MaxBatch = 500

// RetryFor is how long a failing job is retried after its message was accepted; then it is
// dead-lettered.
const RetryFor = 4 * time.Hour

// Outcome is what became of one job after an attempt.
type Outcome int

const (
	// Delivered: the destination has it.
	Delivered Outcome = iota + 1
	// Retry: try again after Decision.After.
	Retry
	// DeadLettered: given up (refused for good, or RetryFor has passed); the job is in the
	// destination's dead-letter list, from where the user may replay it.
	DeadLettered
	// Dropped: the destination no longer exists or no longer takes this job's source; the
	// job is discarded.
	Dropped
)

func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Retry:
		return "retrying"
	case DeadLettered:
		return "dead_lettered"
	case Dropped:
		return "dropped"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Decision is the fate of one job after Engine.Attempt.
type Decision struct {
	Outcome Outcome
	After   time.Duration // with Retry: how long to wait before the next attempt
	Err     error         // the attempt's error (nil when Delivered)
}
