package traits

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// at returns t0 plus h hours.
func at(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }

// build adds events to a fresh state.
func build(d Definition, events []Event) State {
	var s State
	for _, e := range events {
		s.Add(d, e)
	}
	return s
}

func ev(id string, h float64, props map[string]any) Event {
	return Event{Name: "E", ID: id, Time: at(h), Properties: props}
}

func TestTypes(t *testing.T) {
	t.Parallel()
	events := []Event{
		ev("1", 0, map[string]any{"v": 10, "c": "red", "ok": true}),
		ev("2", 1, map[string]any{"v": "2.5", "c": "blue", "ok": true}),
		ev("3", 2, map[string]any{"v": "n/a", "c": "red", "ok": true}),
		ev("4", -5, map[string]any{"v": -4.0, "c": "green", "ok": true}),                       // earliest, arrives late
		ev("5", 3, map[string]any{"v": nil, "c": nil, "ok": true}),                             // null values add nothing
		ev("6", 4, map[string]any{"v": 100, "c": "red", "ok": false}),                          // fails the condition
		{Name: "Other", ID: "7", Time: at(5), Properties: map[string]any{"v": 1000, "c": "x"}}, // other event
		ev("8", 2.5, map[string]any{"c": []any{"a", "b"}, "ok": true}),                         // array value
		ev("9", 2.75, map[string]any{"c": 3.0, "ok": true}),                                    // numeric value
	}
	cond := []Condition{{Property: "ok", Op: OpEquals, Value: true}}
	def := func(typ, prop, agg string) Definition {
		return Definition{Key: "k", Type: typ, Event: "E", Property: prop, Aggregate: agg, Conditions: cond}
	}
	tests := []struct {
		name   string
		d      Definition
		events []Event
		want   any
		ok     bool
	}{
		{"counter", def(EventCounter, "", ""), events, 7, true},
		{"counter empty", def(EventCounter, "", ""), nil, 0, true},
		{"sum", def(Aggregation, "v", Sum), events, 8.5, true},
		{"avg", def(Aggregation, "v", Avg), events, 8.5 / 3, true},
		{"min", def(Aggregation, "v", Min), events, -4.0, true},
		{"max", def(Aggregation, "v", Max), events, 10.0, true},
		{"sum of no numbers", def(Aggregation, "v", Sum), events[2:3], nil, false},
		{"avg empty", def(Aggregation, "v", Avg), nil, nil, false},
		{"most frequent", def(MostFrequent, "c", ""), events, "red", true},
		{"most frequent empty", def(MostFrequent, "c", ""), nil, nil, false},
		{"first by event time", def(First, "c", ""), events, "green", true},
		{"last by event time", def(Last, "c", ""), events, 3.0, true},
		{"last array value", def(Last, "c", ""), events[:8], []any{"a", "b"}, true},
		{"first int normalised", def(First, "v", ""), events[:1], 10.0, true},
		{"first empty", def(First, "c", ""), nil, nil, false},
		{"last only null", def(Last, "c", ""), events[4:5], nil, false},
		{"unique list", def(UniqueList, "c", ""), events, []string{"3", `["a","b"]`, "blue", "green", "red"}, true},
		{"unique list empty", def(UniqueList, "c", ""), nil, []string{}, true},
		{"unique list count", def(UniqueListCount, "c", ""), events, 5, true},
		{"unique list count empty", def(UniqueListCount, "c", ""), nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.d.Validate(); err != nil {
				t.Fatal(err)
			}
			s := build(tt.d, tt.events)
			got, ok := s.Value(tt.d, at(10))
			if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Value = %#v, %v; want %#v, %v", got, ok, tt.want, tt.ok)
			}
			// Reverse order gives the same value.
			rev := make([]Event, len(tt.events))
			for i, e := range tt.events {
				rev[len(rev)-1-i] = e
			}
			r := build(tt.d, rev)
			if got2, ok2 := r.Value(tt.d, at(10)); ok2 != ok || !reflect.DeepEqual(got2, got) {
				t.Fatalf("reversed order: Value = %#v, %v; want %#v, %v", got2, ok2, got, ok)
			}
		})
	}
}

