package tracking

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/message"
)

var parseReceivedAt = time.Date(2026, 11, 29, 13, 13, 48, 0, time.UTC)

// parseTestEnv numbers the ids it assigns, so that tests can tell them from sent ones.
func parseTestEnv() Env {
	var n atomic.Int64
	return Env{
		ReceivedAt: parseReceivedAt,
		IP:         "203.0.113.7",
		NewID:      func() string { return fmt.Sprintf("new-%d", n.Add(1)) },
	}
}

func readParseFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustParseTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t.UTC()
}

// wantParsed is the part of a message the fixtures' tests compare.
type wantParsed struct {
	typ, messageID, userID, anonID, groupID, previousID, event, name string
	traits, properties                                               map[string]any
}

func gotParsed(m message.Message) wantParsed {
	return wantParsed{m.Type, m.MessageID, m.UserID, m.AnonymousID, m.GroupID, m.PreviousID, m.Event, m.Name, m.Traits, m.Properties}
}

// sdkMessages is what every SDK fixture sends (the Rudder one only the first), ids aside.
func sdkMessages(ids ...string) []wantParsed {
	all := []wantParsed{
		{typ: "identify", userID: "u1", traits: map[string]any{"email": "a@example.com", "plan": "pro"}},
		{typ: "track", userID: "u1", event: "Order Completed", properties: map[string]any{"currency": "USD", "revenue": 42.5}},
		{typ: "page", userID: "u1", name: "Intro", properties: map[string]any{"category": "Docs", "url": "https://x.test/intro"}},
		{typ: "screen", userID: "u1", name: "Home", properties: map[string]any{"variant": "a"}},
		{typ: "group", userID: "u1", groupID: "g1", traits: map[string]any{"name": "Acme"}},
		{typ: "alias", userID: "u1", previousID: "anon-123"},
		{typ: "track", anonID: "anon-9", event: "With Context", properties: map[string]any{}},
	}
	all = all[:len(ids)]
	for i := range all {
		all[i].messageID = ids[i]
	}
	return all
}

