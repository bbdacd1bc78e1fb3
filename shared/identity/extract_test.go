package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/message"
)

// extractSettings is every default identifier plus two custom ones, as a contact center
// configures them: a phone read from phone_number (and phoneNumber), and a CRM id.
func extractSettings() Settings {
	s := DefaultSettings()
	s.Identifiers = append(s.Identifiers,
		Rule{Type: "phone", Custom: true, Keys: []string{"phone_number", "phone"}, Limit: 5, Window: WindowAnnually, Priority: 12,
			Blocked: append(SuggestedBlocked(), Blocked{MatchRegex, `^\+?0+$`})},
		Rule{Type: "crm_id", Custom: true, Keys: []string{"crmId"}, Limit: 1, Window: WindowEver, Priority: 13},
	)
	return s
}

func mustCompile(tb testing.TB, s Settings) *Compiled {
	tb.Helper()
	c, err := Compile(s)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func strs(ids []Identifier) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// obj shortens the nested maps of the table below.
type obj = map[string]any

func TestIdentifierString(t *testing.T) {
	t.Parallel()
	if got := (Identifier{"email", "a:b@x"}).String(); got != "email:a:b@x" {
		t.Fatalf("String() = %q", got)
	}
	if b, _ := json.Marshal(Identifier{"phone", "+1"}); string(b) != `{"type":"phone","value":"+1"}` {
		t.Fatalf("JSON = %s", b)
	}
}

func TestExtract(t *testing.T) {
	t.Parallel()
	ios := func(device obj) obj { device["type"] = "ios"; return obj{"device": device} }
	tests := []struct {
		name    string
		m       message.Message
		ids     []string
		blocked []string
	}{
		{"empty message", message.Message{}, nil, nil},
		{"userId", message.Message{UserID: "u1"}, []string{"user_id:u1"}, nil},
		{"anonymousId and groupId", message.Message{Type: message.Group, AnonymousID: "a1", GroupID: "g1"},
			[]string{"anonymous_id:a1", "group_id:g1"}, nil},
		{"values as sent", message.Message{UserID: " U1 ", Traits: obj{"email": " Jane@X.COM "}},
			[]string{"user_id: U1 ", "email: Jane@X.COM "}, nil},

		{"email from traits", message.Message{Traits: obj{"email": "a@x"}}, []string{"email:a@x"}, nil},
		{"email from context.traits", message.Message{Context: obj{"traits": obj{"email": "c@x"}}}, []string{"email:c@x"}, nil},
		{"traits.email wins", message.Message{Traits: obj{"email": "a@x"}, Context: obj{"traits": obj{"email": "c@x"}}},
			[]string{"email:a@x"}, nil},
		{"unusable traits.email falls back", message.Message{Traits: obj{"email": ""}, Context: obj{"traits": obj{"email": "c@x"}}},
			[]string{"email:c@x"}, nil},
		{"email must be a string", message.Message{Traits: obj{"email": float64(12345)}, Context: obj{"traits": obj{"email": true}}},
			nil, nil},
		{"blocked traits.email does not fall back", message.Message{Traits: obj{"email": "null"}, Context: obj{"traits": obj{"email": "c@x"}}},
			nil, []string{"email:null"}},
		{"group traits are the group's", message.Message{Type: message.Group, GroupID: "g1",
			Traits: obj{"email": "billing@acme", "phone": "+1999"}, Context: obj{"traits": obj{"email": "jane@acme"}}},
			[]string{"email:jane@acme", "group_id:g1"}, nil},
		{"email in properties is not email", message.Message{Properties: obj{"email": "p@x"}}, nil, nil},

		{"android id", message.Message{Context: obj{"device": obj{"type": "android", "id": "dev-a"}}},
			[]string{"android.id:dev-a"}, nil},
		{"ios id, type case-insensitive", message.Message{Context: obj{"device": obj{"type": "iOS", "id": "dev-i"}}},
			[]string{"ios.id:dev-i"}, nil},
		{"device id without type", message.Message{Context: obj{"device": obj{"id": "dev"}}}, nil, nil},
		{"device id of another platform", message.Message{Context: obj{"device": obj{"type": "web", "id": "dev"}}}, nil, nil},
		{"device type not ASCII ios", message.Message{Context: obj{"device": obj{"type": "ioſ", "id": "dev"}}}, nil, nil},
		{"idfa with tracking", message.Message{Context: ios(obj{"advertisingId": "AD-1", "adTrackingEnabled": true})},
			[]string{"ios.idfa:AD-1"}, nil},
		{"android idfa with tracking", message.Message{Context: obj{"device": obj{"type": "Android", "advertisingId": "AD-2", "adTrackingEnabled": true}}},
			[]string{"android.idfa:AD-2"}, nil},
		{"idfa, tracking off", message.Message{Context: ios(obj{"advertisingId": "AD-1", "adTrackingEnabled": false})}, nil, nil},
		{"idfa, tracking unknown", message.Message{Context: ios(obj{"advertisingId": "AD-1"})}, nil, nil},
		{"idfa, tracking the string true", message.Message{Context: ios(obj{"advertisingId": "AD-1", "adTrackingEnabled": "true"})}, nil, nil},
		{"blocked idfa", message.Message{Context: ios(obj{"advertisingId": "00000000-0000-0000-0000-000000000000", "adTrackingEnabled": true})},
			nil, []string{"ios.idfa:00000000-0000-0000-0000-000000000000"}},
		{"push tokens by platform", message.Message{Context: ios(obj{"token": "tok-i", "id": "dev-i"})},
			[]string{"ios.id:dev-i", "ios.push_token:tok-i"}, nil},
		{"android push token", message.Message{Context: obj{"device": obj{"type": "android", "token": "tok-a"}}},
			[]string{"android.push_token:tok-a"}, nil},

		{"GA client id in context.integrations", message.Message{Context: obj{"integrations": obj{"Google Analytics": obj{"clientId": "123.456"}}}},
			[]string{"ga_client_id:123.456"}, nil},
		{"GA client id in integrations", message.Message{Integrations: obj{"Google Analytics": obj{"clientId": "789.1"}}},
			[]string{"ga_client_id:789.1"}, nil},
		{"GA: context first", message.Message{Context: obj{"integrations": obj{"Google Analytics": obj{"clientId": "c.1"}}},
			Integrations: obj{"Google Analytics": obj{"clientId": "t.1"}}}, []string{"ga_client_id:c.1"}, nil},
		{"GA enabled flag only", message.Message{Integrations: obj{"Google Analytics": true, "All": false}}, nil, nil},

		{"custom key, camelCase variant", message.Message{Traits: obj{"phoneNumber": "+15550001"}}, []string{"phone:+15550001"}, nil},
		{"custom key, snake_case as configured", message.Message{Context: obj{"traits": obj{"phone_number": "+15550002"}}},
			[]string{"phone:+15550002"}, nil},
		{"custom key in properties", message.Message{Properties: obj{"phone": "+15550003"}}, []string{"phone:+15550003"}, nil},
		{"custom key, snake_case of a camelCase key", message.Message{Traits: obj{"crm_id": "C-1"}, Properties: obj{"crmId": "C-2"}},
			[]string{"crm_id:C-1", "crm_id:C-2"}, nil},
		{"custom key, other case is another key", message.Message{Traits: obj{"Phone": "+1", "PHONE_NUMBER": "+2", "crmid": "x"}}, nil, nil},
		{"custom values from every place, repeats once", message.Message{
			Traits:     obj{"phone": "+2", "phone_number": "+1"},
			Context:    obj{"traits": obj{"phoneNumber": "+1"}},
			Properties: obj{"phone": "+3"},
		}, []string{"phone:+1", "phone:+2", "phone:+3"}, nil},
		{"custom blocked, per rule", message.Message{Traits: obj{"phone": "+000", "crmId": "null"}}, []string{"crm_id:null"}, []string{"phone:+000"}},

		{"externalIds", message.Message{Context: obj{"externalIds": []any{
			obj{"id": "+1555", "type": "Phone", "collection": "users", "encoding": "none"},
			obj{"id": json.Number("42"), "type": "crm_id", "collection": "users", "encoding": "none"},
			obj{"id": "acct", "type": "phone", "collection": "accounts", "encoding": "none"},
			obj{"id": "KzE1NTU=", "type": "phone", "collection": "users", "encoding": "base64"},
			obj{"id": "+1666", "type": "phone", "collection": "users"},
			obj{"id": "e@x", "type": "email", "collection": "users", "encoding": "none"},
			obj{"id": "L-1", "type": "loyalty_id", "collection": "users", "encoding": "none"},
			obj{"id": true, "type": "phone", "collection": "users", "encoding": "none"},
			"not an object",
		}}}, []string{"phone:+1555", "crm_id:42"}, nil},
		{"externalIds built in Go", message.Message{Context: obj{"externalIds": []map[string]any{
			{"id": "+1777", "type": "PHONE", "collection": "users", "encoding": "none"},
		}}}, []string{"phone:+1777"}, nil},
		{"externalIds and a trait with the same value", message.Message{Traits: obj{"phone": "+1555"}, Context: obj{"externalIds": []any{
			obj{"id": "+1555", "type": "phone", "collection": "users", "encoding": "none"},
		}}}, []string{"phone:+1555"}, nil},

		{"numbers", message.Message{Traits: obj{"phone": float64(15551234567), "crmId": json.Number("1.2345e4")},
			Properties: obj{"phone": json.Number("123456789012345678901234567890"), "crmId": float64(42.5)}},
			[]string{"phone:123456789012345678901234567890", "phone:15551234567", "crm_id:12345", "crm_id:42.5"}, nil},
		{"large float without exponent", message.Message{Traits: obj{"crmId": 1e21}}, []string{"crm_id:1000000000000000000000"}, nil},
		{"Go integers", message.Message{Traits: obj{"phone": 7, "crmId": int64(-8)}, Properties: obj{"phone": uint64(9)}},
			[]string{"phone:7", "phone:9", "crm_id:-8"}, nil},
		{"negative zero and blocked numbers", message.Message{Traits: obj{"phone": -0.0, "crmId": json.Number("-1")}},
			[]string{"crm_id:-1"}, []string{"phone:0"}},
		{"not ids", message.Message{Traits: obj{"phone": true, "crmId": nil}, Properties: obj{"phone": obj{"n": "1"}, "crmId": []any{"1"}},
			Context: obj{"traits": obj{"phone": "", "crmId": json.Number("0x10")}}}, nil, nil},
		{"value length", message.Message{UserID: strings.Repeat("u", 1001), AnonymousID: strings.Repeat("a", 1000),
			Traits: obj{"email": strings.Repeat("e", 1001), "phone": json.Number("1" + strings.Repeat("0", 1000))}},
			[]string{"anonymous_id:" + strings.Repeat("a", 1000)}, nil},

		{"blocked defaults", message.Message{UserID: "anonymous", AnonymousID: "0", GroupID: "-1"},
			nil, []string{"user_id:anonymous", "anonymous_id:0", "group_id:-1"}},
		{"priority then value", message.Message{
			UserID: "u9", AnonymousID: "anon", GroupID: "g",
			Traits:       obj{"email": "z@x", "phone": "+2", "crmId": "C"},
			Properties:   obj{"phone": "+1"},
			Context:      obj{"device": obj{"type": "ios", "id": "d", "token": "t", "advertisingId": "ad", "adTrackingEnabled": true}},
			Integrations: obj{"Google Analytics": obj{"clientId": "ga"}},
		}, []string{"user_id:u9", "email:z@x", "anonymous_id:anon", "ga_client_id:ga", "group_id:g",
			"ios.id:d", "ios.idfa:ad", "ios.push_token:t", "phone:+1", "phone:+2", "crm_id:C"}, nil},
	}
	c := mustCompile(t, extractSettings())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ids, blocked := c.Extract(tt.m)
			if got := strs(ids); !slices.Equal(got, tt.ids) && (len(got) > 0 || len(tt.ids) > 0) {
				t.Errorf("ids = %q, want %q", got, tt.ids)
			}
			if got := strs(blocked); !slices.Equal(got, tt.blocked) && (len(got) > 0 || len(tt.blocked) > 0) {
				t.Errorf("blocked = %q, want %q", got, tt.blocked)
			}
		})
	}
}

