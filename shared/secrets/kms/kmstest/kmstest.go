// Package kmstest gives tests a KMS to seal with: moto_server, which serves every AWS service
// on one port, at the endpoint `make test` starts for DynamoDB.
package kmstest

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/unifiedprofiles/up/shared/store/storetest"
)

// Region is the region the clients here use (moto keeps resources per region).
const Region = storetest.MotoRegion

// Endpoint returns the moto_server endpoint (storetest.EndpointEnv). Without it the test is
// skipped, or fails when CI=true so that CI never silently drops the KMS tests. There is no
// in-process stand-in as minidyn is for DynamoDB.
func Endpoint(t testing.TB) string {
	t.Helper()
	return storetest.MotoEndpoint(t, "KMS")
}

// Client returns a KMS client for endpoint with dummy credentials. The HTTP client is left to
// the SDK, which applies AWS_CA_BUNDLE to its own buildable client.
func Client(t testing.TB, endpoint string) *awskms.Client {
	t.Helper()
	cfg := storetest.MotoConfig(t)
	return awskms.NewFromConfig(cfg, func(o *awskms.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// CreateKey creates a symmetric key and returns its id; it is scheduled for deletion when t
// ends (moto outlives a test).
func CreateKey(t testing.TB, client *awskms.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := client.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("up test " + t.Name())})
	if err != nil {
		t.Fatalf("kmstest: create key: %v", err)
	}
	id := aws.ToString(out.KeyMetadata.KeyId)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}); err != nil {
			t.Errorf("kmstest: schedule deletion of key %s: %v", id, err)
		}
	})
	return id
}
