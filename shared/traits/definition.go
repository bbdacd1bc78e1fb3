// Package traits holds computed-trait definitions and their incremental state. It is a pure
// domain package: it knows nothing of storage, AWS or HTTP. A Definition says what to compute
// (an event counter, an aggregation, the most frequent value, …) over which events; a State
// is what one profile keeps for one trait so that each new event updates the value in O(1)
// without rescanning history, windowed values age out as time passes, and the states of two
// merged profiles combine into the state the merged profile would have had.
package traits

import (
	"fmt"
	"regexp"

	"github.com/unifiedprofiles/up/shared/errcode"
)

// Trait types.
const (
	EventCounter    = "event_counter"     // number of matching events (int)
	Aggregation     = "aggregation"       // sum, avg, min or max of a numeric property (float64)
	MostFrequent    = "most_frequent"     // the most frequent property value (string)
	First           = "first"             // the property value of the earliest matching event
	Last            = "last"              // the property value of the latest matching event
	UniqueList      = "unique_list"       // the sorted distinct property values ([]string)
	UniqueListCount = "unique_list_count" // the number of distinct property values (int)
)

// Aggregates of an aggregation trait.
const (
	Sum = "sum"
	Avg = "avg"
	Min = "min"
	Max = "max"
)

// Condition operators.
const (
	OpEquals    = "equals"
	OpNotEquals = "not_equals"
	OpContains  = "contains"
	OpExists    = "exists"
	OpLT        = "lt"
	OpLTE       = "lte"
	OpGT        = "gt"
	OpGTE       = "gte"
)

// Limits of a definition.
const (
	MaxKeyLen       = 100
	MaxEventLen     = 200
	MaxPropertyLen  = 200
	MaxConditions   = 20
	MaxWindowDays   = 3650
	MaxMinFrequency = 1_000_000
)

// Preset names accepted by Preset.
const (
	PresetTotalInbounds          = "total_inbounds"
	PresetFrequentInboundChannel = "frequent_inbound_channel"
)

// FlexEngagementInitiated is the event Flex sends when an agent takes an interaction
// (PRODUCT.md section 7); both presets count it.
const FlexEngagementInitiated = "Flex - Engagement Initiated"

// Condition is a test on one event property; a Definition's conditions must all hold.
//
//   - equals / not_equals compare scalars (string, number, bool) by their string form, so 2,
//     2.0 and "2" are equal; not_equals is the exact negation of equals (it holds when the
//     property is missing, null or not a scalar).
//   - contains is a substring test when the property is a string and a membership test (by
//     string form) when it is an array; false otherwise.
//   - exists holds when the property is present and not null; Value is ignored.
//   - lt, lte, gt, gte compare numerically: both sides must be numbers or numeric strings
//     (finite), otherwise the condition is false.
//
// Property names a key of the event's properties; when no key has that exact name, a dotted
// name ("order.total") walks nested objects.
type Condition struct {
	Property string `json:"property"`
	Op       string `json:"op"`
	Value    any    `json:"value,omitempty"`
}

// Definition is a computed trait: what to compute (Type) over which events (Event and
// Conditions) and how far back (WindowDays, 0 meaning all time). The JSON form is the one the
// HTTP API accepts: {"key","type","event","property","aggregate","min_frequency",
// "conditions":[{"property","op","value"}],"window_days"}.
//
// Property is the event property the trait reads; every type but event_counter needs it.
// Aggregate (sum, avg, min, max) is for aggregation only; MinFrequency for most_frequent only
// (0 means 1).
type Definition struct {
	Key          string      `json:"key"`
	Type         string      `json:"type"`
	Event        string      `json:"event"`
	Property     string      `json:"property,omitempty"`
	Aggregate    string      `json:"aggregate,omitempty"`
	MinFrequency int         `json:"min_frequency,omitempty"`
	Conditions   []Condition `json:"conditions,omitempty"`
	WindowDays   int         `json:"window_days,omitempty"`
}

var keyPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// needsProperty reports whether a trait type reads a property.
func needsProperty(typ string) bool {
	switch typ {
	case Aggregation, MostFrequent, First, Last, UniqueList, UniqueListCount:
		return true
	}
	return false
}