func TestParseFixtures(t *testing.T) {
	t.Parallel()
	goMessages := sdkMessages("19e42aa2-14a8-4ddf-a1d5-6bcc8946aec5", "5270d12e-2357-449f-9d5b-e5929bb4a771",
		"3ba0506d-136b-46a8-a9b0-57a7ae954314", "9e3b15f8-590a-4c55-9ff3-090c09d04395", "5bc99933-a4cb-4769-a5c0-6aa4f0de405f",
		"c6c93946-ed18-4a0f-b81d-322c9c96fc27", "fixed-msg-id-go")
	goMessages[6].properties = nil // analytics-go sends no properties on that track
	for _, tc := range []struct {
		file     string
		writeKey string
		want     []wantParsed
		library  string // context.library.name on every message
		// The first message's timestamp: its own, corrected by the sentAt that applies.
		original, sentAt string
	}{
		{
			file: "analytics-go-3.3.0-batch.json", want: goMessages, library: "analytics-go",
			original: "2026-11-29T13:13:47.22838669Z", sentAt: "2026-11-29T13:13:47.228948119Z",
		},
		{
			file: "analytics-node-3.1.0-batch.json", writeKey: "WRITEKEY_SEG_123", library: "@segment/analytics-node",
			want: sdkMessages("node-next-1795958027125-8cb3bf83-d974-4461-80ba-29d54735c120",
				"node-next-1795958027125-bf83d974-2461-40ba-a9d5-4735c1204893", "node-next-1795958027126-d9742461-c0ba-49d5-8735-c1204893492d",
				"node-next-1795958027126-2461c0ba-29d5-4735-8120-4893492d7dba", "node-next-1795958027126-c0ba29d5-4735-4120-8893-492d7dbab6b7",
				"node-next-1795958027126-29d54735-c120-4893-892d-7dbab6b7e50a", "fixed-msg-id-1"),
			original: "2026-11-29T13:13:47.125Z", sentAt: "2026-11-29T13:13:47.129Z",
		},
		{
			file: "rudder-sdk-node-3.0.13-batch.json", library: "analytics-node",
			want:     sdkMessages("ed4c2e78-885f-4501-a585-f47d96e477cf"),
			original: "2026-11-29T13:13:47.807Z", sentAt: "2026-11-29T13:13:47.809Z",
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			// The Go and Node fixtures set one message's timestamp to 2024-01-01, older than
			// events are kept (TestParseTimestampBounds refuses it); moved into the window, it
			// still checks that a timestamp the caller set is read.
			body := bytes.ReplaceAll(readParseFixture(t, tc.file), []byte(`"2024-01-01T00:00:00`), []byte(`"2026-11-20T00:00:00`))
			for _, call := range []string{"batch", "import"} {
				req, err := Parse(call, body, parseTestEnv())
				if err != nil {
					t.Fatalf("Parse(%s): %v", call, err)
				}
				if len(req.Rejected) != 0 {
					t.Fatalf("Parse(%s) rejected %+v", call, req.Rejected)
				}
				if req.Total != len(tc.want) || len(req.Messages) != len(tc.want) || req.WriteKey != tc.writeKey {
					t.Fatalf("Parse(%s): total %d, %d messages, writeKey %q; want %d, %d, %q",
						call, req.Total, len(req.Messages), req.WriteKey, len(tc.want), len(tc.want), tc.writeKey)
				}
				for i, p := range req.Messages {
					if p.Index != i {
						t.Errorf("message %d has Index %d", i, p.Index)
					}
					if got := gotParsed(p.Message); !reflect.DeepEqual(got, tc.want[i]) {
						t.Errorf("message %d:\n got %+v\nwant %+v", i, got, tc.want[i])
					}
					m := p.Message
					if lib := message.Object(m.Context, "library"); lib["name"] != tc.library {
						t.Errorf("message %d: context.library = %v, want name %q", i, lib, tc.library)
					}
					if !m.ReceivedAt.Equal(parseReceivedAt) || m.SourceID != "" {
						t.Errorf("message %d: receivedAt %v, sourceID %q", i, m.ReceivedAt, m.SourceID)
					}
					if !json.Valid(m.Raw) || !bytes.Contains(body, m.Raw) {
						t.Errorf("message %d: Raw is not a slice of the body as received: %s", i, m.Raw)
					}
				}
				first := req.Messages[0].Message
				skew := mustParseTime(t, tc.sentAt).Sub(mustParseTime(t, tc.original))
				if want := parseReceivedAt.Add(-skew); !first.Timestamp.Equal(want) || first.Timestamp.Location() != time.UTC {
					t.Errorf("timestamp = %v, want %v (UTC)", first.Timestamp, want)
				}
				if len(req.Messages) == 7 {
					if ip := req.Messages[6].Message.Context["ip"]; ip != "1.2.3.4" {
						t.Errorf("message 6: context.ip = %v, want the one sent", ip)
					}
				}
			}
		})
	}
}

// The batches of the mobile and Java SDKs (fixtures built from those SDKs' sources, see
// testdata/MOBILE_FIXTURES.md) parse whole: every message accepted, in order, with its ids and
// names, the library the SDK names (Java's only at batch level, which every message takes).
func TestParseMobileAndJavaFixtures(t *testing.T) {
	t.Parallel()
	type msg struct{ typ, userID, name, event string }
	mobile := []msg{{"identify", "u1", "", ""}, {"track", "u1", "", "Order Completed"}, {"screen", "u1", "Home", ""},
		{"group", "u1", "", ""}, {"alias", "u1", "", ""}, {"screen", "", "Settings", ""}}
	for _, tc := range []struct {
		file, library string
		want          []msg
	}{
		{"analytics-swift-1.10.0-batch.json", "analytics-swift", mobile},
		{"analytics-kotlin-1.25.0-batch.json", "analytics-kotlin", mobile},
		{"analytics-java-3.5.5-batch.json", "analytics-java", mobile[:5]},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			body := readParseFixture(t, tc.file)
			var sent struct {
				Batch []struct {
					MessageID   string `json:"messageId"`
					AnonymousID string `json:"anonymousId"`
				} `json:"batch"`
			}
			if err := json.Unmarshal(body, &sent); err != nil {
				t.Fatal(err)
			}
			req, err := Parse("batch", body, parseTestEnv())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(req.Rejected) != 0 || len(req.Messages) != len(tc.want) || req.WriteKey != "WRITEKEY_SEG_123" {
				t.Fatalf("Parse: %d messages, rejected %+v, writeKey %q; want %d, none, WRITEKEY_SEG_123", len(req.Messages), req.Rejected, req.WriteKey, len(tc.want))
			}
			for i, p := range req.Messages {
				m, w := p.Message, tc.want[i]
				if p.Index != i || m.Type != w.typ || m.UserID != w.userID || m.Name != w.name || m.Event != w.event {
					t.Errorf("message %d: index %d, %s user %q name %q event %q; want %+v", i, p.Index, m.Type, m.UserID, m.Name, m.Event, w)
				}
				if m.MessageID != sent.Batch[i].MessageID || m.AnonymousID != sent.Batch[i].AnonymousID {
					t.Errorf("message %d: messageId %q anonymousId %q, want the sent %q and %q", i, m.MessageID, m.AnonymousID, sent.Batch[i].MessageID, sent.Batch[i].AnonymousID)
				}
				if lib := message.Object(m.Context, "library"); lib["name"] != tc.library {
					t.Errorf("message %d: context.library = %v, want %s", i, lib, tc.library)
				}
				if !bytes.Contains(body, m.Raw) {
					t.Errorf("message %d: Raw is not the bytes sent", i)
				}
			}
		})
	}
}

