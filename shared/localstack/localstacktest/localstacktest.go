// Package localstacktest runs the local stack's black-box suites (infra/local, infra/sdktest,
// shared/localstack) on either store. Without EndpointEnv every stack they start uses bbolt,
// as `make run` does by default; with it, every stack keeps its data in a DynamoDB table of
// its own on that endpoint, as `make run` does with UP_DYNAMODB_ENDPOINT. make test runs the
// suites both ways (the second time on a moto_server of its own).
package localstacktest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unifiedprofiles/up/shared/store/storetest"
)

// EndpointEnv names the variable holding the DynamoDB endpoint (moto_server on loopback) the
// suites' stacks use instead of bbolt.
const EndpointEnv = "UP_TEST_LOCAL_DYNAMODB_ENDPOINT"

// OnDynamoDB reports whether the suites run on DynamoDB (EndpointEnv is set).
func OnDynamoDB() bool { return os.Getenv(EndpointEnv) != "" }

// DynamoDB returns the endpoint and a new table name for one local stack, or "", "" when
// EndpointEnv is not set (the stack then uses bbolt). The stack creates the table, as `make
// run` does; it is deleted when t ends. Tests run in parallel, so each stack gets its own
// table; a stack restarted on the same data must be given the same table again.
func DynamoDB(t testing.TB) (endpoint, table string) {
	t.Helper()
	endpoint = os.Getenv(EndpointEnv)
	if endpoint == "" {
		return "", ""
	}
	table = storetest.TableName(t)
	t.Logf("local stack on DynamoDB: table %s at %s (%s)", table, endpoint, EndpointEnv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := storetest.Client(t, endpoint, false).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		var nf *types.ResourceNotFoundException
		switch {
		case errors.As(err, &nf):
			// The stack never made it, or made it in the region and account its environment
			// configures (the test client uses us-east-1 and moto's default account).
			t.Logf("delete table %s: not found in us-east-1", table)
		case err != nil:
			t.Errorf("delete table %s: %v", table, err)
		}
	})
	return endpoint, table
}

// BinaryEnv returns the variables that put the local stack binary on table at endpoint, with
// no AWS configuration at all, as on a fresh machine: the stack must fall back to dummy
// credentials and us-east-1 for a loopback endpoint by itself. The variables come last in
// the binary's environment (the last of duplicate keys wins).
func BinaryEnv(t testing.TB, endpoint, table string) []string {
	t.Helper()
	none := filepath.Join(t.TempDir(), "no-aws-config")
	env := []string{"UP_DYNAMODB_ENDPOINT=" + endpoint, "UP_TABLE_NAME=" + table,
		"AWS_CONFIG_FILE=" + none, "AWS_SHARED_CREDENTIALS_FILE=" + none}
	// Empty counts as unset for the SDK.
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"} {
		env = append(env, v+"=")
	}
	return env
}
