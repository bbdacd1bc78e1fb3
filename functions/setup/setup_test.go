package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/infra/lambdatest"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
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
