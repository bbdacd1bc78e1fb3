package httpapi_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/httpapi"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/localstack"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

// The tracking API, the debugger and the connection test, black-box over HTTP against the
// local stack's handler.

const trOperator = "upo_tracking_test"

type trEnv struct {
	t      *testing.T
	base   string
	clock  *testclock.Clock
	stack  *localstack.Stack
	tenant workspacetest.Tenant
	ws     string // workspace id
	wsTok  string // workspace token
	space  string
	access string // Profile API token of the space
}

func newTrackingStack(t *testing.T, opts httpapi.TrackingOptions) *trEnv {
	t.Helper()
	return newStackWith(t, localstack.Config{Tracking: opts})
}

// newStackWith is newTrackingStack with more of the stack's configuration (its data folder,
// operator, clock and logger are the test's).
func newStackWith(t *testing.T, cfg localstack.Config) *trEnv {
	t.Helper()
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	cfg.DataDir, cfg.OperatorTokenHash, cfg.Now = t.TempDir(), token.Hash(trOperator), c.Now
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := localstack.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewServer(st.Handler)
	t.Cleanup(srv.Close)
	tn := workspacetest.New(t, st.Workspaces, trOperator)
	return &trEnv{t: t, base: srv.URL, clock: c, stack: st, tenant: tn, ws: tn.ID(), wsTok: tn.Token, space: tn.SpaceID(), access: tn.AccessToken(t)}
}

// source creates a source of typ and returns it.
func (e *trEnv) source(typ string) workspace.Source { return e.tenant.Source(e.t, typ) }

type trResp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *trEnv) do(method, path string, body []byte, hdr map[string]string) trResp {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.base+path, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := trResp{status: res.StatusCode, header: res.Header, raw: string(raw)}
	json.Unmarshal(raw, &out.body)
	return out
}

// send posts body to /v1/<call> with the write key as Basic user.
func (e *trEnv) send(key, call string, body any) trResp {
	e.t.Helper()
	b, ok := body.([]byte)
	if !ok {
		b, _ = json.Marshal(body)
	}
	req := map[string]string{"Content-Type": "application/json"}
	if key != "" {
		req["Authorization"] = "Basic " + basic(key)
	}
	return e.do("POST", "/v1/"+call, b, req)
}

func basic(user string) string { return base64.StdEncoding.EncodeToString([]byte(user + ":")) }

func (e *trEnv) admin(method, path string) trResp {
	e.t.Helper()
	return e.do(method, path, nil, map[string]string{"Authorization": "Bearer " + e.wsTok})
}

func (e *trEnv) debugger(src, query string) []map[string]any {
	e.t.Helper()
	r := e.admin("GET", "/v1/workspaces/"+e.ws+"/sources/"+src+"/debugger"+query)
	if r.status != 200 {
		e.t.Fatalf("debugger: %d %s", r.status, r.raw)
	}
	var out []map[string]any
	for _, x := range r.body["entries"].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}

func errCode(r trResp) string {
	if e, ok := r.body["error"].(map[string]any); ok {
		return fmt.Sprint(e["code"])
	}
	return ""
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func manyFields(n int) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[fmt.Sprintf("f%d", i)] = i
	}
	return m
}

