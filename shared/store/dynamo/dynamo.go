// Package dynamo implements store.Store on one DynamoDB table (single-table design).
//
// Every item carries the same few attributes, mapped by hand so the wire format is
// explicit and stable:
//
//	PK  S  Key.PK
//	SK  S  Key.SK
//	D   B  Data (omitted when empty)
//	V   N  Version
//	C   N  Count
//	TTL N  ExpiresAt, unix seconds (omitted when 0); the table's TTL attribute
//
// DynamoDB deletes expired items lazily (up to days later), so the adapter treats an item
// whose TTL has passed as absent everywhere: reads filter it out and every condition counts
// it as missing. See ACCESS_PATTERNS.md for keys and costs.
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unifiedprofiles/up/shared/store"
)

// Attribute names of the table.
const (
	attrPK   = "PK"
	attrSK   = "SK"
	attrData = "D"
	attrVer  = "V"
	attrCnt  = "C"
	attrTTL  = "TTL"
)

// API is the part of *dynamodb.Client the store uses; tests may pass any implementation.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Store is the DynamoDB adapter. It is safe for concurrent use.
type Store struct {
	api      API
	table    string
	now      func() time.Time
	attempts int           // tries of one Transact call when DynamoDB reports contention
	backoff  time.Duration // first retry delay; doubles per try, with jitter
}

var _ store.Store = (*Store)(nil)

// Option adjusts a Store.
type Option func(*Store)

// WithClock sets the clock used to decide expiry (tests move time without sleeping).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithRetry sets how many times a contended transaction is tried and the first backoff.
func WithRetry(attempts int, backoff time.Duration) Option {
	return func(s *Store) {
		s.attempts = max(attempts, 1)
		s.backoff = backoff
	}
}

// New returns a store on table, which must exist (see EnsureTable).
func New(client API, table string, opts ...Option) *Store {
	s := &Store{api: client, table: table, now: time.Now, attempts: 8, backoff: 5 * time.Millisecond}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Close is a no-op: the client belongs to the caller.
func (s *Store) Close() error { return nil }

// Get returns the item at k, or store.ErrNotFound if it is absent or expired.
func (s *Store) Get(ctx context.Context, k store.Key) (store.Item, error) {
	it, ok, err := s.get(ctx, k)
	if err != nil {
		return store.Item{}, err
	}
	if !ok {
		return store.Item{}, store.ErrNotFound
	}
	return it, nil
}

// get reads k consistently; ok is false when the item is absent or expired.
func (s *Store) get(ctx context.Context, k store.Key) (store.Item, bool, error) {
	it, present, err := s.load(ctx, k)
	if err != nil || !present || it.Expired(s.now()) {
		return store.Item{}, false, err
	}
	return it, true, nil
}

// load reads k consistently, expired or not.
func (s *Store) load(ctx context.Context, k store.Key) (store.Item, bool, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            keyAttrs(k),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return store.Item{}, false, fmt.Errorf("dynamo: get %s: %w", k, err)
	}
	if len(out.Item) == 0 {
		return store.Item{}, false, nil
	}
	it, err := decode(out.Item)
	if err != nil {
		return store.Item{}, false, fmt.Errorf("dynamo: get %s: %w", k, err)
	}
	return it, true, nil
}

