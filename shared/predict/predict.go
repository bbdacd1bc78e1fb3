// Package predict runs a space's predictive traits (ARCHITECTURE.md section 5, "Predictions"):
// churn, purchase, custom goals and lifetime value. It keeps each prediction's record, takes
// and frees its workspace slot, and runs it on the sync pattern (section 3): a time-ordered
// due partition, a lease claimed with a conditional write, one run at a time. A run reads the
// space's non-anonymous profiles' daily activity into a model.Dataset, checks the data
// requirements, trains (every 30 days) or rescores with the stored model (every 7 days), and
// hands the percentiles to the profile service, which shows them as a computed trait.
//
// The fitting itself is package model's; this package knows no AWS, bbolt or HTTP.
package predict

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/predict/model"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/traits"
)

// Statuses of a prediction.
const (
	StatusWaitingForData = "waiting_for_data" // a data requirement is unmet; checked again daily
	StatusTraining       = "training"         // created (or its model lost): the first run is queued or under way
	StatusReady          = "ready"            // trained and scored
	StatusFailed         = "failed"           // the last run failed (see error); retried the next day
)

// Schedule of a prediction's runs.
const (
	RetrainEvery = 30 * 24 * time.Hour
	RescoreEvery = 7 * 24 * time.Hour
	// RecheckEvery is how soon a prediction waiting for data, or whose run failed, runs
	// again: daily counts move once a day.
	RecheckEvery = 24 * time.Hour
)

// LTVWindowDays is the window of an ltv prediction (spend in the next 120 days); the others
// take one of model.Windows.
const LTVWindowDays = model.LTVWindow

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// Spec is a prediction as posted: POST …/spaces/{sp}/predictions. Optional fields are
// pointers so that a field given to a kind it does not apply to (even empty) is refused,
// never silently dropped.
type Spec struct {
	Kind            string   `json:"kind"`
	Key             string   `json:"key"`
	Event           *string  `json:"event"`
	Events          []string `json:"events"`
	Property        *string  `json:"property"`
	PurchaseEvent   *string  `json:"purchase_event"`
	RevenueProperty *string  `json:"revenue_property"`
	Currency        *string  `json:"currency"`
	WindowDays      *int     `json:"window_days"`
}

// Validate checks s and returns the first fault as an invalid_field error (400) naming the
// field: the kind, the key (a computed trait's key rules), the fields of the kind only, the
// window (15, 30, 60, 90 or 120 days; 120 for ltv), and a money property (one of
// profile.MoneyProperties) where one is read.
func (s Spec) Validate() error {
	kinds := []string{model.Churn, model.Purchase, model.Custom, model.LTV}
	switch {
	case s.Kind == "":
		return errcode.InvalidField("kind", "is required: one of %s", strings.Join(kinds, ", "))
	case !slices.Contains(kinds, s.Kind):
		return errcode.InvalidField("kind", "%q is not one of %s", errcode.Clip(s.Kind), strings.Join(kinds, ", "))
	}
	if err := validKey(s.Key); err != nil {
		return err
	}
	// Fields of other kinds, in the order they are posted.
	given := []struct {
		field string
		set   bool
		kinds []string
	}{
		{"event", s.Event != nil, []string{model.Churn}},
		{"events", s.Events != nil, []string{model.Purchase, model.Custom}},
		{"property", s.Property != nil, []string{model.Purchase, model.Custom}},
		{"purchase_event", s.PurchaseEvent != nil, []string{model.LTV}},
		{"revenue_property", s.RevenueProperty != nil, []string{model.LTV}},
		{"currency", s.Currency != nil, []string{model.LTV}},
	}
	for _, g := range given {
		if g.set && !slices.Contains(g.kinds, s.Kind) {
			return errcode.InvalidField(g.field, "does not apply to %s prediction (only to %s)", withArticle(s.Kind), strings.Join(g.kinds, " and "))
		}
	}
	switch s.Kind {
	case model.Churn:
		if s.Event == nil {
			return errcode.InvalidField("event", "is required: the event whose absence in the window is churn")
		}
		if err := validEvent("event", *s.Event); err != nil {
			return err
		}
		return validWindow(s.WindowDays)
	case model.Purchase, model.Custom:
		switch {
		case s.Events == nil:
			return errcode.InvalidField("events", "is required: the 1 or 2 events that reach the goal")
		case len(s.Events) == 0 || len(s.Events) > 2:
			return errcode.InvalidField("events", "has %d events; give 1 or 2", len(s.Events))
		}
		for i, e := range s.Events {
			if err := validEvent(fmt.Sprintf("events[%d]", i), e); err != nil {
				return err
			}
		}
		if len(s.Events) == 2 && s.Events[0] == s.Events[1] {
			return errcode.InvalidField("events[1]", "repeats events[0]; give two different events, or one")
		}
		if s.Property != nil {
			if err := validMoney("property", *s.Property); err != nil {
				return err
			}
		}
		return validWindow(s.WindowDays)
	default: // ltv
		if s.PurchaseEvent == nil {
			return errcode.InvalidField("purchase_event", "is required: the event of a purchase")
		}
		if err := validEvent("purchase_event", *s.PurchaseEvent); err != nil {
			return err
		}
		if s.RevenueProperty == nil {
			return errcode.InvalidField("revenue_property", "is required: the purchase event's property holding the amount, one of %s", strings.Join(profile.MoneyProperties, ", "))
		}
		if err := validMoney("revenue_property", *s.RevenueProperty); err != nil {
			return err
		}
		if s.Currency != nil && !currencyPattern.MatchString(*s.Currency) {
			return errcode.InvalidField("currency", "%q is not an ISO 4217 code (three capital letters, such as USD)", errcode.Clip(*s.Currency))
		}
		if s.WindowDays != nil && *s.WindowDays != LTVWindowDays {
			return errcode.InvalidField("window_days", "an ltv prediction always looks %d days ahead; leave window_days out or give %d", LTVWindowDays, LTVWindowDays)
		}
	}
	return nil
}

