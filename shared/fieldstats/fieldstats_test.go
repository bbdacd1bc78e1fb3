package fieldstats_test

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/unifiedprofiles/up/shared/fieldstats"
)

func TestAddAndMerge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		build    func() fieldstats.Fields
		ids, tr  map[string]int
		wantJSON string
	}{
		{"New marshals as empty objects, not null", fieldstats.New, map[string]int{}, map[string]int{},
			`{"identifiers":{},"traits":{}}`},
		{"adds accumulate", func() fieldstats.Fields {
			var f fieldstats.Fields // the zero value is usable
			f.AddIdentifier("email", 2)
			f.AddIdentifier("email", 1)
			f.AddTrait("plan", 4)
			return f
		}, map[string]int{"email": 3}, map[string]int{"plan": 4}, `{"identifiers":{"email":3},"traits":{"plan":4}}`},
		{"zero and negative counts record nothing", func() fieldstats.Fields {
			f := fieldstats.New()
			f.AddIdentifier("email", 0)
			f.AddTrait("plan", -1)
			return f
		}, map[string]int{}, map[string]int{}, `{"identifiers":{},"traits":{}}`},
		{"merge sums per key", func() fieldstats.Fields {
			f := fieldstats.New()
			f.AddIdentifier("user_id", 5)
			f.Merge(fieldstats.Fields{Identifiers: map[string]int{"user_id": 2, "phone": 1}, Traits: map[string]int{"plan": 3}})
			f.Merge(fieldstats.Fields{}) // nothing
			return f
		}, map[string]int{"user_id": 7, "phone": 1}, map[string]int{"plan": 3}, `{"identifiers":{"phone":1,"user_id":7},"traits":{"plan":3}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := tc.build()
			if !maps.Equal(f.Identifiers, tc.ids) || !maps.Equal(f.Traits, tc.tr) {
				t.Fatalf("got %v %v, want %v %v", f.Identifiers, f.Traits, tc.ids, tc.tr)
			}
			b, _ := json.Marshal(f)
			if string(b) != tc.wantJSON {
				t.Fatalf("JSON %s, want %s", b, tc.wantJSON)
			}
		})
	}
}

func TestMergeDoesNotAliasTheSource(t *testing.T) {
	t.Parallel()
	src := fieldstats.Fields{Identifiers: map[string]int{"email": 1}}
	var dst fieldstats.Fields
	dst.Merge(src)
	dst.AddIdentifier("email", 1)
	if src.Identifiers["email"] != 1 {
		t.Fatalf("merging then adding changed the merged-in counts: %v", src.Identifiers)
	}
}
