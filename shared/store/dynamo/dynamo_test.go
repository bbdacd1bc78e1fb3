package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	miniserver "github.com/truora/minidyn/server"

	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
	"github.com/unifiedprofiles/up/shared/store/storetest"
)

// TestConformance runs the shared suite against every DynamoDB-compatible backend: minidyn,
// moto and the journaled moto (whose cheap rollback the suite's failed transactions check).
func TestConformance(t *testing.T) {
	for _, b := range storetest.DynamoBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store { return b.Open(t) })
		})
	}
}

// clock is a settable time source, so expiry can be tested at the boundary.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Set(unix int64) { c.mu.Lock(); defer c.mu.Unlock(); c.now = time.Unix(unix, 0) }

const t0 = 1_900_000_000 // "now" in the emulator tests, unix seconds

// forEachBackend runs fn against a fresh store with a fake clock at t0 on every backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, s *dynamo.Store, c *clock)) {
	for _, b := range storetest.DynamoBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			c := &clock{now: time.Unix(t0, 0)}
			fn(t, b.Open(t, dynamo.WithClock(c.Now)), c)
		})
	}
}

func k(sk string) store.Key { return store.Key{PK: "P", SK: sk} }

func failedAt(err error) string {
	if err == nil {
		return "ok"
	}
	if i := store.FailedOp(err); i >= 0 {
		return fmt.Sprintf("fail@%d", i)
	}
	return err.Error()
}

// TestConditions covers each condition on live, absent and expired-but-present items;
// the expired case is what the TTL-aware expressions exist for.
func TestConditions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, s *dynamo.Store, _ *clock) {
		ctx := context.Background()
		seed := []store.Op{
			store.PutOp(store.Item{Key: k("live"), Data: []byte("l"), Version: 3, ExpiresAt: t0 + 1}, store.Always),
			store.PutOp(store.Item{Key: k("expired"), Data: []byte("e"), Version: 3, ExpiresAt: t0}, store.Always),
		}
		tests := []struct {
			name string
			op   store.Op
			want string
		}{
			{"put MustNotExist absent", store.PutOp(store.Item{Key: k("absent")}, store.MustNotExist), "ok"},
			{"put MustNotExist live", store.PutOp(store.Item{Key: k("live")}, store.MustNotExist), "fail@0"},
			{"put MustNotExist expired", store.PutOp(store.Item{Key: k("expired")}, store.MustNotExist), "ok"},
			{"put MustExist absent", store.PutOp(store.Item{Key: k("absent")}, store.MustExist), "fail@0"},
			{"put MustExist live", store.PutOp(store.Item{Key: k("live")}, store.MustExist), "ok"},
			{"put MustExist expired", store.PutOp(store.Item{Key: k("expired")}, store.MustExist), "fail@0"},
			{"replace live", store.ReplaceOp(store.Item{Key: k("live")}, 3), "ok"},
			{"replace live stale", store.ReplaceOp(store.Item{Key: k("live")}, 2), "fail@0"},
			{"replace expired", store.ReplaceOp(store.Item{Key: k("expired")}, 3), "fail@0"},
			{"replace expired from 0", store.ReplaceOp(store.Item{Key: k("expired")}, 0), "ok"},
			{"replace live from 0", store.ReplaceOp(store.Item{Key: k("live")}, 0), "fail@0"},
			{"delete MustExist expired", store.DeleteOp(k("expired"), store.MustExist), "fail@0"},
			{"delete MustExist live", store.DeleteOp(k("live"), store.MustExist), "ok"},
			{"check MustExist live", store.CheckOp(k("live"), store.MustExist), "ok"},
			{"check MustExist expired", store.CheckOp(k("expired"), store.MustExist), "fail@0"},
			{"check version expired", store.CheckVersionOp(k("expired"), 3), "fail@0"},
			{"check version live", store.CheckVersionOp(k("live"), 3), "ok"},
		}
		for _, tc := range tests {
			// Alone (plain conditional write or read) and inside a transaction.
			for _, inTx := range []bool{false, true} {
				if err := s.Transact(ctx, seed...); err != nil {
					t.Fatalf("seed: %v", err)
				}
				if err := s.Transact(ctx, store.DeleteOp(k("absent"), store.Always)); err != nil {
					t.Fatalf("reset: %v", err)
				}
				ops, want := []store.Op{tc.op}, tc.want
				if inTx {
					ops = []store.Op{store.PutOp(store.Item{Key: k("other")}, store.Always), tc.op}
					want = strings.Replace(want, "@0", "@1", 1)
				}
				if got := failedAt(s.Transact(ctx, ops...)); got != want {
					t.Errorf("%s (transaction %v): got %s, want %s", tc.name, inTx, got, want)
				}
			}
		}
	})
}

