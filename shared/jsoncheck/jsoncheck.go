// Package jsoncheck finds in a JSON text what encoding/json would decode silently and
// wrongly, so that the caller can refuse the request instead:
//
//   - invalid UTF-8, and \uD800–\uDFFF escapes that are not a surrogate pair: the decoder
//     turns both into U+FFFD, so that "\xfe\xff" and "\xff\xfe" become the same user id
//     (code invalid_utf8);
//   - U+0000, raw or as the escape \u0000: other systems (logs, C strings, the console) cut
//     text there, so "a\u0000b" would show as "a" while being stored as something else
//     (code nul_character);
//   - a key given twice in one object, of which the decoder keeps the last without a word
//     (code duplicate_key). Keys of a struct match its fields case-insensitively, as the
//     decoder matches them, so "Name" after "name" is the same field given twice.
//
// Check reads bytes its caller has already decoded (or found valid): it reports problems,
// not syntax.
package jsoncheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/unifiedprofiles/up/shared/errcode"
)

// Codes of the problems Check reports.
const (
	CodeInvalidUTF8  = "invalid_utf8"
	CodeNUL          = "nul_character"
	CodeDuplicateKey = "duplicate_key"
)

// Options say how the checked text is decoded.
type Options struct {
	// Type is what the text is decoded into. At its struct levels keys are compared the way
	// encoding/json matches them to fields (exactly, else case-insensitively); everywhere
	// else (maps, values of any type, nil Type) exactly.
	Type reflect.Type
	// Skip names a key of the top-level object whose value is not checked (a batch checks
	// each of its messages on its own, so as to refuse only the bad one), matched as its
	// field is when Type is a struct. The key itself is checked.
	Skip string
}

// maxDepth is encoding/json's nesting limit: valid input is never deeper.
const maxDepth = 10000

// Check returns the first problem in data as an *errcode.Error of kind Invalid whose Field
// is the JSON path at fault ("traits.email", "identifiers[2].type"; for a bad key, the
// object holding it, "" at the top), or nil. data should be valid JSON (the caller decodes
// it first): on anything else Check stops where it cannot read on.
func Check(data []byte, opts Options) *errcode.Error {
	c := checker{data: data, skip: opts.Skip}
	c.path, c.seen = c.pathBuf[:0], c.seenBuf[:0]
	c.value(opts.Type, 0)
	return c.err
}

type checker struct {
	data []byte
	pos  int
	skip string
	path []segment // where the value being read is
	seen []seen    // the keys of the objects being read, innermost last
	err  *errcode.Error
	// Room for the usual depth and width, so that a message costs no allocation for them.
	pathBuf [8]segment
	seenBuf [16]seen
}

// segment is a step of a path: a key, or an index (index >= 0).
type segment struct {
	key   []byte
	index int
}

// seen is a key of an object being read, decoded: the struct field it fills ("" for a map's
// key, or one that fills no field) and the key itself.
type seen struct {
	field string
	key   []byte
}

// same reports whether a key filling field decodes into the same thing as s.
func (s seen) same(field string, key []byte) bool {
	if s.field != "" || field != "" {
		return s.field == field
	}
	return bytes.Equal(s.key, key)
}

// keyID is what a key decodes into, as a map key (objects of many keys).
type keyID struct {
	field, key string
}

// idOf is the keyID of a key that fills field ("" for none).
func idOf(field string, key []byte) keyID {
	if field != "" {
		return keyID{field: field}
	}
	return keyID{key: string(key)}
}

// linearKeys: up to this many keys an object's are compared one by one (no map to make).
const linearKeys = 32

// value reads one value at pos. It returns false when reading must stop: a problem was
// found (err is set) or the text is not JSON after all (err stays nil).
func (c *checker) value(t reflect.Type, depth int) bool {
	if depth > maxDepth {
		return false
	}
	c.space()
	if c.pos >= len(c.data) {
		return false
	}
	switch c.data[c.pos] {
	case '{':
		return c.object(t, depth)
	case '[':
		return c.array(t, depth)
	case '"':
		_, ok := c.str(false)
		return ok
	}
	for c.pos < len(c.data) { // a number, true, false or null
		switch c.data[c.pos] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return true
		}
		c.pos++
	}
	return true
}

