package profile

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/store/bolt"
)

// Benchmarks of the ingest hot path: a returning visitor's event encoded, a profile's head
// decoded, and a batch of returning visitors applied end to end on a bolt store.

// benchRaws are raw messages as they reach Apply: one as Go's encoder writes it (compact, the
// HTML characters escaped: the TrackingBatch load), one as a browser SDK sends it (compact,
// an & in its URLs), one indented.
var benchRaws = map[string]string{
	"go": `{"anonymousId":"anon-17","event":"Product Viewed","messageId":"bench-123456","properties":{"price":19.99,"sku":412},"timestamp":"2026-03-01T10:00:00.123456789Z","type":"track","userId":"user-17"}`,
	"sdk": `{"type":"track","event":"Product Viewed","messageId":"ajs-next-1717171717171-8f3c2a1b","anonymousId":"5d8f1e2a-77c1-4c3b-9e2f-1a2b3c4d5e6f","userId":"user-17",` +
		`"properties":{"sku":412,"price":19.99,"name":"Blue Shoes <sale>"},"context":{"page":{"path":"/p/412","url":"https://shop.example.com/p/412?ref=home&utm=mail","title":"Blue Shoes – Shop"},` +
		`"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36","library":{"name":"analytics.js","version":"next-1.70.0"}},` +
		`"timestamp":"2026-03-01T10:00:00.123Z","sentAt":"2026-03-01T10:00:00.200Z"}`,
}

func init() {
	var v any
	json.Unmarshal([]byte(benchRaws["sdk"]), &v)
	indented, _ := json.MarshalIndent(v, "", "  ")
	benchRaws["indented"] = string(indented)
}

func benchEventMessage(raw string) message.Message {
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	return message.Message{Type: message.Track, MessageID: "bench-123456", UserID: "user-17", AnonymousID: "anon-17",
		Event: "Product Viewed", Properties: map[string]any{"sku": 412.0, "price": 19.99}, Timestamp: at,
		ReceivedAt: at.Add(time.Millisecond), SourceID: "src_2abc", Raw: json.RawMessage(raw)}
}

func BenchmarkEventItem(b *testing.B) {
	for _, name := range []string{"go", "sdk", "indented"} {
		b.Run(name, func(b *testing.B) {
			sn := &snapshot{spaceID: "sp_bench", now: time.Now().UTC()}
			m := benchEventMessage(benchRaws[name])
			ids := []identity.Identifier{{Type: "user_id", Value: m.UserID}, {Type: "anonymous_id", Value: m.AnonymousID}}
			k := eventKey(sn.spaceID, "prof_x", m.Timestamp, m.MessageID)
			b.Run("eventItem", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					sn.eventItem(k, m, ids, false)
				}
			})
			b.Run("json.Marshal", func(b *testing.B) { // what eventItem did before appendEventJSON
				ev := Event{MessageID: m.MessageID, Type: m.Type, Event: m.Event, Timestamp: m.Timestamp, ReceivedAt: m.ReceivedAt,
					SourceID: m.SourceID, Properties: m.Properties, Identifiers: ids, Raw: m.Raw}
				b.ReportAllocs()
				for b.Loop() {
					item(k, ev)
				}
			})
		})
	}
}

// benchProfile is a stored profile as an identify with a few traits leaves it.
func benchProfile() []byte {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	p := Profile{ID: "prof_2xYz8AbCdEfGhIjK", SpaceID: "sp_bench", CreatedAt: at, UpdatedAt: at,
		Identifiers: []Identifier{
			{Seen: identity.Seen{Identifier: identity.Identifier{Type: "user_id", Value: "user-17"}, FirstSeen: at}, SourceID: "src_2abc"},
			{Seen: identity.Seen{Identifier: identity.Identifier{Type: "anonymous_id", Value: "anon-17"}, FirstSeen: at}, SourceID: "src_2abc"},
			{Seen: identity.Seen{Identifier: identity.Identifier{Type: "email", Value: "user-17@example.com"}, FirstSeen: at}, SourceID: "src_2abc"},
		},
		Traits: map[string]Trait{}, First: MessageRef{ID: "bench-1", Type: "identify", At: at, SourceID: "src_2abc"}}
	for i, k := range []string{"email", "plan", "seen", "first_name", "last_name", "company", "title", "city"} {
		p.Traits[k] = Trait{Value: fmt.Sprintf("value of %s %d", k, i), At: at}
	}
	data, _ := json.Marshal(p)
	return data
}

func BenchmarkDecodeHead(b *testing.B) {
	data := benchProfile()
	k := profileKey("sp_bench", "prof_2xYz8AbCdEfGhIjK")
	b.Run("json.Unmarshal", func(b *testing.B) { // a profile not cached: what every read did before headCache
		b.ReportAllocs()
		for b.Loop() {
			l := &loaded{version: 7, raw: data}
			if err := l.decodeHead(&headCache{}, k); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		var heads headCache
		b.ReportAllocs()
		for b.Loop() {
			l := &loaded{version: 7, raw: data}
			if err := l.decodeHead(&heads, k); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkApplyManyReturning applies batches of 100 returning visitors' track calls (no
// computed traits: nothing but the event and the dedupe record is written).
func BenchmarkApplyManyReturning(b *testing.B) {
	st, err := bolt.Open(filepath.Join(b.TempDir(), "up.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc := New(st, Options{})
	ctx := context.Background()
	const visitors = 100
	var first []message.Message
	for v := range visitors {
		at := time.Now().UTC()
		first = append(first, message.Message{Type: message.Identify, MessageID: fmt.Sprintf("id-%d", v), UserID: fmt.Sprintf("user-%d", v),
			AnonymousID: fmt.Sprintf("anon-%d", v), Traits: map[string]any{"email": fmt.Sprintf("user-%d@example.com", v), "plan": "free"},
			Timestamp: at, ReceivedAt: at, SourceID: "src_bench", Raw: json.RawMessage(`{"type":"identify"}`)})
	}
	applyAll(b, svc, ctx, first)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		batch := make([]message.Message, visitors)
		for v := range batch {
			n++
			m := benchEventMessage(benchRaws["go"])
			m.MessageID, m.UserID, m.AnonymousID = fmt.Sprintf("tr-%d", n), fmt.Sprintf("user-%d", v), fmt.Sprintf("anon-%d", v)
			m.Timestamp, m.ReceivedAt = time.Now().UTC(), time.Now().UTC()
			batch[v] = m
		}
		applyAll(b, svc, ctx, batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}

func applyAll(b *testing.B, svc *Service, ctx context.Context, msgs []message.Message) {
	outs, err := svc.ApplyMany(ctx, "sp_bench", msgs)
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range outs {
		if o.Err != nil {
			b.Fatal(o.Err)
		}
	}
}
