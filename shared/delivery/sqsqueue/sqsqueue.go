// Package sqsqueue carries destination deliveries on Amazon SQS (ARCHITECTURE.md section 5,
// "Destinations"): Queue implements delivery.Queue for the tracking function's outbox (each
// job is one message whose body is the job as JSON), Decode turns a message body back into a
// job, and Handler is the destinations function, which attempts the jobs of an SQS event
// through the delivery engine and leaves those to retry on the queue until their backoff
// has passed.
//
// Delivery is at least once: SQS may deliver a message twice, and a job carries its message's
// original messageId, by which destinations de-duplicate.
package sqsqueue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/unifiedprofiles/up/shared/delivery"
	"github.com/unifiedprofiles/up/shared/sqsbody"
)

// QueueURLEnv names the variable FromEnv reads the queue's URL from.
const QueueURLEnv = "UP_DESTINATIONS_QUEUE_URL"

// ErrNoQueueURL is returned by FromEnv when QueueURLEnv is not set.
var ErrNoQueueURL = errors.New("sqsqueue: " + QueueURLEnv + " is not set: give the URL of the SQS queue that carries destination deliveries")

// MaxBody is the largest message body SQS takes (256 KiB), and so the largest job.
const MaxBody = 256 << 10

// maxBatch is the most entries one SendMessageBatch carries.
const maxBatch = 10

// API is the part of the SQS client a Queue uses.
type API interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Queue sends jobs to one SQS queue.
type Queue struct {
	client API
	url    string
}

var _ delivery.Queue = (*Queue)(nil)

// New returns a Queue sending to the queue at url through client.
func New(client API, url string) *Queue { return &Queue{client: client, url: url} }

// ClientFromEnv returns an SQS client with the standard AWS configuration (region,
// credentials, and AWS_ENDPOINT_URL_SQS for an emulator) and the queue's URL from
// UP_DESTINATIONS_QUEUE_URL. The SDK's default HTTP client is kept: it is the SDK's buildable
// client, the only one it applies AWS_CA_BUNDLE to. Errors: ErrNoQueueURL when the variable
// is missing.
func ClientFromEnv(ctx context.Context) (*sqs.Client, string, error) {
	url := os.Getenv(QueueURLEnv)
	if url == "" {
		return nil, "", ErrNoQueueURL
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("sqsqueue: load AWS configuration: %w", err)
	}
	return sqs.NewFromConfig(cfg), url, nil
}

// FromEnv returns a Queue on the queue at UP_DESTINATIONS_QUEUE_URL (see ClientFromEnv).
func FromEnv(ctx context.Context) (*Queue, error) {
	client, url, err := ClientFromEnv(ctx)
	if err != nil {
		return nil, err
	}
	return New(client, url), nil
}

// Enqueue sends each job as one message, ten to a SendMessageBatch call (and no more than
// MaxBody bytes to a call). Entries SQS refuses are sent once more; if some still fail, the
// error says how many, and the caller fails its request so that its client sends it again
// (a job sent twice is delivered twice with the same messageId: nothing is lost). A job
// Decode would refuse, or larger than MaxBody, is an error before anything is sent.
func (q *Queue) Enqueue(ctx context.Context, jobs []delivery.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	bodies := make([]string, len(jobs))
	for i, j := range jobs {
		b, err := Encode(j)
		if err != nil {
			return err
		}
		bodies[i] = b
	}
	pending := make([]int, len(jobs))
	for i := range pending {
		pending[i] = i
	}
	var failed []int
	var first string
	for try := 0; try < 2 && len(pending) > 0; try++ {
		failed, first = nil, ""
		for start := 0; start < len(pending); {
			// Up to ten entries, and a call's bodies together within MaxBody.
			end, size := start, 0
			for end < len(pending) && end-start < maxBatch && (end == start || size+len(bodies[pending[end]]) <= MaxBody) {
				size += len(bodies[pending[end]])
				end++
			}
			batch := pending[start:end]
			start = end
			entries := make([]types.SendMessageBatchRequestEntry, len(batch))
			for k, i := range batch {
				// The destination is the message group: on a standard queue that makes SQS a
				// fair queue, so one destination's backlog (a failing or slow one) does not
				// delay the others' messages, with no FIFO ordering to block on.
				entries[k] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(bodies[i]),
					MessageGroupId: aws.String(jobs[i].DestinationID)}
			}
			out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
			if err != nil {
				// The SDK has retried the call already; its jobs count as failed.
				failed = append(failed, batch...)
				if first == "" {
					first = err.Error()
				}
				continue
			}
			sent := make(map[string]bool, len(out.Successful))
			for _, s := range out.Successful {
				sent[aws.ToString(s.Id)] = true
			}
			reasons := make(map[string]string, len(out.Failed))
			for _, f := range out.Failed {
				reasons[aws.ToString(f.Id)] = aws.ToString(f.Code) + ": " + aws.ToString(f.Message)
			}
			for _, i := range batch {
				id := strconv.Itoa(i)
				if sent[id] && reasons[id] == "" {
					continue
				}
				failed = append(failed, i)
				if first == "" {
					first = reasons[id]
					if first == "" {
						first = "SQS did not report the entry"
					}
				}
			}
		}
		pending = failed
	}
	if len(failed) > 0 {
		return fmt.Errorf("sqsqueue: %d of %d jobs were not queued on %s, after one retry; the first (message %s to %s): %s",
			len(failed), len(jobs), q.url, sqsbody.Clip(jobs[failed[0]].MessageID), jobs[failed[0]].DestinationID, first)
	}
	return nil
}

