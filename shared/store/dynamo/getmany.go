package dynamo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unifiedprofiles/up/shared/store"
)

// GetMany reads keys with one consistent BatchGetItem. DynamoDB may hand back some keys as
// unprocessed (throttling, 16 MB per answer); those are asked again with jittered backoff,
// s.attempts times at most (the only layer that retries them), before giving up with
// store.ErrThrottled.
func (s *Store) GetMany(ctx context.Context, keys ...store.Key) (map[store.Key]store.Item, error) {
	if err := store.ValidateKeys(keys); err != nil {
		return nil, err
	}
	out := make(map[store.Key]store.Item, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	pending := make([]map[string]types.AttributeValue, len(keys))
	for i, k := range keys {
		pending[i] = keyAttrs(k)
	}
	now := s.now()
	delay := s.backoff
	for tries := 1; ; tries++ {
		res, err := s.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			s.table: {Keys: pending, ConsistentRead: aws.Bool(true)},
		}})
		if err != nil {
			return nil, fmt.Errorf("dynamo: get %d keys: %w", len(pending), err)
		}
		for _, raw := range res.Responses[s.table] {
			it, err := decode(raw)
			if err != nil {
				return nil, fmt.Errorf("dynamo: get many: %w", err)
			}
			if !it.Expired(now) {
				out[it.Key] = it
			}
		}
		pending = res.UnprocessedKeys[s.table].Keys
		if len(pending) == 0 {
			return out, nil
		}
		if tries >= s.attempts {
			return nil, fmt.Errorf("dynamo: get many: %w: %d keys still unprocessed after %d tries", store.ErrThrottled, len(pending), tries)
		}
		d := delay/2 + time.Duration(rand.Int64N(int64(delay/2)+1))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dynamo: get many: %w", ctx.Err())
		case <-time.After(d):
		}
		delay = min(delay*2, time.Second)
	}
}
