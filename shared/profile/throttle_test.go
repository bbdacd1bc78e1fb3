package profile_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
	"github.com/unifiedprofiles/up/shared/store/storetest"
)

// throttlingDynamo is a DynamoDB endpoint that answers reads (nothing stored) and throttles
// every write, counting the requests that reach it: the real SDK client and the adapter run
// against it unchanged, retries and all.
func throttlingDynamo(t *testing.T) (url string, writes, reads *atomic.Int64) {
	writes, reads = &atomic.Int64{}, &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		switch strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.") {
		case "BatchGetItem":
			reads.Add(1)
			w.Write([]byte(`{"Responses":{},"UnprocessedKeys":{}}`))
		case "GetItem", "Query":
			reads.Add(1)
			w.Write([]byte(`{}`))
		default:
			writes.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, writes, reads
}

// Under throttling one message makes a handful of DynamoDB calls, not hundreds: the SDK is
// the one layer that retries a throttled call (with its jittered backoff); the adapter and
// Apply pass the refusal up as store.ErrThrottled, which the APIs answer with 503 and
// Retry-After, so the caller's own retry is the budget. (Before, SDK × adapter × Apply
// retries multiplied: the SDK's attempts × the adapter's 8 × Apply's 25 write calls.)
func TestApplyUnderThrottlingMakesFewCalls(t *testing.T) {
	t.Parallel()
	url, writes, reads := throttlingDynamo(t)
	client := storetest.Client(t, url, true)
	sdkAttempts := int64(client.Options().Retryer.MaxAttempts())
	st := dynamo.New(client, "up-throttled")
	svc := profile.New(st, profile.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := svc.Apply(ctx, sp, identify("u1", "", map[string]any{"plan": "pro"}, time.Now()))
	took := time.Since(start)
	if err == nil {
		t.Fatal("Apply succeeded against a store that throttles every write")
	}
	if !errors.Is(err, store.ErrThrottled) {
		t.Errorf("Apply: %v, want store.ErrThrottled (the APIs' 503 throttled)", err)
	}
	if n := writes.Load(); n > sdkAttempts {
		t.Errorf("one throttled message made %d write calls (and %d reads) in %v; want the SDK's %d attempts at most", n, reads.Load(), took, sdkAttempts)
	}
	if n := reads.Load(); n > 4 {
		t.Errorf("one throttled message made %d read calls", n)
	}
}
