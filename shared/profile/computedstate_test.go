package profile

import (
	"fmt"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/traits"
)

// A computed-trait state that would not fit its item is refused, naming the trait and the
// limit; one that fits is encoded.
func TestStateItemRefusesWhatWouldNotFit(t *testing.T) {
	t.Parallel()
	tr := ComputedTrait{ID: "ctr_big", Definition: traits.Definition{Key: "pages", Type: traits.UniqueList, Event: "E", Property: "v", WindowDays: 3650}}
	k := store.Key{PK: "SP#s#P#p", SK: "CT#ctr_big"}
	fill := func(days, values int) ComputedState {
		var st ComputedState
		st.Live.Days = map[string]*traits.Bucket{}
		for d := range days {
			b := &traits.Bucket{Values: map[string]*traits.ValueStat{}}
			for v := range values {
				b.Values[fmt.Sprintf("/page/%04d", v)] = &traits.ValueStat{Count: 1}
			}
			st.Live.Days[fmt.Sprintf("2026-%04d", d)] = b
		}
		return st
	}
	if _, err := stateItem(k, tr, fill(10, 100)); err != nil {
		t.Fatalf("a small state: %v", err)
	}
	_, err := stateItem(k, tr, fill(400, traits.MaxValues))
	e := errcode.As(err)
	if e == nil || e.Code != "computed_trait_state_too_large" || e.Kind != errcode.Invalid {
		t.Fatalf("a state of 400 full days: %v, want computed_trait_state_too_large", err)
	}
	for _, want := range []string{"ctr_big", "pages", fmt.Sprint(MaxStateBytes)} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("the refusal %q does not name %s", e.Message, want)
		}
	}
}
