package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

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

// The tracking budget's load (ARCHITECTURE.md section 6): /v1/batch of 100 messages from 16
// concurrent senders, every message resolved and committed before the answer. Per batch:
// 70 % of messages from returning identities, 30 % new, and a few merges (an anonymous
// visitor seen earlier in the batch identifies as a known user).
func BenchmarkTrackingBatch(b *testing.B) {
	s := newStack(b)
	auth, space := s.writeKeyAuth(b)
	const batchSize, known = 100, 2000
	var seq, msgs atomic.Int64 // msgs numbers the messageIds
	post := func(batch []map[string]any) {
		body, _ := json.Marshal(map[string]any{"batch": batch, "sentAt": time.Now().UTC().Format(time.RFC3339Nano)})
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
	msg := func(typ string, fields map[string]any) map[string]any {
		fields["type"] = typ
		fields["messageId"] = fmt.Sprintf("bench-%d", msgs.Add(1))
		fields["timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
		return fields
	}
	// The returning identities: known users, each with an anonymous id.
	for i := 0; i < known; i += batchSize {
		var batch []map[string]any
		for j := i; j < i+batchSize; j++ {
			batch = append(batch, msg("identify", map[string]any{"userId": fmt.Sprintf("user-%d", j), "anonymousId": fmt.Sprintf("anon-%d", j),
				"traits": map[string]any{"email": fmt.Sprintf("user-%d@example.com", j), "plan": "free"}}))
		}
		post(batch)
	}
	var l latencies
	b.SetParallelism(8) // 16 senders on 2 cores
	b.ResetTimer()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(uint64(seq.Add(1)), 7))
		for pb.Next() {
			batch := make([]map[string]any, 0, batchSize)
			for len(batch) < batchSize {
				switch r := rng.IntN(100); {
				case r < 65: // returning: a known user's page views and tracks
					u := rng.IntN(known)
					batch = append(batch, msg("track", map[string]any{"userId": fmt.Sprintf("user-%d", u), "anonymousId": fmt.Sprintf("anon-%d", u),
						"event": "Product Viewed", "properties": map[string]any{"sku": rng.IntN(500), "price": 19.99}}))
				case r < 70: // returning, identifying with a trait change
					u := rng.IntN(known)
					batch = append(batch, msg("identify", map[string]any{"userId": fmt.Sprintf("user-%d", u), "traits": map[string]any{"plan": "pro", "seen": rng.IntN(1000)}}))
				case r < 95 || len(batch) > batchSize-2: // new anonymous visitors
					batch = append(batch, msg("page", map[string]any{"anonymousId": fmt.Sprintf("new-%d", seq.Add(1)), "name": "Pricing",
						"properties": map[string]any{"path": "/pricing"}}))
				default: // a merge: a new anonymous visitor, then it logs in as a known user
					a, u := fmt.Sprintf("new-%d", seq.Add(1)), rng.IntN(known)
					batch = append(batch,
						msg("page", map[string]any{"anonymousId": a, "name": "Login"}),
						msg("identify", map[string]any{"userId": fmt.Sprintf("user-%d", u), "anonymousId": a}))
				}
			}
			start := time.Now()
			post(batch)
			l.add(time.Since(start))
		}
	})
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N*batchSize), "cpu-µs/event")
	l.report(b)
	b.StopTimer()
	// Every event applied: each messageId sent, offered again, is a duplicate of a message
	// already applied (one that was not would be refused: it carries no identifier here).
	sent := int(msgs.Load())
	var again []message.Message
	for i := 1; i <= sent; i++ {
		again = append(again, message.Message{Type: message.Track, MessageID: fmt.Sprintf("bench-%d", i), Event: "Check"})
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