// withType inserts "type" into a message object, for the batch form of a single call's body.
func withType(typ, msg string) string {
	return `{"type":` + fmt.Sprintf("%q", typ) + `,` + strings.TrimPrefix(msg, "{")
}

// manyKeys is a JSON object with n keys.
func manyKeys(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	b.WriteString("}")
	return b.String()
}

// TestParseInvalidMessages sends each bad message as a single call (Parse fails with its
// error) and in the middle of a batch (it alone is rejected).
func TestParseInvalidMessages(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", MaxMessageBytes)
	for _, tc := range []struct {
		name, call, msg string
		code, field     string
	}{
		{"too large", "track", `{"userId":"u","event":"e","properties":{"blob":"` + big + `"}}`, "message_too_large", ""},
		{"no ids", "identify", `{"traits":{"a":1}}`, "no_user_anon_id", "userId|anonymousId"},
		{"empty ids", "track", `{"userId":"","anonymousId":null,"event":"e"}`, "no_user_anon_id", "userId|anonymousId"},
		{"no event", "track", `{"userId":"u"}`, "missing_event", "event"},
		{"empty event", "track", `{"userId":"u","event":""}`, "missing_event", "event"},
		{"no groupId", "group", `{"userId":"u","traits":{}}`, "missing_group_id", "groupId"},
		{"no previousId", "alias", `{"userId":"u"}`, "missing_previous_id", "previousId"},
		{"long messageId", "page", `{"userId":"u","messageId":"` + strings.Repeat("m", MaxMessageIDLen+1) + `"}`, "message_id_too_long", "messageId"},
		{"too many traits", "identify", `{"userId":"u","traits":` + manyKeys(MaxFields+1) + `}`, "too_many_traits", "traits"},
		{"too many properties", "screen", `{"userId":"u","properties":` + manyKeys(MaxFields+1) + `}`, "too_many_properties", "properties"},
		{"traits not an object", "identify", `{"userId":"u","traits":"gold"}`, "invalid_field", "traits"},
		{"properties an array", "track", `{"userId":"u","event":"e","properties":[1]}`, "invalid_field", "properties"},
		{"context a number", "page", `{"userId":"u","context":3}`, "invalid_field", "context"},
		{"integrations a string", "page", `{"userId":"u","integrations":"all"}`, "invalid_field", "integrations"},
		{"number out of range", "track", `{"userId":"u","event":"e","properties":{"a":{"b":1e999}}}`, "invalid_field", "properties"},
		{"event a number", "track", `{"userId":"u","event":5}`, "invalid_field", "event"},
		{"name an object", "page", `{"userId":"u","name":{}}`, "invalid_field", "name"},
		{"userId a bool", "identify", `{"userId":true}`, "invalid_field", "userId"},
		{"anonymousId an object", "identify", `{"anonymousId":{"id":1}}`, "invalid_field", "anonymousId"},
		{"groupId an array", "group", `{"userId":"u","groupId":["g"]}`, "invalid_field", "groupId"},
		{"messageId a bool", "identify", `{"userId":"u","messageId":false}`, "invalid_field", "messageId"},
		{"timestamp not a time", "identify", `{"userId":"u","timestamp":"yesterday"}`, "invalid_field", "timestamp"},
		{"timestamp a number", "identify", `{"userId":"u","timestamp":1700000000}`, "invalid_field", "timestamp"},
		{"originalTimestamp no zone", "identify", `{"userId":"u","originalTimestamp":"2026-01-02T15:04:05"}`, "invalid_field", "originalTimestamp"},
		{"sentAt not a time", "identify", `{"userId":"u","sentAt":"2026-13-01T00:00:00Z"}`, "invalid_field", "sentAt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tc.call, []byte(tc.msg), parseTestEnv())
			e := errcode.As(err)
			if e == nil || e.Kind != errcode.Invalid || e.Code != tc.code || e.Field != tc.field || e.Message == "" {
				t.Fatalf("single %s: err = %#v, want Invalid %s on field %q", tc.call, err, tc.code, tc.field)
			}
			if !strings.HasPrefix(e.Message, "the message") {
				t.Errorf("single %s: message %q does not say which message", tc.call, e.Message)
			}

			body := `{"batch":[{"type":"track","userId":"u","event":"ok"},` + withType(tc.call, tc.msg) + `,{"type":"identify","anonymousId":"a"}]}`
			req, err := Parse("batch", []byte(body), parseTestEnv())
			if err != nil {
				t.Fatalf("batch: %v", err)
			}
			assertOneRejection(t, req, 1, tc.code, withType(tc.call, tc.msg))
		})
	}
}