func TestNonMatchingEventsLeaveNoTrace(t *testing.T) {
	t.Parallel()
	d := Definition{Key: "k", Type: Aggregation, Event: "E", Property: "v", Aggregate: Sum, WindowDays: 3}
	var s State
	s.Add(d, Event{Name: "Other", Time: t0, Properties: map[string]any{"v": 1}})
	s.Add(d, Event{Name: "E", Time: t0, Properties: map[string]any{"v": "abc"}})
	s.Add(d, Event{Name: "E", Time: t0, Properties: map[string]any{}})
	if !reflect.DeepEqual(s, State{}) {
		t.Fatalf("state = %+v, want empty", s)
	}
}

func flex(id string, h float64, channel, direction string) Event {
	return Event{Name: FlexEngagementInitiated, ID: id, Time: at(h), Properties: map[string]any{
		"channelType": channel, "direction": direction, "duration": 60, "interactionSid": "KD" + id,
	}}
}

func TestPresetsOnFlexStream(t *testing.T) {
	t.Parallel()
	total, _ := Preset(PresetTotalInbounds)
	freq, _ := Preset(PresetFrequentInboundChannel)
	completed := Event{Name: "Flex - Engagement Completed", ID: "c", Time: at(0), Properties: map[string]any{"interactionSid": "KD1", "direction": "inbound", "channelType": "voice"}}
	tests := []struct {
		name      string
		events    []Event
		wantTotal int
		wantFreq  any // nil = none
	}{
		{"nothing", nil, 0, nil},
		{"one inbound is below minimum frequency", []Event{flex("1", 0, "voice", "inbound")}, 1, nil},
		{"outbound does not count", []Event{
			flex("1", 0, "voice", "inbound"), flex("2", 1, "voice", "outbound"), flex("3", 2, "voice", "outbound"),
			flex("4", 3, "sms", "outbound"), completed,
		}, 1, nil},
		{"two inbound voice reach the minimum", []Event{
			flex("1", 0, "voice", "inbound"), flex("2", 1, "voice", "inbound"), flex("3", 2, "whatsapp", "inbound"),
		}, 3, "voice"},
		{"outbound sms do not make sms frequent", []Event{
			flex("1", 0, "voice", "inbound"), flex("2", 1, "voice", "inbound"),
			flex("3", 2, "sms", "outbound"), flex("4", 3, "sms", "outbound"), flex("5", 4, "sms", "inbound"),
		}, 3, "voice"},
		{"tie: most recently seen wins (whatsapp)", []Event{
			flex("1", 0, "voice", "inbound"), flex("2", 1, "whatsapp", "inbound"), flex("3", 2, "voice", "inbound"),
			flex("4", 3, "whatsapp", "inbound"), flex("5", 4, "sms", "inbound"),
		}, 5, "whatsapp"},
		{"tie: most recently seen wins (voice), whatever the arrival order", []Event{
			flex("4", 5, "voice", "inbound"), flex("1", 0, "whatsapp", "inbound"), flex("3", 2, "whatsapp", "inbound"),
			flex("2", 1, "voice", "inbound"), flex("9", 6, "voice", "outbound"),
		}, 4, "voice"},
		{"tie: at the same instant, the smaller string", []Event{
			flex("1", 0, "voice", "inbound"), flex("2", 0, "sms", "inbound"), flex("3", 1, "voice", "inbound"), flex("4", 1, "sms", "inbound"),
		}, 4, "sms"},
		{"higher count beats recency", []Event{
			flex("1", 0, "sms", "inbound"), flex("2", 1, "sms", "inbound"), flex("3", 2, "sms", "inbound"),
			flex("4", 3, "voice", "inbound"), flex("5", 4, "voice", "inbound"),
		}, 5, "sms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := build(total, tt.events)
			if got, ok := ts.Value(total, at(100)); !ok || got != tt.wantTotal {
				t.Fatalf("total_inbounds = %v, %v; want %d", got, ok, tt.wantTotal)
			}
			fs := build(freq, tt.events)
			got, ok := fs.Value(freq, at(100))
			if tt.wantFreq == nil {
				if ok {
					t.Fatalf("frequent_inbound_channel = %v, want none", got)
				}
				return
			}
			if !ok || got != tt.wantFreq {
				t.Fatalf("frequent_inbound_channel = %v, %v; want %v", got, ok, tt.wantFreq)
			}
		})
	}
}