// TestAdd covers the counter bounds, creation with data, and an expired counter, which
// must restart from zero as if absent.
func TestAdd(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, s *dynamo.Store, _ *clock) {
		ctx := context.Background()
		withData := func(op store.Op, d string) store.Op { op.Item.Data = []byte(d); return op }
		tests := []struct {
			name  string
			seed  *store.Item
			op    store.Op
			want  string
			count int64  // after the op
			data  string // after the op
			ver   int64  // after the op
			exp   int64  // after the op
		}{
			{"absent +1", nil, store.AddOp(k("c"), 1, 1), "ok", 1, "", 0, 0},
			{"absent +2 max 1", nil, store.AddOp(k("c"), 2, 1), "fail@0", 0, "", 0, 0},
			{"absent -1", nil, store.AddOp(k("c"), -1, 0), "fail@0", 0, "", 0, 0},
			{"absent 0", nil, store.AddOp(k("c"), 0, 0), "ok", 0, "", 0, 0},
			{"absent with data", nil, withData(store.AddOp(k("c"), 1, 5), "new"), "ok", 1, "new", 0, 0},
			{"at max +1", &store.Item{Key: k("c"), Count: 3}, store.AddOp(k("c"), 1, 3), "fail@0", 3, "", 0, 0},
			{"below max +2", &store.Item{Key: k("c"), Count: 1}, store.AddOp(k("c"), 2, 3), "ok", 3, "", 0, 0},
			{"live keeps data", &store.Item{Key: k("c"), Count: 1, Data: []byte("old")}, withData(store.AddOp(k("c"), 1, 3), "new"), "ok", 2, "old", 0, 0},
			{"live -1", &store.Item{Key: k("c"), Count: 1}, store.AddOp(k("c"), -1, 0), "ok", 0, "", 0, 0},
			{"live -2", &store.Item{Key: k("c"), Count: 1}, store.AddOp(k("c"), -2, 0), "fail@0", 1, "", 0, 0},
			{"expired restarts", &store.Item{Key: k("c"), Count: 3, Version: 4, Data: []byte("old"), ExpiresAt: t0}, store.AddOp(k("c"), 1, 3), "ok", 1, "", 0, 0},
			{"expired restarts with data", &store.Item{Key: k("c"), Count: 3, ExpiresAt: t0}, withData(store.AddOp(k("c"), 2, 3), "new"), "ok", 2, "new", 0, 0},
			{"live keeps version and expiry", &store.Item{Key: k("c"), Count: 1, Version: 7, Data: []byte("old"), ExpiresAt: t0 + 100}, store.AddOp(k("c"), 1, 3), "ok", 2, "old", 7, t0 + 100},
			{"expired -1", &store.Item{Key: k("c"), Count: 3, ExpiresAt: t0}, store.AddOp(k("c"), -1, 0), "fail@0", 0, "", 0, 0},
			{"expired +4 max 3", &store.Item{Key: k("c"), Count: 0, ExpiresAt: t0}, store.AddOp(k("c"), 4, 3), "fail@0", 0, "", 0, 0},
		}
		for _, tc := range tests {
			for _, inTx := range []bool{false, true} {
				if err := s.Transact(ctx, store.DeleteOp(k("c"), store.Always)); err != nil {
					t.Fatal(err)
				}
				if tc.seed != nil {
					if err := s.Transact(ctx, store.PutOp(*tc.seed, store.Always)); err != nil {
						t.Fatal(err)
					}
				}
				ops, want := []store.Op{tc.op}, tc.want
				if inTx {
					ops = []store.Op{store.PutOp(store.Item{Key: k("other")}, store.Always), tc.op}
					want = strings.Replace(want, "@0", "@1", 1)
				}
				if got := failedAt(s.Transact(ctx, ops...)); got != want {
					t.Errorf("%s (transaction %v): got %s, want %s", tc.name, inTx, got, want)
					continue
				}
				it, err := s.Get(ctx, k("c"))
				if errors.Is(err, store.ErrNotFound) {
					it = store.Item{}
				} else if err != nil {
					t.Fatal(err)
				}
				if it.Count != tc.count || string(it.Data) != tc.data || it.Version != tc.ver || it.ExpiresAt != tc.exp {
					t.Errorf("%s (transaction %v): got count %d data %q v%d exp %d, want %d %q v%d exp %d", tc.name, inTx,
						it.Count, it.Data, it.Version, it.ExpiresAt, tc.count, tc.data, tc.ver, tc.exp)
				}
			}
		}
	})
}

