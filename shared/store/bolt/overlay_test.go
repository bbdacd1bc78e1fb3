package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/unifiedprofiles/up/shared/store"
)

// crash stops s as a killed process would: nothing flushed, the logs as they are on disk.
func (s *Store) crash() {
	close(s.stop)
	<-s.stopped
	s.walMu.Lock()
	s.wal.Close()
	s.walMu.Unlock()
	s.db.Close()
}

func putN(t *testing.T, s *Store, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		k := store.Key{PK: "P", SK: fmt.Sprintf("k%04d", i)}
		if err := s.Transact(context.Background(), store.PutOp(store.Item{Key: k, Data: []byte(fmt.Sprint(i)), Version: 1}, store.MustNotExist)); err != nil {
			t.Fatal(err)
		}
	}
}

// moveIntoZeroedLog makes s act as a busy store: a spare log is zero-filled and s moves into it.
func moveIntoZeroedLog(t *testing.T, s *Store) {
	t.Helper()
	s.walMu.Lock()
	s.walTotal = spareAfter
	s.walMu.Unlock()
	if err := s.keepSpare(); err != nil {
		t.Fatal(err)
	}
}

// recovered opens the store at path after a crash (closed with the test) and returns the
// sort keys of partition P.
func recovered(t *testing.T, path string) []string {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	items, err := s.Query(context.Background(), "P", store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	sks := make([]string, len(items))
	for i, it := range items {
		sks[i] = it.SK
	}
	return sks
}

// What a commit acknowledged survives a crash, whether its log was zero-filled ahead of
// time or not and whatever was flushed; a record torn at the log's end (a commit the crash
// cut short, never acknowledged) is left out, and so is a record another log held at the
// same place.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		zeroed bool // a spare log is ready when the store opens
		flush  bool // the first writes were flushed into bbolt before the crash
		torn   bool
		stale  bool // the tail holds a whole record written for another log
	}{
		{name: "appended log"},
		{name: "zeroed log", zeroed: true},
		{name: "torn tail", torn: true},
		{name: "torn tail in a zeroed log", zeroed: true, torn: true},
		{name: "stale record", zeroed: true, stale: true},
		{name: "part flushed", flush: true, torn: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "up.db")
			s, err := Open(path, WithFlushBytes(1<<30)) // no flush by size
			if err != nil {
				t.Fatal(err)
			}
			if c.zeroed {
				moveIntoZeroedLog(t, s)
			}
			if s.walPrepared != c.zeroed {
				t.Fatalf("log zero-filled: %v, want %v", s.walPrepared, c.zeroed)
			}
			putN(t, s, 0, 30)
			if c.flush {
				s.walMu.Lock()
				err := s.maybeFreeze(true)
				s.walMu.Unlock()
				if err == nil {
					err = s.flush()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			putN(t, s, 30, 50)
			if err := s.Transact(context.Background(), store.DeleteOp(store.Key{PK: "P", SK: "k0007"}, store.MustExist)); err != nil {
				t.Fatal(err)
			}
			walFile, seq, off := s.walPath(s.walSeq), s.walSeq, s.walOff
			s.crash()
			if c.torn || c.stale {
				f, err := os.OpenFile(walFile, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				never := []entry{{key: store.Key{PK: "P", SK: "never"}, val: encodeValue(store.Item{Data: []byte("x")})}}
				rec := appendRecord(nil, seq, never)
				if c.torn {
					rec = rec[:len(rec)-3] // cut short
				} else {
					rec = appendRecord(nil, seq+7, never) // whole, but another log's
				}
				if _, err := f.WriteAt(rec, off); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
			sks := recovered(t, path)
			if len(sks) != 49 {
				t.Fatalf("after the crash %d items, want the 49 acknowledged", len(sks))
			}
			for _, sk := range sks {
				if sk == "k0007" || sk == "never" {
					t.Errorf("%s is back", sk)
				}
			}
			if seqs, _ := walSeqs(path); len(seqs) != 1 || seqs[0] <= seq {
				t.Errorf("logs after recovery: %v, want only a new one after %d", seqs, seq)
			}
		})
	}
}

// A busy store moves its log into a zero-filled one, and flushes keep the tables bounded
// while the logs they covered go.
func TestBusyStoreZeroFillsAndFlushes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "up.db")
	s, err := Open(path, WithFlushBytes(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	big := make([]byte, 2000)
	for i := range 200 {
		k := store.Key{PK: "P", SK: fmt.Sprintf("k%04d", i)}
		if err := s.Transact(ctx, store.PutOp(store.Item{Key: k, Data: big, Version: 1}, store.Always)); err != nil {
			t.Fatal(err)
		}
		if i == 100 {
			if err := s.keepSpare(); err != nil {
				t.Fatal(err)
			}
			if !s.walPrepared {
				t.Fatal("past spareAfter the store did not move into a zero-filled log")
			}
		}
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	s.omu.RLock()
	activeBytes := s.active.bytes
	s.omu.RUnlock()
	if limit := maxActiveFactor*32<<10 + 4096; activeBytes > limit { // of the 400 KB written
		t.Errorf("active table holds %d bytes, past its bound %d", activeBytes, limit)
	}
	if seqs, _ := walSeqs(path); len(seqs) > 2 {
		t.Errorf("logs left: %v", seqs)
	}
	items, err := s.Query(ctx, "P", store.Page{Desc: true, Limit: 5})
	if err != nil || len(items) != 5 || items[0].SK != "k0199" {
		t.Fatalf("query across bbolt and the tables: %d items, %v", len(items), err)
	}
}

// A read never misses a write acknowledged before it began, while tables are frozen,
// flushed into bbolt and dropped under it (a freeze after every commit).
func TestReadsSeeAcknowledgedWritesAcrossFlushes(t *testing.T) {
	t.Parallel()
	s, err := Open(filepath.Join(t.TempDir(), "up.db"), WithFlushBytes(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	keys := []store.Key{{PK: "P", SK: "a"}, {PK: "P", SK: "b"}}
	var acked atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(1); i <= 1500; i++ {
			k := keys[i%2]
			if err := s.Transact(ctx, store.PutOp(store.Item{Key: k, Version: i}, store.Always)); err != nil {
				t.Error(err)
				return
			}
			acked.Store(i)
		}
	}()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				floor := acked.Load() // the latest write acknowledged is in one of the keys
				got, err := s.GetMany(ctx, keys...)
				if err != nil {
					t.Error(err)
					return
				}
				items, err := s.Query(ctx, "P", store.Page{})
				if err != nil {
					t.Error(err)
					return
				}
				best, bestQ := int64(0), int64(0)
				for _, it := range got {
					best = max(best, it.Version)
				}
				for _, it := range items {
					bestQ = max(bestQ, it.Version)
				}
				if best < floor || bestQ < floor {
					t.Errorf("read versions %d (GetMany) and %d (Query) after %d was acknowledged", best, bestQ, floor)
					return
				}
			}
		}()
	}
	wg.Wait()
	<-done // the writer stops before Close
}