// Query returns the live items of partition pk selected by p, in ascending sort-key order,
// or descending (ScanIndexForward false) when p.Desc.
func (s *Store) Query(ctx context.Context, pk string, p store.Page) ([]store.Item, error) {
	names := map[string]string{"#pk": attrPK}
	values := map[string]types.AttributeValue{":pk": str(pk)}
	skCond, extra, empty := sortKeyCondition(p, values)
	if empty {
		return nil, nil
	}
	cond := "#pk = :pk"
	if skCond != "" {
		cond += " AND " + skCond
		names["#sk"] = attrSK
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ConsistentRead:            aws.Bool(true),
		ScanIndexForward:          aws.Bool(!p.Desc),
	}
	now := s.now()
	var items []store.Item
	for {
		// Expired items still count against DynamoDB's Limit, so ask only for what is
		// missing and keep paging until the page is full or the partition ends.
		if p.Limit > 0 {
			in.Limit = aws.Int32(int32(min(p.Limit-len(items)+extra, 1<<30)))
		}
		out, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamo: query %s: %w", pk, err)
		}
		for _, av := range out.Items {
			it, err := decode(av)
			if err != nil {
				return nil, fmt.Errorf("dynamo: query %s: %w", pk, err)
			}
			if !strings.HasPrefix(it.SK, p.Prefix) {
				past := it.SK > p.Prefix // keys with the prefix sort after the prefix itself
				if p.Desc {
					past = it.SK < p.Prefix
				}
				if past {
					return items, nil // past the prefix: nothing further can match
				}
				continue
			}
			if p.After != "" && (p.Desc && it.SK >= p.After || !p.Desc && it.SK <= p.After) {
				continue // the cursor's own item, read by an inclusive range
			}
			if it.Expired(now) {
				continue
			}
			items = append(items, it)
			if p.Limit > 0 && len(items) == p.Limit {
				return items, nil
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
		extra = 0
	}
}

// sortKeyCondition returns the sort-key part of p's key condition ("" for none), adding its
// values; extra is how many unwanted items (the cursor's own) the first page may return;
// empty says that no key can match, so no request is needed.
//
// The cursor goes into the key condition rather than ExclusiveStartKey: DynamoDB takes
// any key there, but minidyn returns nothing unless it is a stored key, and a cursor's
// item may have been deleted since. A sort key allows one condition, so a prefix and a
// cursor inside it become a range between the cursor and the far end of the prefix, read
// inclusively; Query drops the cursor's own item. (A filter expression cannot name a key
// attribute, so the cursor cannot go there.)
func sortKeyCondition(p store.Page, values map[string]types.AttributeValue) (cond string, extra int, empty bool) {
	if p.Desc {
		switch {
		case p.After == "" && p.Prefix == "":
			return "", 0, false
		case p.Prefix == "":
			values[":after"] = str(p.After)
			return "#sk < :after", 0, false
		case p.After != "" && p.After <= p.Prefix: // every key with the prefix is ≥ the cursor
			return "", 0, true
		case p.After == "" || !strings.HasPrefix(p.After, p.Prefix): // the cursor is past every key with the prefix
			values[":prefix"] = str(p.Prefix)
			return "begins_with(#sk, :prefix)", 0, false
		default: // Prefix < After, and After starts with Prefix
			values[":prefix"] = str(p.Prefix)
			values[":after"] = str(p.After)
			return "#sk BETWEEN :prefix AND :after", 1, false
		}
	}
	switch {
	case p.After == "" && p.Prefix == "":
		return "", 0, false
	case p.After == "" || p.After < p.Prefix: // every key with the prefix is past the cursor
		values[":prefix"] = str(p.Prefix)
		return "begins_with(#sk, :prefix)", 0, false
	case p.Prefix == "":
		values[":after"] = str(p.After)
		return "#sk > :after", 0, false
	case !strings.HasPrefix(p.After, p.Prefix): // the cursor is past every key with the prefix
		return "", 0, true
	default:
		values[":after"] = str(p.After)
		if end, ok := prefixEnd(p.Prefix); ok {
			values[":end"] = str(end)
			return "#sk BETWEEN :after AND :end", 1, false
		}
		return "#sk > :after", 0, false // trimmed at the end of the prefix by Query
	}
}

// prefixEnd returns the smallest string greater than every string starting with prefix
// (UTF-8 byte order is code point order, so increment the last code point that can be).
func prefixEnd(prefix string) (string, bool) {
	for prefix != "" {
		r, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
		switch {
		case r == utf8.RuneError && size == 1:
			return "", false // not UTF-8; DynamoDB would refuse it anyway
		case r == 0xD7FF: // skip the surrogates, which UTF-8 cannot encode
			return prefix + string(rune(0xE000)), true
		case r < utf8.MaxRune:
			return prefix + string(r+1), true
		}
	}
	return "", false
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func keyAttrs(k store.Key) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(k.PK), attrSK: str(k.SK)}
}

// encode maps an item to its attributes (see the package comment).
func encode(it store.Item) map[string]types.AttributeValue {
	av := keyAttrs(it.Key)
	if len(it.Data) > 0 {
		av[attrData] = &types.AttributeValueMemberB{Value: it.Data}
	}
	av[attrVer] = num(it.Version)
	av[attrCnt] = num(it.Count)
	if it.ExpiresAt != 0 {
		av[attrTTL] = num(it.ExpiresAt)
	}
	return av
}

// decode is the inverse of encode; missing V, C and TTL read as 0 (Add creates items without V).
func decode(av map[string]types.AttributeValue) (store.Item, error) {
	var it store.Item
	var err error
	if it.PK, err = getS(av, attrPK); err != nil {
		return it, err
	}
	if it.SK, err = getS(av, attrSK); err != nil {
		return it, err
	}
	switch v := av[attrData].(type) {
	case nil:
	case *types.AttributeValueMemberB:
		it.Data = v.Value
	default:
		return it, fmt.Errorf("attribute %s: want B, got %T", attrData, v)
	}
	if it.Version, err = getN(av, attrVer); err != nil {
		return it, err
	}
	if it.Count, err = getN(av, attrCnt); err != nil {
		return it, err
	}
	if it.ExpiresAt, err = getN(av, attrTTL); err != nil {
		return it, err
	}
	return it, nil
}

func getS(av map[string]types.AttributeValue, name string) (string, error) {
	v, ok := av[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", fmt.Errorf("attribute %s: want S, got %T", name, av[name])
	}
	return v.Value, nil
}

func getN(av map[string]types.AttributeValue, name string) (int64, error) {
	switch v := av[name].(type) {
	case nil:
		return 0, nil
	case *types.AttributeValueMemberN:
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("attribute %s: %w", name, err)
		}
		return n, nil
	default:
		return 0, fmt.Errorf("attribute %s: want N, got %T", name, v)
	}
}

// errCode returns the error code of an AWS API error, or "".
func errCode(err error) string {
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
