// Package storetest is the conformance suite every store.Store adapter must pass, and the
// list of backends the domain tests run against.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/store"
)

// Run checks that the store returned by open behaves as the store.Store contract says.
// open must return a fresh, empty store each call.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("GetMissing", func(t *testing.T) { t.Parallel(); testGetMissing(t, open(t)) })
	t.Run("PutGet", func(t *testing.T) { t.Parallel(); testPutGet(t, open(t)) })
	t.Run("Conditions", func(t *testing.T) { t.Parallel(); testConditions(t, open(t)) })
	t.Run("Counters", func(t *testing.T) { t.Parallel(); testCounters(t, open(t)) })
	t.Run("CounterExpiry", func(t *testing.T) { t.Parallel(); testCounterExpiry(t, open(t)) })
	t.Run("AllOrNothing", func(t *testing.T) { t.Parallel(); testAllOrNothing(t, open(t)) })
	t.Run("InvalidTransactions", func(t *testing.T) { t.Parallel(); testInvalid(t, open(t)) })
	t.Run("GetMany", func(t *testing.T) { t.Parallel(); testGetMany(t, open(t)) })
	t.Run("Query", func(t *testing.T) { t.Parallel(); testQuery(t, open(t)) })
	t.Run("QueryDesc", func(t *testing.T) { t.Parallel(); testQueryDesc(t, open(t)) })
	t.Run("QueryModel", func(t *testing.T) { t.Parallel(); testQueryModel(t, open(t)) })
	t.Run("Expiry", func(t *testing.T) { t.Parallel(); testExpiry(t, open(t)) })
	t.Run("ConcurrentBoundedCounter", func(t *testing.T) { t.Parallel(); testConcurrentCounter(t, open(t)) })
	t.Run("ConcurrentVersionedUpdates", func(t *testing.T) { t.Parallel(); testConcurrentCAS(t, open(t)) })
	t.Run("ConcurrentClaims", func(t *testing.T) { t.Parallel(); testConcurrentClaims(t, open(t)) })
	t.Run("TransactBatch", func(t *testing.T) { t.Parallel(); testTransactBatch(t, open(t)) })
}

func key(pk, sk string) store.Key { return store.Key{PK: pk, SK: sk} }

func mustTransact(t *testing.T, s store.Store, ops ...store.Op) {
	t.Helper()
	if err := s.Transact(context.Background(), ops...); err != nil {
		t.Fatalf("Transact: %v", err)
	}
}

func mustGet(t *testing.T, s store.Store, k store.Key) store.Item {
	t.Helper()
	it, err := s.Get(context.Background(), k)
	if err != nil {
		t.Fatalf("Get %s: %v", k, err)
	}
	return it
}

func wantCondFail(t *testing.T, err error, index int) {
	t.Helper()
	var ce *store.ConditionError
	if !errors.As(err, &ce) {
		t.Fatalf("want *store.ConditionError at op %d, got %v", index, err)
	}
	if ce.Index != index {
		t.Fatalf("condition failed at op %d, want op %d", ce.Index, index)
	}
}

func testGetMissing(t *testing.T, s store.Store) {
	_, err := s.Get(context.Background(), key("P", "missing"))
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get missing: got %v, want ErrNotFound", err)
	}
}

