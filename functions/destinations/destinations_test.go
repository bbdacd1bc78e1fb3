package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/unifiedprofiles/up/infra/lambdatest"
	"github.com/unifiedprofiles/up/shared/delivery"
	dsqs "github.com/unifiedprofiles/up/shared/delivery/sqsqueue"
	"github.com/unifiedprofiles/up/shared/secrets/kms"
	"github.com/unifiedprofiles/up/shared/secrets/kms/kmstest"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/warehouse/sqsqueue/sqstest"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

const operatorToken = "upo_destinations_rie_test"

// unreachable is an address nothing listens on: the sample's job, for a destination that
// does not exist, never opens settings nor queues anything, and must not try.
const unreachable = "http://127.0.0.1:9"

// The destinations bootstrap, under the Lambda Runtime Interface Emulator, with DynamoDB:
// the sample SQS event's job, for a destination that does not exist, is dropped (no batch
// item failure); in a batch, only the records whose body is not a job are reported failed.
// Without the queue's URL or the KMS key it refuses to start.
func TestDestinationsUnderRIE(t *testing.T) {
	t.Parallel()
	endpoint, table := storetest.DynamoTable(t)
	ctx := context.Background()
	env := map[string]string{
		"UP_TABLE_NAME":             table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		dsqs.QueueURLEnv:            unreachable + "/123456789012/up-destinations-unused",
		"AWS_ENDPOINT_URL_SQS":      unreachable,
		kms.KeyIDEnv:                "alias/up-unused",
		kms.EndpointEnv:             unreachable,
	}
	em := lambdatest.Run(t, "destinations", env)

	sample := lambdatest.LoadEvent(t, "destinations-sqs")
	if failed := invoke(t, em, sample); len(failed) != 0 {
		t.Fatalf("the job of a destination that does not exist failed: %v\n%s", failed, em.Output())
	}
	t.Logf("bootstrap %d bytes, first invocation %v", em.Bootstrap.Size, em.FirstInvocation())
	if out := em.WaitOutput(5*time.Second, `"dropped":1`); !strings.Contains(out, `"dropped":1`) {
		t.Errorf("the job was not dropped:\n%s", out)
	}

	var ev events.SQSEvent
	if err := json.Unmarshal(sample, &ev); err != nil {
		t.Fatal(err)
	}
	if _, err := dsqs.Decode(ev.Records[0].Body); err != nil {
		t.Fatalf("the sample's body is not a job: %v", err)
	}
	record := func(id, body string) events.SQSMessage {
		r := ev.Records[0]
		r.MessageId, r.Body = id, body
		return r
	}
	other := strings.Replace(ev.Records[0].Body, `"dst_01jdq8x3k2m4n5p6q7r8s9t0v4"`, `"dst_01jdq8x3k2m4n5p6q7r8s9t0v5"`, 1)
	batch := events.SQSEvent{Records: []events.SQSMessage{
		record("m-job", ev.Records[0].Body),
		record("m-not-json", "hello"),
		record("m-sync-task", `{"workspace_id":"ws_01jdq8x3k2m4n5p6q7r8s9t0v1","mapping_id":"map_1","sync_id":"sync_1","page":0}`),
		record("m-another-destination", other),
	}}
	payload, _ := json.Marshal(batch)
	if failed := invoke(t, em, payload); !reflect.DeepEqual(failed, []string{"m-not-json", "m-sync-task"}) {
		t.Fatalf("batch item failures %v, want the two records that are not jobs\n%s", failed, em.Output())
	}
	if out := em.WaitOutput(5*time.Second, `"msg":"not a delivery job"`, "m-sync-task"); !strings.Contains(out, `"msg":"not a delivery job"`) || !strings.Contains(out, "m-sync-task") {
		t.Errorf("the refused bodies are not logged:\n%s", out)
	}

	// No queue, no start: a forwarded message could not reach its destinations.
	noQueue := copyEnv(env)
	delete(noQueue, dsqs.QueueURLEnv)
	em2 := lambdatest.Start(t, em.Bootstrap, noQueue)
	if _, err := em2.Invoke(ctx, sample); err == nil || !strings.Contains(em2.Output(), dsqs.QueueURLEnv+" is not set") {
		t.Fatalf("started without the queue: %v\n%s", err, em2.Output())
	}
	// No key, no start: no destination's secret settings could be opened.
	noKey := copyEnv(env)
	delete(noKey, kms.KeyIDEnv)
	em3 := lambdatest.Start(t, em.Bootstrap, noKey)
	if _, err := em3.Invoke(ctx, sample); err == nil || !strings.Contains(em3.Output(), kms.KeyIDEnv+" is not set") {
		t.Fatalf("started without a KMS key: %v\n%s", err, em3.Output())
	}
}

func copyEnv(env map[string]string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = v
	}
	return out
}

// invoke sends an SQS event and returns the ids of the records reported failed.
func invoke(t *testing.T, em *lambdatest.Emulator, event []byte) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := em.Invoke(ctx, event)
	if err != nil {
		t.Fatalf("invoke: %v\n%s", err, em.Output())
	}
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || resp.BatchItemFailures == nil {
		t.Fatalf("answer %s (%v): want a partial batch response", out, err)
	}
	failed := []string{}
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	return failed
}

