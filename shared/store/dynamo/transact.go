package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unifiedprofiles/up/shared/store"
)

// Condition fragments. An item whose TTL has passed but that DynamoDB has not yet deleted
// must behave as absent, so "exists" means "present and not expired" and vice versa.
// The comparisons are guarded by attribute_exists/attribute_not_exists so the meaning
// does not rest on how a missing attribute compares.
const (
	condGone       = "(attribute_not_exists(#pk) OR (attribute_exists(#ttl) AND #ttl <= :now))"
	condLive       = "(attribute_exists(#pk) AND (attribute_not_exists(#ttl) OR #ttl > :now))"
	condNotExpired = "(attribute_not_exists(#ttl) OR #ttl > :now)"
	condExpired    = "(attribute_exists(#ttl) AND #ttl <= :now)"
)

// Transact applies ops all-or-nothing. One op uses a plain conditional write (a transaction
// costs twice the write units); two or more use TransactWriteItems. A transaction conflict
// reported by DynamoDB is retried with jittered backoff before giving up with
// store.ErrContention; throttling is store.ErrThrottled at once (see isThrottle).
func (s *Store) Transact(ctx context.Context, ops ...store.Op) error {
	if err := store.Validate(ops); err != nil {
		return err
	}
	// revive[i] marks an Add whose counter is expired but not yet deleted by DynamoDB: it is
	// rewritten as a fresh counter, since one update expression cannot both keep a live count
	// and reset an expired one. We only learn this when the normal form fails its condition.
	revive := make([]bool, len(ops))
	delay := s.backoff
	tries, flips := 0, 0
	for {
		now := s.now().Unix()
		var err error
		if len(ops) == 1 {
			err = s.single(ctx, ops[0], revive[0], now)
		} else {
			err = s.multi(ctx, ops, revive, now)
		}
		if err == nil {
			return nil
		}
		var cf condFailed
		var ct contended
		switch {
		case errors.As(err, &cf):
			i, op := cf.index, ops[cf.index]
			if op.Kind != store.Add {
				return &store.ConditionError{Index: i, Key: op.Item.Key}
			}
			expired, err := s.expiredPresent(ctx, op.Item.Key)
			if err != nil {
				return err
			}
			if expired == revive[i] {
				return &store.ConditionError{Index: i, Key: op.Item.Key} // the bounds failed
			}
			// The counter expired, or was replaced or removed since we looked: the condition
			// failed on its expiry state, not on the bounds. Ops before i passed, so if the
			// fresh counter is out of bounds, op i is the first failure.
			if expired && !store.AddHolds(op, 0) {
				return &store.ConditionError{Index: i, Key: op.Item.Key}
			}
			revive[i] = expired
			if flips++; flips > 4 {
				return fmt.Errorf("dynamo: transact: %w (counter %s keeps changing)", store.ErrContention, op.Item.Key)
			}
		case errors.As(err, &ct):
			if tries++; tries >= s.attempts {
				return fmt.Errorf("dynamo: transact: %w after %d tries: %w", store.ErrContention, tries, ct.err)
			}
			// A random wait in [delay/2, delay] keeps colliding writers from retrying in step.
			d := delay/2 + time.Duration(rand.Int64N(int64(delay/2)+1))
			select {
			case <-ctx.Done():
				return fmt.Errorf("dynamo: transact: %w (while retrying after: %w)", ctx.Err(), ct.err)
			case <-time.After(d):
			}
			delay = min(delay*2, time.Second)
		default:
			return err
		}
	}
}

// condFailed says the op at index failed its condition.
type condFailed struct{ index int }

func (c condFailed) Error() string { return fmt.Sprintf("condition failed on op %d", c.index) }

// contended wraps an error that a later retry may not hit.
type contended struct{ err error }

func (c contended) Error() string { return c.err.Error() }
func (c contended) Unwrap() error { return c.err }

// expiredPresent reports whether the item at k exists but has expired.
func (s *Store) expiredPresent(ctx context.Context, k store.Key) (bool, error) {
	it, present, err := s.load(ctx, k)
	return present && it.Expired(s.now()), err
}