func testPutGet(t *testing.T, s store.Store) {
	in := store.Item{Key: key("WS#1", "SOURCE#a"), Data: []byte(`{"name":"é ✓"}`), Version: 3}
	mustTransact(t, s, store.PutOp(in, store.Always))
	got := mustGet(t, s, in.Key)
	if string(got.Data) != string(in.Data) || got.Version != 3 || got.Key != in.Key || got.Count != 0 || got.ExpiresAt != 0 {
		t.Fatalf("round trip: got %+v, want %+v", got, in)
	}
	// Overwrite with Always replaces the whole item.
	mustTransact(t, s, store.PutOp(store.Item{Key: in.Key, Data: []byte("x")}, store.Always))
	if got := mustGet(t, s, in.Key); string(got.Data) != "x" || got.Version != 0 {
		t.Fatalf("overwrite: got %+v", got)
	}
	mustTransact(t, s, store.DeleteOp(in.Key, store.Always))
	if _, err := s.Get(context.Background(), in.Key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	// Deleting an absent item without a condition is not an error.
	mustTransact(t, s, store.DeleteOp(in.Key, store.Always))
}

func testConditions(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("C", "item")
	// MustNotExist on absent succeeds, on present fails.
	mustTransact(t, s, store.PutOp(store.Item{Key: k, Data: []byte("v1"), Version: 1}, store.MustNotExist))
	wantCondFail(t, s.Transact(ctx, store.PutOp(store.Item{Key: k, Data: []byte("other")}, store.MustNotExist)), 0)
	if got := mustGet(t, s, k); string(got.Data) != "v1" {
		t.Fatalf("failed put changed the item: %q", got.Data)
	}
	// VersionIs: stale version fails, current succeeds and bumps.
	wantCondFail(t, s.Transact(ctx, store.ReplaceOp(store.Item{Key: k, Data: []byte("stale")}, 7)), 0)
	mustTransact(t, s, store.ReplaceOp(store.Item{Key: k, Data: []byte("v2")}, 1))
	if got := mustGet(t, s, k); string(got.Data) != "v2" || got.Version != 2 {
		t.Fatalf("replace: got %q v%d, want v2 v2", got.Data, got.Version)
	}
	// VersionIs 0 means "must not exist".
	wantCondFail(t, s.Transact(ctx, store.ReplaceOp(store.Item{Key: k}, 0)), 0)
	mustTransact(t, s, store.ReplaceOp(store.Item{Key: key("C", "fresh"), Data: []byte("f")}, 0))
	if got := mustGet(t, s, key("C", "fresh")); got.Version != 1 {
		t.Fatalf("ReplaceOp from 0 stored version %d, want 1", got.Version)
	}
	// MustExist on absent fails, for Put, Delete and Check alike.
	absent := key("C", "absent")
	for i, op := range []store.Op{
		store.PutOp(store.Item{Key: absent}, store.MustExist),
		store.DeleteOp(absent, store.MustExist),
		store.CheckOp(absent, store.MustExist),
	} {
		wantCondFail(t, s.Transact(ctx, op), 0)
		if _, err := s.Get(ctx, absent); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("case %d wrote the absent item: %v", i, err)
		}
	}
	// Delete with a version check.
	wantCondFail(t, s.Transact(ctx, store.Op{Kind: store.Delete, Item: store.Item{Key: k}, Cond: store.VersionIs, Version: 1}), 0)
	mustTransact(t, s, store.Op{Kind: store.Delete, Item: store.Item{Key: k}, Cond: store.VersionIs, Version: 2})
	if _, err := s.Get(ctx, k); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("versioned delete left the item: %v", err)
	}
	// Check passes and writes nothing.
	mustTransact(t, s, store.CheckVersionOp(key("C", "fresh"), 1), store.PutOp(store.Item{Key: key("C", "other"), Data: []byte("o")}, store.Always))
	if got := mustGet(t, s, key("C", "fresh")); got.Version != 1 || string(got.Data) != "f" {
		t.Fatalf("check changed the item: %+v", got)
	}
}

func testCounters(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := key("WS#1", "USAGE#sources")
	// A decrement below zero fails, also on an absent counter.
	wantCondFail(t, s.Transact(ctx, store.AddOp(k, -1, 0)), 0)
	for i := 1; i <= 4; i++ {
		mustTransact(t, s, store.AddOp(k, 1, 4))
		if got := mustGet(t, s, k); got.Count != int64(i) {
			t.Fatalf("after %d adds count is %d", i, got.Count)
		}
	}
	wantCondFail(t, s.Transact(ctx, store.AddOp(k, 1, 4)), 0)
	if got := mustGet(t, s, k); got.Count != 4 {
		t.Fatalf("refused add changed the count to %d", got.Count)
	}
	mustTransact(t, s, store.AddOp(k, -1, 0))
	mustTransact(t, s, store.AddOp(k, 1, 4))
	// Adding more than one at a time respects the bound as a whole.
	k2 := key("WS#1", "USAGE#other")
	wantCondFail(t, s.Transact(ctx, store.AddOp(k2, 3, 2)), 0)
	mustTransact(t, s, store.AddOp(k2, 2, 2))
	if got := mustGet(t, s, k2); got.Count != 2 {
		t.Fatalf("add 2: count %d", got.Count)
	}
	// A counter's data, given on creation, is kept by later adds.
	k3 := key("WS#1", "USAGE#with-data")
	mustTransact(t, s, store.Op{Kind: store.Add, Item: store.Item{Key: k3, Data: []byte("meta")}, Delta: 1, Max: 10})
	mustTransact(t, s, store.AddOp(k3, 1, 10))
	if got := mustGet(t, s, k3); got.Count != 2 || string(got.Data) != "meta" {
		t.Fatalf("counter with data: %+v", got)
	}
}

