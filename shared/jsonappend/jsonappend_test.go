package jsonappend

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// FuzzRaw: Raw accepts what json.Marshal accepts in a
// json.RawMessage, and writes what it writes.
func FuzzRaw(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e-3,true,false,null]}`, " { \"a\" : \"x&y <z>\u2028\" } ", `"\u0041\"\\\/\b\f\n\r\t"`,
		`-0.0e+1`, `{"a":1,}`, `[01]`, "\"\x1f\"", `"\q"`, `{"a" 1}`, `[1 2]`, ``, ` `, `"\u00`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, err := json.Marshal(json.RawMessage(raw))
		if len(raw) == 0 {
			return // callers leave an empty raw message out
		}
		got, ok := Raw(nil, raw)
		switch {
		case ok && err != nil:
			t.Fatalf("Raw accepted %q, which json.Marshal refuses: %v", raw, err)
		case !ok && err == nil && len(raw) < MaxDepth:
			t.Fatalf("Raw refused %q, which json.Marshal writes as %s", raw, want)
		case ok && string(got) != string(want):
			t.Fatalf("Raw(%q)\n got %s\nwant %s", raw, got, want)
		}
	})
}

// FuzzString: String writes what json.Marshal writes for a string, HTML escaping and
// invalid UTF-8 included.
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "<&>", "\u2028\u2029", "\x00\x1f\t\n", "\xff\xfe", "é✓"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := String(nil, s); string(got) != string(want) {
			t.Fatalf("String(%q) = %s, json.Marshal writes %s", s, got, want)
		}
		for _, ss := range [][]string{{}, {s}, {s, "x", s}} {
			want, _ := json.Marshal(ss)
			if got := Strings(nil, ss); string(got) != string(want) {
				t.Fatalf("Strings(%q) = %s, json.Marshal writes %s", ss, got, want)
			}
		}
	})
}

func TestValueAndTimeMatchMarshal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		v    any
		ok   bool
	}{
		{"object, keys sorted", map[string]any{"b": 1.5, "a": []any{true, nil, "x<y"}}, true},
		{"small and large floats", []any{1e-7, 1e21, 123456789.0, -0.0, 0.000001}, true},
		{"nil map and slice", []any{map[string]any(nil), []any(nil)}, true},
		{"other types via json.Marshal", map[string]any{"n": json.Number("12"), "i": 3}, true},
		{"NaN is refused", math.NaN(), false},
		{"a time past 9999 is refused", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"a time", time.Date(2026, 12, 1, 23, 59, 1, 5, time.FixedZone("x", 3600)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []byte
			var ok bool
			if tm, isTime := tc.v.(time.Time); isTime {
				got, ok = Time(nil, tm)
			} else {
				got, ok = Value(nil, tc.v)
			}
			want, err := json.Marshal(tc.v)
			if ok != tc.ok || ok != (err == nil) {
				t.Fatalf("ok = %v, want %v (json.Marshal: %v)", ok, tc.ok, err)
			}
			if ok && string(got) != string(want) {
				t.Fatalf("got %s, json.Marshal writes %s", got, want)
			}
		})
	}
}

// StringKeepHTML is a json.Encoder's string with SetEscapeHTML(false).
func TestStringKeepHTML(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "abc", `a"b\c`, "tab\there\nnew\rret", "\x00\x01\x1f\x7f", "é g͟h 😀", "\xff\xfe", "a\u2028b\u2029c", "<a & b>", "\xe1\xb8"} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got, want := StringKeepHTML(nil, s), strings.TrimSuffix(buf.String(), "\n"); string(got) != want {
			t.Errorf("StringKeepHTML(%q) = %s, want %s", s, got, want)
		}
	}
}
