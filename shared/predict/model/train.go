package model

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
)

// heldOutPercent of the profiles, chosen by a hash of the profile ID, are held out of
// training and measure the quality: the same profile is always on the same side, so a
// retrain never grades itself on profiles it learned from.
const heldOutPercent = 22

// topFeatures is how many features Result.TopFeatures lists.
const topFeatures = 10

// heldOut tells whether the profile is in the held-out part (FNV-1a of the ID).
func heldOut(id string) bool {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()%100 < heldOutPercent
}

// Check reports every data requirement for g, met or not, on the activity up to today
// (the day number of the last complete day; later activity is ignored). g must be valid
// (Validate). The goal rules count the profiles Train would learn from: those with
// activity (ltv: at least 2 purchases) on or before today−W, by their outcome in the
// window (today−W, today].
func Check(g Goal, d Dataset, today int32) []Requirement {
	w := int32(g.window())
	cutoff := today - w
	b := newBuilder(spec{Horizons: horizons(int(w))}, g, d.Events)
	reached, notReached := 0, 0
	oldest := int32(math.MaxInt32)
	if d.FirstDay != 0 && d.FirstDay <= today {
		oldest = d.FirstDay
	}
	seen := make([]bool, len(d.Events))
	types := 0
	for i := range d.Profiles {
		p := &d.Profiles[i]
		for _, a := range p.Activity {
			if a.Day > today || a.Count <= 0 || int(a.Event) >= len(seen) {
				continue
			}
			oldest = min(oldest, a.Day)
			if !seen[a.Event] {
				seen[a.Event] = true
				types++
			}
		}
		if !b.eligible(p, cutoff) {
			continue
		}
		l := b.label(p, cutoff)
		if (g.Kind == LTV && l > 0) || (g.Kind != LTV && l == 1) {
			reached++
		} else {
			notReached++
		}
	}

	who, did, didNot := "profiles", "reached the goal", "did not reach the goal"
	if g.Kind == LTV {
		who = fmt.Sprintf("profiles with at least %d purchases", MinLTVPurchases)
		did, didNot = "spent something", "spent nothing"
	}
	count := func(rule string, n int, what string) Requirement {
		r := Requirement{Rule: rule, Met: n >= MinPerClass}
		r.Detail = fmt.Sprintf("%d %s %s in the %d days before today; %d are needed", n, who, what, w, MinPerClass)
		if !r.Met {
			r.Detail += fmt.Sprintf(" (%d more)", MinPerClass-n)
		}
		return r
	}

	need := HistoryWindows * int(w)
	hist := Requirement{Rule: RuleHistory}
	if oldest == math.MaxInt32 {
		hist.Detail = fmt.Sprintf("there is no activity yet; %d days are needed (%d × the %d-day window)", need, HistoryWindows, w)
	} else {
		// A day's activity is 1 day old on that day: days today−N+1 … today are N days.
		age := int(today-oldest) + 1
		hist.Met = age >= need
		hist.Detail = fmt.Sprintf("the oldest activity is %d days old; %d days are needed (%d × the %d-day window)", age, need, HistoryWindows, w)
		if !hist.Met {
			hist.Detail += fmt.Sprintf(", %d more", need-age)
		}
	}

	ev := Requirement{Rule: RuleEventTypes, Met: types >= MinEventTypes}
	ev.Detail = fmt.Sprintf("%d event types have activity; %d are needed", types, MinEventTypes)
	if !ev.Met {
		ev.Detail += fmt.Sprintf(" (%d more)", MinEventTypes-types)
	}

	ids := Requirement{Rule: RuleIdentifiedProfiles, Met: len(d.Profiles) >= MinIdentified}
	ids.Detail = fmt.Sprintf("%d identified profiles (anonymous ones are not used: %d left out); %d are needed", len(d.Profiles), d.Anonymous, MinIdentified)
	if !ids.Met {
		ids.Detail += fmt.Sprintf(" (%d more)", MinIdentified-len(d.Profiles))
	}

	return []Requirement{
		count(RuleGoalReached, reached, did),
		count(RuleGoalNotReached, notReached, didNot),
		hist, ev, ids,
	}
}

