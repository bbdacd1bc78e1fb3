package csvfile

import (
	"os"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// fixtureUnits reads testdata/csv-allowed-characters.txt and cuts its lists into the characters
// a person would name: a rune with the combining marks after it, and for U+035F (the double
// macron below of "g͟h") the letter after it too. It does not use the package's own cutting.
func fixtureUnits(t *testing.T) (units []string, lists []string) {
	t.Helper()
	data, err := os.ReadFile("testdata/csv-allowed-characters.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		_, list, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("line %q", line)
		}
		lists = append(lists, list)
		rs := []rune(list)
		for i := 0; i < len(rs); {
			j := i + 1
			for j < len(rs) && unicode.Is(unicode.Mn, rs[j]) {
				if rs[j] == 0x035F && j+1 < len(rs) {
					j++ // the letter the double mark reaches over to
				}
				j++
			}
			units = append(units, string(rs[i:j]))
			i = j
		}
	}
	return units, lists
}

func TestEmbeddedListIsTheFixture(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/csv-allowed-characters.txt")
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != allowedFile {
		t.Fatal("allowed-characters.txt and testdata/csv-allowed-characters.txt differ; copy shared/fixtures/csv-allowed-characters.txt to both")
	}
	// In the full checkout the product's fixture sits beside the repository.
	shared, err := os.ReadFile("../../../shared/fixtures/csv-allowed-characters.txt")
	if err != nil {
		t.Skipf("shared fixture not found: %v", err)
	}
	if string(shared) != allowedFile {
		t.Fatal("allowed-characters.txt differs from shared/fixtures/csv-allowed-characters.txt; copy it again")
	}
}

func TestFixtureUnits(t *testing.T) {
	t.Parallel()
	units, _ := fixtureUnits(t)
	has := map[string]bool{}
	for _, u := range units {
		has[u] = true
	}
	// The list as the product describes it: 52 + 10 + 26 ASCII, the sequences the header names,
	// and the three letters added by decision.
	for _, u := range []string{"A", "z", "0", "9", "!", "?", "`", "\\", "g͟h", "h̤", "l̥", "m̐", "s̤", "s̱", "t̤", "z̤", "k͟h", "G͟H", "K͟H", "Â", "ñ", "Ñ", "ẞ", "ɽ", "Ɍ"} {
		if !has[u] {
			t.Errorf("fixture units miss %q", u)
		}
	}
	if len(units) < 200 {
		t.Errorf("only %d units", len(units))
	}
}

// Every character of the fixture is accepted in a header and in a value, alone and with letters
// around it; so is every list line whole.
func TestEveryListedCharacterAccepted(t *testing.T) {
	t.Parallel()
	units, lists := fixtureUnits(t)
	for _, u := range units {
		for _, s := range []string{u, "a" + u + "b", u + " " + u} {
			data := "email," + s + "\na@b.co," + s + "\n"
			rep, err := Validate(strings.NewReader(data), "chars.csv", testCols)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Errorf("%q (%s) refused:\n%s", s, codePoints(u), dump(rep.Problems))
			}
		}
	}
	for _, l := range lists {
		data := "email,x\na@b.co," + l + "\n"
		if rep, _ := Validate(strings.NewReader(data), "chars.csv", testCols); !rep.OK() {
			t.Errorf("list line refused:\n%s", dump(rep.Problems))
		}
		data = "email," + l + "\na@b.co,x\n"
		if rep, _ := Validate(strings.NewReader(data), "chars.csv", testCols); !rep.OK() {
			t.Errorf("list line as a header refused:\n%s", dump(rep.Problems))
		}
	}
}

// The allowed set holds exactly the fixture's characters: nothing more.
func TestAllowedSetIsExactlyTheList(t *testing.T) {
	t.Parallel()
	units, _ := fixtureUnits(t)
	want := map[string]bool{}
	for _, u := range units {
		want[u] = true
	}
	got := map[string]bool{}
	for c, ok := range allowedASCII {
		if ok {
			got[string(rune(c))] = true
		}
	}
	for u := range allowedOther {
		got[u] = true
	}
	for u := range want {
		if !got[u] {
			t.Errorf("%q listed but not allowed", u)
		}
	}
	for u := range got {
		if !want[u] {
			t.Errorf("%q allowed but not listed", u)
		}
	}
	// Spot checks of all single runes up to U+2FFF: only listed ones pass.
	for r := rune(0); r < 0x3000; r++ {
		s := string(r)
		if allowed(s) != want[s] && utf8.ValidRune(r) {
			t.Errorf("allowed(%q) = %v", s, allowed(s))
		}
	}
}

func TestRefused(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"ŕ", "Ŕ", "e\u0301", "a\u0324", "\u0324", "h\u0324\u0324", "h\u0331", "g\u035F", "g\u035Fa", "G\u035Fh",
		"\u035Fh", "m\u0310\u0301", ",", "\"", "'", ";", "€", "😀", "\u00A0", "\t", "\x00", "\x7f", "\uFEFF",
		"ı\u0307", "ﬁ", "Ａ", "١",
	} {
		u := s
		if n, _ := nextUnit(s); n != len(s) {
			// Only the first unit is refused; the rest may be fine.
			u = s[:n]
		}
		data := "email,x\na@b.co,\"" + strings.ReplaceAll(s, `"`, `""`) + "\"\n"
		rep, err := Validate(strings.NewReader(data), "chars.csv", testCols)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() || rep.Problems[0].Char != u {
			t.Errorf("%q: problems\n%s want the character %q", s, dump(rep.Problems), u)
		}
	}
}

func TestNextUnit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s       string
		units   []string
		invalid []bool
	}{
		{"abc", []string{"a", "b", "c"}, nil},
		{"g͟hx", []string{"g͟h", "x"}, nil},
		{"h̤ḥ", []string{"h̤", "ḥ"}, nil},
		{"\u0324\u0331a", []string{"\u0324\u0331", "a"}, nil},
		{"g\u035F\u0324h\u0331b", []string{"g\u035F\u0324h\u0331", "b"}, nil},
		{"g\u035F", []string{"g\u035F"}, nil},
		{"g\u035F\xff", []string{"g\u035F", "\xff"}, []bool{false, true}},
		{"a\xffb\xc3", []string{"a", "\xff", "b", "\xc3"}, []bool{false, true, false, true}},
		{"a\u035Fb\u035Fc", []string{"a\u035Fb\u035Fc"}, nil},
	} {
		var got []string
		var inv []bool
		for s := tc.s; s != ""; {
			n, bad := nextUnit(s)
			got = append(got, s[:n])
			inv = append(inv, bad)
			s = s[n:]
		}
		if strings.Join(got, "|") != strings.Join(tc.units, "|") {
			t.Errorf("%q: units %q, want %q", tc.s, got, tc.units)
		}
		for i, b := range inv {
			if want := tc.invalid != nil && tc.invalid[i]; b != want {
				t.Errorf("%q: unit %d invalid = %v", tc.s, i, b)
			}
		}
	}
}

func TestParseAllowedRejectsBadLists(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"letters ABC\naccented: é", "colours: red\naccented: é", "accented: \xff", "letters: A B\naccented: é", "letters: ABC"} {
		if _, _, err := parseAllowed(text); err == nil {
			t.Errorf("parseAllowed(%q) accepted", text)
		}
	}
}
