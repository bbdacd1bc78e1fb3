package profile

import (
	"encoding/json"
	"github.com/unifiedprofiles/up/shared/jsonappend"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/store"
)

// checkEventJSON holds appendEventJSON to json.Marshal: when it writes e, its bytes are
// Marshal's; it gives up only where Marshal fails or where wantOK allows; and eventItem
// stores Marshal's bytes either way.
func checkEventJSON(t *testing.T, e Event, wantOK bool) {
	t.Helper()
	want, err := json.Marshal(e)
	got, ok := appendEventJSON(nil, &e)
	switch {
	case ok && err != nil:
		t.Errorf("appendEventJSON wrote %s where json.Marshal fails (%v)", got, err)
	case ok && string(got) != string(want):
		t.Errorf("appendEventJSON\n got %s\nwant %s", got, want)
	case !ok && wantOK && err == nil:
		t.Errorf("appendEventJSON gave up on an event json.Marshal writes as %s", want)
	}
	if err != nil {
		return // eventItem panics, as store.JSONItem always did
	}
	sn := &snapshot{spaceID: "sp", now: time.Now()}
	m := message.Message{MessageID: e.MessageID, Type: e.Type, Event: e.Event, Name: e.Name, Timestamp: e.Timestamp,
		ReceivedAt: e.ReceivedAt, SourceID: e.SourceID, Properties: e.Properties, Raw: e.Raw}
	sn.cfg.defs.version = e.TraitsVersion
	if it := sn.eventItem(store.Key{PK: "p", SK: "s"}, m, e.Identifiers, e.Counted); string(it.Data) != string(want) {
		t.Errorf("eventItem stored\n     %s\nwant %s", it.Data, want)
	}
}