// single runs one op as a plain conditional write.
func (s *Store) single(ctx context.Context, op store.Op, revive bool, now int64) error {
	if op.Kind == store.Check {
		// Nothing to write: a consistent read answers it for 1 read unit, where a lone
		// ConditionCheck would need a transaction (2 write units).
		cur, ok, err := s.get(ctx, op.Item.Key)
		if err != nil {
			return err
		}
		var p *store.Item
		if ok {
			p = &cur
		}
		if !store.Holds(op, p) {
			return condFailed{0}
		}
		return nil
	}
	w := s.write(op, revive, now)
	var err error
	switch {
	case w.Put != nil:
		_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                 w.Put.TableName,
			Item:                      w.Put.Item,
			ConditionExpression:       w.Put.ConditionExpression,
			ExpressionAttributeNames:  w.Put.ExpressionAttributeNames,
			ExpressionAttributeValues: w.Put.ExpressionAttributeValues,
		})
	case w.Delete != nil:
		_, err = s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 w.Delete.TableName,
			Key:                       w.Delete.Key,
			ConditionExpression:       w.Delete.ConditionExpression,
			ExpressionAttributeNames:  w.Delete.ExpressionAttributeNames,
			ExpressionAttributeValues: w.Delete.ExpressionAttributeValues,
		})
	case w.Update != nil:
		_, err = s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 w.Update.TableName,
			Key:                       w.Update.Key,
			UpdateExpression:          w.Update.UpdateExpression,
			ConditionExpression:       w.Update.ConditionExpression,
			ExpressionAttributeNames:  w.Update.ExpressionAttributeNames,
			ExpressionAttributeValues: w.Update.ExpressionAttributeValues,
		})
	}
	if err == nil {
		return nil
	}
	if errCode(err) == "ConditionalCheckFailedException" {
		return condFailed{0}
	}
	if isThrottle(errCode(err)) {
		return fmt.Errorf("dynamo: write %s: %w: %w", op.Item.Key, store.ErrThrottled, err)
	}
	if isConflict(errCode(err)) {
		return contended{err}
	}
	return fmt.Errorf("dynamo: write %s: %w", op.Item.Key, err)
}

// multi runs ops as one TransactWriteItems call.
func (s *Store) multi(ctx context.Context, ops []store.Op, revive []bool, now int64) error {
	items := make([]types.TransactWriteItem, len(ops))
	for i, op := range ops {
		items[i] = s.write(op, revive[i], now)
	}
	_, err := s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return nil
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		codes := make([]string, len(tce.CancellationReasons))
		for i, r := range tce.CancellationReasons {
			codes[i] = aws.ToString(r.Code)
		}
		if len(codes) == 0 {
			codes = reasonsFromMessage(aws.ToString(tce.Message))
		}
		for i, c := range codes {
			if c == "ConditionalCheckFailed" && i < len(ops) {
				return condFailed{i}
			}
		}
		for _, c := range codes {
			if isThrottle(c) {
				return fmt.Errorf("dynamo: transaction of %d ops: %w: %w", len(ops), store.ErrThrottled, err)
			}
		}
		for _, c := range codes {
			if isConflict(c) {
				return contended{err}
			}
		}
		return fmt.Errorf("dynamo: transaction of %d ops cancelled (%s): %w", len(ops), strings.Join(codes, ", "), err)
	}
	if isThrottle(errCode(err)) {
		return fmt.Errorf("dynamo: transaction of %d ops: %w: %w", len(ops), store.ErrThrottled, err)
	}
	if isConflict(errCode(err)) {
		return contended{err}
	}
	return fmt.Errorf("dynamo: transaction of %d ops: %w", len(ops), err)
}

// reasonsFromMessage recovers cancellation codes from the exception message, in case an
// emulator (or an older wire format) leaves CancellationReasons empty. DynamoDB's message
// reads "Transaction cancelled, please refer cancellation reasons for specific reasons
// [None, ConditionalCheckFailed]".
func reasonsFromMessage(msg string) []string {
	m := regexp.MustCompile(`\[([A-Za-z, ]*)\]\s*$`).FindStringSubmatch(msg)
	if m == nil {
		return nil
	}
	parts := strings.Split(m[1], ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// isConflict reports whether a code means another transaction touched the same items: the
// adapter retries that itself, with jittered backoff.
func isConflict(code string) bool {
	return strings.TrimSuffix(code, "Exception") == "TransactionConflict"
}

// isThrottle reports whether a code means DynamoDB refused for capacity. The SDK has already
// retried the call (with backoff and its retry quota); the adapter does not retry again, so
// that retries never multiply across layers: it answers store.ErrThrottled.
func isThrottle(code string) bool {
	switch strings.TrimSuffix(code, "Exception") {
	case "ProvisionedThroughputExceeded", "Throttling", "ThrottlingError", "RequestLimitExceeded":
		return true
	}
	return false
}

// write builds the DynamoDB write for op. The same shape serves single writes and
// transactions so both paths send identical expressions.
func (s *Store) write(op store.Op, revive bool, now int64) types.TransactWriteItem {
	x := exprValues{now: now, op: op}
	table := aws.String(s.table)
	switch op.Kind {
	case store.Put:
		cond := condition(op)
		return types.TransactWriteItem{Put: &types.Put{
			TableName:                 table,
			Item:                      encode(op.Item),
			ConditionExpression:       optional(cond),
			ExpressionAttributeNames:  x.names(cond),
			ExpressionAttributeValues: x.values(cond),
		}}
	case store.Delete:
		cond := condition(op)
		return types.TransactWriteItem{Delete: &types.Delete{
			TableName:                 table,
			Key:                       keyAttrs(op.Item.Key),
			ConditionExpression:       optional(cond),
			ExpressionAttributeNames:  x.names(cond),
			ExpressionAttributeValues: x.values(cond),
		}}
	case store.Check:
		cond := condition(op)
		return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName:                 table,
			Key:                       keyAttrs(op.Item.Key),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  x.names(cond),
			ExpressionAttributeValues: x.values(cond),
		}}
	default: // store.Add; Validate has refused anything else
		if revive {
			// The stored counter has expired: replace it with a fresh one holding Delta, as
			// if it had been absent (the caller has checked Delta is within bounds), with the
			// op's Data and expiry. A whole put rather than SET+REMOVE: it also drops the old
			// Version, TTL and Data, and minidyn ignores REMOVE.
			return types.TransactWriteItem{Put: &types.Put{
				TableName:                 table,
				Item:                      encode(store.Item{Key: op.Item.Key, Data: op.Item.Data, Count: op.Delta, ExpiresAt: op.Item.ExpiresAt}),
				ConditionExpression:       aws.String(condExpired),
				ExpressionAttributeNames:  x.names(condExpired),
				ExpressionAttributeValues: x.values(condExpired),
			}}
		}
		update, cond := addExpressions(op)
		return types.TransactWriteItem{Update: &types.Update{
			TableName:                 table,
			Key:                       keyAttrs(op.Item.Key),
			UpdateExpression:          aws.String(update),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  x.names(update, cond),
			ExpressionAttributeValues: x.values(update, cond),
		}}
	}
}

