package model_test

import (
	"math"
	"testing"

	"github.com/unifiedprofiles/up/shared/predict/model"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestAUC(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		score []float64
		y     []float64
		want  float64
	}{
		{"perfect", []float64{0.1, 0.2, 0.8, 0.9}, []float64{0, 0, 1, 1}, 1},
		{"reversed", []float64{0.9, 0.8, 0.2, 0.1}, []float64{0, 0, 1, 1}, 0},
		// Pairs (pos, neg): (0.5, 0.1) 1, (0.5, 0.5) ½, (0.9, 0.1) 1, (0.9, 0.5) 1 → 3.5/4.
		{"a tie across the classes counts one half", []float64{0.1, 0.5, 0.5, 0.9}, []float64{0, 0, 1, 1}, 0.875},
		{"all tied", []float64{3, 3, 3, 3}, []float64{0, 1, 0, 1}, 0.5},
		// Undefined with one class: 0.5, "no evidence of ranking".
		{"only positives", []float64{0.1, 0.9}, []float64{1, 1}, 0.5},
		{"only negatives", []float64{0.1, 0.9}, []float64{0, 0}, 0.5},
		{"empty", nil, nil, 0.5},
		// 2 positives, 3 negatives: positive 0.7 beats 0.2 and 0.4 (not 0.8), positive 0.3
		// beats 0.2 only → 3/6.
		{"mixed", []float64{0.2, 0.7, 0.4, 0.3, 0.8}, []float64{0, 1, 0, 1, 0}, 0.5},
	} {
		if got := model.AUC(tc.score, tc.y); !near(got, tc.want) {
			t.Errorf("%s: AUC = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLogLoss(t *testing.T) {
	t.Parallel()
	hi := 1 - 1e-15 // the upper clip as a float64, so that 1 − hi rounds as it does in LogLoss
	for _, tc := range []struct {
		name string
		p, y []float64
		want float64
	}{
		{"a coin", []float64{0.5}, []float64{1}, math.Ln2},
		{"two rows", []float64{0.9, 0.2}, []float64{1, 0}, -(math.Log(0.9) + math.Log(0.8)) / 2},
		// A certain wrong answer is clipped to 1e-15 (as float64: 1 − (1 − 1e-15)), not
		// infinite.
		{"certain and wrong", []float64{1}, []float64{0}, -math.Log(1 - hi)},
		{"certain and wrong, the other way", []float64{0}, []float64{1}, -math.Log(1e-15)},
		{"certain and right", []float64{0, 1}, []float64{0, 1}, -math.Log(hi)},
		{"no rows", nil, nil, 0},
	} {
		if got := model.LogLoss(tc.p, tc.y); !near(got, tc.want) {
			t.Errorf("%s: LogLoss = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLiftTop20(t *testing.T) {
	t.Parallel()
	ten := []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	for _, tc := range []struct {
		name     string
		score, y []float64
		want     float64
	}{
		// Top 2 of 10 hold both positives: rate 1 vs 0.2 overall.
		{"all positives on top", ten, []float64{1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 5},
		{"no positive on top", ten, []float64{0, 0, 0, 0, 0, 0, 0, 0, 1, 1}, 0},
		{"random-like", ten, []float64{1, 0, 1, 0, 1, 0, 1, 0, 1, 0}, 1},
		// 5 rows: top 20 % is 1 place, straddled by a tie of 2 holding 1 positive: ½ of it.
		{"tie at the line, positive first", []float64{2, 2, 1, 1, 1}, []float64{1, 0, 0, 0, 0}, 2.5},
		{"tie at the line, positive second", []float64{2, 2, 1, 1, 1}, []float64{0, 1, 0, 0, 0}, 2.5},
		// ltv: y is spend; the top 20 % (1 of 3 rounded up) holds 60 of 100.
		{"spend share", []float64{3, 2, 1}, []float64{60, 30, 10}, 1.8},
		{"no outcome at all", ten, make([]float64, 10), 1},
		{"no rows", nil, nil, 1},
	} {
		if got := model.LiftTop20(tc.score, tc.y); !near(got, tc.want) {
			t.Errorf("%s: LiftTop20 = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		score []float64
		want  []float64
	}{
		{"distinct", []float64{0.3, 0.1, 0.9}, []float64{0.5, 0, 1}},
		// Ranks 0..4; the tie at ranks 1, 2 shares 1.5 → 1.5/4.
		{"ties share", []float64{1, 2, 2, 3, 4}, []float64{0, 0.375, 0.375, 0.75, 1}},
		{"all equal", []float64{7, 7, 7}, []float64{0.5, 0.5, 0.5}},
		// A lone profile is as much the least as the most likely.
		{"single", []float64{0.42}, []float64{0.5}},
		{"empty", nil, []float64{}},
	} {
		got := model.Percentiles(tc.score)
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %d percentiles for %d scores", tc.name, len(got), len(tc.want))
		}
		for i := range got {
			if !near(got[i], tc.want[i]) {
				t.Errorf("%s: Percentiles = %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
}

func TestSpearman(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		x, y []float64
		want float64
	}{
		{"monotone, not linear", []float64{1, 2, 3, 4}, []float64{1, 10, 100, 1000}, 1},
		{"reversed", []float64{1, 2, 3, 4}, []float64{4, 3, 2, 1}, -1},
		// Mid-ranks x (0, 1.5, 1.5, 3), y (0, 1, 2, 3): 4.5 / √(4.5·5).
		{"ties", []float64{1, 2, 2, 3}, []float64{1, 2, 3, 4}, 4.5 / math.Sqrt(22.5)},
		{"constant side", []float64{1, 1, 1}, []float64{1, 2, 3}, 0},
		{"one pair", []float64{1}, []float64{2}, 0},
		{"lengths differ", []float64{1, 2}, []float64{1, 2, 3}, 0},
	} {
		if got := model.Spearman(tc.x, tc.y); !near(got, tc.want) {
			t.Errorf("%s: Spearman = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestGrades(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v         float64
		auc, corr string
	}{
		{math.NaN(), model.Poor, model.Poor},
		{-0.3, model.Poor, model.Poor},
		{0.19999, model.Poor, model.Poor},
		{0.2, model.Poor, model.Fair},
		{0.39999, model.Poor, model.Fair},
		{0.4, model.Poor, model.Good},
		{0.5, model.Poor, model.Good},
		{0.59999, model.Poor, model.Good},
		{0.6, model.Fair, model.Excellent},
		{0.69999, model.Fair, model.Excellent},
		{0.7, model.Good, model.Excellent},
		{0.79999, model.Good, model.Excellent},
		{0.8, model.Excellent, model.Excellent},
		{1, model.Excellent, model.Excellent},
	} {
		if got := model.GradeAUC(tc.v); got != tc.auc {
			t.Errorf("GradeAUC(%v) = %s, want %s", tc.v, got, tc.auc)
		}
		if got := model.GradeSpearman(tc.v); got != tc.corr {
			t.Errorf("GradeSpearman(%v) = %s, want %s", tc.v, got, tc.corr)
		}
	}
}