func assertOneRejection(t *testing.T, req Request, index int, code, raw string) {
	t.Helper()
	if len(req.Rejected) != 1 {
		t.Fatalf("rejected %+v, want one", req.Rejected)
	}
	rj := req.Rejected[0]
	if rj.Index != index || rj.Code != code || string(rj.Raw) != raw || !strings.HasPrefix(rj.Message, fmt.Sprintf("message %d", index)) {
		t.Errorf("rejection = {%d %s %q %.80s}, want index %d, code %s, raw as sent", rj.Index, rj.Code, rj.Message, rj.Raw, index, code)
	}
	if req.Total != len(req.Messages)+1 {
		t.Errorf("total %d with %d messages", req.Total, len(req.Messages))
	}
	for _, p := range req.Messages {
		if p.Index == index {
			t.Errorf("message %d both accepted and rejected", index)
		}
	}
	if len(req.Messages) > 0 && (req.Messages[0].Index != 0 || req.Messages[len(req.Messages)-1].Index != req.Total-1) {
		t.Errorf("the valid neighbours are missing: %+v", req.Messages)
	}
}

// TestParseBatchOnlyRejections covers what only a batch element can get wrong: its type, and
// not being an object.
func TestParseBatchOnlyRejections(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, elem, code string
	}{
		{"no type", `{"userId":"u"}`, "invalid_type"},
		{"unknown type", `{"type":"purchase","userId":"u"}`, "invalid_type"},
		{"type in capitals", `{"type":"Track","userId":"u","event":"e"}`, "invalid_type"},
		{"type a number", `{"type":7,"userId":"u"}`, "invalid_type"},
		{"null", `null`, "invalid_field"},
		{"a string", `"track"`, "invalid_field"},
		{"an array", `[{"type":"track"}]`, "invalid_field"},
		{"too large, not decoded", `{"type":"identify","userId":"u","traits":{"a":"` + strings.Repeat("é", MaxMessageBytes/2) + `"}}`, "message_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := "{\"batch\": [ {\"type\":\"track\",\"userId\":\"u\",\"event\":\"ok\"} ,\n\t" + tc.elem + " , {\"type\":\"alias\",\"userId\":\"u\",\"previousId\":\"p\"}]}"
			req, err := Parse("batch", []byte(body), parseTestEnv())
			if err != nil {
				t.Fatal(err)
			}
			assertOneRejection(t, req, 1, tc.code, tc.elem)
		})
	}
}