func (c *checker) object(t reflect.Type, depth int) bool {
	t = decodedAs(t)
	var fields *structFields
	var elem reflect.Type
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields = fieldsOf(t)
		case reflect.Map:
			elem = t.Elem()
		}
	}
	c.pos++ // past {
	// This object's keys are c.seen[base:], or, when there are many, in a map.
	base := len(c.seen)
	var many map[keyID][]byte
	for n := 0; ; n++ {
		c.space()
		if c.pos >= len(c.data) {
			return false
		}
		if c.data[c.pos] == '}' {
			c.pos++
			c.seen = c.seen[:base]
			return true
		}
		if n > 0 {
			if c.data[c.pos] != ',' {
				return false
			}
			c.pos++
			c.space()
		}
		if c.pos >= len(c.data) || c.data[c.pos] != '"' {
			return false
		}
		key, ok := c.str(true)
		if !ok {
			return false
		}
		c.space()
		if c.pos >= len(c.data) || c.data[c.pos] != ':' {
			return false
		}
		c.pos++
		field, vt := "", elem
		if fields != nil {
			if f, ok := fields.lookup(key); ok {
				field, vt = f.name, f.typ
			}
		}
		var prev []byte
		dup := false
		if many != nil {
			prev, dup = many[idOf(field, key)]
		} else {
			for _, s := range c.seen[base:] {
				if s.same(field, key) {
					prev, dup = s.key, true
					break
				}
			}
		}
		c.path = append(c.path, segment{key: key, index: -1})
		if dup {
			if bytes.Equal(prev, key) {
				c.fail(CodeDuplicateKey, "%s is given twice; send each key once (only the last would count)", c.where(""))
			} else {
				c.fail(CodeDuplicateKey, "%s and %q name the same field (keys match fields whatever their case); send it once", c.where(""), errcode.Clip(string(prev)))
			}
			return false
		}
		switch {
		case many != nil:
			many[idOf(field, key)] = key
		case len(c.seen)-base < linearKeys:
			c.seen = append(c.seen, seen{field: field, key: key})
		default: // many keys: compare them through a map
			many = make(map[keyID][]byte, 2*linearKeys)
			for _, s := range c.seen[base:] {
				many[idOf(s.field, s.key)] = s.key
			}
			many[idOf(field, key)] = key
			c.seen = c.seen[:base]
		}
		if depth == 0 && c.skip != "" && (string(key) == c.skip || field == c.skip) {
			ok = c.skipValue()
		} else {
			ok = c.value(vt, depth+1)
		}
		if !ok {
			return false
		}
		c.pop()
	}
}

func (c *checker) array(t reflect.Type, depth int) bool {
	t = decodedAs(t)
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	c.pos++ // [
	for i := 0; ; i++ {
		c.space()
		if c.pos >= len(c.data) {
			return false
		}
		if c.data[c.pos] == ']' {
			c.pos++
			return true
		}
		if i > 0 {
			if c.data[c.pos] != ',' {
				return false
			}
			c.pos++
		}
		c.path = append(c.path, segment{index: i})
		if !c.value(elem, depth+1) {
			return false
		}
		c.pop()
	}
}

// str reads the string literal at pos, checking every character; with decode it returns
// the string's value (for keys): its bytes in data when it has no escape, else a copy.
func (c *checker) str(decode bool) ([]byte, bool) {
	d := c.data
	start := c.pos + 1
	i := start
	var buf []byte // the decoded value, once an escape makes it differ from its bytes
	escaped := false
	for i < len(d) {
		b := d[i]
		switch {
		case b == '"':
			c.pos = i + 1
			switch {
			case !decode:
				return nil, true
			case escaped:
				return buf, true
			}
			return d[start:i], true
		case b == '\\':
			if i+1 >= len(d) {
				return nil, false
			}
			if decode && !escaped {
				escaped, buf = true, append([]byte(nil), d[start:i]...)
			}
			if d[i+1] != 'u' {
				if escaped {
					buf = append(buf, unescape(d[i+1]))
				}
				i += 2
				continue
			}
			r, ok := hex4(d, i+2)
			if !ok {
				return nil, false
			}
			i += 6
			switch {
			case r == 0:
				return nil, c.failString(decode, CodeNUL)
			case r >= 0xDC00 && r <= 0xDFFF:
				return nil, c.failString(decode, CodeInvalidUTF8) // the second half of a pair, alone
			case r >= 0xD800 && r <= 0xDBFF:
				low, ok := rune(-1), false
				if i+1 < len(d) && d[i] == '\\' && d[i+1] == 'u' {
					low, ok = hex4(d, i+2)
				}
				if !ok || low < 0xDC00 || low > 0xDFFF {
					return nil, c.failString(decode, CodeInvalidUTF8) // the first half, alone
				}
				r = utf16.DecodeRune(r, low)
				i += 6
			}
			if escaped {
				buf = utf8.AppendRune(buf, r)
			}
		case b == 0:
			return nil, c.failString(decode, CodeNUL)
		case b < utf8.RuneSelf:
			if escaped {
				buf = append(buf, b)
			}
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, c.failString(decode, CodeInvalidUTF8)
			}
			if escaped {
				buf = append(buf, d[i:i+size]...)
			}
			i += size
		}
	}
	return nil, false
}

// failString records a problem in the string being read: a key of the current object, or
// the current value. It returns false, to stop.
func (c *checker) failString(isKey bool, code string) bool {
	what := "is not valid UTF-8 (it holds bytes, or a \\u escape of half a surrogate pair, that are no character); send text as UTF-8"
	if code == CodeNUL {
		what = "contains a NUL character (U+0000), which is refused: other systems cut text there"
	}
	switch {
	case isKey && len(c.path) == 0:
		c.fail(code, "a top-level key %s", what)
	case isKey:
		c.fail(code, "a key of %s %s", c.where(""), what)
	default:
		c.fail(code, "%s %s", c.where("the value"), what)
	}
	return false
}