// TestTransactionFailure: whichever op fails, nothing is written and its index is reported.
func TestTransactionFailure(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, s *dynamo.Store, _ *clock) {
		ctx := context.Background()
		if err := s.Transact(ctx, store.PutOp(store.Item{Key: k("taken"), Version: 1}, store.Always)); err != nil {
			t.Fatal(err)
		}
		failing := []store.Op{
			store.PutOp(store.Item{Key: k("taken")}, store.MustNotExist),
			store.CheckOp(k("missing"), store.MustExist),
			store.AddOp(k("counter"), -1, 0),
			store.ReplaceOp(store.Item{Key: k("taken")}, 9),
		}
		for fi, bad := range failing {
			for pos := range 3 {
				ops := []store.Op{
					store.PutOp(store.Item{Key: k("w1"), Data: []byte("x")}, store.Always),
					store.AddOp(k("w2"), 1, 10),
				}
				ops = append(ops[:pos:pos], append([]store.Op{bad}, ops[pos:]...)...)
				if got := failedAt(s.Transact(ctx, ops...)); got != fmt.Sprintf("fail@%d", pos) {
					t.Errorf("failing op %d at %d: got %s", fi, pos, got)
				}
				for _, key := range []store.Key{k("w1"), k("w2"), k("counter")} {
					if _, err := s.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
						t.Errorf("failing op %d at %d wrote %s (%v)", fi, pos, key, err)
					}
				}
			}
		}
	})
}

// putExpiring writes items i0 … i9 of partition P, expiring at t0+5 those early says,
// the others at t0+10.
func putExpiring(t *testing.T, s *dynamo.Store, early func(i int) bool) {
	t.Helper()
	var ops []store.Op
	for i := range 10 {
		exp := int64(t0 + 10)
		if early(i) {
			exp = t0 + 5
		}
		ops = append(ops, store.PutOp(store.Item{Key: k(fmt.Sprintf("i%d", i)), ExpiresAt: exp}, store.Always))
	}
	if err := s.Transact(context.Background(), ops...); err != nil {
		t.Fatal(err)
	}
}

