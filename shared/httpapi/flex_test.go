package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	twilio "github.com/twilio/twilio-go/client"

	"github.com/unifiedprofiles/up/shared/flex"
	"github.com/unifiedprofiles/up/shared/flex/flextest"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/secrets"
	"github.com/unifiedprofiles/up/shared/secrets/localkey"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/testlog"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/upload"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/postgres"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

// fxStack is the admin API and the Flex API on one bolt store with a local-key Sealer,
// behind an httptest server, logging at debug level into logs.
type fxStack struct {
	*client
	ws       *workspace.Service
	profiles *profile.Service
	logs     *testlog.Buffer
	base     string // the URL Twilio is told (PublicURL, else the server's)
	st       *bolt.Store
}

func newFlexStack(t *testing.T, publicURL string) *fxStack {
	t.Helper()
	return newFlexStackWith(t, flexStackOptions{publicURL: publicURL})
}

// flexStackOptions vary the test stack: the URL Twilio is told, a wrapper around its
// local-key Sealer (to count its calls), the webhook's clock.
type flexStackOptions struct {
	publicURL string
	sealer    func(secrets.Sealer) secrets.Sealer
	now       func() time.Time
}

// newFlexStackWith is the admin API and the Flex routes on a fresh bolt store with a
// local-key Sealer (as the local stack has), every log line, at debug level, kept in logs.
func newFlexStackWith(t *testing.T, o flexStackOptions) *fxStack {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "up.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var sealer secrets.Sealer
	if sealer, err = localkey.LoadOrCreate(filepath.Join(dir, "secrets.key")); err != nil {
		t.Fatal(err)
	}
	if o.sealer != nil {
		sealer = o.sealer(sealer)
	}
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(opToken), Secrets: sealer})
	profiles := profile.New(st, profile.Options{})
	mux := NewMux()
	tr := tracking.New(st, ws, profiles, tracking.Options{Logger: log})
	MountAdmin(mux, Services{Workspaces: ws, Profiles: profiles, Tracking: tr,
		Uploads: upload.New(st, ws, profiles, nil, upload.Options{Logger: log}),
		Warehouse: warehouse.New(st, ws, profiles, sealer, map[string]warehouse.Opener{"postgres": postgres.Open, "redshift": postgres.OpenRedshift},
			dropQueue{}, warehouse.Options{})}, AdminOptions{Logger: log, PublicURL: o.publicURL})
	MountFlex(mux, ws, profiles, tr, FlexOptions{Logger: log, PublicURL: o.publicURL, Now: o.now})
	srv := httptest.NewServer(Logged(mux, log))
	t.Cleanup(srv.Close)
	base := srv.URL
	if o.publicURL != "" {
		base = strings.TrimRight(o.publicURL, "/") // as Twilio is told in webhook_url
	}
	return &fxStack{client: &client{t: t, base: srv.URL, profiles: profiles}, ws: ws, profiles: profiles, logs: logs, base: base, st: st}
}

// fxTenant is a workspace with its Flex auth token set through the admin API.
type fxTenant struct {
	workspacetest.Tenant
	authToken string
}

func (s *fxStack) tenant(authToken string) fxTenant {
	s.t.Helper()
	tn := fxTenant{Tenant: workspacetest.New(s.t, s.ws, opToken), authToken: authToken}
	if authToken != "" {
		s.want(200, "PUT", "/v1/workspaces/"+tn.ID()+"/flex", tn.Token, map[string]any{"auth_token": authToken})
	}
	return tn
}

func (tn fxTenant) webhookPath() string { return "/v1/flex/" + tn.ID() + "/webhooks" }

// sign returns the X-Twilio-Signature for form posted to fullURL, checked against
// twilio-go's RequestValidator so the test does not rest on flex.Sign alone.
func fxSign(t *testing.T, authToken, fullURL string, form url.Values) string {
	t.Helper()
	sig := flex.Sign(authToken, fullURL, form)
	single := make(map[string]string, len(form))
	for k, v := range form {
		single[k] = v[0]
	}
	if rv := twilio.NewRequestValidator(authToken); !rv.Validate(fullURL, single, sig) {
		t.Fatalf("twilio-go does not accept the signature flex.Sign made for %s", fullURL)
	}
	return sig
}

