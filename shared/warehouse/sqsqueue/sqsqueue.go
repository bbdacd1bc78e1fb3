// Package sqsqueue carries Reverse ETL sync tasks on Amazon SQS: it implements
// warehouse.Queue for the dispatcher and the worker (each task sent is one message whose body
// is the task as JSON), and Decode turns a message the worker receives back into a task.
//
// Delivery is at least once, as warehouse.Queue promises: SQS may deliver a message twice,
// and warehouse.Service.Work drops a task that is stale or whose sync another worker holds.
package sqsqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/unifiedprofiles/up/shared/sqsbody"
	"github.com/unifiedprofiles/up/shared/warehouse"
)

// QueueURLEnv names the variable FromEnv reads the queue's URL from.
const QueueURLEnv = "UP_SYNC_QUEUE_URL"

// ErrNoQueueURL is returned by FromEnv when QueueURLEnv is not set.
var ErrNoQueueURL = errors.New("sqsqueue: " + QueueURLEnv + " is not set: give the URL of the SQS queue that carries sync tasks")

// API is the part of the SQS client a Queue uses.
type API interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Queue sends tasks to one SQS queue.
type Queue struct {
	client API
	url    string
}

var _ warehouse.Queue = (*Queue)(nil)

// New returns a Queue sending to the queue at url through client.
func New(client API, url string) *Queue { return &Queue{client: client, url: url} }

// FromEnv returns a Queue on the queue at UP_SYNC_QUEUE_URL with the standard AWS
// configuration (region, credentials, and AWS_ENDPOINT_URL_SQS for an emulator). The SDK's
// default HTTP client is kept: it is the SDK's buildable client, the only one it applies
// AWS_CA_BUNDLE to. Errors: ErrNoQueueURL when the variable is missing.
func FromEnv(ctx context.Context) (*Queue, error) {
	url := os.Getenv(QueueURLEnv)
	if url == "" {
		return nil, ErrNoQueueURL
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqsqueue: load AWS configuration: %w", err)
	}
	return New(sqs.NewFromConfig(cfg), url), nil
}

// Send sends t as one message. A task Decode would refuse is not sent.
func (q *Queue) Send(ctx context.Context, t warehouse.Task) error {
	body, err := Encode(t)
	if err != nil {
		return err
	}
	if _, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(body)}); err != nil {
		switch t.Kind {
		case warehouse.TaskSalesforce:
			return fmt.Errorf("sqsqueue: send the Salesforce sync of %s to %s: %w", t.SourceID, q.url, err)
		case warehouse.TaskPrediction:
			return fmt.Errorf("sqsqueue: send the run of prediction %s to %s: %w", t.PredictionID, q.url, err)
		}
		return fmt.Errorf("sqsqueue: send page %d of sync %s to %s: %w", t.Page, t.SyncID, q.url, err)
	}
	return nil
}

// Encode returns the message body for t: the task as JSON. Errors: as Decode's checks.
func Encode(t warehouse.Task) (string, error) {
	if err := check(t); err != nil {
		return "", err
	}
	b, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("sqsqueue: encode task: %w", err)
	}
	return string(b), nil
}

// maxID bounds an id in a task; the ids this project makes are about 30 characters.
const maxID = 128

// Decode reads a message body as a task: one JSON object with workspace_id (ws_…), mapping_id
// (map_…) and sync_id (sync_…), ids of letters, digits, '_' and '-', and page ≥ 0; or, with
// kind "salesforce", workspace_id and source_id (src_…); or, with kind "prediction",
// workspace_id, space_id (sp_…) and prediction_id (pred_…). Unknown
// fields are ignored, so that a task sent by a newer dispatcher during a deployment still
// decodes. The error says what is wrong with the body.
func Decode(body string) (warehouse.Task, error) {
	var t warehouse.Task
	if problem := sqsbody.Decode(body, &t); errors.Is(problem, sqsbody.ErrEmpty) {
		return warehouse.Task{}, errors.New("sqsqueue: the message body is empty, not a sync task")
	} else if problem != nil {
		return warehouse.Task{}, fmt.Errorf("sqsqueue: the message body is not a sync task: %w", problem)
	}
	if err := check(t); err != nil {
		return warehouse.Task{}, err
	}
	return t, nil
}

// check validates a task's fields. The ids become parts of DynamoDB keys ("#" separates the
// parts), so only the characters this project's ids are made of pass.
func check(t warehouse.Task) error {
	ids := []struct{ name, prefix, value string }{
		{"workspace_id", "ws_", t.WorkspaceID},
		{"mapping_id", "map_", t.MappingID},
		{"sync_id", "sync_", t.SyncID},
	}
	switch t.Kind {
	case warehouse.TaskReverseETL:
	case warehouse.TaskSalesforce:
		ids = []struct{ name, prefix, value string }{{"workspace_id", "ws_", t.WorkspaceID}, {"source_id", "src_", t.SourceID}}
	case warehouse.TaskPrediction:
		ids = []struct{ name, prefix, value string }{{"workspace_id", "ws_", t.WorkspaceID}, {"space_id", "sp_", t.SpaceID}, {"prediction_id", "pred_", t.PredictionID}}
	default:
		return fmt.Errorf("sqsqueue: the message body is not a sync task: kind %q is unknown, want none (Reverse ETL), %q or %q", sqsbody.Clip(t.Kind), warehouse.TaskSalesforce, warehouse.TaskPrediction)
	}
	for _, f := range ids {
		if err := sqsbody.CheckID(f.name, f.prefix, f.value, maxID); err != nil {
			return fmt.Errorf("sqsqueue: the message body is not a sync task: %w", err)
		}
	}
	if t.Page < 0 {
		return fmt.Errorf("sqsqueue: the message body is not a sync task: page is %d, want 0 (plan) or more (a page to load)", t.Page)
	}
	return nil
}
