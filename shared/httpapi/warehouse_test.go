package httpapi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// dropQueue is a sync queue that loses every task: these tests start no sync that would
// need a worker (the local stack's suite runs syncs end to end).
type dropQueue struct{}

func (dropQueue) Send(context.Context, warehouse.Task) error { return nil }

// newWarehouseSource adds a source of type typ to tn's workspace and returns its routes' base.
func (c *client) newWarehouseSource(tn tenant, typ string) string {
	c.t.Helper()
	src := c.want(201, "POST", "/v1/workspaces/"+tn.ws+"/sources", tn.token, map[string]any{"name": "Warehouse " + typ, "type": typ})
	return "/v1/workspaces/" + tn.ws + "/sources/" + src["id"].(string)
}

// Routes and validation that need no warehouse: strict bodies, the source's type, unknown
// models and mappings, a source without a connection, another workspace's token.
func TestWarehouseRoutesRefuse(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	tn, other := c.newTenant(61), c.newTenant(62)
	pg := c.newWarehouseSource(tn, "postgres")
	js := "/v1/workspaces/" + tn.ws + "/sources/" + tn.extraSource // javascript
	model := pg + "/models/mdl_nope"
	mapping := model + "/mappings/map_nope"
	creds := map[string]any{"host": "db.example.com", "database": "d", "user": "u", "password": "p"}
	tests := []struct {
		name, method, path string
		token              string // tn's when empty
		body               any
		status             int
		code, field        string
	}{
		{"invalid JSON", "PUT", pg + "/warehouse", "", `{"host":`, 400, "invalid_json", ""},
		{"unknown credential field", "PUT", pg + "/warehouse", "", `{"host":"h","passwd":"x"}`, 400, "unknown_field", "passwd"},
		{"port as text", "PUT", pg + "/warehouse", "", `{"host":"h","port":"5432"}`, 400, "invalid_field", "port"},
		{"credentials missing the host", "PUT", pg + "/warehouse", "", map[string]any{"database": "d", "user": "u", "password": "p"}, 400, "invalid_field", "host"},
		{"credentials on a javascript source", "PUT", js + "/warehouse", "", creds, 400, "not_a_warehouse", ""},
		{"connection of a javascript source", "GET", js + "/warehouse", "", nil, 400, "not_a_warehouse", ""},
		{"models of a javascript source", "GET", js + "/models", "", nil, 400, "not_a_warehouse", ""},
		{"unknown source", "GET", "/v1/workspaces/" + tn.ws + "/sources/src_nope/warehouse", "", nil, 404, "not_found", ""},
		{"connection before any", "GET", pg + "/warehouse", "", nil, 404, "not_configured", ""},
		{"test before any connection", "POST", pg + "/warehouse/test", "", nil, 404, "not_configured", ""},
		{"preview before any connection", "POST", pg + "/models/preview", "", map[string]any{"sql": "SELECT 1 AS id"}, 404, "not_configured", ""},
		{"preview of a DELETE", "POST", pg + "/models/preview", "", map[string]any{"sql": "DELETE FROM users"}, 400, "invalid_field", "sql"},
		{"preview of two statements", "POST", pg + "/models/preview", "", map[string]any{"sql": "SELECT 1; SELECT 2"}, 400, "invalid_field", "sql"},
		{"preview sql as a number", "POST", pg + "/models/preview", "", `{"sql":5}`, 400, "invalid_field", "sql"},
		{"model without a name", "POST", pg + "/models", "", map[string]any{"sql": "SELECT 1 AS id", "id_column": "id"}, 400, "invalid_field", "name"},
		{"model with an unknown field", "POST", pg + "/models", "", `{"name":"m","sql":"SELECT 1","id_column":"id","query":"x"}`, 400, "unknown_field", "query"},
		{"unknown model", "GET", model, "", nil, 404, "not_found", ""},
		{"patch of an unknown model", "PATCH", model, "", map[string]any{"name": "x"}, 404, "not_found", ""},
		{"delete of an unknown model", "DELETE", model, "", nil, 404, "not_found", ""},
		{"mapping of an unknown model", "POST", model + "/mappings", "", map[string]any{"identifiers": map[string]any{"user_id": "id"}, "schedule": map[string]any{"manual": true}}, 404, "not_found", ""},
		{"mapping created paused", "POST", model + "/mappings", "", `{"enabled":false}`, 400, "unknown_field", "enabled"},
		{"schedule as text", "POST", model + "/mappings", "", `{"schedule":"15m"}`, 400, "invalid_field", "schedule"},
		{"unknown mapping", "GET", mapping, "", nil, 404, "not_found", ""},
		{"pause of an unknown mapping", "PATCH", mapping, "", map[string]any{"enabled": false}, 404, "not_found", ""},
		{"enabled as text", "PATCH", mapping, "", `{"enabled":"no"}`, 400, "invalid_field", "enabled"},
		{"delete of an unknown mapping", "DELETE", mapping, "", nil, 404, "not_found", ""},
		{"sync of an unknown mapping", "POST", mapping + "/syncs", "", nil, 404, "not_found", ""},
		{"syncs of an unknown mapping", "GET", mapping + "/syncs", "", nil, 404, "not_found", ""},
		{"unknown sync", "GET", mapping + "/syncs/sync_nope", "", nil, 404, "not_found", ""},
		{"reset of an unknown mapping", "POST", mapping + "/reset", "", nil, 404, "not_found", ""},
		{"another workspace's token", "GET", pg + "/warehouse", other.token, nil, 403, "forbidden", ""},
		{"another workspace's token on credentials", "PUT", pg + "/warehouse", other.token, creds, 403, "forbidden", ""},
		{"another workspace's token on a model", "POST", pg + "/models", other.token, map[string]any{"name": "m", "sql": "SELECT 1 AS id", "id_column": "id"}, 403, "forbidden", ""},
		{"GET of the preview", "GET", pg + "/models/preview", "", nil, 405, "method_not_allowed", ""},
		{"DELETE of the preview", "DELETE", pg + "/models/preview", "", nil, 405, "method_not_allowed", ""},
		{"PUT of a model", "PUT", model, "", map[string]any{"name": "x"}, 405, "method_not_allowed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each case only reads, or is refused before it writes
			tok := tc.token
			if tok == "" {
				tok = tn.token
			}
			r := c.do(tc.method, tc.path, tok, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			code, field := r.errorCode(t)
			if code != tc.code || field != tc.field {
				t.Fatalf("code %s field %q, want %s %q: %s", code, field, tc.code, tc.field, r.body)
			}
		})
	}
}

