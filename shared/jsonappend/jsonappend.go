// Package jsonappend writes JSON exactly as encoding/json's Marshal writes it, by appending to
// a byte slice: for the items the ingest path stores by the million (events, debugger
// entries), where Marshal's reflection and its re-scan of every json.RawMessage cost more
// than the rest of their encoding. The tests and fuzzers compare every function with
// json.Marshal byte for byte; a function answers ok=false for what it cannot match (then the
// caller lets json.Marshal do it).
package jsonappend

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxDepth bounds the nesting Value and Raw follow; deeper (or cyclic) values answer false.
const MaxDepth = 1000

// Time appends t as time.Time's MarshalJSON writes it; false for a time it refuses.
func Time(b []byte, t time.Time) ([]byte, bool) {
	b = append(b, '"')
	b, err := t.AppendText(b) // MarshalJSON's text, unquoted; it refuses the same times
	if err != nil {
		return nil, false
	}
	return append(b, '"'), true
}

// Value appends v, a value as encoding/json decodes into an any (maps, slices, strings,
// float64, bool, nil), as json.Marshal writes it. A value of any other type is written by
// json.Marshal itself.
func Value(b []byte, v any) ([]byte, bool) { return value(b, v, 0) }

func value(b []byte, v any, depth int) (_ []byte, ok bool) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return String(b, v), true
	case bool:
		return strconv.AppendBool(b, v), true
	case float64:
		return float(b, v)
	case map[string]any:
		if v == nil {
			return append(b, "null"...), true
		}
		if depth >= MaxDepth {
			return b, false
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys) // encoding/json's order: by the bytes of the key
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = String(b, k)
			b = append(b, ':')
			if b, ok = value(b, v[k], depth+1); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	case []any:
		if v == nil {
			return append(b, "null"...), true
		}
		if depth >= MaxDepth {
			return b, false
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = value(b, e, depth+1); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	}
	data, err := json.Marshal(v) // json.Number, a caller's own types: rare
	if err != nil {
		return b, false
	}
	return append(b, data...), true
}

// float is encoding/json's float64 encoder: ES6 number formatting.
func float(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-09 → e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// String appends s quoted as json.Marshal does: with <, > and & escaped (its HTML
// escaping), invalid UTF-8 replaced by U+FFFD and U+2028, U+2029 escaped.
func String(b []byte, s string) []byte { return appendString(b, s, true) }

// Strings appends ss as json.Marshal writes a non-nil []string.
func Strings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = String(b, s)
	}
	return append(b, ']')
}

// StringKeepHTML is String without the HTML escaping: a json.Encoder's with
// SetEscapeHTML(false), for text people read (a CSV row's raw message).
func StringKeepHTML(b []byte, s string) []byte { return appendString(b, s, false) }

func appendString(b []byte, s string, escapeHTML bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && (!escapeHTML || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Raw appends raw as json.Marshal writes a json.RawMessage: validated, without
// the whitespace between tokens, and with <, >, & and U+2028, U+2029 escaped (they occur
// only inside strings). Raw that needs none of that (Go's encoder wrote it, or an SDK that
// escapes) is copied as it is.
func Raw(b, raw []byte) ([]byte, bool) {
	sc := jsonScan{b: raw}
	i, ok := sc.value(sc.space(0), 0)
	if !ok || sc.space(i) != len(raw) {
		return b, false
	}
	if !sc.rewrite {
		return append(b, raw...), true
	}
	start, inString := 0, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !inString {
			switch c {
			case '"':
				inString = true
			case ' ', '\t', '\n', '\r':
				b = append(b, raw[start:i]...)
				start = i + 1
			}
			continue
		}
		if plainStringByte[c] {
			continue
		}
		switch {
		case c == '"':
			inString = false
		case c == '\\':
			i++ // the escaped byte is never one of those below
		case c == '<' || c == '>' || c == '&':
			b = append(b, raw[start:i]...)
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		case isLineSeparator(raw[i:]):
			b = append(b, raw[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[raw[i+2]&0xF])
			i += 2
			start = i + 1
		}
	}
	return append(b, raw[start:]...), true
}

// plainStringByte marks the bytes a JSON string holds that neither end it, nor start an
// escape, nor are escaped by json.Marshal: not control characters, ", \\, <, >, & or the
// first byte of U+2028 and U+2029.
var plainStringByte = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c != 0xE2
	}
	return t
}()

// isLineSeparator reports whether b starts with U+2028 or U+2029 (E2 80 A8, E2 80 A9).
func isLineSeparator(b []byte) bool {
	return len(b) >= 3 && b[0] == 0xE2 && b[1] == 0x80 && b[2]&^1 == 0xA8
}

// jsonScan validates JSON as encoding/json's scanner does (bytes in strings are not checked
// for UTF-8), except that nesting deeper than MaxDepth counts as invalid. It notes
// whether json.Marshal would rewrite the bytes.
type jsonScan struct {
	b       []byte
	rewrite bool // whitespace between tokens, or a character json.Marshal escapes
}

// space returns the index of the first non-whitespace byte from i.
func (s *jsonScan) space(i int) int {
	j := i
	for j < len(s.b) && (s.b[j] == ' ' || s.b[j] == '\t' || s.b[j] == '\n' || s.b[j] == '\r') {
		j++
	}
	s.rewrite = s.rewrite || j > i
	return j
}

// value returns the index just past the value that starts at b[i].
func (s *jsonScan) value(i, depth int) (int, bool) {
	b := s.b
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; c {
	case '"':
		return s.string(i)
	case '{', '[':
		if depth >= MaxDepth {
			return i, false
		}
		end := byte(']')
		if c == '{' {
			end = '}'
		}
		if i = s.space(i + 1); i < len(b) && b[i] == end {
			return i + 1, true
		}
		for {
			ok := true
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return i, false
				}
				if i, ok = s.string(i); !ok {
					return i, false
				}
				if i = s.space(i); i >= len(b) || b[i] != ':' {
					return i, false
				}
				i = s.space(i + 1)
			}
			if i, ok = s.value(i, depth+1); !ok {
				return i, false
			}
			if i = s.space(i); i >= len(b) {
				return i, false
			}
			switch b[i] {
			case end:
				return i + 1, true
			case ',':
				i = s.space(i + 1)
			default:
				return i, false
			}
		}
	case 't':
		return literal(b, i, "true")
	case 'f':
		return literal(b, i, "false")
	case 'n':
		return literal(b, i, "null")
	}
	return number(b, i)
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// string returns the index just past the string that starts at b[i].
func (s *jsonScan) string(i int) (int, bool) {
	b := s.b
	for i++; i < len(b); i++ {
		c := b[i]
		if plainStringByte[c] {
			continue
		}
		switch {
		case c == '"':
			return i + 1, true
		case c < ' ':
			return i, false
		case c == '\\':
			if i++; i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i <= 4 {
					return i, false
				}
				for _, h := range b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		case c == 0xE2:
			s.rewrite = s.rewrite || isLineSeparator(b[i:])
		default: // <, >, &
			s.rewrite = true
		}
	}
	return i, false
}

// number returns the index just past the number that starts at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func number(b []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}
