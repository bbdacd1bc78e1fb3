package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/unifiedprofiles/up/shared/store"
)

// testTransactBatch: each transaction of a batch commits or fails on its own, sees what the
// earlier ones wrote, and is skipped when one it needs failed.
func testTransactBatch(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustTransact(t, s, store.PutOp(store.Item{Key: key("B", "taken"), Data: []byte("x")}, store.Always))
	put := func(sk string, cond store.Cond) store.Op {
		return store.PutOp(store.Item{Key: key("B", sk), Data: []byte(sk)}, cond)
	}
	txs := []store.Tx{
		{Ops: []store.Op{put("a", store.MustNotExist), put("b", store.Always)}},                                   // 0 commits
		{Ops: []store.Op{put("taken", store.MustNotExist), put("c", store.Always)}},                               // 1 fails on its first op
		{Ops: []store.Op{put("d", store.Always)}, Needs: []int{1}},                                                // 2 skipped: 1 failed
		{Ops: []store.Op{store.ReplaceOp(store.Item{Key: key("B", "a")}, 0)}, Needs: []int{0}},                    // 3 fails: a exists now (0 wrote it)
		{Ops: []store.Op{store.CheckOp(key("B", "b"), store.MustExist), put("e", store.Always)}, Needs: []int{0}}, // 4 sees 0's write
		{Ops: []store.Op{put("f", store.Always), put("f", store.Always)}},                                         // 5 invalid: two ops on one key
		{Ops: []store.Op{put("g", store.Always)}, Needs: []int{4}},                                                // 6 commits after 4
	}
	errs, err := store.TransactBatch(ctx, s, txs)
	if err != nil {
		t.Fatalf("TransactBatch: %v", err)
	}
	if len(errs) != len(txs) {
		t.Fatalf("%d results for %d transactions", len(errs), len(txs))
	}
	for i, want := range []int{-1, 0, -2, 0, -1, -3, -1} { // -1 nil, -2 skipped, -3 invalid, n: condition on op n
		got := errs[i]
		switch want {
		case -1:
			if got != nil {
				t.Errorf("tx %d: %v, want committed", i, got)
			}
		case -2:
			if !errors.Is(got, store.ErrSkipped) {
				t.Errorf("tx %d: %v, want ErrSkipped", i, got)
			}
		case -3:
			if !errors.Is(got, store.ErrInvalidTransaction) {
				t.Errorf("tx %d: %v, want ErrInvalidTransaction", i, got)
			}
		default:
			if store.FailedOp(got) != want {
				t.Errorf("tx %d: %v, want a condition failure on op %d", i, got, want)
			}
		}
	}
	for sk, want := range map[string]bool{"a": true, "b": true, "c": false, "d": false, "e": true, "f": false, "g": true} {
		_, err := s.Get(ctx, key("B", sk))
		if got := err == nil; got != want {
			t.Errorf("item %s present = %v, want %v (err %v)", sk, got, want, err)
		}
	}
	if it := mustGet(t, s, key("B", "a")); string(it.Data) != "a" || it.Version != 0 {
		t.Errorf("item a = %q v%d: the failed replace wrote it", it.Data, it.Version)
	}
	if _, err := store.TransactBatch(ctx, s, []store.Tx{{Ops: []store.Op{put("h", store.Always)}, Needs: []int{0}}}); !errors.Is(err, store.ErrInvalidTransaction) {
		t.Errorf("a transaction needing itself or a later one: %v, want ErrInvalidTransaction", err)
	}
}
