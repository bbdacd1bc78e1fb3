// Package trackingload makes the tracking budget's load (ARCHITECTURE.md section 6) as request
// bodies: Segment /v1/batch bodies of 100 messages, after 2,000 warm-up identifies; per batch
// 65 % returning users' tracks, 5 % returning identifies with a trait change, 25 % new
// anonymous visitors, 5 % merges (a new visitor's page, then it identifies as a known user).
// BenchmarkTrackingBatch and cmd loadgen both send it, so the figures of this project's stack
// and of RudderStack's gateway come from one load. Bodies are made before the timing starts:
// encoding them on the same two cores would be counted against the server.
package trackingload

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

const (
	// BatchSize is the number of messages per body.
	BatchSize = 100
	// Known is the number of returning users, each with an anonymous id.
	Known = 2000
)

// Load numbers the messages it makes: messageIds are MessageID(1) … MessageID(Sent()).
type Load struct {
	msgs    int // messages made
	newSeen int // new anonymous visitors made
}

// MessageID is the messageId of the i-th message made (from 1).
func MessageID(i int) string { return fmt.Sprintf("bench-%d", i) }

// Sent is how many messages the bodies made so far hold.
func (l *Load) Sent() int { return l.msgs }

func (l *Load) msg(typ string, fields map[string]any) map[string]any {
	l.msgs++
	fields["type"] = typ
	fields["messageId"] = MessageID(l.msgs)
	fields["timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
	return fields
}

func body(batch []map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"batch": batch, "sentAt": time.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		panic(err) // maps of strings and numbers always encode
	}
	return b
}

// Warmup returns the bodies that make the Known users, each identify carrying a userId, an
// anonymousId and two traits.
func (l *Load) Warmup() [][]byte {
	var out [][]byte
	for i := 0; i < Known; i += BatchSize {
		batch := make([]map[string]any, 0, BatchSize)
		for j := i; j < i+BatchSize; j++ {
			batch = append(batch, l.msg("identify", map[string]any{"userId": fmt.Sprintf("user-%d", j), "anonymousId": fmt.Sprintf("anon-%d", j),
				"traits": map[string]any{"email": fmt.Sprintf("user-%d@example.com", j), "plan": "free"}}))
		}
		out = append(out, body(batch))
	}
	return out
}

// Batches returns n bodies of the mix, body k drawn from sender k mod senders's random
// stream (seeded by the sender's number: the same load on every run and for every server).
func (l *Load) Batches(n, senders int) [][]byte {
	rngs := make([]*rand.Rand, senders)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(uint64(i+1), 7))
	}
	out := make([][]byte, n)
	for k := range out {
		rng := rngs[k%senders]
		batch := make([]map[string]any, 0, BatchSize)
		for len(batch) < BatchSize {
			switch r := rng.IntN(100); {
			case r < 65: // returning: a known user's product views
				u := rng.IntN(Known)
				batch = append(batch, l.msg("track", map[string]any{"userId": fmt.Sprintf("user-%d", u), "anonymousId": fmt.Sprintf("anon-%d", u),
					"event": "Product Viewed", "properties": map[string]any{"sku": rng.IntN(500), "price": 19.99}}))
			case r < 70: // returning, identifying with a trait change
				u := rng.IntN(Known)
				batch = append(batch, l.msg("identify", map[string]any{"userId": fmt.Sprintf("user-%d", u), "traits": map[string]any{"plan": "pro", "seen": rng.IntN(1000)}}))
			case r < 95 || len(batch) > BatchSize-2: // a new anonymous visitor
				batch = append(batch, l.msg("page", map[string]any{"anonymousId": l.newVisitor(), "name": "Pricing",
					"properties": map[string]any{"path": "/pricing"}}))
			default: // a merge: a new anonymous visitor, then it logs in as a known user
				a, u := l.newVisitor(), rng.IntN(Known)
				batch = append(batch,
					l.msg("page", map[string]any{"anonymousId": a, "name": "Login"}),
					l.msg("identify", map[string]any{"userId": fmt.Sprintf("user-%d", u), "anonymousId": a}))
			}
		}
		out[k] = body(batch)
	}
	return out
}

func (l *Load) newVisitor() string {
	l.newSeen++
	return fmt.Sprintf("new-%d", l.newSeen)
}