func TestParseRequestErrors(t *testing.T) {
	t.Parallel()
	tooMany := `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"track","userId":"u","event":"e"},`, MaxBatchMessages+1), ",") + `]}`
	for _, tc := range []struct {
		name, call, body string
		code, field      string
	}{
		{"body too large", "batch", `{"batch":[{"type":"identify","userId":"u","traits":{"a":"` + strings.Repeat("x", MaxRequestBytes) + `"}}]}`, "request_too_large", ""},
		{"single too large", "track", strings.Repeat(" ", MaxRequestBytes+1), "request_too_large", ""},
		{"empty", "batch", ``, "invalid_json", ""},
		{"blank single", "track", " \n", "invalid_json", ""},
		{"truncated", "batch", `{"batch":[{"type":"track"`, "invalid_json", ""},
		{"truncated single", "identify", `{"userId":"u"`, "invalid_json", ""},
		{"garbage", "track", `userId=u`, "invalid_json", ""},
		{"array", "batch", `[{"type":"track","userId":"u","event":"e"}]`, "invalid_json", ""},
		{"null", "identify", `null`, "invalid_json", ""},
		{"string", "track", `"track"`, "invalid_json", ""},
		{"trailing data", "track", `{"userId":"u","event":"e"} {}`, "invalid_json", ""},
		{"too many messages", "batch", tooMany, "too_many_messages", "batch"},
		{"no batch", "batch", `{"messages":[]}`, "invalid_field", "batch"},
		{"batch null", "import", `{"batch":null}`, "invalid_field", "batch"},
		{"batch an object", "batch", `{"batch":{"type":"track"}}`, "invalid_field", "batch"},
		{"batch empty", "batch", `{"batch":[]}`, "invalid_field", "batch"},
		{"batch context an array", "batch", `{"batch":[{"type":"identify","userId":"u"}],"context":[]}`, "invalid_field", "context"},
		{"batch sentAt bad", "batch", `{"batch":[{"type":"identify","userId":"u"}],"sentAt":"noon"}`, "invalid_field", "sentAt"},
		{"batch writeKey a number", "batch", `{"batch":[{"type":"identify","userId":"u"}],"writeKey":12}`, "invalid_field", "writeKey"},
		{"single writeKey an object", "identify", `{"userId":"u","writeKey":{}}`, "invalid_field", "writeKey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tc.call, []byte(tc.body), parseTestEnv())
			e := errcode.As(err)
			if e == nil || e.Kind != errcode.Invalid || e.Code != tc.code || e.Field != tc.field || e.Message == "" {
				t.Fatalf("err = %#v, want Invalid %s on field %q", err, tc.code, tc.field)
			}
		})
	}

	_, err := Parse("purchase", []byte(`{}`), parseTestEnv())
	if e := errcode.As(err); e == nil || e.Kind != errcode.NotFound {
		t.Errorf("unknown call: err = %v, want not found", err)
	}
}

func TestParseLimitMessagesNameTheLimit(t *testing.T) {
	t.Parallel()
	elem := `{"type":"identify","userId":"u","traits":{"a":"` + strings.Repeat("x", 40200) + `"}}`
	body := `{"batch":[{"type":"identify","userId":"u"},{"type":"identify","userId":"u"},{"type":"identify","userId":"u"},` + elem + `]}`
	req, err := Parse("batch", []byte(body), parseTestEnv())
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("message 3 is %d bytes; the limit is 32768 bytes per message", len(elem))
	if len(req.Rejected) != 1 || req.Rejected[0].Message != want {
		t.Fatalf("rejected %+v, want %q", req.Rejected, want)
	}
}

func TestParseSingleCall(t *testing.T) {
	t.Parallel()
	body := []byte(` {"type":"identify","userId":"u1","event":"ignored","properties":{"p":1},"writeKey":"WK","traits":{"plan":"pro"},"integrations":{"All":false}}` + "\n")
	req, err := Parse("track", body, parseTestEnv())
	if err != nil {
		t.Fatal(err)
	}
	if req.Total != 1 || len(req.Messages) != 1 || len(req.Rejected) != 0 || req.WriteKey != "WK" {
		t.Fatalf("req = %+v", req)
	}
	m := req.Messages[0].Message
	if m.Type != "track" || m.Event != "ignored" || m.Traits != nil || m.Properties["p"] != 1.0 || m.Integrations["All"] != false {
		t.Errorf("message = %+v; the call is the type, track keeps properties only", m)
	}
	if string(m.Raw) != string(body) {
		t.Errorf("Raw = %q, want the whole body", m.Raw)
	}
	body[2] = 'X' // the caller may reuse its buffer
	if m.Raw[2] == 'X' {
		t.Error("Raw shares the caller's buffer")
	}
}

