package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/salesforce"
	"github.com/unifiedprofiles/up/shared/secrets"
	"github.com/unifiedprofiles/up/shared/secrets/localkey"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/upload"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/workspace"
)

const opToken = "upo_admin_test"

type client struct {
	t        *testing.T
	base     string
	profiles *profile.Service
}

func newServer(t *testing.T) *client {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mux := NewMux()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	profiles := profile.New(st, profile.Options{})
	// Salesforce and the warehouse stay without a Sealer (their "not configured" answers are
	// tested here); the workspaces have one, see testSealer.
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(opToken), Secrets: testSealer(t)})
	sfc := salesforce.NewConnector(st, ws, nil, nil, salesforce.ConnectorOptions{})
	wh := warehouse.New(st, ws, profiles, nil, nil, dropQueue{}, warehouse.Options{})
	MountAdmin(mux, Services{Workspaces: ws, Profiles: profiles, Tracking: tracking.New(st, ws, profiles, tracking.Options{Logger: log}),
		Uploads:    upload.New(st, ws, profiles, nil, upload.Options{Logger: log}),
		Warehouse:  wh,
		Salesforce: sfc, SalesforceSyncs: salesforce.NewRunner(sfc, wh, nil, salesforce.RunnerOptions{})}, AdminOptions{Logger: log})
	MountProfiles(mux, ws, profiles, ProfilesOptions{Logger: log, Limits: st})
	srv := httptest.NewServer(Logged(mux, log))
	t.Cleanup(srv.Close)
	return &client{t: t, base: srv.URL, profiles: profiles}
}