// Train checks the requirements (an unmet one: an error wrapping ErrNotEnoughData that names
// each), builds features at the cutoff today−W for the profiles eligible then, labels them
// on (today−W, today], fits on the profiles not held out, measures on the held-out ones,
// and scores every profile eligible today with the fitted model (as Score would).
// Deterministic: the same inputs give the same Result.
func Train(g Goal, d Dataset, today int32) (Result, error) {
	if err := g.Validate(); err != nil {
		return Result{}, err
	}
	if g.Kind == LTV {
		g.WindowDays = LTVWindow
	}
	var unmet []string
	for _, r := range Check(g, d, today) {
		if !r.Met {
			unmet = append(unmet, r.Rule+": "+r.Detail)
		}
	}
	if len(unmet) > 0 {
		return Result{}, fmt.Errorf("%w: %s", ErrNotEnoughData, strings.Join(unmet, "; "))
	}

	cutoff := today - int32(g.window())
	sp := newSpec(g, d, cutoff)
	b := newBuilder(sp, g, d.Events)
	p := b.nfeat

	// Rows: the training profiles first, then the held-out ones, so the training matrix is
	// one contiguous block.
	var train, test []int32
	for i := range d.Profiles {
		if !b.eligible(&d.Profiles[i], cutoff) {
			continue
		}
		if heldOut(d.Profiles[i].ID) {
			test = append(test, int32(i))
		} else {
			train = append(train, int32(i))
		}
	}
	rows := append(train, test...)
	nTrain := len(train)
	x := make([]float64, len(rows)*p)
	y := make([]float64, len(rows))
	for r, i := range rows {
		b.row(&d.Profiles[i], cutoff, x[r*p:(r+1)*p])
		y[r] = b.label(&d.Profiles[i], cutoff)
	}
	mean, scale := standardise(x, p, nTrain)

	m := Model{Goal: g, Features: b.names, Mean: mean, Scale: scale}
	var q Quality
	q.Trained, q.HeldOut = nTrain, len(test)
	pred := make([]float64, len(test))
	if g.Kind == LTV {
		ly := make([]float64, nTrain)
		for r := range nTrain {
			ly[r] = math.Log1p(max(y[r], 0))
		}
		coef, bias, err := fitRidge(x[:nTrain*p], p, ly, ridgeLambda)
		if err != nil {
			return Result{}, err
		}
		m.Coef, m.Bias = coef, bias
		sp.Lambda = ridgeLambda
		// Duan's smearing: the mean of exp(residual) turns a prediction of log1p(spend)
		// back into a mean spend rather than a median one.
		s := 0.0
		for r := range nTrain {
			s += math.Exp(ly[r] - dot(coef, x[r*p:(r+1)*p], bias))
		}
		sp.Smear = s / float64(nTrain)
		actual := y[nTrain:]
		spent := make([]float64, len(test))
		for k := range test {
			r := nTrain + k
			pred[k] = spend(dot(coef, x[r*p:(r+1)*p], bias), sp.Smear)
			if actual[k] > 0 {
				spent[k] = 1
			}
		}
		rho := Spearman(pred, actual)
		q.Spearman = &rho
		q.AUC = AUC(pred, spent) // how well it ranks who spends at all
		q.LiftTop20 = LiftTop20(pred, actual)
		q.Grade = GradeSpearman(rho)
	} else {
		coef, bias, err := fitLogistic(x[:nTrain*p], p, y[:nTrain], logisticLambda)
		if err != nil {
			return Result{}, err
		}
		m.Coef, m.Bias = coef, bias
		sp.Lambda = logisticLambda
		for k := range test {
			r := nTrain + k
			pred[k] = sigmoid(dot(coef, x[r*p:(r+1)*p], bias))
		}
		actual := y[nTrain:]
		ll := LogLoss(pred, actual)
		q.LogLoss = &ll
		q.AUC = AUC(pred, actual)
		q.LiftTop20 = LiftTop20(pred, actual)
		q.Grade = GradeAUC(q.AUC)
	}
	m.Spec = sp.marshal()

	scores, predicted, err := score(m, sp, d, today)
	if err != nil {
		return Result{}, err
	}
	return Result{Quality: q, TopFeatures: top(m), Scores: scores, Predicted: predicted, Model: m}, nil
}

