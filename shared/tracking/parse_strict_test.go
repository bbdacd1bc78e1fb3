package tracking

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
)

// answeredField is the field a rejection names as the API answers it (in a batch's rejected).
func answeredField(rj Rejection) string {
	b, _ := json.Marshal(rj)
	var v struct {
		Field string `json:"field"`
	}
	json.Unmarshal(b, &v)
	return v.Field
}

// Issue 12, item 1 and 10: what encoding/json would change or drop without a word is refused,
// naming the field: invalid UTF-8 and unpaired surrogates (all decode as U+FFFD, so
// "\xfe\xff" and "\xff\xfe" were one user), NUL characters, keys given twice. A single call
// answers the error; in a batch only that message is rejected.
func TestParseRefusesWhatDecodingWouldChange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, msg, code, field string
	}{
		{"userId FE FF", "{\"userId\":\"\xfe\xff\",\"event\":\"e\"}", "invalid_utf8", "userId"},
		{"userId FF FE", "{\"userId\":\"\xff\xfe\",\"event\":\"e\"}", "invalid_utf8", "userId"},
		{"anonymousId lone surrogate", `{"anonymousId":"\ud800","event":"e"}`, "invalid_utf8", "anonymousId"},
		{"messageId low surrogate", `{"userId":"u","messageId":"\udc00","event":"e"}`, "invalid_utf8", "messageId"},
		{"event", "{\"userId\":\"u\",\"event\":\"Order \xc3\"}", "invalid_utf8", "event"},
		{"a property key", "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"\xff\":1}}", "invalid_utf8", "properties"},
		{"a property value", "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"items\":[{\"sku\":\"a\"},{\"sku\":\"\xff\"}]}}", "invalid_utf8", "properties.items[1].sku"},
		{"context.traits.email", "{\"userId\":\"u\",\"event\":\"e\",\"context\":{\"traits\":{\"email\":\"\xff@x.com\"}}}", "invalid_utf8", "context.traits.email"},
		{"NUL in userId", `{"userId":"u\u0000","event":"e"}`, "nul_character", "userId"},
		{"NUL in anonymousId", `{"anonymousId":"\u0000a","event":"e"}`, "nul_character", "anonymousId"},
		{"NUL in messageId", `{"userId":"u","messageId":"m\u0000","event":"e"}`, "nul_character", "messageId"},
		{"NUL in the event", `{"userId":"u","event":"Signed\u0000Up"}`, "nul_character", "event"},
		{"NUL in a trait read as an identifier", `{"userId":"u","event":"e","context":{"traits":{"email":"a@x.com\u0000"}}}`, "nul_character", "context.traits.email"},
		{"raw NUL", "{\"userId\":\"u\x00\",\"event\":\"e\"}", "invalid_json", ""},
		{"userId twice", `{"userId":"a","userId":"b","event":"e"}`, "duplicate_key", "userId"},
		{"userId in another case", `{"userId":"a","userid":"b","event":"e"}`, "duplicate_key", "userid"},
		{"a property twice", `{"userId":"u","event":"e","properties":{"total":1,"total":2}}`, "duplicate_key", "properties.total"},
		{"a property twice, escaped", `{"userId":"u","event":"e","properties":{"a":1,"\u0061":2}}`, "duplicate_key", "properties.a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("track", []byte(tc.msg), parseTestEnv())
			e := errcode.As(err)
			if e == nil || e.Kind != errcode.Invalid || e.Code != tc.code || e.Field != tc.field {
				t.Fatalf("single track: err = %#v, want %s on field %q", err, tc.code, tc.field)
			}
			if tc.code == "invalid_json" {
				return // the whole body is not JSON: no batch to keep the others of
			}
			withType := `{"type":"track",` + tc.msg[1:]
			body := `{"batch":[{"type":"identify","userId":"ok-1"},` + withType + `,{"type":"identify","userId":"ok-2"}]}`
			for _, call := range []string{"batch", "import"} {
				req, err := Parse(call, []byte(body), parseTestEnv())
				if err != nil {
					t.Fatalf("%s: %v", call, err)
				}
				if len(req.Messages) != 2 || req.Messages[0].Index != 0 || req.Messages[1].Index != 2 || len(req.Rejected) != 1 {
					t.Fatalf("%s: %d messages, rejected %+v; want messages 0 and 2 kept, 1 rejected", call, len(req.Messages), req.Rejected)
				}
				if rj := req.Rejected[0]; rj.Index != 1 || rj.Code != tc.code || answeredField(rj) != tc.field || !strings.HasPrefix(rj.Message, "message 1: ") {
					t.Errorf("%s: rejection %+v, want message 1 with %s on %q", call, rj, tc.code, tc.field)
				}
			}
		})
	}
}