// skipValue reads over one value without checking it.
func (c *checker) skipValue() bool {
	c.space()
	depth, inString := 0, false
	for ; c.pos < len(c.data); c.pos++ {
		b := c.data[c.pos]
		switch {
		case inString:
			if b == '\\' {
				c.pos++
			} else if b == '"' {
				inString = false
				if depth == 0 {
					c.pos++
					return true
				}
			}
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			depth++
		case b == '}' || b == ']':
			if depth == 0 {
				return true // the end of the enclosing object: a scalar ended here
			}
			depth--
			if depth == 0 {
				c.pos++
				return true
			}
		case depth == 0 && (b == ',' || b == ' ' || b == '\t' || b == '\n' || b == '\r'):
			return true // a scalar ended
		}
	}
	return depth == 0
}

func (c *checker) space() {
	for c.pos < len(c.data) {
		switch c.data[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *checker) pop() { c.path = c.path[:len(c.path)-1] }

// where is the path of the current value ("items[2].type"), clipped (keys are the caller's),
// or def at the top.
func (c *checker) where(def string) string {
	if len(c.path) == 0 {
		return def
	}
	var b strings.Builder
	for i, s := range c.path {
		if b.Len() > errcode.MaxEcho {
			break // Clip keeps no more
		}
		switch {
		case s.index >= 0:
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		case i > 0:
			b.WriteByte('.')
			b.Write(s.key)
		default:
			b.Write(s.key)
		}
	}
	return errcode.Clip(b.String())
}

func (c *checker) fail(code, format string, args ...any) {
	c.err = &errcode.Error{Kind: errcode.Invalid, Code: code, Field: c.where(""), Message: fmt.Sprintf(format, args...)}
}

func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(d[i:i+4]), 16, 32)
	return rune(v), err == nil
}

func unescape(b byte) byte {
	switch b {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return b // " \ /
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// decodedAs is the type whose shape the decoder follows for a value of type t: pointers are
// followed; a type with its own UnmarshalJSON (or an interface) has no known shape (nil).
func decodedAs(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		if t.Implements(unmarshalerType) {
			return nil
		}
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	return t
}

type field struct {
	name  string
	bytes []byte // name, to compare keys without converting them
	typ   reflect.Type
}

type structFields struct {
	exact map[string]field // by JSON name
	list  []field          // in order: the first of a case-insensitive match wins
}

// lookup finds the field a key fills, as encoding/json matches it: by its exact name, else
// case-insensitively (Unicode simple folding: "K", "k" and the Kelvin sign alike).
func (fs *structFields) lookup(key []byte) (field, bool) {
	if f, ok := fs.exact[string(key)]; ok {
		return f, true
	}
	for _, f := range fs.list {
		if bytes.EqualFold(f.bytes, key) {
			return f, true
		}
	}
	return field{}, false
}

var fieldCache sync.Map // reflect.Type → structFields

// fieldsOf lists the JSON fields of a struct as encoding/json does for the shapes this
// project decodes: exported fields under their tag's name (or Go name), "-" left out, the
// fields of an untagged embedded struct promoted unless an outer field has the name.
func fieldsOf(t reflect.Type) *structFields {
	if v, ok := fieldCache.Load(t); ok {
		return v.(*structFields)
	}
	fs := &structFields{exact: map[string]field{}}
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			if et := f.Type; et.Kind() == reflect.Struct || (et.Kind() == reflect.Pointer && et.Elem().Kind() == reflect.Struct) {
				embedded = append(embedded, et)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs.add(field{name: name, bytes: []byte(name), typ: f.Type})
	}
	for _, et := range embedded {
		if et.Kind() == reflect.Pointer {
			et = et.Elem()
		}
		for _, f := range fieldsOf(et).list {
			fs.add(f)
		}
	}
	fieldCache.Store(t, fs)
	return fs
}

// add keeps the first field of a name: outer fields are added before promoted ones.
func (fs *structFields) add(f field) {
	if _, ok := fs.exact[f.name]; ok {
		return
	}
	fs.exact[f.name] = f
	fs.list = append(fs.list, f)
}

// CheckString applies the rules of Check to a string that arrives outside JSON (a query
// parameter, a path segment) and is used as an identifier: invalid UTF-8 would be stored,
// and matched, as U+FFFD; NUL is refused as everywhere. field names it in the error.
func CheckString(field, s string) *errcode.Error {
	code, what := "", ""
	switch {
	case !utf8.ValidString(s):
		code, what = CodeInvalidUTF8, "is not valid UTF-8; send text as UTF-8 (percent-encode its bytes)"
	case strings.IndexByte(s, 0) >= 0:
		code, what = CodeNUL, "contains a NUL character (U+0000), which is refused: other systems cut text there"
	default:
		return nil
	}
	return &errcode.Error{Kind: errcode.Invalid, Code: code, Field: field, Message: field + " " + what}
}
