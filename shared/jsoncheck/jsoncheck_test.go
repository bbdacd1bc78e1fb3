package jsoncheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/unifiedprofiles/up/shared/errcode"
)

type inner struct {
	Type string `json:"type"`
}

type embedded struct {
	Key  string `json:"key"`
	Hide string `json:"-"`
}

type body struct {
	Name     string         `json:"name"`
	Items    []inner        `json:"items"`
	Settings map[string]any `json:"settings"`
	Raw      json.RawMessage
	embedded
}

func TestCheck(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[*body]()
	for _, tc := range []struct {
		name, in    string
		typ         reflect.Type
		skip        string
		code, field string
	}{
		{"clean", `{"name":"Ada","items":[{"type":"a"}],"settings":{"a":1,"A":2}}`, typ, "", "", ""},
		{"a surrogate pair", `{"name":"\ud83d\ude00"}`, typ, "", "", ""},
		{"U+FFFD itself", "{\"name\":\"\\ufffd\xef\xbf\xbd\"}", typ, "", "", ""},
		{"escapes", `{"name":"a\"\\\/\b\f\n\r\t\u00e9"}`, typ, "", "", ""},
		{"invalid bytes", "{\"name\":\"\xfe\xff\"}", typ, "", "invalid_utf8", "name"},
		{"invalid bytes reversed", "{\"name\":\"\xff\xfe\"}", typ, "", "invalid_utf8", "name"},
		{"UTF-8 encoded surrogate", "{\"name\":\"\xed\xa0\x80\"}", typ, "", "invalid_utf8", "name"},
		{"a high surrogate alone", `{"name":"\ud800"}`, typ, "", "invalid_utf8", "name"},
		{"a high surrogate then text", `{"name":"\ud800x"}`, typ, "", "invalid_utf8", "name"},
		{"two high surrogates", `{"name":"\ud800\ud800"}`, typ, "", "invalid_utf8", "name"},
		{"a low surrogate alone", `{"name":"\udc00"}`, typ, "", "invalid_utf8", "name"},
		{"deep", "{\"items\":[{\"type\":\"a\"},{\"type\":\"\xff\"}]}", typ, "", "invalid_utf8", "items[1].type"},
		{"in a map", "{\"settings\":{\"a\":{\"b\":[1,\"\xff\"]}}}", typ, "", "invalid_utf8", "settings.a.b[1]"},
		{"a key", "{\"settings\":{\"\xff\":1}}", typ, "", "invalid_utf8", "settings"},
		{"a top-level key", "{\"\xff\":1}", nil, "", "invalid_utf8", ""},
		{"NUL escaped", `{"name":"a\u0000b"}`, typ, "", "nul_character", "name"},
		{"NUL in a key", `{"settings":{"a\u0000":1}}`, typ, "", "nul_character", "settings"},
		{"NUL in an array", `["a","\u0000"]`, nil, "", "nul_character", "[1]"},
		{"a key twice", `{"name":"a","name":"b"}`, typ, "", "duplicate_key", "name"},
		{"a key twice, escaped", `{"settings":{"a":1,"\u0061":2}}`, typ, "", "duplicate_key", "settings.a"},
		{"a field in another case", `{"name":"a","NAME":"b"}`, typ, "", "duplicate_key", "NAME"},
		{"a field in a folded case", "{\"key\":\"a\",\"\xe2\x84\xaaey\":\"b\"}", typ, "", "duplicate_key", "\u212aey"},
		{"a promoted field twice", `{"Key":"a","key":"b"}`, typ, "", "duplicate_key", "key"},
		{"a nested struct field", `{"items":[{"type":"a","Type":"b"}]}`, typ, "", "duplicate_key", "items[0].Type"},
		{"map keys are exact", `{"settings":{"plan":1,"Plan":2}}`, typ, "", "", ""},
		{"unknown keys are exact", `{"other":1,"Other":2}`, typ, "", "", ""},
		{"an untyped object", `{"a":{"a":1,"a":2}}`, nil, "", "duplicate_key", "a.a"},
		{"raw message values are checked", "{\"Raw\":{\"x\":\"\xff\"}}", typ, "", "invalid_utf8", "Raw.x"},
		{"a skipped value", "{\"batch\":[{\"a\":\"\xff\",\"a\":1}],\"x\":1}", nil, "batch", "", ""},
		{"a skipped value in another case", "{\"Name\":[\"\xff\"]}", typ, "name", "", ""},
		{"a skipped key twice", `{"batch":[],"batch":[]}`, nil, "batch", "duplicate_key", "batch"},
		{"after a skipped value", "{\"batch\":[\"}\",{\"b\":\"]\"}],\"x\":\"\xff\"}", nil, "batch", "invalid_utf8", "x"},
		{"a skipped scalar", "{\"batch\":1,\"x\":\"\xff\"}", nil, "batch", "invalid_utf8", "x"},
		{"not JSON", `{"name":"ok`, typ, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := Check([]byte(tc.in), Options{Type: tc.typ, Skip: tc.skip})
			if tc.code == "" {
				if e != nil {
					t.Fatalf("Check(%q) = %v, want nil", tc.in, e)
				}
				return
			}
			if e == nil || e.Kind != errcode.Invalid || e.Code != tc.code || e.Field != tc.field || e.Message == "" {
				t.Fatalf("Check(%q) = %#v, want %s on field %q", tc.in, e, tc.code, tc.field)
			}
			if !utf8.ValidString(e.Message) || !utf8.ValidString(e.Field) {
				t.Errorf("the error is not UTF-8 itself: %q %q", e.Field, e.Message)
			}
		})
	}
}

