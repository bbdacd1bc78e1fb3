package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/infra/trackingload"
	"github.com/unifiedprofiles/up/shared/message"
)

// writeKeyAuth creates a workspace with a server source and returns its write key as an
// Authorization header value, and the source's space.
func (s *server) writeKeyAuth(b *testing.B) (auth, space string) {
	ws, tok := s.workspace(b)
	var src struct {
		WriteKey string `json:"write_key"`
		SpaceID  string `json:"space_id"`
	}
	json.Unmarshal(s.do(b, "POST", "/v1/workspaces/"+ws+"/sources", tok, `{"name":"Backend","type":"http"}`, 201), &src)
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(src.WriteKey+":")), src.SpaceID
}

// The tracking budget's load (ARCHITECTURE.md section 6, package trackingload): /v1/batch of
// 100 messages from 16 concurrent senders, every message resolved and committed before the
// answer. The bodies are made before the timer starts, as cmd loadgen does for the side-by-side
// runs with RudderStack, so that the CPU figure is the stack's.
func BenchmarkTrackingBatch(b *testing.B) {
	s := newStack(b)
	auth, space := s.writeKeyAuth(b)
	post := func(body []byte) {
		req, _ := http.NewRequest("POST", s.base+"/v1/batch", bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		res, err := s.client.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		out, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || bytes.Contains(out, []byte(`"rejected"`)) {
			b.Errorf("batch: %d %s", res.StatusCode, out)
		}
	}
	const senders = 16
	var load trackingload.Load
	for _, body := range load.Warmup() {
		post(body)
	}
	bodies := load.Batches(b.N, senders)
	var next atomic.Int64
	var l latencies
	b.SetParallelism(max(1, senders/runtime.GOMAXPROCS(0))) // 16 senders on 2 cores
	b.ResetTimer()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bodies[next.Add(1)-1]
			start := time.Now()
			post(body)
			l.add(time.Since(start))
		}
	})
	b.ReportMetric(float64(b.N*trackingload.BatchSize)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N*trackingload.BatchSize), "cpu-µs/event")
	l.report(b)
	b.StopTimer()
	// Every event applied: each messageId sent, offered again, is a duplicate of a message
	// already applied (one that was not would be refused: it carries no identifier here).
	sent := load.Sent()
	again := make([]message.Message, 0, sent)
	for i := 1; i <= sent; i++ {
		again = append(again, message.Message{Type: message.Track, MessageID: trackingload.MessageID(i), Event: "Check"})
	}
	outs, err := s.stack.Profiles.ApplyMany(context.Background(), space, again)
	if err != nil {
		b.Fatal(err)
	}
	applied := 0
	for _, o := range outs {
		if o.Duplicate {
			applied++
		}
	}
	b.ReportMetric(float64(applied), "applied")
	if applied != sent {
		b.Errorf("%d of the %d messages sent were applied", applied, sent)
	}
}

// One identify at a time, request to committed profile (the budget: p95 ≤ 2 ms): a returning
// user's identify changing a trait, from one client.
func BenchmarkTrackingIdentify(b *testing.B) {
	s := newStack(b)
	auth, _ := s.writeKeyAuth(b)
	var l latencies
	b.ResetTimer()
	for i := range b.N {
		body := fmt.Sprintf(`{"userId":"user-%d","messageId":"identify-%d","traits":{"plan":"pro","visits":%d}}`, i%100, i, i)
		req, _ := http.NewRequest("POST", s.base+"/v1/identify", bytes.NewReader([]byte(body)))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		res, err := s.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		l.add(time.Since(start))
		if res.StatusCode != 200 {
			b.Fatalf("identify: %d", res.StatusCode)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "identifies/s")
	l.report(b)
}
