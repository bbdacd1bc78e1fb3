package csvfile

import (
	_ "embed"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// allowedFile is a copy of shared/fixtures/csv-allowed-characters.txt, the product's exact list
// of characters allowed in headers and values (besides the single interior space).
//
//go:embed allowed-characters.txt
var allowedFile string

// allowedASCII marks the allowed one-byte units; allowedOther holds every other allowed unit
// (a non-ASCII letter, or a base letter with its combining marks, such as "h̤" or "g͟h").
var (
	allowedASCII [utf8.RuneSelf]bool
	allowedOther map[string]struct{}
)

// fastOK marks the bytes that are a whole allowed unit unless a combining mark follows them:
// the allowed ASCII characters and the space. Indexed by any byte, so no bounds check.
var fastOK [256]bool

func init() {
	var err error
	allowedASCII, allowedOther, err = parseAllowed(allowedFile)
	if err != nil {
		panic("csvfile: allowed-characters.txt: " + err.Error())
	}
	for c, ok := range allowedASCII {
		fastOK[c] = ok
	}
	fastOK[' '] = true
}

// parseAllowed reads the allowed-characters file: '#' lines are comments, every other line is
// "letters: …", "digits: …", "specials: …" or "accented: …", whose text after ": " is cut into
// units the way values are (see nextUnit). A space is never part of the set: spaces have their
// own rules.
func parseAllowed(text string) (ascii [utf8.RuneSelf]bool, other map[string]struct{}, err error) {
	other = make(map[string]struct{})
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, list, ok := strings.Cut(line, ": ")
		switch {
		case !ok:
			return ascii, nil, fmt.Errorf("line %d: want \"kind: characters\"", n+1)
		case key != "letters" && key != "digits" && key != "specials" && key != "accented":
			return ascii, nil, fmt.Errorf("line %d: unknown kind %q", n+1, key)
		case !utf8.ValidString(list):
			return ascii, nil, fmt.Errorf("line %d: not UTF-8", n+1)
		}
		for list != "" {
			size, _ := nextUnit(list)
			u := list[:size]
			list = list[size:]
			switch {
			case u == " ":
				return ascii, nil, fmt.Errorf("line %d: a space in the list", n+1)
			case len(u) == 1:
				ascii[u[0]] = true
			default:
				other[u] = struct{}{}
			}
		}
	}
	if len(other) == 0 {
		return ascii, nil, fmt.Errorf("no accented letters")
	}
	return ascii, other, nil
}

// allowed reports whether the unit u (as cut by nextUnit) is in the allowed set. A space is
// not: callers handle spaces.
func allowed(u string) bool {
	if len(u) == 1 {
		return allowedASCII[u[0]]
	}
	_, ok := allowedOther[u]
	return ok
}

// nextUnit returns the length of the unit s starts with (s is not empty), and whether that unit
// is a byte that is not valid UTF-8 (then the length is 1).
//
// A unit is what the allowed list is looked up by: a base rune followed by all its combining
// marks (unicode.Mn). A double diacritic (one that spans two letters, such as U+035F COMBINING
// DOUBLE MACRON BELOW in "g͟h") also takes in the next base rune and its marks, so "g͟h" is one
// unit and "g͟a" is another one, which is not allowed. A combining mark with no base before it
// is a unit of its own.
func nextUnit(s string) (n int, invalid bool) {
	if s[0] < utf8.RuneSelf {
		n = 1
	} else {
		r, size := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && size == 1 {
			return 1, true
		}
		n = size
	}
	for {
		double := false
		for n < len(s) && s[n] >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[n:])
			if !isMark(r) {
				break
			}
			double = double || isDoubleMark(r)
			n += size
		}
		if !double || n == len(s) {
			return n, false
		}
		// The base rune the double mark reaches over to.
		if s[n] < utf8.RuneSelf {
			n++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[n:])
		if r == utf8.RuneError && size == 1 {
			return n, false
		}
		n += size
	}
}

// isMark reports whether r is a nonspacing combining mark (none is below U+0300).
func isMark(r rune) bool {
	return r >= 0x300 && unicode.Is(unicode.Mn, r)
}

// isDoubleMark reports whether r is a combining mark that spans two base letters (Unicode
// canonical combining classes 233 and 234).
func isDoubleMark(r rune) bool {
	return r >= 0x35C && r <= 0x362 || r == 0x1DCD || r == 0x1DFC
}