// post sends form to path with the signature and headers given.
func (s *fxStack) post(path string, form url.Values, sig string, header ...string) response {
	s.t.Helper()
	req, err := http.NewRequest("POST", s.client.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		req.Header.Set("X-Twilio-Signature", sig)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return roundTrip(s.t, req)
}

// deliver posts form to tn's webhook as Twilio would (signed for the public URL) and wants 200.
func (s *fxStack) deliver(tn fxTenant, form url.Values) map[string]any {
	s.t.Helper()
	r := s.post(tn.webhookPath(), form, fxSign(s.t, tn.authToken, s.base+tn.webhookPath(), form))
	if r.status != 200 {
		s.t.Fatalf("webhook: status %d: %s", r.status, r.body)
	}
	return r.json(s.t)
}

const (
	fxTokenA = "0123456789abcdef0123456789abcdef"
	fxTokenB = "fedcba9876543210fedcba9876543210"
)

func (s *fxStack) lookup(tn fxTenant, query string, status int) map[string]any {
	s.t.Helper()
	return s.want(status, "GET", "/v1/flex/"+tn.ID()+"/profiles?"+query, tn.Token, nil)
}

// interactions returns the lookup answer's interactions.
func fxInteractions(t *testing.T, v map[string]any) []map[string]any {
	t.Helper()
	list, ok := v["interactions"].([]any)
	if !ok {
		t.Fatalf("no interactions list: %v", v)
	}
	out := make([]map[string]any, len(list))
	for i, x := range list {
		out[i] = x.(map[string]any)
	}
	return out
}

func TestFlexPutAuthToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, publicURL string }{{"from the request", ""}, {"public URL", "https://api.example.com"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newFlexStack(t, tc.publicURL)
			tn := s.tenant("")
			got := s.want(200, "PUT", "/v1/workspaces/"+tn.ID()+"/flex", tn.Token, map[string]any{"auth_token": fxTokenA})
			if got["configured"] != true || got["updated_at"] == nil {
				t.Errorf("answer %v", got)
			}
			if want := s.base + "/v1/flex/" + tn.ID() + "/webhooks"; got["webhook_url"] != want {
				t.Errorf("webhook_url %v, want %s", got["webhook_url"], want)
			}
		})
	}
}

func TestFlexPutAuthTokenRefused(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	a, b := s.tenant(fxTokenA), s.tenant("")
	path := "/v1/workspaces/" + a.ID() + "/flex"
	for _, tc := range []struct {
		name, token string
		body        any
		status      int
		code, field string
	}{
		{"short", a.Token, map[string]any{"auth_token": fxTokenB[:31]}, 400, "invalid_field", "auth_token"},
		{"upper case", a.Token, map[string]any{"auth_token": strings.ToUpper(fxTokenB)}, 400, "invalid_field", "auth_token"},
		{"not a string", a.Token, `{"auth_token":12}`, 400, "invalid_field", "auth_token"},
		{"unknown field", a.Token, map[string]any{"auth_token": fxTokenB, "account_sid": "AC1"}, 400, "unknown_field", "account_sid"},
		{"another workspace's token", b.Token, map[string]any{"auth_token": fxTokenB}, 403, "forbidden", ""},
		{"the operator", opToken, map[string]any{"auth_token": fxTokenB}, 403, "forbidden", ""},
		{"no token", "", map[string]any{"auth_token": fxTokenB}, 401, "unauthorized", ""},
	} {
		r := s.do("PUT", path, tc.token, tc.body)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
			continue
		}
		if code, field := r.errorCode(t); code != tc.code || field != tc.field {
			t.Errorf("%s: %s on %q, want %s on %q", tc.name, code, field, tc.code, tc.field)
		}
		if bytes.Contains(bytes.ToLower(r.body), []byte(fxTokenB[:31])) {
			t.Errorf("%s: the answer repeats the token: %s", tc.name, r.body)
		}
	}
	// None of them replaced A's token: a callback signed with it still passes.
	s.deliver(a, flextest.Callback("reservation.wrapup", "voice", `{"from":"+14155550199"}`, time.Now()))
}

// The auth token appears in no answer and in no log line, whatever happens to the requests
// that carry it or are verified with it.
func TestFlexTokenNeverShown(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	tn := s.tenant("")
	var answers [][]byte
	answers = append(answers, s.do("PUT", "/v1/workspaces/"+tn.ID()+"/flex", tn.Token, map[string]any{"auth_token": fxTokenA}).body)
	answers = append(answers, s.do("PUT", "/v1/workspaces/"+tn.ID()+"/flex", tn.Token, `{"auth_token":"`+fxTokenA+`x"}`).body)
	answers = append(answers, s.do("PUT", "/v1/workspaces/"+tn.ID()+"/flex", tn.Token, `{"auth_token":"`+fxTokenA+`"`).body)
	tn.authToken = fxTokenA
	form := flextest.Callback("reservation.wrapup", "voice", `{"from":"+14155550198"}`, time.Now())
	answers = append(answers, s.post(tn.webhookPath(), form, fxSign(t, fxTokenA, s.base+tn.webhookPath(), form)).body)
	answers = append(answers, s.post(tn.webhookPath(), form, "bm90IGEgc2lnbmF0dXJl").body)
	answers = append(answers, s.do("GET", "/v1/flex/"+tn.ID()+"/profiles?phone=%2B14155550198", tn.Token, nil).body)
	answers = append(answers, s.do("GET", "/v1/workspaces/"+tn.ID(), tn.Token, nil).body)
	for i, b := range answers {
		if bytes.Contains(b, []byte(fxTokenA)) {
			t.Errorf("answer %d holds the auth token: %s", i, b)
		}
	}
	logs := s.logs.String()
	if !strings.Contains(logs, `"route":"PUT /v1/workspaces/{ws}/flex"`) || !strings.Contains(logs, `"route":"POST /v1/flex/{ws}/webhooks"`) {
		t.Fatalf("the requests were not logged (the check below would prove nothing):\n%s", logs)
	}
	if strings.Contains(logs, fxTokenA) {
		t.Errorf("a log line holds the auth token:\n%s", logs)
	}
}

