package identity

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// exceeded's shortcut for a returning visitor answers what counting answers, windows and
// limits included (values first seen inside and outside their window, at and over a limit).
func TestExceededShortcutMatchesCounting(t *testing.T) {
	t.Parallel()
	c, err := Compile(Settings{Identifiers: []Rule{
		{Type: "user_id", Limit: 1, Window: WindowEver, Priority: 1},
		{Type: "email", Limit: 2, Window: WindowMonthly, Priority: 2},
		{Type: "anonymous_id", Limit: 3, Window: WindowWeekly, Priority: 3},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := NewResolver(c)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	types := []string{"user_id", "email", "anonymous_id", "phone"} // phone: no rule (limit 1, ever)
	shortcuts := 0
	for seed := range uint64(3000) {
		rng := rand.New(rand.NewPCG(seed, 11))
		random := func() Identifier {
			typ := types[rng.IntN(len(types))]
			return Identifier{Type: typ, Value: fmt.Sprintf("%s%d", typ[:1], rng.IntN(4))}
		}
		var cands []Candidate
		for p := range 1 + rng.IntN(2) {
			cand := Candidate{ID: fmt.Sprintf("prof_%d", p)}
			for range rng.IntN(10) {
				cand.Identifiers = append(cand.Identifiers, Seen{Identifier: random(), FirstSeen: now.Add(-time.Duration(rng.IntN(40*24)) * time.Hour)})
			}
			cands = append(cands, cand)
		}
		var cur []Identifier
		for range 1 + rng.IntN(3) {
			if len(cands[0].Identifiers) > 0 && rng.IntN(4) > 0 { // mostly what the profile holds
				cur = append(cur, cands[0].Identifiers[rng.IntN(len(cands[0].Identifiers))].Identifier)
			} else {
				cur = append(cur, random())
			}
		}
		if len(cands) == 1 && r.holdsInWindow(cands[0], cur, now) {
			shortcuts++
		}
		gotTyp, got := r.exceeded(cur, cands, now)
		wantTyp, want := r.exceededCounting(cur, cands, now)
		if got != want || gotTyp != wantTyp {
			t.Fatalf("seed %d: exceeded = %q %v, counting = %q %v\ncur %v\ncandidates %+v", seed, gotTyp, got, wantTyp, want, cur, cands)
		}
	}
	// At its limit in the window, with one more value seen outside it: the message naming that
	// value makes the count pass the limit, so the shortcut must not answer.
	week := 7 * 24 * time.Hour
	full := Candidate{ID: "prof_1", Identifiers: []Seen{
		{Identifier{"anonymous_id", "a0"}, now}, {Identifier{"anonymous_id", "a1"}, now}, {Identifier{"anonymous_id", "a2"}, now},
		{Identifier{"anonymous_id", "a3"}, now.Add(-2 * week)}}}
	if typ, over := r.exceeded([]Identifier{{"anonymous_id", "a3"}}, []Candidate{full}, now); !over || typ != "anonymous_id" {
		t.Errorf("a value outside its window at the limit: exceeded = %q %v, want anonymous_id true", typ, over)
	}
	if shortcuts < 300 {
		t.Errorf("the shortcut answered only %d of 3000 cases: the test does not exercise it", shortcuts)
	}
}
