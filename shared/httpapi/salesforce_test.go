package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/salesforce"
	"github.com/unifiedprofiles/up/shared/salesforce/rest"
	"github.com/unifiedprofiles/up/shared/salesforce/sfake"
	"github.com/unifiedprofiles/up/shared/secrets/localkey"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type sfServer struct {
	*client
	st   store.Store
	sf   *salesforce.Connector
	fake *sfake.Fake
	logs *syncBuffer
}

func newSalesforceServer(t *testing.T) *sfServer {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := make([]byte, localkey.KeySize)
	rand.Read(key)
	sealer, _ := localkey.New(key)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(opToken), Secrets: sealer})
	profiles := profile.New(st, profile.Options{})
	fake := sfake.New(t, sfake.Options{})
	app := &rest.OAuthApp{LoginURL: fake.LoginURL(), ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(), HTTP: fake.HTTPClient()}
	sf := salesforce.NewConnector(st, ws, sealer, app, salesforce.ConnectorOptions{})
	mux := NewMux()
	MountAdmin(mux, Services{Workspaces: ws, Profiles: profiles, Tracking: tracking.New(st, ws, profiles, tracking.Options{Logger: log}), Salesforce: sf}, AdminOptions{Logger: log})
	srv := httptest.NewServer(Logged(mux, log))
	t.Cleanup(srv.Close)
	return &sfServer{client: &client{t: t, base: srv.URL, profiles: profiles}, st: st, sf: sf, fake: fake, logs: logs}
}

// sfTenant is a tenant with a salesforce and a postgres source.
func (s *sfServer) sfTenant(n int) (tn tenant, sfSrc, whSrc string) {
	s.t.Helper()
	tn = s.newTenant(n)
	srcs := "/v1/workspaces/" + tn.ws + "/sources"
	sfSrc = s.want(201, "POST", srcs, tn.token, map[string]any{"name": "Salesforce", "type": "salesforce"})["id"].(string)
	whSrc = s.want(201, "POST", srcs, tn.token, map[string]any{"name": "Warehouse", "type": "postgres"})["id"].(string)
	return tn, sfSrc, whSrc
}

// follow sends the browser to the authorize URL on the fake and returns the callback URL it
// is redirected to.
func follow(t *testing.T, authorizeURL string) string {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

func (s *sfServer) get(u string, accept string) response {
	s.t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b.Bytes()}
}

func TestSalesforceConnectOverHTTP(t *testing.T) {
	s := newSalesforceServer(t)
	tn, sfSrc, whSrc := s.sfTenant(1)
	path := "/v1/workspaces/" + tn.ws + "/sources/" + sfSrc + "/salesforce"

	got := s.want(200, "GET", path, tn.token, nil)
	if got["connected"] != false || got["status"] != "not_connected" {
		t.Fatalf("before: %v", got)
	}
	out := s.want(200, "PUT", path, tn.token, map[string]any{"environment": "production", "warehouse_source_id": whSrc})
	au := out["authorize_url"].(string)
	if u, _ := url.Parse(au); u.Query().Get("redirect_uri") != s.base+CallbackPath {
		t.Fatalf("redirect_uri of %s, want %s", au, s.base+CallbackPath)
	}
	cb := follow(t, au)
	if !strings.HasPrefix(cb, s.base+CallbackPath+"?") {
		t.Fatalf("the fake redirected to %s", cb)
	}
	// A browser is sent back to the console.
	r := s.get(cb, "text/html,application/xhtml+xml")
	if r.status != http.StatusFound || r.header.Get("Location") != s.base+"/#/setup/warehouse?salesforce=connected&source_id="+sfSrc {
		t.Fatalf("callback: %d %s %s", r.status, r.header.Get("Location"), r.body)
	}
	// The same callback again: refused, as JSON to a client that does not ask for HTML.
	r = s.get(cb, "")
	if r.status != 400 {
		t.Fatalf("replayed callback: %d %s", r.status, r.body)
	}
	if code, _ := r.errorCode(t); code != "invalid_state" {
		t.Fatalf("replayed callback: %s", code)
	}
	got = s.want(200, "GET", path, tn.token, nil)
	if got["connected"] != true || got["status"] != "connected" || got["username"] != s.fake.Username() ||
		got["instance_url"] != s.fake.InstanceURL() || got["environment"] != "production" || got["warehouse_source_id"] != whSrc ||
		got["next_sync_at"] == nil || len(got["objects"].([]any)) != 3 {
		t.Fatalf("after: %v", got)
	}
	src := s.want(200, "GET", "/v1/workspaces/"+tn.ws+"/sources/"+sfSrc, tn.token, nil)
	if src["connected"] != true {
		t.Fatalf("source not connected: %v", src)
	}

	// The refresh token is in no answer, no stored item and no log line.
	creds, err := s.sf.Credentials(context.Background(), tn.ws, sfSrc)
	if err != nil {
		t.Fatal(err)
	}
	secret := creds.RefreshToken.Reveal()
	items, _ := s.st.Query(context.Background(), "WS#"+tn.ws+"#SF", store.Page{})
	for _, it := range items {
		if bytes.Contains(it.Data, []byte(secret)) {
			t.Fatalf("stored in the clear: %s", it.Data)
		}
	}
	for _, b := range [][]byte{r.body, s.do("GET", path, tn.token, nil).body, []byte(s.logs.String())} {
		if bytes.Contains(b, []byte(secret)) {
			t.Fatalf("the refresh token leaked: %s", b)
		}
	}
	if q, _ := url.Parse(cb); strings.Contains(s.logs.String(), q.Query().Get("code")) || strings.Contains(s.logs.String(), q.Query().Get("state")) {
		t.Fatal("the code or state was logged")
	}

	// Reauthorize shows with a hint.
	if err := s.sf.MarkReauthorize(context.Background(), tn.ws, sfSrc, "invalid_grant: expired access/refresh token"); err != nil {
		t.Fatal(err)
	}
	got = s.want(200, "GET", path, tn.token, nil)
	if got["status"] != "reauthorize" || got["reason"] != "invalid_grant: expired access/refresh token" || !strings.Contains(got["hint"].(string), "connect the source again") {
		t.Fatalf("reauthorize: %v", got)
	}
}