// Only a callback signed with the workspace's token for exactly this URL and body is
// recorded; every other one is answered 403 invalid_signature and writes nothing.
func TestFlexWebhookSignature(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	a, b := s.tenant(fxTokenA), s.tenant(fxTokenB)
	unset := s.tenant("")
	ctx := context.Background()

	n := 0
	for _, tc := range []struct {
		name string
		// sign returns the path to post to, the form and its signature, for a fresh customer.
		sign func(form url.Values) (path string, sent url.Values, sig string)
		// header adds request headers.
		header []string
		ok     bool
	}{
		{"signed as Twilio signs", func(f url.Values) (string, url.Values, string) {
			return a.webhookPath(), f, fxSign(t, fxTokenA, s.base+a.webhookPath(), f)
		}, nil, true},
		{"query string signed too", func(f url.Values) (string, url.Values, string) {
			p := a.webhookPath() + "?source=taskrouter&x=%20y"
			return p, f, fxSign(t, fxTokenA, s.base+p, f)
		}, nil, true},
		{"https behind a proxy (X-Forwarded-Proto)", func(f url.Values) (string, url.Values, string) {
			return a.webhookPath(), f, fxSign(t, fxTokenA, strings.Replace(s.base, "http://", "https://", 1)+a.webhookPath(), f)
		}, []string{"X-Forwarded-Proto", "https"}, true},
		{"missing signature", func(f url.Values) (string, url.Values, string) {
			return a.webhookPath(), f, ""
		}, nil, false},
		{"garbage signature", func(f url.Values) (string, url.Values, string) {
			return a.webhookPath(), f, "not base64 at all"
		}, nil, false},
		{"signed with another token", func(f url.Values) (string, url.Values, string) {
			return a.webhookPath(), f, fxSign(t, fxTokenB, s.base+a.webhookPath(), f)
		}, nil, false},
		{"tampered parameter", func(f url.Values) (string, url.Values, string) {
			sig := fxSign(t, fxTokenA, s.base+a.webhookPath(), f)
			g := url.Values{}
			for k, v := range f {
				g[k] = v
			}
			g.Set("TaskAge", "96")
			return a.webhookPath(), g, sig
		}, nil, false},
		{"added parameter", func(f url.Values) (string, url.Values, string) {
			sig := fxSign(t, fxTokenA, s.base+a.webhookPath(), f)
			g := url.Values{"Extra": {"1"}}
			for k, v := range f {
				g[k] = v
			}
			return a.webhookPath(), g, sig
		}, nil, false},
		{"tampered query string", func(f url.Values) (string, url.Values, string) {
			return a.webhookPath() + "?x=2", f, fxSign(t, fxTokenA, s.base+a.webhookPath()+"?x=1", f)
		}, nil, false},
		{"signed for another host", func(f url.Values) (string, url.Values, string) {
			return a.webhookPath(), f, fxSign(t, fxTokenA, "https://evil.example.com"+a.webhookPath(), f)
		}, nil, false},
		{"signed for http, forwarded as https", func(f url.Values) (string, url.Values, string) {
			return a.webhookPath(), f, fxSign(t, fxTokenA, s.base+a.webhookPath(), f)
		}, []string{"X-Forwarded-Proto", "https"}, false},
		{"A's valid callback replayed to B", func(f url.Values) (string, url.Values, string) {
			return b.webhookPath(), f, fxSign(t, fxTokenA, s.base+a.webhookPath(), f)
		}, nil, false},
		{"B's URL signed with A's token", func(f url.Values) (string, url.Values, string) {
			return b.webhookPath(), f, fxSign(t, fxTokenA, s.base+b.webhookPath(), f)
		}, nil, false},
		{"workspace without a token", func(f url.Values) (string, url.Values, string) {
			return unset.webhookPath(), f, fxSign(t, fxTokenA, s.base+unset.webhookPath(), f)
		}, nil, false},
		{"unknown workspace", func(f url.Values) (string, url.Values, string) {
			p := "/v1/flex/ws_unknown/webhooks"
			return p, f, fxSign(t, fxTokenA, s.base+p, f)
		}, nil, false},
	} {
		n++
		phone := fmt.Sprintf("+1415555%04d", 1000+n)
		path, form, sig := tc.sign(flextest.Callback("reservation.wrapup", "voice", `{"from":"`+phone+`","direction":"inbound"}`, time.Now()))
		r := s.post(path, form, sig, tc.header...)
		if tc.ok {
			if r.status != 200 || r.json(t)["recorded"] != true {
				t.Errorf("%s: status %d: %s", tc.name, r.status, r.body)
			}
			continue
		}
		if r.status != 403 {
			t.Errorf("%s: status %d, want 403: %s", tc.name, r.status, r.body)
			continue
		}
		if code, _ := r.errorCode(t); code != "invalid_signature" {
			t.Errorf("%s: code %s", tc.name, code)
		}
		// Nothing written, in any workspace: no profile carries the customer's number.
		for _, tn := range []fxTenant{a, b, unset} {
			if _, err := s.profiles.Lookup(ctx, tn.SpaceID(), identity.Identifier{Type: identity.TypeAnonymousID, Value: "flex:" + phone}); err == nil {
				t.Errorf("%s: a profile was written in %s", tc.name, tn.ID())
			}
		}
	}
}

