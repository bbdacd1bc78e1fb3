package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/unifiedprofiles/up/shared/errcode"
)

// Whatever the body, decode either fills the struct or returns a 400/413 domain error with a
// message; it never panics, and never accepts what it would store changed.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"name":"Website","type":"javascript","url":"https://a.example"}`,
		`{"name":5}`, `{"name":`, `[]`, ``, `null`, `{"colour":1}`, `{"name":"a"}{"name":"b"}`,
		`{"settings":{"a":{"b":[1,2]}}}`, "\xef\xbb\xbf{}", `{"name":"\ud800"}`, `{"enabled":"true"}`,
		"{\"name\":\"\xfe\xff\"}", `{"name":"a\u0000"}`, `{"name":"a","name":"b"}`, `{"name":"a","Name":"b"}`,
		`{"settings":{"k":1,"k":2}}`, `{"settings":{"\ud83d\ude00":"\u00e9"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in struct {
			Name     string         `json:"name"`
			Type     string         `json:"type"`
			URL      string         `json:"url"`
			Enabled  *bool          `json:"enabled"`
			Settings map[string]any `json:"settings"`
		}
		req := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
		err := decode(httptest.NewRecorder(), req, &in)
		if err == nil {
			// Nothing the decoder changed or dropped silently: the body was UTF-8 and every
			// string kept is free of NUL (duplicates: see jsoncheck's own fuzz target).
			if !utf8.Valid(body) || strings.Contains(in.Name+in.Type+in.URL, "\x00") {
				t.Fatalf("decode(%q) accepted invalid UTF-8 or a NUL: %+v", body, in)
			}
			return
		}
		e := errcode.As(err)
		if e == nil || (e.Kind != errcode.Invalid && e.Kind != errcode.TooLarge) || e.Message == "" || e.Code == "" {
			t.Fatalf("decode(%q) = %v, want a 400/413 domain error", body, err)
		}
	})
}
