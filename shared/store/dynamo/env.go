package dynamo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// OpenFromEnv opens the table named by UP_TABLE_NAME with the standard AWS configuration
// (region, credentials, and AWS_ENDPOINT_URL_DYNAMODB for an emulator). The SDK's default
// HTTP client is kept: it honours AWS_CA_BUNDLE.
func OpenFromEnv(ctx context.Context) (*Store, error) {
	table := os.Getenv("UP_TABLE_NAME")
	if table == "" {
		return nil, errors.New("UP_TABLE_NAME is not set: name the DynamoDB table")
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return New(dynamodb.NewFromConfig(cfg), table), nil
}

// Serialized returns api sending one request at a time: wrap a client of an emulator in it.
// moto_server handles requests on concurrent threads without locking its tables: a
// conditional write checks and writes non-atomically, and a failed TransactWriteItems rolls
// back by restoring a copy of the whole table, undoing other requests' writes. Real DynamoDB
// is linearizable per item and serializable across a transaction, and needs no such thing;
// serialising one store's calls restores that on an emulator's table that no one else writes
// (a test's table, the local stack's). See ACCESS_PATTERNS.md, "Local emulators".
func Serialized(api API) API { return &serialAPI{api: api} }

type serialAPI struct {
	mu  sync.Mutex
	api API
}

func (s *serialAPI) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.api.GetItem(ctx, in, optFns...)
}

func (s *serialAPI) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.api.BatchGetItem(ctx, in, optFns...)
}

func (s *serialAPI) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.api.Query(ctx, in, optFns...)
}

func (s *serialAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.api.PutItem(ctx, in, optFns...)
}

func (s *serialAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.api.UpdateItem(ctx, in, optFns...)
}

func (s *serialAPI) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.api.DeleteItem(ctx, in, optFns...)
}

func (s *serialAPI) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.api.TransactWriteItems(ctx, in, optFns...)
}
