package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/flex"
	"github.com/unifiedprofiles/up/shared/flex/flextest"
)

const benchAuthToken = "0123456789abcdef0123456789abcdef"

// flexWorkspace is a workspace with its Twilio auth token stored and both presets created.
func (s *server) flexWorkspace(b *testing.B) (ws, tok string) {
	ws, tok = s.workspace(b)
	s.do(b, "PUT", "/v1/workspaces/"+ws+"/flex", tok, `{"auth_token":"`+benchAuthToken+`"}`, 200)
	var view struct {
		Spaces []struct{ ID string } `json:"spaces"`
	}
	json.Unmarshal(s.do(b, "GET", "/v1/workspaces/"+ws+"/spaces", tok, "", 200), &view)
	for _, preset := range []string{"total_inbounds", "frequent_inbound_channel"} {
		s.do(b, "POST", "/v1/workspaces/"+ws+"/spaces/"+view.Spaces[0].ID+"/computed-traits", tok, `{"preset":"`+preset+`"}`, 201)
	}
	return ws, tok
}

// postEngagement posts a signed TaskRouter reservation wrap-up, as Twilio does.
func (s *server) postEngagement(b *testing.B, ws, phone, channel string) {
	form := flextest.Engagement("inbound", channel, phone, time.Now())
	u := s.base + "/v1/flex/" + ws + "/webhooks"
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", flex.Sign(benchAuthToken, u, form))
	res, err := s.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		b.Fatalf("webhook: %d %s", res.StatusCode, body)
	}
}

type agentView struct {
	ComputedTraits map[string]any `json:"computed_traits"`
	Interactions   []any          `json:"interactions"`
}

func (s *server) lookup(b *testing.B, ws, tok, phone string) agentView {
	var v agentView
	json.Unmarshal(s.do(b, "GET", "/v1/flex/"+ws+"/profiles?phone="+url.QueryEscape(phone), tok, "", 200), &v)
	return v
}

// From a signed TaskRouter callback to the agent lookup showing the new Total inbounds: one
// client, 1,000 callers taking turns. Both the webhook and the lookup are full HTTP round
// trips on the local stack.
func BenchmarkFlexWebhookToTraitVisible(b *testing.B) {
	s := newStack(b)
	ws, tok := s.flexWorkspace(b)
	const callers = 1000
	counts := make([]int, callers)
	var l latencies
	b.ResetTimer()
	for i := range b.N {
		c := i % callers
		phone := fmt.Sprintf("+1415555%04d", c)
		start := time.Now()
		s.postEngagement(b, ws, phone, []string{"voice", "sms"}[i%2])
		counts[c]++
		v := s.lookup(b, ws, tok, phone)
		if got := v.ComputedTraits["total_inbounds"]; got != float64(counts[c]) {
			b.Fatalf("caller %d: total_inbounds %v right after the webhook, want %d", c, got, counts[c])
		}
		l.add(time.Since(start))
	}
	b.StopTimer()
	l.report(b)
}

// The agent lookup by phone: 16 clients over 1,000 callers with 5 interactions each
// (identifiers, traits, computed traits and the latest interactions per answer), as fast as
// they go (saturation) and paced at 1,000 lookups/s (the Profile API budget's load; run it
// with -benchtime Nx).
func BenchmarkFlexAgentLookup(b *testing.B)      { benchLookup(b, 0) }
func BenchmarkFlexAgentLookupPaced(b *testing.B) { benchLookup(b, time.Second/1000) }

func benchLookup(b *testing.B, interval time.Duration) {
	s := newStack(b)
	ws, tok := s.flexWorkspace(b)
	const callers = 1000
	for c := range callers {
		for i := range 5 {
			s.postEngagement(b, ws, fmt.Sprintf("+1415555%04d", c), []string{"voice", "sms", "chat"}[i%3])
		}
	}
	var l latencies
	var next atomic.Int64
	b.SetParallelism(8) // 16 clients on 2 cores
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			waitTurn(start, i, interval)
			c := i % callers
			start := time.Now()
			v := s.lookup(b, ws, tok, fmt.Sprintf("+1415555%04d", c))
			l.add(time.Since(start))
			if len(v.Interactions) != 5 || v.ComputedTraits["total_inbounds"] != 5.0 {
				b.Errorf("caller %d: %+v", c, v)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	l.report(b)
}
