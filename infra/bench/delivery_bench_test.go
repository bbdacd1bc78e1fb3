package bench

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/delivery/deliverytest"
)

// Destination delivery (issue 17) on the local stack: 16 senders post /v1/batch bodies of
// 100 track events, and one webhook destination on loopback (an in-process receiver) gets
// every one of them. One op is one event. The figures:
//   - events/s: events sent ÷ the time from the first batch sent to the last event at the
//     webhook (tracking, the queue and the delivery together, as they run at once);
//   - p50/p95/p99-ms: per event, from the 200 of the batch that carried it to its first
//     arrival at the webhook (0 when it arrived before the client had the 200: the lane is
//     woken as soon as the jobs are queued, before the answer is written);
//   - webhook-req/event: requests the webhook got per event.
//
// batch_size=100 sends up to 100 events per request; batch_size=1 is Segment's webhook
// default, one event per request (8 requests at a time per destination). Every messageId
// sent must arrive, and no other.
func BenchmarkDeliveryWebhook(b *testing.B) {
	for _, size := range []int{100, 1} {
		b.Run(fmt.Sprintf("batch_size=%d", size), func(b *testing.B) { benchDelivery(b, size) })
	}
}

var deliveryRuns atomic.Int64

func benchDelivery(b *testing.B, batchSize int) {
	s := newStack(b)
	ws, tok := s.workspace(b)
	var src struct {
		WriteKey string `json:"write_key"`
	}
	json.Unmarshal(s.do(b, "POST", "/v1/workspaces/"+ws+"/sources", tok, `{"name":"Website","type":"javascript"}`, 201), &src)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(src.WriteKey+":"))
	// The webhook: it answers 200 at once (the signature checked) and notes when each
	// messageId first arrived and how many times.
	recv := deliverytest.New(b, "bench-secret", deliverytest.Options{})
	s.do(b, "POST", "/v1/workspaces/"+ws+"/destinations", tok, fmt.Sprintf(
		`{"name":"Bench webhook","category":"analytics","type":"webhook","settings":{"url":%q,"secret":"bench-secret","batch_size":%d}}`, recv.URL, batchSize), 201)

	// The bodies, before the timer: 100 track events each (the last may hold fewer), of
	// 2,000 returning users.
	run := deliveryRuns.Add(1)
	ids := make([]string, b.N)
	var bodies [][]byte
	var batches [][]string // the messageIds of each body
	for i := range ids {
		ids[i] = fmt.Sprintf("dlv-%d-%d", run, i)
	}
	for start := 0; start < b.N; start += 100 {
		c := ids[start:min(start+100, b.N)]
		parts := make([]string, len(c))
		for k, id := range c {
			u := (start + k) % 2000
			parts[k] = fmt.Sprintf(`{"type":"track","messageId":%q,"userId":"user-%d","event":"Product Viewed","properties":{"sku":%d,"price":19.99}}`, id, u, u%500)
		}
		bodies = append(bodies, []byte(`{"batch":[`+strings.Join(parts, ",")+`]}`))
		batches = append(batches, c)
	}
	accepted := make([]time.Time, len(bodies))

	const senders = 16
	var next atomic.Int64
	b.ResetTimer()
	began := time.Now()
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= len(bodies) {
					return
				}
				req, _ := http.NewRequest("POST", s.base+"/v1/batch", bytes.NewReader(bodies[k]))
				req.Header.Set("Authorization", auth)
				req.Header.Set("Content-Type", "application/json")
				res, err := s.client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				out, _ := io.ReadAll(res.Body)
				res.Body.Close()
				accepted[k] = time.Now()
				if res.StatusCode != 200 || bytes.Contains(out, []byte(`"rejected"`)) {
					b.Errorf("batch: %d %s", res.StatusCode, out)
				}
			}
		})
	}
	wg.Wait()
	sentIn := time.Since(began)
	recv.WaitDistinct(b.N, 5*time.Minute)
	elapsed := time.Since(began)
	b.StopTimer()

	first, count := recv.First(), recv.Counts()
	delivered, repeats := 0, 0
	var l latencies
	for k, c := range batches {
		for _, id := range c {
			at, ok := first[id]
			if !ok {
				continue
			}
			delivered++
			repeats += count[id] - 1
			l.add(max(at.Sub(accepted[k]), 0))
		}
	}
	if len(count) != delivered {
		b.Errorf("%d messageIds at the webhook that were never sent", len(count)-delivered)
	}
	if delivered != b.N {
		b.Fatalf("%d of the %d events sent reached the webhook after %v", delivered, b.N, elapsed.Round(time.Millisecond))
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/sentIn.Seconds(), "accepted-events/s")
	b.ReportMetric(float64(recv.Requests())/float64(b.N), "webhook-req/event")
	b.ReportMetric(float64(repeats), "repeats")
	l.report(b)
}
