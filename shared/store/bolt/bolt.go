// Package bolt implements store.Store on bbolt: one file, serialisable transactions,
// concurrent writers grouped into one commit (groupcommit.go), and a write-ahead log with
// in-memory tables in front of the file (overlay.go).
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/unifiedprofiles/up/shared/store"
)

var itemsBucket = []byte("items")

// pageSize of a new file (an existing file keeps its own). Each commit rewrites every page it
// touches, and on this kind of disk a page written and fsynced costs about the same at 4 and
// 16 KB (about 30 µs): larger pages mean fewer of them per commit (TrackingBatch +17 %,
// BENCHMARKS.md 2026-12-01 23:40 UTC). 32 KB was slower again.
const pageSize = 16 << 10

// Store is a store.Store on one bbolt file and the write-ahead logs beside it.
type Store struct {
	db   *bbolt.DB
	now  func() time.Time
	path string

	qmu        sync.Mutex
	queue      []pending // writes waiting for the next commit
	committing bool      // a goroutine is committing the queue

	walMu       sync.Mutex // the log: appends, rotation
	wal         *os.File
	walSeq      int
	walOff      int64 // where the next record goes
	walTotal    int64 // logged since Open
	walBuf      []byte
	walPrepared bool                 // the log was full-size before use: zero-filled or recycled
	syncLog     func(*os.File) error // syncData; tests make it fail

	omu       sync.RWMutex // the tables
	active    *memtable    // committed, not yet frozen
	frozen    *memtable    // being flushed into bbolt; nil when none
	frozenSeq int          // the last log whose writes frozen holds
	flushErr  error        // a failed flush or rotation: commits stop, the logs keep everything

	closeOnce sync.Once
	closeErr  error

	flushMu    sync.Mutex
	spareMu    sync.Mutex // one spare log prepared at a time
	flushBytes int
	flushCh    chan struct{}
	stop       chan struct{}
	stopped    chan struct{}
}

// Option adjusts a Store.
type Option func(*Store)

// WithClock sets the clock that decides expiry (tests move time without sleeping).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// Open opens (creating if needed) the store file at path, first writing into it what the
// write-ahead logs beside it hold (a crash's leftovers).
func Open(path string, opts ...Option) (*Store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType, PageSize: pageSize})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(itemsBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("init store %s: %w", path, err)
	}
	s := &Store{db: db, now: time.Now, path: path, active: newMemtable(0), flushBytes: defaultFlushBytes, syncLog: syncData,
		flushCh: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	seq, err := s.recover()
	if err == nil {
		err = s.openWAL(seq)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	go s.background()
	return s, nil
}

// Close writes what the tables hold into bbolt, removes the logs and closes the file. No
// call may be in flight; calls that follow fail (the file is closed), and so does a second
// Close, with the first one's answer.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = errors.Join(s.closeOverlay(), s.db.Close()) })
	return s.closeErr
}

// Keys are PK, a 0x00 separator, SK: the separator sorts before every other byte, so a
// partition's items are contiguous and ordered by SK, as in DynamoDB.
func encodeKey(k store.Key) []byte {
	b := make([]byte, 0, len(k.PK)+1+len(k.SK))
	b = append(b, k.PK...)
	b = append(b, 0)
	return append(b, k.SK...)
}

// Values: version, count, expiresAt as 3×8 bytes big-endian, then the data.
const header = 24

func encodeValue(it store.Item) []byte {
	b := make([]byte, header+len(it.Data))
	binary.BigEndian.PutUint64(b[0:], uint64(it.Version))
	binary.BigEndian.PutUint64(b[8:], uint64(it.Count))
	binary.BigEndian.PutUint64(b[16:], uint64(it.ExpiresAt))
	copy(b[header:], it.Data)
	return b
}

// decodeHeader decodes an item without its data.
func decodeHeader(k store.Key, v []byte) (store.Item, error) {
	if len(v) < header {
		return store.Item{}, fmt.Errorf("store: corrupt item %s (%d bytes)", k, len(v))
	}
	return store.Item{
		Key:       k,
		Version:   int64(binary.BigEndian.Uint64(v[0:])),
		Count:     int64(binary.BigEndian.Uint64(v[8:])),
		ExpiresAt: int64(binary.BigEndian.Uint64(v[16:])),
	}, nil
}

func decodeValue(k store.Key, v []byte) (store.Item, error) {
	it, err := decodeHeader(k, v)
	if err != nil {
		return store.Item{}, err
	}
	if len(v) > header {
		// bbolt's memory is only valid inside the transaction.
		it.Data = bytes.Clone(v[header:])
	}
	return it, nil
}