func TestPresetsAcrossMerge(t *testing.T) {
	t.Parallel()
	total, _ := Preset(PresetTotalInbounds)
	freq, _ := Preset(PresetFrequentInboundChannel)
	// Profile A called once by voice and once by SMS; profile B once by SMS, and an outbound voice.
	a := []Event{flex("1", 0, "voice", "inbound"), flex("2", 1, "sms", "inbound")}
	b := []Event{flex("3", 2, "sms", "inbound"), flex("4", 3, "voice", "outbound")}
	for _, d := range []Definition{total, freq} {
		sa, sb := build(d, a), build(d, b)
		if d.Type == MostFrequent {
			if v, ok := sa.Value(d, at(10)); ok {
				t.Fatalf("A alone: %v, want none", v)
			}
		}
		sa.Merge(sb)
		got, ok := sa.Value(d, at(10))
		want := any(3)
		if d.Type == MostFrequent {
			want = "sms"
		}
		if !ok || got != want {
			t.Fatalf("%s after merge = %v, %v; want %v", d.Key, got, ok, want)
		}
	}
}

func TestWindowAgesOut(t *testing.T) {
	t.Parallel()
	day := func(n int, h float64) time.Time {
		return time.Date(2026, 3, 1+n, 0, 0, 0, 0, time.UTC).Add(time.Duration(h * float64(time.Hour)))
	}
	mk := func(id string, tm time.Time, ch, dir string) Event {
		e := flex(id, 0, ch, dir)
		e.Time = tm
		return e
	}
	total, _ := Preset(PresetTotalInbounds)
	total.WindowDays = 7
	freq, _ := Preset(PresetFrequentInboundChannel)
	freq.WindowDays = 7
	events := []Event{
		mk("1", day(0, 9), "voice", "inbound"),
		mk("2", day(0, 10), "voice", "inbound"),
		mk("3", day(3, 10), "sms", "inbound"),
		mk("4", day(5, 23.5), "sms", "inbound"),
		mk("5", day(5, 23.9), "voice", "outbound"),
	}
	tests := []struct {
		now       time.Time
		wantTotal int
		wantFreq  any
	}{
		{day(5, 23.95), 4, "sms"}, // voice ×2 on day 0, sms ×2 more recent: tie → sms
		{day(7, 8), 4, "sms"},     // day 0 is 7 days ago: still in
		{day(7, 23), 4, "sms"},
		{day(8, 0), 2, "sms"},   // day 0 aged out
		{day(10, 12), 2, "sms"}, // day 3 is exactly 7 days before day 10
		{day(11, 0), 1, nil},    // day 3 aged out: one sms left, below the minimum
		{day(12, 23.9), 1, nil},
		{day(13, 0), 0, nil}, // everything aged out
	}
	for _, tt := range tests {
		t.Run(tt.now.Format(time.RFC3339), func(t *testing.T) {
			t.Parallel()
			for _, prune := range []bool{false, true} {
				ts, fs := build(total, events), build(freq, events)
				if prune {
					ts.Prune(total, tt.now)
					fs.Prune(freq, tt.now)
				}
				if got, ok := ts.Value(total, tt.now); !ok || got != tt.wantTotal {
					t.Fatalf("prune=%v total = %v, %v; want %d", prune, got, ok, tt.wantTotal)
				}
				got, ok := fs.Value(freq, tt.now)
				if tt.wantFreq == nil && ok || tt.wantFreq != nil && (!ok || got != tt.wantFreq) {
					t.Fatalf("prune=%v frequent = %v, %v; want %v", prune, got, ok, tt.wantFreq)
				}
				if prune && len(fs.Days) > freq.WindowDays+1 {
					t.Fatalf("%d buckets after Prune, want at most %d", len(fs.Days), freq.WindowDays+1)
				}
			}
		})
	}
	// All-time traits ignore now.
	all, _ := Preset(PresetTotalInbounds)
	s := build(all, events)
	s.Prune(all, day(1000, 0))
	if got, _ := s.Value(all, day(1000, 0)); got != 4 {
		t.Fatalf("all-time total = %v, want 4", got)
	}
}

