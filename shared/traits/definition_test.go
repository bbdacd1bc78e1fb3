package traits

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/errcode"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := Definition{Key: "orders_total", Type: Aggregation, Event: "Order Completed", Property: "total", Aggregate: Sum,
		Conditions: []Condition{{Property: "currency", Op: OpEquals, Value: "EUR"}, {Property: "total", Op: OpGT, Value: 0}},
		WindowDays: 30}
	with := func(f func(*Definition)) Definition {
		d := ok
		d.Conditions = append([]Condition(nil), ok.Conditions...)
		f(&d)
		return d
	}
	tests := []struct {
		name  string
		def   Definition
		field string // "" = valid
	}{
		{"valid aggregation", ok, ""},
		{"valid counter without property", Definition{Key: "logins", Type: EventCounter, Event: "Logged In"}, ""},
		{"valid most frequent", Definition{Key: "fav", Type: MostFrequent, Event: "E", Property: "p", MinFrequency: 3}, ""},
		{"valid exists without value", with(func(d *Definition) { d.Conditions = []Condition{{Property: "x", Op: OpExists}} }), ""},
		{"valid 100-char key", with(func(d *Definition) { d.Key = "a" + strings.Repeat("b", 99) }), ""},
		{"missing key", with(func(d *Definition) { d.Key = "" }), "key"},
		{"long key", with(func(d *Definition) { d.Key = "a" + strings.Repeat("b", 100) }), "key"},
		{"key with space", with(func(d *Definition) { d.Key = "orders total" }), "key"},
		{"key uppercase", with(func(d *Definition) { d.Key = "OrdersTotal" }), "key"},
		{"key starting with digit", with(func(d *Definition) { d.Key = "1orders" }), "key"},
		{"missing type", with(func(d *Definition) { d.Type = "" }), "type"},
		{"unknown type", with(func(d *Definition) { d.Type = "median" }), "type"},
		{"missing event", with(func(d *Definition) { d.Event = "" }), "event"},
		{"long event", with(func(d *Definition) { d.Event = strings.Repeat("e", 201) }), "event"},
		{"aggregation without property", with(func(d *Definition) { d.Property = "" }), "property"},
		{"first without property", Definition{Key: "k", Type: First, Event: "E"}, "property"},
		{"unique list without property", Definition{Key: "k", Type: UniqueList, Event: "E"}, "property"},
		{"missing aggregate", with(func(d *Definition) { d.Aggregate = "" }), "aggregate"},
		{"unknown aggregate", with(func(d *Definition) { d.Aggregate = "median" }), "aggregate"},
		{"aggregate on counter", Definition{Key: "k", Type: EventCounter, Event: "E", Aggregate: Sum}, "aggregate"},
		{"negative min frequency", Definition{Key: "k", Type: MostFrequent, Event: "E", Property: "p", MinFrequency: -1}, "min_frequency"},
		{"min frequency on counter", Definition{Key: "k", Type: EventCounter, Event: "E", MinFrequency: 2}, "min_frequency"},
		{"negative window", with(func(d *Definition) { d.WindowDays = -1 }), "window_days"},
		{"huge window", with(func(d *Definition) { d.WindowDays = MaxWindowDays + 1 }), "window_days"},
		{"too many conditions", with(func(d *Definition) { d.Conditions = make([]Condition, MaxConditions+1) }), "conditions"},
		{"condition without property", with(func(d *Definition) { d.Conditions[1].Property = "" }), "conditions[1].property"},
		{"condition without op", with(func(d *Definition) { d.Conditions[1].Op = "" }), "conditions[1].op"},
		{"condition unknown op", with(func(d *Definition) { d.Conditions[1].Op = "like" }), "conditions[1].op"},
		{"numeric op with text", with(func(d *Definition) { d.Conditions[1].Value = "many" }), "conditions[1].value"},
		{"numeric op without value", with(func(d *Definition) { d.Conditions[1].Value = nil }), "conditions[1].value"},
		{"equals without value", with(func(d *Definition) { d.Conditions[0].Value = nil }), "conditions[0].value"},
		{"equals with array", with(func(d *Definition) { d.Conditions[0].Value = []any{"a"} }), "conditions[0].value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.def.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			e := errcode.As(err)
			if e == nil {
				t.Fatalf("Validate() = %v, want an *errcode.Error on %q", err, tt.field)
			}
			if e.Kind != errcode.Invalid || e.Code != "invalid_field" || e.Field != tt.field {
				t.Fatalf("Validate() = kind %v code %q field %q (%s), want Invalid invalid_field %q", e.Kind, e.Code, e.Field, e.Message, tt.field)
			}
		})
	}
}

