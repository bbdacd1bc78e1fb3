// Package sqstest gives tests an SQS queue: on moto_server, which serves every AWS service on
// one port, at the endpoint `make test` starts for DynamoDB.
package sqstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/unifiedprofiles/up/shared/store/storetest"
)

// Region is the region the clients here use (moto keeps resources per region).
const Region = storetest.MotoRegion

// Endpoint returns the moto_server endpoint (storetest.EndpointEnv). Without it the test is
// skipped, or fails when CI=true so that CI never silently drops the SQS tests. There is no
// in-process stand-in as minidyn is for DynamoDB.
func Endpoint(t testing.TB) string {
	t.Helper()
	return storetest.MotoEndpoint(t, "SQS")
}

// Client returns an SQS client for endpoint with dummy credentials. The HTTP client is left to
// the SDK, which applies AWS_CA_BUNDLE to its own buildable client.
func Client(t testing.TB, endpoint string) *sqs.Client {
	t.Helper()
	cfg := storetest.MotoConfig(t)
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// CreateQueue creates a standard queue unique to this test and run (moto outlives a test) and
// returns its URL; it is deleted when t ends.
func CreateQueue(t testing.TB, client *sqs.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(queueName(t))})
	if err != nil {
		t.Fatalf("sqstest: create queue: %v", err)
	}
	url := aws.ToString(out.QueueUrl)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil {
			t.Errorf("sqstest: delete queue %s: %v", url, err)
		}
	})
	return url
}

// Env creates a queue (CreateQueue) and sets, for the rest of t, what a FromEnv reads: the
// queue's URL in urlEnv, and the SDK's SQS endpoint, region and dummy credentials. It returns a
// client and the queue's URL. t.Setenv: the test must not be parallel.
func Env(t testing.TB, urlEnv string) (*sqs.Client, string) {
	t.Helper()
	endpoint := Endpoint(t)
	client := Client(t, endpoint)
	url := CreateQueue(t, client)
	t.Setenv(urlEnv, url)
	t.Setenv("AWS_ENDPOINT_URL_SQS", endpoint)
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	return client, url
}

// Receive takes up to 10 messages from the queue, waiting up to wait for the first, and
// deletes what it took.
func Receive(t testing.TB, client *sqs.Client, url string, wait time.Duration) []types.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait+30*time.Second)
	defer cancel()
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
		WaitTimeSeconds: int32(wait / time.Second), MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
	if err != nil {
		t.Fatalf("sqstest: receive from %s: %v", url, err)
	}
	for _, m := range out.Messages {
		if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatalf("sqstest: delete message %s: %v", aws.ToString(m.MessageId), err)
		}
	}
	return out.Messages
}

// queueName is the test's name made a valid queue name (letters, digits, '-' and '_', at
// most 80 characters) with a random suffix.
func queueName(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 60 {
		name = name[:60]
	}
	return "up-" + name + "-" + hex.EncodeToString(b[:])
}
