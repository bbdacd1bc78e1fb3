// Package store is the port every domain package persists through: a small, transactional
// item store shaped like one DynamoDB table (partition key, sort key, conditional writes,
// all-or-nothing transactions, TTL). Two adapters implement it — store/bolt (embedded) and
// store/dynamo (DynamoDB) — and both must pass store/storetest.
//
// Domain logic is written once against this port, so the rules (entitlement counters,
// single-use tokens, version checks) behave the same on a laptop and in AWS.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxOps is the most operations one Transact call may carry (DynamoDB's TransactWriteItems limit).
const MaxOps = 100

// Key addresses one item.
type Key struct {
	PK string // partition: items that are queried together share it
	SK string // sort key within the partition
}

// String names the key for error messages and logs. A key segment that holds a value (the
// part after a ':', such as an identifier's "email:ada@example.com") shows only a short hash
// of it: keys reach logs through errors, and customer data must not.
func (k Key) String() string { return redactKeyValues(k.PK) + "|" + redactKeyValues(k.SK) }

// redactKeyValues replaces what follows the first ':' of each '#'-separated segment with a
// short SHA-256 prefix, so a log line still tells two keys apart without showing either value.
func redactKeyValues(s string) string {
	if !strings.Contains(s, ":") {
		return s
	}
	segs := strings.Split(s, "#")
	for i, seg := range segs {
		if typ, value, ok := strings.Cut(seg, ":"); ok {
			sum := sha256.Sum256([]byte(value))
			segs[i] = typ + ":~" + hex.EncodeToString(sum[:4])
		}
	}
	return strings.Join(segs, "#")
}

// Item is a stored record. Data is opaque to the store (domain packages keep JSON there).
type Item struct {
	Key
	Data []byte
	// Version is the optimistic-concurrency counter; writers set it, VersionIs checks it.
	Version int64
	// Count is the value of a counter item, changed only by Add operations.
	Count int64
	// ExpiresAt, when non-zero, hides the item from reads after that instant (unix seconds);
	// DynamoDB's TTL deletes it later, the embedded store sweeps it.
	ExpiresAt int64
}

// Expired reports whether the item is past its expiry at now.
func (it Item) Expired(now time.Time) bool {
	return it.ExpiresAt != 0 && it.ExpiresAt <= now.Unix()
}

// OpKind says what an operation does.
type OpKind int

const (
	// Put writes the whole item.
	Put OpKind = iota + 1
	// Delete removes the item (a no-op if absent, unless the condition says otherwise).
	Delete
	// Add changes the item's Count by Delta, creating the item at 0 if absent, and fails the
	// transaction if the result would leave [0, Max]. Data, ExpiresAt and Version are left
	// alone (a new counter item, or a live one without them, gets the op's Data and ExpiresAt).
	Add
	// Check writes nothing; its condition must hold for the transaction to commit.
	Check
)

// Cond is the condition an operation's target item must meet.
type Cond int

const (
	// Always: no condition.
	Always Cond = iota
	// MustNotExist: the item must be absent (or expired).
	MustNotExist
	// MustExist: the item must be present and not expired.
	MustExist
	// VersionIs: the item's Version must equal Op.Version; Version 0 means "must not exist".
	VersionIs
)

// Op is one operation of a transaction.
type Op struct {
	Kind    OpKind
	Item    Item // for Delete, Add and Check only the Key matters (Add also uses Data on create)
	Cond    Cond
	Version int64 // expected version, with VersionIs
	Delta   int64 // with Add
	Max     int64 // with Add and Delta > 0: the upper bound of Count after the add
}

// PutOp writes item under cond.
func PutOp(item Item, cond Cond) Op { return Op{Kind: Put, Item: item, Cond: cond} }

// ReplaceOp writes item if the stored version is still prev, and stamps item with prev+1.
func ReplaceOp(item Item, prev int64) Op {
	item.Version = prev + 1
	return Op{Kind: Put, Item: item, Cond: VersionIs, Version: prev}
}