// withArticle is "a churn", "an ltv".
func withArticle(kind string) string {
	if kind == model.LTV {
		return "an " + kind
	}
	return "a " + kind
}

// validKey applies the computed-trait key rules (the score is shown as a computed trait under
// the key): traits.Definition.Validate checks the key first, and the rest of this
// definition is valid, so any fault it finds is the key's.
func validKey(key string) error {
	return traits.Definition{Key: key, Type: traits.EventCounter, Event: "key check"}.Validate()
}

func validEvent(field, e string) error {
	switch {
	case strings.TrimSpace(e) == "":
		return errcode.InvalidField(field, "is blank: give an event name as your sources send it")
	case len(e) > traits.MaxEventLen:
		return errcode.InvalidField(field, "is longer than %d characters", traits.MaxEventLen)
	}
	return nil
}

func validMoney(field, p string) error {
	if !slices.Contains(profile.MoneyProperties, p) {
		return errcode.InvalidField(field, "%q is not a money property the profiles keep daily sums of: use one of %s", errcode.Clip(p), strings.Join(profile.MoneyProperties, ", "))
	}
	return nil
}

func validWindow(w *int) error {
	const want = "15, 30, 60, 90 or 120"
	switch {
	case w == nil:
		return errcode.InvalidField("window_days", "is required: how many days ahead to predict, %s", want)
	case !slices.Contains(model.Windows, *w):
		return errcode.InvalidField("window_days", "%d is not one of %s", *w, want)
	}
	return nil
}

// Prediction is a prediction as the API shows it: its definition as posted (ltv's window
// filled in), its state and its last run's results.
type Prediction struct {
	ID              string   `json:"id"`
	WorkspaceID     string   `json:"workspace_id"`
	SpaceID         string   `json:"space_id"`
	Kind            string   `json:"kind"`
	Key             string   `json:"key"`
	Event           string   `json:"event,omitempty"`
	Events          []string `json:"events,omitempty"`
	Property        string   `json:"property,omitempty"`
	PurchaseEvent   string   `json:"purchase_event,omitempty"`
	RevenueProperty string   `json:"revenue_property,omitempty"`
	Currency        string   `json:"currency,omitempty"`
	WindowDays      int      `json:"window_days"`

	Status string `json:"status"`
	// Requirements are the data requirements as the last run found them, each with what is
	// missing; empty until the first run.
	Requirements []model.Requirement `json:"requirements"`
	// Quality and TopFeatures are the last training's; null and empty before it.
	Quality        *model.Quality  `json:"quality"`
	TopFeatures    []model.Feature `json:"top_features"`
	TrainedAt      *time.Time      `json:"trained_at"`
	ScoredAt       *time.Time      `json:"scored_at"`
	ProfilesScored int             `json:"profiles_scored"`
	// AnonymousProfiles is how many anonymous profiles the last run left out (never used).
	AnonymousProfiles int    `json:"anonymous_profiles"`
	Error             string `json:"error,omitempty"`
	// Progress is the run under way, null when none is.
	Progress    *Progress  `json:"progress"`
	CreatedAt   time.Time  `json:"created_at"`
	LastRunAt   *time.Time `json:"last_run_at"`
	NextRunAt   *time.Time `json:"next_run_at"`
	NextTrainAt *time.Time `json:"next_train_at"`
	NextScoreAt *time.Time `json:"next_score_at"`
}

