package model_test

import (
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/predict/model"
)

func TestGoalValidate(t *testing.T) {
	t.Parallel()
	oc := []string{"Order Completed"}
	for _, tc := range []struct {
		name string
		g    model.Goal
		want string // "" valid; else a piece of the error, which names the field
	}{
		{"churn", model.Goal{Kind: model.Churn, Events: oc, WindowDays: 30}, ""},
		{"purchase, 2 events, property", model.Goal{Kind: model.Purchase, Events: []string{"A", "B"}, WindowDays: 15, WithProperty: true}, ""},
		{"custom, window 120", model.Goal{Kind: model.Custom, Events: oc, WindowDays: 120}, ""},
		{"ltv, window 0 means 120", model.Goal{Kind: model.LTV, Events: oc}, ""},
		{"ltv, window 120", model.Goal{Kind: model.LTV, Events: oc, WindowDays: 120}, ""},
		{"every window", model.Goal{Kind: model.Purchase, Events: oc, WindowDays: 60}, ""},
		{"window 90", model.Goal{Kind: model.Churn, Events: oc, WindowDays: 90}, ""},
		{"no kind", model.Goal{Events: oc, WindowDays: 30}, "kind: missing"},
		{"unknown kind", model.Goal{Kind: "upsell", Events: oc, WindowDays: 30}, `kind: "upsell"`},
		{"churn, 2 events", model.Goal{Kind: model.Churn, Events: []string{"A", "B"}, WindowDays: 30}, "events: a churn prediction takes exactly 1 event, not 2"},
		{"churn, no event", model.Goal{Kind: model.Churn, WindowDays: 30}, "events:"},
		{"purchase, 3 events", model.Goal{Kind: model.Purchase, Events: []string{"A", "B", "C"}, WindowDays: 30}, "events: a purchase prediction takes 1 or 2 events, not 3"},
		{"custom, no event", model.Goal{Kind: model.Custom, WindowDays: 30}, "events:"},
		{"ltv, 2 events", model.Goal{Kind: model.LTV, Events: []string{"A", "B"}}, "events:"},
		{"empty event name", model.Goal{Kind: model.Purchase, Events: []string{"A", ""}, WindowDays: 30}, "events: event 2 is empty"},
		{"same event twice", model.Goal{Kind: model.Custom, Events: []string{"A", "A"}, WindowDays: 30}, `events: "A" is named twice`},
		{"window 0", model.Goal{Kind: model.Churn, Events: oc}, "window_days: 0 is not one of"},
		{"window 45", model.Goal{Kind: model.Purchase, Events: oc, WindowDays: 45}, "window_days: 45"},
		{"ltv window 30", model.Goal{Kind: model.LTV, Events: oc, WindowDays: 30}, "window_days: an ltv prediction covers 120 days, not 30"},
		{"churn with a property", model.Goal{Kind: model.Churn, Events: oc, WindowDays: 30, WithProperty: true}, "property:"},
	} {
		err := tc.g.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
