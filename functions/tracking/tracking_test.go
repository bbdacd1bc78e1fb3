package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/infra/lambdatest"
	"github.com/unifiedprofiles/up/shared/browsersdk"
	"github.com/unifiedprofiles/up/shared/delivery"
	dsqs "github.com/unifiedprofiles/up/shared/delivery/sqsqueue"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/warehouse/sqsqueue/sqstest"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

const operatorToken = "upo_tracking_rie_test"

// The tracking function's bootstrap, under the Lambda Runtime Interface Emulator, takes the
// sample /v1/batch event with a real write key, commits it to DynamoDB before answering,
// acknowledges a redelivery without applying it again, takes a gzip body, and refuses an
// unknown key.
func TestTrackingUnderRIE(t *testing.T) {
	t.Parallel()
	endpoint, table, st := storetest.DynamoStore(t)
	space, writeKey := seed(t, st)
	em := lambdatest.Run(t, "tracking", map[string]string{
		"UP_TABLE_NAME":             table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		// No destination here: the queue is never called (see TestTrackingQueuesForDestinationsUnderRIE).
		dsqs.QueueURLEnv: "http://127.0.0.1:9/000000000000/unused",
	})
	sample := lambdatest.LoadV2(t, "tracking-batch")
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(writeKey+":"))

	call := func(ev *lambdatest.V2Event, wantStatus int, wantBody string) {
		t.Helper()
		res := em.InvokeV2(t, ev)
		if res.StatusCode != wantStatus {
			t.Fatalf("POST %s: status %d, want %d: %s", ev.RawPath, res.StatusCode, wantStatus, res.Body)
		}
		var got, want any
		json.Unmarshal([]byte(res.Body), &got)
		json.Unmarshal([]byte(wantBody), &want)
		if g, _ := json.Marshal(got); string(g) != string(mustJSON(want)) {
			t.Errorf("POST %s: body %s, want %s", ev.RawPath, res.Body, wantBody)
		}
	}
	call(sample.Clone().SetHeader("authorization", auth), 200, `{"success":true}`)
	t.Logf("bootstrap %d bytes, first invocation %v", em.Bootstrap.Size, em.FirstInvocation().Round(time.Microsecond))
	// API Gateway redelivers (or the SDK retries): acknowledged, not applied twice.
	call(sample.Clone().SetHeader("authorization", auth), 200, `{"success":true}`)

	ctx := context.Background()
	profiles := profile.New(st, profile.Options{})
	p, err := profiles.Lookup(ctx, space, identifier(t, "user_id:u1"))
	if err != nil {
		t.Fatal(err)
	}
	if tv := p.TraitValues(); tv["plan"] != "pro" || tv["email"] != "ada@example.com" {
		t.Errorf("traits %v", tv)
	}
	evs, err := profiles.Events(ctx, space, p, time.Now().Add(-profile.EventQueryWindow), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Errorf("%d events after a redelivery, want 2: %+v", len(evs), evs)
	}

	// gzip, base64-encoded by API Gateway, with RudderStack's content type.
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write([]byte(`{"batch":[{"type":"track","messageId":"rie-gz-1","userId":"u1","event":"Zipped"}]}`))
	zw.Close()
	gz := sample.Clone().SetHeader("authorization", auth).SetHeader("content-type", "application/x-www-form-urlencoded").SetHeader("content-encoding", "gzip")
	gz.Body, gz.IsBase64Encoded = base64.StdEncoding.EncodeToString(zipped.Bytes()), true
	call(gz, 200, `{"success":true}`)

	// The SDKs' own paths through the same route: analytics-next's text/plain body with the
	// key inside it, and analytics-java's /v1/import/ (API Gateway keeps the slash).
	tplain := sample.Clone().DelHeader("authorization").SetPath("/v1/t").SetRoute("POST /v1/{call}").SetHeader("content-type", "text/plain").
		SetBody(`{"type":"track","event":"Short","userId":"u1","messageId":"rie-t-1","writeKey":"` + writeKey + `"}`)
	call(tplain, 200, `{"success":true}`)
	imp := sample.Clone().SetPath("/v1/import/").SetRoute("POST /v1/{call}").SetHeader("authorization", auth).
		SetBody(`{"batch":[{"type":"screen","name":"Home","userId":"u1","messageId":"rie-imp-1"}]}`)
	call(imp, 200, `{"success":true}`)

	// CORS preflight, answered by the function (the HTTP API has no CorsConfiguration).
	pre := sample.Clone().SetMethod("OPTIONS").SetPath("/v1/t").SetRoute("OPTIONS /v1/{call}").SetBody("").
		SetHeader("origin", "https://shop.example").SetHeader("access-control-request-method", "POST").
		SetHeader("access-control-request-headers", "authorization,content-type")
	if res := em.InvokeV2(t, pre); res.StatusCode != 204 || res.Headers["Access-Control-Allow-Origin"] != "*" ||
		res.Headers["Access-Control-Allow-Headers"] != "authorization,content-type" {
		t.Errorf("preflight under the RIE: %d %v", res.StatusCode, res.Headers)
	}

	// The SDK settings behind API Gateway: https and the API's host.
	settings := sample.Clone().SetMethod("GET").SetPath("/v1/projects/" + writeKey + "/settings").
		SetRoute("ANY /v1/projects/{writeKey}/settings").SetBody("").DelHeader("authorization")
	res := em.InvokeV2(t, settings)
	want := `"Segment.io":{"apiKey":"` + writeKey + `","apiHost":"r2d2c3po4b.execute-api.us-east-1.amazonaws.com/v1","protocol":"https"}`
	if res.StatusCode != 200 || !strings.Contains(res.Body, want) {
		t.Errorf("settings under the RIE: %d %s, want %s", res.StatusCode, res.Body, want)
	}
	unknown := settings.Clone().SetPath("/v1/projects/wk_unknown/settings").SetRoute("ANY /v1/projects/{writeKey}/settings")
	if res := em.InvokeV2(t, unknown); res.StatusCode != 404 {
		t.Errorf("settings of an unknown key under the RIE: %d %s", res.StatusCode, res.Body)
	}

	// The bundle, gzipped and base64-encoded for API Gateway.
	bundle := settings.Clone().SetPath(browsersdk.BundlePath).SetRoute("ANY /v1/sdk/{file}").SetHeader("accept-encoding", "br, gzip")
	res = em.InvokeV2(t, bundle)
	gzBody, err := base64.StdEncoding.DecodeString(res.Body)
	if res.StatusCode != 200 || !res.IsBase64Encoded || err != nil || res.Headers["Content-Encoding"] != "gzip" {
		t.Fatalf("bundle under the RIE: %d, base64 %v (%v), headers %v", res.StatusCode, res.IsBase64Encoded, err, res.Headers)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gzBody))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if f, _ := browsersdk.Open(browsersdk.Standalone); !bytes.Equal(plain, f.Plain) {
		t.Errorf("the bundle under the RIE is not the vendored bundle (%d bytes)", len(plain))
	}

	// GET /health: the table answers.
	health := settings.Clone().SetPath("/health").SetRoute("GET /health")
	if res := em.InvokeV2(t, health); res.StatusCode != 200 || !strings.Contains(res.Body, `"store":"ok"`) {
		t.Errorf("health under the RIE: %d %s", res.StatusCode, res.Body)
	}

	// The sample's own key belongs to no source of this table.
	call(sample.Clone(), 401, `{"error":{"code":"invalid_write_key","message":"the write key is unknown or its source is disabled; copy it from the source's settings (HTTP Basic user, empty password, or \"writeKey\" in the body)"}}`)
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func identifier(t *testing.T, s string) identity.Identifier {
	t.Helper()
	id, err := profile.ParseIdentifier("identifier", s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// seed creates a workspace and an http source through the services, on the table.
func seed(t *testing.T, st *dynamo.Store) (space, writeKey string) {
	t.Helper()
	tn := workspacetest.New(t, workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken)}), operatorToken)
	return tn.SpaceID(), tn.Source(t, "http").WriteKey
}

