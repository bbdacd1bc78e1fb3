package sqsbody_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/sqsbody"
)

// thing stands for a queue's message: ids, a count, a time.
type thing struct {
	ID    string    `json:"id"`
	Count int       `json:"count"`
	At    time.Time `json:"at"`
}

const body = `{"id":"t_1","count":2,"at":"2026-03-01T12:30:45.5Z"}`

var want = thing{ID: "t_1", Count: 2, At: time.Date(2026, 3, 1, 12, 30, 45, 5e8, time.UTC)}

func same(a, b thing) bool { return a.ID == b.ID && a.Count == b.Count && a.At.Equal(b.At) }

func TestDecode(t *testing.T) {
	t.Parallel()
	good := []struct{ name, body string }{
		{"as sent", body},
		{"spaces around", " \n" + body + "\n\t "},
		{"fields in another order, an unknown one", `{"at":"2026-03-01T13:30:45.5+01:00","priority":[1],"count":2,"id":"t_1"}`},
	}
	for _, tc := range good {
		var got thing
		if problem := sqsbody.Decode(tc.body, &got); problem != nil || !same(got, want) {
			t.Errorf("%s: Decode = %+v, %v; want %+v", tc.name, got, problem, want)
		}
	}
	var none thing
	if problem := sqsbody.Decode(`{}`, &none); problem != nil || none != (thing{}) {
		t.Errorf("an empty object: %+v, %v", none, problem)
	}

	// Each refusal says what is wrong, in the words the queues put after their own.
	bad := []struct{ name, body, want string }{
		{"empty", "", "the message body is empty"},
		{"blank", " \t\n", "the message body is empty"},
		{"not JSON", "hello", "invalid JSON at byte 1: invalid character 'h' looking for beginning of value"},
		{"a bad byte", `{"id":"t_1",}`, "invalid JSON at byte 13: invalid character '}' looking for beginning of object key string"},
		{"cut short", `{"id":"t_1"`, "the JSON ends too early"},
		{"cut in a string", `{"id":"t_`, "the JSON ends too early"},
		{"null", "null", "it is JSON null, want an object"},
		{"null with spaces", " null\n", "it is JSON null, want an object"},
		{"an array", `[1,2]`, "it is a JSON array, want an object"},
		{"a string", `"t_1"`, "it is a JSON string, want an object"},
		{"a number", `12`, "it is a JSON number, want an object"},
		{"a boolean", `true`, "it is a JSON bool, want an object"},
		{"two objects", body + body, "data follows the JSON object"},
		{"two nulls", "null null", "data follows the JSON object"},
		{"a stray brace", body + "}", "data follows the JSON object"},
		{"text after", body + " x", "data follows the JSON object"},
		{"a count as text", `{"count":"2"}`, "field count is a JSON string, want an integer (a number without a fraction, within range)"},
		{"a count with a fraction", `{"count":1.5}`, "field count is a JSON number 1.5, want an integer (a number without a fraction, within range)"},
		{"a count too large", `{"count":1e30}`, "field count is a JSON number 1e30, want an integer (a number without a fraction, within range)"},
		{"an id as a number", `{"id":7}`, "field id is a JSON number, want a string"},
		{"an id as an object", `{"id":{}}`, "field id is a JSON object, want a string"},
		{"a time as a number", `{"at":1767225600}`, "at is not a time as RFC 3339 text (Time.UnmarshalJSON: input is not a JSON string)"},
		{"a time not a time", `{"at":"yesterday"}`,
			`at is not a time as RFC 3339 text (parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006")`},
		{"a time out of range", `{"at":"2026-01-01T00:00:00+25:00"}`,
			`at is not a time as RFC 3339 text (parsing time "2026-01-01T00:00:00+25:00": time zone offset hour out of range)`},
	}
	for _, tc := range bad {
		var got thing
		problem := sqsbody.Decode(tc.body, &got)
		if problem == nil {
			t.Errorf("%s: Decode = %+v, want a problem", tc.name, got)
			continue
		}
		if problem.Error() != tc.want {
			t.Errorf("%s: problem %q, want %q", tc.name, problem, tc.want)
		}
		if empty := strings.TrimSpace(tc.body) == ""; errors.Is(problem, sqsbody.ErrEmpty) != empty {
			t.Errorf("%s: problem %q is ErrEmpty: %t, want %t", tc.name, problem, !empty, empty)
		}
	}

	// A time that does not parse is named by its field: one of several, or none of v's own.
	var two struct {
		From  time.Time `json:"from"`
		Until time.Time `json:"until,omitempty"`
		Note  string
	}
	if problem := sqsbody.Decode(`{"until":"soon"}`, &two); problem == nil || !strings.HasPrefix(problem.Error(), "from or until is not a time as RFC 3339 text (") {
		t.Errorf("a struct with two times: %v", problem)
	}
	var nested struct {
		Span struct {
			From time.Time `json:"from"`
		} `json:"span"`
	}
	if problem := sqsbody.Decode(`{"span":{"from":"soon"}}`, &nested); problem == nil || !strings.HasPrefix(problem.Error(), "a field is not a time as RFC 3339 text (") {
		t.Errorf("a time in a nested object: %v", problem)
	}
}

