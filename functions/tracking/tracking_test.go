package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/infra/lambdatest"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
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