func TestParseClockSkew(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time { return mustParseTime(t, "2026-03-01T"+s+"Z") }
	env := parseTestEnv()
	env.ReceivedAt = at("10:00:02").In(time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		name, msg, batchSentAt string
		want                   time.Time
	}{
		{"originalTimestamp and sentAt", `"originalTimestamp":"2026-03-01T10:00:00Z","sentAt":"2026-03-01T10:00:05Z"`, "", at("09:59:57")},
		{"batch sentAt", `"originalTimestamp":"2026-03-01T10:00:00Z"`, "2026-03-01T10:00:05Z", at("09:59:57")},
		{"message sentAt wins", `"originalTimestamp":"2026-03-01T10:00:00Z","sentAt":"2026-03-01T10:00:05Z"`, "2026-03-01T10:00:09Z", at("09:59:57")},
		{"timestamp when no originalTimestamp", `"timestamp":"2026-03-01T10:00:00Z","sentAt":"2026-03-01T10:00:05Z"`, "", at("09:59:57")},
		{"originalTimestamp before timestamp", `"originalTimestamp":"2026-03-01T10:00:00Z","timestamp":"2026-03-01T11:00:00Z","sentAt":"2026-03-01T10:00:05Z"`, "", at("09:59:57")},
		{"offsets", `"originalTimestamp":"2026-03-01T11:00:00.000+0100","sentAt":"2026-03-01T05:00:05-05:00"`, "", at("09:59:57")},
		{"no sentAt", `"timestamp":"2026-03-01T10:00:00.5Z"`, "", at("10:00:00.5")},
		{"no timestamp", `"sentAt":"2026-03-01T10:00:05Z"`, "", at("10:00:02")},
		{"empty strings", `"timestamp":"","sentAt":""`, "", at("10:00:02")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			batch := `{"batch":[{"type":"identify","userId":"u",` + tc.msg + `}]`
			if tc.batchSentAt != "" {
				batch += `,"sentAt":"` + tc.batchSentAt + `"`
			}
			req, err := Parse("batch", []byte(batch+"}"), env)
			if err != nil || len(req.Messages) != 1 {
				t.Fatalf("Parse: %+v, %v", req, err)
			}
			m := req.Messages[0].Message
			if !m.Timestamp.Equal(tc.want) || m.Timestamp.Location() != time.UTC || m.ReceivedAt.Location() != time.UTC {
				t.Errorf("timestamp = %v, want %v; all UTC (receivedAt %v)", m.Timestamp, tc.want, m.ReceivedAt)
			}
		})
	}
}

func TestParseBatchContextMerge(t *testing.T) {
	t.Parallel()
	body := `{"batch":[
		{"type":"identify","userId":"u0"},
		{"type":"identify","userId":"u1","context":{"locale":"fr","page":{"url":"/own"}},"integrations":{"Amplitude":true}},
		{"type":"identify","userId":"u2","context":null}
	],"context":{"locale":"en","library":{"name":"lib","tags":["a"]}},"integrations":{"All":false,"Amplitude":false}}`
	req, err := Parse("batch", []byte(body), parseTestEnv())
	if err != nil || len(req.Messages) != 3 {
		t.Fatalf("Parse: %+v, %v", req, err)
	}
	m0, m1, m2 := req.Messages[0].Message, req.Messages[1].Message, req.Messages[2].Message
	lib := map[string]any{"name": "lib", "tags": []any{"a"}}
	if want := map[string]any{"locale": "en", "library": lib}; !reflect.DeepEqual(m0.Context, want) {
		t.Errorf("message 0 context = %v, want the batch's", m0.Context)
	}
	if want := map[string]any{"locale": "fr", "page": map[string]any{"url": "/own"}, "library": lib}; !reflect.DeepEqual(m1.Context, want) {
		t.Errorf("message 1 context = %v, want its own plus the batch's library", m1.Context)
	}
	if want := map[string]any{"All": false, "Amplitude": true}; !reflect.DeepEqual(m1.Integrations, want) {
		t.Errorf("message 1 integrations = %v, want %v", m1.Integrations, want)
	}
	if want := map[string]any{"All": false, "Amplitude": false}; !reflect.DeepEqual(m2.Integrations, want) {
		t.Errorf("message 2 integrations = %v, want the batch's", m2.Integrations)
	}

	// Editing one message's context, at any depth, leaves the others alone.
	m0.Context["locale"] = "de"
	message.Object(m0.Context, "library")["name"] = "edited"
	message.Object(m0.Context, "library")["tags"].([]any)[0] = "edited"
	m0.Integrations["All"] = true
	for i, m := range []message.Message{m1, m2} {
		if message.Object(m.Context, "library")["name"] != "lib" || message.Object(m.Context, "library")["tags"].([]any)[0] != "a" || m.Integrations["All"] != false {
			t.Errorf("message %d shares the batch context with message 0: %v %v", i+1, m.Context, m.Integrations)
		}
	}
	if m2.Context["locale"] != "en" {
		t.Errorf("message 2 context = %v", m2.Context)
	}
}