// TestExpiry checks the boundary (ExpiresAt <= now is gone) for Get and Query, and that
// Query fills a Limit past expired items.
func TestExpiry(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, s *dynamo.Store, c *clock) {
		ctx := context.Background()
		putExpiring(t, s, func(i int) bool { return i%2 == 0 }) // items 0, 2, 4, ... expire first
		sks := func(p store.Page) string {
			items, err := s.Query(ctx, "P", p)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, it := range items {
				out = append(out, it.SK)
			}
			return strings.Join(out, ",")
		}
		tests := []struct {
			now  int64
			page store.Page
			want string
		}{
			{t0 + 4, store.Page{Limit: 3}, "i0,i1,i2"},
			{t0 + 5, store.Page{Limit: 3}, "i1,i3,i5"},
			{t0 + 5, store.Page{Limit: 3, After: "i3"}, "i5,i7,i9"},
			{t0 + 5, store.Page{Prefix: "i", After: "i30"}, "i5,i7,i9"}, // cursor need not be a stored key
			{t0 + 5, store.Page{Limit: 10}, "i1,i3,i5,i7,i9"},
			{t0 + 10, store.Page{}, ""},
		}
		for _, tc := range tests {
			c.Set(tc.now)
			if got := sks(tc.page); got != tc.want {
				t.Errorf("at t0+%d Query %+v = %q, want %q", tc.now-t0, tc.page, got, tc.want)
			}
		}
		c.Set(t0 + 4)
		if _, err := s.Get(ctx, k("i0")); err != nil {
			t.Errorf("Get before expiry: %v", err)
		}
		c.Set(t0 + 5)
		if _, err := s.Get(ctx, k("i0")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get at expiry: %v, want ErrNotFound", err)
		}
	})
}

// TestQueryCursor: a cursor need not be a stored key (its item may have been deleted), and
// a cursor combined with a prefix stays within the prefix.
func TestQueryCursor(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, s *dynamo.Store, _ *clock) {
		ctx := context.Background()
		var ops []store.Op
		for _, sk := range []string{"A", "SOURCE", "SOURCE#a", "SOURCE#b", "SOURCE$", "SOURCE$x", "SPACE#a", "é", "é#1", "ê", "\U0010FFFF", "\U0010FFFFa"} {
			ops = append(ops, store.PutOp(store.Item{Key: k(sk)}, store.Always))
		}
		ops = append(ops, store.PutOp(store.Item{Key: store.Key{PK: "Q", SK: "SOURCE#z"}}, store.Always))
		if err := s.Transact(ctx, ops...); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			page store.Page
			want string
		}{
			{store.Page{Prefix: "SOURCE#"}, "SOURCE#a,SOURCE#b"},
			{store.Page{Prefix: "SOURCE#", After: "SOURCE#a0"}, "SOURCE#b"},
			{store.Page{Prefix: "SOURCE#", After: "SOURCE#"}, "SOURCE#a,SOURCE#b"},
			{store.Page{Prefix: "SOURCE#", After: "SOURCE#", Limit: 1}, "SOURCE#a"},
			{store.Page{Prefix: "SOURCE#", After: "SOURCE#a", Limit: 1}, "SOURCE#b"},
			{store.Page{Prefix: "SOURCE#", After: "A"}, "SOURCE#a,SOURCE#b"},
			{store.Page{Prefix: "SOURCE#", After: "SOURCE#b"}, ""},
			{store.Page{Prefix: "SOURCE#", After: "SOURCE$"}, ""},
			{store.Page{After: "SOURCE#a", Limit: 4}, "SOURCE#b,SOURCE$,SOURCE$x,SPACE#a"},
			{store.Page{After: "SOURCE#a0", Limit: 1}, "SOURCE#b"},
			{store.Page{Prefix: "é", After: "é"}, "é#1"},
			{store.Page{Prefix: "\U0010FFFF"}, "\U0010FFFF,\U0010FFFFa"},
			{store.Page{Prefix: "\U0010FFFF", After: "\U0010FFFF"}, "\U0010FFFFa"},
		}
		for _, tc := range tests {
			items, err := s.Query(ctx, "P", tc.page)
			if err != nil {
				t.Fatalf("Query %#v: %v", tc.page, err)
			}
			var got []string
			for _, it := range items {
				got = append(got, it.SK)
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("Query %#v = %q, want %q", tc.page, got, tc.want)
			}
		}
	})
}

