package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/unifiedprofiles/up/shared/httpapi"
)

// Issue 12: the tracking API, the agent lookup, the explorer, the Profile API and the admin
// API refuse what decoding would change without a word (invalid UTF-8, NUL, keys given
// twice), keep every message they accept, and answer errors that name the field and quote
// at most a clip of what was sent. Black-box over HTTP against the local stack's handler.

func (e *trEnv) bearer(method, path, body string) trResp {
	e.t.Helper()
	return e.do(method, path, []byte(body), map[string]string{"Authorization": "Bearer " + e.wsTok})
}

func (e *trEnv) profileAPI(id, resource string) trResp {
	e.t.Helper()
	return e.do("GET", "/v1/spaces/"+e.space+"/collections/users/profiles/"+id+"/"+resource, nil,
		map[string]string{"Authorization": "Basic " + basic(e.access)})
}

func errField(r trResp) string {
	if e, ok := r.body["error"].(map[string]any); ok {
		f, _ := e["field"].(string)
		return f
	}
	return ""
}

// Item 1: userIds "\xfe\xff" and "\xff\xfe" used to become the same "��" and one profile.
func TestTrackingRefusesInvalidUTF8AndNUL(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	src := e.source("http")
	for _, tc := range []struct {
		name, call, body, code, field string
	}{
		{"userId FE FF", "identify", "{\"userId\":\"\xfe\xff\",\"traits\":{\"plan\":\"a\"}}", "invalid_utf8", "userId"},
		{"userId FF FE", "identify", "{\"userId\":\"\xff\xfe\",\"traits\":{\"plan\":\"b\"}}", "invalid_utf8", "userId"},
		{"lone surrogate", "identify", `{"userId":"\udcff","traits":{"plan":"c"}}`, "invalid_utf8", "userId"},
		{"an email trait", "identify", "{\"anonymousId\":\"a1\",\"traits\":{\"email\":\"\xff@x.com\"}}", "invalid_utf8", "traits.email"},
		{"NUL in the event", "track", `{"userId":"u1","event":"Paid\u0000"}`, "nul_character", "event"},
		{"NUL in groupId", "group", `{"userId":"u1","groupId":"g\u0000"}`, "nul_character", "groupId"},
		{"NUL in previousId", "alias", `{"userId":"u1","previousId":"\u0000"}`, "nul_character", "previousId"},
		{"userId twice", "identify", `{"userId":"u1","userId":"u2"}`, "duplicate_key", "userId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send(src.WriteKey, tc.call, []byte(tc.body))
			if r.status != 400 || errCode(r) != tc.code || errField(r) != tc.field {
				t.Fatalf("status %d %s, want 400 %s naming %s", r.status, r.raw, tc.code, tc.field)
			}
			entry := e.debugger(src.ID, "?limit=1")[0]
			rj, _ := entry["rejection"].(map[string]any)
			if entry["status"] != "rejected" || rj["code"] != tc.code || rj["field"] != tc.field {
				t.Errorf("debugger entry %v, want it rejected with %s on %s", entry, tc.code, tc.field)
			}
		})
	}
	// A batch rejects each of them alone, naming the field, and keeps the valid one.
	r := e.send(src.WriteKey, "batch", []byte("{\"batch\":[{\"type\":\"identify\",\"userId\":\"\xfe\xff\"},"+
		"{\"type\":\"identify\",\"userId\":\"\xff\xfe\"},{\"type\":\"identify\",\"userId\":\"ok\"}]}"))
	if r.status != 200 {
		t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	var got []string
	rejected, _ := r.body["rejected"].([]any)
	for _, x := range rejected {
		rj := x.(map[string]any)
		got = append(got, fmt.Sprintf("%v:%v:%v", rj["index"], rj["code"], rj["field"]))
	}
	if strings.Join(got, " ") != "0:invalid_utf8:userId 1:invalid_utf8:userId" {
		t.Errorf("rejected %v", got)
	}
	// Nothing was written under the replacement characters either would have become.
	if r := e.profileAPI("user_id:"+url.PathEscape("\ufffd\ufffd"), "traits"); r.status != 404 {
		t.Errorf("user_id:\ufffd\ufffd: %d %s, want 404", r.status, r.raw)
	}
	if r := e.profileAPI("user_id:ok", "traits"); r.status != 200 {
		t.Errorf("the valid message of the batch: %d %s", r.status, r.raw)
	}
	// The explorer and the Profile API refuse such an identifier instead of matching it.
	if r := e.bearer("GET", "/v1/workspaces/"+e.ws+"/spaces/"+e.space+"/profiles?identifier=user_id:%ff%fe", ""); r.status != 400 || errCode(r) != "invalid_utf8" || errField(r) != "identifier" {
		t.Errorf("explorer search: %d %s", r.status, r.raw)
	}
	if r := e.profileAPI("user_id:%ff%fe", "traits"); r.status != 400 || errCode(r) != "invalid_utf8" {
		t.Errorf("Profile API: %d %s", r.status, r.raw)
	}
}

