package workspace

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/unifiedprofiles/up/shared/errcode"
)

// validName accepts exactly the names it promises to: valid UTF-8, 1 to 100 characters, no
// control characters, no surrounding spaces; every refusal names the field.
func FuzzValidName(f *testing.F) {
	for _, seed := range []string{"Acme", "", " x", "x ", "a\x00b", strings.Repeat("é", 100), strings.Repeat("é", 101), "\xff", "Personas Ünïcode ✓"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := validName("name", name)
		ok := name != "" && utf8.ValidString(name) && utf8.RuneCountInString(name) <= MaxNameLength &&
			strings.TrimSpace(name) == name && strings.IndexFunc(name, unicode.IsControl) < 0
		if ok != (err == nil) {
			t.Fatalf("validName(%q) = %v, want ok=%v", name, err, ok)
		}
		if err != nil {
			if e := errcode.As(err); e == nil || e.Field != "name" || e.Kind != errcode.Invalid {
				t.Fatalf("validName(%q) error %v does not name the field", name, err)
			}
		}
	})
}

func FuzzValidAccountSID(f *testing.F) {
	for _, seed := range []string{"AC0123456789abcdef0123456789abcdef", "AC0123456789ABCDEF0123456789abcdef", "AC", "", "ac0123456789abcdef0123456789abcdef"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, sid string) {
		err := validAccountSID(sid)
		ok := len(sid) == 34 && strings.HasPrefix(sid, "AC") && strings.Trim(sid[2:], "0123456789abcdef") == ""
		if ok != (err == nil) {
			t.Fatalf("validAccountSID(%q) = %v, want ok=%v", sid, err, ok)
		}
	})
}
