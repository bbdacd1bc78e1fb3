package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
)

var updateProfilesGolden = flag.Bool("update", false, "rewrite the golden files in testdata/profiles/")

const paOperatorToken = "upo_profiles_test"

// paClock is the injected clock of the services and the API.
type paClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *paClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *paClock) Set(t time.Time)     { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func (c *paClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// paFixture is a Profile API over a bolt store filled through the real services.
type paFixture struct {
	t     *testing.T
	base  string
	clock *paClock
	t0    time.Time // the API's "now"; every stored time is relative to it

	space, token   string // space A: its id and its access token
	spaceB, tokenB string // a second space of the same workspace
	otherWSToken   string // access token of another workspace's space
	workspaceToken string

	profiles *profile.Service // the service behind the API, for what no route writes (predictions)
}

// t0 must track the wall clock: the store expires events and de-duplication keys by it.
func newPAFixture(t *testing.T, opts ProfilesOptions) *paFixture {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	t0 := time.Now().UTC().Truncate(time.Second)
	clock := &paClock{now: t0.Add(-21 * 24 * time.Hour)}
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(paOperatorToken), Now: clock.Now})
	profiles := profile.New(st, profile.Options{Now: clock.Now})
	f := &paFixture{t: t, clock: clock, t0: t0, profiles: profiles}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	auth := func(tok string) workspace.Principal {
		t.Helper()
		p, err := ws.Authenticate(ctx, tok)
		must(err)
		return p
	}
	newWorkspace := func(sid string) (workspace.Created, workspace.Principal) {
		t.Helper()
		acc, err := ws.AcceptBeta(ctx, auth(paOperatorToken), sid)
		must(err)
		c, err := ws.CreateWorkspace(ctx, auth(acc.InviteToken), "Support "+sid[len(sid)-4:], sid)
		must(err)
		return c, auth(c.Token)
	}
	c, owner := newWorkspace("AC00000000000000000000000000000001")
	f.space, f.workspaceToken = c.Spaces[0].ID, c.Token
	tok, err := ws.CreateAccessToken(ctx, owner, c.Workspace.ID, f.space)
	must(err)
	f.token = tok.Token
	spB, err := ws.CreateSpace(ctx, owner, c.Workspace.ID, "Second space")
	must(err)
	tokB, err := ws.CreateAccessToken(ctx, owner, c.Workspace.ID, spB.ID)
	must(err)
	f.spaceB, f.tokenB = spB.ID, tokB.Token
	c2, owner2 := newWorkspace("AC00000000000000000000000000000002")
	tokC, err := ws.CreateAccessToken(ctx, owner2, c2.Workspace.ID, c2.Spaces[0].ID)
	must(err)
	f.otherWSToken = tokC.Token

	// Space A reads phone numbers as a custom identifier.
	set := identity.DefaultSettings()
	set.Identifiers = append(set.Identifiers, identity.Rule{Type: "phone", Custom: true, Keys: []string{"phone"},
		Limit: 5, Window: identity.WindowWeekly, Priority: len(set.Identifiers) + 1, Blocked: identity.SuggestedBlocked()})
	_, err = profiles.SaveSettings(ctx, f.space, set)
	must(err)

	for _, s := range paStory(t0) {
		clock.Set(s.m.Timestamp.Add(time.Second)) // received a second after it happened
		if _, err := profiles.Apply(ctx, s.space(f), s.m); err != nil {
			t.Fatalf("apply %s: %v", s.m.MessageID, err)
		}
	}
	clock.Set(t0)

	mux := NewMux()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	opts.Logger, opts.Limits = log, st
	MountProfiles(mux, ws, profiles, opts)
	srv := httptest.NewServer(Logged(mux, log))
	t.Cleanup(srv.Close)
	f.base = srv.URL
	return f
}

type paStep struct {
	inB bool // applied to space B instead of A
	m   message.Message
}

func (s paStep) space(f *paFixture) string {
	if s.inB {
		return f.spaceB
	}
	return f.space
}