// Validate checks d and returns the first fault as an *errcode.Error of kind Invalid and code
// invalid_field whose Field is the JSON path at fault ("key", "conditions[1].op", …).
// The key is lowercase snake_case (a letter, then letters, digits, underscores), 1–100
// characters; the type, the event and, where the type needs it, the property are required.
func (d Definition) Validate() error {
	switch {
	case d.Key == "":
		return invalid("key", "is required")
	case len(d.Key) > MaxKeyLen:
		return invalid("key", "is longer than %d characters", MaxKeyLen)
	case !keyPattern.MatchString(d.Key):
		return invalid("key", "%q must be snake_case: a lowercase letter, then lowercase letters, digits or underscores", d.Key)
	}
	switch d.Type {
	case EventCounter, Aggregation, MostFrequent, First, Last, UniqueList, UniqueListCount:
	case "":
		return invalid("type", "is required (one of event_counter, aggregation, most_frequent, first, last, unique_list, unique_list_count)")
	default:
		return invalid("type", "%q is not one of event_counter, aggregation, most_frequent, first, last, unique_list, unique_list_count", errcode.Clip(d.Type))
	}
	if d.Event == "" {
		return invalid("event", "is required: the name of the event the trait is computed over")
	}
	if len(d.Event) > MaxEventLen {
		return invalid("event", "is longer than %d characters", MaxEventLen)
	}
	if needsProperty(d.Type) && d.Property == "" {
		return invalid("property", "is required for a %s trait", d.Type)
	}
	if len(d.Property) > MaxPropertyLen {
		return invalid("property", "is longer than %d characters", MaxPropertyLen)
	}
	if d.Type == Aggregation {
		switch d.Aggregate {
		case Sum, Avg, Min, Max:
		case "":
			return invalid("aggregate", "is required for an aggregation trait (sum, avg, min or max)")
		default:
			return invalid("aggregate", "%q is not one of sum, avg, min, max", errcode.Clip(d.Aggregate))
		}
	} else if d.Aggregate != "" {
		return invalid("aggregate", "only applies to aggregation traits")
	}
	if d.MinFrequency < 0 || d.MinFrequency > MaxMinFrequency {
		return invalid("min_frequency", "must be between 0 and %d", MaxMinFrequency)
	}
	if d.MinFrequency != 0 && d.Type != MostFrequent {
		return invalid("min_frequency", "only applies to most_frequent traits")
	}
	if d.WindowDays < 0 || d.WindowDays > MaxWindowDays {
		return invalid("window_days", "must be between 0 (all time) and %d", MaxWindowDays)
	}
	if len(d.Conditions) > MaxConditions {
		return invalid("conditions", "at most %d conditions", MaxConditions)
	}
	for i, c := range d.Conditions {
		if err := c.validate(fmt.Sprintf("conditions[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (c Condition) validate(path string) error {
	if c.Property == "" {
		return invalid(path+".property", "is required")
	}
	if len(c.Property) > MaxPropertyLen {
		return invalid(path+".property", "is longer than %d characters", MaxPropertyLen)
	}
	switch c.Op {
	case OpExists:
		return nil
	case OpEquals, OpNotEquals, OpContains:
		if _, ok := scalarString(c.Value); !ok {
			return invalid(path+".value", "must be a string, number or boolean for %s", c.Op)
		}
	case OpLT, OpLTE, OpGT, OpGTE:
		if _, ok := number(c.Value); !ok {
			return invalid(path+".value", "must be a number for %s", c.Op)
		}
	case "":
		return invalid(path+".op", "is required (one of equals, not_equals, contains, exists, lt, lte, gt, gte)")
	default:
		return invalid(path+".op", "%q is not one of equals, not_equals, contains, exists, lt, lte, gt, gte", errcode.Clip(c.Op))
	}
	return nil
}

// Preset returns a predefined trait (PRODUCT.md section 7):
//
//   - "total_inbounds": event_counter of "Flex - Engagement Initiated" where direction
//     equals "inbound", all time;
//   - "frequent_inbound_channel": most_frequent channelType of "Flex - Engagement
//     Initiated" where direction equals "inbound", minimum frequency 2, all time.
//
// An unknown name is an invalid_field error on "preset".
func Preset(name string) (Definition, error) {
	inbound := []Condition{{Property: "direction", Op: OpEquals, Value: "inbound"}}
	switch name {
	case PresetTotalInbounds:
		return Definition{Key: PresetTotalInbounds, Type: EventCounter, Event: FlexEngagementInitiated, Conditions: inbound}, nil
	case PresetFrequentInboundChannel:
		return Definition{Key: PresetFrequentInboundChannel, Type: MostFrequent, Event: FlexEngagementInitiated,
			Property: "channelType", MinFrequency: 2, Conditions: inbound}, nil
	}
	return Definition{}, invalid("preset", "%q is not a preset (total_inbounds or frequent_inbound_channel)", errcode.Clip(name))
}
