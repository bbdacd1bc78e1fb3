package profile

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/jsonappend"
	"github.com/unifiedprofiles/up/shared/store"
)

// checkProfileJSON: appendProfileJSON writes json.Marshal's bytes, gives up only where it
// should, and profileItem stores what item stored.
func checkProfileJSON(t *testing.T, p Profile, wantOK bool) {
	t.Helper()
	want, err := json.Marshal(p)
	got, ok := appendProfileJSON(nil, &p)
	switch {
	case ok && err != nil:
		t.Errorf("appendProfileJSON wrote %s where json.Marshal fails (%v)", got, err)
	case ok && string(got) != string(want):
		t.Errorf("appendProfileJSON\n got %s\nwant %s", got, want)
	case !ok && wantOK && err == nil:
		t.Errorf("appendProfileJSON gave up on a profile json.Marshal writes as %s", want)
	}
	if err != nil {
		return // profileItem panics, as item always did
	}
	if it := profileItem(store.Key{PK: "p", SK: "P"}, &p); string(it.Data) != string(want) {
		t.Errorf("profileItem stored\n     %s\nwant %s", it.Data, want)
	}
}

func TestProfileJSONMatchesMarshal(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	full := func() Profile {
		return Profile{ID: "prof_1", SpaceID: "sp_1", CreatedAt: at, UpdatedAt: at.Add(time.Hour),
			Identifiers: []Identifier{
				{Seen: identity.Seen{Identifier: identity.Identifier{Type: "user_id", Value: "u-1"}, FirstSeen: at}, SourceID: "src_1"},
				{Seen: identity.Seen{Identifier: identity.Identifier{Type: "email", Value: "<a&b>@example.com"}, FirstSeen: at}},
			},
			Traits: map[string]Trait{"plan": {Value: "pro", At: at}, "visits": {Value: 12.0, At: at}, "gone": {At: at, Removed: true},
				"tags": {Value: []any{"a", map[string]any{"z": nil, "a": true}}, At: at}, "é\u2028": {Value: false, At: at}, "zero": {Value: 0.0, At: at}},
			Merges: 2, MergedIDs: []string{"prof_2", "prof_3"},
			Violations: []identity.Violation{{Kind: identity.ViolationBlocked, Identifier: identity.Identifier{Type: "email", Value: "x"}, Detail: "blocked <x>", At: at}},
			First:      MessageRef{ID: "m-1", Type: "identify", At: at, SourceID: "src_1"},
			Groups:     []string{"g-1", "g\"2"},
		}
	}
	with := func(change func(*Profile)) Profile {
		p := full()
		change(&p)
		return p
	}
	for _, c := range []struct {
		name string
		p    Profile
		ok   bool
	}{
		{"every field", full(), true},
		{"a new profile: empty and omitted fields", Profile{ID: "prof_1", SpaceID: "sp_1", CreatedAt: at, First: MessageRef{ID: "m", Type: "page", At: at}}, true},
		{"the zero profile", Profile{}, true},
		{"a forward", Profile{ID: "prof_2", SpaceID: "sp", MergedInto: "prof_1", CreatedAt: at, UpdatedAt: at}, true},
		{"empty, not nil, lists", with(func(p *Profile) {
			p.Identifiers, p.MergedIDs, p.Violations, p.Groups, p.Traits = []Identifier{}, []string{}, []identity.Violation{}, []string{}, map[string]Trait{}
		}), true},
		{"times in a zone", with(func(p *Profile) { p.CreatedAt = at.In(time.FixedZone("", -5*3600)) }), true},
		{"a year json.Marshal refuses", with(func(p *Profile) { p.UpdatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), false},
		{"a refused time in an identifier", with(func(p *Profile) { p.Identifiers[1].FirstSeen = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }), false},
		{"a trait value of a type jsonappend does not write", with(func(p *Profile) { p.Traits["n"] = Trait{Value: json.Number("12"), At: at} }), false},
		{"a trait too deep", with(func(p *Profile) {
			var v any = "x"
			for range jsonappend.MaxDepth + 1 {
				v = []any{v}
			}
			p.Traits["deep"] = Trait{Value: v, At: at}
		}), false},
		{"invalid UTF-8 everywhere", with(func(p *Profile) {
			p.ID, p.Identifiers[0].Value, p.Groups[0] = "\xff", "\xfe\x00", "\xe2\x80"
			p.Traits["\xff"] = Trait{Value: "\xc3", At: at}
		}), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.ok {
				if _, ok := appendProfileJSON(nil, &c.p); !ok {
					t.Errorf("appendProfileJSON gave up; it should write this profile itself")
				}
			}
			checkProfileJSON(t, c.p, c.ok)
		})
	}
}