// Every refusal looks the same, so the webhook cannot be used to learn which workspaces exist
// or have Flex set up.
func TestFlexWebhookRefusalsAlike(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	a, unset := s.tenant(fxTokenA), s.tenant("")
	form := flextest.Callback("reservation.wrapup", "voice", `{"from":"+14155550111"}`, time.Now())
	var bodies []string
	for _, path := range []string{a.webhookPath(), unset.webhookPath(), "/v1/flex/ws_nope/webhooks"} {
		r := s.post(path, form, "c2lnbmF0dXJl")
		bodies = append(bodies, fmt.Sprint(r.status, " ", strings.ReplaceAll(string(r.body), unset.ID(), "{ws}")))
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Errorf("refusals differ:\n%s", strings.Join(bodies, "\n"))
	}
}

func TestFlexWebhookPublicURL(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "https://hooks.example.com/")
	tn := s.tenant(fxTokenA)
	form := flextest.Callback("task.completed", "voice", `{"from":"+14155550112"}`, time.Now())
	// Signed for the server's own address: not the URL Twilio was given.
	if r := s.post(tn.webhookPath(), form, fxSign(t, fxTokenA, s.client.base+tn.webhookPath(), form)); r.status != 403 {
		t.Errorf("signed for the internal URL: status %d", r.status)
	}
	if got := s.deliver(tn, form); got["recorded"] != true { // signed for https://hooks.example.com/…
		t.Errorf("signed for the public URL: %v", got)
	}
}