// The AWS outbox: with a destination on the source, each committed message of the sample
// batch is on the destinations queue (moto) as a job, with its messageId and the payload the
// destination gets, before the function answers; a redelivery of the batch queues them again
// (at least once: the client may be sending again after a crash before the queueing).
// Without the queue's URL the function refuses to start.
func TestTrackingQueuesForDestinationsUnderRIE(t *testing.T) {
	t.Parallel()
	endpoint := sqstest.Endpoint(t) // skips (or fails under CI) without moto
	_, table, st := storetest.DynamoStore(t)
	sqsClient := sqstest.Client(t, endpoint)
	queueURL := sqstest.CreateQueue(t, sqsClient)
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken)})
	tn := workspacetest.New(t, ws, operatorToken)
	src := tn.Source(t, "http")
	dst, err := ws.CreateDestination(context.Background(), tn.Owner, tn.ID(), workspace.NewDestination{Name: "Hook", Category: "analytics",
		Settings: map[string]any{"url": "https://hooks.example/in"}})
	if err != nil {
		t.Fatal(err)
	}
	em := lambdatest.Run(t, "tracking", map[string]string{
		"UP_TABLE_NAME":             table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		dsqs.QueueURLEnv:            queueURL,
		"AWS_ENDPOINT_URL_SQS":      endpoint,
	})
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(src.WriteKey+":"))
	batch := lambdatest.LoadV2(t, "tracking-batch").Clone().SetHeader("authorization", auth)
	for round := 1; round <= 2; round++ {
		if res := em.InvokeV2(t, batch.Clone()); res.StatusCode != 200 {
			t.Fatalf("round %d: %d %s", round, res.StatusCode, res.Body)
		}
		got := map[string]delivery.Job{}
		for deadline := time.Now().Add(20 * time.Second); len(got) < 2 && time.Now().Before(deadline); {
			for _, m := range sqstest.Receive(t, sqsClient, queueURL, time.Second) {
				j, err := dsqs.Decode(*m.Body)
				if err != nil {
					t.Fatalf("round %d: a queued body is not a job: %v", round, err)
				}
				got[j.MessageID] = j
			}
		}
		if len(got) != 2 {
			t.Fatalf("round %d: %d jobs queued, want the batch's 2: %v", round, len(got), got)
		}
		for _, id := range []string{"rie-msg-1", "rie-msg-2"} {
			j := got[id]
			var p map[string]any
			json.Unmarshal(j.Payload, &p)
			if j.DestinationID != dst.ID || j.SourceID != src.ID || j.WorkspaceID != tn.ID() || p["messageId"] != id || p["receivedAt"] == nil {
				t.Errorf("round %d: job %s: %+v, payload %v", round, id, j, p)
			}
		}
	}
	// No queue configured: no start.
	noQueue := lambdatest.Start(t, em.Bootstrap, map[string]string{"UP_TABLE_NAME": table, "AWS_ENDPOINT_URL_DYNAMODB": endpoint})
	if _, err := noQueue.Invoke(context.Background(), batch.Clone().Bytes()); err == nil || !strings.Contains(noQueue.Output(), dsqs.QueueURLEnv+" is not set") {
		t.Errorf("started without the queue: %v\n%s", err, noQueue.Output())
	}
}