// Every limit, missing field, wrong key, bad gzip and wrong type, with its status and code.
func TestTrackingBadInputs(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	src := e.source("http")
	ctx := context.Background()
	owner, _ := e.stack.Workspaces.Authenticate(ctx, e.wsTok)
	off := e.source("http")
	disabled := false
	if _, err := e.stack.Workspaces.UpdateSource(ctx, owner, e.ws, off.ID, workspace.SourceChange{Enabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	ok := map[string]any{"userId": "u1", "event": "Seen"}
	bigBatch := make([]any, 2501)
	for i := range bigBatch {
		bigBatch[i] = map[string]any{"type": "track", "userId": "u", "event": "e"}
	}
	mustJSON := func(v any) []byte { b, _ := json.Marshal(v); return b }
	tests := []struct {
		name       string
		key, call  string
		body       []byte
		hdr        map[string]string
		wantStatus int
		wantCode   string
	}{
		{"valid", src.WriteKey, "track", mustJSON(ok), nil, 200, ""},
		{"writeKey in the body", "", "track", mustJSON(map[string]any{"writeKey": src.WriteKey, "userId": "u1", "event": "Seen"}), nil, 200, ""},
		{"unknown write key", "wk_nope", "track", mustJSON(ok), nil, 401, "invalid_write_key"},
		{"no write key", "", "track", mustJSON(ok), nil, 401, "invalid_write_key"},
		{"disabled source", off.WriteKey, "track", mustJSON(ok), nil, 401, "invalid_write_key"},
		{"invalid JSON", src.WriteKey, "track", []byte(`{"userId":`), nil, 400, "invalid_json"},
		{"not an object", src.WriteKey, "track", []byte(`[1,2]`), nil, 400, "invalid_json"},
		{"request over 500 KB", src.WriteKey, "batch", mustJSON(map[string]any{"batch": []any{map[string]any{"type": "track", "userId": "u", "event": strings.Repeat("x", 520*1024)}}}), nil, 400, "request_too_large"},
		{"bad gzip", src.WriteKey, "track", append([]byte{0x1f, 0x8b}, []byte("not gzip at all")...), map[string]string{"Content-Encoding": "gzip"}, 400, "invalid_gzip"},
		{"gzip as form-urlencoded", src.WriteKey, "batch", gz(mustJSON(map[string]any{"batch": []any{map[string]any{"type": "track", "userId": "u", "event": "e"}}})), map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"}, 200, ""},
		{"2,501 messages", src.WriteKey, "batch", mustJSON(map[string]any{"batch": bigBatch}), nil, 400, "too_many_messages"},
		{"message over 32 KB", src.WriteKey, "track", mustJSON(map[string]any{"userId": "u", "event": "e", "properties": map[string]any{"x": strings.Repeat("y", 33*1024)}}), nil, 400, "message_too_large"},
		{"no userId or anonymousId", src.WriteKey, "identify", mustJSON(map[string]any{"traits": map[string]any{"a": 1}}), nil, 400, "no_user_anon_id"},
		{"track without event", src.WriteKey, "track", mustJSON(map[string]any{"userId": "u"}), nil, 400, "missing_event"},
		{"group without groupId", src.WriteKey, "group", mustJSON(map[string]any{"userId": "u"}), nil, 400, "missing_group_id"},
		{"alias without previousId", src.WriteKey, "alias", mustJSON(map[string]any{"userId": "u"}), nil, 400, "missing_previous_id"},
		{"messageId over 100", src.WriteKey, "track", mustJSON(map[string]any{"userId": "u", "event": "e", "messageId": strings.Repeat("m", 101)}), nil, 400, "message_id_too_long"},
		{"301 traits", src.WriteKey, "identify", mustJSON(map[string]any{"userId": "u", "traits": manyFields(301)}), nil, 400, "too_many_traits"},
		{"301 properties", src.WriteKey, "track", mustJSON(map[string]any{"userId": "u", "event": "e", "properties": manyFields(301)}), nil, 400, "too_many_properties"},
		{"traits not an object", src.WriteKey, "identify", mustJSON(map[string]any{"userId": "u", "traits": "x"}), nil, 400, "invalid_field"},
		{"userId a boolean", src.WriteKey, "track", mustJSON(map[string]any{"userId": true, "event": "e"}), nil, 400, "invalid_field"},
		{"timestamp not a date", src.WriteKey, "track", mustJSON(map[string]any{"userId": "u", "event": "e", "timestamp": "yesterday"}), nil, 400, "invalid_field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Content-Type": "application/json"}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			if tc.key != "" {
				hdr["Authorization"] = "Basic " + basic(tc.key)
			}
			r := e.do("POST", "/v1/"+tc.call, tc.body, hdr)
			if r.status != tc.wantStatus || errCode(r) != tc.wantCode {
				t.Fatalf("status %d code %q, want %d %q: %s", r.status, errCode(r), tc.wantStatus, tc.wantCode, r.raw[:min(len(r.raw), 300)])
			}
			if tc.wantStatus == 401 && r.header.Get("WWW-Authenticate") != `Basic realm="tracking"` {
				t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	if r := e.do("GET", "/v1/track", nil, nil); r.status != 405 || r.header.Get("Allow") != "POST, OPTIONS" {
		t.Errorf("GET /v1/track: %d %v", r.status, r.header)
	}

	// A batch keeps its valid messages and names the others by index.
	r := e.send(src.WriteKey, "batch", map[string]any{"batch": []any{
		map[string]any{"type": "identify", "userId": "batch-u1", "traits": map[string]any{"plan": "pro"}},
		map[string]any{"type": "track", "userId": "batch-u1"},
		map[string]any{"type": "bogus", "userId": "batch-u1"},
		map[string]any{"type": "track", "anonymousId": "batch-a1", "event": "Seen"},
		map[string]any{"type": "identify", "traits": map[string]any{"plan": "free"}},
	}})
	if r.status != 200 || r.body["success"] != true {
		t.Fatalf("mixed batch: %d %s", r.status, r.raw)
	}
	var codes []string
	for _, x := range r.body["rejected"].([]any) {
		rj := x.(map[string]any)
		codes = append(codes, fmt.Sprintf("%v:%v", rj["index"], rj["code"]))
		if rj["message"] == "" {
			t.Errorf("rejection without a message: %v", rj)
		}
	}
	if got := strings.Join(codes, " "); got != "1:missing_event 2:invalid_type 4:no_user_anon_id" {
		t.Errorf("rejected %s", got)
	}
	tr := e.do("GET", "/v1/spaces/"+e.space+"/collections/users/profiles/user_id:batch-u1/traits", nil, map[string]string{"Authorization": "Basic " + basic(e.access)})
	if tr.status != 200 || tr.body["traits"].(map[string]any)["plan"] != "pro" {
		t.Errorf("the batch's valid identify: %d %s", tr.status, tr.raw)
	}
}

// A messageId seen within the dedupe window (at least 24 h) is acknowledged and not applied
// again: the retried identify does not bring back a trait a later identify changed. After
// the window the same id applies again. The clock is injected.
func TestTrackingDedupeWindow(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	src := e.source("http")
	first := map[string]any{"userId": "d1", "messageId": "dup-1", "traits": map[string]any{"plan": "free"}}
	traits := func() any {
		r := e.do("GET", "/v1/spaces/"+e.space+"/collections/users/profiles/user_id:d1/traits", nil, map[string]string{"Authorization": "Basic " + basic(e.access)})
		return r.body["traits"].(map[string]any)["plan"]
	}
	steps := []struct {
		advance    time.Duration
		body       map[string]any
		wantStatus string // the debugger's status for the message just sent
		wantPlan   string
	}{
		{0, first, "accepted", "free"},
		{time.Minute, map[string]any{"userId": "d1", "messageId": "dup-2", "traits": map[string]any{"plan": "pro"}}, "accepted", "pro"},
		// The SDK retries the first message an hour later, then a day later: both ignored.
		{time.Hour, first, "duplicate", "pro"},
		{24 * time.Hour, first, "duplicate", "pro"},
		// Well past the window (48 h) the id is new again.
		{25 * time.Hour, map[string]any{"userId": "d1", "messageId": "dup-1", "traits": map[string]any{"plan": "free"}, "timestamp": e.clock.Now().Add(51 * time.Hour).Format(time.RFC3339)}, "accepted", "free"},
	}
	for i, s := range steps {
		e.clock.Add(s.advance)
		if r := e.send(src.WriteKey, "identify", s.body); r.status != 200 {
			t.Fatalf("step %d: %d %s", i, r.status, r.raw)
		}
		if got := e.debugger(src.ID, "?limit=1")[0]["status"]; got != s.wantStatus {
			t.Errorf("step %d: debugger status %v, want %s", i, got, s.wantStatus)
		}
		if got := traits(); got != s.wantPlan {
			t.Errorf("step %d: plan %v, want %s", i, got, s.wantPlan)
		}
	}
}

// A source with nothing in its debugger answers an empty list, not null: clients iterate it.
func TestDebuggerEmptyIsAList(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	src := e.source("http")
	for _, q := range []string{"", "?search=nothing"} {
		r := e.admin("GET", "/v1/workspaces/"+e.ws+"/sources/"+src.ID+"/debugger"+q)
		if r.status != 200 || strings.TrimSpace(string(r.raw)) != `{"entries":[]}` {
			t.Errorf("debugger%s: %d %s", q, r.status, r.raw)
		}
	}
}

// The debugger keeps the latest 500 entries, newest first, searchable; a live tail sends
// what arrives after it opened.
func TestDebuggerLatest500AndTail(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	src := e.source("http")
	for b := range 6 { // 600 messages, in time order
		var batch []any
		for i := range 100 {
			batch = append(batch, map[string]any{"type": "track", "userId": "dbg", "event": fmt.Sprintf("Event %03d", b*100+i)})
		}
		if r := e.send(src.WriteKey, "batch", map[string]any{"batch": batch}); r.status != 200 {
			t.Fatalf("batch %d: %d %s", b, r.status, r.raw)
		}
		e.clock.Add(time.Second)
	}
	all := e.debugger(src.ID, "?limit=500")
	if len(all) != 500 {
		t.Fatalf("%d entries, want 500", len(all))
	}
	event := func(x map[string]any) string { return fmt.Sprint(x["normalised"].(map[string]any)["event"]) }
	if event(all[0]) != "Event 599" || event(all[499]) != "Event 100" {
		t.Errorf("newest %s, oldest %s; want Event 599 and Event 100", event(all[0]), event(all[499]))
	}
	if got := e.debugger(src.ID, ""); len(got) != 100 {
		t.Errorf("default page: %d entries, want 100", len(got))
	}
	if got := e.debugger(src.ID, "?search=event%20123"); len(got) != 1 || event(got[0]) != "Event 123" {
		t.Errorf("search: %v", got)
	}
	if r := e.admin("GET", "/v1/workspaces/"+e.ws+"/sources/"+src.ID+"/debugger?limit=501"); r.status != 400 || errCode(r) != "invalid_field" {
		t.Errorf("limit=501: %d %s", r.status, r.raw)
	}

	// Live tail.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.base+"/v1/workspaces/"+e.ws+"/sources/"+src.ID+"/debugger?search=tail", nil)
	req.Header.Set("Authorization", "Bearer "+e.wsTok)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(res.Body)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	for i := range 3 {
		e.clock.Add(time.Second)
		name := fmt.Sprintf("tail %d", i)
		if r := e.send(src.WriteKey, "track", map[string]any{"userId": "dbg", "event": name}); r.status != 200 {
			t.Fatalf("track: %d %s", r.status, r.raw)
		}
		for {
			if !lines.Scan() {
				t.Fatalf("the tail ended before %q: %v", name, lines.Err())
			}
			data, ok := strings.CutPrefix(lines.Text(), "data: ")
			if !ok {
				continue
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(data), &got); err != nil {
				t.Fatalf("tail data %q: %v", data, err)
			}
			if event(got) != name {
				t.Fatalf("tail sent %q, want %q", event(got), name)
			}
			break
		}
	}
}

// A website source passes its connection test once a page arrived, a mobile one once a
// screen arrived; the source then shows as connected, and step 2 completes.
func TestConnectionTestFlips(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	if r := e.do("PUT", "/v1/workspaces/"+e.ws+"/setup/data-source", []byte(`{"kind":"website"}`), map[string]string{"Authorization": "Bearer " + e.wsTok}); r.status != 200 {
		t.Fatalf("choose website: %d %s", r.status, r.raw)
	}
	tests := []struct{ typ, wrong, right string }{
		{"javascript", "screen", "page"},
		{"swift", "page", "screen"},
		{"kotlin", "track", "screen"},
	}
	for _, tc := range tests {
		src := e.source(tc.typ)
		check := func() trResp {
			return e.admin("POST", "/v1/workspaces/"+e.ws+"/sources/"+src.ID+"/test-connection")
		}
		if r := check(); r.status != 200 || r.body["ok"] != false || r.body["reason"] == nil {
			t.Fatalf("%s before any message: %d %s", tc.typ, r.status, r.raw)
		}
		body := map[string]any{"anonymousId": "a-" + tc.typ, "event": "x", "name": "Home"}
		if r := e.send(src.WriteKey, tc.wrong, body); r.status != 200 {
			t.Fatalf("%s: %d %s", tc.wrong, r.status, r.raw)
		}
		if r := check(); r.body["ok"] != false || r.body["seen"].(map[string]any)[tc.wrong] != true {
			t.Errorf("%s after a %s: %s", tc.typ, tc.wrong, r.raw)
		}
		if r := e.send(src.WriteKey, tc.right, body); r.status != 200 {
			t.Fatalf("%s: %d %s", tc.right, r.status, r.raw)
		}
		if r := check(); r.body["ok"] != true || r.body["seen"].(map[string]any)[tc.right] != true {
			t.Errorf("%s after a %s: %s", tc.typ, tc.right, r.raw)
		}
		if r := e.admin("GET", "/v1/workspaces/"+e.ws+"/sources/"+src.ID); r.body["connected"] != true {
			t.Errorf("%s not connected: %s", tc.typ, r.raw)
		}
	}
	ws := e.admin("GET", "/v1/workspaces/"+e.ws)
	if steps := ws.body["setup"].(map[string]any)["steps"].(map[string]any); steps["add_connections"].(map[string]any)["status"] != "complete" {
		t.Errorf("steps %v", steps)
	}
}

// Over the workspace's rate, 429 with Retry-After; another workspace is not affected.
func TestTrackingRateLimit(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{RateLimit: 3})
	src := e.source("http")
	msg := map[string]any{"userId": "r1", "event": "e"}
	for i := range 3 {
		if r := e.send(src.WriteKey, "track", msg); r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.raw)
		}
	}
	r := e.send(src.WriteKey, "track", msg)
	if r.status != 429 || errCode(r) != "rate_limited" || r.header.Get("Retry-After") != "1" {
		t.Fatalf("4th request: %d %v %s", r.status, r.header, r.raw)
	}
	if r := e.send("wk_unknown", "track", msg); r.status != 401 {
		t.Errorf("a stranger is refused before the limit: %d", r.status)
	}
	e.clock.Add(time.Second)
	if r := e.send(src.WriteKey, "track", msg); r.status != 200 {
		t.Errorf("after a second: %d %s", r.status, r.raw)
	}
}

// One workspace's token cannot read another's debugger or test its sources; a write key
// writes only into its own source's space.
func TestTrackingIsolation(t *testing.T) {
	t.Parallel()
	a := newTrackingStack(t, httpapi.TrackingOptions{})
	srcA := a.source("http")
	b := workspacetest.New(t, a.stack.Workspaces, trOperator) // a second workspace in the same stack
	if r := a.send(srcA.WriteKey, "identify", map[string]any{"userId": "iso", "traits": map[string]any{"secret": "a"}}); r.status != 200 {
		t.Fatal(r.raw)
	}
	for _, path := range []string{"/debugger", "/test-connection"} {
		method := map[string]string{"/debugger": "GET", "/test-connection": "POST"}[path]
		r := a.do(method, "/v1/workspaces/"+a.ws+"/sources/"+srcA.ID+path, nil, map[string]string{"Authorization": "Bearer " + b.Token})
		if r.status != 403 {
			t.Errorf("%s with the other workspace's token: %d %s", path, r.status, r.raw)
		}
		// The other workspace's own id with A's source: not found, not A's data.
		r = a.do(method, "/v1/workspaces/"+b.Workspace.ID+"/sources/"+srcA.ID+path, nil, map[string]string{"Authorization": "Bearer " + b.Token})
		if r.status != 404 {
			t.Errorf("%s of A's source under B: %d %s", path, r.status, r.raw)
		}
	}
	r := a.do("GET", "/v1/spaces/"+b.SpaceID()+"/collections/users/profiles/user_id:iso/traits", nil, map[string]string{"Authorization": "Basic " + basic(b.AccessToken(t))})
	if r.status != 404 {
		t.Errorf("A's profile visible in B's space: %d %s", r.status, r.raw)
	}
}

// /v1/import takes history up to 360 days old for predictions: an event 200 days old is
// applied and counted per day, its raw event not kept, and the answer says how many were
// not kept; the same import again counts nothing twice. Past 360 days import refuses naming
// its limit, and every other call still refuses past the 30 days events are kept.
func TestImportTakesHistoryForPredictions(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	src := e.source("http")
	ctx := context.Background()
	const day = 24 * time.Hour
	now := e.clock.Now()
	stamp := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	history := map[string]any{"batch": []any{
		map[string]any{"type": "track", "userId": "hist", "messageId": "imp-old", "event": "Order Completed",
			"properties": map[string]any{"revenue": 42.5}, "timestamp": stamp(-200 * day)},
		map[string]any{"type": "track", "userId": "hist", "messageId": "imp-recent", "event": "Order Completed", "timestamp": stamp(-time.Hour)},
	}}
	wantWarning := []any{map[string]any{"code": "events_not_kept",
		"message": "1 messages older than 30 days were applied and their track events counted for predictions; their raw events are not kept"}}
	for attempt := range 2 { // the client retries: the same answer, nothing counted twice
		r := e.send(src.WriteKey, "import", history)
		if r.status != 200 || r.body["success"] != true || r.body["not_kept"] != 1.0 || !reflect.DeepEqual(r.body["warnings"], wantWarning) {
			t.Fatalf("import (attempt %d): %d %s, want 200 with not_kept 1 and the warning", attempt, r.status, r.raw)
		}
	}
	p, err := e.stack.Profiles.Lookup(ctx, e.space, identity.Identifier{Type: identity.TypeUserID, Value: "hist"})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := e.stack.Profiles.DailyCounts(ctx, e.space, p, now.Add(-360*day))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range counts {
		got = append(got, fmt.Sprintf("%s %s %d %v", c.Day.Format("2006-01-02"), c.Event, c.Count, c.Revenue["revenue"]))
	}
	want := []string{
		now.Add(-200*day).UTC().Format("2006-01-02") + " Order Completed 1 42.5",
		now.Add(-time.Hour).UTC().Format("2006-01-02") + " Order Completed 1 0",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("daily counts %q, want %q", got, want)
	}
	evs, err := e.stack.Profiles.Events(ctx, e.space, p, time.Time{}, now.Add(time.Hour))
	if err != nil || len(evs) != 1 || evs[0].MessageID != "imp-recent" || !evs[0].Counted {
		t.Errorf("stored events %+v (%v), want only the recent one, marked counted", evs, err)
	}

	r := e.send(src.WriteKey, "import", map[string]any{"batch": []any{
		map[string]any{"type": "track", "userId": "hist", "event": "Too Old", "timestamp": stamp(-400 * day)},
		map[string]any{"type": "track", "userId": "hist", "event": "Recent", "timestamp": stamp(-time.Minute)},
	}})
	rejected, _ := r.body["rejected"].([]any)
	if r.status != 200 || len(rejected) != 1 || strings.Contains(r.raw, "not_kept") || strings.Contains(r.raw, "warnings") {
		t.Fatalf("import of a 400-day-old event: %d %s, want it rejected alone and no warning", r.status, r.raw)
	}
	if rj := rejected[0].(map[string]any); rj["code"] != "timestamp_too_old" || !strings.Contains(rj["message"].(string), "360 days") {
		t.Errorf("rejection %v, want timestamp_too_old naming import's 360 days", rj)
	}

	old := map[string]any{"type": "track", "userId": "hist", "event": "Late", "timestamp": stamp(-40 * day)}
	if r := e.send(src.WriteKey, "track", old); r.status != 400 || errCode(r) != "timestamp_too_old" || !strings.Contains(r.raw, "30 days") {
		t.Errorf("/v1/track 40 days old: %d %s, want 400 timestamp_too_old naming the 30 days", r.status, r.raw)
	}
	r = e.send(src.WriteKey, "batch", map[string]any{"batch": []any{old}})
	if rejected, _ := r.body["rejected"].([]any); r.status != 200 || len(rejected) != 1 || !strings.Contains(r.raw, "30 days") || strings.Contains(r.raw, "not_kept") {
		t.Errorf("/v1/batch 40 days old: %d %s, want it rejected naming the 30 days", r.status, r.raw)
	}
}

// A space pays for daily counts only once it uses predictions (ARCHITECTURE.md section 6:
// a returning visitor's message costs at most 3 write units): /v1/track and /v1/batch
// count nothing in a space without a registered prediction, and count every track call
// once one is registered; /v1/import counts either way (TestImportTakesHistoryForPredictions).
func TestTrackingCountsOnlyForPredictions(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	src := e.source("http")
	ctx := context.Background()
	now := e.clock.Now()
	send := func(id string) {
		t.Helper()
		for _, call := range []string{"track", "batch"} {
			m := map[string]any{"type": "track", "userId": "counted", "messageId": call + "-" + id, "event": "Viewed",
				"properties": map[string]any{"revenue": 2}, "timestamp": now.Add(-time.Minute).Format(time.RFC3339)}
			var body any = m
			if call == "batch" {
				body = map[string]any{"batch": []any{m}}
			}
			if r := e.send(src.WriteKey, call, body); r.status != 200 {
				t.Fatalf("/v1/%s: %d %s", call, r.status, r.raw)
			}
		}
	}
	counts := func() (n int64, revenue float64, marked int) {
		t.Helper()
		p, err := e.stack.Profiles.Lookup(ctx, e.space, identity.Identifier{Type: identity.TypeUserID, Value: "counted"})
		if err != nil {
			t.Fatal(err)
		}
		dcs, err := e.stack.Profiles.DailyCounts(ctx, e.space, p, now.Add(-24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, dc := range dcs {
			n, revenue = n+dc.Count, revenue+dc.Revenue["revenue"]
		}
		evs, err := e.stack.Profiles.Events(ctx, e.space, p, time.Time{}, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Counted {
				marked++
			}
		}
		return n, revenue, marked
	}
	for _, tc := range []struct {
		name   string
		before func()
		count  int64 // the calls counted so far
		marked int   // the events marked counted so far
	}{
		{"no prediction", func() {}, 0, 0},
		{"a prediction registered", func() {
			if err := e.stack.Profiles.RegisterPrediction(ctx, e.space, "pred_churn", "churn_risk"); err != nil {
				t.Fatal(err)
			}
		}, 2, 2},
		{"the prediction unregistered", func() {
			if err := e.stack.Profiles.UnregisterPrediction(ctx, e.space, "pred_churn"); err != nil {
				t.Fatal(err)
			}
		}, 2, 2},
	} {
		tc.before()
		e.clock.Add(2 * time.Second) // past the config cache of every instance
		send(tc.name)
		if n, revenue, marked := counts(); n != tc.count || revenue != 2*float64(tc.count) || marked != tc.marked {
			t.Errorf("%s: %d calls counted (revenue %v), %d events marked; want %d and %d", tc.name, n, revenue, marked, tc.count, tc.marked)
		}
	}
}