// Engagements over voice, SMS and WhatsApp, inbound and outbound, wrap-up and completion, land
// on the profile of the customer's number (or email) with their channel and direction.
func TestFlexWebhookRecordsOnTheCustomer(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	tn := s.tenant(fxTokenA)
	type engagement struct {
		eventType, taskChannel, attrs string
		query                         string // the agent lookup that finds the customer
		event, channel, direction     string
	}
	var cases []engagement
	n := 0
	for _, ch := range []struct{ name, taskChannel, channelType, prefix string }{
		{"voice", "voice", "", ""}, {"sms", "chat", "sms", ""}, {"whatsapp", "chat", "whatsapp", "whatsapp:"},
	} {
		for _, dir := range []string{"inbound", "outbound"} {
			for _, ev := range []struct{ typ, name string }{
				{"reservation.wrapup", flex.EventEngagementInitiated}, {"task.completed", flex.EventEngagementCompleted},
			} {
				n++
				phone := fmt.Sprintf("+4477009%05d", n)
				addr := "from"
				if dir == "outbound" {
					addr = "to"
				}
				attrs := map[string]any{addr: ch.prefix + phone, "direction": dir}
				if ch.channelType != "" {
					attrs["channelType"] = ch.channelType
				}
				b, _ := json.Marshal(attrs)
				cases = append(cases, engagement{ev.typ, ch.taskChannel, string(b), "phone=" + url.QueryEscape(phone), ev.name, ch.name, dir})
			}
		}
	}
	cases = append(cases, engagement{"reservation.wrapup", "email", `{"from":"Grace.Hopper@Example.com","direction":"inbound"}`,
		"email=grace.hopper%40example.com", flex.EventEngagementInitiated, "email", "inbound"})

	for _, c := range cases {
		name := c.channel + " " + c.direction + " " + c.eventType
		got := s.deliver(tn, flextest.Callback(c.eventType, c.taskChannel, c.attrs, time.Now()))
		if got["recorded"] != true || got["duplicate"] != false {
			t.Errorf("%s: %v", name, got)
			continue
		}
		v := s.lookup(tn, c.query, 200)
		if v["profile_id"] != got["profile_id"] {
			t.Errorf("%s: recorded on %v, the lookup %s finds %v", name, got["profile_id"], c.query, v["profile_id"])
		}
		its := fxInteractions(t, v)
		if len(its) != 1 {
			t.Errorf("%s: %d interactions: %v", name, len(its), its)
			continue
		}
		props := its[0]["properties"].(map[string]any)
		if its[0]["event"] != c.event || props["channelType"] != c.channel || props["direction"] != c.direction {
			t.Errorf("%s: interaction %v", name, its[0])
		}
	}

	// The wrap-up and the completion of one inbound call land on one profile, newest first,
	// and a task the product does not record is acknowledged and dropped.
	t0 := time.Now().Add(-time.Hour)
	wrap := s.deliver(tn, flextest.Callback("reservation.wrapup", "voice", `{"from":"+14155550120","direction":"inbound"}`, t0))
	done := s.deliver(tn, flextest.Callback("task.completed", "voice", `{"from":"+14155550120","direction":"inbound"}`, t0.Add(time.Minute)))
	if wrap["profile_id"] != done["profile_id"] {
		t.Fatalf("one customer, two profiles: %v %v", wrap, done)
	}
	if got := s.deliver(tn, flextest.Callback("task.created", "voice", `{"from":"+14155550121"}`, time.Now())); fmt.Sprint(got) != "map[recorded:false]" {
		t.Errorf("task.created: %v", got)
	}
	s.lookup(tn, "phone=%2B14155550121", 404)
	its := fxInteractions(t, s.lookup(tn, "phone=%2B14155550120", 200))
	if len(its) != 2 || its[0]["event"] != flex.EventEngagementCompleted || its[1]["event"] != flex.EventEngagementInitiated {
		t.Errorf("interactions %v", its)
	}
}

