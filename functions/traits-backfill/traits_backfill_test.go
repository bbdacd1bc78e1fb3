package main

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/infra/lambdatest"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/traits"
)

// The traits-backfill bootstrap, under the Lambda Runtime Interface Emulator, takes the
// sample scheduled event and backfills a trait created after its events arrived, in
// DynamoDB; a second run changes nothing.
func TestTraitsBackfillUnderRIE(t *testing.T) {
	t.Parallel()
	endpoint, table, st := storetest.DynamoStore(t)
	ctx := context.Background()
	// The trait was created a minute ago, so its backfill is due.
	past := time.Now().UTC().Add(-time.Minute)
	profiles := profile.New(st, profile.Options{Now: func() time.Time { return past }})
	const sp = "sp_rie"
	for i, dir := range []string{"inbound", "outbound", "inbound"} {
		m := message.Message{Type: message.Track, MessageID: fmt.Sprintf("m%d", i), UserID: "caller", Event: traits.FlexEngagementInitiated,
			Properties: map[string]any{"direction": dir, "channelType": "voice"}, Timestamp: past, ReceivedAt: past}
		if _, err := profiles.Apply(ctx, sp, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, preset := range []string{traits.PresetTotalInbounds, traits.PresetFrequentInboundChannel} {
		d, _ := traits.Preset(preset)
		if _, err := profiles.CreateComputedTrait(ctx, sp, d, preset, store.AddOp(store.Key{PK: "TEST", SK: "SLOTS"}, 1, 2)); err != nil {
			t.Fatal(err)
		}
	}
	values := func() map[string]any {
		p, err := profiles.Lookup(ctx, sp, identity.Identifier{Type: identity.TypeUserID, Value: "caller"})
		if err != nil {
			t.Fatal(err)
		}
		v, err := profiles.ComputedTraitValues(ctx, sp, p)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := values(); !reflect.DeepEqual(v, map[string]any{"total_inbounds": 0}) {
		t.Fatalf("before the backfill: %v", v)
	}

	em := lambdatest.Run(t, "traits-backfill", map[string]string{
		"UP_TABLE_NAME":             table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
	})
	want := map[string]any{"total_inbounds": 2, "frequent_inbound_channel": "voice"}
	for range 2 {
		out, err := em.Invoke(ctx, lambdatest.LoadEvent(t, "scheduled-traits-backfill"))
		if err != nil {
			t.Fatalf("invoke: %v\n%s", err, em.Output())
		}
		if !bytes.Equal(bytes.TrimSpace(out), []byte("null")) {
			t.Errorf("answer %s", out)
		}
		if v := values(); !reflect.DeepEqual(v, want) {
			t.Fatalf("after the backfill: %v, want %v", v, want)
		}
	}
}
