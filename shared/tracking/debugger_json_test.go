package tracking

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// fullEntry is an entry with every field set (TestDebuggerItemJSON checks it still is, so that
// a field added to Entry and not to appendEntry fails the test).
func fullEntry() Entry {
	at := time.Date(2026, 11, 29, 13, 13, 48, 123456789, time.UTC)
	return Entry{
		Cursor: "0000000000000000001#00000000000000ff#0000abcd#99999", ReceivedAt: at, Status: StatusAccepted,
		Raw: json.RawMessage(`{"type":"identify","userId":"u1"}`),
		Normalised: &Normalised{Type: "identify", MessageID: "m-1", UserID: "u1", AnonymousID: "a1", GroupID: "g1",
			PreviousID: "p1", Event: "E", Name: "N", Timestamp: at.Add(-time.Second), ReceivedAt: at, IP: "203.0.113.7"},
		Outcome: &EntryOutcome{ProfileID: "prof-1", Created: true, Added: []string{"user_id:u1", "email:a@x.test"},
			Merged: []string{"prof-2"}, Violations: []identity.Violation{{Kind: "limit", Identifier: identity.Identifier{Type: "email", Value: "<a&b>@x.test"},
				Detail: "too many \u2028 emails", At: at.In(time.FixedZone("X", -3*3600-30*60))}}},
		Rejection: &EntryRejection{Code: "invalid_field", Message: `message 1: "x" is <bad> & wrong`, Field: "traits.a"},
	}
}

// zeroFields lists the fields of the struct v points to (and of the structs its pointer
// fields point to) that are zero.
func zeroFields(v reflect.Value, path string) []string {
	var out []string
	for i := range v.NumField() {
		f, name := v.Field(i), path+v.Type().Field(i).Name
		switch {
		case f.IsZero():
			out = append(out, name)
		case f.Kind() == reflect.Pointer && f.Elem().Kind() == reflect.Struct:
			out = append(out, zeroFields(f.Elem(), name+".")...)
		}
	}
	return out
}

// debuggerRaws are raw messages as rawJSON passes them on: valid JSON, compact or not.
var debuggerRaws = []string{
	`{"a":1}`, `null`, `"not json"`, `[]`, `{}`, `123`, `-1.5e+3`, `true`,
	" {\n  \"type\" : \"track\",\t\"event\": \"a b  c\",\r\n \"properties\" : { \"q\" : [ 1 , 2 , { } , [ ] ] } \n} ",
	`{"url":"https://x.test/?a=1&b=<2>","html":"</script>","sep":"a` + "\u2028" + `b` + "\u2029" + `c"}`,
	`{"esc":"\" \\ \/ \b \f \n \r \t \u003c \u2028 \ud83d\ude00","k\"ey":"v\\"}`,
	`{"utf8":"caf` + "\u00e9 \u20ac \U0001F600" + `","e2":"` + "\u2027\u202a\u2020" + `"}`,
	"\"\xef\xbf\xbd replaced\"",
}

