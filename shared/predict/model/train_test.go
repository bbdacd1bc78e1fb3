package model_test

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/unifiedprofiles/up/shared/predict/model"
	"github.com/unifiedprofiles/up/shared/predict/predicttest"
)

const today = predicttest.DefaultToday

// The generated workspaces, made once and shared (read-only) by the tests.
var (
	signal120 = sync.OnceValues(func() (model.Dataset, predicttest.Truth) {
		return predicttest.Generate(predicttest.Config{Seed: 1, Profiles: 5000, Days: 120, Signal: true})
	})
	noSignal120 = sync.OnceValues(func() (model.Dataset, predicttest.Truth) {
		return predicttest.Generate(predicttest.Config{Seed: 2, Profiles: 5000, Days: 120})
	})
	signal360 = sync.OnceValues(func() (model.Dataset, predicttest.Truth) {
		return predicttest.Generate(predicttest.Config{Seed: 3, Profiles: 5000, Days: 360, Signal: true})
	})
)

func goal(kind string, window int, events ...string) model.Goal {
	return model.Goal{Kind: kind, Events: events, WindowDays: window}
}

// checkResult asserts what holds for any trained Result on d: quality fields consistent,
// the split about 22 % held out among the profiles active before the cutoff, every
// profile active by today scored, percentiles that follow the predictions.
func checkResult(t *testing.T, g model.Goal, d model.Dataset, res model.Result) {
	t.Helper()
	q := res.Quality
	w := int32(g.WindowDays)
	if g.Kind == model.LTV {
		w = 120
	}
	eligible, scored := 0, 0
	for _, p := range d.Profiles {
		purchases, before, byToday := 0, false, false
		for _, a := range p.Activity {
			if g.Kind == model.LTV && a.Event == uint16(slices.Index(d.Events, g.Events[0])) && a.Day <= today-w {
				purchases += int(a.Count)
			}
			before = before || a.Day <= today-w
			byToday = byToday || a.Day <= today
		}
		if g.Kind == model.LTV {
			before = purchases >= 2
		}
		if before {
			eligible++
		}
		if byToday && g.Kind != model.LTV {
			scored++
		}
	}
	if q.Trained+q.HeldOut != eligible {
		t.Errorf("trained %d + held out %d, want the %d eligible profiles", q.Trained, q.HeldOut, eligible)
	}
	if share := float64(q.HeldOut) / float64(eligible); share < 0.18 || share > 0.26 {
		t.Errorf("held out %.3f of the profiles, want about 0.22", share)
	}
	if g.Kind != model.LTV && len(res.Scores) != scored {
		t.Errorf("%d profiles scored, want every one active by today: %d", len(res.Scores), scored)
	}
	if len(res.Scores) != len(res.Predicted) || len(res.Scores) == 0 {
		t.Fatalf("%d scores, %d predictions", len(res.Scores), len(res.Predicted))
	}
	type sp struct{ pred, pct float64 }
	var all []sp
	for id, s := range res.Scores {
		p, ok := res.Predicted[id]
		if !ok || s < 0 || s > 1 || math.IsNaN(p) {
			t.Fatalf("profile %s: score %v, prediction %v (%v)", id, s, p, ok)
		}
		all = append(all, sp{p, s})
	}
	slices.SortFunc(all, func(a, b sp) int { return cmp.Compare(a.pred, b.pred) })
	for i := 1; i < len(all); i++ {
		if all[i].pct < all[i-1].pct || (all[i].pred == all[i-1].pred) != (all[i].pct == all[i-1].pct) {
			t.Fatalf("percentiles do not follow the predictions: %v then %v", all[i-1], all[i])
		}
	}
	if all[len(all)-1].pct != 1 && all[len(all)-1].pred != all[len(all)-2].pred {
		t.Errorf("the highest prediction has percentile %v, want 1", all[len(all)-1].pct)
	}
	m := res.Model
	if n := len(m.Features); n == 0 || len(m.Coef) != n || len(m.Mean) != n || len(m.Scale) != n {
		t.Errorf("model: %d features, %d weights, %d means, %d scales", n, len(m.Coef), len(m.Mean), len(m.Scale))
	}
	if len(res.TopFeatures) == 0 || len(res.TopFeatures) > 10 {
		t.Errorf("%d top features, want 1–10", len(res.TopFeatures))
	}
	for i, f := range res.TopFeatures {
		if !slices.Contains(m.Features, f.Name) || (i > 0 && math.Abs(f.Weight) > math.Abs(res.TopFeatures[i-1].Weight)) {
			t.Errorf("top feature %d %+v: unknown or out of order", i, f)
		}
	}
}

