package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/infra/lambdatest"
	dsqs "github.com/unifiedprofiles/up/shared/delivery/sqsqueue"
	"github.com/unifiedprofiles/up/shared/flex"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/secrets/kms"
	"github.com/unifiedprofiles/up/shared/secrets/kms/kmstest"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

const (
	operatorToken = "upo_flex_webhook_rie_test"
	authToken     = "0123456789abcdef0123456789abcdef"
)

// The flex-webhook bootstrap, under the Lambda Runtime Interface Emulator, verifies the
// sample TaskRouter callback's signature with the workspace's auth token (sealed with KMS on
// moto_server), records it on the customer's profile in DynamoDB, acknowledges Twilio's retry
// as a duplicate, refuses a wrong signature, and answers the agent lookup.
func TestFlexWebhookUnderRIE(t *testing.T) {
	t.Parallel()
	kmsEndpoint := kmstest.Endpoint(t) // moto serves KMS on the DynamoDB endpoint
	endpoint, table, st := storetest.DynamoStore(t)
	kmsClient := kmstest.Client(t, kmsEndpoint)
	keyID := kmstest.CreateKey(t, kmsClient)

	// Seed a workspace and its sealed token as the setup function would.
	ctx := context.Background()
	svc := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken), Secrets: kms.New(kmsClient, keyID)})
	tn := workspacetest.New(t, svc, operatorToken)
	if _, err := svc.SetFlexAuthToken(ctx, tn.Owner, tn.ID(), authToken); err != nil {
		t.Fatal(err)
	}
	em := lambdatest.Run(t, "flex-webhook", map[string]string{
		"UP_TABLE_NAME":             table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		kms.KeyIDEnv:                keyID,
		kms.EndpointEnv:             kmsEndpoint,
		dsqs.QueueURLEnv:            "http://127.0.0.1:9/000000000000/unused", // no destination here: never called
	})

	// The sample, addressed to this workspace and signed for the URL API Gateway was called at.
	ev := lambdatest.LoadV2(t, "flex-webhook-taskrouter").Clone().SetPath("/v1/flex/" + tn.ID() + "/webhooks")
	body, err := base64.StdEncoding.DecodeString(ev.Body) // API Gateway base64-encodes form bodies
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatal(err)
	}
	fullURL := "https://" + ev.RequestContext.DomainName + ev.RawPath
	signed := ev.Clone().SetHeader("x-twilio-signature", flex.Sign(authToken, fullURL, form))

	call := func(ev *lambdatest.V2Event, wantStatus int) map[string]any {
		t.Helper()
		res := em.InvokeV2(t, ev)
		if res.StatusCode != wantStatus {
			t.Fatalf("%s %s: status %d, want %d: %s", ev.RequestContext.HTTP.Method, ev.RawPath, res.StatusCode, wantStatus, res.Body)
		}
		var out map[string]any
		if err := json.Unmarshal([]byte(res.Body), &out); err != nil {
			t.Fatalf("body is not JSON: %q", res.Body)
		}
		return out
	}

	first := call(signed, 200)
	t.Logf("bootstrap %d bytes, first invocation %v", em.Bootstrap.Size, em.FirstInvocation().Round(time.Microsecond))
	if first["recorded"] != true || first["duplicate"] != false || first["profile_id"] == "" {
		t.Fatalf("first delivery: %v", first)
	}
	// Twilio retries the callback: acknowledged, not applied again.
	if again := call(signed.Clone(), 200); again["duplicate"] != true || again["profile_id"] != first["profile_id"] {
		t.Fatalf("retry: %v", again)
	}
	// Signed with another token: refused, in the envelope.
	bad := ev.Clone().SetHeader("x-twilio-signature", flex.Sign("fedcba9876543210fedcba9876543210", fullURL, form))
	if e, _ := call(bad, 403)["error"].(map[string]any); e["code"] != "invalid_signature" {
		t.Fatalf("bad signature: %v", e)
	}
	if e, _ := call(ev.Clone().DelHeader("x-twilio-signature"), 403)["error"].(map[string]any); e["code"] != "invalid_signature" {
		t.Fatalf("no signature: %v", e)
	}

	// One event on the profile, from the workspace's Flex source.
	profiles := profile.New(st, profile.Options{})
	prof, err := profiles.Get(ctx, tn.SpaceID(), first["profile_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := strconv.ParseInt(form.Get("TimestampMs"), 10, 64)
	at := time.UnixMilli(ms)
	evs, err := profiles.Events(ctx, tn.SpaceID(), prof, at.Add(-time.Hour), at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Event != flex.EventEngagementInitiated || evs[0].SourceID != tn.Sources[0].ID {
		t.Fatalf("events %+v", evs)
	}

	// The agent lookup is served by the same function.
	lookup := ev.Clone().SetMethod("GET").SetRoute("GET /v1/flex/{ws}/profiles").
		SetPath("/v1/flex/"+tn.ID()+"/profiles?phone=%2B14155550100").SetBody("").
		DelHeader("content-type").DelHeader("x-twilio-signature").SetHeader("authorization", "Bearer "+tn.Token)
	if got := call(lookup, 200); got["profile_id"] != first["profile_id"] || got["created"] != false {
		t.Fatalf("lookup: %v", got)
	}
}