// A webhook delivery through the function under the emulator, on real parts: DynamoDB, KMS
// (the destination's secret sealed) and the queue on moto_server. The job goes on the queue
// as the tracking function's outbox puts it; each message taken off the queue is handed to
// the function in an SQS event, as Lambda's event source mapping would. The webhook answers
// 503 first: the job is reported failed and hidden on the queue for its backoff (about a
// second), then comes back with a receive count of 2 and is delivered, signed with the
// destination's secret; the destination's record counts one failure and one delivery.
func TestDestinationsDeliversAWebhookUnderRIE(t *testing.T) {
	t.Parallel()
	endpoint := sqstest.Endpoint(t) // skips (or fails under CI) without moto
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var mu sync.Mutex
	var posts []*http.Request
	var bodies [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		posts, bodies = append(posts, r), append(bodies, b)
		if len(posts) == 1 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
		}
	}))
	defer hook.Close()

	_, table, st := storetest.DynamoStore(t)
	kmsClient := kmstest.Client(t, endpoint)
	keyID := kmstest.CreateKey(t, kmsClient)
	sqsClient := sqstest.Client(t, endpoint)
	queueURL := sqstest.CreateQueue(t, sqsClient)
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken), Secrets: kms.New(kmsClient, keyID)})
	tn := workspacetest.New(t, ws, operatorToken)
	src := tn.Source(t, "javascript")
	const secret = "hmac-shared-secret-0451"
	dst, err := ws.CreateDestination(ctx, tn.Owner, tn.ID(), workspace.NewDestination{Name: "Hook", Category: "event_streams",
		Settings: map[string]any{"url": hook.URL + "/in", "secret": secret}})
	if err != nil {
		t.Fatal(err)
	}
	payload := `{"type":"track","event":"Order Completed","messageId":"m-rie-1","userId":"u-1","properties":{"revenue":25}}`
	job := delivery.Job{WorkspaceID: tn.ID(), DestinationID: dst.ID, SourceID: src.ID, MessageID: "m-rie-1", Type: "track",
		Payload: json.RawMessage(payload), AcceptedAt: time.Now().UTC()}
	if err := dsqs.New(sqsClient, queueURL).Enqueue(ctx, []delivery.Job{job}); err != nil {
		t.Fatal(err)
	}

	em := lambdatest.Run(t, "destinations", map[string]string{
		"UP_TABLE_NAME":             table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		dsqs.QueueURLEnv:            queueURL,
		"AWS_ENDPOINT_URL_SQS":      endpoint,
		kms.KeyIDEnv:                keyID,
		kms.EndpointEnv:             endpoint,
		allowLoopbackEnv:            "true", // the webhook below listens on 127.0.0.1
	})
	var sample events.SQSEvent
	if err := json.Unmarshal(lambdatest.LoadEvent(t, "destinations-sqs"), &sample); err != nil {
		t.Fatal(err)
	}
	// receive takes what the queue hands out now, as the event source mapping would (without
	// deleting it: the function's answer decides that).
	receive := func(wait time.Duration) []types.Message {
		out, err := sqsClient.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10,
			WaitTimeSeconds: int32(wait / time.Second), MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Messages
	}
	event := func(msgs []types.Message) []byte {
		ev := events.SQSEvent{}
		for _, m := range msgs {
			r := sample.Records[0]
			r.MessageId, r.ReceiptHandle, r.Body, r.Md5OfBody = aws.ToString(m.MessageId), aws.ToString(m.ReceiptHandle), aws.ToString(m.Body), aws.ToString(m.MD5OfBody)
			r.Attributes = m.Attributes
			ev.Records = append(ev.Records, r)
		}
		b, _ := json.Marshal(ev)
		return b
	}

	first := receive(5 * time.Second)
	if len(first) != 1 || first[0].Attributes["ApproximateReceiveCount"] != "1" {
		t.Fatalf("first receive: %+v", first)
	}
	if failed := invoke(t, em, event(first)); !reflect.DeepEqual(failed, []string{aws.ToString(first[0].MessageId)}) {
		t.Fatalf("a 503 from the webhook: failures %v, want the job (to retry)\n%s", failed, em.Output())
	}
	if strings.Contains(em.Output(), "cannot delay the retry") {
		t.Fatalf("the visibility change failed:\n%s", em.Output())
	}
	// Hidden for its backoff (at most a second, rounded up), then back.
	if again := receive(0); len(again) != 0 {
		t.Fatalf("the job to retry is visible at once: %+v", again)
	}
	var second []types.Message
	for deadline := time.Now().Add(15 * time.Second); len(second) == 0 && time.Now().Before(deadline); {
		second = receive(1 * time.Second)
	}
	if len(second) != 1 || second[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("second receive: %+v", second)
	}
	if failed := invoke(t, em, event(second)); len(failed) != 0 {
		t.Fatalf("the retry failed: %v\n%s", failed, em.Output())
	}
	if _, err := sqsClient.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: second[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 2 {
		t.Fatalf("the webhook got %d posts, want 2", len(posts))
	}
	for i, r := range posts {
		mac := hmac.New(sha1.New, []byte(secret))
		mac.Write(bodies[i])
		if r.URL.Path != "/in" || string(bodies[i]) != payload || r.Header.Get("X-Signature") != hex.EncodeToString(mac.Sum(nil)) {
			t.Errorf("post %d: %s %s %q, X-Signature %q", i, r.Method, r.URL.Path, bodies[i], r.Header.Get("X-Signature"))
		}
	}
	d, err := delivery.NewRecords(st, nil, nil).Deliveries(ctx, dst.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Delivered != 1 || d.Failed != 1 || d.DeadLettered != 0 || d.LastDeliveredAt == nil {
		t.Errorf("deliveries %+v, want 1 delivered after 1 failure", d)
	}
}