// The characters that are valid stay accepted, and different keys stay different.
func TestParseKeepsValidText(t *testing.T) {
	t.Parallel()
	body := `{"userId":"\ud83d\ude00 caf\u00e9 \ufffd","event":"\u00c9v\u00e9nement","traits":{"Email":"a","email":"b"},"properties":{"plan":"x","Plan":"y"}}`
	req, err := Parse("track", []byte(body), parseTestEnv())
	if err != nil {
		t.Fatal(err)
	}
	m := req.Messages[0].Message
	if m.UserID != "😀 café \ufffd" || m.Event != "Événement" || len(m.Properties) != 2 {
		t.Errorf("message = %+v", m)
	}
}

// The batch's own fields are checked too: their context goes into every message, so a
// problem there refuses the request.
func TestParseRefusesABadBatchEnvelope(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, code, field string }{
		{"{\"batch\":[{\"type\":\"identify\",\"userId\":\"u\"}],\"context\":{\"traits\":{\"email\":\"\xff\"}}}", "invalid_utf8", "context.traits.email"},
		{`{"batch":[{"type":"identify","userId":"u"}],"writeKey":"a\u0000"}`, "nul_character", "writeKey"},
		{`{"batch":[],"batch":[{"type":"identify","userId":"u"}]}`, "duplicate_key", "batch"},
		{`{"batch":[{"type":"identify","userId":"u"}],"Batch":[{"type":"identify","userId":"v"}]}`, "duplicate_key", "Batch"},
	} {
		_, err := Parse("batch", []byte(tc.body), parseTestEnv())
		if e := errcode.As(err); e == nil || e.Code != tc.code || e.Field != tc.field {
			t.Errorf("Parse(%q) = %#v, want %s on %q", tc.body, err, tc.code, tc.field)
		}
	}
}

// Issue 12, item 2: a message is accepted only if it is kept. Older than the event retention
// (30 days) it is rejected with timestamp_too_old naming the limit, instead of a 200 for an
// event no reader would ever show; /v1/import alone takes history up to ImportWindow (360
// days) for its counts, and names that limit past it. Later than profile.FutureSkew after
// its arrival it takes the time it arrived, so that it shows at once and never dates a
// profile's first message after its last. The bounds apply after the clock-skew correction.
func TestParseTimestampBounds(t *testing.T) {
	t.Parallel()
	at := func(d time.Duration) string { return parseReceivedAt.Add(d).Format(time.RFC3339Nano) }
	const day = 24 * time.Hour
	for _, tc := range []struct {
		name, fields string
		field        string    // the field a rejection names
		single       string    // the single call's rejection ("": accepted)
		imported     string    // /v1/import's rejection ("": accepted)
		want         time.Time // the timestamp kept
	}{
		{"400 days old", `"timestamp":"` + at(-400*day) + `"`, "timestamp", "30 days", "360 days", time.Time{}},
		{"361 days old by its send delay", `"originalTimestamp":"` + at(-361*day) + `","sentAt":"` + at(0) + `"`, "originalTimestamp", "30 days", "360 days", time.Time{}},
		{"359 days old", `"timestamp":"` + at(-359*day) + `"`, "timestamp", "30 days", "", parseReceivedAt.Add(-359 * day)},
		{"90 days old", `"timestamp":"` + at(-90*day) + `"`, "timestamp", "30 days", "", parseReceivedAt.Add(-90 * day)},
		{"31 days old by its send delay", `"originalTimestamp":"` + at(-31*day) + `","sentAt":"` + at(0) + `"`, "originalTimestamp", "30 days", "", parseReceivedAt.Add(-31 * day)},
		{"29 days old", `"timestamp":"` + at(-29*day) + `"`, "", "", "", parseReceivedAt.Add(-29 * day)},
		{"30 s ahead", `"timestamp":"` + at(30*time.Second) + `"`, "", "", "", parseReceivedAt.Add(30 * time.Second)},
		{"2 h ahead", `"timestamp":"` + at(2*time.Hour) + `"`, "", "", "", parseReceivedAt},
		{"year 9999", `"timestamp":"9999-12-31T23:59:59Z"`, "", "", "", parseReceivedAt},
		{"a device clock a year fast, corrected", `"originalTimestamp":"` + at(365*day-time.Minute) + `","sentAt":"` + at(365*day) + `"`, "", "", "", parseReceivedAt.Add(-time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := `{"type":"track","userId":"u","event":"e",` + tc.fields + `}`
			single, singleErr := Parse("track", []byte(msg), parseTestEnv())
			batch, err := Parse("batch", []byte(`{"batch":[`+msg+`]}`), parseTestEnv())
			if err != nil {
				t.Fatal(err)
			}
			imported, err := Parse("import", []byte(`{"batch":[`+msg+`]}`), parseTestEnv())
			if err != nil {
				t.Fatal(err)
			}
			if tc.single != "" {
				if e := errcode.As(singleErr); e == nil || e.Code != "timestamp_too_old" || e.Field != tc.field || !strings.Contains(e.Message, tc.single) {
					t.Errorf("single call: %v, want timestamp_too_old on %s naming the %s", singleErr, tc.field, tc.single)
				}
				if len(batch.Rejected) != 1 || batch.Rejected[0].Code != "timestamp_too_old" || !strings.Contains(batch.Rejected[0].Message, tc.single) {
					t.Errorf("batch: rejected %+v, want timestamp_too_old naming the %s", batch.Rejected, tc.single)
				}
			} else if singleErr != nil || len(batch.Messages) != 1 || !single.Messages[0].Message.Timestamp.Equal(tc.want) {
				t.Errorf("single call %v, batch rejected %+v; want both accepted at %v", singleErr, batch.Rejected, tc.want)
			}
			if tc.imported != "" {
				if len(imported.Messages) != 0 || len(imported.Rejected) != 1 {
					t.Fatalf("import: %d accepted, rejected %+v; want it rejected", len(imported.Messages), imported.Rejected)
				}
				rj := imported.Rejected[0]
				if rj.Code != "timestamp_too_old" || answeredField(rj) != tc.field || !strings.Contains(rj.Message, tc.imported) {
					t.Errorf("import: rejection %+v, want timestamp_too_old on %s naming the %s", rj, tc.field, tc.imported)
				}
				return
			}
			if len(imported.Messages) != 1 {
				t.Fatalf("import: rejected %+v, want it accepted", imported.Rejected)
			}
			if got := imported.Messages[0].Message.Timestamp; !got.Equal(tc.want) {
				t.Errorf("import: timestamp %v, want %v", got, tc.want)
			}
		})
	}
}