func TestPruneBound(t *testing.T) {
	t.Parallel()
	d := Definition{Key: "k", Type: UniqueList, Event: "E", Property: "v", WindowDays: 5}
	var s State
	now := t0
	for i := range 24 * 60 { // one event an hour for 60 days, pruning as time goes
		now = t0.Add(time.Duration(i) * time.Hour)
		s.Add(d, Event{Name: "E", Time: now, Properties: map[string]any{"v": i % 7}})
		s.Prune(d, now)
		if len(s.Days) > d.WindowDays+1 {
			t.Fatalf("after %d events: %d buckets, want at most %d", i+1, len(s.Days), d.WindowDays+1)
		}
	}
	if got, _ := s.Value(d, now); !reflect.DeepEqual(got, []string{"0", "1", "2", "3", "4", "5", "6"}) {
		t.Fatalf("value = %v", got)
	}
	s.Prune(d, now.AddDate(0, 0, 30))
	if s.Days != nil {
		t.Fatalf("everything aged out, still %d buckets", len(s.Days))
	}
}

// allDefinitions returns one definition of every type and aggregate, all time and windowed.
func allDefinitions() []Definition {
	cond := []Condition{{Property: "dir", Op: OpEquals, Value: "in"}}
	var defs []Definition
	base := []Definition{
		{Type: EventCounter},
		{Type: Aggregation, Property: "amount", Aggregate: Sum},
		{Type: Aggregation, Property: "amount", Aggregate: Avg},
		{Type: Aggregation, Property: "amount", Aggregate: Min},
		{Type: Aggregation, Property: "amount", Aggregate: Max},
		{Type: MostFrequent, Property: "channel", MinFrequency: 2},
		{Type: MostFrequent, Property: "channel"},
		{Type: First, Property: "channel"},
		{Type: Last, Property: "amount"},
		{Type: UniqueList, Property: "channel"},
		{Type: UniqueListCount, Property: "channel"},
	}
	for _, b := range base {
		for _, w := range []int{0, 1, 7} {
			d := b
			d.Key = fmt.Sprintf("%s_%s_%d", d.Type, d.Aggregate, w)
			d.Event = "Engaged"
			d.Conditions = cond
			d.WindowDays = w
			defs = append(defs, d)
		}
	}
	return defs
}

func randomEvents(r *rand.Rand, n int) []Event {
	channels := []any{"voice", "sms", "whatsapp", "chat", "email", 3, nil}
	amounts := []any{1, 2.5, -3, "4", "x", nil, 10.25, 0}
	events := make([]Event, n)
	for i := range events {
		name := "Engaged"
		if r.IntN(8) == 0 {
			name = "Other"
		}
		props := map[string]any{"dir": []string{"in", "in", "out"}[r.IntN(3)]}
		if r.IntN(6) > 0 {
			props["channel"] = channels[r.IntN(len(channels))]
		}
		if r.IntN(6) > 0 {
			props["amount"] = amounts[r.IntN(len(amounts))]
		}
		// Times over ~20 days, on a coarse grid so that equal times (and ties) happen.
		tm := t0.Add(time.Duration(r.IntN(20*24*4)) * 15 * time.Minute)
		events[i] = Event{Name: name, ID: fmt.Sprintf("m%03d", r.IntN(1000)), Time: tm, Properties: props}
	}
	return events
}