// Acceptance 1: with a planted signal, churn and purchase reach a held-out AUC ≥ 0.8; the
// other goal shapes (two events, a property, window 15) at least 0.7.
func TestTrainSignal(t *testing.T) {
	t.Parallel()
	withProp := goal(model.Purchase, 15, predicttest.Purchase)
	withProp.WithProperty = true
	for _, tc := range []struct {
		name   string
		g      model.Goal
		minAUC float64
	}{
		{"churn on a common event", goal(model.Churn, 30, "Page Viewed"), 0.8},
		{"churn on the purchase event", goal(model.Churn, 30, predicttest.Purchase), 0.8},
		{"purchase", goal(model.Purchase, 30, predicttest.Purchase), 0.8},
		{"purchase with the property, 15 days", withProp, 0.7},
		{"custom, two events, 15 days", goal(model.Custom, 15, "Support Ticket", "App Opened"), 0.7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, _ := signal120()
			res, err := model.Train(tc.g, d, today)
			if err != nil {
				t.Fatal(err)
			}
			q := res.Quality
			t.Logf("AUC %.3f, log loss %.3f, lift %.2f, %s, %d held out; top %+v", q.AUC, *q.LogLoss, q.LiftTop20, q.Grade, q.HeldOut, res.TopFeatures[0])
			if q.AUC < tc.minAUC {
				t.Errorf("held-out AUC %.3f, want ≥ %.2f", q.AUC, tc.minAUC)
			}
			if q.Grade != model.GradeAUC(q.AUC) || q.Spearman != nil {
				t.Errorf("grade %q for AUC %.3f, Spearman %v", q.Grade, q.AUC, q.Spearman)
			}
			if q.LogLoss == nil || *q.LogLoss >= math.Ln2 || q.LiftTop20 <= 1.2 {
				t.Errorf("log loss %v (a coin: 0.693), lift %.2f", q.LogLoss, q.LiftTop20)
			}
			checkResult(t, tc.g, d, res)
		})
	}
}

// Churn on an event is the complement of purchasing it: the same model with its sign
// flipped, so the same AUC and complementary probabilities. A check on the labels' sense.
func TestChurnIsNotPurchase(t *testing.T) {
	t.Parallel()
	d, _ := signal120()
	churn, err := model.Train(goal(model.Churn, 30, predicttest.Purchase), d, today)
	if err != nil {
		t.Fatal(err)
	}
	buy, err := model.Train(goal(model.Purchase, 30, predicttest.Purchase), d, today)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(churn.Quality.AUC-buy.Quality.AUC) > 1e-6 {
		t.Errorf("AUC churn %v, purchase %v", churn.Quality.AUC, buy.Quality.AUC)
	}
	for id, p := range churn.Predicted {
		if math.Abs(p+buy.Predicted[id]-1) > 1e-4 {
			t.Fatalf("%s: P(churn) %v + P(purchase) %v ≠ 1", id, p, buy.Predicted[id])
		}
	}
}