// An Add that creates a counter gives it the op's expiry (and data); later adds keep the
// counter's own, and an expired counter starts again with the reviving op's. Daily counters
// and quota leases rely on it: without it a counter never expires on one adapter.
func testCounterExpiry(t *testing.T, s store.Store) {
	soon, later := time.Now().Add(time.Hour).Unix(), time.Now().Add(2*time.Hour).Unix()
	add := func(k store.Key, delta, expires int64, data string) {
		t.Helper()
		op := store.AddOp(k, delta, 100)
		op.Item.ExpiresAt, op.Item.Data = expires, []byte(data)
		mustTransact(t, s, op)
	}
	k := key("CE", "created")
	add(k, 2, soon, "first")
	add(k, 3, later, "second") // a live counter keeps its own expiry and data
	add(k, 1, 0, "")
	if got := mustGet(t, s, k); got.Count != 6 || got.ExpiresAt != soon || string(got.Data) != "first" {
		t.Fatalf("counter created with an expiry: count %d, expires %d (want %d), data %q", got.Count, got.ExpiresAt, soon, got.Data)
	}
	// In a transaction with other ops too (the TransactWriteItems form on DynamoDB).
	k2 := key("CE", "in-tx")
	op := store.AddOp(k2, 1, 100)
	op.Item.ExpiresAt = soon
	mustTransact(t, s, op, store.PutOp(store.Item{Key: key("CE", "other"), Data: []byte("x")}, store.Always))
	if got := mustGet(t, s, k2); got.Count != 1 || got.ExpiresAt != soon {
		t.Fatalf("counter created in a transaction: %+v, want expiry %d", got, soon)
	}
	// A counter made without an expiry takes the first one an add brings (DynamoDB's
	// if_not_exists), and keeps it.
	k4 := key("CE", "no-expiry")
	add(k4, 1, 0, "")
	add(k4, 1, soon, "late")
	add(k4, 1, later, "")
	if got := mustGet(t, s, k4); got.Count != 3 || got.ExpiresAt != soon || string(got.Data) != "late" {
		t.Fatalf("counter made without an expiry: %+v, want expiry %d and data \"late\"", got, soon)
	}
	// Expired (but not yet swept): the add starts a fresh counter with its own expiry.
	k3 := key("CE", "expired")
	mustTransact(t, s, store.PutOp(store.Item{Key: k3, Count: 40, ExpiresAt: time.Now().Add(-time.Minute).Unix()}, store.Always))
	add(k3, 5, later, "fresh")
	if got := mustGet(t, s, k3); got.Count != 5 || got.ExpiresAt != later || string(got.Data) != "fresh" {
		t.Fatalf("expired counter revived: %+v, want count 5 expiring at %d", got, later)
	}
}

func testAllOrNothing(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustTransact(t, s, store.PutOp(store.Item{Key: key("A", "exists"), Data: []byte("e")}, store.Always))
	counter := key("A", "USAGE#n")
	ops := []store.Op{
		store.PutOp(store.Item{Key: key("A", "new1"), Data: []byte("1")}, store.MustNotExist),
		store.AddOp(counter, 1, 5),
		store.DeleteOp(key("A", "exists"), store.Always),
		store.PutOp(store.Item{Key: key("B", "new2"), Data: []byte("2")}, store.Always),
		store.CheckOp(key("A", "never"), store.MustExist), // fails
	}
	wantCondFail(t, s.Transact(ctx, ops...), 4)
	for _, k := range []store.Key{key("A", "new1"), counter, key("B", "new2")} {
		if _, err := s.Get(ctx, k); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("failed transaction wrote %s: %v", k, err)
		}
	}
	mustGet(t, s, key("A", "exists"))
	// The same transaction without the failing op commits everything.
	mustTransact(t, s, ops[:4]...)
	mustGet(t, s, key("A", "new1"))
	mustGet(t, s, key("B", "new2"))
	if got := mustGet(t, s, counter); got.Count != 1 {
		t.Fatalf("counter %d", got.Count)
	}
	if _, err := s.Get(ctx, key("A", "exists")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete in transaction did not apply: %v", err)
	}
	// The failing op's index is reported for a counter too.
	wantCondFail(t, s.Transact(ctx,
		store.PutOp(store.Item{Key: key("A", "new3")}, store.Always),
		store.AddOp(counter, 5, 5)), 1)
}

func testInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	dup := key("I", "dup")
	cases := map[string][]store.Op{
		"empty":                   nil,
		"duplicate key":           {store.PutOp(store.Item{Key: dup}, store.Always), store.DeleteOp(dup, store.Always)},
		"empty key":               {store.PutOp(store.Item{Key: key("I", "")}, store.Always)},
		"check without condition": {store.CheckOp(key("I", "x"), store.Always)},
		"add without max":         {store.AddOp(key("I", "c"), 1, 0)},
	}
	tooMany := make([]store.Op, store.MaxOps+1)
	for i := range tooMany {
		tooMany[i] = store.PutOp(store.Item{Key: key("I", fmt.Sprintf("k%03d", i))}, store.Always)
	}
	cases["too many"] = tooMany
	for name, ops := range cases {
		if err := s.Transact(ctx, ops...); !errors.Is(err, store.ErrInvalidTransaction) {
			t.Errorf("%s: got %v, want ErrInvalidTransaction", name, err)
		}
	}
	if items, err := s.Query(ctx, "I", store.Page{}); err != nil || len(items) != 0 {
		t.Fatalf("invalid transactions wrote %d items (err %v)", len(items), err)
	}
	// Exactly MaxOps is allowed.
	mustTransact(t, s, tooMany[:store.MaxOps]...)
}

func testQuery(t *testing.T, s store.Store) {
	ctx := context.Background()
	var ops []store.Op
	for _, sk := range []string{"SOURCE#b", "SOURCE#a", "SOURCE#c", "SPACE#a", "WS", "SOURCE"} {
		ops = append(ops, store.PutOp(store.Item{Key: key("WS#q", sk), Data: []byte(sk)}, store.Always))
	}
	ops = append(ops, store.PutOp(store.Item{Key: key("WS#q2", "SOURCE#z")}, store.Always))
	ops = append(ops, store.PutOp(store.Item{Key: key("WS#", "SOURCE#y")}, store.Always))
	mustTransact(t, s, ops...)
	sks := func(items []store.Item) []string {
		out := make([]string, len(items))
		for i, it := range items {
			out[i] = it.SK
		}
		return out
	}
	tests := []struct {
		page store.Page
		want []string
	}{
		{store.Page{Prefix: "SOURCE#"}, []string{"SOURCE#a", "SOURCE#b", "SOURCE#c"}},
		{store.Page{}, []string{"SOURCE", "SOURCE#a", "SOURCE#b", "SOURCE#c", "SPACE#a", "WS"}},
		{store.Page{Prefix: "SOURCE#", Limit: 2}, []string{"SOURCE#a", "SOURCE#b"}},
		{store.Page{Prefix: "SOURCE#", After: "SOURCE#b"}, []string{"SOURCE#c"}},
		{store.Page{Prefix: "SOURCE#", After: "SOURCE#c"}, []string{}},
		{store.Page{Prefix: "SOURCE#", After: "A"}, []string{"SOURCE#a", "SOURCE#b", "SOURCE#c"}}, // "SOURCE" lies between
		{store.Page{Prefix: "SOURCE#", After: "SOURCE$"}, []string{}},
		{store.Page{Prefix: "NOPE"}, []string{}},
	}
	for _, tc := range tests {
		items, err := s.Query(ctx, "WS#q", tc.page)
		if err != nil {
			t.Fatalf("Query %+v: %v", tc.page, err)
		}
		if got := sks(items); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Query %+v = %v, want %v", tc.page, got, tc.want)
		}
		for _, it := range items {
			if it.PK != "WS#q" || string(it.Data) != it.SK {
				t.Errorf("Query returned a wrong item: %+v", it)
			}
		}
	}
}