// condition is the ConditionExpression for a Put, Delete or Check ("" for Always).
func condition(op store.Op) string {
	switch op.Cond {
	case store.MustNotExist:
		return condGone
	case store.MustExist:
		return condLive
	case store.VersionIs:
		if op.Version == 0 {
			return condGone
		}
		return condLive + " AND #v = :v"
	}
	return ""
}

// addExpressions returns the update and condition of an Add on a live or absent counter.
// The counter starts from 0 when absent (if_not_exists) and the bound is checked against
// the stored count, rearranged so the expression compares an attribute with a value:
// C + d <= max becomes C <= max-d, and C + d >= 0 becomes C >= -d. The op's Data and
// expiry go in only where the item has none (a new counter), so a live counter keeps its own.
func addExpressions(op store.Op) (update, cond string) {
	update = "SET #c = if_not_exists(#c, :zero) + :delta"
	if len(op.Item.Data) > 0 {
		update += ", #d = if_not_exists(#d, :data)"
	}
	if op.Item.ExpiresAt != 0 {
		update += ", #ttl = if_not_exists(#ttl, :ttl)"
	}
	cond = condNotExpired
	switch {
	case op.Delta > 0 && op.Delta <= op.Max:
		cond += " AND (attribute_not_exists(#c) OR #c <= :maxd)"
	case op.Delta > 0:
		// Even an absent counter (0) would overflow; the comparison fails for every item
		// yet still runs server-side, so a transaction reports the first failing op.
		cond += " AND #c <= :maxd"
	case op.Delta < 0:
		cond += " AND #c >= :negd"
	}
	return update, cond
}

func optional(expr string) *string {
	if expr == "" {
		return nil
	}
	return aws.String(expr)
}

// exprValues supplies the placeholders an expression uses. DynamoDB rejects unused
// ExpressionAttributeNames/Values, so only the ones that appear are sent.
type exprValues struct {
	now int64
	op  store.Op
}

func (x exprValues) names(exprs ...string) map[string]string {
	m := map[string]string{}
	for _, t := range placeholders('#', exprs) {
		switch t {
		case "#pk":
			m[t] = attrPK
		case "#ttl":
			m[t] = attrTTL
		case "#v":
			m[t] = attrVer
		case "#c":
			m[t] = attrCnt
		case "#d":
			m[t] = attrData
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func (x exprValues) values(exprs ...string) map[string]types.AttributeValue {
	m := map[string]types.AttributeValue{}
	for _, t := range placeholders(':', exprs) {
		switch t {
		case ":now":
			m[t] = num(x.now)
		case ":v":
			m[t] = num(x.op.Version)
		case ":zero":
			m[t] = num(0)
		case ":delta":
			m[t] = num(x.op.Delta)
		case ":maxd":
			m[t] = num(x.op.Max - x.op.Delta)
		case ":negd":
			m[t] = num(-x.op.Delta)
		case ":data":
			m[t] = &types.AttributeValueMemberB{Value: x.op.Item.Data}
		case ":ttl":
			m[t] = num(x.op.Item.ExpiresAt)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// placeholders lists the distinct tokens starting with sigil in exprs.
func placeholders(sigil byte, exprs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range exprs {
		for i := 0; i < len(e); i++ {
			if e[i] != sigil {
				continue
			}
			j := i + 1
			for j < len(e) && (e[j] == '_' || e[j] >= 'a' && e[j] <= 'z' || e[j] >= 'A' && e[j] <= 'Z' || e[j] >= '0' && e[j] <= '9') {
				j++
			}
			if t := e[i:j]; !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
			i = j - 1
		}
	}
	return out
}