// Score rescores a Dataset with a stored model: the features are rebuilt by event name
// from m.Spec at today, for the profiles eligible today. It returns each one's percentile
// (1 = most likely / highest spend) and raw prediction (probability, or spend).
func Score(m Model, d Dataset, today int32) (scores, predicted map[string]float64, err error) {
	if err := m.Goal.Validate(); err != nil {
		return nil, nil, fmt.Errorf("model: %w", err)
	}
	var sp spec
	if err := json.Unmarshal(m.Spec, &sp); err != nil {
		return nil, nil, fmt.Errorf("model spec: %w", err)
	}
	if sp.Version != specVersion {
		return nil, nil, fmt.Errorf("model spec version %d; this build reads %d: retrain", sp.Version, specVersion)
	}
	if sp.Horizons != horizons(m.Goal.window()) {
		return nil, nil, errors.New("model spec: its horizons do not match the goal's window")
	}
	return score(m, sp, d, today)
}

func score(m Model, sp spec, d Dataset, today int32) (map[string]float64, map[string]float64, error) {
	b := newBuilder(sp, m.Goal, d.Events)
	if !slices.Equal(b.names, m.Features) || len(m.Coef) != b.nfeat || len(m.Mean) != b.nfeat || len(m.Scale) != b.nfeat {
		return nil, nil, errors.New("model: its features, weights and standardisation do not match its spec")
	}
	for j, v := range m.Scale {
		if !(v > 0) || math.IsInf(v, 0) || math.IsNaN(m.Mean[j]) || math.IsNaN(m.Coef[j]) {
			return nil, nil, fmt.Errorf("model: feature %q has scale %v, mean %v, weight %v", m.Features[j], v, m.Mean[j], m.Coef[j])
		}
	}
	row := make([]float64, b.nfeat)
	var ids []int32
	var pred []float64
	for i := range d.Profiles {
		p := &d.Profiles[i]
		if !b.eligible(p, today) {
			continue
		}
		b.row(p, today, row)
		for j := range row {
			row[j] = (row[j] - m.Mean[j]) / m.Scale[j]
		}
		z := dot(m.Coef, row, m.Bias)
		if m.Goal.Kind == LTV {
			pred = append(pred, spend(z, sp.Smear))
		} else {
			pred = append(pred, sigmoid(z))
		}
		ids = append(ids, int32(i))
	}
	pct := Percentiles(pred)
	scores := make(map[string]float64, len(ids))
	predicted := make(map[string]float64, len(ids))
	for k, i := range ids {
		id := d.Profiles[i].ID
		scores[id] = pct[k]
		predicted[id] = pred[k]
	}
	return scores, predicted, nil
}

// standardise centres and scales the columns of the row-major n×p matrix x in place, with
// the mean and standard deviation of its first nTrain rows. A constant column gets scale 1
// (it becomes all zeros and its weight stays 0 under the penalty).
func standardise(x []float64, p, nTrain int) (mean, scale []float64) {
	mean, scale = make([]float64, p), make([]float64, p)
	for r := range nTrain {
		for j, v := range x[r*p : (r+1)*p] {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(max(nTrain, 1))
	}
	for r := range nTrain {
		for j, v := range x[r*p : (r+1)*p] {
			scale[j] += (v - mean[j]) * (v - mean[j])
		}
	}
	for j := range scale {
		scale[j] = math.Sqrt(scale[j] / float64(max(nTrain, 1)))
		if scale[j] < 1e-12 {
			scale[j] = 1
		}
	}
	n := len(x) / max(p, 1)
	for r := range n {
		row := x[r*p : (r+1)*p]
		for j := range row {
			row[j] = (row[j] - mean[j]) / scale[j]
		}
	}
	return mean, scale
}

func dot(w, x []float64, bias float64) float64 {
	z := bias
	for j, v := range x {
		z += w[j] * v
	}
	return z
}

// spend turns ridge's prediction of log1p(spend) back into money.
func spend(z, smear float64) float64 {
	if smear <= 0 {
		smear = 1
	}
	return max(math.Exp(z)*smear-1, 0)
}

// top lists the features with the largest |standardised weight|, largest first.
func top(m Model) []Feature {
	idx := make([]int, len(m.Coef))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(math.Abs(m.Coef[b]), math.Abs(m.Coef[a])) })
	var out []Feature
	for _, i := range idx[:min(topFeatures, len(idx))] {
		if m.Coef[i] == 0 {
			break
		}
		out = append(out, Feature{Name: m.Features[i], Weight: m.Coef[i]})
	}
	return out
}
