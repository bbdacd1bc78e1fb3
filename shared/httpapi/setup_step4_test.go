package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/infra/pgtest"
	"github.com/unifiedprofiles/up/shared/httpapi"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

// GET /v1/me and step 4 (POST …/setup/check), black-box over HTTP against the local stack's
// real services: the tracking connection test, the CSV uploads through the S3 endpoint, the
// warehouse service, the Flex settings.

// GET /v1/me: the workspace of a workspace token, and the envelope's 401/403 for the others.
func TestMe(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	ctx := context.Background()
	inv := e.do("POST", "/v1/beta/accounts", []byte(`{"account_sid":"AC`+strings.Repeat("7", 32)+`"}`), map[string]string{"Authorization": "Bearer " + trOperator})
	if inv.status != 201 {
		t.Fatalf("accept: %d %s", inv.status, inv.raw)
	}
	rotated := workspacetest.New(t, e.stack.Workspaces, trOperator)
	newTok := e.do("POST", "/v1/workspaces/"+rotated.ID()+"/token/rotate", nil, map[string]string{"Authorization": "Bearer " + rotated.Token})
	if newTok.status != 200 {
		t.Fatalf("rotate: %d %s", newTok.status, newTok.raw)
	}
	at, err := e.stack.Workspaces.CreateAccessToken(ctx, e.tenant.Owner, e.ws, e.space)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token string
		status      int
		code, ws    string
	}{
		{"workspace token", e.wsTok, 200, "", e.ws},
		{"another workspace's token names its own", newTok.body["token"].(string), 200, "", rotated.ID()},
		{"no token", "", 401, "unauthorized", ""},
		{"unknown token", "upw_" + strings.Repeat("0", 43), 401, "unauthorized", ""},
		{"rotated token", rotated.Token, 401, "unauthorized", ""},
		{"operator token", trOperator, 403, "forbidden", ""},
		{"invite token", inv.body["invite_token"].(string), 403, "forbidden", ""},
		{"space access token", at.Token, 403, "forbidden", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.token != "" {
				hdr["Authorization"] = "Bearer " + tc.token
			}
			r := e.do("GET", "/v1/me", nil, hdr)
			if r.status != tc.status || errCode(r) != tc.code {
				t.Fatalf("status %d code %q, want %d %q: %s", r.status, errCode(r), tc.status, tc.code, r.raw)
			}
			if tc.status != 200 {
				if msg := r.body["error"].(map[string]any)["message"]; msg == "" {
					t.Fatalf("no message: %s", r.raw)
				}
				return
			}
			if len(r.body) != 2 || r.body["workspace_id"] != tc.ws || r.body["name"] != "Test workspace" {
				t.Fatalf("answer %s, want workspace %s", r.raw, tc.ws)
			}
		})
	}
	// The operator's 403 says why: its token names no workspace.
	r := e.do("GET", "/v1/me", nil, map[string]string{"Authorization": "Bearer " + trOperator})
	if msg := fmt.Sprint(r.body["error"].(map[string]any)["message"]); !strings.Contains(msg, "names no workspace") {
		t.Fatalf("operator's message %q", msg)
	}
	if r := e.do("POST", "/v1/me", nil, map[string]string{"Authorization": "Bearer " + e.wsTok}); r.status != 405 || errCode(r) != "method_not_allowed" {
		t.Fatalf("POST /v1/me: %d %s", r.status, r.raw)
	}
}

// checkItem is one item of the answer; the test also checks that items have exactly the
// contract's keys.
type checkItem struct {
	Kind, ID, Name, Status, Reason, Hint string
}