// The preview sits beside …/models/{model}: its 405 names its own methods, and a model's
// route still answers for its own.
func TestWarehouseMethodsAllowed(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	tn := c.newTenant(63)
	pg := c.newWarehouseSource(tn, "postgres")
	tests := []struct {
		method, path, allow string
	}{
		{"GET", pg + "/models/preview", "POST"},
		{"PATCH", pg + "/models/preview", "POST"},
		{"POST", pg + "/models/mdl_x", "DELETE, GET, PATCH"},
		{"DELETE", pg + "/warehouse", "GET, PUT"},
		{"GET", pg + "/warehouse/test", "POST"},
		{"PUT", pg + "/models/mdl_x/mappings/map_x/syncs", "GET, POST"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			r := c.do(tc.method, tc.path, tn.token, nil)
			if r.status != 405 || r.header.Get("Allow") != tc.allow {
				t.Fatalf("status %d Allow %q, want 405 %q: %s", r.status, r.header.Get("Allow"), tc.allow, r.body)
			}
		})
	}
	if r := c.do("OPTIONS", pg+"/models/preview", tn.token, nil); r.status >= 400 {
		t.Fatalf("preflight of the preview: %d %s", r.status, r.body)
	}
}

// An admin API assembled without Reverse ETL (a function that does not serve it) says so on
// every warehouse route, after authentication as everywhere.
func TestWarehouseNotConfigured(t *testing.T) {
	t.Parallel()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(opToken), Secrets: testSealer(t)})
	mux := NewMux()
	MountAdmin(mux, Services{Workspaces: ws, Profiles: profile.New(st, profile.Options{})}, AdminOptions{Logger: log})
	srv := httptest.NewServer(Logged(mux, log))
	t.Cleanup(srv.Close)
	c := &client{t: t, base: srv.URL}
	tn := c.newTenant(64)
	pg := c.newWarehouseSource(tn, "postgres")
	for _, rt := range (&admin{}).routes() {
		if !strings.Contains(rt.pattern, "/warehouse") && !strings.Contains(rt.pattern, "/models") {
			continue
		}
		for method := range rt.methods {
			path := strings.NewReplacer("/v1/workspaces/{ws}/sources/{src}", pg, "{model}", "mdl_x", "{mapping}", "map_x", "{sync}", "sync_x").Replace(rt.pattern)
			r := c.do(method, path, tn.token, validBody(rt.pattern, method))
			if code, _ := r.errorCode(t); r.status != http.StatusInternalServerError || code != "warehouse_not_configured" {
				t.Errorf("%s %s: %d %s", method, path, r.status, r.body)
			}
		}
	}
	if r := c.do("GET", pg+"/warehouse", "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("no token: %d %s", r.status, r.body)
	}
}

