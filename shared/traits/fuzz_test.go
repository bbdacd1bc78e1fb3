package traits

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzDefinition: a posted definition either fails validation naming a field, or is a trait
// whose state takes any event, survives a JSON round trip (it is stored on the profile) and
// gives the same value after it.
func FuzzDefinition(f *testing.F) {
	f.Add([]byte(`{"key":"total_inbounds","type":"event_counter","event":"Flex - Engagement Initiated","conditions":[{"property":"direction","op":"equals","value":"inbound"}]}`),
		[]byte(`{"direction":"inbound","channelType":"sms"}`))
	f.Add([]byte(`{"key":"spend","type":"aggregation","aggregate":"avg","event":"Order","property":"order.total","window_days":7}`),
		[]byte(`{"order":{"total":"12.5"}}`))
	f.Add([]byte(`{"key":"fav","type":"most_frequent","event":"e","property":"p","min_frequency":2,"conditions":[{"property":"n","op":"gte","value":3}]}`),
		[]byte(`{"p":["a",1],"n":"3"}`))
	f.Add([]byte(`{"key":"l","type":"unique_list","event":"e","property":"p","conditions":[{"property":"tags","op":"contains","value":"vip"}]}`),
		[]byte(`{"p":true,"tags":["vip"]}`))
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, def, props []byte) {
		var d Definition
		if json.Unmarshal(def, &d) != nil {
			return
		}
		if err := d.Validate(); err != nil {
			if err.Error() == "" {
				t.Fatal("a refusal without a reason")
			}
			return
		}
		var p map[string]any
		if json.Unmarshal(props, &p) != nil {
			return
		}
		var s State
		for i := range 3 {
			s.Add(d, Event{Name: d.Event, Properties: p, Time: now.Add(-time.Duration(i) * 36 * time.Hour), ID: string(rune('a' + i))})
		}
		want, wantOK := s.Value(d, now)
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got, gotOK := back.Value(d, now)
		if gotOK != wantOK || !reflect.DeepEqual(normal(got), normal(want)) {
			t.Fatalf("value %v (%v) before the round trip, %v (%v) after", want, wantOK, got, gotOK)
		}
	})
}

// normal compares values as they read back from JSON.
func normal(v any) any {
	b, _ := json.Marshal(v)
	var out any
	json.Unmarshal(b, &out)
	return out
}