func (e *trEnv) check(tok string) (ok bool, items map[string]checkItem, order []string) {
	e.t.Helper()
	r := e.do("POST", "/v1/workspaces/"+e.ws+"/setup/check", nil, map[string]string{"Authorization": "Bearer " + tok})
	if r.status != 200 {
		e.t.Fatalf("check: %d %s", r.status, r.raw)
	}
	var raw struct {
		OK    bool             `json:"ok"`
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.raw), &raw); err != nil || len(r.body) != 2 {
		e.t.Fatalf("answer %s", r.raw)
	}
	items = map[string]checkItem{}
	for _, it := range raw.Items {
		keys := make([]string, 0, len(it))
		for k := range it {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if strings.Join(keys, ",") != "hint,id,kind,name,reason,status" {
			e.t.Fatalf("item keys %v: %v", keys, it)
		}
		ci := checkItem{fmt.Sprint(it["kind"]), fmt.Sprint(it["id"]), fmt.Sprint(it["name"]), fmt.Sprint(it["status"]), fmt.Sprint(it["reason"]), fmt.Sprint(it["hint"])}
		items[ci.ID] = ci
		order = append(order, ci.ID)
	}
	return raw.OK, items, order
}

func (e *trEnv) step4() string {
	e.t.Helper()
	r := e.admin("GET", "/v1/workspaces/"+e.ws)
	steps := r.body["setup"].(map[string]any)["steps"].(map[string]any)
	return fmt.Sprint(steps[workspace.StepCheckConfiguration].(map[string]any)["status"])
}

// wantItem fails unless items holds id with that kind and status, and a reason holding
// reason (none for a pass).
func wantItem(t *testing.T, items map[string]checkItem, id, kind, status, reason string) {
	t.Helper()
	it, ok := items[id]
	switch {
	case !ok:
		t.Fatalf("no item %s in %v", id, items)
	case it.Kind != kind || it.Status != status || !strings.Contains(it.Reason, reason):
		t.Fatalf("item %s: %+v, want %s %s %q", id, it, kind, status, reason)
	case status == "pass" && (it.Reason != "" || it.Hint != ""):
		t.Fatalf("a pass with a reason or hint: %+v", it)
	case status == "fail" && (it.Reason == "" || it.Hint == ""):
		t.Fatalf("a fail without a reason or hint: %+v", it)
	}
}

