package predicttest_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/predict/model"
	"github.com/unifiedprofiles/up/shared/predict/predicttest"
)

func TestGenerateShape(t *testing.T) {
	t.Parallel()
	for _, cfg := range []predicttest.Config{
		{Seed: 1, Profiles: 300, Days: 60, Today: 20000, Signal: true, Anonymous: 9},
		{Seed: 2, Profiles: 300, Days: 45, EventTypes: 3},
		{Seed: 3, Profiles: 300},
	} {
		d, truth := predicttest.Generate(cfg)
		nev := cmp.Or(cfg.EventTypes, len(predicttest.EventNames))
		today := cmp.Or(cfg.Today, predicttest.DefaultToday)
		days := int32(cmp.Or(cfg.Days, 120))
		if len(d.Profiles) != cfg.Profiles || !slices.Equal(d.Events, predicttest.EventNames[:nev]) || d.Anonymous != cfg.Anonymous {
			t.Fatalf("%+v: %d profiles, events %v, anonymous %d", cfg, len(d.Profiles), d.Events, d.Anonymous)
		}
		oc := uint16(slices.Index(d.Events, predicttest.Purchase))
		free, paid := 0, 0
		oldest := today
		for _, p := range d.Profiles {
			if _, ok := truth.FutureSpend[p.ID]; !ok || truth.FutureSpend[p.ID] < 0 {
				t.Fatalf("%s: future spend %v", p.ID, truth.FutureSpend[p.ID])
			}
			for i, a := range p.Activity {
				if a.Day > today || a.Day <= today-days || int(a.Event) >= nev || a.Count <= 0 {
					t.Fatalf("%s: %+v outside the history or the events", p.ID, a)
				}
				if i > 0 && (a.Day < p.Activity[i-1].Day || a.Day == p.Activity[i-1].Day && a.Event <= p.Activity[i-1].Event) {
					t.Fatalf("%s: activity not ordered by day then event at %d", p.ID, i)
				}
				switch {
				case a.Event != oc && a.Revenue != 0, a.Revenue < 0:
					t.Fatalf("%s: revenue %+v", p.ID, a)
				case a.Event == oc && a.Revenue == 0:
					free++
				case a.Event == oc:
					paid++
				}
				oldest = min(oldest, a.Day)
			}
		}
		if today-oldest+1 != days {
			t.Errorf("%+v: oldest activity %d days old", cfg, today-oldest+1)
		}
		// About one order in ten is free.
		if share := float64(free) / float64(free+paid); share < 0.05 || share > 0.15 {
			t.Errorf("%+v: %d free orders, %d paid", cfg, free, paid)
		}
	}
}

func TestGenerateDefaultsAndSeed(t *testing.T) {
	t.Parallel()
	d, _ := predicttest.Generate(predicttest.Config{})
	if len(d.Profiles) != 5000 || len(d.Events) != 7 {
		t.Fatalf("defaults: %d profiles, %d events", len(d.Profiles), len(d.Events))
	}
	a, ta := predicttest.Generate(predicttest.Config{Seed: 7, Profiles: 200, Signal: true})
	b, tb := predicttest.Generate(predicttest.Config{Seed: 7, Profiles: 200, Signal: true})
	c, _ := predicttest.Generate(predicttest.Config{Seed: 8, Profiles: 200, Signal: true})
	if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(ta, tb) {
		t.Error("the same seed gave different workspaces")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("another seed gave the same workspace")
	}
}

// With Signal the past predicts the label window and the future; without, it does not, for
// every window a goal may use.
func TestGenerateSignal(t *testing.T) {
	t.Parallel()
	for _, signal := range []bool{true, false} {
		d, truth := predicttest.Generate(predicttest.Config{Seed: 5, Profiles: 4000, Days: 240, Signal: signal})
		oc := uint16(slices.Index(d.Events, predicttest.Purchase))
		for _, w := range []int32{15, 30, 60, 90, 120} {
			var before, after []float64
			for _, p := range d.Profiles {
				b, a := 0.0, 0.0
				for _, x := range p.Activity {
					if x.Day > predicttest.DefaultToday-w {
						a += float64(x.Count)
					} else if x.Day > predicttest.DefaultToday-3*w {
						b += float64(x.Count)
					}
				}
				before, after = append(before, b), append(after, a)
			}
			rho := model.Spearman(before, after)
			if signal && rho < 0.5 || !signal && math.Abs(rho) > 0.06 {
				t.Errorf("signal %v, window %d: Spearman(activity before, in the window) = %.3f", signal, w, rho)
			}
		}
		var spent, future []float64
		for _, p := range d.Profiles {
			s := 0.0
			for _, x := range p.Activity {
				if x.Event == oc {
					s += float64(x.Revenue)
				}
			}
			spent, future = append(spent, s), append(future, truth.FutureSpend[p.ID])
		}
		rho := model.Spearman(spent, future)
		t.Logf("signal %v: Spearman(spend so far, planted future spend) = %.3f", signal, rho)
		if signal && rho < 0.5 || !signal && math.Abs(rho) > 0.06 {
			t.Errorf("signal %v: Spearman(spend so far, planted future spend) = %.3f", signal, rho)
		}
	}
}

// Tracks are as many calls as the activity counts, on its days, with the revenue once a day,
// and the same messageIds every time.
func TestTracks(t *testing.T) {
	t.Parallel()
	p := model.Profile{ID: "user-1", Activity: []model.Activity{
		{Day: 20000, Event: 1, Count: 2, Revenue: 12.5},
		{Day: 20001, Event: 0, Count: 1},
	}}
	events := []string{"Page Viewed", "Order Completed"}
	var got []string
	for m := range predicttest.Tracks(p, events) {
		var raw map[string]any
		if err := json.Unmarshal(m.Raw, &raw); err != nil || raw["messageId"] != m.MessageID || raw["event"] != m.Event || raw["userId"] != "user-1" {
			t.Errorf("raw %s (%v) does not match %+v", m.Raw, err, m)
		}
		got = append(got, fmt.Sprintf("%s %s %s %v", m.MessageID, m.Event, m.Timestamp.Format(time.RFC3339), m.Properties["revenue"]))
	}
	want := []string{
		"user-1-20000-1-0 Order Completed 2024-10-04T12:00:00Z 12.5",
		"user-1-20000-1-1 Order Completed 2024-10-04T12:00:01Z <nil>",
		"user-1-20001-0-0 Page Viewed 2024-10-05T12:00:00Z <nil>",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
