package snowflake

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzPosition checks position against a slow oracle: a position it gives is the character
// that line and column name in the statement (or the end of that line), and it gives 0 only
// when the message names no such place.
func FuzzPosition(f *testing.F) {
	f.Add("SELECT FROM t", 1, 7, "SQL compilation error:\nsyntax error ")
	f.Add("WITH m AS (\nSELECT id,\n  nme\nFORM t\n)\nSELECT * FROM m", 4, 0, "")
	f.Add("SELECT 'é' FORM t", 1, 11, "")
	f.Add("a\r\nb", 2, 1, "")
	f.Add("x", 0, 0, "")
	f.Add("x", 1, 2, "line 1 at position 0 ")
	f.Add("", 1, 0, "Object 'T' does not exist")
	f.Fuzz(func(t *testing.T, stmt string, line, col int, prefix string) {
		msg := prefix + fmt.Sprintf("syntax error line %d at position %d unexpected 'x'.", line, col)
		p := position(msg, stmt)
		runes := []rune(stmt)
		if p < 0 || p > len(runes)+1 {
			t.Fatalf("position %d outside a statement of %d characters", p, len(runes))
		}
		if p > 0 {
			// Which line and column is character p (1-based), or the end of a line when it is
			// that line's newline or the statement's end? (Invalid UTF-8 counts a character per
			// byte, in []rune as in the code.)
			l, c := 1, 0
			for _, r := range runes[:p-1] {
				if r == '\n' {
					l, c = l+1, 0
				} else {
					c++
				}
			}
			if !strings.Contains(msg, fmt.Sprintf("line %d at position %d", l, c)) {
				t.Fatalf("position %d is line %d, column %d, which %q does not name", p, l, c, msg)
			}
			return
		}
		if linePosition.MatchString(prefix) {
			return // the prefix names a place first, and it is not in the statement
		}
		lines := strings.Split(stmt, "\n")
		if line >= 1 && line <= len(lines) && col >= 0 && col <= utf8.RuneCountInString(lines[line-1]) {
			t.Fatalf("position 0, but line %d, column %d is in %q", line, col, stmt)
		}
	})
}

// FuzzNumber checks number: an int64 is the integer the text is, a float64 prints as the
// number the text is, anything else is the text unchanged; and every integer that fits, and
// every decimal of at most 15 significant digits in a float's range, comes out as a number.
func FuzzNumber(f *testing.F) {
	for _, s := range []string{"0", "42", "-7", "+5", "007", "9223372036854775807", "9223372036854775808", "12.50", "-0.00",
		"0.1", ".5", "5.", "1e5", "NaN", "Inf", "0x1p-2", "1_000", "12345678901234567.89", "3.00000000000000000000", "-", "."} {
		f.Add(s, int64(0))
		f.Add(s, int64(2))
	}
	f.Fuzz(func(t *testing.T, s string, scale int64) {
		v := number(s, scale)
		switch x := v.(type) {
		case int64:
			n, ok := new(big.Int).SetString(s, 10)
			if scale != 0 || !ok || !n.IsInt64() || n.Int64() != x {
				t.Fatalf("number(%q, %d) = int64 %d", s, scale, x)
			}
		case float64:
			want, ok := new(big.Rat).SetString(s)
			got, ok2 := new(big.Rat).SetString(strconv.FormatFloat(x, 'f', -1, 64))
			if scale == 0 || !ok || !ok2 || want.Cmp(got) != 0 || strings.ContainsAny(s, "eEpPxX/_") {
				t.Fatalf("number(%q, %d) = float64 %v, which prints as another number", s, scale, x)
			}
		case string:
			if x != s {
				t.Fatalf("number(%q, %d) = %q", s, scale, x)
			}
		default:
			t.Fatalf("number(%q, %d) = %T", s, scale, v)
		}
		if _, isString := v.(string); !isString {
			return
		}
		if scale == 0 {
			if n, ok := new(big.Int).SetString(s, 10); ok && n.IsInt64() && plainInteger(s) {
				t.Fatalf("number(%q, 0) is text, but the integer fits an int64", s)
			}
			return
		}
		if sig, exp, ok := decimalDigits(s); ok && sig <= 15 && exp > -300 && exp < 300 {
			t.Fatalf("number(%q, %d) is text, but %d significant digits print back from a float64", s, scale, sig)
		}
	})
}

// plainInteger reports whether s is [+-]digits.
func plainInteger(s string) bool {
	return digitsOnly(strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+"))
}

// digitsOnly reports whether s is one or more ASCII digits.
func digitsOnly(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// decimalDigits reads [+-]digits[.digits] (at least one digit) and returns its count of
// significant digits and the decimal exponent of its first one.
func decimalDigits(s string) (sig, exp int, ok bool) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	if strings.HasPrefix(s, "-") && strings.HasPrefix(t, "+") {
		return 0, 0, false
	}
	ip, fp, _ := strings.Cut(t, ".")
	if ip == "" && fp == "" || !digitsOnly("0"+ip) || (fp != "" && !digitsOnly(fp)) {
		return 0, 0, false
	}
	digits := strings.TrimLeft(ip+fp, "0")
	exp = len(strings.TrimLeft(ip, "0")) - 1
	if strings.TrimLeft(ip, "0") == "" {
		exp = -(len(fp) - len(strings.TrimLeft(fp, "0"))) - 1
	}
	digits = strings.TrimRight(digits, "0")
	if digits == "" {
		exp = 0
	}
	return len(digits), exp, math.Abs(float64(exp)) < math.MaxInt32
}
