package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/unifiedprofiles/up/infra/lambdatest"
	"github.com/unifiedprofiles/up/shared/locals3"
	"github.com/unifiedprofiles/up/shared/objects/s3"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/upload"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

const operatorToken = "upo_csv_ingest_rie_test"

// The csv-ingest bootstrap, under the Lambda Runtime Interface Emulator, takes the sample S3
// event (pointed at a real upload), reads the object from an S3-compatible endpoint
// (gofakes3), validates and ingests it into DynamoDB; a redelivery changes nothing.
func TestCSVIngestUnderRIE(t *testing.T) {
	t.Parallel()
	endpoint, table, st := storetest.DynamoStore(t)
	const bucket = "up-uploads-rie"
	s3srv, err := locals3.Open(locals3.Config{DataDir: t.TempDir(), Bucket: bucket, AccessKey: "test", SecretKey: "test"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s3srv.Handler())
	t.Cleanup(func() { hs.Close(); s3srv.Close() })

	ctx := context.Background()
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken)})
	tn := workspacetest.New(t, ws, operatorToken)
	profiles := profile.New(st, profile.Options{})
	uploads := upload.New(st, ws, profiles, s3.New(s3srv.Client(hs.URL), bucket), upload.Options{})
	file := "user_id,email,Favourite Colour\nada,ada@example.com,green\ngrace,grace@example.com,\n"
	u, _, err := uploads.Request(ctx, tn.Owner, tn.ID(), "people.csv", int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	key := upload.ObjectKey(tn.ID(), u.ID)
	// As the browser's presigned POST would (that path is tested in locals3 and end to end).
	put, err := s3srv.Client(hs.URL).PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: strings.NewReader(file), ContentLength: aws.Int64(int64(len(file)))})
	if err != nil {
		t.Fatal(err)
	}

	var ev events.S3Event
	if err := json.Unmarshal(lambdatest.LoadEvent(t, "s3-object-created"), &ev); err != nil {
		t.Fatal(err)
	}
	// The event names the object stored, by its ETag: the function reads that object only.
	rec := &ev.Records[0]
	rec.S3.Bucket.Name, rec.S3.Object.Key, rec.S3.Object.Size = bucket, key, int64(len(file))
	rec.S3.Object.ETag, rec.EventTime = strings.Trim(aws.ToString(put.ETag), `"`), time.Now().UTC()
	payload, _ := json.Marshal(ev)

	em := lambdatest.Run(t, "csv-ingest", map[string]string{
		"UP_TABLE_NAME":             table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		"UP_UPLOADS_BUCKET":         bucket,
		"AWS_ENDPOINT_URL_S3":       hs.URL,
	})
	for range 2 { // the second is a redelivery
		out, err := em.Invoke(ctx, payload)
		if err != nil {
			t.Fatalf("invoke: %v\n%s", err, em.Output())
		}
		if !bytes.Equal(bytes.TrimSpace(out), []byte("null")) {
			t.Errorf("answer %s", out)
		}
	}
	t.Logf("bootstrap %d bytes, first invocation %v", em.Bootstrap.Size, em.FirstInvocation())

	got, err := uploads.Get(ctx, tn.Owner, tn.ID(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != upload.StatusCompleted || got.RowsDone != 2 || got.Deliveries != 1 || got.Summary.ProfilesCreated != 2 ||
		got.Summary.Traits["Favourite Colour"] != 1 {
		t.Fatalf("upload %+v %+v", got, got.Summary)
	}
	id, _ := profile.ParseIdentifier("identifier", "email:ada@example.com")
	p, err := profiles.Lookup(ctx, tn.SpaceID(), id)
	if err != nil {
		t.Fatal(err)
	}
	if p.TraitValues()["Favourite Colour"] != "green" {
		t.Errorf("traits %v", p.TraitValues())
	}
}
