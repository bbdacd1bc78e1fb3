package identity

import (
	"slices"
	"testing"
)

func TestDefaultTypes(t *testing.T) {
	t.Parallel()
	want := []string{"user_id", "email", "anonymous_id", "group_id", "android.id", "ios.id",
		"android.idfa", "ios.idfa", "android.push_token", "ios.push_token", "ga_client_id"}
	got := DefaultTypes()
	if !slices.Equal(got, want) {
		t.Fatalf("DefaultTypes() = %v, want %v", got, want)
	}
	got[0] = "changed"
	if DefaultTypes()[0] != TypeUserID {
		t.Fatal("DefaultTypes returned shared state: a caller's change leaked into the next call")
	}
}

func TestIsDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ  string
		want bool
	}{
		{"user_id", true}, {"email", true}, {"anonymous_id", true}, {"group_id", true},
		{"android.id", true}, {"ios.id", true}, {"android.idfa", true}, {"ios.idfa", true},
		{"android.push_token", true}, {"ios.push_token", true}, {"ga_client_id", true},
		{"phone", false}, {"Email", false}, {"", false}, {"user_id ", false}, {"ios", false},
	}
	for _, tt := range tests {
		if got := IsDefault(tt.typ); got != tt.want {
			t.Errorf("IsDefault(%q) = %v, want %v", tt.typ, got, tt.want)
		}
	}
}

func TestSuggestedBlocked(t *testing.T) {
	t.Parallel()
	want := []Blocked{{MatchRegex, `^[0-]*$`}, {MatchExact, "-1"}, {MatchExact, "null"}, {MatchExact, "anonymous"}}
	if got := SuggestedBlocked(); !slices.Equal(got, want) {
		t.Fatalf("SuggestedBlocked() = %v, want %v", got, want)
	}
}

func TestDefaultSettings(t *testing.T) {
	t.Parallel()
	s := DefaultSettings()
	if err := s.Validate(); err != nil {
		t.Fatalf("DefaultSettings().Validate() = %v", err)
	}
	tests := []struct {
		typ      string
		priority int
		limit    int
		window   string
	}{
		{"user_id", 1, 1, WindowEver},
		{"email", 2, 5, WindowWeekly},
		{"android.id", 3, 5, WindowWeekly},
		{"android.idfa", 4, 5, WindowWeekly},
		{"android.push_token", 5, 5, WindowWeekly},
		{"anonymous_id", 6, 5, WindowWeekly},
		{"ga_client_id", 7, 5, WindowWeekly},
		{"group_id", 8, 5, WindowWeekly},
		{"ios.id", 9, 5, WindowWeekly},
		{"ios.idfa", 10, 5, WindowWeekly},
		{"ios.push_token", 11, 5, WindowWeekly},
	}
	if len(s.Identifiers) != len(tests) {
		t.Fatalf("DefaultSettings has %d identifiers, want %d", len(s.Identifiers), len(tests))
	}
	for i, tt := range tests {
		r := s.Identifiers[i]
		if r.Type != tt.typ || r.Priority != tt.priority || r.Limit != tt.limit || r.Window != tt.window || r.Custom || len(r.Keys) != 0 {
			t.Errorf("identifiers[%d] = %+v, want type %s priority %d limit %d window %s, not custom, no keys",
				i, r, tt.typ, tt.priority, tt.limit, tt.window)
		}
		if !slices.Equal(r.Blocked, SuggestedBlocked()) {
			t.Errorf("identifiers[%d].blocked = %v, want the suggested values", i, r.Blocked)
		}
	}
	// Every rule owns its blocked list: editing one identifier's must not edit another's.
	s.Identifiers[0].Blocked[0].Value = "changed"
	if s.Identifiers[1].Blocked[0].Value != `^[0-]*$` {
		t.Fatal("identifiers share one blocked slice")
	}
}

func TestDefaultSettingsBlockSuggestedValues(t *testing.T) {
	t.Parallel()
	c, err := Compile(DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		value string
		want  bool
	}{
		{"0", true}, {"000", true}, {"-", true}, {"0-0-0", true}, {"-1", true},
		{"null", true}, {"anonymous", true},
		// Case-sensitive exact matches and an anchored regex: real ids stay usable.
		{"NULL", false}, {"Anonymous", false}, {"1", false}, {"-10", false}, {"100", false},
		{"a0", false}, {"anonymous1", false}, {"u1", false},
	}
	for _, typ := range DefaultTypes() {
		for _, tt := range tests {
			if got := c.Blocked(typ, tt.value); got != tt.want {
				t.Errorf("Blocked(%q, %q) = %v, want %v", typ, tt.value, got, tt.want)
			}
		}
	}
}