func TestParseDirectIP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ctx, batchCtx, envIP string
		wantIP                     any
	}{
		{"direct", `{"direct":true,"ip":"10.0.0.1"}`, "", "203.0.113.7", "203.0.113.7"},
		{"direct from the batch", ``, `{"direct":true}`, "203.0.113.7", "203.0.113.7"},
		{"not direct", `{"ip":"10.0.0.1"}`, "", "203.0.113.7", "10.0.0.1"},
		{"direct false", `{"direct":false}`, "", "203.0.113.7", nil},
		{"direct a string", `{"direct":"true"}`, "", "203.0.113.7", nil},
		{"direct without a caller address", `{"direct":true,"ip":"10.0.0.1"}`, "", "", "10.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := parseTestEnv()
			env.IP = tc.envIP
			msg := `{"type":"track","userId":"u","event":"e"`
			if tc.ctx != "" {
				msg += `,"context":` + tc.ctx
			}
			body := `{"batch":[` + msg + `}]`
			if tc.batchCtx != "" {
				body += `,"context":` + tc.batchCtx
			}
			req, err := Parse("batch", []byte(body+"}"), env)
			if err != nil || len(req.Messages) != 1 {
				t.Fatalf("Parse: %+v, %v", req, err)
			}
			if ip := req.Messages[0].Message.Context["ip"]; ip != tc.wantIP {
				t.Errorf("context.ip = %v, want %v", ip, tc.wantIP)
			}
		})
	}
}

