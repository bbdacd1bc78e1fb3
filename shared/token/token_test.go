package token

import (
	"sort"
	"strings"
	"testing"
	"time"
)

func TestNewAndHash(t *testing.T) {
	t.Parallel()
	a, b := New(WorkspacePrefix), New(WorkspacePrefix)
	if a == b || !strings.HasPrefix(a, WorkspacePrefix) || len(a) != len(WorkspacePrefix)+52 {
		t.Fatalf("tokens %q %q", a, b)
	}
	h := Hash(a)
	if len(h) != 64 || h == Hash(b) {
		t.Fatalf("hash %q", h)
	}
	tests := []struct {
		tok, hash string
		want      bool
	}{
		{a, h, true},
		{a, strings.ToUpper(h), true},
		{b, h, false},
		{a, h[:63], false},
		{"", h, false},
	}
	for _, tc := range tests {
		if got := Matches(tc.tok, tc.hash); got != tc.want {
			t.Errorf("Matches(%q, %q) = %v", tc.tok, tc.hash, got)
		}
	}
}

func TestIDsSortByTime(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 50 {
		at := base.Add(time.Duration(i) * time.Millisecond)
		ids = append(ids, IDs{Now: func() time.Time { return at }}.New("src_"))
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatalf("IDs do not sort by creation time: %v", ids[:5])
	}
	seen := map[string]bool{}
	for range 1000 {
		id := IDs{Now: func() time.Time { return base }}.New("ws_")
		if seen[id] {
			t.Fatalf("duplicate ID %s", id)
		}
		seen[id] = true
	}
}