// Sort keys of the descending-query data set, by partition; the ones in descExpired have
// expired. The queried partition is "SP#a"; the others are its neighbours in key order:
// "SP#" and "SP#a#P" have a PK that is a prefix of, or starts with, "SP#a", and "SP#a\x01"
// sorts right after "SP#a" followed by any separator. High code points ("ÿ" is C3 BF,
// U+FFFF is EF BF BF, U+10FFFF is F4 8F BF BF) test the ends of prefix ranges: sort keys
// are UTF-8, as DynamoDB requires, so these are the greatest bytes they can hold.
var (
	descData = map[string][]string{
		"SP#a": {
			"A", "E", "E#1", "E#2", "E#3", "E#30", "E#4", "E#5", "E#6", "E$", "F",
			"ÿ", "\uffff", "\U0010FFFF", "\U0010FFFFa", "\U0010FFFF\U0010FFFF",
		},
		"SP#":      {"E#8", "\U0010FFFF"},
		"SP#a#P":   {"E#0", "E#9", "Z", "\U0010FFFF\U0010FFFF\U0010FFFF"},
		"SP#a\x01": {"A", "E#7"},
		"SP#b":     {"A", "E#77"},
	}
	// The newest items of "SP#a" (overall and under "E#") have expired.
	descExpired = map[store.Key]bool{
		key("SP#a", "E#5"): true, key("SP#a", "E#6"): true, key("SP#a", "\U0010FFFF\U0010FFFF"): true,
	}
)

// putDescData writes descData; an item's Data is "PK|SK", so a query shows where it came from.
func putDescData(t *testing.T, s store.Store) {
	t.Helper()
	past := time.Now().Add(-time.Hour).Unix()
	var ops []store.Op
	for pk, sks := range descData {
		for _, sk := range sks {
			it := store.Item{Key: key(pk, sk), Data: []byte(pk + "|" + sk)}
			if descExpired[it.Key] {
				it.ExpiresAt = past
			}
			ops = append(ops, store.PutOp(it, store.Always))
		}
	}
	mustTransact(t, s, ops...)
}

// queryKeys runs a query and returns its sort keys, after checking that every item belongs
// to pk and carries its own data.
func queryKeys(t *testing.T, s store.Store, pk string, p store.Page) []string {
	t.Helper()
	items, err := s.Query(context.Background(), pk, p)
	if err != nil {
		t.Fatalf("Query %q %#v: %v", pk, p, err)
	}
	out := []string{}
	for _, it := range items {
		if it.PK != pk || string(it.Data) != it.PK+"|"+it.SK {
			t.Errorf("Query %q %#v returned an item of another partition or with wrong data: %#v", pk, p, it)
		}
		out = append(out, it.SK)
	}
	return out
}