func TestParseIDs(t *testing.T) {
	t.Parallel()
	body := `{"batch":[
		{"type":"group","userId":123,"anonymousId":1.5e3,"groupId":-0.10,"messageId":42},
		{"type":"alias","userId":"caf\u00e9 \"q\"","previousId":9007199254740993123},
		{"type":"identify","anonymousId":"a"},
		{"type":"identify","anonymousId":"a","messageId":""},
		{"type":"identify","anonymousId":"a","messageId":null}
	]}`
	req, err := Parse("batch", []byte(body), parseTestEnv())
	if err != nil || len(req.Messages) != 5 {
		t.Fatalf("Parse: %+v, %v", req, err)
	}
	got := make([][4]string, 0, 5)
	for _, p := range req.Messages {
		m := p.Message
		got = append(got, [4]string{m.MessageID, m.UserID, m.AnonymousID, m.GroupID + m.PreviousID})
	}
	want := [][4]string{
		{"42", "123", "1.5e3", "-0.10"},
		{"new-1", `café "q"`, "", "9007199254740993123"},
		{"new-2", "", "a", ""},
		{"new-3", "", "a", ""},
		{"new-4", "", "a", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ids (messageId, userId, anonymousId, groupId|previousId) =\n%q\nwant\n%q", got, want)
	}
}

// TestParseAcceptsExtras: fields outside the spec, at either level, are ignored, whatever
// their type.
func TestParseAcceptsExtras(t *testing.T) {
	t.Parallel()
	body := `{"batch":[{"type":"page","userId":"u","channel":5,"_metadata":[1],"category":{"x":1},"receivedAt":true}],
		"messageId":7,"timestamp":false,"_metadata":"x"}`
	req, err := Parse("batch", []byte(body), parseTestEnv())
	if err != nil || len(req.Messages) != 1 {
		t.Fatalf("Parse: %+v, %v", req, err)
	}
}

func gzipBytes(tb testing.TB, b []byte, header bool) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if header {
		zw.Name = "body.json"
		zw.ModTime = time.Unix(1700000000, 0)
		zw.Comment = "optional header fields"
	}
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecompress(t *testing.T) {
	t.Parallel()
	plain := readParseFixture(t, "rudder-sdk-node-3.0.13-batch.json")
	zipped := gzipBytes(t, plain, true)
	corrupt := bytes.Clone(zipped)
	corrupt[len(corrupt)-5] ^= 0xff // the CRC
	for _, tc := range []struct {
		name, encoding string
		body           []byte
		limit          int
		want           []byte
		code           string
	}{
		{"plain", "", plain, MaxRequestBytes, plain, ""},
		{"plain identity", "identity", plain, MaxRequestBytes, plain, ""},
		{"gzip with header", "gzip", zipped, MaxRequestBytes, plain, ""},
		{"gzip header in capitals", " GZIP ", zipped, MaxRequestBytes, plain, ""},
		{"gzip by magic bytes only", "", gzipBytes(t, plain, false), MaxRequestBytes, plain, ""},
		{"gzip exactly at the limit", "gzip", zipped, len(plain), plain, ""},
		{"two gzip members", "gzip", append(gzipBytes(t, plain[:10], false), gzipBytes(t, plain[10:], false)...), MaxRequestBytes, plain, ""},
		{"empty", "gzip", nil, MaxRequestBytes, nil, ""},
		{"gzip header, plain body", "gzip", plain, MaxRequestBytes, nil, "invalid_gzip"},
		{"corrupt checksum", "", corrupt, MaxRequestBytes, nil, "invalid_gzip"},
		{"truncated", "gzip", zipped[:len(zipped)/2], MaxRequestBytes, nil, "invalid_gzip"},
		{"magic bytes only", "", []byte{0x1f, 0x8b}, MaxRequestBytes, nil, "invalid_gzip"},
		{"gzip over the limit", "gzip", zipped, len(plain) - 1, nil, "request_too_large"},
		{"plain over the limit", "", plain, len(plain) - 1, nil, "request_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Decompress(tc.body, tc.encoding, tc.limit)
			if tc.code != "" {
				e := errcode.As(err)
				if e == nil || e.Kind != errcode.Invalid || e.Code != tc.code || got != nil {
					t.Fatalf("Decompress = %d bytes, %v; want Invalid %s", len(got), err, tc.code)
				}
				if tc.code == "request_too_large" && !strings.Contains(e.Message, fmt.Sprint(tc.limit)) {
					t.Errorf("message %q does not name the limit %d", e.Message, tc.limit)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("Decompress = %.60q, %v; want %.60q", got, err, tc.want)
			}
		})
	}
}

// TestDecompressBomb is not parallel: it measures the bytes allocated while it runs.
func TestDecompressBomb(t *testing.T) {
	bomb := gzipBytes(t, make([]byte, 10<<20), false)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, err := Decompress(bomb, "", MaxRequestBytes)
	runtime.ReadMemStats(&after)
	if e := errcode.As(err); e == nil || e.Code != "request_too_large" || out != nil {
		t.Fatalf("Decompress(10 MB of zeros) = %d bytes, %v; want request_too_large", len(out), err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*MaxRequestBytes {
		t.Errorf("Decompress allocated %d bytes for a %d-byte limit", alloc, MaxRequestBytes)
	}
	t.Logf("%d compressed bytes; %d bytes allocated", len(bomb), after.TotalAlloc-before.TotalAlloc)
}

// BenchmarkParseBatch parses the Segment Node SDK's batch: events per second is what the
// tracking budget (45,000/s with identity work on 2 cores) is measured in.
func BenchmarkParseBatch(b *testing.B) {
	body := readParseFixture(b, "analytics-node-3.1.0-batch.json")
	env := parseTestEnv()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Parse("batch", body, env); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*7/b.Elapsed().Seconds(), "events/s")
}
