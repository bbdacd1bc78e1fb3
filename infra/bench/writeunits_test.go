package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// The ways a returning visitor's message reaches DynamoDB, each costed from the requests
// actually sent to moto (meter): Apply alone, a single tracking call with its debugger
// entry, a tracking batch of 100, and a chunk of CSV rows (identifies that change nothing).
var returningPaths = []string{"apply", "tracking-single", "tracking-batch100", "csv-rows"}

// predictingPaths are costed again in a space with a registered prediction, where each track
// call also adds to its daily counter (profile.DailyCounts): reported, not held to the
// budget, which the spaces that use no prediction keep.
var predictingPaths = []string{"apply", "tracking-single", "tracking-batch100"}

// returningWriteUnits sends rounds of returning visitors' messages down path, in a space
// with a registered prediction when predicting, and returns the write units per message,
// the profiles made beforehand (and the registration) not counted.
func returningWriteUnits(tb testing.TB, endpoint, table, path string, rounds int, predicting bool) float64 {
	tb.Helper()
	m := &meter{API: dynamo.Serialized(storetest.Client(tb, endpoint, false))}
	st := dynamo.New(m, table)
	profiles := profile.New(st, profile.Options{})
	tr := tracking.New(st, nil, profiles, tracking.Options{})
	space := fmt.Sprintf("sp_wu_%s_%v_%d", path, predicting, time.Now().UnixNano())
	src := workspace.Source{ID: "src_" + space, SpaceID: space, Type: "http"}
	ctx := context.Background()
	if predicting {
		if err := profiles.RegisterPrediction(ctx, space, "pred_wu", "wu_score"); err != nil {
			tb.Fatal(err)
		}
	}
	visitors := 10 // the cost per message does not depend on how many
	if path == "tracking-batch100" {
		visitors = 100
	}
	msg := func(round, v int) message.Message {
		id := fmt.Sprintf("%s-%d-%d", path, round, v)
		now := time.Now().UTC()
		if path == "csv-rows" {
			return message.Message{Type: message.Identify, MessageID: id, UserID: fmt.Sprintf("u-%d", v),
				Traits: map[string]any{"plan": "pro", "email": fmt.Sprintf("u-%d@example.com", v)}, Timestamp: time.Unix(1e9, 0), ReceivedAt: now}
		}
		t := track(id, fmt.Sprintf("anon-%d", v))
		t.UserID = fmt.Sprintf("u-%d", v)
		t.Raw, _ = json.Marshal(map[string]any{"type": "track", "messageId": id, "userId": t.UserID, "anonymousId": t.AnonymousID,
			"event": t.Event, "properties": t.Properties, "timestamp": t.Timestamp})
		return t
	}
	ingest := func(msgs []message.Message) {
		switch path {
		case "apply":
			for _, mm := range msgs {
				if _, err := profiles.Apply(ctx, space, mm); err != nil {
					tb.Fatal(err)
				}
			}
		case "csv-rows":
			outs, err := profiles.ApplyMany(ctx, space, msgs)
			if err != nil {
				tb.Fatal(err)
			}
			for _, o := range outs {
				if o.Err != nil {
					tb.Fatal(o.Err)
				}
			}
		default:
			var req tracking.Request
			for i, mm := range msgs {
				req.Messages = append(req.Messages, tracking.Parsed{Index: i, Message: mm})
			}
			if path == "tracking-single" {
				for _, pm := range req.Messages {
					if _, err := tr.Ingest(ctx, src, tracking.Request{Total: 1, Messages: []tracking.Parsed{pm}}); err != nil {
						tb.Fatal(err)
					}
				}
				return
			}
			req.Total = len(msgs)
			if _, err := tr.Ingest(ctx, src, req); err != nil {
				tb.Fatal(err)
			}
		}
	}
	round := func(r int) []message.Message {
		var msgs []message.Message
		for v := range visitors {
			msgs = append(msgs, msg(r, v))
		}
		return msgs
	}
	ingest(round(-1)) // the profiles, and the source's "seen" record: not counted
	before := m.total()
	for r := range rounds {
		ingest(round(r))
	}
	return (m.total() - before) / float64(rounds*visitors)
}

// The budget (ARCHITECTURE.md section 6): a returning visitor's message costs at most 3
// write units on every path, its debugger entry and dedupe record included.
func TestReturningVisitorWriteUnits(t *testing.T) {
	t.Parallel()
	endpoint, table := storetest.DynamoTable(t)
	for _, path := range returningPaths {
		t.Run(path, func(t *testing.T) { // one at a time: moto is not safe under concurrent transactions
			wu := returningWriteUnits(t, endpoint, table, path, 1, false)
			t.Logf("%s: %.2f WU per returning visitor's message", path, wu)
			if wu > 3 {
				t.Errorf("%s: %.2f write units per returning visitor's message, over the budget of 3", path, wu)
			}
		})
	}
	for _, path := range predictingPaths {
		t.Run(path+"-predicting", func(t *testing.T) {
			wu := returningWriteUnits(t, endpoint, table, path, 1, true)
			t.Logf("%s, space with a prediction: %.2f WU per returning visitor's message (reported, not held to the budget)", path, wu)
		})
	}
}

func BenchmarkDynamoWriteUnitsReturning(b *testing.B) {
	endpoint, table := storetest.DynamoTable(b)
	run := func(name, path string, predicting bool) {
		b.Run(name, func(b *testing.B) {
			var wu float64
			n := 0
			for b.Loop() {
				wu += returningWriteUnits(b, endpoint, table, path, 1, predicting)
				n++
			}
			b.ReportMetric(wu/float64(n), "WU/event")
		})
	}
	for _, path := range returningPaths {
		run(path, path, false)
	}
	for _, path := range predictingPaths {
		run(path+"-predicting", path, true)
	}
}