// A flushed log is recycled as the next one, its old records left in place: after a crash
// only the new log's own records are replayed, so a key deleted since does not come back.
func TestRecycledLogReplaysOnlyItsOwnRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "up.db")
	s, err := Open(path, WithFlushBytes(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	x, y := store.Key{PK: "P", SK: "x"}, store.Key{PK: "P", SK: "y"}
	put := func(k store.Key, data string) {
		t.Helper()
		if err := s.Transact(ctx, store.PutOp(store.Item{Key: k, Data: []byte(data), Version: 1}, store.Always)); err != nil {
			t.Fatal(err)
		}
	}
	freeze := func() {
		t.Helper()
		s.walMu.Lock()
		err := s.maybeFreeze(true)
		s.walMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 20 { // 20 records of x in log 1
		put(x, "old")
	}
	freeze() // log 2 is a new file: no spare yet
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Transact(ctx, store.DeleteOp(x, store.MustExist)); err != nil { // in log 2
		t.Fatal(err)
	}
	freeze() // log 3 is log 1's file, its records of x still there
	if !s.walPrepared {
		t.Fatal("the flushed log was not recycled")
	}
	put(y, "new") // over the start of the first old record
	s.crash()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(ctx, x); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("x after the crash: %v, want it deleted", err)
	}
	if it, err := s.Get(ctx, y); err != nil || string(it.Data) != "new" {
		t.Errorf("y after the crash: %q, %v", it.Data, err)
	}
}

// A commit whose log sync fails is refused and never seen, and the commits after it are
// acknowledged and survive a crash: the next record goes where the failed one was, so the
// failed record's bytes (here they did reach the file) never stand before an acknowledged
// record, where replay would stop at them.
func TestFailedSyncLosesNoLaterCommit(t *testing.T) {
	t.Parallel()
	for _, zeroed := range []bool{false, true} {
		t.Run(fmt.Sprintf("zeroed log %v", zeroed), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "up.db")
			s, err := Open(path, WithFlushBytes(1<<30))
			if err != nil {
				t.Fatal(err)
			}
			if zeroed {
				moveIntoZeroedLog(t, s)
			}
			putN(t, s, 0, 10)
			s.walMu.Lock()
			s.syncLog = func(*os.File) error { return errors.New("injected: EIO") }
			s.walMu.Unlock()
			failed := store.Item{Key: store.Key{PK: "P", SK: "failed"}, Data: bytes.Repeat([]byte("f"), 4096)} // longer than what follows
			if err := s.Transact(context.Background(), store.PutOp(failed, store.Always)); err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("the commit whose sync failed answered %v", err)
			}
			s.walMu.Lock()
			s.syncLog = syncData
			s.walMu.Unlock()
			if _, err := s.Get(context.Background(), failed.Key); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the refused write reads back: %v", err)
			}
			putN(t, s, 10, 20)
			s.crash()
			if sks := recovered(t, path); len(sks) != 20 || slices.Contains(sks, "failed") {
				t.Fatalf("after the crash: %v, want k0000…k0019, the 20 acknowledged", sks)
			}
		})
	}
}
