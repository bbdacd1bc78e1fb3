package sqsqueue

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/unifiedprofiles/up/shared/delivery"
	"github.com/unifiedprofiles/up/shared/lambdactx"
)

// Attempter attempts a batch of one destination's jobs (delivery.Engine).
type Attempter interface {
	Attempt(ctx context.Context, jobs []delivery.Job) []delivery.Decision
}

// VisibilityAPI is the part of the SQS client the Handler uses: it hides a job to retry
// until its backoff has passed.
type VisibilityAPI interface {
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// MaxVisibility is the longest visibility timeout SQS takes (12 hours), in seconds.
const MaxVisibility = 43200

// ReceiveCountAttribute is the record attribute the Handler counts a job's attempts by.
const ReceiveCountAttribute = "ApproximateReceiveCount"

// maxVisibilityCalls bounds the ChangeMessageVisibility calls in flight at once.
const maxVisibilityCalls = 16

// Handler returns the destinations function's handler: it decodes each record's job, takes
// its attempts from the record's receive count (ApproximateReceiveCount − 1; the body's when
// the attribute is missing), groups the jobs by destination and attempts each group through
// e, the groups at once (a slow destination never delays another's). Then:
//
//   - Delivered, DeadLettered (the engine has recorded it) and Dropped: the record succeeded,
//     and SQS deletes it.
//   - Retry: the record's visibility timeout becomes the decision's wait (whole seconds,
//     rounded up, at most MaxVisibility) and the record is reported failed, so that SQS keeps
//     it and hands it back once the wait is over. When the visibility cannot be changed it
//     is still reported failed: it comes back after the queue's own visibility timeout.
//   - A body that is not a job is logged and reported failed: after the queue's
//     maxReceiveCount it lands in the dead-letter queue, whose alarm tells someone.
//
// The answer's BatchItemFailures is never nil (an empty list: every record succeeded), and the
// handler never returns an error: one would make SQS hand the whole batch back. Work stops
// lambdactx.Margin before the invocation's deadline; records whose attempt had not begun by
// then are reported failed without an attempt.
func Handler(e Attempter, v VisibilityAPI, queueURL string, log *slog.Logger) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	if log == nil {
		log = slog.Default()
	}
	h := &handler{e: e, v: v, url: queueURL, log: log}
	return h.handle
}

type handler struct {
	e   Attempter
	v   VisibilityAPI
	url string
	log *slog.Logger
}

// group is one destination's jobs in a batch, in the order of their records.
type group struct {
	recs []int // indexes into the event's records
	jobs []delivery.Job
}

func (h *handler) handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	work, cancel := lambdactx.BeforeDeadline(ctx)
	defer cancel()
	failed := make([]bool, len(ev.Records)) // each written by one goroutine only
	groups := map[string]*group{}
	var order []string
	for i, rec := range ev.Records {
		j, err := Decode(rec.Body)
		if err != nil {
			h.log.Error("not a delivery job", "message_id", rec.MessageId, "err", err)
			failed[i] = true
			continue
		}
		if n, ok := receiveCount(rec); ok {
			j.Attempts = n - 1
		}
		// Destination ids are unique, but a job is attempted under its own workspace only.
		k := j.WorkspaceID + "#" + j.DestinationID
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
			order = append(order, k)
		}
		g.recs = append(g.recs, i)
		g.jobs = append(g.jobs, j)
	}
	sem := make(chan struct{}, maxVisibilityCalls)
	var wg sync.WaitGroup
	for _, k := range order {
		g := groups[k]
		wg.Go(func() { h.attempt(ctx, work, ev.Records, g, failed, sem) })
	}
	wg.Wait()
	// An empty list, not null: every record succeeded.
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for i, f := range failed {
		if f {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	return resp, nil
}

// attempt sends one destination's jobs and acts on the decisions. ctx is the invocation's,
// work ends before it: the visibility changes still go out after an attempt that took all of
// work's time.
func (h *handler) attempt(ctx, work context.Context, recs []events.SQSMessage, g *group, failed []bool, sem chan struct{}) {
	first := g.jobs[0]
	log := h.log.With("workspace_id", first.WorkspaceID, "destination_id", first.DestinationID)
	defer func() {
		if r := recover(); r != nil {
			log.Error("the attempt panicked; its records come back after the queue's visibility timeout", "panic", fmt.Sprint(r), "jobs", len(g.jobs))
			for _, i := range g.recs {
				failed[i] = true
			}
		}
	}()
	if work.Err() != nil {
		// Out of time before the attempt began: the records come back untried.
		for _, i := range g.recs {
			failed[i] = true
		}
		log.Warn("out of time before the attempt; the jobs come back", "jobs", len(g.jobs))
		return
	}
	ds := h.e.Attempt(work, g.jobs)
	counts := map[delivery.Outcome]int{}
	var firstErr error
	var vis sync.WaitGroup
	for k, i := range g.recs {
		if k >= len(ds) {
			failed[i] = true
			log.Error("the engine gave no decision for a job; it comes back", "message_id", recs[i].MessageId)
			continue
		}
		d := ds[k]
		counts[d.Outcome]++
		if d.Err != nil && firstErr == nil && d.Outcome != delivery.Delivered {
			firstErr = d.Err
		}
		switch d.Outcome {
		case delivery.Delivered, delivery.Dropped:
		case delivery.DeadLettered:
			log.Warn("dead-lettered", "message_id", recs[i].MessageId, "job_message_id", g.jobs[k].MessageID, "err", d.Err)
		case delivery.Retry:
			failed[i] = true
			rec := recs[i]
			secs := VisibilitySeconds(d.After)
			sem <- struct{}{}
			vis.Go(func() {
				defer func() { <-sem }()
				_, err := h.v.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
					QueueUrl: aws.String(h.url), ReceiptHandle: aws.String(rec.ReceiptHandle), VisibilityTimeout: secs})
				if err != nil {
					log.Warn("cannot delay the retry; it comes back after the queue's visibility timeout",
						"message_id", rec.MessageId, "after_seconds", secs, "err", err)
				}
			})
		default:
			failed[i] = true
			log.Error("unknown decision; the job comes back", "message_id", recs[i].MessageId, "outcome", d.Outcome.String())
		}
	}
	vis.Wait()
	lvl := slog.LevelInfo
	if counts[delivery.Retry] > 0 || counts[delivery.DeadLettered] > 0 {
		lvl = slog.LevelWarn
	}
	attrs := []any{"jobs", len(g.jobs), "delivered", counts[delivery.Delivered], "retrying", counts[delivery.Retry],
		"dead_lettered", counts[delivery.DeadLettered], "dropped", counts[delivery.Dropped]}
	if firstErr != nil {
		attrs = append(attrs, "err", firstErr)
	}
	log.Log(ctx, lvl, "attempted", attrs...)
}

// VisibilitySeconds is the visibility timeout that hides a message for d: whole seconds,
// rounded up, between 0 and MaxVisibility.
func VisibilitySeconds(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	if d >= MaxVisibility*time.Second {
		return MaxVisibility
	}
	return int32((d + time.Second - 1) / time.Second)
}

// receiveCount reads the record's ApproximateReceiveCount (1 on the first receive).
func receiveCount(rec events.SQSMessage) (int, bool) {
	n, err := strconv.Atoi(rec.Attributes[ReceiveCountAttribute])
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}
