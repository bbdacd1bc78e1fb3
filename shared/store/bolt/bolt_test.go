package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/store/storetest"
)

// The suite runs with writes held in the in-memory tables (the default size is never
// reached), and with a freeze after every commit, so that reads merge the active table,
// a frozen one being flushed, and bbolt.
func TestConformance(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string][]bolt.Option{"tables": nil, "flushing": {bolt.WithFlushBytes(1)}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) store.Store {
				s, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"), opts...)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := s.Close(); err != nil {
						t.Errorf("close: %v", err)
					}
				})
				return s
			})
		})
	}
}

// Data written before Close is there after reopening the file (a restart of the local stack).
func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "up.db")
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	k := store.Key{PK: "WS#1", SK: "WS"}
	if err := s.Transact(t.Context(), store.PutOp(store.Item{Key: k, Data: []byte("kept"), Version: 1}, store.MustNotExist)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(t.Context(), k)
	if err != nil || string(got.Data) != "kept" || got.Version != 1 {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
}

// A second Close answers as the first did, and a read after Close fails rather than
// panicking (the health check reads a closed store).
func TestCloseTwice(t *testing.T) {
	t.Parallel()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Transact(t.Context(), store.PutOp(store.Item{Key: store.Key{PK: "P", SK: "S"}, Version: 1}, store.Always)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Get(t.Context(), store.Key{PK: "P", SK: "S"}); err == nil {
		t.Fatal("a read after Close succeeded")
	}
}
