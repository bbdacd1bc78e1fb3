package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// meter counts the write units of the writes sent to a DynamoDB endpoint the way DynamoDB
// bills them: each item ⌈size / 1 KB⌉ (names plus values), doubled in a transaction, where a
// condition check counts as a write. moto_server's own ConsumedCapacity is not used: it
// reports 1 unit for a single write of any size and nothing for TransactWriteItems.
type meter struct {
	dynamo.API
	mu    sync.Mutex
	units float64
}

func (m *meter) add(units float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.units += units
}

func (m *meter) total() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.units
}

func (m *meter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := m.API.PutItem(ctx, in, o...)
	if out != nil {
		m.add(kb(in.Item))
	}
	return out, err
}

func (m *meter) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	out, err := m.API.UpdateItem(ctx, in, o...)
	if out != nil {
		m.add(1) // counters: small items
	}
	return out, err
}

func (m *meter) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	out, err := m.API.DeleteItem(ctx, in, o...)
	if out != nil {
		m.add(1)
	}
	return out, err
}

func (m *meter) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	out, err := m.API.TransactWriteItems(ctx, in, o...)
	if err != nil {
		return out, err // a cancelled transaction is billed too, but it is a retry, not the event's cost
	}
	var units float64
	for _, ti := range in.TransactItems {
		switch {
		case ti.Put != nil:
			units += 2 * kb(ti.Put.Item)
		default: // update, delete, condition check: items under 1 KB here
			units += 2
		}
	}
	m.add(units)
	return out, err
}

// kb is the billed size of an item in KB units: names plus values, rounded up.
func kb(item map[string]types.AttributeValue) float64 {
	size := 0
	for name, v := range item {
		size += len(name)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			size += len(v.Value)
		case *types.AttributeValueMemberB:
			size += len(v.Value)
		case *types.AttributeValueMemberN:
			size += len(v.Value)/2 + 1
		default:
			size += 1
		}
	}
	return math.Ceil(float64(size) / 1024)
}

// Write units per event on DynamoDB (moto_server) for the three kinds of visitor.
func BenchmarkDynamoWriteUnits(b *testing.B) {
	endpoint, table := storetest.DynamoTable(b)
	for _, tc := range []struct {
		name string
		msgs func(n int) []message.Message
	}{
		{"new", func(n int) []message.Message {
			return []message.Message{track(fmt.Sprintf("wn-%d", n), fmt.Sprintf("wa-%d", n))}
		}},
		{"returning", func(n int) []message.Message {
			return []message.Message{track(fmt.Sprintf("wr-%d", n), "wa-returning")}
		}},
		{"merging", func(n int) []message.Message {
			now := time.Now()
			return []message.Message{{Type: message.Identify, MessageID: fmt.Sprintf("wm-%d", n), UserID: fmt.Sprintf("wu-%d", n),
				AnonymousID: fmt.Sprintf("wn-anon-%d", n), Timestamp: now, ReceivedAt: now}}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := &meter{API: storetest.Client(b, endpoint, false)}
			svc := profile.New(dynamo.New(m, table), profile.Options{})
			ctx := context.Background()
			apply := func(ms []message.Message) {
				for _, msg := range ms {
					if _, err := svc.Apply(ctx, "sp_wu_"+tc.name, msg); err != nil {
						b.Fatal(err)
					}
				}
			}
			apply([]message.Message{track("warm-"+tc.name, "wa-returning")})
			var wu float64
			events := 0
			for i := 0; b.Loop(); i++ {
				if tc.name == "merging" { // first an anonymous profile and a user's, not counted
					now := time.Now()
					apply([]message.Message{track(fmt.Sprintf("pre-a-%d", i), fmt.Sprintf("wn-anon-%d", i)),
						{Type: message.Identify, MessageID: fmt.Sprintf("pre-u-%d", i), UserID: fmt.Sprintf("wu-%d", i), Timestamp: now, ReceivedAt: now}})
				}
				before := m.total()
				ms := tc.msgs(i)
				apply(ms)
				wu += m.total() - before
				events += len(ms)
			}
			b.ReportMetric(wu/float64(events), "WU/event")
		})
	}
	// A returning visitor's track through the tracking API's ingest: what Apply writes plus
	// the event's debugger entry.
	b.Run("returning-tracking", func(b *testing.B) {
		m := &meter{API: storetest.Client(b, endpoint, false)}
		st := dynamo.New(m, table)
		tr := tracking.New(st, nil, profile.New(st, profile.Options{}), tracking.Options{})
		src := workspace.Source{ID: "src_wu", SpaceID: "sp_wu_tracking", Type: "http"}
		ingest := func(id string) {
			msg := track(id, "wa-returning")
			msg.Raw, _ = json.Marshal(map[string]any{"type": "track", "messageId": id, "anonymousId": "wa-returning",
				"event": msg.Event, "properties": msg.Properties, "timestamp": msg.Timestamp})
			if _, err := tr.Ingest(context.Background(), src, tracking.Request{Total: 1, Messages: []tracking.Parsed{{Message: msg}}}); err != nil {
				b.Fatal(err)
			}
		}
		ingest("warm-tracking") // the profile, and the source's "seen" record
		var wu float64
		events := 0
		for i := 0; b.Loop(); i++ {
			before := m.total()
			ingest(fmt.Sprintf("wt-%d", i))
			wu += m.total() - before
			events++
		}
		b.ReportMetric(wu/float64(events), "WU/event")
	})
}