// oracle computes the value from the events directly, as the documentation states it.
func oracle(d Definition, events []Event, now time.Time) (any, bool) {
	var in []Event
	for _, e := range events {
		if !d.Matches(e) {
			continue
		}
		if d.WindowDays > 0 {
			start := time.Date(now.Year(), now.Month(), now.Day()-d.WindowDays, 0, 0, 0, 0, time.UTC)
			if e.Time.Before(start) {
				continue
			}
		}
		in = append(in, e)
	}
	prop := func(e Event) (any, bool) {
		v, ok := e.Properties[d.Property]
		return v, ok && v != nil
	}
	switch d.Type {
	case EventCounter:
		return len(in), true
	case Aggregation:
		var nums []float64
		for _, e := range in {
			if v, ok := prop(e); ok {
				if f, ok := number(v); ok {
					nums = append(nums, f)
				}
			}
		}
		if len(nums) == 0 {
			return nil, false
		}
		sum, lo, hi := 0.0, nums[0], nums[0]
		for _, f := range nums {
			sum += f
			lo, hi = min(lo, f), max(hi, f)
		}
		return map[string]float64{Sum: sum, Avg: sum / float64(len(nums)), Min: lo, Max: hi}[d.Aggregate], true
	case MostFrequent, UniqueList, UniqueListCount:
		counts, seen := map[string]int{}, map[string]time.Time{}
		for _, e := range in {
			if v, ok := prop(e); ok {
				k, _ := valueString(v)
				counts[k]++
				if e.Time.After(seen[k]) {
					seen[k] = e.Time
				}
			}
		}
		switch d.Type {
		case UniqueListCount:
			return len(counts), true
		case UniqueList:
			l := []string{}
			for k := range counts {
				l = append(l, k)
			}
			sortStrings(l)
			return l, true
		}
		best, bc := "", 0
		for k, c := range counts {
			if c > bc || c == bc && (seen[k].After(seen[best]) || seen[k].Equal(seen[best]) && k < best) {
				best, bc = k, c
			}
		}
		if bc == 0 || bc < max(1, d.MinFrequency) {
			return nil, false
		}
		return best, true
	case First, Last:
		var pick *Point
		for _, e := range in {
			if v, ok := prop(e); ok {
				nv, _ := normalize(v)
				p := &Point{Value: nv, Time: e.Time, ID: e.ID}
				if pick == nil || d.Type == First && p.before(pick) || d.Type == Last && pick.before(p) {
					pick = p
				}
			}
		}
		if pick == nil {
			return nil, false
		}
		return pick.Value, true
	}
	return nil, false
}

func sortStrings(l []string) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j] < l[j-1]; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