// Objects of many keys are compared through a map: a repeat is found on either side of the switch.
func TestCheckManyKeys(t *testing.T) {
	t.Parallel()
	obj := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString(`{"x":{`)
		for i := range n {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		return b.String() + extra + `},"y":{"k1":1}}`
	}
	for _, tc := range []struct {
		in, field string
	}{
		{obj(10, `"k3":0`), "x.k3"}, {obj(linearKeys, `"k3":0`), "x.k3"}, {obj(100, `"k3":0`), "x.k3"},
		{obj(100, `"k99":0`), "x.k99"}, {obj(100, `"new":0`), ""},
	} {
		e := Check([]byte(tc.in), Options{})
		switch {
		case tc.field == "" && e != nil:
			t.Errorf("Check = %v, want nil", e)
		case tc.field != "" && (e == nil || e.Code != CodeDuplicateKey || e.Field != tc.field):
			t.Errorf("Check = %v, want duplicate_key on %s", e, tc.field)
		}
	}
}

// A path of long keys is clipped: the error never grows with the input.
func TestCheckClipsThePath(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 1<<20)
	e := Check([]byte(`{"`+long+`":1,"`+long+`":2}`), Options{})
	if e == nil || e.Code != CodeDuplicateKey || len(e.Field) > errcode.MaxEcho+len("…") || len(e.Message) > 300 {
		t.Fatalf("Check = %d-byte field, %d-byte message, want both short", len(e.Field), len(e.Message))
	}
}

func TestCheckString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, code string }{
		{"ada@example.com", ""}, {"\u00e9\ufffd", ""}, {"\xff@x.com", "invalid_utf8"}, {"a\x00@x.com", "nul_character"},
	} {
		e := CheckString("email", tc.in)
		switch {
		case tc.code == "" && e != nil:
			t.Errorf("CheckString(%q) = %v", tc.in, e)
		case tc.code != "" && (e == nil || e.Code != tc.code || e.Field != "email"):
			t.Errorf("CheckString(%q) = %#v, want %s on email", tc.in, e, tc.code)
		}
	}
}

// FuzzCheck: Check never panics, and on valid JSON it agrees with the decoder: when it finds
// nothing, the text is UTF-8, no decoded string holds NUL and no object repeats a key.
func FuzzCheck(f *testing.F) {
	for _, seed := range []string{
		`{}`, `[]`, `{"a":"b"}`, `{"a":1,"a":2}`, `{"a":{"b":[1,{"c":"\u0000"}]}}`, "{\"a\":\"\xff\"}",
		`"\ud800"`, `{"\ud83d\ude00":"\udc00"}`, `{"batch":[{"a":1,"a":1}],"a":"\\u0000"}`, `{"a":"\\\"}`, `[1,true,null,-1.5e3]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := Check(data, Options{})
		_ = Check(data, Options{Type: reflect.TypeFor[body](), Skip: "batch"})
		if !json.Valid(data) {
			return
		}
		if e != nil {
			if e.Kind != errcode.Invalid || e.Message == "" {
				t.Fatalf("Check(%q) = %#v", data, e)
			}
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("Check(%q) found nothing, but the text is not UTF-8", data)
		}
		if err := walkTokens(json.NewDecoder(bytes.NewReader(data))); err != nil {
			t.Fatalf("Check(%q) found nothing, but %v", data, err)
		}
	})
}

// walkTokens reads one value token by token and reports a NUL or a repeated key.
func walkTokens(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return nil // not for this walk to judge
	}
	switch tok := tok.(type) {
	case string:
		if strings.IndexByte(tok, 0) >= 0 {
			return errors.New("a string holds NUL")
		}
	case json.Delim:
		keys := map[string]bool{}
		for dec.More() {
			if tok == '{' {
				k, err := dec.Token()
				if err != nil {
					return nil
				}
				key := k.(string)
				if keys[key] || strings.IndexByte(key, 0) >= 0 {
					return errors.New("a key is repeated or holds NUL: " + key)
				}
				keys[key] = true
			}
			if err := walkTokens(dec); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil && !errors.Is(err, io.EOF) {
			return nil
		}
	}
	return nil
}
