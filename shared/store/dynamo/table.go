package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// TableAPI is the part of *dynamodb.Client that EnsureTable uses.
type TableAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// EnsureTable creates table if it does not exist (on-demand billing, string PK and SK, no
// secondary index), waits until it is ACTIVE and enables TTL on the TTL attribute.
// Emulators that do not implement the TTL API are tolerated: the store hides expired
// items itself, TTL only reclaims their space.
func EnsureTable(ctx context.Context, client TableAPI, table string) error {
	_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	var nf *types.ResourceNotFoundException
	switch {
	case err == nil:
	case errors.As(err, &nf):
		_, err = client.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:   aws.String(table),
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
			},
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // in use: another process created it first
			return fmt.Errorf("dynamo: create table %s: %w", table, err)
		}
	default:
		return fmt.Errorf("dynamo: describe table %s: %w", table, err)
	}
	if err := waitActive(ctx, client, table); err != nil {
		return err
	}
	return enableTTL(ctx, client, table)
}

// waitActive polls until the table is ACTIVE. The SDK waiter starts at a 20 s delay, far
// too slow for emulators and tests, so poll with a short, growing interval instead.
func waitActive(ctx context.Context, client TableAPI, table string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		var nf *types.ResourceNotFoundException
		switch {
		case err == nil:
			var status types.TableStatus
			if out.Table != nil {
				status = out.Table.TableStatus
			}
			switch status {
			case types.TableStatusCreating, types.TableStatusUpdating:
			case types.TableStatusActive, "": // "": emulators (minidyn) that create tables synchronously omit the status
				return nil
			default:
				return fmt.Errorf("dynamo: table %s is %s", table, status)
			}
		case errors.As(err, &nf): // creation not yet visible
		default:
			return fmt.Errorf("dynamo: wait for table %s: %w", table, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dynamo: wait for table %s to become active: %w", table, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// enableTTL turns TTL on for attribute TTL unless it already is: DynamoDB refuses to
// enable it twice.
func enableTTL(ctx context.Context, client TableAPI, table string) error {
	out, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	switch {
	case unsupported(err):
		return nil
	case err != nil:
		return fmt.Errorf("dynamo: describe TTL of %s: %w", table, err)
	}
	if d := out.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == attrTTL &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil && !unsupported(err) {
		return fmt.Errorf("dynamo: enable TTL on %s: %w", table, err)
	}
	return nil
}

// unsupported reports whether err says the endpoint does not implement the operation.
// AWS answers UnknownOperationException; minidyn answers HTTP 400 with the plain-text body
// "unsupported operation", which the SDK reports as a deserialization error carrying it.
func unsupported(err error) bool {
	if err == nil {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "UnknownOperationException", "UnsupportedOperationException", "NotImplemented":
			return true
		}
	}
	var de *smithy.DeserializationError
	if errors.As(err, &de) {
		body := strings.ToLower(string(de.Snapshot))
		return strings.Contains(body, "unsupported operation") || strings.Contains(body, "unknown operation")
	}
	return false
}
