package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/unifiedprofiles/up/infra/lambdatest"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/sqsqueue"
	"github.com/unifiedprofiles/up/shared/warehouse/sqsqueue/sqstest"
)

// The operator token the sample events in events/ carry.
const eventOperatorToken = "op_rie_test_operator_token"

// The setup function's bootstrap, under the Lambda Runtime Interface Emulator, answers the
// sample API Gateway v2 events with DynamoDB behind it.
func TestSetupUnderRIE(t *testing.T) {
	t.Parallel()
	endpoint, table := storetest.DynamoTable(t)
	em := lambdatest.Run(t, "setup", map[string]string{
		"UP_TABLE_NAME":             table,
		"UP_OPERATOR_TOKEN_SHA256":  token.Hash(eventOperatorToken),
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		"UP_UPLOADS_BUCKET":         "up-uploads-rie", // presigning is offline: no S3 call
	})

	call := func(ev *lambdatest.V2Event, wantStatus int) map[string]any {
		t.Helper()
		res := em.InvokeV2(t, ev)
		if res.StatusCode != wantStatus {
			t.Fatalf("%s %s: status %d, want %d: %s", ev.RequestContext.HTTP.Method, ev.RawPath, res.StatusCode, wantStatus, res.Body)
		}
		if ct := res.Headers["Content-Type"]; wantStatus != 204 && ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		var out map[string]any
		if err := json.Unmarshal([]byte(res.Body), &out); err != nil {
			t.Fatalf("body is not JSON: %q", res.Body)
		}
		return out
	}

	acc := call(lambdatest.LoadV2(t, "setup-accept-beta"), 201)
	t.Logf("bootstrap %d bytes, first invocation %v", em.Bootstrap.Size, em.FirstInvocation().Round(time.Microsecond))
	if !strings.HasPrefix(acc["invite_token"].(string), "upi_") {
		t.Fatalf("accept: %v", acc)
	}
	create := lambdatest.LoadV2(t, "setup-create-workspace")
	ws := call(create, 201)
	id, tok := ws["id"].(string), ws["token"].(string)
	if len(ws["sources"].([]any)) != 2 || len(ws["spaces"].([]any)) != 1 {
		t.Fatalf("created workspace: %v", ws)
	}
	// The same account again: 409.
	if e := call(create, 409)["error"].(map[string]any); e["code"] != "workspace_exists" {
		t.Fatalf("second workspace: %v", e)
	}

	src := lambdatest.LoadV2(t, "setup-create-source").Clone().
		SetPath("/v1/workspaces/"+id+"/sources").SetHeader("Authorization", "Bearer "+tok)
	if got := call(src, 201); got["type"] != "javascript" || got["auto_created"] != false {
		t.Fatalf("created source: %v", got)
	}
	get := lambdatest.LoadV2(t, "setup-get-workspace").Clone().
		SetPath("/v1/workspaces/"+id).SetHeader("Authorization", "Bearer "+tok)
	view := call(get, 200)
	usage := view["usage"].(map[string]any)["sources"].(map[string]any)
	if usage["used"] != 1.0 || usage["limit"] != 4.0 {
		t.Fatalf("usage: %v", view["usage"])
	}

	// The console's sign-in: the workspace token alone names its workspace.
	me := call(get.Clone().SetRoute("GET /v1/me").SetPath("/v1/me"), 200)
	if me["workspace_id"] != id || me["name"] != ws["name"] {
		t.Fatalf("GET /v1/me: %v", me)
	}
	// Errors come back in the envelope through API Gateway too.
	if e := call(get.Clone().SetHeader("Authorization", "Bearer upw_wrong"), 401)["error"].(map[string]any); e["code"] != "unauthorized" {
		t.Fatalf("wrong token: %v", e)
	}
	if e := call(src.Clone().SetBody(`{"name":`), 400)["error"].(map[string]any); e["code"] != "invalid_json" {
		t.Fatalf("invalid JSON: %v", e)
	}
}

// Predictions through the setup function under the emulator, with DynamoDB and the sync
// queue on moto_server: creating a prediction answers 201 training and sends its first run to
// the sync queue at once (no waiting for the dispatcher's minute); train now answers 202 and
// sends it again.
func TestSetupQueuesPredictionRunsUnderRIE(t *testing.T) {
	t.Parallel()
	sqsEndpoint := sqstest.Endpoint(t) // skips (or fails under CI) without moto
	sqsClient := sqstest.Client(t, sqsEndpoint)
	queueURL := sqstest.CreateQueue(t, sqsClient)
	endpoint, table := storetest.DynamoTable(t)
	em := lambdatest.Run(t, "setup", map[string]string{
		"UP_TABLE_NAME":             table,
		"UP_OPERATOR_TOKEN_SHA256":  token.Hash(eventOperatorToken),
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		"UP_UPLOADS_BUCKET":         "up-uploads-rie",
		"UP_SYNC_QUEUE_URL":         queueURL,
		"AWS_ENDPOINT_URL_SQS":      sqsEndpoint,
	})
	call := func(ev *lambdatest.V2Event, wantStatus int) map[string]any {
		t.Helper()
		res := em.InvokeV2(t, ev)
		if res.StatusCode != wantStatus {
			t.Fatalf("%s %s: status %d, want %d: %s", ev.RequestContext.HTTP.Method, ev.RawPath, res.StatusCode, wantStatus, res.Body)
		}
		var out map[string]any
		json.Unmarshal([]byte(res.Body), &out)
		return out
	}
	call(lambdatest.LoadV2(t, "setup-accept-beta"), 201)
	ws := call(lambdatest.LoadV2(t, "setup-create-workspace"), 201)
	id, tok := ws["id"].(string), ws["token"].(string)
	sp := ws["spaces"].([]any)[0].(map[string]any)["id"].(string)
	base := "/v1/workspaces/" + id + "/spaces/" + sp + "/predictions"
	post := lambdatest.LoadV2(t, "setup-create-source").Clone().SetHeader("Authorization", "Bearer "+tok)

	received := func() []warehouse.Task {
		t.Helper()
		var got []warehouse.Task
		for _, m := range sqstest.Receive(t, sqsClient, queueURL, time.Second) {
			tk, err := sqsqueue.Decode(aws.ToString(m.Body))
			if err != nil {
				t.Fatalf("a message the worker cannot read: %v", err)
			}
			got = append(got, tk)
		}
		return got
	}
	p := call(post.Clone().SetRoute("POST /v1/workspaces/{ws}/spaces/{sp}/predictions").SetPath(base).
		SetBody(`{"kind":"churn","key":"likely_to_churn","event":"Order Completed","window_days":30}`), 201)
	pid, _ := p["id"].(string)
	if p["status"] != "training" || pid == "" {
		t.Fatalf("created %v", p)
	}
	want := warehouse.Task{Kind: warehouse.TaskPrediction, WorkspaceID: id, SpaceID: sp, PredictionID: pid}
	if got := received(); len(got) != 1 || got[0] != want {
		t.Fatalf("after the create the queue holds %+v, want %+v", got, want)
	}
	call(post.Clone().SetRoute("POST /v1/workspaces/{ws}/spaces/{sp}/predictions/{id}/train").SetPath(base+"/"+pid+"/train").SetBody(""), 202)
	if got := received(); len(got) != 1 || got[0] != want {
		t.Fatalf("after train now the queue holds %+v, want %+v", got, want)
	}
}
