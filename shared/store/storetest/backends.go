package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	miniserver "github.com/truora/minidyn/server"

	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
)

// EndpointEnv names the variable holding a DynamoDB-compatible endpoint (moto_server,
// started by `make test`).
const EndpointEnv = "UP_TEST_DYNAMODB_ENDPOINT"

// JournaledEndpointEnv names the variable holding moto_server started through
// infra/scripts/moto_journaled.py: the same moto, except that a transaction backs up only
// the items it names instead of deep-copying the table (see the script). Stock moto's copy
// makes every transaction cost time in proportion to the table, so load tests run here.
const JournaledEndpointEnv = "UP_TEST_DYNAMODB_JOURNALED_ENDPOINT"

// Backend is a store implementation the tests can run against.
type Backend struct {
	Name string
	// Open returns a fresh, empty store; it is closed (and its table removed) when t ends.
	Open func(t *testing.T) store.Store
}

// Backends lists the stores available here: the embedded bolt store, the DynamoDB adapter
// on in-process minidyn, and the DynamoDB adapter on moto_server when EndpointEnv is set
// (see motoEndpoint for what happens when it is not).
func Backends(t *testing.T) []Backend {
	t.Helper()
	bs := []Backend{{Name: "bolt", Open: openBolt}}
	for _, d := range DynamoBackends(t) {
		if d.Name == "moto-journaled" {
			continue // the journaled server is for load tests and the conformance suite
		}
		bs = append(bs, Backend{Name: d.Name, Open: func(t *testing.T) store.Store { return d.Open(t) }})
	}
	return bs
}

// LoadBackends lists the stores a load test (thousands of transactions on one table) can
// afford: bolt, and the DynamoDB adapter on the journaled moto_server.
func LoadBackends(t *testing.T) []Backend {
	t.Helper()
	bs := []Backend{{Name: "bolt", Open: openBolt}}
	if ep := motoEndpoint(t, JournaledEndpointEnv); ep != "" {
		bs = append(bs, Backend{Name: "moto-journaled", Open: func(t *testing.T) store.Store { return openMoto(t, ep) }})
	}
	return bs
}

// DynamoBackend is a DynamoDB-compatible endpoint the dynamo adapter can run against.
type DynamoBackend struct {
	Name string
	// Open creates a fresh table and returns the adapter on it, built with opts; the
	// table is removed when t ends.
	Open func(t *testing.T, opts ...dynamo.Option) *dynamo.Store
}

// DynamoBackends lists "minidyn" (in-process, always), "moto" (moto_server at EndpointEnv)
// and "moto-journaled" (at JournaledEndpointEnv).
func DynamoBackends(t *testing.T) []DynamoBackend {
	t.Helper()
	bs := []DynamoBackend{{Name: "minidyn", Open: openMinidyn}}
	for _, m := range []struct{ name, env string }{{"moto", EndpointEnv}, {"moto-journaled", JournaledEndpointEnv}} {
		if ep := motoEndpoint(t, m.env); ep != "" {
			bs = append(bs, DynamoBackend{Name: m.name, Open: func(t *testing.T, opts ...dynamo.Option) *dynamo.Store {
				return openMoto(t, ep, opts...)
			}})
		}
	}
	return bs
}

// motoEndpoint reads a moto_server endpoint from env. Without it, CI fails (moto must not
// silently drop out there) and a local run logs that the backend is skipped.
func motoEndpoint(t *testing.T, env string) string {
	t.Helper()
	ep := os.Getenv(env)
	if ep == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: run make test (it starts moto_server and sets it)", env)
		}
		t.Logf("skipping a moto backend: %s is not set (make test starts moto_server and sets it)", env)
	}
	return ep
}

func openBolt(t *testing.T) store.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"))
	if err != nil {
		t.Fatalf("open bolt store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close bolt store: %v", err)
		}
	})
	return s
}

// openMinidyn starts a private minidyn server, so its table needs no deleting.
func openMinidyn(t *testing.T, opts ...dynamo.Option) *dynamo.Store {
	t.Helper()
	srv := httptest.NewServer(miniserver.NewServer())
	t.Cleanup(srv.Close)
	client := Client(t, srv.URL, true)
	table := TableName(t)
	ensureTable(t, client, table)
	return openStore(t, client, table, opts)
}

// openMoto creates a table on the shared moto_server and deletes it when t ends.
func openMoto(t *testing.T, endpoint string, opts ...dynamo.Option) *dynamo.Store {
	t.Helper()
	client := Client(t, endpoint, false)
	table := TableName(t)
	ensureTable(t, client, table)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			t.Errorf("delete table %s: %v", table, err)
		}
	})
	// moto is not safe for concurrent requests (see dynamo.Serialized).
	return openStore(t, dynamo.Serialized(client), table, opts)
}

func ensureTable(t *testing.T, client *dynamodb.Client, table string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dynamo.EnsureTable(ctx, client, table); err != nil {
		t.Fatalf("create table %s: %v", table, err)
	}
}

func openStore(t *testing.T, api dynamo.API, table string, opts []dynamo.Option) *dynamo.Store {
	s := dynamo.New(api, table, opts...)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close dynamo store: %v", err)
		}
	})
	return s
}

// Client returns a real DynamoDB client for a local endpoint, with dummy credentials.
// The HTTP client is left to the SDK: AWS_CA_BUNDLE may be set, and the SDK can only
// apply it to its own buildable client. noCRC turns off the SDK's response CRC32 check,
// for endpoints that send no X-Amz-Crc32 header (minidyn; harmless for moto): the SDK
// would compare against 0 and log a warning on every response.
func Client(t testing.TB, endpoint string, noCRC bool) *dynamodb.Client {
	t.Helper()
	cfg := MotoConfig(t)
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.DisableValidateResponseChecksum = noCRC
	})
}

// TableName returns a table name unique to this test and run: moto outlives a test, and
// parallel tests must not see each other's items.
func TableName(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, t.Name())
	// Table names are at most 255 characters; keep the random suffix.
	if len(name) > 200 {
		name = name[:200]
	}
	return "up-" + name + "-" + hex.EncodeToString(b[:])
}

// MotoRegion is the region of every client on moto_server (moto keeps resources per region).
const MotoRegion = "us-east-1"

// MotoConfig is the AWS configuration of a test client on moto_server: its region and dummy
// credentials. The HTTP client is left to the SDK, which applies AWS_CA_BUNDLE to its own
// buildable client.
func MotoConfig(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(MotoRegion),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
	)
	if err != nil {
		t.Fatalf("aws config: %v", err)
	}
	return cfg
}

// MotoEndpoint returns moto_server's endpoint (EndpointEnv: moto serves every AWS service on
// one port) for the tests of service. Without it the test is skipped, or fails when CI=true
// so that CI never silently drops them. There is no in-process stand-in as minidyn is for
// DynamoDB.
func MotoEndpoint(t testing.TB, service string) string {
	t.Helper()
	ep := os.Getenv(EndpointEnv)
	if ep == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: run make test, which starts moto_server (it serves %s too)", EndpointEnv, service)
		}
		t.Skipf("skipping: %s tests need moto_server; %s is not set (make test starts it and sets it)", service, EndpointEnv)
	}
	return ep
}