// Acceptance 2: ltv needs 3 × 120 days of history; with it, its predicted spend ranks the
// planted future spend with a Spearman ≥ 0.6.
func TestLTV(t *testing.T) {
	t.Parallel()
	g := model.Goal{Kind: model.LTV, Events: []string{predicttest.Purchase}}
	t.Run("120 days of history are too few", func(t *testing.T) {
		t.Parallel()
		d, _ := signal120()
		_, err := model.Train(g, d, today)
		if !errors.Is(err, model.ErrNotEnoughData) || !strings.Contains(err.Error(), "history:") {
			t.Fatalf("Train: %v, want ErrNotEnoughData naming history", err)
		}
		// No profile has activity before today−120, so none can be learned from either.
		want := map[string]string{
			model.RuleHistory:        "the oldest activity is 120 days old; 360 days are needed (3 × the 120-day window), 240 more",
			model.RuleGoalReached:    "0 profiles with at least 2 purchases spent something in the 120 days before today; 100 are needed (100 more)",
			model.RuleGoalNotReached: "0 profiles with at least 2 purchases spent nothing in the 120 days before today; 100 are needed (100 more)",
		}
		for _, r := range model.Check(g, d, today) {
			if w, ok := want[r.Rule]; ok && (r.Met || r.Detail != w) {
				t.Errorf("%s: %+v, want unmet, %q", r.Rule, r, w)
			} else if !ok && !r.Met {
				t.Errorf("%+v: want met", r)
			}
		}
	})
	t.Run("360 days", func(t *testing.T) {
		t.Parallel()
		d, truth := signal360()
		res, err := model.Train(g, d, today)
		if err != nil {
			t.Fatal(err)
		}
		var pred, future []float64
		for id, p := range res.Predicted {
			pred = append(pred, p)
			future = append(future, truth.FutureSpend[id])
		}
		rho := model.Spearman(pred, future)
		q := res.Quality
		t.Logf("Spearman with the planted future %.3f over %d profiles; held out: Spearman %.3f, AUC(spends) %.3f, lift %.2f, %s; top %+v",
			rho, len(pred), *q.Spearman, q.AUC, q.LiftTop20, q.Grade, res.TopFeatures[:2])
		if rho < 0.6 {
			t.Errorf("Spearman(predicted, planted future spend) = %.3f, want ≥ 0.6", rho)
		}
		if q.LogLoss != nil || q.Spearman == nil || q.Grade != model.GradeSpearman(*q.Spearman) {
			t.Errorf("quality %+v: want no log loss, a Spearman and its grade", q)
		}
		if res.Model.Goal.WindowDays != 120 {
			t.Errorf("model window %d, want 120", res.Model.Goal.WindowDays)
		}
		// Scored: the profiles with at least 2 purchases by today, and only they.
		oc := uint16(slices.Index(d.Events, predicttest.Purchase))
		for _, p := range d.Profiles {
			n := 0
			for _, a := range p.Activity {
				if a.Event == oc {
					n += int(a.Count)
				}
			}
			if _, ok := res.Scores[p.ID]; ok != (n >= 2) {
				t.Fatalf("%s: %d purchases, scored %v", p.ID, n, ok)
			}
			if s := res.Predicted[p.ID]; s < 0 {
				t.Fatalf("%s: negative spend %v", p.ID, s)
			}
		}
		checkResult(t, g, d, res)
	})
}

// Acceptance 3: without signal the held-out AUC is a coin's, and graded poor.
func TestTrainNoSignal(t *testing.T) {
	t.Parallel()
	for _, g := range []model.Goal{
		goal(model.Churn, 30, predicttest.Purchase),
		goal(model.Purchase, 30, predicttest.Purchase),
		goal(model.Purchase, 15, predicttest.Purchase),
	} {
		t.Run(fmt.Sprint(g.Kind, g.WindowDays), func(t *testing.T) {
			t.Parallel()
			d, _ := noSignal120()
			res, err := model.Train(g, d, today)
			if err != nil {
				t.Fatal(err)
			}
			q := res.Quality
			t.Logf("AUC %.3f, log loss %.3f, lift %.2f, %d held out", q.AUC, *q.LogLoss, q.LiftTop20, q.HeldOut)
			if math.Abs(q.AUC-0.5) > 0.07 || q.Grade != model.Poor {
				t.Errorf("AUC %.3f graded %s, want 0.5 ± 0.07, poor", q.AUC, q.Grade)
			}
		})
	}
}