// read runs fn with a view of the committed state (see view). A read holds no lock while
// it reads bbolt: holding the tables' lock for a whole read made every commit's publish
// wait for the reads under way, and every new read wait for that publish.
func (s *Store) read(fn func(v *view) error) error {
	v := s.newView(nil)
	defer v.close()
	return fn(v)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, k store.Key) (store.Item, error) {
	if err := ctx.Err(); err != nil {
		return store.Item{}, err
	}
	var out *store.Item
	err := s.read(func(v *view) error {
		var err error
		out, err = v.current(k, encodeKey(k), true)
		return err
	})
	if err != nil {
		return store.Item{}, err
	}
	if out == nil {
		return store.Item{}, store.ErrNotFound
	}
	return *out, nil
}

// GetMany implements store.Store: one consistent read.
func (s *Store) GetMany(ctx context.Context, keys ...store.Key) (map[store.Key]store.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := store.ValidateKeys(keys); err != nil {
		return nil, err
	}
	out := make(map[store.Key]store.Item, len(keys))
	err := s.read(func(v *view) error {
		for _, k := range keys {
			it, err := v.current(k, encodeKey(k), true)
			if err != nil {
				return err
			}
			if it != nil {
				out[k] = *it
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Query implements store.Store. Both orders walk the one contiguous run of keys that start
// with PK, 0x00 and the prefix: ascending from the cursor (or the start of the run) with
// Next, descending from just below the cursor (or the end of the run) with Prev. The walk
// stops at the first key outside the run, so it never reads another partition or another
// prefix, and it stops at Limit live items: a page costs what it returns plus the expired
// items it steps over.
func (s *Store) Query(ctx context.Context, pk string, p store.Page) ([]store.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prefix := encodeKey(store.Key{PK: pk, SK: p.Prefix}) // every key of the page starts with it
	items := []store.Item{}
	err := s.read(func(v *view) error {
		// The tables' writes in the page's range, merged into bbolt's walk: a table's write
		// of a key replaces bbolt's, and a delete hides it.
		ov := v.partition(pk, func(sk string) bool {
			switch {
			case !strings.HasPrefix(sk, p.Prefix):
				return false
			case p.After == "":
				return true
			case p.Desc:
				return sk < p.After
			default:
				return sk > p.After
			}
		}, p.Desc)
		before := func(a, b string) bool { return (!p.Desc && a < b) || (p.Desc && a > b) }
		full := false
		emit := func(sk string, val []byte) error {
			if val == nil {
				return nil
			}
			it, err := decodeValue(store.Key{PK: pk, SK: sk}, val)
			if err != nil {
				return err
			}
			if it.Expired(v.now) {
				return nil
			}
			items = append(items, it)
			full = p.Limit > 0 && len(items) == p.Limit
			return nil
		}
		b, err := v.items()
		if err != nil {
			return err
		}
		c := b.Cursor()
		var k, val []byte
		next := c.Next
		if p.Desc {
			k, val = seekBefore(c, descEnd(pk, prefix, p.After))
			next = c.Prev
		} else {
			k, val = c.Seek(ascStart(pk, prefix, p.After))
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && !full; k, val = next() {
			sk := string(k[len(pk)+1:])
			for ; len(ov) > 0 && before(ov[0].key.SK, sk) && !full; ov = ov[1:] {
				if err := emit(ov[0].key.SK, ov[0].val); err != nil {
					return err
				}
			}
			if full {
				break
			}
			if len(ov) > 0 && ov[0].key.SK == sk {
				val = ov[0].val
				ov = ov[1:]
			}
			if err := emit(sk, val); err != nil {
				return err
			}
		}
		for ; len(ov) > 0 && !full; ov = ov[1:] {
			if err := emit(ov[0].key.SK, ov[0].val); err != nil {
				return err
			}
		}
		return nil
	})
	return items, err
}

// ascStart is the first key an ascending page may hold: the start of the prefix run, or,
// if later, the first key strictly after the cursor (the cursor's key with a 0x00 appended).
// A cursor that sorts before the prefix bounds nothing.
func ascStart(pk string, prefix []byte, after string) []byte {
	if after == "" {
		return prefix
	}
	cur := append(encodeKey(store.Key{PK: pk, SK: after}), 0)
	if bytes.Compare(cur, prefix) > 0 {
		return cur
	}
	return prefix
}

// descEnd is the exclusive upper bound of a descending page: the end of the prefix run, or,
// if lower, the cursor's own key (only sort keys strictly less than the cursor qualify).
func descEnd(pk string, prefix []byte, after string) []byte {
	end := prefixEnd(prefix)
	if after == "" {
		return end
	}
	if cur := encodeKey(store.Key{PK: pk, SK: after}); bytes.Compare(cur, end) < 0 {
		return cur
	}
	return end
}

// prefixEnd returns the smallest byte string greater than every string that starts with
// prefix: drop trailing 0xff bytes, then add one to the last byte. prefix always holds the
// 0x00 that ends the PK, so it never consists of 0xff bytes alone, and an empty sort-key
// prefix gives PK+0x01, the end of the whole partition.
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for len(end) > 0 && end[len(end)-1] == 0xff {
		end = end[:len(end)-1]
	}
	if len(end) == 0 {
		panic("bolt: key prefix of 0xff bytes only") // unreachable: the PK separator is 0x00
	}
	end[len(end)-1]++
	return end
}

// seekBefore positions c on the last key strictly less than bound and returns it (nil if
// there is none).
func seekBefore(c *bbolt.Cursor, bound []byte) ([]byte, []byte) {
	if k, _ := c.Seek(bound); k == nil {
		return c.Last() // every key is less than bound
	}
	return c.Prev() // Seek stopped on the first key ≥ bound
}

// Transact implements store.Store. Concurrent callers share commits (see groupcommit.go). A
// failed condition is an answer, not a failure of the commit: apply stages nothing when a
// condition fails.
func (s *Store) Transact(ctx context.Context, ops ...store.Op) error {
	if err := store.Validate(ops); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w := prepare(ops)
	var failed *store.ConditionError
	err := s.commit(func(v *view) error {
		err := w.apply(v)
		if errors.As(err, &failed) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	if failed != nil {
		return failed
	}
	return nil
}

// writes are a transaction's operations with their keys and values already encoded: the
// encoding happens in the caller's goroutine, not in the one that commits for everyone.
type writes struct {
	ops  []store.Op
	keys [][]byte
	vals [][]byte // for puts; an Add's value depends on the current item
}

func prepare(ops []store.Op) writes {
	w := writes{ops: ops, keys: make([][]byte, len(ops)), vals: make([][]byte, len(ops))}
	for i, op := range ops {
		w.keys[i] = encodeKey(op.Item.Key)
		if op.Kind == store.Put {
			w.vals[i] = encodeValue(op.Item)
		}
	}
	return w
}

// apply checks every condition first, then stages its writes, so a failure leaves nothing
// half-done. It runs in the one committing goroutine, so it reads
// only what a condition needs: nothing for an unconditional put or delete, and the data only
// for an Add (which keeps it).
func (w writes) apply(v *view) error {
	var curs []*store.Item
	for i, op := range w.ops {
		if op.Cond == store.Always && op.Kind != store.Add {
			continue
		}
		cur, err := v.current(op.Item.Key, w.keys[i], op.Kind == store.Add)
		if err != nil {
			return err
		}
		if op.Kind == store.Add {
			if curs == nil {
				curs = make([]*store.Item, len(w.ops))
			}
			curs[i] = cur
		}
		ok := store.Holds(op, cur)
		if op.Kind == store.Add {
			var n int64
			if cur != nil {
				n = cur.Count
			}
			ok = store.AddHolds(op, n)
		}
		if !ok {
			return &store.ConditionError{Index: i, Key: op.Item.Key}
		}
	}
	for i, op := range w.ops {
		switch op.Kind {
		case store.Put:
			v.put(op.Item.Key, w.keys[i], w.vals[i])
		case store.Delete:
			v.delete(op.Item.Key, w.keys[i])
		case store.Add:
			next := op.Item
			if cur := curs[i]; cur != nil {
				// A live counter keeps its data and expiry; one without takes the op's, as
				// DynamoDB's if_not_exists does.
				next = *cur
				if len(next.Data) == 0 {
					next.Data = op.Item.Data
				}
				if next.ExpiresAt == 0 {
					next.ExpiresAt = op.Item.ExpiresAt
				}
			}
			next.Count += op.Delta
			v.put(op.Item.Key, w.keys[i], encodeValue(next))
		}
	}
	return nil
}

// TransactBatch implements store.Batcher: every transaction in one commit (one log record,
// one fsync), each checked and written in order on what the earlier ones wrote; a
// failed condition leaves that transaction out and the others in.
func (s *Store) TransactBatch(ctx context.Context, txs []store.Tx) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	invalid := make([]error, len(txs))
	ws := make([]writes, len(txs))
	for i, t := range txs {
		if invalid[i] = store.Validate(t.Ops); invalid[i] == nil {
			ws[i] = prepare(t.Ops)
		}
	}
	errs := make([]error, len(txs))
	err := s.commit(func(v *view) error {
		for i, t := range txs {
			errs[i] = invalid[i]
			if errs[i] != nil {
				continue
			}
			for _, n := range t.Needs {
				if errs[n] != nil {
					errs[i] = store.ErrSkipped
					break
				}
			}
			if errs[i] != nil {
				continue
			}
			err := ws[i].apply(v)
			var failed *store.ConditionError
			if errors.As(err, &failed) {
				errs[i] = failed
				continue
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}