// Item 1: the agent lookup with email=%ff@x.com found the profile of "\ufffd@x.com".
func TestFlexLookupRefusesInvalidUTF8AndNUL(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	src := e.source("http")
	if r := e.send(src.WriteKey, "identify", map[string]any{"userId": "other", "traits": map[string]any{"email": "\ufffd@x.com"}}); r.status != 200 {
		t.Fatalf("identify: %d %s", r.status, r.raw)
	}
	for _, tc := range []struct{ query, code, field string }{
		{"email=%ff@x.com", "invalid_utf8", "email"},
		{"email=a%00@x.com", "nul_character", "email"},
		{"user_id=%fe%ff&create=true", "invalid_utf8", "user_id"},
		{"anonymous_id=%00&create=true", "nul_character", "anonymous_id"},
	} {
		r := e.bearer("GET", "/v1/flex/"+e.ws+"/profiles?"+tc.query, "")
		if r.status != 400 || errCode(r) != tc.code || errField(r) != tc.field {
			t.Errorf("%s: %d %s, want 400 %s naming %s", tc.query, r.status, r.raw, tc.code, tc.field)
		}
	}
	if r := e.bearer("GET", "/v1/flex/"+e.ws+"/profiles?email=%EF%BF%BD@x.com", ""); r.status != 200 {
		t.Errorf("the U+FFFD address itself: %d %s, want 200", r.status, r.raw)
	}
}

// Items 1 and 10: admin bodies are read as strictly; errors quote at most a clip of the value
// and name the field.
func TestAdminBodiesStrict(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	sources := "/v1/workspaces/" + e.ws + "/sources"
	long := strings.Repeat("k", 1<<20)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"a name not UTF-8", "POST", sources, "{\"name\":\"\xfe\xff\",\"type\":\"http\"}", 400, "invalid_utf8", "name"},
		{"a name with a lone surrogate", "POST", sources, `{"name":"Web\ud800","type":"http"}`, 400, "invalid_utf8", "name"},
		{"a name with NUL", "POST", sources, `{"name":"Web\u0000site","type":"http"}`, 400, "nul_character", "name"},
		{"a name twice", "POST", sources, `{"name":"A","type":"http","name":"B"}`, 400, "duplicate_key", "name"},
		{"a name twice in another case", "POST", sources, `{"name":"A","type":"http","Name":"B"}`, 400, "duplicate_key", "Name"},
		{"a 1 MB kind", "PUT", "/v1/workspaces/" + e.ws + "/setup/data-source", `{"kind":"` + long[:1<<20-100] + `"}`, 400, "invalid_field", "kind"},
		{"a 1 MB unknown field", "POST", sources, `{"name":"A","type":"http","` + long[:1<<19] + `":1}`, 400, "unknown_field", long[:64] + "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.bearer(tc.method, tc.path, tc.body)
			if r.status != tc.status || errCode(r) != tc.code || errField(r) != tc.field {
				t.Fatalf("%d %.300s, want %d %s naming %.70s", r.status, r.raw, tc.status, tc.code, tc.field)
			}
			if len(r.raw) > 1024 || !utf8.ValidString(r.raw) {
				t.Errorf("a %d-byte error answer for a %d-byte body", len(r.raw), len(tc.body))
			}
		})
	}
	// The source list holds none of them.
	r := e.bearer("GET", sources, "")
	list, _ := r.body["sources"].([]any)
	for _, s := range list {
		if name := s.(map[string]any)["name"].(string); strings.ContainsAny(name, "\ufffd\x00") || name == "A" || name == "B" {
			t.Errorf("a refused source was stored: %q", name)
		}
	}
}

