package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/message"
)

func TestIdentitySettingsAPI(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	tn := c.newTenant(40)
	path := "/v1/workspaces/" + tn.ws + "/spaces/" + tn.space + "/identity"
	def := c.want(200, "GET", path, tn.token, nil)
	ids := def["identifiers"].([]any)
	if len(ids) != 11 {
		t.Fatalf("default settings have %d identifiers, want the 11 defaults", len(ids))
	}
	first := ids[0].(map[string]any)
	if first["type"] != "user_id" || first["limit"] != 1.0 || first["window"] != "ever" || first["priority"] != 1.0 {
		t.Fatalf("first default %v", first)
	}
	doc := `{"identifiers":[
		{"type":"user_id","limit":1,"window":"ever","priority":1,"blocked":[{"match":"exact","value":"null"},{"match":"regex","value":"^[0-]*$"}]},
		{"type":"phone","custom":true,"keys":["phone"],"limit":5,"window":"annually","priority":3},
		{"type":"email","limit":5,"window":"weekly","priority":2}]}`
	got := c.want(200, "PUT", path, tn.token, doc)
	if types := got["identifiers"].([]any); len(types) != 3 || types[1].(map[string]any)["type"] != "email" {
		t.Fatalf("saved settings (sorted by priority) %v", got)
	}
	if again := c.want(200, "GET", path, tn.token, nil); len(again["identifiers"].([]any)) != 3 {
		t.Fatalf("GET after PUT: %v", again)
	}
	bad := []struct{ name, body, field string }{
		{"unknown type", `{"identifiers":[{"type":"fax","limit":1,"window":"ever","priority":1}]}`, "identifiers[0].type"},
		{"invalid regex", `{"identifiers":[{"type":"user_id","limit":1,"window":"ever","priority":1,"blocked":[{"match":"regex","value":"(("}]}]}`, "identifiers[0].blocked[0].value"},
		{"limit 0", `{"identifiers":[{"type":"user_id","limit":0,"window":"ever","priority":1}]}`, "identifiers[0].limit"},
		{"limit 1001", `{"identifiers":[{"type":"user_id","limit":1001,"window":"ever","priority":1}]}`, "identifiers[0].limit"},
		{"window", `{"identifiers":[{"type":"user_id","limit":1,"window":"daily","priority":1}]}`, "identifiers[0].window"},
		{"duplicate priority", `{"identifiers":[{"type":"user_id","limit":1,"window":"ever","priority":1},{"type":"email","limit":1,"window":"ever","priority":1}]}`, "identifiers[1].priority"},
	}
	for _, tc := range bad {
		r := c.do("PUT", path, tn.token, tc.body)
		code, field := r.errorCode(t)
		if r.status != 400 || code != "invalid_field" || field != tc.field {
			t.Errorf("%s: %d %s %q, want 400 invalid_field %q", tc.name, r.status, code, field, tc.field)
		}
	}
	if still := c.want(200, "GET", path, tn.token, nil); len(still["identifiers"].([]any)) != 3 {
		t.Fatal("a refused PUT changed the settings")
	}
	c.want(404, "GET", "/v1/workspaces/"+tn.ws+"/spaces/sp_nope/identity", tn.token, nil)
}