// Errors quote at most a clip of what was sent: a long value, key or path does not come back.
func TestParseErrorsClipValues(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 20000)
	for _, tc := range []struct{ call, body string }{
		{"batch", `{"batch":[{"type":"` + long + `","userId":"u"}]}`},
		{"track", `{"userId":"u","event":"e","timestamp":"` + long + `"}`},
		{"track", `{"userId":"u","event":"e","properties":{"` + long + `":1,"` + long + `":2}}`},
		{"track", `{"userId":"u","event":"e","properties":{"` + long + `":"\u0000"}}`},
	} {
		req, err := Parse(tc.call, []byte(tc.body), parseTestEnv())
		var e *errcode.Error
		if err != nil {
			e = errcode.As(err)
		} else if len(req.Rejected) == 1 {
			rj := req.Rejected[0]
			e = &errcode.Error{Code: rj.Code, Message: rj.Message, Field: answeredField(rj)}
		}
		switch {
		case e == nil:
			t.Errorf("%s %.60s…: no error", tc.call, tc.body)
		case len(e.Message) > 400 || len(e.Field) > 64+len("…"): // errcode.Clip's bound
			t.Errorf("%s %.60s…: %d-byte message, %d-byte field, want them quoting at most a clip", tc.call, tc.body, len(e.Message), len(e.Field))
		}
	}
}

// Only a request to /v1/import is marked an import: its track calls are counted for
// predictions whatever the space (profile.ImportManyWith), every other call's only where a
// prediction reads them.
func TestParseMarksImports(t *testing.T) {
	t.Parallel()
	msg := `{"type":"track","userId":"u","event":"e"}`
	for _, tc := range []struct {
		call, body string
		want       bool
	}{
		{"import", `{"batch":[` + msg + `]}`, true},
		{"batch", `{"batch":[` + msg + `]}`, false},
		{"track", msg, false},
	} {
		t.Run(tc.call, func(t *testing.T) {
			t.Parallel()
			req, err := Parse(tc.call, []byte(tc.body), parseTestEnv())
			if err != nil || len(req.Messages) != 1 {
				t.Fatalf("Parse: %d messages, %v", len(req.Messages), err)
			}
			if req.Import != tc.want {
				t.Errorf("Import = %v, want %v", req.Import, tc.want)
			}
		})
	}
}