// testSealer is a local-key Sealer for a test's workspace service, as every deployment has
// one: newTenant's storage destination always carries its secret access key, sealed.
func testSealer(t *testing.T) secrets.Sealer {
	t.Helper()
	sealer, err := localkey.LoadOrCreate(filepath.Join(t.TempDir(), "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	return sealer
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %q", r.body)
	}
	return m
}

// errorCode returns the envelope's code, failing when the body is not the envelope.
func (r response) errorCode(t *testing.T) (code, field string) {
	t.Helper()
	var env struct {
		Error struct{ Code, Message, Field string } `json:"error"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil || env.Error.Code == "" || env.Error.Message == "" {
		t.Fatalf("not an error envelope (status %d): %q", r.status, r.body)
	}
	return env.Error.Code, env.Error.Field
}

func (c *client) do(method, path, tok string, body any) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return roundTrip(c.t, req)
}

// roundTrip sends req and reads the whole answer.
func roundTrip(t *testing.T, req *http.Request) response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (c *client) want(status int, method, path, tok string, body any) map[string]any {
	c.t.Helper()
	r := c.do(method, path, tok, body)
	if r.status != status {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, status, r.body)
	}
	if status == http.StatusNoContent {
		return nil
	}
	return r.json(c.t)
}

type tenant struct {
	ws, token, space, source, extraSource, destination string
	secrets                                            []string // strings of this tenant that must never show up for another
}

// newTenant walks the README flow over HTTP: accept, create, choose, add source and destination.
func (c *client) newTenant(n int) tenant {
	c.t.Helper()
	sid := fmt.Sprintf("AC%032x", n)
	inv := c.want(201, "POST", "/v1/beta/accounts", opToken, map[string]any{"account_sid": sid})
	ws := c.want(201, "POST", "/v1/workspaces", inv["invite_token"].(string), map[string]any{"name": fmt.Sprintf("Tenant %d", n), "account_sid": sid})
	tn := tenant{ws: ws["id"].(string), token: ws["token"].(string)}
	tn.space = ws["spaces"].([]any)[0].(map[string]any)["id"].(string)
	src0 := ws["sources"].([]any)[0].(map[string]any)
	tn.source = src0["id"].(string)
	tn.secrets = append(tn.secrets, tn.ws, tn.token, src0["write_key"].(string), fmt.Sprintf("Tenant %d", n))
	c.want(200, "PUT", "/v1/workspaces/"+tn.ws+"/setup/data-source", tn.token, map[string]any{"kind": "website"})
	src := c.want(201, "POST", "/v1/workspaces/"+tn.ws+"/sources", tn.token, map[string]any{"name": "Website", "type": "javascript", "url": "https://t.example"})
	tn.extraSource = src["id"].(string)
	tn.secrets = append(tn.secrets, src["write_key"].(string))
	keyID, secretKey := tenantS3Keys(n)
	d := c.want(201, "POST", "/v1/workspaces/"+tn.ws+"/destinations", tn.token, map[string]any{"name": "Lake", "category": "storage",
		"settings": map[string]any{"bucket": "lake", "access_key_id": keyID, "secret_access_key": secretKey}})
	tn.destination = d["id"].(string)
	tn.secrets = append(tn.secrets, keyID, secretKey)
	return tn
}

// tenantS3Keys are the access keys of tenant n's storage destination, distinct per tenant.
func tenantS3Keys(n int) (keyID, secretKey string) {
	return fmt.Sprintf("AKIATENANT%010d", n), fmt.Sprintf("tenant-%d-secret-access-key", n)
}

func (tn tenant) fill(pattern string) string {
	return strings.NewReplacer("{ws}", tn.ws, "{sp}", tn.space, "{src}", tn.extraSource, "{id}", tn.destination).Replace(pattern)
}

// Workspace A's token on every one of B's routes: 403 or 404, and nothing of B in the answer.
// The walk covers the route table itself, so a new route cannot be forgotten here.
func TestIsolationWalksEveryRoute(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	a, b := c.newTenant(1), c.newTenant(2)
	before := c.want(200, "GET", "/v1/workspaces/"+b.ws, b.token, nil)
	walked := 0
	for _, rt := range (&admin{}).routes() {
		if !strings.Contains(rt.pattern, "{ws}") {
			// A route that names no workspace (/v1/me, creating one, the beta): A's token
			// gets A's answer or a refusal, never anything of B's.
			for method := range rt.methods {
				r := c.do(method, rt.pattern, a.token, validBody(rt.pattern, method))
				for _, s := range b.secrets {
					if bytes.Contains(r.body, []byte(s)) {
						t.Errorf("%s %s with A's token leaked %q", method, rt.pattern, s)
					}
				}
				if rt.pattern == "/v1/me" && (r.status != http.StatusOK || r.json(t)["workspace_id"] != a.ws) {
					t.Errorf("GET /v1/me with A's token: %d %s", r.status, r.body)
				}
				walked++
			}
			continue
		}
		for method := range rt.methods {
			for _, path := range []string{b.fill(rt.pattern), a.fill(strings.ReplaceAll(rt.pattern, "{ws}", a.ws))} {
				if strings.HasPrefix(path, "/v1/workspaces/"+a.ws) {
					// A's own workspace path with B's resource IDs.
					path = strings.NewReplacer(a.space, b.space, a.extraSource, b.extraSource, a.destination, b.destination).Replace(path)
					if path == a.fill(rt.pattern) {
						continue // the route names no resource of B
					}
				}
				r := c.do(method, path, a.token, validBody(rt.pattern, method))
				if r.status != http.StatusForbidden && r.status != http.StatusNotFound {
					t.Errorf("%s %s with A's token: status %d: %s", method, path, r.status, r.body)
				}
				r.errorCode(t)
				for _, s := range b.secrets {
					if bytes.Contains(r.body, []byte(s)) && s != b.ws {
						t.Errorf("%s %s leaked %q", method, path, s)
					}
				}
				walked++
			}
		}
	}
	if walked < 20 {
		t.Fatalf("walked only %d route/path pairs", walked)
	}
	after := c.want(200, "GET", "/v1/workspaces/"+b.ws, b.token, nil)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("B changed under A's requests:\n%v\n%v", before, after)
	}
	srcs := c.want(200, "GET", "/v1/workspaces/"+b.ws+"/sources", b.token, nil)
	if n := len(srcs["sources"].([]any)); n != 3 {
		t.Fatalf("B has %d sources after the walk, want 3", n)
	}
}

// validBody is a body the route would accept, so that a refusal is about the tenant, not the input.
func validBody(pattern, method string) any {
	switch {
	case method == "GET" || method == "DELETE" || strings.HasSuffix(pattern, "/access-tokens") || strings.HasSuffix(pattern, "/token/rotate"):
		return nil
	case strings.HasSuffix(pattern, "/identity"):
		return map[string]any{"identifiers": []any{map[string]any{"type": "user_id", "limit": 1, "window": "ever", "priority": 1}}}
	case strings.HasSuffix(pattern, "/data-source"):
		return map[string]any{"kind": "csv"}
	case strings.HasSuffix(pattern, "/sources"):
		return map[string]any{"name": "Hijack", "type": "http"}
	case strings.HasSuffix(pattern, "/destinations"):
		return map[string]any{"name": "Hijack", "category": "storage", "settings": map[string]any{"bucket": "hijack",
			"access_key_id": "AKIAHIJACKEXAMPLE", "secret_access_key": "hijack-secret-access-key"}}
	case strings.HasSuffix(pattern, "/salesforce"):
		return map[string]any{"environment": "production", "objects": []string{"Contact"}}
	case strings.HasSuffix(pattern, "/warehouse"):
		return map[string]any{"host": "db.example.com", "database": "d", "user": "u", "password": "hijack"}
	case strings.HasSuffix(pattern, "/models/preview"):
		return map[string]any{"sql": "SELECT 1 AS id"}
	case strings.HasSuffix(pattern, "/models"):
		return map[string]any{"name": "Hijack", "sql": "SELECT 1 AS id", "id_column": "id"}
	case strings.HasSuffix(pattern, "/mappings"):
		return map[string]any{"identifiers": map[string]any{"user_id": "id"}, "schedule": map[string]any{"manual": true}}
	case strings.HasSuffix(pattern, "/mappings/{mapping}"):
		return map[string]any{"enabled": false}
	case strings.HasSuffix(pattern, "/warehouse/test") || strings.HasSuffix(pattern, "/syncs") || strings.HasSuffix(pattern, "/reset"):
		return nil
	}
	return map[string]any{"name": "Hijack"}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	tn := c.newTenant(3)
	src := "/v1/workspaces/" + tn.ws + "/sources"
	tests := []struct {
		name, method, path string
		body               any
		status             int
		code, field        string
	}{
		{"invalid JSON", "POST", src, `{"name":`, 400, "invalid_json", ""},
		{"not an object", "POST", src, `[1,2]`, 400, "invalid_json", ""},
		{"empty body", "POST", src, ``, 400, "invalid_json", ""},
		{"two objects", "POST", src, `{"name":"a","type":"http"}{}`, 400, "invalid_json", ""},
		{"missing name", "POST", src, `{"type":"http"}`, 400, "invalid_field", "name"},
		{"wrong type", "POST", src, `{"name":5,"type":"http"}`, 400, "invalid_field", "name"},
		{"name over 100", "POST", src, map[string]any{"name": strings.Repeat("n", 101), "type": "http"}, 400, "invalid_field", "name"},
		{"unknown type", "POST", src, `{"name":"a","type":"ftp"}`, 400, "invalid_field", "type"},
		{"unknown field", "POST", src, `{"name":"a","type":"http","colour":"red"}`, 400, "unknown_field", "colour"},
		{"unknown category", "POST", "/v1/workspaces/" + tn.ws + "/destinations", `{"name":"a","category":"fax"}`, 400, "invalid_field", "category"},
		{"unknown data source", "PUT", "/v1/workspaces/" + tn.ws + "/setup/data-source", `{"kind":"ftp"}`, 400, "invalid_field", "kind"},
		{"bool as string", "PATCH", src + "/" + tn.extraSource, `{"enabled":"yes"}`, 400, "invalid_field", "enabled"},
		{"space name over 100", "POST", "/v1/workspaces/" + tn.ws + "/spaces", map[string]any{"name": strings.Repeat("s", 101)}, 400, "invalid_field", "name"},
		{"body over 1 MiB", "POST", src, `{"name":"` + strings.Repeat("x", MaxBodyBytes) + `","type":"http"}`, 413, "body_too_large", ""},
		{"bad account sid", "POST", "/v1/beta/accounts", `{"account_sid":"12"}`, 400, "invalid_field", "account_sid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tn.token
			if strings.HasPrefix(tc.path, "/v1/beta") {
				tok = opToken
			}
			r := c.do(tc.method, tc.path, tok, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			code, field := r.errorCode(t)
			if code != tc.code || field != tc.field {
				t.Fatalf("code %s field %q, want %s %q", code, field, tc.code, tc.field)
			}
		})
	}
	// Nothing was written by any of them.
	ws := c.want(200, "GET", "/v1/workspaces/"+tn.ws, tn.token, nil)
	usage := ws["usage"].(map[string]any)
	if fmt.Sprint(usage["sources"], usage["destinations"], usage["spaces"]) != "map[limit:4 used:1] map[limit:3 used:1] map[limit:2 used:1]" {
		t.Fatalf("usage changed: %v", usage)
	}
	got := c.want(200, "GET", src+"/"+tn.extraSource, tn.token, nil)
	if got["name"] != "Website" || got["enabled"] != true {
		t.Fatalf("source changed: %v", got)
	}
}

func TestAuthAndRouting(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	tn := c.newTenant(4)
	tests := []struct {
		name, method, path, token string
		status                    int
		code                      string
	}{
		{"no token", "GET", "/v1/workspaces/" + tn.ws, "", 401, "unauthorized"},
		{"unknown token", "GET", "/v1/workspaces/" + tn.ws, "upw_nope", 401, "unauthorized"},
		{"operator on tenant data", "GET", "/v1/workspaces/" + tn.ws, opToken, 403, "forbidden"},
		{"tenant accepting accounts", "POST", "/v1/beta/accounts", tn.token, 403, "forbidden"},
		{"unknown path", "GET", "/v1/nothing", tn.token, 404, "not_found"},
		{"wrong method", "DELETE", "/v1/workspaces/" + tn.ws + "/sources", tn.token, 405, "method_not_allowed"},
		{"unknown source", "GET", "/v1/workspaces/" + tn.ws + "/sources/src_nope", tn.token, 404, "not_found"},
		{"snippet of a salesforce-less type", "GET", "/v1/workspaces/" + tn.ws + "/sources/" + tn.source + "/snippet", tn.token, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(tc.method, tc.path, tc.token, nil)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.code != "" {
				if code, _ := r.errorCode(t); code != tc.code {
					t.Fatalf("code %s, want %s", code, tc.code)
				}
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.status == 405 && r.header.Get("Allow") != "GET, POST" {
				t.Errorf("Allow %q", r.header.Get("Allow"))
			}
		})
	}
}

func TestSourceLifecycle(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	tn := c.newTenant(5)
	base := "/v1/workspaces/" + tn.ws
	sp := c.want(201, "POST", base+"/spaces", tn.token, map[string]any{"name": "EU"})
	src := c.want(201, "POST", base+"/sources", tn.token, map[string]any{"name": "Android", "type": "kotlin", "space_id": sp["id"]})
	if src["space_id"] != sp["id"] || src["auto_created"] != false || !strings.HasPrefix(src["write_key"].(string), "wk_") {
		t.Fatalf("created source %v", src)
	}
	id := src["id"].(string)
	sn := c.want(200, "GET", base+"/sources/"+id+"/snippet", tn.token, nil)
	if !strings.Contains(sn["snippet"].(string), src["write_key"].(string)) || sn["language"] != "kotlin" {
		t.Fatalf("snippet %v", sn)
	}
	up := c.want(200, "PATCH", base+"/sources/"+id, tn.token, map[string]any{"name": "Android app", "enabled": false})
	if up["name"] != "Android app" || up["enabled"] != false || up["write_key"] != src["write_key"] {
		t.Fatalf("patched %v", up)
	}
	c.want(204, "DELETE", base+"/sources/"+id, tn.token, nil)
	c.want(404, "GET", base+"/sources/"+id, tn.token, nil)
	c.want(404, "DELETE", base+"/sources/"+id, tn.token, nil)
	r := c.do("PATCH", base+"/sources/"+tn.source, tn.token, map[string]any{"name": "mine"})
	if code, _ := r.errorCode(t); r.status != 409 || code != "protected_source" {
		t.Fatalf("patch protected: %d %s", r.status, code)
	}
	r = c.do("DELETE", base+"/sources/"+tn.source, tn.token, nil)
	if code, _ := r.errorCode(t); r.status != 409 || code != "protected_source" {
		t.Fatalf("delete protected: %d %s", r.status, code)
	}
	tokr := c.want(201, "POST", base+"/spaces/"+sp["id"].(string)+"/access-tokens", tn.token, nil)
	if !strings.HasPrefix(tokr["token"].(string), "upa_") {
		t.Fatalf("access token %v", tokr)
	}
	// A space access token is not an admin credential.
	c.want(403, "GET", base, tokr["token"].(string), nil)
	ds := c.want(200, "GET", base+"/destinations", tn.token, nil)["destinations"].([]any)
	if len(ds) != 1 {
		t.Fatalf("destinations %v", ds)
	}
	d := c.want(200, "GET", base+"/destinations/"+tn.destination, tn.token, nil)
	if d["category"] != "storage" {
		t.Fatalf("destination %v", d)
	}
	c.want(204, "DELETE", base+"/destinations/"+tn.destination, tn.token, nil)
	c.want(404, "GET", base+"/destinations/"+tn.destination, tn.token, nil)
}