// Acceptance 4: a workspace short on everything gets each rule named, with its numbers.
func TestNotEnoughData(t *testing.T) {
	t.Parallel()
	d, _ := predicttest.Generate(predicttest.Config{Seed: 4, Profiles: 150, Days: 40, EventTypes: 3, Anonymous: 12, Signal: true})
	g := goal(model.Churn, 30, predicttest.Purchase)
	// What Check should find, counted here the plain way.
	oc := uint16(slices.Index(d.Events, predicttest.Purchase))
	churned, stayed := 0, 0
	oldest := today
	for _, p := range d.Profiles {
		before, bought := false, false
		for _, a := range p.Activity {
			oldest = min(oldest, a.Day)
			before = before || a.Day <= today-30
			bought = bought || (a.Event == oc && a.Day > today-30)
		}
		switch {
		case !before:
		case bought:
			stayed++
		default:
			churned++
		}
	}
	want := map[string]string{
		model.RuleGoalReached:        fmt.Sprintf("%d profiles reached the goal in the 30 days before today; 100 are needed (%d more)", churned, 100-churned),
		model.RuleGoalNotReached:     fmt.Sprintf("%d profiles did not reach the goal in the 30 days before today; 100 are needed (%d more)", stayed, 100-stayed),
		model.RuleHistory:            fmt.Sprintf("the oldest activity is %d days old; 90 days are needed (3 × the 30-day window), %d more", today-oldest+1, 90-(today-oldest+1)),
		model.RuleEventTypes:         "3 event types have activity; 5 are needed (2 more)",
		model.RuleIdentifiedProfiles: "150 identified profiles (anonymous ones are not used: 12 left out); 200 are needed (50 more)",
	}
	if today-oldest+1 != 40 {
		t.Errorf("the generator's oldest activity is %d days old, want 40", today-oldest+1)
	}
	reqs := model.Check(g, d, today)
	var rules []string
	for _, r := range reqs {
		rules = append(rules, r.Rule)
		if r.Met || r.Detail != want[r.Rule] {
			t.Errorf("%s: met %v, %q\n want unmet, %q", r.Rule, r.Met, r.Detail, want[r.Rule])
		}
	}
	if wantRules := []string{"goal_reached", "goal_not_reached", "history", "event_types", "identified_profiles"}; !slices.Equal(rules, wantRules) {
		t.Errorf("rules %v, want %v", rules, wantRules)
	}
	_, err := model.Train(g, d, today)
	if !errors.Is(err, model.ErrNotEnoughData) {
		t.Fatalf("Train: %v, want ErrNotEnoughData", err)
	}
	for rule, detail := range want {
		if !strings.Contains(err.Error(), rule+": "+detail) {
			t.Errorf("Train's error %q does not name %s: %s", err, rule, detail)
		}
	}
}

// On a workspace with enough data every rule is met, and says what is there.
func TestCheckMet(t *testing.T) {
	t.Parallel()
	d, _ := signal120()
	for _, r := range model.Check(goal(model.Purchase, 30, predicttest.Purchase), d, today) {
		if !r.Met || strings.Contains(r.Detail, "more") {
			t.Errorf("%+v: want met, with nothing more needed", r)
		}
	}
	// A window of 60 needs 180 days: only history fails.
	for _, r := range model.Check(goal(model.Purchase, 60, predicttest.Purchase), d, today) {
		if r.Met != (r.Rule != model.RuleHistory) {
			t.Errorf("window 60: %+v", r)
		}
	}
	// Unless the space's activity goes further back than the days the dataset holds
	// (FirstDay), as a loader that reads only 3 × the window says; a FirstDay after the
	// oldest activity held changes nothing.
	for _, tc := range []struct {
		first int32
		met   bool
		says  string
	}{
		{today - 199, true, "the oldest activity is 200 days old"},
		{today - 10, false, "the oldest activity is 120 days old"},
	} {
		withFirst := d
		withFirst.FirstDay = tc.first
		for _, r := range model.Check(goal(model.Purchase, 60, predicttest.Purchase), withFirst, today) {
			if r.Rule == model.RuleHistory && (r.Met != tc.met || !strings.HasPrefix(r.Detail, tc.says)) {
				t.Errorf("window 60, first day today−%d: %+v", today-tc.first, r)
			}
		}
	}
	// An event nobody performs: nobody reaches the goal.
	r := model.Check(goal(model.Purchase, 30, "Never Happens"), d, today)[0]
	if r.Met || !strings.HasPrefix(r.Detail, "0 profiles reached the goal") {
		t.Errorf("an unknown event: %+v", r)
	}
}

