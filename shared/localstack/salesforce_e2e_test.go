package localstack

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/infra/pgtest"
	"github.com/unifiedprofiles/up/shared/localstack/localstacktest"
	"github.com/unifiedprofiles/up/shared/salesforce"
	sfrest "github.com/unifiedprofiles/up/shared/salesforce/rest"
	"github.com/unifiedprofiles/up/shared/salesforce/sfake"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

// Issue 15's end-to-end acceptance on the local stack: connect a Salesforce source (the fake
// as the login host), its first sync runs by itself (the stack's ticker) and lands the
// contacts in PostgreSQL, a Contacts model and a mapping sync them to profiles, and the
// Profile API shows them.
func TestSalesforceEndToEndOnLocalStack(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(t, "CREATE ROLE retl LOGIN PASSWORD 'right-password'", "GRANT CREATE ON DATABASE postgres TO retl")
	fake := sfake.New(t, sfake.Options{})
	fake.SeedContacts(30)
	jane := fake.Insert("Contact", map[string]any{"FirstName": "Jane", "LastName": "Doe", "Email": "Jane.Doe@Example.COM", "Phone": "(415) 555-0100"})
	gone := fake.Insert("Contact", map[string]any{"FirstName": "Gone", "LastName": "Away", "Email": "gone@example.com"})
	if err := fake.Delete("Contact", gone); err != nil {
		t.Fatal(err)
	}

	clock := testclock.New(time.Now().UTC().Truncate(time.Second))
	var ddb DynamoDB
	ddb.Endpoint, ddb.Table = localstacktest.DynamoDB(t)
	st, err := Open(Config{DataDir: t.TempDir(), DynamoDB: ddb, OperatorTokenHash: token.Hash(testOperator), Now: clock.Now,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Salesforce: &sfrest.OAuthApp{LoginURL: fake.LoginURL(), ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(), HTTP: fake.HTTPClient()}})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(st.Handler)
	t.Cleanup(func() { api.Close(); st.Close() })
	tn := workspacetest.New(t, st.Workspaces, testOperator)
	sfSrc, whSrc := tn.Source(t, "salesforce").ID, tn.Source(t, "postgres").ID

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	call := func(method, url, body string, auth func(*http.Request)) (int, http.Header, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		if auth != nil {
			auth(req)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		json.Unmarshal(b, &out)
		return resp.StatusCode, resp.Header, out
	}
	owner := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tn.Token) }
	want := func(status int, method, path, body string) map[string]any {
		t.Helper()
		got, _, out := call(method, api.URL+path, body, owner)
		if got != status {
			t.Fatalf("%s %s: %d %v, want %d", method, path, got, out, status)
		}
		return out
	}
	// poll calls get until done says so (the stack's background workers run the syncs).
	poll := func(what string, get func() map[string]any, done func(map[string]any) bool) map[string]any {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			out := get()
			if done(out) {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still %v", what, out)
			}
		}
	}

	// The warehouse the records land in, then the Salesforce connection into it.
	wh := "/v1/workspaces/" + tn.ID() + "/sources/" + whSrc
	want(200, "PUT", wh+"/warehouse", fmt.Sprintf(`{"host":%q,"port":5432,"database":"postgres","user":"retl","password":"right-password","ssl_mode":"disable"}`, pg.Socket))
	sf := "/v1/workspaces/" + tn.ID() + "/sources/" + sfSrc + "/salesforce"
	au := want(200, "PUT", sf, `{"objects":["Contact"],"warehouse_source_id":"`+whSrc+`"}`)["authorize_url"].(string)
	status, h, _ := call("GET", au, "", nil)
	if status != 302 {
		t.Fatalf("authorize: %d", status)
	}
	if status, _, out := call("GET", h.Get("Location"), "", nil); status != 200 || out["connected"] != true {
		t.Fatalf("callback: %d %v", status, out)
	}

	// The first sync runs by itself.
	syncs := poll("the first Salesforce sync", func() map[string]any { return want(200, "GET", sf+"/syncs", "") }, func(out map[string]any) bool {
		l, _ := out["syncs"].([]any)
		return len(l) > 0 && l[0].(map[string]any)["status"] != salesforce.RunInProgress
	})
	first := syncs["syncs"].([]any)[0].(map[string]any)
	if first["status"] != salesforce.RunSucceeded || first["trigger"] != salesforce.TriggerFirst || first["records"].(map[string]any)["Contact"] != float64(32) {
		t.Fatalf("first sync: %v", first)
	}
	if c := want(200, "GET", sf, ""); c["last_sync"] == nil || c["next_sync_at"] == nil {
		t.Fatalf("connection after the first sync: %v", c)
	}
	// The contacts are in the warehouse, the deleted one flagged.
	pv := want(200, "POST", wh+"/models/preview", `{"sql":"SELECT count(*) AS n, count(*) FILTER (WHERE is_deleted) AS deleted FROM salesforce.contact"}`)
	if row := pv["rows"].([]any)[0].(map[string]any); fmt.Sprint(row["n"], row["deleted"]) != "32 1" {
		t.Fatalf("warehouse rows: %v", pv)
	}

	// The ready Contacts model the guided setup offers, mapped as it proposes: the Salesforce Id
	// as the custom identifier salesforce_id (added to the space first), email and phone; an
	// interval schedule syncs at once.
	var contacts map[string]any
	for _, tm := range want(200, "GET", wh+"/models/templates", "")["templates"].([]any) {
		if tm := tm.(map[string]any); tm["object"] == "Contact" {
			contacts = tm
		}
	}
	if contacts == nil {
		t.Fatal("no ready Contacts model")
	}
	identity := "/v1/workspaces/" + tn.ID() + "/spaces/" + tn.SpaceID() + "/identity"
	settings := want(200, "GET", identity, "")
	ids := append(settings["identifiers"].([]any), map[string]any{"type": "salesforce_id", "custom": true, "keys": []string{"salesforce_id"}, "limit": 1, "window": "ever", "priority": len(settings["identifiers"].([]any)) + 1})
	body, _ := json.Marshal(map[string]any{"identifiers": ids})
	want(200, "PUT", identity, string(body))
	body, _ = json.Marshal(map[string]any{"name": contacts["name"], "sql": contacts["sql"], "id_column": contacts["id_column"]})
	model := wh + "/models/" + want(201, "POST", wh+"/models", string(body))["id"].(string)
	body, _ = json.Marshal(map[string]any{"identifiers": contacts["identifiers"], "traits": contacts["traits"], "schedule": map[string]any{"interval": "1h"}})
	mp := want(201, "POST", model+"/mappings", string(body))
	running, _ := mp["running_sync_id"].(string)
	if running == "" {
		t.Fatalf("mapping: %v", mp)
	}
	sy := poll("the mapping's first sync", func() map[string]any {
		return want(200, "GET", model+"/mappings/"+mp["id"].(string)+"/syncs/"+running, "")
	}, func(out map[string]any) bool { return out["status"] != warehouse.StatusInProgress })
	if sy["status"] != warehouse.StatusSucceeded || sy["loaded"].(map[string]any)["succeeded"] != float64(31) {
		t.Fatalf("mapping sync: %v", sy)
	}

	// The contacts through the Profile API, with a space access token.
	at := tn.AccessToken(t)
	basic := func(r *http.Request) { r.SetBasicAuth(at, "") }
	profile := api.URL + "/v1/spaces/" + tn.SpaceID() + "/collections/users/profiles/"
	status, _, out := call("GET", profile+"email:jane.doe@example.com/traits", "", basic)
	if traits, _ := out["traits"].(map[string]any); status != 200 || traits["first_name"] != "Jane" {
		t.Fatalf("Jane's traits: %d %v", status, out)
	}
	// The same profile by its Salesforce Id (the custom identifier), with the phone in E.164.
	status, _, out = call("GET", profile+"salesforce_id:"+jane+"/traits", "", basic)
	if traits, _ := out["traits"].(map[string]any); status != 200 || traits["first_name"] != "Jane" || traits["phone"] != "+14155550100" {
		t.Fatalf("Jane by salesforce_id: %d %v", status, out)
	}
	c7 := sfake.Contact(7)
	status, _, out = call("GET", profile+"email:"+c7["Email"].(string)+"/traits", "", basic)
	if traits, _ := out["traits"].(map[string]any); status != 200 || traits["first_name"] != c7["FirstName"] {
		t.Fatalf("contact 7's traits: %d %v", status, out)
	}
	if status, _, out = call("GET", profile+"email:gone@example.com/traits", "", basic); status != 404 {
		t.Fatalf("the deleted contact has a profile: %d %v", status, out)
	}

	// A manual sync: queued (202), refused while queued (409), run by the ticker.
	clock.Add(time.Minute) // sync ids order by time: the manual one is newer
	started := want(202, "POST", sf+"/syncs", "")
	if started["status"] != salesforce.RunInProgress || started["id"] == "" {
		t.Fatalf("POST syncs: %v", started)
	}
	if status, _, out := call("POST", api.URL+sf+"/syncs", "", owner); status != 409 && status != 202 {
		t.Fatalf("a second POST: %d %v", status, out)
	}
	syncs = poll("the manual sync", func() map[string]any { return want(200, "GET", sf+"/syncs", "") }, func(out map[string]any) bool {
		l, _ := out["syncs"].([]any)
		return len(l) > 0 && l[0].(map[string]any)["id"] == started["id"] && l[0].(map[string]any)["status"] != salesforce.RunInProgress
	})
	if l := syncs["syncs"].([]any); len(l) != 2 || l[0].(map[string]any)["status"] != salesforce.RunSucceeded || l[0].(map[string]any)["trigger"] != salesforce.TriggerManual {
		t.Fatalf("after the manual sync: %v", l)
	}
}