// Only configured types are read: a space without email ignores traits.email.
func TestExtractOnlyConfiguredTypes(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, Settings{Identifiers: []Rule{{Type: TypeUserID, Limit: 1, Window: WindowEver, Priority: 1}}})
	ids, blocked := c.Extract(message.Message{
		UserID: "u1", AnonymousID: "a1", Traits: obj{"email": "a@x", "phone": "+1"},
		Context: obj{"device": obj{"type": "ios", "id": "d"}, "externalIds": []any{obj{"id": "x", "type": "user_id", "collection": "users", "encoding": "none"}}},
	})
	if got := strs(ids); !slices.Equal(got, []string{"user_id:u1"}) || blocked != nil {
		t.Fatalf("Extract = %q, %q; want only user_id:u1", got, strs(blocked))
	}
}

// decodeMessages is the test's stand-in for the tracking parser: a Segment body (one message,
// or {"batch":[…]} with batch-level context and integrations) into normalised messages.
func decodeMessages(body []byte) ([]message.Message, error) {
	var top map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&top); err != nil {
		return nil, err
	}
	list, ok := top["batch"].([]any)
	if !ok {
		return []message.Message{toMessage(top)}, nil
	}
	var out []message.Message
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, errors.New("batch entry is not an object")
		}
		for _, k := range []string{"context", "integrations"} {
			if shared := message.Object(top, k); shared != nil {
				own := message.Object(m, k)
				merged := make(map[string]any, len(shared)+len(own))
				for kk, v := range shared {
					merged[kk] = v
				}
				for kk, v := range own {
					merged[kk] = v
				}
				m[k] = merged
			}
		}
		out = append(out, toMessage(m))
	}
	return out, nil
}

