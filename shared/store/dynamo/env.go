package dynamo

import (
	"context"
	"errors"
	"fmt"
	"os"

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
