package model

import (
	"cmp"
	"math"
	"slices"
)

// Grades, worst to best.
const (
	Poor      = "poor"
	Fair      = "fair"
	Good      = "good"
	Excellent = "excellent"
)

// GradeAUC grades a classifier by its held-out AUC: poor < 0.6 ≤ fair < 0.7 ≤ good < 0.8
// ≤ excellent.
func GradeAUC(auc float64) string { return grade(auc, 0.6, 0.7, 0.8) }

// GradeSpearman grades ltv by the held-out Spearman correlation between predicted and
// actual spend: poor < 0.2 ≤ fair < 0.4 ≤ good < 0.6 ≤ excellent. The cut-offs are the
// AUC ones carried over: for a score and an outcome that are bivariate normal, splitting
// the outcome at its median, an AUC of 0.6 / 0.7 / 0.8 goes with a Spearman of about
// 0.22 / 0.42 / 0.62 (simulated), rounded down to 0.2 / 0.4 / 0.6.
func GradeSpearman(rho float64) string { return grade(rho, 0.2, 0.4, 0.6) }

func grade(v, fair, good, excellent float64) string {
	switch {
	case v >= excellent:
		return Excellent
	case v >= good:
		return Good
	case v >= fair:
		return Fair
	default: // NaN too
		return Poor
	}
}

// AUC is the area under the ROC curve of score for the outcomes y (1 positive, 0
// negative): the probability that a random positive scores above a random negative, ties
// counting one half (Mann–Whitney with mid-ranks). With only one class the AUC is
// undefined; it returns 0.5 ("no evidence of ranking"), which grades poor and keeps the
// JSON encodable (NaN is not).
func AUC(score, y []float64) float64 {
	r := midRanks(score)
	pos, neg, sum := 0.0, 0.0, 0.0
	for i, v := range y {
		if v > 0.5 {
			pos++
			sum += r[i]
		} else {
			neg++
		}
	}
	if pos == 0 || neg == 0 {
		return 0.5
	}
	// Ranks are 0-based: the positives' rank sum less its least possible value.
	return (sum - pos*(pos-1)/2) / (pos * neg)
}

// logLossClip keeps log loss finite for a probability of exactly 0 or 1.
const logLossClip = 1e-15

// LogLoss is the mean negative log-likelihood of the outcomes y (1 or 0) under the
// probabilities p, each clipped to [1e-15, 1−1e-15]. 0 for no outcomes.
func LogLoss(p, y []float64) float64 {
	if len(p) == 0 {
		return 0
	}
	s := 0.0
	for i, q := range p {
		q = min(max(q, logLossClip), 1-logLossClip)
		if y[i] > 0.5 {
			s -= math.Log(q)
		} else {
			s -= math.Log(1 - q)
		}
	}
	return s / float64(len(p))
}

// LiftTop20 is the mean outcome among the 20 % best scored (ceil of 20 % of the rows) over
// the mean outcome of all: for a classifier the goal rate, for ltv (y = spend) the spend
// share of the top 20 % ÷ 0.2. A tie group straddling the 20 % line counts pro rata (its
// mean outcome for the places left), so the order of tied rows does not matter. 1 (no
// better than random) when the outcomes sum to 0 or there are no rows.
func LiftTop20(score, y []float64) float64 {
	n := len(score)
	total := 0.0
	for _, v := range y {
		total += v
	}
	if n == 0 || total == 0 {
		return 1
	}
	k := int(math.Ceil(0.2 * float64(n)))
	idx := byScoreDesc(score)
	top, taken := 0.0, 0
	for i := 0; i < n && taken < k; {
		j := i
		sum := 0.0
		for j < n && score[idx[j]] == score[idx[i]] {
			sum += y[idx[j]]
			j++
		}
		group := j - i
		if take := min(group, k-taken); take == group {
			top += sum
			taken += group
		} else {
			top += sum * float64(take) / float64(group)
			taken += take
		}
		i = j
	}
	return (top / float64(k)) / (total / float64(n))
}

// Percentiles maps each score to its percentile among all of them, in [0, 1]: the mid-rank
// (0 for the lowest) over n−1, so the single highest score gets 1, the lowest 0, and tied
// scores share their mid-rank. A lone score, like a set of equal scores, gets 0.5: it is
// as much the least as the most likely.
func Percentiles(score []float64) []float64 {
	r := midRanks(score)
	if len(r) == 1 {
		r[0] = 0.5
		return r
	}
	d := float64(len(r) - 1)
	for i := range r {
		r[i] /= d
	}
	return r
}

// Spearman is the rank correlation of x and y (Pearson's on mid-ranks, so ties are
// handled). 0 when either side is constant or there are fewer than 2 pairs: no monotone
// relation can be measured.
func Spearman(x, y []float64) float64 {
	if len(x) < 2 || len(x) != len(y) {
		return 0
	}
	rx, ry := midRanks(x), midRanks(y)
	mean := float64(len(x)-1) / 2 // mid-ranks always average (n−1)/2
	sxy, sxx, syy := 0.0, 0.0, 0.0
	for i := range rx {
		a, b := rx[i]-mean, ry[i]-mean
		sxy += a * b
		sxx += a * a
		syy += b * b
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}

// midRanks are 0-based ranks in ascending order, ties sharing the mean of their ranks.
func midRanks(v []float64) []float64 {
	idx := make([]int32, len(v))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int { return cmp.Compare(v[a], v[b]) })
	r := make([]float64, len(v))
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && v[idx[j]] == v[idx[i]] {
			j++
		}
		mid := float64(i+j-1) / 2
		for k := i; k < j; k++ {
			r[idx[k]] = mid
		}
		i = j
	}
	return r
}

// byScoreDesc is the row order by score, highest first.
func byScoreDesc(score []float64) []int32 {
	idx := make([]int32, len(score))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int { return cmp.Compare(score[b], score[a]) })
	return idx
}