// toMessage maps the Segment JSON fields; ids may be numbers.
func toMessage(m map[string]any) message.Message {
	id := func(k string) string {
		switch v := m[k].(type) {
		case string:
			return v
		case json.Number:
			return v.String()
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return ""
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	return message.Message{
		Type: str("type"), MessageID: id("messageId"), UserID: id("userId"), AnonymousID: id("anonymousId"),
		GroupID: id("groupId"), PreviousID: id("previousId"), Event: str("event"), Name: str("name"),
		Traits: message.Object(m, "traits"), Properties: message.Object(m, "properties"),
		Context: message.Object(m, "context"), Integrations: message.Object(m, "integrations"),
	}
}

const fixturesDir = "../../../shared/fixtures/clients/"

// What each recorded SDK batch yields under the default settings, message by message.
var fixtureWant = map[string][][]string{
	"analytics-go-3.3.0-batch.json": {
		{"user_id:u1", "email:a@example.com"}, // identify
		{"user_id:u1"},                        // track
		{"user_id:u1"},                        // page
		{"user_id:u1"},                        // screen
		{"user_id:u1", "group_id:g1"},         // group
		{"user_id:u1"},                        // alias: previousId is not an identifier
		{"anonymous_id:anon-9"},               // track with context
	},
	"analytics-node-3.1.0-batch.json": {
		{"user_id:u1", "email:a@example.com"},
		{"user_id:u1"},
		{"user_id:u1"},
		{"user_id:u1"},
		{"user_id:u1", "group_id:g1"},
		{"user_id:u1"},
		{"anonymous_id:anon-9"},
	},
	"rudder-sdk-node-3.0.13-batch.json": {
		{"user_id:u1", "email:a@example.com"}, // email in traits and context.traits: once
	},
}

func readFixtures(tb testing.TB) map[string][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(fixturesDir, "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(fixturesDir); errors.Is(err, fs.ErrNotExist) || len(paths) == 0 {
		tb.Skipf("no client fixtures in %s (the shared folder beside this repository); skipping", fixturesDir)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

func TestExtractFixtures(t *testing.T) {
	t.Parallel()
	files := readFixtures(t)
	c := mustCompile(t, DefaultSettings())
	for name, body := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			msgs, err := decodeMessages(body)
			if err != nil {
				t.Fatal(err)
			}
			want, known := fixtureWant[name]
			if !known {
				t.Logf("no expectations for %s: checking %d messages for blocked or empty values only", name, len(msgs))
			} else if len(msgs) != len(want) {
				t.Fatalf("%d messages, want %d", len(msgs), len(want))
			}
			for i, m := range msgs {
				ids, blocked := c.Extract(m)
				if len(blocked) > 0 {
					t.Errorf("message %d: blocked %q", i, strs(blocked))
				}
				if known && !slices.Equal(strs(ids), want[i]) {
					t.Errorf("message %d (%s): ids = %q, want %q", i, m.Type, strs(ids), want[i])
				}
			}
		})
	}
	for name := range fixtureWant {
		if _, ok := files[name]; !ok {
			t.Errorf("fixture %s is missing from %s", name, fixturesDir)
		}
	}
}

// Extract allocates nothing for a message without identifiers, and one slice otherwise. Not
// parallel: AllocsPerRun counts every goroutine's allocations.
func TestExtractAllocations(t *testing.T) {
	c := mustCompile(t, extractSettings())
	m := benchMessages()[0].m
	none := message.Message{Type: message.Track, Context: obj{"ip": "1.2.3.4"}, Properties: obj{"phone": true}}
	if n := testing.AllocsPerRun(100, func() { c.Extract(none) }); n != 0 {
		t.Errorf("empty message: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { c.Extract(m) }); n != 1 {
		t.Errorf("web message: %v allocations, want 1", n)
	}
}

// FuzzExtract: any JSON object as a message body never panics, and what comes back obeys the
// settings: configured types, usable values, nothing blocked among ids, no repeats, priority
// order.
func FuzzExtract(f *testing.F) {
	for _, b := range fixtureSeeds(f) {
		f.Add(b)
	}
	for _, bm := range benchMessages() {
		f.Add(bm.body)
	}
	f.Add([]byte(`{"userId":12345,"traits":{"phone":1e21,"crmId":"null"},"context":{"externalIds":[{"id":"0","type":"PHONE","collection":"users","encoding":"none"}]}}`))
	f.Add([]byte(`{"type":"group","groupId":"-1","traits":{"email":"x"},"context":{"traits":{"email":"y"},"device":{"type":"ANDROID","id":7,"token":"","advertisingId":"a","adTrackingEnabled":true}}}`))
	c := mustCompile(f, extractSettings())
	f.Fuzz(func(t *testing.T, body []byte) {
		var raw map[string]any
		d := json.NewDecoder(bytes.NewReader(body))
		d.UseNumber()
		if d.Decode(&raw) != nil || raw == nil {
			return
		}
		m := toMessage(raw)
		ids, blocked := c.Extract(m)
		seen := map[Identifier]bool{}
		for _, id := range ids {
			switch _, ok := c.Rule(id.Type); {
			case !ok:
				t.Fatalf("%s: type not configured", id)
			case id.Value == "" || len(id.Value) > MaxValueBytes:
				t.Fatalf("%s: value of %d bytes", id.Type, len(id.Value))
			case c.Blocked(id.Type, id.Value):
				t.Fatalf("%s is blocked but returned as an identifier", id)
			case seen[id]:
				t.Fatalf("%s returned twice", id)
			}
			seen[id] = true
		}
		for _, id := range blocked {
			if _, ok := c.Rule(id.Type); !ok || !c.Blocked(id.Type, id.Value) || seen[id] {
				t.Fatalf("%s in blocked: not configured, not blocked, or repeated", id)
			}
			seen[id] = true
		}
		for _, list := range [][]Identifier{ids, blocked} {
			for i := 1; i < len(list); i++ {
				a, _ := c.Rule(list[i-1].Type)
				b, _ := c.Rule(list[i].Type)
				if a.Priority > b.Priority || a.Priority == b.Priority && list[i-1].Value >= list[i].Value {
					t.Fatalf("out of order: %s before %s", list[i-1], list[i])
				}
			}
		}
		if u := m.UserID; u != "" && len(u) <= MaxValueBytes && !seen[Identifier{TypeUserID, u}] {
			t.Fatalf("userId %q neither extracted nor blocked", u)
		}
		ids2, blocked2 := c.Extract(m)
		if !slices.Equal(ids, ids2) || !slices.Equal(blocked, blocked2) {
			t.Fatal("Extract is not deterministic")
		}
	})
}

// fixtureSeeds returns each fixture message as its own body, when the fixtures are there.
func fixtureSeeds(tb testing.TB) [][]byte {
	paths, _ := filepath.Glob(filepath.Join(fixturesDir, "*.json"))
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var top struct{ Batch []json.RawMessage }
		if json.Unmarshal(b, &top) != nil {
			continue
		}
		for _, m := range top.Batch {
			out = append(out, m)
		}
	}
	return out
}

type benchMessage struct {
	name string
	body []byte
	m    message.Message
}

// benchMessages are realistic single messages: a website track from analytics.js (cached
// context.traits, GA client id at the top level) and a mobile identify from an iOS app.
func benchMessages() []benchMessage {
	bodies := []struct{ name, body string }{
		{"web_track", `{"type":"track","event":"Order Completed","messageId":"ajs-next-1795958027125-8cb3bf83",
		 "userId":"user_48213","anonymousId":"3f1c2a9e-6b7d-4e0f-9a1b-2c3d4e5f6a7b",
		 "properties":{"orderId":"50314b8e9bcf000000000000","total":27.5,"revenue":25,"currency":"USD",
		   "products":[{"product_id":"507f1f77bcf86cd799439011","sku":"45790-32","price":19,"quantity":1}]},
		 "context":{"ip":"203.0.113.7","locale":"en-US","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
		   "page":{"path":"/checkout","url":"https://shop.example/checkout","referrer":"https://shop.example/cart"},
		   "library":{"name":"analytics.js","version":"next-1.70.0"},
		   "traits":{"email":"jane.doe@example.com","name":"Jane Doe","plan":"pro"}},
		 "integrations":{"Google Analytics":{"clientId":"1234567890.1700000000"}},
		 "timestamp":"2026-11-29T13:13:47.125Z"}`},
		{"mobile_identify", `{"type":"identify","messageId":"9E5A1C2B-0D4F-4B6A-8C7E-1F2A3B4C5D6E",
		 "userId":"user_48213","anonymousId":"B1C2D3E4-F5A6-4B7C-8D9E-0F1A2B3C4D5E",
		 "traits":{"email":"jane.doe@example.com","phone_number":"+15555550123","firstName":"Jane","lastName":"Doe"},
		 "context":{"app":{"name":"Shop","version":"4.2.0","build":"420"},
		   "device":{"type":"ios","id":"8F1E2D3C-4B5A-4697-8887-766554433221","manufacturer":"Apple","model":"iPhone15,2",
		     "advertisingId":"6D92078A-8246-4BA4-AE5B-76104861E7DC","adTrackingEnabled":true,
		     "token":"ff15bc0c20c4aa6cd50854ff165fd265c838e5405bfeb9571066395b8c9da449"},
		   "os":{"name":"iOS","version":"17.1"},"library":{"name":"analytics-swift","version":"1.5.0"},
		   "traits":{"email":"jane.doe@example.com"}},
		 "timestamp":"2026-11-29T13:13:47.125Z"}`},
	}
	out := make([]benchMessage, len(bodies))
	for i, b := range bodies {
		msgs, err := decodeMessages([]byte(b.body))
		if err != nil {
			panic(err)
		}
		out[i] = benchMessage{b.name, []byte(b.body), msgs[0]}
	}
	return out
}

func BenchmarkExtract(b *testing.B) {
	c := mustCompile(b, extractSettings())
	for _, bm := range benchMessages() {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				ids, _ := c.Extract(bm.m)
				n = len(ids)
			}
			b.ReportMetric(float64(n), "ids/op")
		})
	}
}