// Acceptance 5: a stored model (through JSON) rescores the same data to the same scores,
// also when the dataset numbers its events differently and names one more.
func TestScoreStoredModel(t *testing.T) {
	t.Parallel()
	for _, g := range []model.Goal{
		goal(model.Purchase, 30, predicttest.Purchase),
		{Kind: model.LTV, Events: []string{predicttest.Purchase}},
	} {
		t.Run(g.Kind, func(t *testing.T) {
			t.Parallel()
			d, _ := signal120()
			if g.Kind == model.LTV {
				d, _ = signal360()
			}
			res, err := model.Train(g, d, today)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(res.Model)
			if err != nil {
				t.Fatal(err)
			}
			var stored model.Model
			if err := json.Unmarshal(b, &stored); err != nil {
				t.Fatal(err)
			}
			for name, ds := range map[string]model.Dataset{"same": d, "events reordered": reorder(d)} {
				scores, predicted, err := model.Score(stored, ds, today)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !reflect.DeepEqual(scores, res.Scores) || !reflect.DeepEqual(predicted, res.Predicted) {
					t.Errorf("%s: Score differs from Train's scores (%d vs %d)", name, len(scores), len(res.Scores))
				}
			}
			// Scoring later (a week on, nothing new) still scores every eligible profile.
			scores, _, err := model.Score(stored, d, today+7)
			if err != nil || len(scores) != len(res.Scores) {
				t.Errorf("a week later: %v, %d scores, want %d", err, len(scores), len(res.Scores))
			}
		})
	}
}

// reorder returns d with its events numbered backwards and a new, unused event name first,
// each profile's activity renumbered and sorted again by day then event.
func reorder(d model.Dataset) model.Dataset {
	n := len(d.Events)
	out := model.Dataset{Events: []string{"Newsletter Signup"}, Anonymous: d.Anonymous}
	for i := n - 1; i >= 0; i-- {
		out.Events = append(out.Events, d.Events[i])
	}
	for _, p := range d.Profiles {
		act := slices.Clone(p.Activity)
		for i := range act {
			act[i].Event = uint16(n - int(act[i].Event)) // old i → new n−i (0 is the new name)
		}
		slices.SortFunc(act, func(a, b model.Activity) int {
			return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Event, b.Event))
		})
		out.Profiles = append(out.Profiles, model.Profile{ID: p.ID, Activity: act})
	}
	return out
}

func TestScoreRejectsBadModels(t *testing.T) {
	t.Parallel()
	d, _ := signal120()
	res, err := model.Train(goal(model.Purchase, 30, predicttest.Purchase), d, today)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		spoil func(m *model.Model)
	}{
		{"invalid goal", func(m *model.Model) { m.Goal.WindowDays = 45 }},
		{"another window than trained", func(m *model.Model) { m.Goal.WindowDays = 60 }},
		{"spec not JSON", func(m *model.Model) { m.Spec = json.RawMessage(`{"version":`) }},
		{"spec of another version", func(m *model.Model) {
			m.Spec = json.RawMessage(strings.Replace(string(m.Spec), `"version":1`, `"version":99`, 1))
		}},
		{"a weight missing", func(m *model.Model) { m.Coef = m.Coef[1:] }},
		{"a feature renamed", func(m *model.Model) { m.Features = append([]string{"x"}, m.Features[1:]...) }},
		{"no spec", func(m *model.Model) { m.Spec = nil }},
		{"a zero scale", func(m *model.Model) { m.Scale[3] = 0 }},
	} {
		m := res.Model
		m.Features, m.Coef, m.Scale, m.Spec = slices.Clone(m.Features), slices.Clone(m.Coef), slices.Clone(m.Scale), slices.Clone(m.Spec)
		tc.spoil(&m)
		if _, _, err := model.Score(m, d, today); err == nil {
			t.Errorf("%s: Score accepted it", tc.name)
		}
	}
}

// Train is deterministic: the same inputs give the same Result, bit for bit.
func TestTrainDeterministic(t *testing.T) {
	t.Parallel()
	d, _ := signal120()
	g := goal(model.Custom, 30, "Support Ticket", "App Opened")
	a, err := model.Train(g, d, today)
	if err != nil {
		t.Fatal(err)
	}
	b, err := model.Train(g, d, today)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("two trainings on the same data differ")
	}
}

func TestTrainInvalidGoal(t *testing.T) {
	t.Parallel()
	d, _ := signal120()
	_, err := model.Train(goal(model.Churn, 45, predicttest.Purchase), d, today)
	if err == nil || errors.Is(err, model.ErrNotEnoughData) || !strings.Contains(err.Error(), "window_days") {
		t.Errorf("Train: %v, want a validation error naming window_days", err)
	}
}