// Item 10: a refusal of the profile entry point (300 traits: the parser allows them, Apply does
// not) names its field in a single call's envelope, as in a batch's rejected.
func TestTrackingErrorsNameTheField(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	src := e.source("http")
	body := map[string]any{"userId": "u1", "traits": manyFields(300)}
	if r := e.send(src.WriteKey, "identify", body); r.status != 400 || errCode(r) != "too_many_traits" || errField(r) != "traits" {
		t.Errorf("single identify: %d %s, want 400 too_many_traits naming traits", r.status, r.raw)
	}
	body["type"] = "identify"
	r := e.send(src.WriteKey, "batch", map[string]any{"batch": []any{body}})
	if rj, _ := r.body["rejected"].([]any); r.status != 200 || len(rj) != 1 || rj[0].(map[string]any)["field"] != "traits" {
		t.Errorf("batch: %d %s, want the rejection naming traits", r.status, r.raw)
	}
}

// Item 2: /v1/import of an event 90 days old answered 200 and stored it where no reader
// looks; a future timestamp kept the event out of the explorer and the Profile API, and a
// year-9999 one dated first_message_at after last_message_at. Now: refused with a reason,
// or kept where every reader shows it. (Import takes history up to 360 days old for
// predictions since, counted but not kept: TestImportTakesHistoryForPredictions.)
func TestImportKeepsWhatItAccepts(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	src := e.source("http")
	now := e.clock.Now()
	stamp := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	r := e.send(src.WriteKey, "import", map[string]any{"batch": []any{
		map[string]any{"type": "identify", "userId": "imp", "traits": map[string]any{"plan": "pro"}, "timestamp": "9999-12-31T23:59:59Z"},
		map[string]any{"type": "track", "userId": "imp", "event": "Old", "timestamp": stamp(-400 * 24 * time.Hour)},
		map[string]any{"type": "track", "userId": "imp", "event": "Ahead", "timestamp": stamp(2 * time.Hour)},
		map[string]any{"type": "track", "userId": "imp", "event": "Recent", "timestamp": stamp(-20 * 24 * time.Hour)},
	}})
	if r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.raw)
	}
	rejected, _ := r.body["rejected"].([]any)
	if len(rejected) != 1 {
		t.Fatalf("rejected %v, want the 400-day-old event alone", r.body["rejected"])
	}
	if rj := rejected[0].(map[string]any); rj["index"] != 1.0 || rj["code"] != "timestamp_too_old" || rj["field"] != "timestamp" ||
		!strings.Contains(rj["message"].(string), "360 days") {
		t.Errorf("rejection %v, want index 1 timestamp_too_old naming import's 360 days", rj)
	}
	// The explorer and the Profile API show the event from the future (at its arrival).
	found := e.bearer("GET", "/v1/workspaces/"+e.ws+"/spaces/"+e.space+"/profiles?identifier=user_id:imp", "")
	list, _ := found.body["profiles"].([]any)
	if len(list) != 1 {
		t.Fatalf("explorer search: %s", found.raw)
	}
	view := e.bearer("GET", "/v1/workspaces/"+e.ws+"/spaces/"+e.space+"/profiles/"+list[0].(map[string]any)["id"].(string), "")
	if !strings.Contains(view.raw, `"event":"Ahead"`) {
		t.Errorf("explorer: the event sent with a future timestamp is missing: %s", view.raw)
	}
	if evs := e.profileAPI("user_id:imp", "events"); !strings.Contains(evs.raw, `"event":"Ahead"`) || strings.Contains(evs.raw, `"event":"Old"`) {
		t.Errorf("Profile API events: %s", evs.raw)
	}
	md := e.profileAPI("user_id:imp", "metadata")
	var meta struct {
		Metadata struct {
			First time.Time `json:"first_message_at"`
			Last  time.Time `json:"last_message_at"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(md.raw), &meta); err != nil || md.status != 200 {
		t.Fatalf("metadata: %d %s", md.status, md.raw)
	}
	if meta.Metadata.First.After(meta.Metadata.Last) || meta.Metadata.First.After(now.Add(time.Minute)) {
		t.Errorf("first_message_at %v, last_message_at %v: want first ≤ last, neither in the future", meta.Metadata.First, meta.Metadata.Last)
	}
}