// paStory is what happened to Ada (user u1, anonymous a1 then a2) and two others.
func paStory(t0 time.Time) []paStep {
	ago := func(d time.Duration) time.Time { return t0.Add(-d) }
	return []paStep{
		{m: paMsg("msg-01", message.Track, ago(20*24*time.Hour), "src_flex", map[string]any{"userId": "u1", "event": "Signed Up"})},
		{m: paMsg("msg-02", message.Identify, ago(3*time.Hour), "src_web", map[string]any{"userId": "u1", "anonymousId": "a1",
			"traits": map[string]any{"name": "Ada Lovelace", "email": "ada@example.com", "plan": "pro", "age": 36, "phone": "+15551234567", "vip": true}})},
		{m: paMsg("msg-03", message.Track, ago(2*time.Hour), "src_web", map[string]any{"userId": "u1", "event": "Order Completed",
			"properties": map[string]any{"order_id": "o-1", "total": 42.5, "currency": "EUR"}})},
		{m: paMsg("msg-04", message.Page, ago(90*time.Minute), "src_web", map[string]any{"anonymousId": "a1", "name": "Pricing",
			"properties": map[string]any{"path": "/pricing"}})},
		{m: paMsg("msg-05", message.Group, ago(time.Hour), "src_web", map[string]any{"userId": "u1", "groupId": "acme",
			"traits": map[string]any{"name": "Acme Inc"}})},
		{m: paMsg("msg-06", message.Identify, ago(50*time.Minute), "src_web", map[string]any{"anonymousId": "a2",
			"traits": map[string]any{"color": "blue", "plan": "free"}})},
		{m: paMsg("msg-07", message.Track, ago(40*time.Minute), "src_web", map[string]any{"anonymousId": "a2", "event": "Product Viewed",
			"properties": map[string]any{"sku": "sku-9"}})},
		{m: paMsg("msg-08", message.Group, ago(30*time.Minute), "src_web", map[string]any{"userId": "u1", "groupId": "globex"})},
		// a2 turns out to be Ada: her two profiles merge.
		{m: paMsg("msg-09", message.Identify, ago(10*time.Minute), "src_web", map[string]any{"userId": "u1", "anonymousId": "a2",
			"traits": map[string]any{"plan": "enterprise"}})},
		{m: paMsg("msg-10", message.Screen, ago(5*time.Minute), "src_ios", map[string]any{"userId": "u1", "name": "Home"})},
		{m: paMsg("msg-11", message.Identify, ago(4*time.Minute), "src_web", map[string]any{"userId": "u2", "traits": map[string]any{"name": "Grace Hopper"}})},
		{m: paMsg("msg-12", message.Identify, ago(3*time.Minute), "src_web", map[string]any{"userId": "u/x:y", "traits": map[string]any{"name": "Slash Colon"}})},
		{inB: true, m: paMsg("msg-13", message.Identify, ago(2*time.Minute), "src_web", map[string]any{"userId": "u1", "traits": map[string]any{"secret": "space-b-only"}})},
	}
}

// paMsg builds a normalised message and the raw JSON it came as.
func paMsg(id, typ string, at time.Time, source string, fields map[string]any) message.Message {
	ctx := map[string]any{"ip": "203.0.113.7", "library": map[string]any{"name": "analytics.js", "version": "2.11.1"}}
	raw := map[string]any{"type": typ, "messageId": id, "timestamp": at.Format(time.RFC3339Nano), "context": ctx}
	for k, v := range fields {
		raw[k] = v
	}
	b, err := json.Marshal(raw)
	if err != nil {
		panic(err)
	}
	str := func(k string) string { s, _ := fields[k].(string); return s }
	obj := func(k string) map[string]any { m, _ := fields[k].(map[string]any); return m }
	return message.Message{Type: typ, MessageID: id, UserID: str("userId"), AnonymousID: str("anonymousId"), GroupID: str("groupId"),
		Event: str("event"), Name: str("name"), Traits: obj("traits"), Properties: obj("properties"), Context: ctx,
		Timestamp: at, ReceivedAt: at.Add(time.Second), SourceID: source, Raw: b}
}

func paBasic(tok string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(tok+":"))
}

// paResponse is the Profile API tests' name for an answer.
type paResponse = response

// get requests path (escaped as given) with the Authorization header auth ("" for none).
func (f *paFixture) get(path, auth string) paResponse {
	f.t.Helper()
	return f.do(http.MethodGet, path, auth)
}