// appendProfileJSON writes Profile field by field: a field added to Profile, or to a type it
// holds, must be added there (and here).
func TestProfileJSONKnowsEveryField(t *testing.T) {
	t.Parallel()
	tags := func(typ reflect.Type) string {
		var out []string
		for f := range typ.Fields() {
			out = append(out, f.Name+" "+string(f.Tag))
		}
		return strings.Join(out, "; ")
	}
	for _, c := range []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[Profile](), `ID json:"id"; SpaceID json:"space_id"; MergedInto json:"merged_into,omitempty"; CreatedAt json:"created_at"; ` +
			`UpdatedAt json:"updated_at"; Identifiers json:"identifiers"; Traits json:"traits,omitempty"; Merges json:"merges"; ` +
			`MergedIDs json:"merged_ids,omitempty"; Violations json:"violations,omitempty"; First json:"first_message"; Groups json:"groups,omitempty"`},
		{reflect.TypeFor[Identifier](), `Seen ; SourceID json:"source_id,omitempty"`},
		{reflect.TypeFor[identity.Seen](), `Identifier ; FirstSeen json:"first_seen"`},
		{reflect.TypeFor[identity.Identifier](), `Type json:"type"; Value json:"value"`},
		{reflect.TypeFor[Trait](), `Value json:"v,omitempty"; At json:"at"; Removed json:"removed,omitempty"`},
		{reflect.TypeFor[identity.Violation](), `Kind json:"kind"; Identifier json:"identifier"; Detail json:"detail"; At json:"at"`},
		{reflect.TypeFor[MessageRef](), `ID json:"id"; Type json:"type"; At json:"at"; SourceID json:"source_id,omitempty"`},
	} {
		if got := tags(c.typ); got != c.want {
			t.Errorf("%s's fields changed: update appendProfileJSON and this test\n got %s\nwant %s", c.typ, got, c.want)
		}
	}
}

// FuzzProfileJSONMatchesMarshal: for any strings, times and decoded trait values,
// appendProfileJSON writes exactly json.Marshal's bytes, and gives up only where json.Marshal
// fails (or nesting passes jsonappend.MaxDepth).
func FuzzProfileJSONMatchesMarshal(f *testing.F) {
	f.Add("prof_1", "user_id", "u-1", "plan", []byte(`"pro"`), int64(1772359200), int64(123456789), 0, 3, true)
	f.Add("\x00\"\\<>&\u2028", "\xff\xfe", "é\xe2\x80", "", []byte(`{"x":1e-7,"y":-0,"z":1e21,"n":null,"a":[true]}`), int64(-62135596800), int64(0), 330, 0, false)
	f.Add("", "", "", "\xff", []byte(`null`), int64(253402300800), int64(1), -60, -1, true)
	f.Fuzz(func(t *testing.T, id, typ, value, trait string, traitValue []byte, sec, nsec int64, zoneMinutes, merges int, removed bool) {
		at := time.Unix(sec, nsec).In(time.FixedZone("", zoneMinutes*60))
		p := Profile{ID: id, SpaceID: value, MergedInto: typ, CreatedAt: at, UpdatedAt: at.UTC(),
			Identifiers: []Identifier{{Seen: identity.Seen{Identifier: identity.Identifier{Type: typ, Value: value}, FirstSeen: at}, SourceID: id}},
			Merges:      merges, MergedIDs: []string{value}, Groups: []string{trait},
			Violations: []identity.Violation{{Kind: typ, Identifier: identity.Identifier{Type: value, Value: typ}, Detail: trait, At: at}},
			First:      MessageRef{ID: id, Type: typ, At: at, SourceID: value}}
		var v any
		json.Unmarshal(traitValue, &v)
		p.Traits = map[string]Trait{trait: {Value: v, At: at, Removed: removed}, value: {At: at.UTC()}}
		// Shallower than jsonappend.MaxDepth (a level takes at least one byte): it writes them all.
		checkProfileJSON(t, p, len(traitValue) < jsonappend.MaxDepth)
	})
}
