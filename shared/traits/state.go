package traits

import (
	"maps"
	"slices"
	"time"
)

// dayLayout keys the per-day buckets of a windowed state (UTC dates sort as strings).
const dayLayout = "2006-01-02"

// State is the incremental state of one trait on one profile. It is JSON-serialisable so it
// can be stored on the profile, and it never holds events: an all-time trait keeps one bucket
// of totals (All), a windowed trait one bucket per UTC day of event time (Days) so that old
// days age out without rescanning history.
//
// Add must be called once per event: the state does not remember which events it counted, so
// de-duplication (message IDs, Twilio retries) happens upstream. Events may arrive in any
// order (backfill, late events): the value is the same as for any other order.
//
// The zero State is empty and ready to use.
type State struct {
	All  *Bucket            `json:"all,omitempty"`
	Days map[string]*Bucket `json:"days,omitempty"`
}

// Bucket accumulates the matching events of one day (or of all time). Only the fields the
// trait type needs are filled in.
type Bucket struct {
	Count  int                   `json:"count,omitempty"`  // event_counter: matching events
	N      int                   `json:"n,omitempty"`      // aggregation: numeric values seen
	Sum    float64               `json:"sum,omitempty"`    // aggregation: their sum
	Min    float64               `json:"min,omitempty"`    // aggregation: their minimum (when N > 0)
	Max    float64               `json:"max,omitempty"`    // aggregation: their maximum (when N > 0)
	Values map[string]*ValueStat `json:"values,omitempty"` // most_frequent, unique_list(_count): value → stat
	First  *Point                `json:"first,omitempty"`  // first: the earliest event's value
	Last   *Point                `json:"last,omitempty"`   // last: the latest event's value
}