func (f *paFixture) do(method, path, auth string) paResponse {
	f.t.Helper()
	req, err := http.NewRequest(method, f.base+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return roundTrip(f.t, req)
}

func (f *paFixture) path(sp, id, resource string) string {
	return "/v1/spaces/" + sp + "/collections/users/profiles/" + id + "/" + resource
}

func (r paResponse) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("not a JSON object (status %d): %q", r.status, r.body)
	}
	return m
}

// paTimeInJSON is an RFC 3339 time as a JSON string.
var paTimeInJSON = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"`)

// normalize replaces, in a response body, what changes from run to run — times become
// offsets from t0 ("T0-3h0m0s"), the space id "{sp}", the cursor "<cursor>" — and indents
// it, keeping the order of the fields as sent.
func (f *paFixture) normalize(body []byte) []byte {
	f.t.Helper()
	var page struct {
		Cursor struct{ Next string } `json:"cursor"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		f.t.Fatalf("not JSON: %q", body)
	}
	if page.Cursor.Next != "" {
		body = bytes.ReplaceAll(body, []byte(page.Cursor.Next), []byte("<cursor>"))
	}
	body = bytes.ReplaceAll(body, []byte(f.space), []byte("{sp}"))
	body = paTimeInJSON.ReplaceAllFunc(body, func(b []byte) []byte {
		t, err := time.Parse(time.RFC3339Nano, string(b[1:len(b)-1]))
		if err != nil {
			f.t.Fatalf("time %s: %v", b, err)
		}
		d, sign := t.Sub(f.t0), "+"
		if d < 0 {
			sign = ""
		}
		return []byte(`"T0` + sign + d.String() + `"`)
	})
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(body), "", "  "); err != nil {
		f.t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// TestProfilesGolden pins every endpoint's response shape.
func TestProfilesGolden(t *testing.T) {
	t.Parallel()
	f := newPAFixture(t, ProfilesOptions{RateLimit: 1 << 20})
	tests := []struct {
		golden, path string
	}{
		{"traits", "user_id:u1/traits"},
		{"traits-verbose", "user_id:u1/traits?verbose=true&limit=3"},
		{"traits-include", "user_id:u1/traits?include=email,plan,missing"},
		{"traits-computed", "user_id:u1/traits?class=computed_trait"},
		{"traits-audience", "user_id:u1/traits?class=audience"},
		{"external_ids", "user_id:u1/external_ids"},
		{"external_ids-include", "user_id:u1/external_ids?include=email,anonymous_id&limit=1"},
		{"events", "user_id:u1/events"},
		{"events-asc", "user_id:u1/events?sort=asc&limit=3"},
		{"events-include", "user_id:u1/events?include=Order%20Completed,Pricing"},
		{"events-exclude", "user_id:u1/events?exclude=Product%20Viewed,Order%20Completed"},
		{"metadata", "user_id:u1/metadata"},
		{"metadata-other", "user_id:u2/metadata"},
		{"links", "user_id:u1/links"},
		{"links-none", "user_id:u2/links"},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			res := f.get("/v1/spaces/"+f.space+"/collections/users/profiles/"+tt.path, paBasic(f.token))
			if res.status != http.StatusOK {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			if ct := res.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			got := f.normalize(res.body)
			file := filepath.Join("testdata", "profiles", tt.golden+".golden.json")
			if *updateProfilesGolden {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -run TestProfilesGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (go test -run TestProfilesGolden -update rewrites it):\n%s", tt.path, file, got)
			}
		})
	}
}

// TestProfilesErrors checks every refusal: status, envelope code, field, headers.
func TestProfilesErrors(t *testing.T) {
	t.Parallel()
	f := newPAFixture(t, ProfilesOptions{RateLimit: 1 << 20})
	a := "/v1/spaces/" + f.space + "/collections/users/profiles/user_id:u1"
	old := f.t0.Add(-15 * 24 * time.Hour).Format(time.RFC3339)
	tests := []struct {
		name, method, path, auth string
		status                   int
		code, field              string
	}{
		{"no credentials", "GET", a + "/traits", "", 401, "unauthorized", ""},
		{"unknown token", "GET", a + "/traits", paBasic("upa_unknown"), 401, "unauthorized", ""},
		{"bearer instead of basic", "GET", a + "/traits", "Bearer " + f.token, 401, "unauthorized", ""},
		{"malformed basic", "GET", a + "/traits", "Basic !!!", 401, "unauthorized", ""},
		{"token of another space", "GET", a + "/traits", paBasic(f.tokenB), 403, "forbidden", ""},
		{"token of another workspace", "GET", a + "/events", paBasic(f.otherWSToken), 403, "forbidden", ""},
		{"workspace token", "GET", a + "/external_ids", paBasic(f.workspaceToken), 403, "forbidden", ""},
		{"operator token", "GET", a + "/metadata", paBasic(paOperatorToken), 403, "forbidden", ""},
		{"another space's token on its unknown profile", "GET", f.path(f.space, "user_id:nobody", "traits"), paBasic(f.tokenB), 403, "forbidden", ""},
		{"identifier without type", "GET", f.path(f.space, "u1", "traits"), paBasic(f.token), 400, "invalid_field", "external_id"},
		{"identifier without value", "GET", f.path(f.space, "user_id:", "traits"), paBasic(f.token), 400, "invalid_field", "external_id"},
		{"unknown resource", "GET", a + "/friends", paBasic(f.token), 404, "not_found", ""},
		{"no identifier", "GET", "/v1/spaces/" + f.space + "/collections/users/profiles/traits", paBasic(f.token), 404, "not_found", ""},
		{"accounts collection", "GET", "/v1/spaces/" + f.space + "/collections/accounts/profiles/group_id:acme/traits", paBasic(f.token), 404, "not_found", ""},
		{"POST", "POST", a + "/traits", paBasic(f.token), 405, "method_not_allowed", ""},
		{"traits limit 0", "GET", a + "/traits?limit=0", paBasic(f.token), 400, "invalid_field", "limit"},
		{"traits limit 201", "GET", a + "/traits?limit=201", paBasic(f.token), 400, "invalid_field", "limit"},
		{"traits limit not a number", "GET", a + "/traits?limit=ten", paBasic(f.token), 400, "invalid_field", "limit"},
		{"external_ids limit 101", "GET", a + "/external_ids?limit=101", paBasic(f.token), 400, "invalid_field", "limit"},
		{"events limit 101", "GET", a + "/events?limit=101", paBasic(f.token), 400, "invalid_field", "limit"},
		{"links limit -1", "GET", a + "/links?limit=-1", paBasic(f.token), 400, "invalid_field", "limit"},
		{"cursor not base64", "GET", a + "/traits?next=%25%25%25", paBasic(f.token), 400, "invalid_field", "next"},
		{"cursor of another list", "GET", a + "/events?next=" + paEncodeCursor(cursorTraits, "age"), paBasic(f.token), 400, "invalid_field", "next"},
		{"events cursor without position", "GET", a + "/events?next=" + paEncodeCursor(cursorEvents, "garbage"), paBasic(f.token), 400, "invalid_field", "next"},
		{"external_ids cursor of an unknown id", "GET", a + "/external_ids?next=" + paEncodeCursor(cursorExternalIDs, "email:x@y"), paBasic(f.token), 400, "invalid_field", "next"},
		{"links cursor of an unknown group", "GET", a + "/links?next=" + paEncodeCursor(cursorLinks, "nope"), paBasic(f.token), 400, "invalid_field", "next"},
		{"start 15 days back", "GET", a + "/events?start=" + old, paBasic(f.token), 400, "invalid_field", "start"},
		{"start not a time", "GET", a + "/events?start=yesterday", paBasic(f.token), 400, "invalid_field", "start"},
		{"end before start", "GET", a + "/events?start=" + url.QueryEscape(f.t0.Add(-time.Hour).Format(time.RFC3339)) + "&end=" + url.QueryEscape(f.t0.Add(-2*time.Hour).Format(time.RFC3339)), paBasic(f.token), 400, "invalid_field", "end"},
		{"end 20 days back", "GET", a + "/events?end=" + url.QueryEscape(f.t0.Add(-20*24*time.Hour).Format(time.RFC3339)), paBasic(f.token), 400, "invalid_field", "end"},
		{"sort sideways", "GET", a + "/events?sort=sideways", paBasic(f.token), 400, "invalid_field", "sort"},
		{"class unknown", "GET", a + "/traits?class=sql_trait", paBasic(f.token), 400, "invalid_field", "class"},
		{"verbose maybe", "GET", a + "/traits?verbose=maybe", paBasic(f.token), 400, "invalid_field", "verbose"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := f.do(tt.method, tt.path, tt.auth)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d: %s", res.status, tt.status, res.body)
			}
			var env struct {
				Error struct{ Code, Message, Field string } `json:"error"`
			}
			if err := json.Unmarshal(res.body, &env); err != nil || env.Error.Message == "" {
				t.Fatalf("not the error envelope: %q", res.body)
			}
			if env.Error.Code != tt.code || env.Error.Field != tt.field {
				t.Errorf("code %q field %q, want %q %q: %s", env.Error.Code, env.Error.Field, tt.code, tt.field, res.body)
			}
			challenge := res.header.Get("WWW-Authenticate")
			if want := `Basic realm="profiles"`; (tt.status == 401) != (challenge == want) {
				t.Errorf("WWW-Authenticate %q with status %d", challenge, tt.status)
			}
			if bytes.Contains(res.body, []byte("Ada")) || bytes.Contains(res.body, []byte("space-b-only")) {
				t.Errorf("an error leaks profile data: %s", res.body)
			}
		})
	}

	// A start computed as "14 days ago" a moment before the server's clock is still fine.
	t.Run("start 14 days back", func(t *testing.T) {
		t.Parallel()
		start := url.QueryEscape(f.t0.Add(-14*24*time.Hour - 30*time.Second).Format(time.RFC3339))
		if res := f.get(a+"/events?start="+start, paBasic(f.token)); res.status != 200 {
			t.Fatalf("status %d: %s", res.status, res.body)
		}
	})

	// An unknown profile answers exactly as Segment's does, on every resource.
	for _, resource := range []string{"traits", "external_ids", "events", "metadata", "links"} {
		t.Run("unknown profile "+resource, func(t *testing.T) {
			t.Parallel()
			res := f.get(f.path(f.space, "email:nobody%40example.com", resource), paBasic(f.token))
			if want := `{"error":{"code":"not_found","message":"Profile was not found."}}`; res.status != 404 || string(bytes.TrimSpace(res.body)) != want {
				t.Fatalf("status %d body %s, want 404 %s", res.status, res.body, want)
			}
		})
	}
}

// TestProfilesSpaceIsolation: a space's token reads its own space's profile of the same
// identifier, never another space's.
func TestProfilesSpaceIsolation(t *testing.T) {
	t.Parallel()
	f := newPAFixture(t, ProfilesOptions{RateLimit: 1 << 20})
	res := f.get(f.path(f.spaceB, "user_id:u1", "traits"), paBasic(f.tokenB))
	if res.status != 200 {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	if got := res.object(t)["traits"]; !paEqualJSON(got, map[string]any{"secret": "space-b-only"}) {
		t.Errorf("space B's u1 traits = %v", got)
	}
	res = f.get(f.path(f.space, "user_id:u1", "traits"), paBasic(f.token))
	if bytes.Contains(res.body, []byte("space-b-only")) {
		t.Errorf("space A sees space B's trait: %s", res.body)
	}
}

func paEqualJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestProfilesIdentifierEncoding: identifiers are one path segment, URL-encoded; a "+" or
// "@" may come encoded or not, an encoded "/" or ":" stays in the value, and a "/" that API
// Gateway decoded before the function saw it still finds the profile.
func TestProfilesIdentifierEncoding(t *testing.T) {
	t.Parallel()
	f := newPAFixture(t, ProfilesOptions{RateLimit: 1 << 20})
	tests := []struct {
		id       string
		status   int
		wantName string
	}{
		{"phone:%2B15551234567", 200, "Ada Lovelace"},
		{"phone:+15551234567", 200, "Ada Lovelace"},
		{"phone%3A%2B15551234567", 200, "Ada Lovelace"},
		{"email:ada%40example.com", 200, "Ada Lovelace"},
		{"email:ada@example.com", 200, "Ada Lovelace"},
		{"anonymous_id:a2", 200, "Ada Lovelace"}, // merged away: answers with the survivor
		{"group_id:acme", 200, "Ada Lovelace"},
		{"user_id:u%2Fx%3Ay", 200, "Slash Colon"},
		{"user_id:u/x:y", 200, "Slash Colon"},
		{"phone:%2B15559999999", 404, ""},
		{"phone:15551234567", 404, ""}, // the "+" is part of the value
		{"user_id:U1", 404, ""},        // values are case-sensitive
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			res := f.get(f.path(f.space, tt.id, "traits"), paBasic(f.token))
			if res.status != tt.status {
				t.Fatalf("status %d, want %d: %s", res.status, tt.status, res.body)
			}
			if tt.status != 200 {
				return
			}
			if got := res.object(t)["traits"].(map[string]any)["name"]; got != tt.wantName {
				t.Errorf("name = %v, want %s", got, tt.wantName)
			}
		})
	}
}

// TestProfilesPaging follows cursor.url with small pages until has_more is false: every
// item comes exactly once, in order.
func TestProfilesPaging(t *testing.T) {
	t.Parallel()
	f := newPAFixture(t, ProfilesOptions{RateLimit: 1 << 20})
	// The position of an item on a page, as the list's key.
	traitKeys := func(page map[string]any) []string {
		keys := make([]string, 0)
		for k := range page["traits"].(map[string]any) {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys
	}
	dataKeys := func(field string) func(map[string]any) []string {
		return func(page map[string]any) []string {
			var keys []string
			for _, d := range page["data"].([]any) {
				d := d.(map[string]any)
				if field == "link" { // a link's key is its group id
					keys = append(keys, fmt.Sprint(d["external_ids"].([]any)[0].(map[string]any)["id"]))
					continue
				}
				keys = append(keys, fmt.Sprint(d[field]))
			}
			return keys
		}
	}
	tests := []struct {
		name  string
		first string
		keys  func(map[string]any) []string
		want  []string
	}{
		{"traits by 2", "traits?limit=2", traitKeys, []string{"age", "color", "email", "name", "phone", "plan", "vip"}},
		{"traits by 1 with include", "traits?limit=1&include=vip,age,name", traitKeys, []string{"age", "name", "vip"}},
		{"traits by 200", "traits?limit=200", traitKeys, []string{"age", "color", "email", "name", "phone", "plan", "vip"}},
		{"external_ids by 2", "external_ids?limit=2", dataKeys("id"),
			[]string{"u1", "ada@example.com", "a1", "+15551234567", "acme", "a2", "globex"}},
		{"events by 3, newest first", "events?limit=3", dataKeys("message_id"),
			[]string{"msg-10", "msg-09", "msg-08", "msg-07", "msg-06", "msg-05", "msg-04", "msg-03", "msg-02"}},
		{"events by 2, oldest first, tracks only", "events?limit=2&sort=asc&exclude=Pricing,Home&include=Order%20Completed,Product%20Viewed,Home",
			dataKeys("message_id"), []string{"msg-03", "msg-07"}},
		{"events by 4 in a window", "events?limit=4&start=" + url.QueryEscape(f.t0.Add(-95*time.Minute).Format(time.RFC3339)) +
			"&end=" + url.QueryEscape(f.t0.Add(-30*time.Minute).Format(time.RFC3339)),
			dataKeys("message_id"), []string{"msg-07", "msg-06", "msg-05", "msg-04"}},
		{"links by 1", "links?limit=1", dataKeys("link"), []string{"acme", "globex"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			path := f.path(f.space, "user_id:u1", tt.first)
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatalf("more than 20 pages; so far %v", got)
				}
				res := f.get(path, paBasic(f.token))
				if res.status != 200 {
					t.Fatalf("page %d %s: status %d: %s", pages, path, res.status, res.body)
				}
				page := res.object(t)
				got = append(got, tt.keys(page)...)
				cur := page["cursor"].(map[string]any)
				if cur["has_more"] != true {
					if cur["url"] != "" || cur["next"] != "" {
						t.Errorf("last page has cursor %v", cur)
					}
					break
				}
				if !strings.Contains(cur["url"].(string), "next="+cur["next"].(string)) {
					t.Errorf("cursor.url %q does not carry cursor.next %q", cur["url"], cur["next"])
				}
				path = cur["url"].(string)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("collected %v, want %v", got, tt.want)
			}
		})
	}
}

// TestProfilesRateLimit: 100 requests per second per space, then 429 with Retry-After until
// the next second, on an injected clock.
func TestProfilesRateLimit(t *testing.T) {
	t.Parallel()
	clock := &paClock{}
	f := newPAFixture(t, ProfilesOptions{Now: clock.Now}) // the default limit
	clock.Set(f.t0)
	traits := f.path(f.space, "user_id:u1", "traits")
	expect := func(status int, path, auth string) paResponse {
		t.Helper()
		res := f.get(path, auth)
		if res.status != status {
			t.Fatalf("status %d, want %d: %s", res.status, status, res.body)
		}
		return res
	}
	for range DefaultProfilesRateLimit {
		expect(200, traits, paBasic(f.token))
	}
	res := expect(429, traits, paBasic(f.token))
	if code, _ := res.object(t)["error"].(map[string]any)["code"].(string); code != "rate_limited" {
		t.Errorf("code %q: %s", code, res.body)
	}
	if ra, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q", res.header.Get("Retry-After"))
	}
	// Refused requests spend nothing; requests without the space's token are not counted
	// against it (and are refused for what they are).
	expect(401, traits, "")
	expect(403, traits, paBasic(f.tokenB))
	// Another space has its own budget.
	expect(200, f.path(f.spaceB, "user_id:u1", "traits"), paBasic(f.tokenB))

	// The budget is per second (shared by every instance through the store): refused until
	// the next second, then whole again.
	clock.Add(10 * time.Millisecond)
	expect(429, traits, paBasic(f.token))
	clock.Add(time.Second)
	for range DefaultProfilesRateLimit {
		expect(200, f.path(f.space, "user_id:u1", "metadata"), paBasic(f.token))
	}
	expect(429, traits, paBasic(f.token))
}

// A registered prediction's score shows among the profile's traits under the prediction's
// key, as a computed trait (class=computed_trait too), for that profile only and in that
// space only; unregistered, it stops showing on the next read.
func TestProfilesTraitsShowPredictionScores(t *testing.T) {
	t.Parallel()
	f := newPAFixture(t, ProfilesOptions{RateLimit: 1 << 20})
	ctx := context.Background()
	ada, err := f.profiles.Lookup(ctx, f.space, identity.Identifier{Type: identity.TypeUserID, Value: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.profiles.RegisterPrediction(ctx, f.space, "pred_churn", "churn_risk"); err != nil {
		t.Fatal(err)
	}
	if err := f.profiles.PutScores(ctx, f.space, "pred_churn", map[string]float64{ada.ID: 0.87}, f.t0); err != nil {
		t.Fatal(err)
	}
	score := func(sp, tok, id, query string) (any, bool) {
		t.Helper()
		res := f.get(f.path(sp, id, "traits")+query, paBasic(tok))
		if res.status != 200 {
			t.Fatalf("traits of %s%s: %d %s", id, query, res.status, res.body)
		}
		v, ok := res.object(t)["traits"].(map[string]any)["churn_risk"]
		return v, ok
	}
	for _, tc := range []struct {
		name, sp, tok, id, query string
		want                     any // nil: absent
	}{
		{"all traits", f.space, f.token, "user_id:u1", "", 0.87},
		{"by an identifier merged in", f.space, f.token, "anonymous_id:a2", "", 0.87},
		{"computed traits only", f.space, f.token, "user_id:u1", "?class=computed_trait", 0.87},
		{"included by name", f.space, f.token, "user_id:u1", "?include=churn_risk", 0.87},
		{"another profile", f.space, f.token, "user_id:u2", "", nil},
		{"the same user in another space", f.spaceB, f.tokenB, "user_id:u1", "", nil},
	} {
		if got, ok := score(tc.sp, tc.tok, tc.id, tc.query); tc.want == nil && ok || tc.want != nil && got != tc.want {
			t.Errorf("%s: churn_risk %v (present %v), want %v", tc.name, got, ok, tc.want)
		}
	}
	if err := f.profiles.UnregisterPrediction(ctx, f.space, "pred_churn"); err != nil {
		t.Fatal(err)
	}
	if got, ok := score(f.space, f.token, "user_id:u1", ""); ok {
		t.Errorf("after unregistering: churn_risk %v still shows", got)
	}
}
