package trackingload

import (
	"bytes"
	"encoding/json"
	"testing"
)

type wire struct {
	Batch []struct {
		Type        string         `json:"type"`
		MessageID   string         `json:"messageId"`
		UserID      string         `json:"userId"`
		AnonymousID string         `json:"anonymousId"`
		Traits      map[string]any `json:"traits"`
	} `json:"batch"`
	SentAt string `json:"sentAt"`
}

func decode(t *testing.T, bodies [][]byte) []wire {
	t.Helper()
	out := make([]wire, len(bodies))
	for i, b := range bodies {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
		if n := len(out[i].Batch); n != BatchSize {
			t.Fatalf("body %d holds %d messages, want %d", i, n, BatchSize)
		}
	}
	return out
}

func TestLoadIsTheBudgetsMix(t *testing.T) {
	t.Parallel()
	var l Load
	warm := decode(t, l.Warmup())
	if len(warm)*BatchSize != Known {
		t.Fatalf("warm-up makes %d users, want %d", len(warm)*BatchSize, Known)
	}
	for _, w := range warm {
		for _, m := range w.Batch {
			if m.Type != "identify" || m.UserID == "" || m.AnonymousID == "" || m.Traits["email"] == nil {
				t.Fatalf("warm-up message %+v: want an identify with userId, anonymousId and email", m)
			}
		}
	}
	const n = 200
	batches := decode(t, l.Batches(n, 16))
	counts := map[string]int{}
	seen := map[string]bool{}
	for _, w := range append(warm, batches...) {
		for _, m := range w.Batch {
			if seen[m.MessageID] {
				t.Fatalf("messageId %s sent twice", m.MessageID)
			}
			seen[m.MessageID] = true
		}
	}
	for _, w := range batches {
		for _, m := range w.Batch {
			kind := m.Type
			if m.Type == "identify" && m.AnonymousID != "" {
				kind = "merge"
			}
			counts[kind]++
		}
	}
	for i := 1; i <= l.Sent(); i++ {
		if !seen[MessageID(i)] {
			t.Fatalf("Sent() = %d but %s was not sent", l.Sent(), MessageID(i))
		}
	}
	if len(seen) != l.Sent() {
		t.Fatalf("%d messageIds sent, Sent() = %d", len(seen), l.Sent())
	}
	total := float64(n * BatchSize)
	for _, c := range []struct {
		kind     string
		min, max float64 // share of the messages
	}{
		{"track", 0.60, 0.68},    // 65 %
		{"identify", 0.03, 0.07}, // 5 %
		{"merge", 0.03, 0.06},    // about 5 % of draws, each a page and an identify
		{"page", 0.26, 0.34},     // 25 % new visitors, plus each merge's page
	} {
		if got := float64(counts[c.kind]) / total; got < c.min || got > c.max {
			t.Errorf("%s: %.3f of the messages, want %.2f–%.2f (counts %v)", c.kind, got, c.min, c.max, counts)
		}
	}
}

func TestBatchesAreTheSameLoadEveryRun(t *testing.T) {
	t.Parallel()
	var a, b Load
	a.Warmup()
	b.Warmup()
	x, y := decode(t, a.Batches(50, 16)), decode(t, b.Batches(50, 16))
	for i := range x {
		for j := range x[i].Batch {
			mx, my := x[i].Batch[j], y[i].Batch[j]
			if mx.Type != my.Type || mx.MessageID != my.MessageID || mx.UserID != my.UserID || mx.AnonymousID != my.AnonymousID {
				t.Fatalf("body %d message %d differs between runs: %+v and %+v", i, j, mx, my)
			}
		}
	}
	if bytes.Equal(a.Batches(1, 16)[0], a.Batches(1, 16)[0]) {
		t.Fatal("two bodies made one after the other repeat their messageIds")
	}
}
