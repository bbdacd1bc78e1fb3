package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/message"
)

// Profile API /traits on the local stack, paced at 1,000 requests/s from 16 clients (the
// budget's load) over 1,000 profiles with 20 traits each. The API allows 100 requests/s per
// space, so the load is spread over 10 spaces of 10 workspaces. Run with -benchtime Nx.
func BenchmarkProfilesTraits(b *testing.B) {
	s := newStack(b)

	// Twenty workspaces, a space each, 100 profiles per space: 50 requests/s per space, so the
	// per-space budget (100 in each calendar second) is never what the figure measures.
	type target struct{ space, token string }
	var targets []target
	ctx := context.Background()
	now := time.Now()
	for w := range 20 {
		ws, tok := s.workspace(b)
		var view struct {
			Spaces []struct{ ID string } `json:"spaces"`
		}
		json.Unmarshal(s.do(b, "GET", "/v1/workspaces/"+ws+"/spaces", tok, "", 200), &view)
		sp := view.Spaces[0].ID
		var at struct{ Token string }
		json.Unmarshal(s.do(b, "POST", "/v1/workspaces/"+ws+"/spaces/"+sp+"/access-tokens", tok, "", 201), &at)
		targets = append(targets, target{sp, at.Token})
		for p := range 100 {
			traits := map[string]any{}
			for k := range 20 {
				traits[fmt.Sprintf("trait_%02d", k)] = fmt.Sprintf("value %d", k)
			}
			m := message.Message{Type: message.Identify, MessageID: fmt.Sprintf("seed-%d-%d", w, p), UserID: fmt.Sprintf("u%d", p),
				Traits: traits, Timestamp: now, ReceivedAt: now}
			if _, err := s.stack.Profiles.Apply(ctx, sp, m); err != nil {
				b.Fatal(err)
			}
		}
	}
	var l latencies
	interval := time.Second / 1000 // 1,000 requests/s in all
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	seq := make(chan int64, 1)
	seq <- 0
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := <-seq
			seq <- i + 1
			waitTurn(start, i, interval)
			tg := targets[i%int64(len(targets))]
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/spaces/%s/collections/users/profiles/user_id:u%d/traits?limit=20", s.base, tg.space, i%100), nil)
			req.SetBasicAuth(tg.token, "")
			t0 := time.Now()
			res, err := s.client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
			l.add(time.Since(t0))
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	l.report(b)
}