// Encode returns the message body for j: the job as JSON, its payload's bytes kept (no HTML
// escaping), with the characters SQS refuses in a body escaped. Errors: as Decode's checks,
// and a body over MaxBody.
func Encode(j delivery.Job) (string, error) {
	if err := check(j); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return "", fmt.Errorf("sqsqueue: encode the job of message %s to %s: %w", sqsbody.Clip(j.MessageID), j.DestinationID, err)
	}
	body := sqsSafe(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	if len(body) > MaxBody {
		return "", fmt.Errorf("sqsqueue: the job of message %s to %s is %d bytes as JSON, over the %d SQS takes",
			sqsbody.Clip(j.MessageID), j.DestinationID, len(body), MaxBody)
	}
	return body, nil
}

// sqsSafe returns the JSON text b with what SQS refuses in a message body (invalid UTF-8, and
// U+FFFE and U+FFFF, which JSON allows) escaped as \u sequences. They can only stand inside
// JSON strings, where the escape means the same (invalid bytes become U+FFFD, as a JSON
// decoder reads them anyway).
func sqsSafe(b []byte) string {
	var out strings.Builder
	out.Grow(len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n == 1:
			out.WriteString(`\ufffd`)
		case r == 0xFFFE:
			out.WriteString(`\ufffe`)
		case r == 0xFFFF:
			out.WriteString(`\uffff`)
		default:
			out.Write(b[:n])
		}
		b = b[n:]
	}
	return out.String()
}

// Decode reads a message body as a job: one JSON object with workspace_id (ws_…),
// destination_id (dst_…) and source_id (src_…), ids of letters, digits, '_' and '-'; a
// non-empty message_id; payload, a JSON object; accepted_at, a time; attempts and hops not
// negative. Unknown fields are ignored, so that a job sent by a newer tracking function
// during a deployment still decodes. The error says what is wrong with the body.
func Decode(body string) (delivery.Job, error) {
	var j delivery.Job
	if problem := sqsbody.Decode(body, &j); errors.Is(problem, sqsbody.ErrEmpty) {
		return delivery.Job{}, errors.New("sqsqueue: the message body is empty, not a delivery job")
	} else if problem != nil {
		return delivery.Job{}, fmt.Errorf("sqsqueue: the message body is not a delivery job: %w", problem)
	}
	if err := check(j); err != nil {
		return delivery.Job{}, err
	}
	return j, nil
}

// maxID bounds an id in a job; the ids this project makes are about 30 characters.
const maxID = 128

// check validates a job's fields. The ids become parts of DynamoDB keys ("#" separates the
// parts), so only the characters this project's ids are made of pass.
func check(j delivery.Job) error {
	for _, f := range []struct{ name, prefix, value string }{
		{"workspace_id", "ws_", j.WorkspaceID},
		{"destination_id", "dst_", j.DestinationID},
		{"source_id", "src_", j.SourceID},
	} {
		if err := sqsbody.CheckID(f.name, f.prefix, f.value, maxID); err != nil {
			return fmt.Errorf("sqsqueue: the message body is not a delivery job: %w", err)
		}
	}
	switch {
	case j.MessageID == "":
		return errors.New("sqsqueue: the message body is not a delivery job: message_id is missing or empty")
	case j.AcceptedAt.IsZero():
		return errors.New("sqsqueue: the message body is not a delivery job: accepted_at is missing, want the time the message was accepted")
	case j.Attempts < 0:
		return fmt.Errorf("sqsqueue: the message body is not a delivery job: attempts is %d, want 0 or more", j.Attempts)
	case j.Hops < 0:
		return fmt.Errorf("sqsqueue: the message body is not a delivery job: hops is %d, want 0 or more", j.Hops)
	}
	p := bytes.TrimLeft(j.Payload, " \t\r\n")
	switch {
	case len(p) == 0:
		return errors.New("sqsqueue: the message body is not a delivery job: payload is missing, want the message as a JSON object")
	case p[0] != '{':
		return fmt.Errorf("sqsqueue: the message body is not a delivery job: payload is %s, want a JSON object", jsonValueKind(p[0]))
	case !json.Valid(j.Payload):
		return errors.New("sqsqueue: the message body is not a delivery job: payload is not valid JSON")
	}
	return nil
}

// jsonValueKind names the kind of JSON value that starts with c.
func jsonValueKind(c byte) string {
	switch {
	case c == '[':
		return "a JSON array"
	case c == '"':
		return "a JSON string"
	case c == 'n':
		return "JSON null"
	case c == 't' || c == 'f':
		return "a JSON boolean"
	case c == '-' || c >= '0' && c <= '9':
		return "a JSON number"
	}
	return "not JSON"
}