// testQueryDesc: descending pages, newest first. Every case gives a different answer when
// Desc is ignored (the test checks that on the ascending query too), and each equals the
// definition: the ascending listing of the prefix, cut below the cursor, reversed, limited.
func testQueryDesc(t *testing.T, s store.Store) {
	putDescData(t, s)
	const hi = "\U0010FFFF"
	allLive := []string{hi + "a", hi, "\uffff", "ÿ", "F", "E$", "E#4", "E#30", "E#3", "E#2", "E#1", "E", "A"}
	events := []string{"E#4", "E#30", "E#3", "E#2", "E#1"}
	tests := []struct {
		name string
		pk   string
		page store.Page
		want []string
	}{
		{"whole partition", "SP#a", store.Page{}, allLive},
		{"whole partition, limit larger than it", "SP#a", store.Page{Limit: 100}, allLive},
		{"whole partition, limit below it, newest expired", "SP#a", store.Page{Limit: 2}, []string{hi + "a", hi}},
		{"limit 1", "SP#a", store.Page{Limit: 1}, []string{hi + "a"}},
		{"prefix", "SP#a", store.Page{Prefix: "E#"}, events},
		{"prefix, limit below it, newest expired", "SP#a", store.Page{Prefix: "E#", Limit: 2}, []string{"E#4", "E#30"}},
		{"prefix, limit larger than it", "SP#a", store.Page{Prefix: "E#", Limit: 50}, events},
		{"prefix that is a key", "SP#a", store.Page{Prefix: "E"}, []string{"E$", "E#4", "E#30", "E#3", "E#2", "E#1", "E"}},
		{"cursor only", "SP#a", store.Page{After: "E#30"}, []string{"E#3", "E#2", "E#1", "E", "A"}},
		{"cursor only, limit", "SP#a", store.Page{After: "E#30", Limit: 2}, []string{"E#3", "E#2"}},
		{"cursor only, not a stored key", "SP#a", store.Page{After: "E#35", Limit: 3}, []string{"E#30", "E#3", "E#2"}},
		{"cursor only, on an expired item", "SP#a", store.Page{After: "E#6", Limit: 2}, []string{"E#4", "E#30"}},
		{"cursor only, past every key", "SP#a", store.Page{After: hi + hi + hi, Limit: 1}, []string{hi + "a"}},
		{"cursor only, at the first key", "SP#a", store.Page{After: "A"}, []string{}},
		{"prefix, cursor inside", "SP#a", store.Page{Prefix: "E#", After: "E#3"}, []string{"E#2", "E#1"}},
		{"prefix, cursor inside, limit 1", "SP#a", store.Page{Prefix: "E#", After: "E#30", Limit: 1}, []string{"E#3"}},
		{"prefix, cursor inside, not a stored key", "SP#a", store.Page{Prefix: "E#", After: "E#25"}, []string{"E#2", "E#1"}},
		{"prefix, cursor inside, on an expired item", "SP#a", store.Page{Prefix: "E#", After: "E#5", Limit: 1}, []string{"E#4"}},
		{"prefix, cursor at its lowest key", "SP#a", store.Page{Prefix: "E#", After: "E#1"}, []string{}},
		{"prefix, cursor equal to the prefix", "SP#a", store.Page{Prefix: "E#", After: "E#"}, []string{}},
		{"prefix, cursor before it, a stored key", "SP#a", store.Page{Prefix: "E#", After: "E"}, []string{}},
		{"prefix, cursor before it", "SP#a", store.Page{Prefix: "E#", After: "A"}, []string{}},
		{"prefix, cursor just after it", "SP#a", store.Page{Prefix: "E#", After: "E$"}, events},
		{"prefix, cursor after it, limit", "SP#a", store.Page{Prefix: "E#", After: "F", Limit: 2}, []string{"E#4", "E#30"}},
		{"prefix, cursor after it, prefix a key", "SP#a", store.Page{Prefix: "E", After: "E$"}, []string{"E#4", "E#30", "E#3", "E#2", "E#1", "E"}},
		{"high prefix", "SP#a", store.Page{Prefix: hi}, []string{hi + "a", hi}},
		{"high prefix, cursor inside", "SP#a", store.Page{Prefix: hi, After: hi + "a"}, []string{hi}},
		{"high prefix, cursor on its expired top", "SP#a", store.Page{Prefix: hi, After: hi + hi, Limit: 1}, []string{hi + "a"}},
		{"high prefix, cursor past it", "SP#a", store.Page{Prefix: hi, After: hi + hi + hi}, []string{hi + "a", hi}},
		{"high cursor only", "SP#a", store.Page{After: hi, Limit: 3}, []string{"\uffff", "ÿ", "F"}},
		{"U+FFFF prefix, cursor past it", "SP#a", store.Page{Prefix: "\uffff", After: hi}, []string{"\uffff"}},
		{"ÿ prefix, cursor past it", "SP#a", store.Page{Prefix: "ÿ", After: "\uffff"}, []string{"ÿ"}},
		{"partition whose PK extends this one", "SP#a#P", store.Page{}, []string{hi + hi + hi, "Z", "E#9", "E#0"}},
		{"partition whose PK extends this one, prefix and cursor", "SP#a#P", store.Page{Prefix: "E#", After: "E#9"}, []string{"E#0"}},
		{"partition whose PK this one extends", "SP#", store.Page{}, []string{hi, "E#8"}},
		{"partition whose PK this one extends, limit", "SP#", store.Page{Limit: 1, After: hi + "a"}, []string{hi}},
		{"partition right after this one", "SP#a\x01", store.Page{}, []string{"E#7", "A"}},
		{"next partition", "SP#b", store.Page{Prefix: "E", After: "E#8"}, []string{"E#77"}},
	}
	for _, tc := range tests {
		desc := tc.page
		desc.Desc = true
		got := queryKeys(t, s, tc.pk, desc)
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
			t.Errorf("%s: Query %q %#v = %q, want %q", tc.name, tc.pk, desc, got, tc.want)
		}
		// By definition: the prefix's ascending listing below the cursor, reversed, limited.
		var def []string
		asc := queryKeys(t, s, tc.pk, store.Page{Prefix: tc.page.Prefix})
		for i := len(asc) - 1; i >= 0; i-- {
			if tc.page.After == "" || asc[i] < tc.page.After {
				def = append(def, asc[i])
			}
		}
		if tc.page.Limit > 0 && len(def) > tc.page.Limit {
			def = def[:tc.page.Limit]
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", append([]string{}, def...)) {
			t.Errorf("%s: Query %q %#v = %q, but the reversed ascending listing gives %q", tc.name, tc.pk, desc, got, def)
		}
		// The case must tell Desc apart: the same page ascending gives something else.
		if ascGot := queryKeys(t, s, tc.pk, tc.page); fmt.Sprintf("%q", ascGot) == fmt.Sprintf("%q", tc.want) {
			t.Errorf("%s: ascending gives the same %q; the case would pass with Desc ignored", tc.name, ascGot)
		}
	}
}

