package traits

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
)

// Event is one resolved event of a profile as the traits see it: its name (a track call's
// event), properties, event time and message ID.
type Event struct {
	Name       string
	Properties map[string]any
	Time       time.Time
	ID         string
}

func invalid(field, format string, args ...any) error {
	return errcode.InvalidField(field, format, args...)
}

// Matches reports whether e counts for d: its name is d.Event (exact, case-sensitive) and
// every condition holds. It does not look at the property the trait reads: an event without
// it matches (and counts for an event_counter) but adds nothing to the other types.
func (d Definition) Matches(e Event) bool {
	if e.Name != d.Event {
		return false
	}
	for _, c := range d.Conditions {
		if !c.Holds(e.Properties) {
			return false
		}
	}
	return true
}

// Holds reports whether the condition holds on props (see Condition for each operator).
func (c Condition) Holds(props map[string]any) bool {
	v, present := lookup(props, c.Property)
	switch c.Op {
	case OpExists:
		return present && v != nil
	case OpEquals:
		return equals(v, present, c.Value)
	case OpNotEquals:
		return !equals(v, present, c.Value)
	case OpContains:
		want, ok := scalarString(c.Value)
		if !ok || !present {
			return false
		}
		switch x := v.(type) {
		case string:
			return strings.Contains(x, want)
		case []any:
			for _, el := range x {
				if s, ok := scalarString(el); ok && s == want {
					return true
				}
			}
		case []string:
			for _, s := range x {
				if s == want {
					return true
				}
			}
		}
		return false
	case OpLT, OpLTE, OpGT, OpGTE:
		a, ok1 := number(v)
		b, ok2 := number(c.Value)
		if !present || !ok1 || !ok2 {
			return false
		}
		switch c.Op {
		case OpLT:
			return a < b
		case OpLTE:
			return a <= b
		case OpGT:
			return a > b
		default:
			return a >= b
		}
	}
	return false
}

func equals(v any, present bool, want any) bool {
	if !present {
		return false
	}
	a, ok1 := scalarString(v)
	b, ok2 := scalarString(want)
	return ok1 && ok2 && a == b
}

// lookup finds name in props: the exact key first, then a dotted path through nested objects.
func lookup(props map[string]any, name string) (any, bool) {
	if v, ok := props[name]; ok {
		return v, true
	}
	if !strings.Contains(name, ".") {
		return nil, false
	}
	cur := props
	parts := strings.Split(name, ".")
	for i, p := range parts {
		v, ok := cur[p]
		if !ok {
			return nil, false
		}
		if i == len(parts)-1 {
			return v, true
		}
		next, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return nil, false
}

// number returns v as a finite float64 when it is a number or a numeric string.
func number(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int:
		f = float64(x)
	case int8:
		f = float64(x)
	case int16:
		f = float64(x)
	case int32:
		f = float64(x)
	case int64:
		f = float64(x)
	case uint:
		f = float64(x)
	case uint8:
		f = float64(x)
	case uint16:
		f = float64(x)
	case uint32:
		f = float64(x)
	case uint64:
		f = float64(x)
	case json.Number:
		return number(string(x))
	case string:
		p, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, false
		}
		f = p
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// scalarString returns the string form of a scalar: a string as is, a number in its shortest
// decimal form (2.0 → "2"), a boolean as "true"/"false". Null, arrays and objects are not
// scalars.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case nil:
		return "", false
	}
	if f, ok := number(v); ok {
		return strconv.FormatFloat(f, 'f', -1, 64), true
	}
	return "", false
}

// valueString is the form a property value takes in most_frequent and unique lists: the
// scalar string form, or the compact JSON of an array or object. Null has none.
func valueString(v any) (string, bool) {
	if s, ok := scalarString(v); ok {
		return s, true
	}
	if v == nil {
		return "", false
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// normalize returns v as it reads back from JSON (numbers as float64, objects as
// map[string]any, arrays as []any), so a State's value is the same before and after a round
// trip. ok is false for null and for values JSON cannot carry.
func normalize(v any) (any, bool) {
	switch x := v.(type) {
	case nil:
		return nil, false
	case string, bool:
		return x, true
	}
	if f, ok := number(v); ok {
		return f, true
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil || out == nil {
		return nil, false
	}
	return out, true
}
