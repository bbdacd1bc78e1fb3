// Package model trains and scores predictive traits: from each profile's daily activity
// (counts per event type, revenue) it builds features, labels the goal over a window,
// fits a regularised model on a split by profile, reports honest held-out quality and
// scores every eligible profile as a percentile. Pure Go (gonum), no I/O.
package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// ErrNotEnoughData is returned (wrapped, with the unmet rules) by Train when a data
// requirement of Check is not met: the caller shows the prediction as waiting_for_data.
var ErrNotEnoughData = errors.New("not enough data")

// Windows are the prediction windows a goal may use, in days.
var Windows = []int{15, 30, 60, 90, 120}

// LTVWindow is ltv's only window: spend in the next 120 days.
const LTVWindow = 120

// Requirement rule names, in the order Check reports them.
const (
	RuleGoalReached        = "goal_reached"
	RuleGoalNotReached     = "goal_not_reached"
	RuleHistory            = "history"
	RuleEventTypes         = "event_types"
	RuleIdentifiedProfiles = "identified_profiles"
)

// Thresholds of the data requirements.
const (
	MinPerClass     = 100 // profiles that reached the goal, and that did not
	HistoryWindows  = 3   // history must cover this many windows
	MinEventTypes   = 5   // event types with activity
	MinLTVPurchases = 2   // ltv predicts for profiles with at least this many purchases
	// MinIdentified identified profiles are the fewest the two goal rules can be met
	// with; the rule is there to say plainly that anonymous profiles do not count.
	MinIdentified = 2 * MinPerClass
)

// Kinds of prediction.
const (
	Churn    = "churn"    // will NOT perform Events[0] within the window
	Purchase = "purchase" // will perform one of Events within the window
	Custom   = "custom"   // as Purchase, for any goal
	LTV      = "ltv"      // spend (Revenue of Events[0]) within the window; profiles with ≥ 2 purchases
)

// Activity is one profile's use of one event type on one day. Day numbers are days since
// 1970-01-01 UTC; Event indexes Dataset.Events.
type Activity struct {
	Day     int32
	Event   uint16
	Count   int32
	Revenue float32 // that day's sum of the goal's money property over these events; 0 when none
}

// Profile is one non-anonymous profile's history, ordered by Day then Event.
type Profile struct {
	ID       string
	Activity []Activity
}

// Dataset is a space's non-anonymous profiles and the event names their activity names.
// Compact on purpose: 100,000 profiles must train within 500 MB.
type Dataset struct {
	Events   []string // at most 65,535
	Profiles []Profile
	// Anonymous is how many anonymous profiles were left out (reported, never used).
	Anonymous int
	// FirstDay, when not 0, is the first day the space has activity on, as far back as its
	// counts go: a loader holds only the days features use (3 × the window), so without it the
	// history rule could only see as far back as that.
	FirstDay int32
}

// Goal is what a prediction predicts.
type Goal struct {
	Kind       string
	Events     []string // churn: 1; purchase/custom: 1–2; ltv: the purchase event
	WindowDays int      // 15, 30, 60, 90, 120 (ltv: 120)
	// WithProperty: purchase/custom goals count an event only on days its Revenue
	// (the property's sum) is positive.
	WithProperty bool
}

// Requirement is one data requirement, checked and reported with what is missing.
type Requirement struct {
	Rule   string `json:"rule"`
	Met    bool   `json:"met"`
	Detail string `json:"detail"`
}

// Quality is the held-out quality of a trained model.
type Quality struct {
	// AUC on the held-out profiles; ltv: how well the predicted spend ranks who spends at
	// all in the window. 0.5 when the held-out profiles hold a single class.
	AUC       float64  `json:"auc"`
	LogLoss   *float64 `json:"log_loss"`           // nil for ltv (a regression)
	LiftTop20 float64  `json:"lift_top_20"`        // goal rate (ltv: spend share) in the top 20 % ÷ overall
	Spearman  *float64 `json:"spearman,omitempty"` // ltv only: predicted vs actual spend
	// Grade: poor, fair, good, excellent, on AUC (GradeAUC) or, for ltv, Spearman
	// (GradeSpearman).
	Grade   string `json:"grade"`
	HeldOut int    `json:"held_out"`
	Trained int    `json:"trained"`
}

// Feature is one of a model's top contributing features.
type Feature struct {
	Name   string  `json:"name"`
	Weight float64 `json:"weight"` // standardised coefficient; sign is the direction
}

// Result of Train: quality, top features, and every eligible profile's score.
type Result struct {
	Quality     Quality
	TopFeatures []Feature
	// Scores: profile ID → percentile in [0, 1] among the scored profiles (1 = most likely;
	// ltv: highest predicted spend).
	Scores map[string]float64
	// Predicted: profile ID → the raw prediction (probability, or ltv's spend).
	Predicted map[string]float64
	// Model is what was trained, for later rescoring with Score.
	Model Model
}

// Model is a trained model as stored between training (every 30 days) and scoring (every 7
// days): JSON-encodable, with what Score needs to rebuild the features it was trained on.
type Model struct {
	Goal     Goal      `json:"goal"`
	Features []string  `json:"features"` // names, in coefficient order
	Mean     []float64 `json:"mean"`     // standardisation of each feature
	Scale    []float64 `json:"scale"`
	Coef     []float64 `json:"coef"`
	Bias     float64   `json:"bias"`
	// Spec is how features are built from a Dataset (event names, not indexes: a later
	// Dataset may number events differently). Filled by Train; opaque to callers.
	Spec json.RawMessage `json:"spec"`
}

// Validate checks the goal's kind, events and window. The error names the field, in plain
// words, for a 400 response.
func (g Goal) Validate() error {
	switch g.Kind {
	case Churn, LTV:
		if len(g.Events) != 1 {
			return fmt.Errorf("events: a %s prediction takes exactly 1 event, not %d", g.Kind, len(g.Events))
		}
	case Purchase, Custom:
		if len(g.Events) < 1 || len(g.Events) > 2 {
			return fmt.Errorf("events: a %s prediction takes 1 or 2 events, not %d", g.Kind, len(g.Events))
		}
	case "":
		return errors.New("kind: missing; one of churn, purchase, custom, ltv")
	default:
		return fmt.Errorf("kind: %q is not one of churn, purchase, custom, ltv", g.Kind)
	}
	for i, e := range g.Events {
		if e == "" {
			return fmt.Errorf("events: event %d is empty", i+1)
		}
	}
	if len(g.Events) == 2 && g.Events[0] == g.Events[1] {
		return fmt.Errorf("events: %q is named twice", g.Events[0])
	}
	if g.Kind == LTV {
		// ltv always predicts the next 120 days; 0 is taken as 120.
		if g.WindowDays != 0 && g.WindowDays != LTVWindow {
			return fmt.Errorf("window_days: an ltv prediction covers %d days, not %d", LTVWindow, g.WindowDays)
		}
		return nil
	}
	if !slices.Contains(Windows, g.WindowDays) {
		return fmt.Errorf("window_days: %d is not one of 15, 30, 60, 90, 120", g.WindowDays)
	}
	if g.WithProperty && g.Kind == Churn {
		return errors.New("property: a churn prediction does not take a property")
	}
	return nil
}

// window is the goal's window in days (ltv: 120 whatever WindowDays says).
func (g Goal) window() int {
	if g.Kind == LTV {
		return LTVWindow
	}
	return g.WindowDays
}