// ModelPage is what Query must return of a partition holding the sort keys sks (live
// reports which are not expired): the live keys with the page's prefix, strictly past its
// cursor in its order, sorted in that order, cut at its limit. Adapter tests compare with it.
func ModelPage(sks []string, live func(sk string) bool, p store.Page) []string {
	want := []string{}
	for _, sk := range slices.Sorted(slices.Values(sks)) {
		if !live(sk) || !strings.HasPrefix(sk, p.Prefix) ||
			p.After != "" && (p.Desc && sk >= p.After || !p.Desc && sk <= p.After) {
			continue
		}
		want = append(want, sk)
	}
	if p.Desc {
		slices.Reverse(want)
	}
	if p.Limit > 0 && len(want) > p.Limit {
		want = want[:p.Limit]
	}
	return want
}

// testQueryModel compares every combination of partition, prefix, cursor, limit and order
// with a model of descData: the live keys of the partition with the prefix, strictly past
// the cursor in the page's order, sorted in that order, cut at the limit.
func testQueryModel(t *testing.T, s store.Store) {
	putDescData(t, s)
	const hi = "\U0010FFFF"
	prefixes := []string{"", "E", "E#", "E#3", hi, "SP"}
	cursors := []string{"", "A", "E", "E#", "E#25", "E#30", "E#5", "E$", hi + "a", hi + hi + hi}
	for _, pk := range []string{"SP#a", "SP#a#P"} {
		for _, prefix := range prefixes {
			for _, after := range cursors {
				for _, limit := range []int{0, 1, 2} {
					for _, desc := range []bool{false, true} {
						p := store.Page{Prefix: prefix, After: after, Limit: limit, Desc: desc}
						want := ModelPage(descData[pk], func(sk string) bool { return !descExpired[key(pk, sk)] }, p)
						if got := queryKeys(t, s, pk, p); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
							t.Errorf("Query %q %#v = %q, want %q", pk, p, got, want)
						}
					}
				}
			}
		}
	}
}

// GetMany returns present items, leaves out absent and expired ones, and refuses a read it
// cannot make in one round trip.
func testGetMany(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustTransact(t, s,
		store.PutOp(store.Item{Key: key("G", "a"), Data: []byte("A"), Version: 3}, store.Always),
		store.PutOp(store.Item{Key: key("H", "b"), Data: []byte("B")}, store.Always),
		store.PutOp(store.Item{Key: key("G", "old"), Data: []byte("o"), ExpiresAt: time.Now().Add(-time.Minute).Unix()}, store.Always))
	got, err := s.GetMany(ctx, key("G", "a"), key("G", "missing"), key("H", "b"), key("G", "old"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[key("G", "a")].Data) != "A" || got[key("G", "a")].Version != 3 || string(got[key("H", "b")].Data) != "B" {
		t.Fatalf("GetMany = %+v", got)
	}
	if got, err := s.GetMany(ctx); err != nil || len(got) != 0 {
		t.Fatalf("GetMany of nothing = %+v, %v", got, err)
	}
	tooMany := make([]store.Key, store.MaxGets+1)
	for i := range tooMany {
		tooMany[i] = key("G", fmt.Sprint(i))
	}
	for name, keys := range map[string][]store.Key{
		"too many": tooMany,
		"repeated": {key("G", "a"), key("G", "a")},
		"empty":    {key("G", "")},
	} {
		if _, err := s.GetMany(ctx, keys...); !errors.Is(err, store.ErrInvalidRead) {
			t.Errorf("%s: %v, want ErrInvalidRead", name, err)
		}
	}
}

func testExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	past := time.Now().Add(-time.Minute).Unix()
	future := time.Now().Add(time.Hour).Unix()
	mustTransact(t, s,
		store.PutOp(store.Item{Key: key("E", "old"), Data: []byte("o"), ExpiresAt: past}, store.Always),
		store.PutOp(store.Item{Key: key("E", "live"), Data: []byte("l"), ExpiresAt: future}, store.Always))
	if _, err := s.Get(ctx, key("E", "old")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired item visible: %v", err)
	}
	if got := mustGet(t, s, key("E", "live")); got.ExpiresAt != future {
		t.Fatalf("ExpiresAt %d, want %d", got.ExpiresAt, future)
	}
	items, err := s.Query(ctx, "E", store.Page{})
	if err != nil || len(items) != 1 || items[0].SK != "live" {
		t.Fatalf("Query with an expired item: %+v %v", items, err)
	}
	// An expired item counts as absent for conditions: a dedupe key can be claimed again.
	mustTransact(t, s, store.PutOp(store.Item{Key: key("E", "old"), Data: []byte("again"), ExpiresAt: future}, store.MustNotExist))
	if got := mustGet(t, s, key("E", "old")); string(got.Data) != "again" {
		t.Fatalf("reclaimed item: %q", got.Data)
	}
	mustTransact(t, s, store.PutOp(store.Item{Key: key("E", "gone"), ExpiresAt: past}, store.Always))
	wantCondFail(t, s.Transact(ctx, store.CheckOp(key("E", "gone"), store.MustExist)), 0)
}