func TestCheckID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"ws_1", "ws_01jdq8x3k2m4n5p6q7r8s9t0v1", "ws_A-b_9", "ws_-", "ws__x"} {
		if err := sqsbody.CheckID("workspace_id", "ws_", id, 128); err != nil {
			t.Errorf("CheckID(%q): %v", id, err)
		}
	}
	if err := sqsbody.CheckID("workspace_id", "ws_", "ws_"+strings.Repeat("a", 7), 10); err != nil {
		t.Errorf("an id of the most bytes: %v", err)
	}
	long := "ws_" + strings.Repeat("x", 50) + "#"
	for _, tc := range []struct{ name, id, want string }{
		{"missing", "", "workspace_id is missing or empty, want an id starting ws_"},
		{"another kind", "map_1", `workspace_id "map_1" does not look like an id of its kind: want ws_ followed by the id`},
		{"the prefix in capitals", "WS_1", `workspace_id "WS_1" does not look like an id of its kind: want ws_ followed by the id`},
		{"prefix only", "ws_", `workspace_id "ws_" does not look like an id of its kind: want ws_ followed by the id`},
		{"too long", "ws_" + strings.Repeat("a", 8), "workspace_id is 11 characters long, at most 10"},
		{"a key separator", "ws_1#x", `workspace_id "ws_1#x" has the character '#' at byte 4: ids hold only letters, digits, '_' and '-'`},
		{"a space", "ws_1 2", `workspace_id "ws_1 2" has the character ' ' at byte 4: ids hold only letters, digits, '_' and '-'`},
		{"not ASCII", "ws_é", `workspace_id "ws_é" has the character 'Ã' at byte 3: ids hold only letters, digits, '_' and '-'`},
		{"a NUL", "ws_\x00", `workspace_id "ws_\x00" has the character '\x00' at byte 3: ids hold only letters, digits, '_' and '-'`},
	} {
		if err := sqsbody.CheckID("workspace_id", "ws_", tc.id, 10); err == nil || err.Error() != tc.want {
			t.Errorf("%s: CheckID(%q) = %v, want %q", tc.name, tc.id, err, tc.want)
		}
	}
	// A long id is clipped in the message.
	if err := sqsbody.CheckID("workspace_id", "ws_", long, 128); err == nil ||
		err.Error() != `workspace_id "ws_`+strings.Repeat("x", 37)+`…" has the character '#' at byte 53: ids hold only letters, digits, '_' and '-'` {
		t.Errorf("a long id: %v", err)
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                       "",
		"m-1":                    "m-1",
		strings.Repeat("a", 40):  strings.Repeat("a", 40),
		strings.Repeat("a", 41):  strings.Repeat("a", 40) + "…",
		strings.Repeat("é", 100): strings.Repeat("é", 20) + "…",
	} {
		if got := sqsbody.Clip(in); got != want {
			t.Errorf("Clip(%q) = %q, want %q", in, got, want)
		}
	}
}

// idForm is what CheckID accepts with prefix "ws_" and max 128.
var idForm = regexp.MustCompile(`^ws_[A-Za-z0-9_-]{1,125}$`)

// FuzzDecode: queues decode whatever body arrives. Decode never panics; it accepts exactly the
// bodies that are one JSON object which json.Unmarshal decodes without error, and decodes them
// as json.Unmarshal does; a problem is ErrEmpty just when the body is blank. CheckID accepts
// exactly the ids of its form.
func FuzzDecode(f *testing.F) {
	f.Add(body, "ws_1")
	f.Add(`{"id":"t_1","count":-3,"at":"0001-01-01T00:00:00Z"}`, "ws_")
	f.Add(`{"count":1e3,"at":"2026-01-01T00:00:00+25:00"}`, "ws_a#b")
	f.Add(`[{"id":"t_1"}] `, "ws_é")
	f.Add("null", "WS_1")
	f.Add(" \v{}\f", "ws_"+strings.Repeat("a", 126))
	f.Add(`{"id":"\ud800\xff"} {}`, "")
	f.Fuzz(func(t *testing.T, in, id string) {
		var got thing
		problem := sqsbody.Decode(in, &got)
		var ref thing
		uerr := json.Unmarshal([]byte(in), &ref)
		object := strings.HasPrefix(strings.TrimLeft(in, " \t\r\n"), "{")
		switch {
		case problem == nil && (uerr != nil || !object):
			t.Fatalf("Decode accepted %q, which is not one JSON object (json.Unmarshal: %v)", in, uerr)
		case problem == nil && !same(got, ref):
			t.Fatalf("Decode(%q) = %+v, json.Unmarshal %+v", in, got, ref)
		case problem != nil && uerr == nil && object:
			t.Fatalf("Decode refused %q, one JSON object json.Unmarshal decodes as %+v: %v", in, ref, problem)
		case problem != nil && problem.Error() == "":
			t.Fatalf("a problem without words for %q", in)
		case problem != nil && errors.Is(problem, sqsbody.ErrEmpty) != (strings.TrimSpace(in) == ""):
			t.Fatalf("Decode(%q): %q", in, problem)
		}
		if err := sqsbody.CheckID("workspace_id", "ws_", id, 128); (err == nil) != idForm.MatchString(id) {
			t.Fatalf("CheckID(%q) = %v", id, err)
		} else if err != nil && !strings.HasPrefix(err.Error(), "workspace_id ") {
			t.Fatalf("CheckID(%q) = %q, without the field's name", id, err)
		}
	})
}
