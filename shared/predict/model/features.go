package model

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Features. Every feature looks back from a cutoff day c (training: today−W, so the label
// window (c, c+W] is the last fully observed one; scoring: today) over three horizons,
// 7, W and 2W days, where W is the goal's window: they scale with the window, and 2W is
// all the history a workspace is sure to have before the training cutoff (the history
// rule asks for 3W). Nothing older than 2W is looked at, so a profile's features mean the
// same at training and at scoring time although scoring sees W more days of history.
// Ages count from the cutoff: an activity on day c has age 0; "in the last 7 days" is
// age < 7.
//
// Per profile (16 "global" features):
//   - any event: events in the last 7, W, 2W days
//   - active days (days with any event) in the last 7, W, 2W days
//   - days since the last activity, days since the first activity (both capped at 2W)
//   - event types used in the last 2W days
//   - revenue (the goal's money property, Activity.Revenue) in the last W and 2W days,
//     days with revenue in the last 2W days
//   - the goal itself (churn, ltv: Events[0]; purchase, custom: any of Events, on days
//     with revenue when WithProperty): days it was reached in the last 7, W, 2W days, days
//     since it was last reached (capped at 2W)
//
// Per tracked event type (4 each): events in the last 7, W, 2W days, days since the last
// one (capped at 2W). The tracked types are the goal's events and then the most common
// types before the cutoff, up to maxTracked in all, stored by name in the Spec so that a
// later Dataset numbering its events differently gets the same features.
//
// Every value is non-negative and goes through log1p (counts and money are heavy-tailed),
// then is standardised with the training rows' mean and standard deviation.
// Activity with Count ≤ 0 is ignored; activity after the cutoff is never a feature.

// maxTracked caps the per-event features: 20 types × 4 + 16 = 96 features, 77 MB of
// float64 for 100,000 profiles.
const maxTracked = 20

// specVersion is bumped whenever the feature layout changes; Score refuses other versions.
const specVersion = 1

const (
	fAny      = 0  // + horizon index: events in the last 7, W, 2W days
	fActive   = 3  // + horizon index: active days
	fSince    = 6  // days since the last activity
	fFirst    = 7  // days since the first activity
	fTypes    = 8  // event types used in the last 2W days
	fRevW     = 9  // revenue in the last W days
	fRev2W    = 10 // revenue in the last 2W days
	fRevDays  = 11 // days with revenue in the last 2W days
	fGoal     = 12 // + horizon index: days the goal was reached
	fGoalLast = 15 // days since the goal was last reached
	nGlobal   = 16
	perEvent  = 4 // events in the last 7, W, 2W days; days since the last one
)

// spec is Model.Spec: what Score needs to rebuild the features Train used.
type spec struct {
	Version  int      `json:"version"`
	Horizons [3]int   `json:"horizons"` // 7, W, 2W
	Events   []string `json:"events"`   // tracked event types, in feature order
	Lambda   float64  `json:"lambda"`   // the L2 penalty the model was fitted with
	// Smear is ltv's retransformation factor (Duan's smearing estimate, mean exp(residual)
	// on the training rows): exp(prediction)·Smear − 1 estimates the spend, not its median.
	Smear float64 `json:"smear,omitempty"`
}

// horizons are the look-back horizons for a window of w days.
func horizons(w int) [3]int { return [3]int{7, w, 2 * w} }

// newSpec picks the tracked event types from the activity up to cutoff: the goal's events
// first, then by total count (name order on ties, for determinism).
func newSpec(g Goal, d Dataset, cutoff int32) spec {
	totals := make([]int64, len(d.Events))
	for i := range d.Profiles {
		for _, a := range d.Profiles[i].Activity {
			if a.Day <= cutoff && a.Count > 0 && int(a.Event) < len(totals) {
				totals[a.Event] += int64(a.Count)
			}
		}
	}
	events := slices.Clone(g.Events)
	idx := make([]int, 0, len(d.Events))
	for i, n := range totals {
		if n > 0 && !slices.Contains(events, d.Events[i]) {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if c := cmp.Compare(totals[b], totals[a]); c != 0 {
			return c
		}
		return strings.Compare(d.Events[a], d.Events[b])
	})
	for _, i := range idx {
		if len(events) >= maxTracked {
			break
		}
		// A dataset naming one event twice is tracked once.
		if !slices.Contains(events, d.Events[i]) {
			events = append(events, d.Events[i])
		}
	}
	return spec{Version: specVersion, Horizons: horizons(g.window()), Events: events}
}

func (s spec) marshal() json.RawMessage {
	b, err := json.Marshal(s)
	if err != nil { // a struct of ints, strings and finite floats always encodes
		panic(err)
	}
	return b
}

// builder turns one Dataset's profiles into feature rows and labels for one goal. It keeps
// per-event lookups in slices indexed by the Dataset's event numbers: no maps per profile.
type builder struct {
	g        Goal
	h        [3]int32
	w        int32
	withProp bool
	slot     []int16 // dataset event → tracked slot, −1 when not tracked
	isGoal   []bool  // dataset event → one of the goal's events
	purchase int     // ltv: the dataset number of the purchase event, −1 when absent
	nfeat    int
	names    []string
	last     []int32 // scratch: per slot, the smallest age seen in this profile
	stamp    []int32 // scratch: per dataset event, the last profile (row stamp) using it
	stampN   int32
}

func newBuilder(s spec, g Goal, events []string) *builder {
	w := g.window()
	b := &builder{
		g:        g,
		w:        int32(w),
		withProp: g.WithProperty && (g.Kind == Purchase || g.Kind == Custom),
		slot:     make([]int16, len(events)),
		isGoal:   make([]bool, len(events)),
		purchase: -1,
		last:     make([]int32, len(s.Events)),
		stamp:    make([]int32, len(events)),
	}
	for i, h := range s.Horizons {
		b.h[i] = int32(h)
	}
	for i, name := range events {
		b.slot[i] = -1
		if j := slices.Index(s.Events, name); j >= 0 {
			b.slot[i] = int16(j)
		}
		b.isGoal[i] = slices.Contains(g.Events, name)
		if g.Kind == LTV && b.purchase < 0 && len(g.Events) > 0 && name == g.Events[0] {
			b.purchase = i
		}
	}
	b.nfeat = nGlobal + perEvent*len(s.Events)
	b.names = featureNames(s, g)
	return b
}

// featureNames are the features' human names, in column order.
func featureNames(s spec, g Goal) []string {
	h := s.Horizons
	goal := strings.Join(g.Events, " or ")
	if g.WithProperty && (g.Kind == Purchase || g.Kind == Custom) {
		goal += " with revenue"
	}
	n := make([]string, 0, nGlobal+perEvent*len(s.Events))
	for _, x := range h {
		n = append(n, fmt.Sprintf("Any event, events in the last %d days", x))
	}
	for _, x := range h {
		n = append(n, fmt.Sprintf("Active days in the last %d days", x))
	}
	n = append(n,
		fmt.Sprintf("Days since the last activity (up to %d)", h[2]),
		fmt.Sprintf("Days since the first activity (up to %d)", h[2]),
		fmt.Sprintf("Event types used in the last %d days", h[2]),
		fmt.Sprintf("Revenue in the last %d days", h[1]),
		fmt.Sprintf("Revenue in the last %d days", h[2]),
		fmt.Sprintf("Days with revenue in the last %d days", h[2]))
	for _, x := range h {
		n = append(n, fmt.Sprintf("Days with the goal (%s) in the last %d days", goal, x))
	}
	n = append(n, fmt.Sprintf("Days since the goal (%s) was last reached (up to %d)", goal, h[2]))
	for _, e := range s.Events {
		for _, x := range h {
			n = append(n, fmt.Sprintf("%s, events in the last %d days", e, x))
		}
		n = append(n, fmt.Sprintf("%s, days since the last one (up to %d)", e, h[2]))
	}
	return n
}

// goalHit tells whether a counts towards the goal (ltv: a purchase).
func (b *builder) goalHit(a Activity) bool {
	if a.Count <= 0 || int(a.Event) >= len(b.isGoal) || !b.isGoal[a.Event] {
		return false
	}
	return !b.withProp || a.Revenue > 0
}

// eligible tells whether p is predicted for at cutoff: any activity on or before it
// (ltv: at least MinLTVPurchases purchase events on or before it).
func (b *builder) eligible(p *Profile, cutoff int32) bool {
	if b.g.Kind == LTV {
		n := int64(0)
		for _, a := range p.Activity {
			if a.Day <= cutoff && int(a.Event) == b.purchase && a.Count > 0 {
				if n += int64(a.Count); n >= MinLTVPurchases {
					return true
				}
			}
		}
		return false
	}
	for _, a := range p.Activity {
		if a.Day <= cutoff && a.Count > 0 && int(a.Event) < len(b.isGoal) {
			return true
		}
	}
	return false
}

// label is p's outcome over (cutoff, cutoff+W]: 1 or 0 for churn (1: did not perform the
// event), purchase and custom (1: reached the goal); the purchase event's revenue for ltv.
func (b *builder) label(p *Profile, cutoff int32) float64 {
	end := cutoff + b.w
	if b.g.Kind == LTV {
		spend := 0.0
		for _, a := range p.Activity {
			if a.Day > cutoff && a.Day <= end && int(a.Event) == b.purchase && a.Count > 0 {
				spend += float64(a.Revenue)
			}
		}
		return spend
	}
	hit := false
	for _, a := range p.Activity {
		if a.Day > cutoff && a.Day <= end && b.goalHit(a) {
			hit = true
			break
		}
	}
	if hit != (b.g.Kind == Churn) {
		return 1
	}
	return 0
}

// row writes p's features at cutoff into out (len nfeat), after log1p, before
// standardisation. Activity is taken in Day order, as Profile promises: active days
// count changes of Day.
func (b *builder) row(p *Profile, cutoff int32, out []float64) {
	clear(out)
	h0, h1, h2 := b.h[0], b.h[1], b.h[2]
	for i := range b.last {
		b.last[i] = h2
	}
	b.stampN++
	stamp := b.stampN
	lastAge, firstAge, goalAge := h2, int32(-1), h2
	prevDay, prevRevDay, prevGoalDay := int32(math.MinInt32), int32(math.MinInt32), int32(math.MinInt32)
	types := 0
	for _, a := range p.Activity {
		if a.Day > cutoff || a.Count <= 0 || int(a.Event) >= len(b.slot) {
			continue
		}
		age := cutoff - a.Day
		firstAge = max(firstAge, age)
		if age >= h2 {
			continue
		}
		n := float64(a.Count)
		in := [3]bool{age < h0, age < h1, true}
		newDay := a.Day != prevDay
		prevDay = a.Day
		for k := range 3 {
			if in[k] {
				out[fAny+k] += n
				if newDay {
					out[fActive+k]++
				}
			}
		}
		lastAge = min(lastAge, age)
		if b.stamp[a.Event] != stamp {
			b.stamp[a.Event] = stamp
			types++
		}
		if rev := float64(a.Revenue); rev > 0 {
			out[fRev2W] += rev
			if in[1] {
				out[fRevW] += rev
			}
			if a.Day != prevRevDay {
				out[fRevDays]++
				prevRevDay = a.Day
			}
		}
		if b.goalHit(a) {
			goalAge = min(goalAge, age)
			if a.Day != prevGoalDay {
				prevGoalDay = a.Day
				for k := range 3 {
					if in[k] {
						out[fGoal+k]++
					}
				}
			}
		}
		if s := b.slot[a.Event]; s >= 0 {
			base := nGlobal + perEvent*int(s)
			for k := range 3 {
				if in[k] {
					out[base+k] += n
				}
			}
			b.last[s] = min(b.last[s], age)
		}
	}
	out[fSince] = float64(lastAge)
	out[fFirst] = float64(min(max(firstAge, 0), h2))
	out[fTypes] = float64(types)
	out[fGoalLast] = float64(goalAge)
	for s, age := range b.last {
		out[nGlobal+perEvent*s+3] = float64(age)
	}
	for i, v := range out {
		out[i] = math.Log1p(v)
	}
}