// Progress is a run under way.
type Progress struct {
	StartedAt time.Time `json:"started_at"`
	// Step: counting (the space's stored events folded into its daily counts, once after its
	// first prediction), loading (profiles' daily activity), training or scoring.
	Step           string `json:"step"`
	ProfilesLoaded int    `json:"profiles_loaded"`
}

// Steps of a run.
const (
	StepCounting = "counting"
	StepLoading  = "loading"
	StepTraining = "training"
	StepScoring  = "scoring"
)

// Goal is what the prediction predicts, as package model takes it.
func (p Prediction) Goal() model.Goal {
	switch p.Kind {
	case model.Churn:
		return model.Goal{Kind: p.Kind, Events: []string{p.Event}, WindowDays: p.WindowDays}
	case model.LTV:
		return model.Goal{Kind: p.Kind, Events: []string{p.PurchaseEvent}, WindowDays: LTVWindowDays}
	}
	return model.Goal{Kind: p.Kind, Events: slices.Clone(p.Events), WindowDays: p.WindowDays, WithProperty: p.Property != ""}
}

// moneyProperty is the property whose daily sums become the goal events' Revenue ("" when
// the goal reads none).
func (p Prediction) moneyProperty() string {
	if p.Kind == model.LTV {
		return p.RevenueProperty
	}
	return p.Property
}

// historyDays is how far back a run reads: the history the requirements ask for (3 × the
// window; ltv 360 days).
func (p Prediction) historyDays() int {
	if p.Kind == model.LTV {
		return model.HistoryWindows * LTVWindowDays
	}
	return model.HistoryWindows * p.WindowDays
}

// fromSpec is the definition part of a new prediction (s is valid).
func fromSpec(s Spec) Prediction {
	p := Prediction{Kind: s.Kind, Key: s.Key, Events: slices.Clone(s.Events)}
	str := func(v *string) string {
		if v == nil {
			return ""
		}
		return *v
	}
	p.Event, p.Property, p.PurchaseEvent, p.RevenueProperty, p.Currency = str(s.Event), str(s.Property), str(s.PurchaseEvent), str(s.RevenueProperty), str(s.Currency)
	if s.WindowDays != nil {
		p.WindowDays = *s.WindowDays
	}
	if p.Kind == model.LTV {
		p.WindowDays = LTVWindowDays
	}
	return p
}

// record is a prediction as stored: the view and its run's lease.
type record struct {
	Prediction
	// RunID names the run holding the lease until LeaseUntil; a run that finds another
	// RunID on the record at its end lost the lease and writes nothing.
	RunID      string    `json:"run_id,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// TrainRequestedAt: "train now" was asked then; the next run trains, whatever the
	// schedule. A run clears it at its end only if it was asked before the run began.
	TrainRequestedAt *time.Time `json:"train_requested_at,omitempty"`
	// Tries counts the runs that claimed the prediction since one last finished: each
	// that stopped without finishing (out of time or memory) left one.
	Tries int `json:"tries,omitempty"`
	// LastLoaded is how many profiles the last run had loaded when it last said so.
	LastLoaded int `json:"last_loaded,omitempty"`
}

// Due is a prediction whose run is due: what the dispatcher queues for the worker.
type Due struct {
	WorkspaceID  string    `json:"workspace_id"`
	SpaceID      string    `json:"space_id"`
	PredictionID string    `json:"prediction_id"`
	At           time.Time `json:"at"`
}