// DeleteOp removes the item at k under cond.
func DeleteOp(k Key, cond Cond) Op { return Op{Kind: Delete, Item: Item{Key: k}, Cond: cond} }

// AddOp changes a counter by delta; the result must stay within [0, max] (max ignored when delta ≤ 0).
func AddOp(k Key, delta, max int64) Op {
	return Op{Kind: Add, Item: Item{Key: k}, Delta: delta, Max: max}
}

// CheckOp asserts cond on the item at k without writing.
func CheckOp(k Key, cond Cond) Op { return Op{Kind: Check, Item: Item{Key: k}, Cond: cond} }

// CheckVersionOp asserts that the item at k still has version v.
func CheckVersionOp(k Key, v int64) Op {
	return Op{Kind: Check, Item: Item{Key: k}, Cond: VersionIs, Version: v}
}

// Page selects a slice of a partition: the live items whose sort key starts with Prefix and
// lies strictly beyond the cursor After, in ascending sort-key order, or in descending order
// when Desc is set; at most Limit of them. Sort keys compare as byte strings (UTF-8 code
// point order), as in DynamoDB.
//
// The cursor is read in the page's own order: ascending, only sort keys strictly greater
// than After are returned; descending, only sort keys strictly less than After. So the next
// page starts After the last sort key of this one, in either order. After need not be a
// stored key (its item may have been deleted since), and a cursor outside the prefix simply
// bounds nothing or everything: descending, a cursor that sorts before (or equals) Prefix
// gives an empty page, and one past every key with the prefix gives the whole prefix.
//
// A descending page of the newest items (sort keys that grow with time) costs reads in
// proportion to the page, plus any expired items the store steps over; it never reads the
// rest of the partition.
type Page struct {
	Prefix string // sort keys must start with it; "" selects the whole partition
	After  string // a cursor: only sort keys strictly past it in the page's order; "" from the start (the end, with Desc)
	Limit  int    // at most this many live items; ≤ 0 means all
	Desc   bool   // descending sort-key order (newest first, for time-ordered keys)
}

// Store is the port. Every read is strongly consistent; expired items are never returned.
type Store interface {
	// Get returns the item at k, or ErrNotFound.
	Get(ctx context.Context, k Key) (Item, error)
	// GetMany reads up to MaxGets distinct keys in one round trip; absent and expired keys
	// are missing from the map.
	GetMany(ctx context.Context, keys ...Key) (map[Key]Item, error)
	// Query returns the live items of partition pk selected by p (see Page), in ascending
	// sort-key order, or descending when p.Desc: then p.After bounds from above (sort keys
	// strictly less than it) and p.Limit takes the greatest sort keys first. The items of
	// other partitions never appear, even when their PK starts with pk.
	Query(ctx context.Context, pk string, p Page) ([]Item, error)
	// Transact applies ops all-or-nothing. If a condition fails, nothing is written and the
	// error is a *ConditionError naming the first failing op. Two ops on one key, or more
	// than MaxOps ops, are refused with ErrInvalidTransaction.
	Transact(ctx context.Context, ops ...Op) error
	// Close releases the store.
	Close() error
}

var (
	// ErrNotFound: no item at that key.
	ErrNotFound = errors.New("store: item not found")
	// ErrInvalidTransaction: the transaction is malformed (duplicate keys, too many ops, bad op).
	ErrInvalidTransaction = errors.New("store: invalid transaction")
	// ErrInvalidRead: a GetMany with too many, empty or repeated keys.
	ErrInvalidRead = errors.New("store: invalid read")
	// ErrContention: the store kept reporting conflicting concurrent transactions; try later.
	ErrContention = errors.New("store: too much contention, try again")
	// ErrThrottled: the store refused the request for capacity (DynamoDB throttling) after
	// its client's own retries. Nothing above retries it again: the APIs answer 503 with
	// Retry-After, so one layer (the SDK's) retries and the caller holds the budget.
	ErrThrottled = errors.New("store: throttled, retry later")
)