// Twilio retrying a callback (the same form again) is acknowledged as a duplicate and
// changes nothing.
func TestFlexWebhookRetryIsDuplicate(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	tn := s.tenant(fxTokenA)
	form := flextest.Callback("reservation.wrapup", "voice", `{"from":"+14155550130","direction":"inbound"}`, time.Now())
	first := s.deliver(tn, form)
	for range 2 {
		again := s.deliver(tn, form)
		if again["duplicate"] != true || again["profile_id"] != first["profile_id"] || again["recorded"] != true {
			t.Fatalf("retry: %v (first %v)", again, first)
		}
	}
	ctx := context.Background()
	prof, err := s.profiles.Get(ctx, tn.SpaceID(), first["profile_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.profiles.Events(ctx, tn.SpaceID(), prof, time.Now().Add(-profile.EventQueryWindow), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].SourceID != tn.Sources[0].ID {
		t.Fatalf("%d events after retries (want 1 from the Flex source %s): %+v", len(evs), tn.Sources[0].ID, evs)
	}
}

func TestFlexWebhookBadRequests(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	tn := s.tenant(fxTokenA)
	big := flextest.Callback("reservation.wrapup", "voice", `{"from":"+14155550140"}`, time.Now())
	big.Set("Padding", strings.Repeat("x", MaxFlexBodyBytes))
	r := s.post(tn.webhookPath(), big, fxSign(t, fxTokenA, s.base+tn.webhookPath(), big))
	if code, _ := r.errorCode(t); r.status != 413 || code != "body_too_large" {
		t.Errorf("64 KiB body: %d %s", r.status, code)
	}
	// Signed, but no customer to record it on.
	noCustomer := flextest.Callback("reservation.wrapup", "voice", `{"direction":"inbound"}`, time.Now())
	r = s.post(tn.webhookPath(), noCustomer, fxSign(t, fxTokenA, s.base+tn.webhookPath(), noCustomer))
	if code, _ := r.errorCode(t); r.status != 400 || code != "invalid_flex_event" {
		t.Errorf("no customer address: %d %s", r.status, code)
	}
	if r := s.do("GET", tn.webhookPath(), "", nil); r.status != 405 || r.header.Get("Allow") != "POST" {
		t.Errorf("GET webhook: %d Allow %q", r.status, r.header.Get("Allow"))
	}
	if r := s.do("POST", "/v1/flex/"+tn.ID()+"/profiles", tn.Token, nil); r.status != 405 {
		t.Errorf("POST lookup: %d", r.status)
	}
}

// The agent lookup finds a customer by each of its parameters, in the Flex source's space.
func TestFlexLookup(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	tn := s.tenant(fxTokenA)
	ctx := context.Background()
	now := time.Now().UTC()
	// Ada came from a CSV or the website; then she emailed the contact center.
	if _, err := s.profiles.Apply(ctx, tn.SpaceID(), message.Message{Type: message.Identify, MessageID: "fx-ada", UserID: "u-ada", AnonymousID: "anon-ada",
		Traits: map[string]any{"email": "ada@example.com", "name": "Ada"}, Timestamp: now, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	ada := s.deliver(tn, flextest.Callback("reservation.wrapup", "email", `{"from":"ada@example.com","direction":"inbound"}`, now))
	// Bob only ever called.
	bob := s.deliver(tn, flextest.Callback("reservation.wrapup", "voice", `{"from":"+14155550150","direction":"inbound"}`, now))

	for _, tc := range []struct{ query, want string }{
		{"user_id=u-ada", ada["profile_id"].(string)},
		{"anonymous_id=anon-ada", ada["profile_id"].(string)},
		{"email=ada%40example.com", ada["profile_id"].(string)},
		{"email=Ada%40Example.com", ada["profile_id"].(string)},
		{"phone=%2B14155550150", bob["profile_id"].(string)},
		{"phone=+1%20415%20555%200150", bob["profile_id"].(string)}, // '+' not encoded, as curl sends it
		{"phone=%2B1%20(415)%20555-0150", bob["profile_id"].(string)},
		{"anonymous_id=flex:%2B14155550150", bob["profile_id"].(string)},
		{"phone=%2B14155550150&create=true", bob["profile_id"].(string)}, // found: nothing created
	} {
		v := s.lookup(tn, tc.query, 200)
		if v["profile_id"] != tc.want || v["created"] != false {
			t.Errorf("%s: %v, want %s", tc.query, v, tc.want)
		}
	}
	v := s.lookup(tn, "user_id=u-ada", 200)
	traits, _ := v["traits"].(map[string]any)
	if traits["name"] != "Ada" || traits["email"] != "ada@example.com" {
		t.Errorf("traits %v", v["traits"])
	}
	if _, ok := v["computed_traits"].(map[string]any); !ok {
		t.Errorf("computed_traits %v", v["computed_traits"])
	}
	ids := fmt.Sprint(v["identifiers"])
	for _, want := range []string{"map[type:user_id value:u-ada]", "map[type:email value:ada@example.com]", "map[type:anonymous_id value:anon-ada]"} {
		if !strings.Contains(ids, want) {
			t.Errorf("identifiers %s lack %s", ids, want)
		}
	}
	if its := fxInteractions(t, v); len(its) != 1 || its[0]["properties"].(map[string]any)["channelType"] != "email" {
		t.Errorf("interactions %v", its)
	}

	// Nobody.
	r := s.do("GET", "/v1/flex/"+tn.ID()+"/profiles?user_id=nobody", tn.Token, nil)
	if code, _ := r.errorCode(t); r.status != 404 || code != "not_found" {
		t.Errorf("unknown user: %d %s", r.status, code)
	}
}

// A space with a custom "phone" identifier finds customers by it, not only by the anonymous
// id the Flex events carry.
func TestFlexLookupCustomPhoneIdentifier(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	tn := s.tenant(fxTokenA)
	ctx := context.Background()
	set := identity.DefaultSettings()
	set.Identifiers = append(set.Identifiers, identity.Rule{Type: "phone", Custom: true, Keys: []string{"phone"}, Limit: 5, Window: identity.WindowWeekly, Priority: len(set.Identifiers) + 1})
	if _, err := s.profiles.SaveSettings(ctx, tn.SpaceID(), set); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	res, err := s.profiles.Apply(ctx, tn.SpaceID(), message.Message{Type: message.Identify, MessageID: "fx-carol", UserID: "u-carol",
		Traits: map[string]any{"phone": "+14155550160"}, Timestamp: now, ReceivedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	if v := s.lookup(tn, "phone=%2B14155550160", 200); v["profile_id"] != res.ProfileID {
		t.Errorf("by custom phone identifier: %v, want %s", v, res.ProfileID)
	}
	// And her calls land on her profile through it.
	if got := s.deliver(tn, flextest.Callback("reservation.wrapup", "voice", `{"from":"+14155550160"}`, now)); got["profile_id"] != res.ProfileID {
		t.Errorf("call recorded on %v, want %s", got["profile_id"], res.ProfileID)
	}
}

// create=true makes a profile for the identifier (201), found from then on (200); a phone's
// profile is the one that customer's Flex events land on.
func TestFlexLookupCreate(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	tn := s.tenant(fxTokenA)
	for _, tc := range []struct{ query, idType, idValue string }{
		{"phone=%2B14155550170", "anonymous_id", "flex:+14155550170"},
		{"email=dana%40example.com", "email", "dana@example.com"},
		{"user_id=u-erin", "user_id", "u-erin"},
		{"anonymous_id=anon-fay", "anonymous_id", "anon-fay"},
	} {
		s.lookup(tn, tc.query, 404)
		created := s.lookup(tn, tc.query+"&create=true", 201)
		if created["created"] != true || !strings.Contains(fmt.Sprint(created["identifiers"]), "map[type:"+tc.idType+" value:"+tc.idValue+"]") {
			t.Errorf("%s: created %v", tc.query, created)
		}
		if its := fxInteractions(t, created); len(its) != 0 {
			t.Errorf("%s: a blank profile has interactions %v", tc.query, its)
		}
		for _, q := range []string{tc.query, tc.query + "&create=true"} {
			if again := s.lookup(tn, q, 200); again["profile_id"] != created["profile_id"] || again["created"] != false {
				t.Errorf("%s: then %v", q, again)
			}
		}
	}
	phone := s.lookup(tn, "phone=%2B14155550170", 200)
	if traits := phone["traits"].(map[string]any); traits["phone"] != "+14155550170" {
		t.Errorf("phone profile traits %v", traits)
	}
	got := s.deliver(tn, flextest.Callback("reservation.wrapup", "voice", `{"from":"+14155550170","direction":"inbound"}`, time.Now()))
	if got["profile_id"] != phone["profile_id"] {
		t.Errorf("the call landed on %v, not on the created profile %v", got["profile_id"], phone["profile_id"])
	}
}

// Agents opening the same unknown customer at once get one profile.
func TestFlexLookupConcurrentCreate(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	tn := s.tenant(fxTokenA)
	const n = 20
	ids := make([]string, n)
	var createdN atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", s.client.base+"/v1/flex/"+tn.ID()+"/profiles?email=gil%40example.com&create=true", nil)
			req.Header.Set("Authorization", "Bearer "+tn.Token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			var v struct {
				ProfileID string `json:"profile_id"`
				Created   bool   `json:"created"`
			}
			json.NewDecoder(res.Body).Decode(&v)
			if res.StatusCode != 200 && res.StatusCode != 201 || (res.StatusCode == 201) != v.Created {
				t.Errorf("status %d, created %v", res.StatusCode, v.Created)
			}
			if v.Created {
				createdN.Add(1)
			}
			ids[i] = v.ProfileID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("concurrent creates gave profiles %v", ids)
		}
	}
	// One profile, created once: only one of the answers says it made it.
	if n := createdN.Load(); n != 1 {
		t.Errorf("%d of %d concurrent creates answered created:true for one profile, want 1", n, len(ids))
	}
}

func TestFlexLookupBadQueries(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	tn := s.tenant(fxTokenA)
	for _, tc := range []struct {
		query, code, field, says string
	}{
		{"", "invalid_field", "phone|email|user_id|anonymous_id", "none"},
		{"create=true", "invalid_field", "phone|email|user_id|anonymous_id", "none"},
		{"email=a%40b.co&user_id=u1", "invalid_field", "phone|email|user_id|anonymous_id", "email and user_id"},
		{"user_id=u1&user_id=u2", "invalid_field", "user_id", "once"},
		{"email=", "invalid_field", "email", "empty"},
		{"user_id=u1&create=yes", "invalid_field", "create", "true or false"},
		{"phone=call%20me", "invalid_phone", "phone", "letters"},
		{"phone=(415)%20555-0100", "invalid_phone", "phone", "default region"},
		{"phone=%2B44%2020", "invalid_phone", "phone", "too short"},
	} {
		r := s.do("GET", "/v1/flex/"+tn.ID()+"/profiles?"+tc.query, tn.Token, nil)
		if r.status != 400 {
			t.Errorf("%q: status %d: %s", tc.query, r.status, r.body)
			continue
		}
		code, field := r.errorCode(t)
		if code != tc.code || field != tc.field || !strings.Contains(string(r.body), tc.says) {
			t.Errorf("%q: %s", tc.query, r.body)
		}
	}
}

// Workspace A's token can never read workspace B's profiles, and A's auth token can never
// post B's webhooks (TestFlexWebhookSignature).
func TestFlexLookupIsolation(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	a, b := s.tenant(fxTokenA), s.tenant(fxTokenB)
	got := s.deliver(b, flextest.Callback("reservation.wrapup", "voice", `{"from":"+14155550180"}`, time.Now()))
	path := "/v1/flex/" + b.ID() + "/profiles?phone=%2B14155550180"
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"A's token", a.Token, 403},
		{"A's token, create", a.Token, 403},
		{"the operator", opToken, 403},
		{"B's space access token", b.AccessToken(t), 403},
		{"no token", "", 401},
		{"unknown token", "upw_nope", 401},
	} {
		p := path
		if strings.HasSuffix(tc.name, "create") {
			p = "/v1/flex/" + b.ID() + "/profiles?phone=%2B14155550181&create=true"
		}
		r := s.do("GET", p, tc.token, nil)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
		}
		r.errorCode(t)
		if bytes.Contains(r.body, []byte(got["profile_id"].(string))) {
			t.Errorf("%s: the answer names B's profile", tc.name)
		}
	}
	s.lookup(b, "phone=%2B14155550181", 404) // A's create did not happen
	// A's own lookup runs in A's space: B's customer is not there.
	s.lookup(a, "phone=%2B14155550180", 404)
}

// The latest ten interactions, newest first; other events of the profile are not shown.
func TestFlexLookupLatestInteractions(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	tn := s.tenant(fxTokenA)
	t0 := time.Now().Add(-24 * time.Hour).Truncate(time.Millisecond)
	for i := range 12 {
		s.deliver(tn, flextest.Callback("reservation.wrapup", "voice", `{"from":"+14155550190","direction":"inbound"}`, t0.Add(time.Duration(i)*time.Minute)))
	}
	its := fxInteractions(t, s.lookup(tn, "phone=%2B14155550190", 200))
	if len(its) != maxInteractions {
		t.Fatalf("%d interactions, want %d", len(its), maxInteractions)
	}
	for i, it := range its {
		want := t0.Add(time.Duration(11-i) * time.Minute).UTC().Format(time.RFC3339Nano)
		if it["timestamp"] != want {
			t.Errorf("interaction %d at %v, want %s", i, it["timestamp"], want)
		}
	}
}

// A recorded callback shows in the Flex source's debugger like any source's message, and a
// signed callback connects flex-unify-server-source (before, it showed in no debugger and the
// source stayed connected:false).
func TestFlexWebhookInDebuggerAndConnected(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	tn := s.tenant(fxTokenA)
	src := tn.Sources[0]
	srcPath := "/v1/workspaces/" + tn.ID() + "/sources/" + src.ID
	c := s.client
	if got := c.want(200, "GET", srcPath, tn.Token, nil); got["connected"] != false {
		t.Fatalf("the Flex source before any callback: %v", got)
	}
	form := flextest.Callback("task.completed", "sms", `{"from":"+14155550131","direction":"inbound"}`, time.Now())
	rec := s.deliver(tn, form)
	dbg := c.want(200, "GET", srcPath+"/debugger", tn.Token, nil)
	entries, _ := dbg["entries"].([]any)
	if len(entries) != 1 {
		t.Fatalf("debugger of the Flex source: %v", dbg)
	}
	e := entries[0].(map[string]any)
	n, _ := e["normalised"].(map[string]any)
	out, _ := e["outcome"].(map[string]any)
	if e["status"] != "accepted" || n["event"] != "Flex - Engagement Completed" || out["profile_id"] != rec["profile_id"] {
		t.Errorf("debugger entry %v, want the accepted engagement on %v", e, rec["profile_id"])
	}
	if got := c.want(200, "GET", srcPath, tn.Token, nil); got["connected"] != true {
		t.Errorf("the Flex source after a signed callback: %v, want connected", got)
	}
}

// GET …/flex shows the settings without the token: not configured (with the webhook URL to
// give Twilio) before the token is set, configured after.
func TestFlexGetSettings(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "https://up.example.com")
	tn := s.tenant("")
	path := "/v1/workspaces/" + tn.ID() + "/flex"
	hook := "https://up.example.com/v1/flex/" + tn.ID() + "/webhooks"
	if got := s.want(200, "GET", path, tn.Token, nil); got["configured"] != false || got["webhook_url"] != hook {
		t.Errorf("before the token: %v", got)
	}
	s.want(200, "PUT", path, tn.Token, map[string]any{"auth_token": fxTokenA})
	got := s.want(200, "GET", path, tn.Token, nil)
	if got["configured"] != true || got["webhook_url"] != hook || got["updated_at"] == nil {
		t.Errorf("after the token: %v", got)
	}
	for _, v := range got {
		if s, _ := v.(string); strings.Contains(s, fxTokenA) {
			t.Errorf("the token is shown: %v", got)
		}
	}
	other := s.tenant("")
	if r := s.do("GET", path, other.Token, nil); r.status != 403 {
		t.Errorf("another workspace's token: %d", r.status)
	}
}