// TestEnsureTable: EnsureTable is idempotent (TTL is not enabled twice, which DynamoDB
// refuses) and tolerates minidyn's missing TTL API.
func TestEnsureTable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(miniserver.NewServer())
	t.Cleanup(srv.Close)
	endpoints := map[string]string{"minidyn": srv.URL}
	if ep := os.Getenv(storetest.EndpointEnv); ep != "" {
		endpoints["moto"] = ep
	}
	for name, ep := range endpoints {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			client := storetest.Client(t, ep, name == "minidyn")
			table := storetest.TableName(t)
			t.Cleanup(func() {
				if _, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
					t.Errorf("delete table: %v", err)
				}
			})
			for range 2 {
				if err := dynamo.EnsureTable(ctx, client, table); err != nil {
					t.Fatal(err)
				}
			}
			if name == "moto" {
				out, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
				if err != nil {
					t.Fatal(err)
				}
				if d := out.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != "TTL" || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
					t.Fatalf("TTL description %+v", d)
				}
			}
			s := dynamo.New(client, table)
			if err := s.Transact(ctx, store.PutOp(store.Item{Key: k("x"), Data: []byte("d")}, store.MustNotExist)); err != nil {
				t.Fatal(err)
			}
			if it, err := s.Get(ctx, k("x")); err != nil || string(it.Data) != "d" {
				t.Fatalf("Get: %+v %v", it, err)
			}
		})
	}
}

// fakeAPI answers with scripted errors and records what the store sent.
type fakeAPI struct {
	mu    sync.Mutex
	calls []string
	sent  []any              // inputs, in order
	errs  map[string][]error // per operation, consumed in order; then success
	// unprocessed: how many of the asked keys each BatchGetItem answer hands back as
	// unprocessed, consumed in order; then none.
	unprocessed []int
}

func (f *fakeAPI) record(op string, in any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op)
	f.sent = append(f.sent, in)
	if q := f.errs[op]; len(q) > 0 {
		f.errs[op] = q[1:]
		return q[0]
	}
	return nil
}

func (f *fakeAPI) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return &dynamodb.GetItemOutput{}, f.record("GetItem", in)
}

func (f *fakeAPI) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	err := f.record("BatchGetItem", in)
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &dynamodb.BatchGetItemOutput{}
	if len(f.unprocessed) > 0 {
		n := f.unprocessed[0]
		f.unprocessed = f.unprocessed[1:]
		for table, ka := range in.RequestItems {
			ka.Keys = ka.Keys[:min(n, len(ka.Keys))]
			out.UnprocessedKeys = map[string]types.KeysAndAttributes{table: ka}
		}
	}
	return out, err
}

func (f *fakeAPI) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return &dynamodb.QueryOutput{}, f.record("Query", in)
}

func (f *fakeAPI) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return &dynamodb.PutItemOutput{}, f.record("PutItem", in)
}

func (f *fakeAPI) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return &dynamodb.UpdateItemOutput{}, f.record("UpdateItem", in)
}

func (f *fakeAPI) DeleteItem(_ context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return &dynamodb.DeleteItemOutput{}, f.record("DeleteItem", in)
}

func (f *fakeAPI) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return &dynamodb.TransactWriteItemsOutput{}, f.record("TransactWriteItems", in)
}

func canceled(codes ...string) error {
	reasons := make([]types.CancellationReason, len(codes))
	for i, c := range codes {
		reasons[i] = types.CancellationReason{Code: aws.String(c)}
	}
	return &types.TransactionCanceledException{
		Message:             aws.String("Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(codes, ", ") + "]"),
		CancellationReasons: reasons,
	}
}