// TestDebuggerItemJSON: appendDebuggerItem writes exactly what json.Marshal (store.JSONItem)
// writes, for every field, every kind of raw message, and every character a string may hold.
func TestDebuggerItemJSON(t *testing.T) {
	t.Parallel()
	full := fullEntry()
	if zero := zeroFields(reflect.ValueOf(&full).Elem(), ""); len(zero) > 0 {
		t.Fatalf("fullEntry leaves %v zero: set them, and encode them in appendEntry", zero)
	}
	var items []debuggerItem
	items = append(items, debuggerItem{}, debuggerItem{Entries: []Entry{}}, debuggerItem{Entries: []Entry{full}})
	var many []Entry
	for _, raw := range debuggerRaws {
		many = append(many, Entry{Cursor: "c", Status: StatusRejected, Raw: json.RawMessage(raw)})
	}
	for _, s := range []string{"", "plain", `quote " backslash \ slash /`, "<>&'", "\x00\x01\b\f\n\r\t\x1f\x7f",
		"\xff\xfe invalid \xc3", "\u2028\u2029", "caf\u00e9 \U0001F600", "\xed\xa0\x80", strings.Repeat("é<", 40)} {
		many = append(many, Entry{Cursor: s, Status: s, Raw: rawJSON([]byte(s)),
			Normalised: &Normalised{Type: s, MessageID: s, UserID: s, Event: s, IP: s},
			Outcome:    &EntryOutcome{ProfileID: s, Added: []string{s}, Merged: []string{}},
			Rejection:  &EntryRejection{Code: s, Message: s, Field: s}})
	}
	for _, at := range []time.Time{{}, time.Unix(0, 1).UTC(), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 3, 1, 10, 0, 0, 500, time.FixedZone("CET", 3600)), time.Date(2026, 3, 1, 10, 0, 0, 0, time.Local)} {
		many = append(many, Entry{ReceivedAt: at, Raw: json.RawMessage(`{}`), Normalised: &Normalised{Timestamp: at, ReceivedAt: at}})
	}
	items = append(items, debuggerItem{Entries: many})
	for _, it := range items {
		want, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendDebuggerItem([]byte("prefix"), it)
		if !ok || !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("appendDebuggerItem = %v\n%s\nwant json.Marshal's\n%s", ok, got, want)
		}
		k := store.Key{PK: "pk", SK: "sk"}
		if got, want := debuggerItemData(k, it, 10), store.JSONItem(k, it); !reflect.DeepEqual(got, want) {
			t.Errorf("debuggerItemData = %+v, want store.JSONItem's %+v", got, want)
		}
	}

	// What json.Marshal refuses is left to it: a time it cannot write, an empty raw.
	for _, e := range []Entry{
		{Raw: json.RawMessage(`{}`), ReceivedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Raw: json.RawMessage(`{}`), Normalised: &Normalised{Timestamp: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{Raw: json.RawMessage{}},
	} {
		it := debuggerItem{Entries: []Entry{e}}
		if _, err := json.Marshal(it); err == nil {
			t.Fatalf("json.Marshal accepts %+v", e)
		}
		if _, ok := appendDebuggerItem(nil, it); ok {
			t.Errorf("appendDebuggerItem writes %+v, which json.Marshal refuses", e)
		}
	}
}

// FuzzDebuggerItemJSON: whatever a message's bytes and strings, the item appendDebuggerItem
// writes is json.Marshal's, byte for byte.
func FuzzDebuggerItemJSON(f *testing.F) {
	for _, raw := range debuggerRaws {
		f.Add([]byte(raw), "s", int64(1795958027125000000), true)
	}
	f.Add([]byte("\xff{"), "\u2028<\x00", int64(-62135596800000000), false)
	f.Add([]byte(`{"a" : "<b>" }`), "", int64(0), false)
	f.Fuzz(func(t *testing.T, raw []byte, s string, nanos int64, created bool) {
		at := time.Unix(0, nanos).UTC()
		e := fullEntry()
		e.Cursor, e.Status, e.Raw, e.ReceivedAt = s, s, rawJSON(raw), at
		e.Normalised.UserID, e.Normalised.Event, e.Normalised.Timestamp = s, s, at
		e.Outcome.Created, e.Outcome.Added = created, []string{s, s}
		e.Rejection.Message, e.Rejection.Field = s, s
		it := debuggerItem{Entries: []Entry{e, {Raw: rawJSON([]byte(s)), Cursor: s}}}
		if json.Valid(raw) {
			it.Entries = append(it.Entries, Entry{Raw: raw}) // valid as sent, whatever its bytes
		}
		want, err := json.Marshal(it)
		got, ok := appendDebuggerItem(nil, it)
		switch {
		case err != nil && ok:
			t.Fatalf("json.Marshal refuses the item (%v), appendDebuggerItem writes it:\n%s", err, got)
		case err == nil && (!ok || !bytes.Equal(got, want)):
			t.Fatalf("appendDebuggerItem = %v\n%s\nwant\n%s", ok, got, want)
		}
	})
}

// FuzzValidJSON: validJSON is json.Valid.
func FuzzValidJSON(f *testing.F) {
	for _, b := range decoderCorpus(f) {
		f.Add(b)
	}
	for _, s := range debuggerRaws {
		f.Add([]byte(s))
	}
	for _, s := range []string{``, ` `, `1`, `-`, `01`, `1.`, `.1`, `1e`, `1e+`, `1E-2`, `-0.0e0`, `"`, `"\`, `"\u00"`, `"\u00zz"`,
		"\"\x1f\"", "\"\x7f\"", `[1,]`, `{"a":1,}`, `{"a"}`, `{1:2}`, `[`, `]`, `{}}`, `[]]`, `nul`, `nulll`, `truefalse`, `[1 2]`,
		`{"a":1 "b":2}`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 10000) + strings.Repeat("]", 10000)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
		// The decoder itself agrees, but on what nests deeper than it follows.
		if fast, want := decoderValid(b), json.Valid(b); fast != want && (fast || nesting(b) <= fastMaxDepth) {
			t.Fatalf("the decoder finds %q valid: %v; json.Valid: %v", b, fast, want)
		}
	})
}

// benchDebuggerInput is what the debugger gets for the Segment Node SDK's batch: six messages
// applied, one refused by the parser.
func benchDebuggerInput(b *testing.B) (*Service, Result, []*Parsed) {
	body := readParseFixture(b, "analytics-node-3.1.0-batch.json")
	req, err := Parse("batch", body, parseTestEnv())
	if err != nil {
		b.Fatal(err)
	}
	s := &Service{now: func() time.Time { return parseReceivedAt }, seen: map[store.Key]bool{}}
	res := Result{Rejected: req.Rejected}
	var applied []*Parsed
	for i := range req.Messages {
		p := &req.Messages[i]
		r := profile.Result{ProfileID: "prof-0123456789", Created: i == 0, Added: []identity.Identifier{{Type: "user_id", Value: p.Message.UserID}}}
		res.Outcomes = append(res.Outcomes, Outcome{Index: p.Index, Result: r})
		applied = append(applied, p)
	}
	return s, res, applied
}

// BenchmarkDebuggerOps builds the debugger's writes for one request.
func BenchmarkDebuggerOps(b *testing.B) {
	s, res, applied := benchDebuggerInput(b)
	src := workspace.Source{ID: "src-1"}
	b.ReportAllocs()
	for b.Loop() {
		if ops, _ := s.debuggerOps(src, res, applied); len(ops) == 0 {
			b.Fatal("no ops")
		}
	}
}

// BenchmarkDebuggerItem encodes one request's debugger item (7 entries).
func BenchmarkDebuggerItem(b *testing.B) {
	_, res, applied := benchDebuggerInput(b)
	var it debuggerItem
	hint := 0
	for _, p := range applied {
		m := p.Message
		it.Entries = append(it.Entries, Entry{Cursor: "0000000000000000001#00000000000000ff#0000abcd#99999", ReceivedAt: parseReceivedAt,
			Status: StatusAccepted, Raw: rawJSON(m.Raw), Normalised: &Normalised{Type: m.Type, MessageID: m.MessageID,
				UserID: m.UserID, AnonymousID: m.AnonymousID, Event: m.Event, Name: m.Name, Timestamp: m.Timestamp, ReceivedAt: m.ReceivedAt},
			Outcome: &EntryOutcome{ProfileID: "prof-0123456789", Added: []string{"user_id:u1"}}})
	}
	for _, r := range res.Rejected {
		it.Entries = append(it.Entries, Entry{Cursor: "0000000000000000001#00000000000000ff#0000abcd#99993", ReceivedAt: parseReceivedAt,
			Status: StatusRejected, Raw: rawJSON(r.Raw), Rejection: &EntryRejection{Code: r.Code, Message: r.Message, Field: r.Field}})
	}
	for _, e := range it.Entries {
		hint += len(e.Raw) + len(e.Cursor) + 320
		if e.Rejection != nil {
			hint += len(e.Rejection.Message)
		}
	}
	k := store.Key{PK: "DBG#src-1#00", SK: "sk"}
	b.ReportAllocs()
	for b.Loop() {
		if item := debuggerItemData(k, it, hint); len(item.Data) == 0 {
			b.Fatal("empty")
		}
	}
}

// nesting is how deep the arrays and objects of the valid JSON text b nest.
func nesting(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// entryCursor writes what fmt.Sprintf("%s#%05d", …) wrote.
func TestEntryCursor(t *testing.T) {
	t.Parallel()
	for _, index := range []int{0, 1, 7, 42, 99, 100, 2499, 9999, 10000, 99998, 99999, 100000, 1 << 40, -1, -99999, -100000} {
		sk := "0000000000000000001#00000000000000ff#0000abcd"
		if got, want := entryCursor(sk, index), fmt.Sprintf("%s#%05d", sk, 99999-min(index, 99999)); got != want {
			t.Errorf("entryCursor(%d) = %q, want %q", index, got, want)
		}
	}
}