// Warehouse credentials are sealed at rest and in no answer and no log line: not when saved
// with a failing test, not when read back or tested again, not when refused.
func TestWarehousePasswordNeverShown(t *testing.T) {
	t.Parallel()
	s := newFlexStack(t, "")
	c := s.client
	tn := c.newTenant(65)
	pg := c.newWarehouseSource(tn, "postgres")
	const password = "pw-never-shown-8841"
	// Nothing listens on port 1: the test fails at once, for the network, and the
	// credentials are saved anyway.
	put := c.do("PUT", pg+"/warehouse", tn.token, map[string]any{"host": "127.0.0.1", "port": 1, "database": "analytics",
		"user": "retl", "password": password, "ssl_mode": "disable"})
	if put.status != 200 {
		t.Fatalf("PUT: %d %s", put.status, put.body)
	}
	got := put.json(t)
	test, _ := got["test"].(map[string]any)
	if got["configured"] != true || got["type"] != "postgres" || got["host"] != "127.0.0.1" || got["port"] != float64(1) ||
		got["user"] != "retl" || got["ssl_mode"] != "disable" || test == nil || test["ok"] != false || test["reason"] != warehouse.ReasonNetwork || test["hint"] == "" {
		t.Fatalf("PUT answer %s", put.body)
	}
	get := c.do("GET", pg+"/warehouse", tn.token, nil)
	if g := get.json(t); get.status != 200 || g["configured"] != true || g["database"] != "analytics" {
		t.Fatalf("GET: %d %s", get.status, get.body)
	}
	again := c.do("POST", pg+"/warehouse/test", tn.token, nil)
	if a := again.json(t); again.status != 200 || a["ok"] != false || a["reason"] != warehouse.ReasonNetwork {
		t.Fatalf("test: %d %s", again.status, again.body)
	}
	refused := c.do("PUT", pg+"/warehouse", tn.token, map[string]any{"host": "db/x", "database": "d", "user": "u", "password": password})
	if refused.status != 400 {
		t.Fatalf("refused PUT: %d %s", refused.status, refused.body)
	}
	for _, r := range []response{put, get, again, refused} {
		if bytes.Contains(r.body, []byte(password)) || bytes.Contains(r.body, []byte("password")) {
			t.Errorf("an answer shows the password: %s", r.body)
		}
	}
	items, err := s.st.Query(t.Context(), "WS#"+tn.ws+"#RETL", store.Page{Prefix: "CONN#"})
	if err != nil || len(items) != 1 {
		t.Fatalf("stored connections: %d, %v", len(items), err)
	}
	if bytes.Contains(items[0].Data, []byte(password)) {
		t.Errorf("item %s holds the password in clear", items[0].Key)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, `"route":"PUT /v1/workspaces/{ws}/sources/{src}/warehouse"`) {
		t.Fatalf("the requests were not logged (the check below would prove nothing):\n%s", logs)
	}
	if strings.Contains(logs, password) {
		t.Error("a log line holds the password")
	}
}