func TestPreset(t *testing.T) {
	t.Parallel()
	inbound := []Condition{{Property: "direction", Op: "equals", Value: "inbound"}}
	tests := []struct {
		name string
		want Definition
	}{
		{"total_inbounds", Definition{Key: "total_inbounds", Type: "event_counter", Event: "Flex - Engagement Initiated", Conditions: inbound}},
		{"frequent_inbound_channel", Definition{Key: "frequent_inbound_channel", Type: "most_frequent", Event: "Flex - Engagement Initiated",
			Property: "channelType", MinFrequency: 2, Conditions: inbound}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Preset(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Preset(%q) = %+v, want %+v", tt.name, got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("preset does not validate: %v", err)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		_, err := Preset("total_outbounds")
		if e := errcode.As(err); e == nil || e.Code != "invalid_field" || e.Field != "preset" || e.Kind != errcode.Invalid {
			t.Fatalf("Preset(unknown) = %v, want invalid_field on preset", err)
		}
	})
}

func TestDefinitionJSON(t *testing.T) {
	t.Parallel()
	in := `{"key":"big_orders","type":"aggregation","event":"Order Completed","property":"total","aggregate":"max",
		"conditions":[{"property":"total","op":"gte","value":100}],"window_days":7}`
	var d Definition
	if err := json.Unmarshal([]byte(in), &d); err != nil {
		t.Fatal(err)
	}
	want := Definition{Key: "big_orders", Type: Aggregation, Event: "Order Completed", Property: "total", Aggregate: Max,
		Conditions: []Condition{{Property: "total", Op: OpGTE, Value: float64(100)}}, WindowDays: 7}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("decoded %+v, want %+v", d, want)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConditions(t *testing.T) {
	t.Parallel()
	props := map[string]any{
		"direction": "inbound",
		"duration":  float64(42),
		"count":     7,
		"numstr":    " 12.5 ",
		"word":      "twelve",
		"flag":      true,
		"nothing":   nil,
		"tags":      []any{"vip", "b2b", float64(3)},
		"strs":      []string{"x", "y"},
		"order":     map[string]any{"total": 99.5, "currency": "EUR"},
		"order.id":  "flat-key",
	}
	tests := []struct {
		name string
		c    Condition
		want bool
	}{
		{"equals string", Condition{"direction", OpEquals, "inbound"}, true},
		{"equals is case-sensitive", Condition{"direction", OpEquals, "Inbound"}, false},
		{"equals other", Condition{"direction", OpEquals, "outbound"}, false},
		{"equals number by string form", Condition{"duration", OpEquals, "42"}, true},
		{"equals number to number", Condition{"count", OpEquals, 7.0}, true},
		{"equals bool", Condition{"flag", OpEquals, "true"}, true},
		{"equals missing", Condition{"missing", OpEquals, "x"}, false},
		{"equals null", Condition{"nothing", OpEquals, "null"}, false},
		{"equals array is not scalar", Condition{"tags", OpEquals, "vip"}, false},
		{"not_equals other", Condition{"direction", OpNotEquals, "outbound"}, true},
		{"not_equals same", Condition{"direction", OpNotEquals, "inbound"}, false},
		{"not_equals missing", Condition{"missing", OpNotEquals, "x"}, true},
		{"contains substring", Condition{"direction", OpContains, "bound"}, true},
		{"contains no substring", Condition{"direction", OpContains, "out"}, false},
		{"contains array member", Condition{"tags", OpContains, "vip"}, true},
		{"contains array number member", Condition{"tags", OpContains, 3}, true},
		{"contains array no member", Condition{"tags", OpContains, "vi"}, false},
		{"contains []string member", Condition{"strs", OpContains, "y"}, true},
		{"contains on number", Condition{"duration", OpContains, "4"}, false},
		{"contains missing", Condition{"missing", OpContains, "x"}, false},
		{"exists present", Condition{"direction", OpExists, nil}, true},
		{"exists false bool", Condition{"flag", OpExists, nil}, true},
		{"exists null", Condition{"nothing", OpExists, nil}, false},
		{"exists missing", Condition{"missing", OpExists, nil}, false},
		{"lt true", Condition{"duration", OpLT, 43}, true},
		{"lt equal", Condition{"duration", OpLT, 42}, false},
		{"lte equal", Condition{"duration", OpLTE, 42}, true},
		{"gt true", Condition{"duration", OpGT, 41.5}, true},
		{"gt false", Condition{"duration", OpGT, 42}, false},
		{"gte equal", Condition{"duration", OpGTE, "42"}, true},
		{"gt int property", Condition{"count", OpGT, 6}, true},
		{"numeric string property", Condition{"numstr", OpGT, 12}, true},
		{"non-numeric string property", Condition{"word", OpGT, 0}, false},
		{"numeric on bool", Condition{"flag", OpGTE, 0}, false},
		{"numeric on missing", Condition{"missing", OpLT, 100}, false},
		{"numeric on null", Condition{"nothing", OpLT, 100}, false},
		{"dotted path", Condition{"order.total", OpLT, 100}, true},
		{"dotted path string", Condition{"order.currency", OpEquals, "EUR"}, true},
		{"exact key wins over path", Condition{"order.id", OpEquals, "flat-key"}, true},
		{"dotted path missing", Condition{"order.missing", OpExists, nil}, false},
		{"dotted path through scalar", Condition{"direction.x", OpExists, nil}, false},
		{"unknown op", Condition{"direction", "like", "in"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.c.Holds(props); got != tt.want {
				t.Fatalf("%+v.Holds = %v, want %v", tt.c, got, tt.want)
			}
		})
	}
}

func TestMatchesAllConditions(t *testing.T) {
	t.Parallel()
	d := Definition{Key: "k", Type: EventCounter, Event: "Order Completed", Conditions: []Condition{
		{Property: "currency", Op: OpEquals, Value: "EUR"},
		{Property: "total", Op: OpGTE, Value: 10},
	}}
	tests := []struct {
		name string
		e    Event
		want bool
	}{
		{"all hold", Event{Name: "Order Completed", Properties: map[string]any{"currency": "EUR", "total": 10}}, true},
		{"one fails", Event{Name: "Order Completed", Properties: map[string]any{"currency": "EUR", "total": 9}}, false},
		{"other event", Event{Name: "Order Placed", Properties: map[string]any{"currency": "EUR", "total": 10}}, false},
		{"nil properties", Event{Name: "Order Completed"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := d.Matches(tt.e); got != tt.want {
				t.Fatalf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
	if !(Definition{Event: "E"}).Matches(Event{Name: "E"}) {
		t.Fatal("a definition without conditions must match its event")
	}
}
