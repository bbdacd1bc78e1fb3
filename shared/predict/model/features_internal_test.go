package model

import (
	"math"
	"slices"
	"testing"
)

// One hand-made profile, its features counted by hand. Events: A, Order, B; the goal is an
// Order within 15 days (horizons 7, 15, 30), cutoff day 1000.
func TestFeatureRow(t *testing.T) {
	t.Parallel()
	events := []string{"A", "Order", "B"}
	p := Profile{ID: "p", Activity: []Activity{
		{Day: 960, Event: 0, Count: 5},                // age 40: only "days since the first activity"
		{Day: 980, Event: 0, Count: 2},                // age 20
		{Day: 980, Event: 1, Count: 1},                // age 20, a free order
		{Day: 990, Event: 1, Count: 2, Revenue: 50},   // age 10
		{Day: 995, Event: 0, Count: 1},                // age 5
		{Day: 995, Event: 2, Count: 3},                // age 5
		{Day: 996, Event: 2, Count: 0},                // no events: ignored
		{Day: 1000, Event: 2, Count: 1},               // age 0
		{Day: 1005, Event: 1, Count: 1},               // after the cutoff, free
		{Day: 1020, Event: 1, Count: 1, Revenue: 30},  // after the 15-day window
		{Day: 1030, Event: 7, Count: 1, Revenue: 100}, // an event number the dataset lacks
	}}
	const cutoff = 1000
	for _, tc := range []struct {
		name     string
		g        Goal
		goalDays [3]float64 // days with the goal in the last 7, 15, 30 days
		label    float64
	}{
		{"purchase", Goal{Kind: Purchase, Events: []string{"Order"}, WindowDays: 15}, [3]float64{0, 1, 2}, 1},
		// With the property the free orders do not count: not on day 980, nor on 1005.
		{"purchase with the property", Goal{Kind: Purchase, Events: []string{"Order"}, WindowDays: 15, WithProperty: true}, [3]float64{0, 1, 1}, 0},
		{"churn", Goal{Kind: Churn, Events: []string{"Order"}, WindowDays: 15}, [3]float64{0, 1, 2}, 0},
	} {
		d := Dataset{Events: events, Profiles: []Profile{p}}
		s := newSpec(tc.g, d, cutoff)
		if want := []string{"Order", "A", "B"}; !slices.Equal(s.Events, want) {
			t.Fatalf("%s: tracked %v, want %v (the goal first, then by count)", tc.name, s.Events, want)
		}
		b := newBuilder(s, tc.g, events)
		row := make([]float64, b.nfeat)
		b.row(&p, cutoff, row)
		want := []float64{
			5, 7, 10, // any event in the last 7, 15, 30 days
			2, 3, 4, // active days
			0,         // days since the last activity
			30,        // days since the first (40, capped at 30)
			3,         // event types used
			50, 50, 1, // revenue in 15 and 30 days, days with revenue
			tc.goalDays[0], tc.goalDays[1], tc.goalDays[2],
			10,          // days since the goal (day 990)
			0, 2, 3, 10, // Order
			1, 1, 3, 5, // A
			4, 4, 4, 0, // B
		}
		if len(row) != len(want) || len(b.names) != len(want) {
			t.Fatalf("%s: %d features, %d names, want %d", tc.name, len(row), len(b.names), len(want))
		}
		for i := range want {
			if math.Abs(row[i]-math.Log1p(want[i])) > 1e-12 {
				t.Errorf("%s: %s = expm1 %v, want %v", tc.name, b.names[i], math.Expm1(row[i]), want[i])
			}
		}
		if got := b.label(&p, cutoff); got != tc.label {
			t.Errorf("%s: label %v, want %v", tc.name, got, tc.label)
		}
		if !b.eligible(&p, cutoff) || b.eligible(&p, 959) {
			t.Errorf("%s: eligible from day 960 on", tc.name)
		}
	}

	// ltv: labels the purchase event's revenue over 120 days; eligible from 2 purchases.
	g := Goal{Kind: LTV, Events: []string{"Order"}}
	b := newBuilder(spec{Horizons: horizons(120)}, g, events)
	if got := b.label(&p, cutoff); got != 30 {
		t.Errorf("ltv label %v, want 30 (the free order adds nothing; event 7 is not Order)", got)
	}
	if b.eligible(&p, 985) || !b.eligible(&p, 990) {
		t.Error("ltv: eligible from the second purchase on (day 990)")
	}
}

// The names are unique and say what they count.
func TestFeatureNames(t *testing.T) {
	t.Parallel()
	g := Goal{Kind: Custom, Events: []string{"Order Completed", "Signup"}, WindowDays: 30, WithProperty: true}
	names := featureNames(spec{Horizons: horizons(30), Events: []string{"Order Completed", "Signup", "Page Viewed"}}, g)
	if len(names) != nGlobal+3*perEvent {
		t.Fatalf("%d names", len(names))
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("%q twice", n)
		}
		seen[n] = true
	}
	for _, want := range []string{
		"Order Completed, events in the last 30 days",
		"Page Viewed, days since the last one (up to 60)",
		"Days with the goal (Order Completed or Signup with revenue) in the last 7 days",
		"Active days in the last 60 days",
	} {
		if !seen[want] {
			t.Errorf("no feature %q", want)
		}
	}
}

// Tracking is capped, the goal's events always in, and the rest by count then name.
func TestSpecCap(t *testing.T) {
	t.Parallel()
	var d Dataset
	var act []Activity
	for i := range 30 {
		d.Events = append(d.Events, string(rune('a'+i%26))+string(rune('0'+i/26)))
		act = append(act, Activity{Day: 10, Event: uint16(i), Count: int32(100 - i)})
	}
	d.Events = append(d.Events, "goal") // no activity, tracked all the same
	d.Profiles = []Profile{{ID: "p", Activity: act}}
	s := newSpec(Goal{Kind: Churn, Events: []string{"goal"}, WindowDays: 30}, d, 10)
	if len(s.Events) != maxTracked || s.Events[0] != "goal" || s.Events[1] != d.Events[0] || s.Events[maxTracked-1] != d.Events[maxTracked-2] {
		t.Errorf("tracked %v", s.Events)
	}
}
