package storetest

import (
	"context"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	miniserver "github.com/truora/minidyn/server"

	"github.com/unifiedprofiles/up/shared/store/dynamo"
)

// DynamoTable returns a DynamoDB endpoint with a fresh table on it, for code that talks to
// DynamoDB itself (a Lambda under the emulator): moto_server at EndpointEnv, or, outside CI,
// an in-process minidyn server. With CI=true a missing endpoint fails the test.
func DynamoTable(t testing.TB) (endpoint, table string) {
	t.Helper()
	endpoint, table, _ = dynamoTable(t)
	return endpoint, table
}

// DynamoStore is DynamoTable with the adapter on the table too, for a test that fills it
// from its own process before a Lambda under the emulator reads it.
func DynamoStore(t testing.TB) (endpoint, table string, st *dynamo.Store) {
	t.Helper()
	endpoint, table, noCRC := dynamoTable(t)
	return endpoint, table, dynamo.New(Client(t, endpoint, noCRC), table)
}

// dynamoTable also says whether the endpoint is minidyn, which sends no CRC header.
func dynamoTable(t testing.TB) (endpoint, table string, noCRC bool) {
	t.Helper()
	endpoint = os.Getenv(EndpointEnv)
	if endpoint == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: run make test, which starts moto_server", EndpointEnv)
		}
		t.Logf("%s not set: using in-process minidyn instead of moto_server", EndpointEnv)
		srv := httptest.NewServer(miniserver.NewServer())
		t.Cleanup(srv.Close)
		endpoint, noCRC = srv.URL, true
	}
	table = TableName(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dynamo.EnsureTable(ctx, Client(t, endpoint, noCRC), table); err != nil {
		t.Fatalf("create table %s at %s: %v", table, endpoint, err)
	}
	return endpoint, table, noCRC
}