// ValueStat counts one property value: how many matching events carried it and the event time
// of the latest of them (the most_frequent tie-break).
type ValueStat struct {
	Count    int       `json:"count"`
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// Point is the property value of one event, for first and last.
type Point struct {
	Value any       `json:"value"`
	Time  time.Time `json:"time"`
	ID    string    `json:"id,omitempty"`
}

// before orders points by event time, then message ID, then value form, so that first and
// last never depend on the order events arrived in or on how states were merged.
func (p *Point) before(q *Point) bool {
	if !p.Time.Equal(q.Time) {
		return p.Time.Before(q.Time)
	}
	if p.ID != q.ID {
		return p.ID < q.ID
	}
	a, _ := valueString(p.Value)
	b, _ := valueString(q.Value)
	return a < b
}

// MaxValues bounds the distinct values one bucket (a day, or all time) of a most_frequent or
// unique_list state counts: a state is stored as one item and must fit DynamoDB's 400 KB.
// Past it a new value is not counted (values already counted still are), so a day with more
// distinct values than this undercounts unique_list_count.
const MaxValues = 1000

// Add updates s with e when e matches d; other events are ignored. It touches one bucket and,
// for value-keyed types, one map entry. Call it once per event (see State).
func (s *State) Add(d Definition, e Event) {
	if !d.Matches(e) {
		return
	}
	var raw any
	if needsProperty(d.Type) {
		v, ok := lookup(e.Properties, d.Property)
		if !ok || v == nil {
			return // the property is missing: nothing to add
		}
		raw = v
	}
	// Check the value before creating a bucket, so that an event adding nothing leaves no trace.
	var (
		num   float64
		key   string
		point *Point
	)
	switch d.Type {
	case Aggregation:
		f, ok := number(raw)
		if !ok {
			return
		}
		num = f
	case MostFrequent, UniqueList, UniqueListCount:
		k, ok := valueString(raw)
		if !ok {
			return
		}
		key = k
	case First, Last:
		v, ok := normalize(raw)
		if !ok {
			return
		}
		point = &Point{Value: v, Time: e.Time.UTC(), ID: e.ID}
	case EventCounter:
	default:
		return
	}
	b := s.bucket(d, e.Time)
	switch d.Type {
	case EventCounter:
		b.Count++
	case Aggregation:
		b.addNumber(num)
	case MostFrequent, UniqueList, UniqueListCount:
		b.addValue(key, 1, e.Time.UTC(), d.Type == MostFrequent)
	case First:
		if b.First == nil || point.before(b.First) {
			b.First = point
		}
	case Last:
		if b.Last == nil || b.Last.before(point) {
			b.Last = point
		}
	}
}

// bucket returns the bucket an event at t goes to, creating it.
func (s *State) bucket(d Definition, t time.Time) *Bucket {
	if d.WindowDays <= 0 {
		if s.All == nil {
			s.All = &Bucket{}
		}
		return s.All
	}
	day := t.UTC().Format(dayLayout)
	if s.Days == nil {
		s.Days = map[string]*Bucket{}
	}
	b := s.Days[day]
	if b == nil {
		b = &Bucket{}
		s.Days[day] = b
	}
	return b
}

func (b *Bucket) addNumber(f float64) {
	if b.N == 0 || f < b.Min {
		b.Min = f
	}
	if b.N == 0 || f > b.Max {
		b.Max = f
	}
	b.N++
	b.Sum += f
}

func (b *Bucket) addValue(key string, count int, seen time.Time, keepSeen bool) {
	if b.Values == nil {
		b.Values = map[string]*ValueStat{}
	}
	v := b.Values[key]
	if v == nil {
		if len(b.Values) >= MaxValues {
			return // full: a state must fit in one stored item (see MaxValues)
		}
		v = &ValueStat{}
		b.Values[key] = v
	}
	v.Count += count
	if keepSeen && seen.After(v.LastSeen) {
		v.LastSeen = seen
	}
}

// merge adds o into b (o is not modified nor aliased).
func (b *Bucket) merge(o *Bucket) {
	if o == nil {
		return
	}
	b.Count += o.Count
	if o.N > 0 {
		if b.N == 0 || o.Min < b.Min {
			b.Min = o.Min
		}
		if b.N == 0 || o.Max > b.Max {
			b.Max = o.Max
		}
		b.N += o.N
		b.Sum += o.Sum
	}
	for k, v := range o.Values {
		b.addValue(k, v.Count, v.LastSeen, true)
	}
	if o.First != nil && (b.First == nil || o.First.before(b.First)) {
		p := *o.First
		b.First = &p
	}
	if o.Last != nil && (b.Last == nil || b.Last.before(o.Last)) {
		p := *o.Last
		b.Last = &p
	}
}

// Merge adds other into s: when two profiles merge, the surviving profile's state for a trait
// becomes exactly the state it would have had if it had seen the events of both (counts and
// sums add, minimums and maximums combine, value counts add with the latest last-seen time,
// first and last keep the earliest and latest). other is not modified and s shares no memory
// with it afterwards. Both states must have been built for the same trait; its window decides
// nothing here (buckets of both kinds are merged as they are), Prune or Value apply it.
func (s *State) Merge(other State) {
	if other.All != nil {
		if s.All == nil {
			s.All = &Bucket{}
		}
		s.All.merge(other.All)
	}
	for day, ob := range other.Days {
		if s.Days == nil {
			s.Days = map[string]*Bucket{}
		}
		b := s.Days[day]
		if b == nil {
			b = &Bucket{}
			s.Days[day] = b
		}
		b.merge(ob)
	}
}

// cutoff is the oldest day bucket that counts for a window of d at now: the UTC date of
// now minus WindowDays days. A windowed trait therefore counts the WindowDays whole days
// before today plus today, i.e. an event keeps counting for at least WindowDays×24 h and at
// most (WindowDays+1)×24 h after it happened.
func cutoff(d Definition, now time.Time) string {
	return now.UTC().AddDate(0, 0, -d.WindowDays).Format(dayLayout)
}

// Prune drops the day buckets older than d's window at now, so a windowed state holds at
// most WindowDays+1 buckets (more only for events dated after now, which are kept until they
// age out). An all-time state is left as it is. Value gives the same result before and after
// Prune at the same or a later now.
func (s *State) Prune(d Definition, now time.Time) {
	if d.WindowDays <= 0 || len(s.Days) == 0 {
		return
	}
	c := cutoff(d, now)
	for day := range s.Days {
		if day < c {
			delete(s.Days, day)
		}
	}
	if len(s.Days) == 0 {
		s.Days = nil
	}
}

// total combines the buckets that count at now.
func (s State) total(d Definition, now time.Time) Bucket {
	var t Bucket
	if d.WindowDays <= 0 {
		t.merge(s.All)
		return t
	}
	c := cutoff(d, now)
	for day, b := range s.Days {
		if day >= c { // events dated after now count too (they happened, by their clock)
			t.merge(b)
		}
	}
	return t
}

// Value returns the trait's current value at now, false when it has none. A windowed trait
// counts only the day buckets within the window (see Prune); now is ignored for all-time ones.
//
//   - event_counter: int, the number of matching events (0 when none; always true).
//   - aggregation: float64 sum, avg, min or max of the numeric values of the property
//     (numbers and numeric strings; other values are ignored); false when there is none.
//   - most_frequent: string, the value (in string form) carried by the most matching events,
//     when that count is at least MinFrequency (0 counts as 1); false otherwise. Tie-break:
//     among the values with the highest count, the one seen most recently (by event time);
//     if that is tied too, the smallest string.
//   - first / last: the property value of the earliest / latest matching event that has it,
//     by event time (ties: message ID, then value), as it reads back from JSON: string,
//     float64, bool, []any or map[string]any; false when none.
//   - unique_list: []string, the distinct values in string form, sorted (empty, true, when
//     none).
//   - unique_list_count: int, the number of distinct values (0 when none; always true).
func (s State) Value(d Definition, now time.Time) (any, bool) {
	t := s.total(d, now)
	switch d.Type {
	case EventCounter:
		return t.Count, true
	case Aggregation:
		if t.N == 0 {
			return nil, false
		}
		switch d.Aggregate {
		case Sum:
			return t.Sum, true
		case Avg:
			return t.Sum / float64(t.N), true
		case Min:
			return t.Min, true
		case Max:
			return t.Max, true
		}
		return nil, false
	case MostFrequent:
		best, bestStat := "", (*ValueStat)(nil)
		for k, v := range t.Values {
			if bestStat == nil || v.Count > bestStat.Count ||
				v.Count == bestStat.Count && (v.LastSeen.After(bestStat.LastSeen) ||
					v.LastSeen.Equal(bestStat.LastSeen) && k < best) {
				best, bestStat = k, v
			}
		}
		if bestStat == nil || bestStat.Count < max(d.MinFrequency, 1) {
			return nil, false
		}
		return best, true
	case First:
		if t.First == nil {
			return nil, false
		}
		return t.First.Value, true
	case Last:
		if t.Last == nil {
			return nil, false
		}
		return t.Last.Value, true
	case UniqueList:
		l := slices.Sorted(maps.Keys(t.Values))
		if l == nil {
			l = []string{}
		}
		return l, true
	case UniqueListCount:
		return len(t.Values), true
	}
	return nil, false
}