// TestErrorMapping drives the store with scripted DynamoDB errors.
func TestErrorMapping(t *testing.T) {
	t.Parallel()
	two := []store.Op{
		store.PutOp(store.Item{Key: k("a")}, store.Always),
		store.CheckOp(k("b"), store.MustExist),
		store.AddOp(k("c"), 1, 5),
	}
	one := []store.Op{store.PutOp(store.Item{Key: k("a")}, store.MustNotExist)}
	conflict := canceled("None", "TransactionConflict", "None")
	tests := []struct {
		name  string
		ops   []store.Op
		errs  map[string][]error
		want  string // "ok", "fail@i", "contention", "throttled", or a substring of the error
		calls int
	}{
		{"conflict then success", two, map[string][]error{"TransactWriteItems": {conflict, conflict}}, "ok", 3},
		{"conflict forever", two, map[string][]error{"TransactWriteItems": {conflict, conflict, conflict, conflict}}, "contention", 4},
		// Throttling is not retried here: the SDK retried the call already (one retry layer).
		{"throttled reason", two, map[string][]error{"TransactWriteItems": {canceled("ThrottlingError", "None", "None")}}, "throttled", 1},
		{"provisioned throughput reason", two, map[string][]error{"TransactWriteItems": {canceled("None", "None", "ProvisionedThroughputExceeded")}}, "throttled", 1},
		{"condition beats conflict", two, map[string][]error{"TransactWriteItems": {canceled("None", "ConditionalCheckFailed", "TransactionConflict")}}, "fail@1", 1},
		{"condition on the last op", two, map[string][]error{"TransactWriteItems": {canceled("None", "None", "ConditionalCheckFailed")}}, "fail@2", 2}, // 2nd call: the Add's GetItem
		{"reasons only in the message", two, map[string][]error{"TransactWriteItems": {&types.TransactionCanceledException{
			Message: aws.String("Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed, None]")}}}, "fail@1", 1},
		{"other cancellation", two, map[string][]error{"TransactWriteItems": {canceled("None", "ValidationError", "None")}}, "ValidationError", 1},
		{"transaction throttled", two, map[string][]error{"TransactWriteItems": {&types.ProvisionedThroughputExceededException{}}}, "throttled", 1},
		{"single throttled", one, map[string][]error{"PutItem": {&types.ProvisionedThroughputExceededException{}}}, "throttled", 1},
		{"single conditional", one, map[string][]error{"PutItem": {&types.ConditionalCheckFailedException{}}}, "fail@0", 1},
		{"single conflict", one, map[string][]error{"PutItem": {&types.TransactionConflictException{}}}, "ok", 2},
		{"single other error", one, map[string][]error{"PutItem": {errors.New("boom")}}, "boom", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeAPI{errs: tc.errs}
			s := dynamo.New(f, "T", dynamo.WithRetry(4, time.Millisecond))
			err := s.Transact(context.Background(), tc.ops...)
			got := failedAt(err)
			switch {
			case errors.Is(err, store.ErrContention):
				got = "contention"
			case errors.Is(err, store.ErrThrottled):
				got = "throttled"
			case tc.want != "ok" && !strings.HasPrefix(tc.want, "fail@") && tc.want != "contention" && err != nil && strings.Contains(err.Error(), tc.want):
				got = tc.want
			}
			if got != tc.want {
				t.Errorf("got %s (%v), want %s", got, err, tc.want)
			}
			if len(f.calls) != tc.calls {
				t.Errorf("calls %v, want %d", f.calls, tc.calls)
			}
			if strings.HasPrefix(tc.want, "fail@") {
				var ce *store.ConditionError
				if errors.As(err, &ce) && ce.Key != tc.ops[ce.Index].Item.Key {
					t.Errorf("ConditionError key %s, want %s", ce.Key, tc.ops[ce.Index].Item.Key)
				}
			}
		})
	}
}