// A workspace walked from nothing to a complete step 4 with the real services, then broken
// again: the check reports it, and step 4 stays complete.
func TestSetupCheckOverHTTP(t *testing.T) {
	t.Parallel()
	e := newStep3Stack(t)
	base := "/v1/workspaces/" + e.ws
	flexSrc, personas := e.tenant.Sources[0], e.tenant.Sources[1]

	// Fresh: no data source, the Flex source silent, Flex not configured.
	// (The two auto-created sources are listed in the order of their ids.)
	ok, items, order := e.check(e.wsTok)
	if ok || len(order) != 4 || order[0] != "data_source" || order[3] != "flex" ||
		!slices.Contains(order, flexSrc.ID) || !slices.Contains(order, personas.ID) {
		t.Fatalf("fresh: ok %v, items %v", ok, order)
	}
	wantItem(t, items, "data_source", "data_source", "fail", "No data source has been added yet")
	wantItem(t, items, flexSrc.ID, "tracking_source", "fail", "No message has arrived yet")
	wantItem(t, items, personas.ID, "personas_source", "skipped", "fed by Unified Profiles itself")
	wantItem(t, items, "flex", "flex", "fail", "no Twilio auth token")
	if s := e.step4(); s != workspace.StatusNotStarted {
		t.Fatalf("step 4 after a failed check: %s", s)
	}

	// CSV chosen: the CSV item replaces the data_source one, and passes once an upload completed.
	if r := e.bearer("PUT", base+"/setup/data-source", `{"kind":"csv"}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	_, items, _ = e.check(e.wsTok)
	if _, ok := items["data_source"]; ok {
		t.Fatalf("data_source item with csv chosen: %v", items)
	}
	wantItem(t, items, "csv", "csv", "fail", "No CSV file has been uploaded yet")
	e.uploadCSV("user_id,email\nu1,ada@example.com\n")

	// A Flex interaction's event through the Flex source's write key.
	if r := e.send(flexSrc.WriteKey, "track", map[string]any{"userId": "u1", "event": "Flex - Engagement Initiated"}); r.status != 200 {
		t.Fatal(r.raw)
	}
	// A warehouse source without a connection fails; disabled, it is skipped.
	pg := e.source("postgres")
	_, items, _ = e.check(e.wsTok)
	wantItem(t, items, "csv", "csv", "pass", "")
	wantItem(t, items, flexSrc.ID, "tracking_source", "pass", "")
	wantItem(t, items, pg.ID, "warehouse_source", "fail", "No warehouse connection has been saved")
	if r := e.bearer("PATCH", base+"/sources/"+pg.ID, `{"enabled":false}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	if r := e.bearer("PUT", base+"/flex", `{"auth_token":"`+strings.Repeat("ab", 16)+`"}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	ok, items, _ = e.check(e.wsTok)
	if !ok {
		t.Fatalf("everything configured, not ok: %v", items)
	}
	wantItem(t, items, pg.ID, "warehouse_source", "skipped", "disabled")
	wantItem(t, items, "flex", "flex", "pass", "")
	if s := e.step4(); s != workspace.StatusComplete {
		t.Fatalf("step 4 after an ok check: %s", s)
	}

	// A website source that has sent no page: the check fails again, step 4 stays complete.
	js := e.source("javascript")
	ok, items, _ = e.check(e.wsTok)
	if ok {
		t.Fatalf("ok with a silent website: %v", items)
	}
	wantItem(t, items, js.ID, "tracking_source", "fail", "No page call has arrived yet")
	if s := e.step4(); s != workspace.StatusComplete {
		t.Fatalf("step 4 after a later failed check: %s", s)
	}
	// Its page arrives: it passes (the same knowledge as its connection test).
	if r := e.send(js.WriteKey, "page", map[string]any{"anonymousId": "a1", "name": "Home"}); r.status != 200 {
		t.Fatal(r.raw)
	}
	ok, items, _ = e.check(e.wsTok)
	wantItem(t, items, js.ID, "tracking_source", "pass", "")
	if !ok {
		t.Fatalf("not ok: %v", items)
	}
	if r := e.admin("GET", base+"/sources/"+js.ID); r.body["connected"] != true {
		t.Fatalf("the passing check did not mark the source connected: %s", r.raw)
	}
}

// Who may run the check: only the workspace's own current token; nothing changes otherwise.
func TestSetupCheckAuth(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	ctx := context.Background()
	other := workspacetest.New(t, e.stack.Workspaces, trOperator)
	at, err := e.stack.Workspaces.CreateAccessToken(ctx, e.tenant.Owner, e.ws, e.space)
	if err != nil {
		t.Fatal(err)
	}
	old := e.wsTok
	r := e.do("POST", "/v1/workspaces/"+e.ws+"/token/rotate", nil, map[string]string{"Authorization": "Bearer " + old})
	if r.status != 200 {
		t.Fatal(r.raw)
	}
	e.wsTok = r.body["token"].(string)
	tests := []struct {
		name, ws, token string
		status          int
		code            string
	}{
		{"no token", e.ws, "", 401, "unauthorized"},
		{"rotated token", e.ws, old, 401, "unauthorized"},
		{"operator", e.ws, trOperator, 403, "forbidden"},
		{"another workspace's token", e.ws, other.Token, 403, "forbidden"},
		{"its token on another workspace", other.ID(), e.wsTok, 403, "forbidden"},
		{"space access token", e.ws, at.Token, 403, "forbidden"},
		{"an unknown workspace", "ws_nope", e.wsTok, 403, "forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.token != "" {
				hdr["Authorization"] = "Bearer " + tc.token
			}
			r := e.do("POST", "/v1/workspaces/"+tc.ws+"/setup/check", nil, hdr)
			if r.status != tc.status || errCode(r) != tc.code {
				t.Fatalf("status %d code %q, want %d %s: %s", r.status, errCode(r), tc.status, tc.code, r.raw)
			}
		})
	}
	if r := e.do("GET", "/v1/workspaces/"+e.ws+"/setup/check", nil, map[string]string{"Authorization": "Bearer " + e.wsTok}); r.status != 405 {
		t.Fatalf("GET: %d %s", r.status, r.raw)
	}
	if ok, _, _ := e.check(e.wsTok); ok {
		t.Fatal("a fresh workspace's check is ok")
	}
}

// Warehouse sources and mappings in step 4 against a real PostgreSQL, the syncs run by the
// stack's own worker: the connection test's failure and pass, a BigQuery connection this
// deployment has no driver for, a mapping never synced, synced, then failed.
func TestSetupCheckWarehouseOverHTTP(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(t,
		"CREATE ROLE retl LOGIN PASSWORD 'right-password'", "GRANT CREATE ON DATABASE postgres TO retl",
		"CREATE TABLE contacts (id integer, email text)", "GRANT SELECT ON contacts TO retl",
		"INSERT INTO contacts SELECT i, 'user' || i || '@example.com' FROM generate_series(1, 3) i",
	)
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	want := func(status int, method, path, body string) map[string]any {
		t.Helper()
		r := e.bearer(method, path, body)
		if r.status != status {
			t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.raw, status)
		}
		return r.body
	}
	pgSrc := e.source("postgres")
	src := "/v1/workspaces/" + e.ws + "/sources/" + pgSrc.ID
	creds := `{"host":%q,"port":5432,"database":"postgres","user":"retl","password":%q,"ssl_mode":"disable"}`
	want(200, "PUT", src+"/warehouse", fmt.Sprintf(creds, pg.Socket, "wrong-password"))
	_, items, _ := e.check(e.wsTok)
	wantItem(t, items, pgSrc.ID, "warehouse_source", "fail", "The connection test failed (auth)")
	want(200, "PUT", src+"/warehouse", fmt.Sprintf(creds, pg.Socket, "right-password"))
	_, items, _ = e.check(e.wsTok)
	wantItem(t, items, pgSrc.ID, "warehouse_source", "pass", "")

	bq := e.source("bigquery")
	_, items, _ = e.check(e.wsTok)
	wantItem(t, items, bq.ID, "warehouse_source", "fail", "No warehouse connection has been saved")
	want(200, "PUT", "/v1/workspaces/"+e.ws+"/sources/"+bq.ID+"/warehouse", `{"project":"p","dataset":"d","credentials_json":"{}"}`)
	_, items, _ = e.check(e.wsTok)
	wantItem(t, items, bq.ID, "warehouse_source", "skipped", "cannot connect to bigquery warehouses yet")

	model := src + "/models/" + want(201, "POST", src+"/models", `{"name":"Contacts","sql":"SELECT id, email FROM contacts","id_column":"id"}`)["id"].(string)
	mp := want(201, "POST", model+"/mappings", `{"identifiers":{"user_id":"id","email":"email"},"schedule":{"manual":true}}`)
	mapID := mp["id"].(string)
	mapping := model + "/mappings/" + mapID
	_, items, _ = e.check(e.wsTok)
	wantItem(t, items, mapID, "mapping", "fail", "The mapping has never synced.")
	if items[mapID].Name != "Contacts" {
		t.Fatalf("mapping item named %q", items[mapID].Name)
	}
	syncNow := func() map[string]any {
		t.Helper()
		id := want(202, "POST", mapping+"/syncs", "")["id"].(string)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			sy := want(200, "GET", mapping+"/syncs/"+id, "")
			if sy["status"] != warehouse.StatusInProgress {
				return sy
			}
			if time.Now().After(deadline) {
				t.Fatalf("sync %s still in progress: %v", id, sy)
			}
		}
	}
	if sy := syncNow(); sy["status"] != warehouse.StatusSucceeded {
		t.Fatalf("sync %v", sy)
	}
	_, items, _ = e.check(e.wsTok)
	wantItem(t, items, mapID, "mapping", "pass", "")

	// A duplicate id fails the next sync, naming it.
	pg.Exec(t, "INSERT INTO contacts VALUES (2, 'again@example.com')")
	if sy := syncNow(); sy["status"] != warehouse.StatusFailed {
		t.Fatalf("sync with a duplicate id %v", sy)
	}
	_, items, _ = e.check(e.wsTok)
	wantItem(t, items, mapID, "mapping", "fail", "The last sync failed: ")
	if !strings.Contains(items[mapID].Reason, "2") {
		t.Fatalf("the failure does not name the id: %+v", items[mapID])
	}
	// Paused, it is skipped.
	want(200, "PATCH", mapping, `{"enabled":false}`)
	_, items, _ = e.check(e.wsTok)
	wantItem(t, items, mapID, "mapping", "skipped", "paused")
}