func TestProfileExplorer(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	tn := c.newTenant(41)
	ctx := context.Background()
	now := time.Now().UTC()
	for i, m := range []message.Message{
		{Type: message.Identify, MessageID: "m1", UserID: "u1", AnonymousID: "a1", Traits: map[string]any{"email": "jane@x", "plan": "pro"}, Timestamp: now, ReceivedAt: now, SourceID: "src_web"},
		{Type: message.Track, MessageID: "m2", AnonymousID: "a1", Event: "Order Completed", Properties: map[string]any{"total": 42.0}, Timestamp: now.Add(time.Second), ReceivedAt: now},
		{Type: message.Identify, MessageID: "m3", UserID: "u2", Traits: map[string]any{"email": "jane@x"}, Timestamp: now.Add(2 * time.Second), ReceivedAt: now},
	} {
		if _, err := c.profiles.Apply(ctx, tn.space, m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	base := "/v1/workspaces/" + tn.ws + "/spaces/" + tn.space + "/profiles"
	found := c.want(200, "GET", base+"?identifier="+url.QueryEscape("email:jane@x"), tn.token, nil)["profiles"].([]any)
	if len(found) != 1 {
		t.Fatalf("search found %v", found)
	}
	pid := found[0].(map[string]any)["id"].(string)
	if none := c.want(200, "GET", base+"?identifier=email:nobody@x", tn.token, nil)["profiles"].([]any); len(none) != 0 {
		t.Fatalf("unknown identifier found %v", none)
	}
	r := c.do("GET", base, tn.token, nil)
	if _, field := r.errorCode(t); r.status != 400 || field != "identifier" {
		t.Fatalf("search without identifier: %d %s", r.status, r.body)
	}
	view := c.want(200, "GET", base+"/"+pid, tn.token, nil)
	if len(view["identifiers"].([]any)) != 3 || view["traits"].(map[string]any)["plan"] != "pro" {
		t.Fatalf("view %v", view)
	}
	events := view["events"].([]any)
	if len(events) != 2 || events[0].(map[string]any)["event"] != "Order Completed" || events[1].(map[string]any)["type"] != "identify" {
		t.Fatalf("events (newest first) %v", events)
	}
	viol := view["violations"].([]any)
	if len(viol) != 0 {
		t.Fatalf("jane's profile has violations %v", viol)
	}
	// u2 with jane's email was demoted onto a new profile, with a violation that says why.
	u2 := c.want(200, "GET", base+"?identifier=user_id:u2", tn.token, nil)["profiles"].([]any)[0].(map[string]any)["id"].(string)
	v2 := c.want(200, "GET", base+"/"+u2, tn.token, nil)
	if vs := v2["violations"].([]any); len(vs) != 1 || !strings.Contains(vs[0].(map[string]any)["detail"].(string), "email:jane@x") {
		t.Fatalf("violations %v", v2["violations"])
	}
	c.want(404, "GET", base+"/prof_nope", tn.token, nil)
	// Another tenant sees none of it.
	other := c.newTenant(42)
	c.want(403, "GET", base+"/"+pid, other.token, nil)
	c.want(404, "GET", "/v1/workspaces/"+other.ws+"/spaces/"+tn.space+"/profiles/"+pid, other.token, nil)
}

// Three profiles merge into the oldest; through the Profile API every identifier of the
// three, old ones included, answers with the survivor's traits and identifiers.
func TestThreeWayMergeThroughProfileAPI(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	tn := c.newTenant(43)
	at := c.want(201, "POST", "/v1/workspaces/"+tn.ws+"/spaces/"+tn.space+"/access-tokens", tn.token, nil)["token"].(string)
	ctx := context.Background()
	now := time.Now().UTC()
	msgs := []message.Message{
		{Type: message.Track, MessageID: "x1", AnonymousID: "anon-1", Event: "Visit", Timestamp: now, ReceivedAt: now},
		{Type: message.Identify, MessageID: "x2", AnonymousID: "anon-2", Traits: map[string]any{"email": "ada@x", "plan": "free"}, Timestamp: now.Add(time.Second), ReceivedAt: now},
		{Type: message.Identify, MessageID: "x3", UserID: "ada", Traits: map[string]any{"plan": "pro"}, Timestamp: now.Add(2 * time.Second), ReceivedAt: now},
		{Type: message.Identify, MessageID: "x4", UserID: "ada", AnonymousID: "anon-1", Traits: map[string]any{"email": "ada@x"}, Timestamp: now.Add(3 * time.Second), ReceivedAt: now},
	}
	var first string
	for i, m := range msgs {
		res, err := c.profiles.Apply(ctx, tn.space, m)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if i == 0 {
			first = res.ProfileID
		}
		if i == 3 && (res.ProfileID != first || len(res.Merged) != 2) {
			t.Fatalf("the merge: %+v (oldest %s)", res, first)
		}
	}
	get := func(path string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("GET", c.base+path, nil)
		req.SetBasicAuth(at, "")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v %v", path, res.StatusCode, out, err)
		}
		return out
	}
	base := "/v1/spaces/" + tn.space + "/collections/users/profiles/"
	for _, id := range []string{"anonymous_id:anon-1", "anonymous_id:anon-2", "user_id:ada", "email:ada%40x"} {
		traits := get(base + id + "/traits")["traits"].(map[string]any)
		if traits["plan"] != "pro" || traits["email"] != "ada@x" {
			t.Errorf("%s: traits %v", id, traits)
		}
		ids := get(base + id + "/external_ids?limit=10")["data"].([]any)
		if len(ids) != 4 {
			t.Errorf("%s: %d external ids, want the 4 of the merged profile", id, len(ids))
		}
	}
}