func TestEventJSONMatchesMarshal(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	base := func() Event {
		return Event{MessageID: "m-1", Type: "track", Event: "Product Viewed", Name: "Home", Timestamp: at, ReceivedAt: at,
			SourceID: "src_1", Properties: map[string]any{"sku": 412.0},
			Identifiers: []identity.Identifier{{Type: "user_id", Value: "u-1"}, {Type: "anonymous_id", Value: "a-1"}},
			Raw:         json.RawMessage(`{"type":"track"}`), TraitsVersion: 3, Counted: true}
	}
	with := func(f func(*Event)) Event { e := base(); f(&e); return e }
	nasty := "q\" b\\ <a href=\"x&y\"> \b\f\n\r\t \x00\x01\x1f\x7f é€😀 \u2028\u2029 bad:\xff\xe2\x80 end"
	zone := time.FixedZone("IST", 5*3600+30*60)
	cases := []struct {
		name string
		e    Event
		ok   bool // appendEventJSON writes it itself
	}{
		{"zero", Event{}, true},
		{"all fields", base(), true},
		{"nothing optional", with(func(e *Event) {
			e.Event, e.Name, e.SourceID, e.Properties, e.Identifiers, e.Raw, e.TraitsVersion, e.Counted = "", "", "", nil, nil, nil, 0, false
		}), true},
		{"empty, not nil", with(func(e *Event) {
			e.Properties, e.Identifiers, e.Raw = map[string]any{}, []identity.Identifier{}, json.RawMessage{}
		}), true},
		{"escapes in every string", with(func(e *Event) {
			e.MessageID, e.Type, e.Event, e.Name, e.SourceID = nasty, nasty, nasty, nasty, nasty
			e.Identifiers = []identity.Identifier{{Type: nasty, Value: nasty}}
			e.Properties = map[string]any{nasty: nasty}
		}), true},
		{"times in a zone, without nanoseconds", with(func(e *Event) {
			e.Timestamp, e.ReceivedAt = at.In(zone), time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)
		}), true},
		{"time past year 9999", with(func(e *Event) { e.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), false},
		{"negative traits version", with(func(e *Event) { e.TraitsVersion = -7 }), true},
		{"properties as decoded", with(func(e *Event) {
			e.Properties = map[string]any{"b": true, "B": false, "_": nil, "a": []any{1.0, "x", nil, []any{}, map[string]any{}},
				"nested": map[string]any{"z": map[string]any{"y": []any{map[string]any{"<k>": "&"}}}}, "nilmap": map[string]any(nil),
				"nilslice": []any(nil), "": "empty key"}
		}), true},
		{"floats", with(func(e *Event) {
			e.Properties = map[string]any{"0": 0.0, "-0": math.Copysign(0, -1), "a": 1e21, "b": 1e20, "c": 1e-6, "d": 1e-7,
				"e": 123456789.123, "f": 5e-324, "g": math.MaxFloat64, "h": -1.5e-9, "i": 100.0, "j": 0.1 + 0.2}
		}), true},
		{"NaN", with(func(e *Event) { e.Properties = map[string]any{"x": math.NaN()} }), false},
		{"infinity", with(func(e *Event) { e.Properties = map[string]any{"x": []any{math.Inf(-1)}} }), false},
		{"other types", with(func(e *Event) { // what json.Marshal writes
			e.Properties = map[string]any{"n": json.Number("12.50"), "i": 5, "s": []string{"a<"}, "m": map[string]int{"b": 1, "a": 2},
				"t": at, "p": &struct{ X string }{"<"}, "raw": json.RawMessage(` [ 1 ] `)}
		}), true},
		{"invalid json.Number", with(func(e *Event) { e.Properties = map[string]any{"n": json.Number("1x")} }), false},
		{"raw with whitespace and HTML", with(func(e *Event) {
			e.Raw = json.RawMessage(" {\n\t\"a\" : [ 1 , 2.5e-3 , true , false , null ] ,\r\n \"u\": \"x&y <z> \u2028\u2029 \\\" \\\\ \\u003c \\/ – …\" , \"e\":{ } } \n")
		}), true},
		{"raw scalar", with(func(e *Event) { e.Raw = json.RawMessage(` "a b" `) }), true},
		{"raw deep", with(func(e *Event) {
			e.Raw = json.RawMessage(strings.Repeat("[", jsonappend.MaxDepth) + strings.Repeat("]", jsonappend.MaxDepth))
		}), true},
		{"raw too deep for appendEventJSON", with(func(e *Event) {
			e.Raw = json.RawMessage(strings.Repeat("[", jsonappend.MaxDepth+1) + strings.Repeat("]", jsonappend.MaxDepth+1))
		}), false},
	}
	for _, raw := range []string{`{`, `{"a":}`, `{"a" 1}`, `{a:1}`, `[1,]`, `01`, `1.`, `-`, `1e`, `.5`, `tru`, `nul`, `{} x`, `{}{}`,
		"\"\x01\"", `"\x"`, `"\u12"`, `"\u12g4"`, `"abc`, ` `, `{"a":1,}`, `[`, `"\`} {
		cases = append(cases, struct {
			name string
			e    Event
			ok   bool
		}{"invalid raw " + raw, with(func(e *Event) { e.Raw = json.RawMessage(raw) }), false})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.ok {
				if _, ok := appendEventJSON(nil, &c.e); !ok {
					t.Errorf("appendEventJSON gave up; it should write this event itself")
				}
			}
			checkEventJSON(t, c.e, c.ok)
		})
	}
}

// appendEventJSON writes Event field by field: a field added to Event must be added there
// (and here).
func TestEventJSONKnowsEveryField(t *testing.T) {
	t.Parallel()
	want := []string{`json:"message_id"`, `json:"type"`, `json:"event,omitempty"`, `json:"name,omitempty"`, `json:"timestamp"`,
		`json:"received_at"`, `json:"source_id,omitempty"`, `json:"properties,omitempty"`, `json:"identifiers,omitempty"`,
		`json:"raw,omitempty"`, `json:"traits_version,omitempty"`, `json:"counted,omitempty"`}
	var got []string
	for f := range reflect.TypeFor[Event]().Fields() {
		got = append(got, string(f.Tag))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Event's fields changed: update appendEventJSON and this test\n got %q\nwant %q", got, want)
	}
	if reflect.TypeFor[identity.Identifier]().NumField() != 2 {
		t.Errorf("identity.Identifier's fields changed: update appendEventJSON")
	}
}

// FuzzEventJSONMatchesMarshal: for any strings, times, decoded properties and raw bytes,
// appendEventJSON writes exactly json.Marshal's bytes, and gives up only where json.Marshal
// fails (or nesting passes jsonappend.MaxDepth).
func FuzzEventJSONMatchesMarshal(f *testing.F) {
	f.Add("m-1", "track", "Product Viewed", "u-1", []byte(`{"sku":412,"price":19.99,"tags":["a","<b>"]}`),
		[]byte(`{"type":"track", "url":"/?a=1&b=2"}`), int64(1772359200), int64(123456789), 0, int64(3))
	f.Add("\x00\"\\<>&\u2028", "\xff\xfe", "", "é\xe2\x80", []byte(`{"x":1e-7,"y":-0,"z":1e21,"n":null}`),
		[]byte(" [ \"\u2029\" , {\"\\u003c\": false} ]\n"), int64(-62135596800), int64(0), 330, int64(0))
	f.Add("", "", "", "", []byte(`null`), []byte(`{"a":}`), int64(253402300800), int64(1), -60, int64(-1))
	f.Fuzz(func(t *testing.T, id, typ, event, value string, props, raw []byte, sec, nsec int64, zoneMinutes int, version int64) {
		at := time.Unix(sec, nsec).In(time.FixedZone("", zoneMinutes*60))
		e := Event{MessageID: id, Type: typ, Event: event, Name: value, Timestamp: at, ReceivedAt: at.UTC(), SourceID: value,
			Identifiers: []identity.Identifier{{Type: typ, Value: value}}, Raw: raw, TraitsVersion: version, Counted: version%2 == 0}
		json.Unmarshal(props, &e.Properties)
		// Shallower than jsonappend.MaxDepth (a level takes at least one byte): it writes them all.
		checkEventJSON(t, e, len(props) < jsonappend.MaxDepth && len(raw) < jsonappend.MaxDepth)
	})
}
