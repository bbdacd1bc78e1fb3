package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/infra/lambdatest"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

const operatorToken = "upo_profiles_rie_test"

// The profiles function's bootstrap, under the Lambda Runtime Interface Emulator, answers
// the sample Profile API event from a DynamoDB table the test filled through the same
// adapter and services.
func TestProfilesUnderRIE(t *testing.T) {
	t.Parallel()
	endpoint, table, st := storetest.DynamoStore(t)
	space, accessToken := seed(t, st)
	em := lambdatest.Run(t, "profiles", map[string]string{
		"UP_TABLE_NAME":             table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
	})
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(accessToken+":"))
	profiles := "/v1/spaces/" + space + "/collections/users/profiles/"

	call := func(ev *lambdatest.V2Event, wantStatus int) (map[string]any, map[string]string) {
		t.Helper()
		res := em.InvokeV2(t, ev)
		if res.StatusCode != wantStatus {
			t.Fatalf("GET %s?%s: status %d, want %d: %s", ev.RawPath, ev.RawQueryString, res.StatusCode, wantStatus, res.Body)
		}
		if ct := res.Headers["Content-Type"]; ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		var out map[string]any
		if err := json.Unmarshal([]byte(res.Body), &out); err != nil {
			t.Fatalf("body is not JSON: %q", res.Body)
		}
		return out, res.Headers
	}
	sample := lambdatest.LoadV2(t, "profiles-traits")

	traits, _ := call(sample.Clone().SetPath(profiles+"user_id:u1/traits").SetHeader("authorization", basic), 200)
	t.Logf("bootstrap %d bytes, first invocation %v", em.Bootstrap.Size, em.FirstInvocation().Round(time.Microsecond))
	want := map[string]any{"email": "ada@example.com", "name": "Ada Lovelace", "plan": "pro"}
	if !reflect.DeepEqual(traits["traits"], want) {
		t.Errorf("traits = %v, want %v", traits["traits"], want)
	}
	if cur := traits["cursor"].(map[string]any); cur["has_more"] != false {
		t.Errorf("cursor = %v", cur)
	}

	// The sample's own query (limit=20) and a small page with its cursor.
	page, _ := call(sample.Clone().SetPath(profiles+"user_id:u1/traits?limit=2").SetHeader("authorization", basic), 200)
	cur := page["cursor"].(map[string]any)
	if len(page["traits"].(map[string]any)) != 2 || cur["has_more"] != true || !strings.Contains(cur["url"].(string), "next=") {
		t.Errorf("first page of 2: %v", page)
	}
	next, _ := call(sample.Clone().SetPath(cur["url"].(string)).SetHeader("authorization", basic), 200)
	if got := next["traits"]; !reflect.DeepEqual(got, map[string]any{"plan": "pro"}) {
		t.Errorf("second page: %v", next)
	}

	// API Gateway hands over the path decoded: an "@" arrives as is.
	if got, _ := call(sample.Clone().SetPath(profiles+"email:ada@example.com/metadata").SetHeader("authorization", basic), 200); got["metadata"] == nil {
		t.Errorf("metadata: %v", got)
	}

	body, _ := call(sample.Clone().SetPath(profiles+"user_id:nobody/traits").SetHeader("authorization", basic), 404)
	if e := body["error"].(map[string]any); len(e) != 2 || e["code"] != "not_found" || e["message"] != "Profile was not found." {
		t.Errorf("unknown profile: %v", body)
	}
	body, headers := call(sample.Clone().SetPath(profiles+"user_id:u1/traits").DelHeader("authorization"), 401)
	if e := body["error"].(map[string]any); e["code"] != "unauthorized" || headers["Www-Authenticate"] != `Basic realm="profiles"` {
		t.Errorf("no credentials: %v %v", body, headers)
	}
	// The sample's own token is no token of this table.
	if e, _ := call(sample.Clone().SetPath(profiles+"user_id:u1/traits"), 401); e["error"].(map[string]any)["code"] != "unauthorized" {
		t.Errorf("sample token: %v", e)
	}
}

// seed creates a workspace, an access token of its first space and one profile in it,
// through the DynamoDB adapter from the test process.
func seed(t *testing.T, st *dynamo.Store) (space, accessToken string) {
	t.Helper()
	ctx := context.Background()
	tn := workspacetest.New(t, workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken)}), operatorToken)
	space = tn.SpaceID()
	at := time.Now().UTC().Add(-time.Hour)
	raw, _ := json.Marshal(map[string]any{"type": "identify", "messageId": "msg-rie-1", "userId": "u1",
		"traits": map[string]any{"name": "Ada Lovelace", "email": "ada@example.com", "plan": "pro"}, "timestamp": at})
	_, err := profile.New(st, profile.Options{}).Apply(ctx, space, message.Message{
		Type: message.Identify, MessageID: "msg-rie-1", UserID: "u1",
		Traits:    map[string]any{"name": "Ada Lovelace", "email": "ada@example.com", "plan": "pro"},
		Timestamp: at, ReceivedAt: at, SourceID: tn.Sources[0].ID, Raw: raw,
	})
	if err != nil {
		t.Fatal(err)
	}
	return space, tn.AccessToken(t)
}