// TestMergeEqualsAllInOne: for random event sequences split at random between two profiles,
// Merge(a, b) has the value of one state that saw every event, for every type, windowed or
// not, at several nows, before and after Prune and a JSON round trip; and both agree with the
// oracle computed from the events. Amounts are multiples of 1/4 so sums are exact.
func TestMergeEqualsAllInOne(t *testing.T) {
	t.Parallel()
	for _, d := range allDefinitions() {
		t.Run(d.Key, func(t *testing.T) {
			t.Parallel()
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(uint64(len(d.Key)), uint64(d.WindowDays)+uint64(d.MinFrequency)*31))
			for iter := range 150 {
				events := randomEvents(r, r.IntN(40))
				var a, b, all State
				for _, e := range events {
					all.Add(d, e)
					if r.IntN(2) == 0 {
						a.Add(d, e)
					} else {
						b.Add(d, e)
					}
				}
				bBefore := mustJSON(t, b)
				a.Merge(b)
				if mustJSON(t, b) != bBefore {
					t.Fatal("Merge modified its argument")
				}
				var rt State
				if err := json.Unmarshal([]byte(mustJSON(t, all)), &rt); err != nil {
					t.Fatal(err)
				}
				for _, days := range []int{0, 3, 8, 15, 19, 21, 30} {
					now := t0.AddDate(0, 0, days).Add(time.Duration(r.IntN(24)) * time.Hour)
					want, wantOK := oracle(d, events, now)
					check := func(what string, s State) {
						t.Helper()
						got, ok := s.Value(d, now)
						if ok != wantOK || !reflect.DeepEqual(got, want) {
							t.Fatalf("iter %d now %s %s: Value = %#v, %v; want %#v, %v", iter, now, what, got, ok, want, wantOK)
						}
					}
					check("all-in-one", all)
					check("merged", a)
					check("json round trip", rt)
					pruned := State{}
					pruned.Merge(all)
					pruned.Prune(d, now)
					check("pruned", pruned)
					past := 0 // buckets of events dated after now are kept until they age out
					for day := range pruned.Days {
						if day <= now.Format(dayLayout) {
							past++
						}
					}
					if d.WindowDays > 0 && past > d.WindowDays+1 {
						t.Fatalf("%d buckets up to now after Prune, want at most %d", past, d.WindowDays+1)
					}
				}
			}
		})
	}
}

func mustJSON(t *testing.T, s State) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, d := range allDefinitions() {
		t.Run(d.Key, func(t *testing.T) {
			t.Parallel()
			events := randomEvents(rand.New(rand.NewPCG(7, 7)), 60)
			events = append(events, Event{Name: "Engaged", ID: "obj", Time: t0.AddDate(0, 0, 25),
				Properties: map[string]any{"dir": "in", "channel": map[string]any{"n": 1}, "amount": int64(5)}})
			s := build(d, events)
			var rt State
			if err := json.Unmarshal([]byte(mustJSON(t, s)), &rt); err != nil {
				t.Fatal(err)
			}
			for days := range 35 {
				now := t0.AddDate(0, 0, days)
				v1, ok1 := s.Value(d, now)
				v2, ok2 := rt.Value(d, now)
				if ok1 != ok2 || !reflect.DeepEqual(v1, v2) {
					t.Fatalf("day %d: %#v, %v before; %#v, %v after", days, v1, ok1, v2, ok2)
				}
			}
			// And the round-tripped state keeps accumulating like the original.
			more := Event{Name: "Engaged", ID: "more", Time: t0.AddDate(0, 0, 26), Properties: map[string]any{"dir": "in", "channel": "sms", "amount": 2}}
			s.Add(d, more)
			rt.Add(d, more)
			v1, ok1 := s.Value(d, t0.AddDate(0, 0, 27))
			v2, ok2 := rt.Value(d, t0.AddDate(0, 0, 27))
			if ok1 != ok2 || !reflect.DeepEqual(v1, v2) {
				t.Fatalf("after another event: %#v, %v vs %#v, %v", v1, ok1, v2, ok2)
			}
		})
	}
}

// A bucket counts at most MaxValues distinct values; the ones it has keep counting.
func TestStateBoundsDistinctValues(t *testing.T) {
	t.Parallel()
	d := Definition{Key: "k", Type: UniqueListCount, Event: "E", Property: "v"}
	var s State
	for i := range MaxValues + 50 {
		s.Add(d, Event{Name: "E", Time: time.Unix(1e9, 0), Properties: map[string]any{"v": i}})
	}
	s.Add(d, Event{Name: "E", Time: time.Unix(1e9, 0), Properties: map[string]any{"v": 0}})
	if n := len(s.All.Values); n != MaxValues {
		t.Fatalf("%d distinct values kept, want %d", n, MaxValues)
	}
	if c := s.All.Values["0"].Count; c != 2 {
		t.Errorf("a value already counted counts on: %d, want 2", c)
	}
}