// ConditionError says which operation's condition failed.
type ConditionError struct {
	Index int // position of the failing op in the Transact call
	Key   Key
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("store: condition failed on op %d (%s)", e.Index, e.Key)
}

// FailedOp returns the index of the op whose condition failed, or -1 if err is not a condition failure.
func FailedOp(err error) int {
	var ce *ConditionError
	if errors.As(err, &ce) {
		return ce.Index
	}
	return -1
}

// MaxGets is the most keys one GetMany reads (DynamoDB's BatchGetItem limit).
const MaxGets = 100

// ValidateKeys checks a GetMany call; adapters call it first.
func ValidateKeys(keys []Key) error {
	if len(keys) > MaxGets {
		return fmt.Errorf("%w: %d keys (at most %d)", ErrInvalidRead, len(keys), MaxGets)
	}
	seen := make(map[Key]struct{}, len(keys))
	for _, k := range keys {
		if k.PK == "" || k.SK == "" {
			return fmt.Errorf("%w: empty key", ErrInvalidRead)
		}
		if _, dup := seen[k]; dup {
			return fmt.Errorf("%w: %s asked twice", ErrInvalidRead, k)
		}
		seen[k] = struct{}{}
	}
	return nil
}

// Validate checks the shape of a transaction; adapters call it first.
func Validate(ops []Op) error {
	if len(ops) == 0 || len(ops) > MaxOps {
		return fmt.Errorf("%w: %d ops (1 to %d allowed)", ErrInvalidTransaction, len(ops), MaxOps)
	}
	seen := make(map[Key]struct{}, len(ops))
	for i, op := range ops {
		if op.Item.PK == "" || op.Item.SK == "" {
			return fmt.Errorf("%w: op %d has an empty key", ErrInvalidTransaction, i)
		}
		if _, dup := seen[op.Item.Key]; dup {
			return fmt.Errorf("%w: two ops on %s", ErrInvalidTransaction, op.Item.Key)
		}
		seen[op.Item.Key] = struct{}{}
		switch op.Kind {
		case Put, Delete, Check:
		case Add:
			if op.Cond != Always {
				return fmt.Errorf("%w: op %d: Add takes no condition (its bounds are the condition)", ErrInvalidTransaction, i)
			}
			if op.Delta > 0 && op.Max <= 0 {
				return fmt.Errorf("%w: op %d: Add of %d needs a positive Max", ErrInvalidTransaction, i, op.Delta)
			}
		default:
			return fmt.Errorf("%w: op %d has unknown kind %d", ErrInvalidTransaction, i, op.Kind)
		}
		if op.Kind == Check && op.Cond == Always {
			return fmt.Errorf("%w: op %d: Check needs a condition", ErrInvalidTransaction, i)
		}
	}
	return nil
}

// Holds reports whether cond is met by the current item (nil when absent or expired).
// The embedded adapter uses it; DynamoDB evaluates the equivalent expression server-side.
func Holds(op Op, cur *Item) bool {
	switch op.Cond {
	case MustNotExist:
		return cur == nil
	case MustExist:
		return cur != nil
	case VersionIs:
		if op.Version == 0 {
			return cur == nil
		}
		return cur != nil && cur.Version == op.Version
	}
	return true
}

// AddHolds reports whether an Add op may apply to the current count.
func AddHolds(op Op, count int64) bool {
	n := count + op.Delta
	if n < 0 {
		return false
	}
	return op.Delta <= 0 || n <= op.Max
}

// pingKey is never written: reading it proves the store answers.
var pingKey = Key{PK: "health", SK: "ping"}

// Ping reads one key to check that st answers (a health check).
func Ping(ctx context.Context, st Store) error {
	if _, err := st.Get(ctx, pingKey); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}