func TestSalesforceCallbackErrors(t *testing.T) {
	s := newSalesforceServer(t)
	tn, sfSrc, whSrc := s.sfTenant(2)
	path := "/v1/workspaces/" + tn.ws + "/sources/" + sfSrc + "/salesforce"
	s.want(200, "PUT", path, tn.token, map[string]any{"warehouse_source_id": whSrc})

	// The user declined: to the console with the reason; nothing stored.
	r := s.get(s.base+CallbackPath+"?error=access_denied&error_description=end-user+denied+authorization&state=x", "text/html")
	loc, _ := url.Parse(r.header.Get("Location"))
	if r.status != 302 || !strings.HasPrefix(loc.Fragment, "/setup/warehouse?") {
		t.Fatalf("declined: %d %s", r.status, r.header.Get("Location"))
	}
	fq, _ := url.ParseQuery(strings.SplitN(loc.Fragment, "?", 2)[1])
	if fq.Get("salesforce") != "error" || fq.Get("reason") != "salesforce_access_denied" || !strings.Contains(fq.Get("message"), "end-user denied authorization") {
		t.Fatalf("declined: %v", fq)
	}
	r = s.get(s.base+CallbackPath+"?error=access_denied", "")
	if code, _ := r.errorCode(t); r.status != 400 || code != "salesforce_access_denied" {
		t.Fatalf("declined, JSON: %d %s", r.status, r.body)
	}
	// Unknown state, with a browser and without.
	r = s.get(s.base+CallbackPath+"?code=c&state=nope", "text/html")
	if !strings.Contains(r.header.Get("Location"), "reason=invalid_state") {
		t.Fatalf("unknown state: %d %s", r.status, r.header.Get("Location"))
	}
	r = s.get(s.base+CallbackPath+"?code=c&state=nope", "application/json")
	if code, _ := r.errorCode(t); r.status != 400 || code != "invalid_state" {
		t.Fatalf("unknown state, JSON: %d %s", r.status, r.body)
	}
	if got := s.want(200, "GET", path, tn.token, nil); got["connected"] != false {
		t.Fatalf("connected: %v", got)
	}
	// Wrong types name the field.
	for _, tc := range []struct {
		path  string
		body  map[string]any
		code  string
		field string
	}{
		{"/v1/workspaces/" + tn.ws + "/sources/" + whSrc + "/salesforce", map[string]any{"warehouse_source_id": whSrc}, "not_salesforce", "source_id"},
		{path, map[string]any{"warehouse_source_id": tn.extraSource}, "invalid_field", "warehouse_source_id"},
		{path, map[string]any{"warehouse_source_id": whSrc, "environment": "dev"}, "invalid_field", "environment"},
		{path, map[string]any{"warehouse_source_id": whSrc, "objects": []string{"Bad Name"}}, "invalid_field", "objects"},
	} {
		r := s.do("PUT", tc.path, tn.token, tc.body)
		if code, field := r.errorCode(t); r.status != 400 || code != tc.code || field != tc.field {
			t.Fatalf("PUT %v: %d %s", tc.body, r.status, r.body)
		}
	}
	// Another workspace's token: 403 on both routes (the isolation walk covers every route too).
	other := s.newTenant(3)
	for _, m := range []string{"GET", "PUT"} {
		if r := s.do(m, path, other.token, map[string]any{"warehouse_source_id": whSrc}); r.status != 403 {
			t.Fatalf("%s with another workspace's token: %d %s", m, r.status, r.body)
		}
	}
}

func TestSalesforceNotConfigured(t *testing.T) {
	c := newServer(t) // its connector has no connected app
	tn := c.newTenant(4)
	src := c.want(201, "POST", "/v1/workspaces/"+tn.ws+"/sources", tn.token, map[string]any{"name": "SF", "type": "salesforce"})["id"].(string)
	wh := c.want(201, "POST", "/v1/workspaces/"+tn.ws+"/sources", tn.token, map[string]any{"name": "PG", "type": "postgres"})["id"].(string)
	r := c.do("PUT", "/v1/workspaces/"+tn.ws+"/sources/"+src+"/salesforce", tn.token, map[string]any{"warehouse_source_id": wh})
	if code, _ := r.errorCode(t); r.status != 400 || code != "salesforce_not_configured" || !strings.Contains(string(r.body), "not configured on this deployment") {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r = c.do("GET", CallbackPath+"?code=a&state=b", "", nil)
	if code, _ := r.errorCode(t); r.status != 400 || code != "salesforce_not_configured" {
		t.Fatalf("callback: %d %s", r.status, r.body)
	}
}
