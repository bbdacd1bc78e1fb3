package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/bolt"
)

// Resolve-and-apply throughput on the embedded store, 16 concurrent callers, for the three
// kinds of visitor: new (a fresh anonymous id: create), returning (a known anonymous id: the
// event only), merging (an anonymous visitor identifies: two profiles become one).
func BenchmarkResolve(b *testing.B) {
	cases := []struct {
		name string
		msgs func(n int64) []message.Message
	}{
		{"new", func(n int64) []message.Message {
			return []message.Message{track(fmt.Sprintf("new-%d", n), fmt.Sprintf("a-%d", n))}
		}},
		{"returning", func(n int64) []message.Message {
			return []message.Message{track(fmt.Sprintf("ret-%d", n), fmt.Sprintf("a-%d", n%64))}
		}},
		{"merging", func(n int64) []message.Message {
			u := message.Message{Type: message.Identify, MessageID: fmt.Sprintf("u-%d", n), UserID: fmt.Sprintf("u-%d", n),
				Traits: map[string]any{"plan": "pro"}, Timestamp: time.Now(), ReceivedAt: time.Now()}
			m := message.Message{Type: message.Identify, MessageID: fmt.Sprintf("m-%d", n), UserID: fmt.Sprintf("u-%d", n),
				AnonymousID: fmt.Sprintf("a-%d", n), Timestamp: time.Now(), ReceivedAt: time.Now()}
			return []message.Message{track(fmt.Sprintf("t-%d", n), fmt.Sprintf("a-%d", n)), u, m}
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			st, err := bolt.Open(filepath.Join(b.TempDir(), "up.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			svc := profile.New(st, profile.Options{})
			ctx := context.Background()
			if tc.name == "returning" {
				for i := range int64(64) {
					if _, err := svc.Apply(ctx, "sp_bench", tc.msgs(i)[0]); err != nil {
						b.Fatal(err)
					}
				}
			}
			var seq atomic.Int64
			seq.Store(1 << 20)
			var l latencies
			b.SetParallelism(8) // 16 callers on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					start := time.Now()
					for _, m := range tc.msgs(seq.Add(1)) {
						if _, err := svc.Apply(ctx, "sp_bench", m); err != nil {
							b.Error(err)
							return
						}
					}
					l.add(time.Since(start))
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "visitors/s")
			l.report(b)
		})
	}
}

func track(id, anon string) message.Message {
	now := time.Now()
	return message.Message{Type: message.Track, MessageID: id, AnonymousID: anon, Event: "Page Viewed",
		Properties: map[string]any{"path": "/pricing"}, Timestamp: now, ReceivedAt: now}
}