// N writers race to take slots of a counter bounded at 4, each writing its own item in the
// same transaction: exactly 4 transactions commit, with their items and nothing else.
func testConcurrentCounter(t *testing.T, s store.Store) {
	const writers, limit = 20, 4
	ctx := context.Background()
	counter := key("WS#race", "USAGE#sources")
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Transact(ctx,
				store.AddOp(counter, 1, limit),
				store.PutOp(store.Item{Key: key("WS#race", fmt.Sprintf("SOURCE#%02d", i))}, store.MustNotExist))
			switch {
			case err == nil:
				ok.Add(1)
			case store.FailedOp(err) == 0:
				refused.Add(1)
			default:
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected error: %v", err)
	}
	if ok.Load() != limit || refused.Load() != writers-limit {
		t.Fatalf("%d committed, %d refused; want %d and %d", ok.Load(), refused.Load(), limit, writers-limit)
	}
	items, err := s.Query(ctx, "WS#race", store.Page{Prefix: "SOURCE#"})
	if err != nil || len(items) != limit {
		t.Fatalf("%d source items (err %v), want %d", len(items), err, limit)
	}
	if got := mustGet(t, s, counter); got.Count != limit {
		t.Fatalf("counter %d, want %d", got.Count, limit)
	}
}

// Read-modify-write with a version check loses no update under contention.
func testConcurrentCAS(t *testing.T, s store.Store) {
	const writers = 10
	ctx := context.Background()
	k := key("CAS", "doc")
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; attempt < 200; attempt++ {
				cur, err := s.Get(ctx, k)
				var prev int64
				if err == nil {
					prev = cur.Version
				} else if !errors.Is(err, store.ErrNotFound) {
					errs <- err
					return
				}
				next := append(append([]byte{}, cur.Data...), 'x')
				err = s.Transact(ctx, store.ReplaceOp(store.Item{Key: k, Data: next}, prev))
				if err == nil {
					return
				}
				if store.FailedOp(err) != 0 && !errors.Is(err, store.ErrContention) {
					errs <- err
					return
				}
			}
			errs <- errors.New("gave up after 200 attempts")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := mustGet(t, s, k); got.Version != writers || len(got.Data) != writers {
		t.Fatalf("version %d, %d bytes; want %d and %d (lost update)", got.Version, len(got.Data), writers, writers)
	}
}

// Many writers claim overlapping keys with MustNotExist: each key has exactly one owner.
func testConcurrentClaims(t *testing.T, s store.Store) {
	const writers, keys = 8, 5
	ctx := context.Background()
	var wg sync.WaitGroup
	var wins atomic.Int64
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				err := s.Transact(ctx, store.PutOp(store.Item{Key: key("CLAIM", fmt.Sprint(k)), Data: []byte(fmt.Sprint(w))}, store.MustNotExist))
				if err == nil {
					wins.Add(1)
				} else if store.FailedOp(err) != 0 {
					t.Errorf("claim: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if wins.Load() != keys {
		t.Fatalf("%d claims won, want exactly %d", wins.Load(), keys)
	}
}