// TestRetryStopsWithContext: a cancelled context ends the backoff.
func TestRetryStopsWithContext(t *testing.T) {
	t.Parallel()
	errs := make([]error, 100)
	for i := range errs {
		errs[i] = canceled("TransactionConflict", "None", "None")
	}
	f := &fakeAPI{errs: map[string][]error{"TransactWriteItems": errs}}
	s := dynamo.New(f, "T", dynamo.WithRetry(100, time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := s.Transact(ctx, store.PutOp(store.Item{Key: k("a")}, store.Always), store.PutOp(store.Item{Key: k("b")}, store.Always))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
}

// GetMany asks again for the keys DynamoDB leaves unprocessed, and only those, always with
// consistent reads; it gives up with ErrContention after the configured tries.
func TestGetManyUnprocessed(t *testing.T) {
	t.Parallel()
	keys := []store.Key{k("a"), k("b"), k("c")}
	f := &fakeAPI{unprocessed: []int{2, 1}}
	if _, err := dynamo.New(f, "T", dynamo.WithRetry(3, time.Millisecond)).GetMany(context.Background(), keys...); err != nil {
		t.Fatal(err)
	}
	var asked []int
	for _, in := range f.sent {
		ka := in.(*dynamodb.BatchGetItemInput).RequestItems["T"]
		if ka.ConsistentRead == nil || !*ka.ConsistentRead {
			t.Errorf("a BatchGetItem without ConsistentRead")
		}
		asked = append(asked, len(ka.Keys))
	}
	if !slices.Equal(asked, []int{3, 2, 1}) {
		t.Errorf("keys asked per call %v, want [3 2 1]", asked)
	}

	f = &fakeAPI{unprocessed: []int{1, 1, 1}}
	_, err := dynamo.New(f, "T", dynamo.WithRetry(3, time.Millisecond)).GetMany(context.Background(), keys...)
	if !errors.Is(err, store.ErrThrottled) || len(f.calls) != 3 {
		t.Fatalf("after %d calls: %v, want ErrThrottled after 3", len(f.calls), err)
	}
}

// TestRequests checks which API call each shape of transaction uses (one op: a plain
// write; a lone Check: a consistent read) and that the placeholders sent and used match
// exactly, which DynamoDB enforces and the emulators do not all check.
func TestRequests(t *testing.T) {
	t.Parallel()
	item := store.Item{Key: k("a"), Data: []byte("d"), Version: 2, ExpiresAt: 5}
	addData := func(key store.Key) store.Op {
		op := store.AddOp(key, 1, 3)
		op.Item.Data = []byte("d")
		return op
	}
	tests := []struct {
		ops  []store.Op
		want string
	}{
		{[]store.Op{store.PutOp(item, store.Always)}, "PutItem"},
		{[]store.Op{store.PutOp(item, store.MustNotExist)}, "PutItem"},
		{[]store.Op{store.ReplaceOp(item, 4)}, "PutItem"},
		{[]store.Op{store.ReplaceOp(item, 0)}, "PutItem"},
		{[]store.Op{store.DeleteOp(k("a"), store.MustExist)}, "DeleteItem"},
		{[]store.Op{store.DeleteOp(k("a"), store.Always)}, "DeleteItem"},
		{[]store.Op{store.AddOp(k("a"), 1, 3)}, "UpdateItem"},
		{[]store.Op{store.AddOp(k("a"), 5, 3)}, "UpdateItem"},
		{[]store.Op{store.AddOp(k("a"), -1, 0)}, "UpdateItem"},
		{[]store.Op{store.AddOp(k("a"), 0, 0)}, "UpdateItem"},
		{[]store.Op{addData(k("a"))}, "UpdateItem"},
		{[]store.Op{store.CheckOp(k("a"), store.MustNotExist)}, "GetItem"},
		{[]store.Op{
			store.CheckOp(k("a"), store.MustNotExist),
			store.PutOp(store.Item{Key: k("b")}, store.Always),
			{Kind: store.Delete, Item: store.Item{Key: k("c")}, Cond: store.VersionIs, Version: 3},
			addData(k("d")),
			store.AddOp(k("e"), -2, 0),
		}, "TransactWriteItems"},
	}
	for i, tc := range tests {
		f := &fakeAPI{}
		if err := dynamo.New(f, "T").Transact(context.Background(), tc.ops...); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if len(f.calls) != 1 || f.calls[0] != tc.want {
			t.Errorf("case %d: calls %v, want [%s]", i, f.calls, tc.want)
			continue
		}
		type expr struct {
			exprs  []*string
			names  map[string]string
			values map[string]types.AttributeValue
		}
		var sent []expr
		switch in := f.sent[0].(type) {
		case *dynamodb.PutItemInput:
			sent = append(sent, expr{[]*string{in.ConditionExpression}, in.ExpressionAttributeNames, in.ExpressionAttributeValues})
		case *dynamodb.DeleteItemInput:
			sent = append(sent, expr{[]*string{in.ConditionExpression}, in.ExpressionAttributeNames, in.ExpressionAttributeValues})
		case *dynamodb.UpdateItemInput:
			sent = append(sent, expr{[]*string{in.UpdateExpression, in.ConditionExpression}, in.ExpressionAttributeNames, in.ExpressionAttributeValues})
		case *dynamodb.GetItemInput:
			if !aws.ToBool(in.ConsistentRead) {
				t.Errorf("case %d: GetItem not consistent", i)
			}
		case *dynamodb.TransactWriteItemsInput:
			for _, w := range in.TransactItems {
				switch {
				case w.Put != nil:
					sent = append(sent, expr{[]*string{w.Put.ConditionExpression}, w.Put.ExpressionAttributeNames, w.Put.ExpressionAttributeValues})
				case w.Delete != nil:
					sent = append(sent, expr{[]*string{w.Delete.ConditionExpression}, w.Delete.ExpressionAttributeNames, w.Delete.ExpressionAttributeValues})
				case w.Update != nil:
					sent = append(sent, expr{[]*string{w.Update.UpdateExpression, w.Update.ConditionExpression}, w.Update.ExpressionAttributeNames, w.Update.ExpressionAttributeValues})
				case w.ConditionCheck != nil:
					sent = append(sent, expr{[]*string{w.ConditionCheck.ConditionExpression}, w.ConditionCheck.ExpressionAttributeNames, w.ConditionCheck.ExpressionAttributeValues})
				}
			}
		}
		for j, e := range sent {
			var text string
			for _, x := range e.exprs {
				text += " " + aws.ToString(x)
			}
			used := map[string]bool{}
			for _, m := range placeholder.FindAllString(text, -1) {
				used[m] = true
				_, n := e.names[m]
				_, v := e.values[m]
				if !n && !v {
					t.Errorf("case %d item %d: %s used but not sent in %q", i, j, m, text)
				}
			}
			for name := range e.names {
				if !used[name] {
					t.Errorf("case %d item %d: name %s sent but unused in %q", i, j, name, text)
				}
			}
			for name := range e.values {
				if !used[name] {
					t.Errorf("case %d item %d: value %s sent but unused in %q", i, j, name, text)
				}
			}
		}
	}
}

var placeholder = regexp.MustCompile(`[#:][A-Za-z0-9_]+`)

// When DynamoDB fails, the adapter's errors (which the APIs log) name the keys but never the
// customer data in them: an identifier claim's email stays out of the message.
func TestErrorsHideIdentifierValues(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // connection refused from now on
	st := dynamo.New(storetest.Client(t, dead.URL, true), "up-dead")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	const email = "ada.lovelace@example.com"
	claim := store.Key{PK: "SP#sp_1#ID#email:" + email, SK: "C"}
	_, getErr := st.Get(ctx, claim)
	txErr := st.Transact(ctx, store.PutOp(store.Item{Key: claim, Data: []byte(`{}`)}, store.MustNotExist),
		store.PutOp(store.Item{Key: store.Key{PK: "SP#sp_1#ID#phone:+14155550100", SK: "C"}, Data: []byte(`{}`)}, store.MustNotExist))
	for name, err := range map[string]error{"Get": getErr, "Transact": txErr} {
		if err == nil {
			t.Fatalf("%s on a dead endpoint succeeded", name)
		}
		if msg := err.Error(); strings.Contains(msg, email) || strings.Contains(msg, "14155550100") {
			t.Errorf("%s error shows an identifier value: %s", name, msg)
		}
	}
}
