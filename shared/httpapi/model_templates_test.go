package httpapi

import (
	"strings"
	"testing"
)

// A warehouse source offers the Salesforce ready models in its dialect; another source has
// none; the route sits beside …/models/{model} and answers only GET.
func TestModelTemplates(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	tn := c.newTenant(64)
	bases := map[string]string{}
	for typ, quote := range map[string]string{"postgres": `"`, "bigquery": "`"} {
		base := c.newWarehouseSource(tn, typ)
		bases[typ] = base
		r := c.do("GET", base+"/models/templates", tn.token, nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", typ, r.status, r.body)
		}
		ts, _ := r.json(t)["templates"].([]any)
		if len(ts) != 3 {
			t.Fatalf("%s: %s", typ, r.body)
		}
		for i, o := range []string{"Contact", "Lead", "Account"} {
			tm := ts[i].(map[string]any)
			ids, _ := tm["identifiers"].(map[string]any)
			sql, _ := tm["sql"].(string)
			if tm["object"] != o || tm["id_column"] != "id" || ids["salesforce_id"] != "salesforce_id" || tm["name"] == "" ||
				!strings.Contains(sql, quote+"salesforce"+quote+"."+quote+strings.ToLower(o)+quote) || tm["traits"] == nil {
				t.Errorf("%s %s: %v", typ, o, tm)
			}
		}
	}
	pg := bases["postgres"]
	if r := c.do("POST", pg+"/models/templates", tn.token, nil); r.status != 405 || r.header.Get("Allow") != "GET" {
		t.Errorf("POST: %d %q %s", r.status, r.header.Get("Allow"), r.body)
	}
	if r := c.do("GET", pg+"/models/templates", "", nil); r.status != 401 {
		t.Errorf("no token: %d %s", r.status, r.body)
	}
	r := c.do("POST", "/v1/workspaces/"+tn.ws+"/sources", tn.token, map[string]any{"name": "Site", "type": "http"})
	if r.status != 201 {
		t.Fatalf("http source: %d %s", r.status, r.body)
	}
	id, _ := r.json(t)["id"].(string)
	r = c.do("GET", "/v1/workspaces/"+tn.ws+"/sources/"+id+"/models/templates", tn.token, nil)
	if code, _ := r.errorCode(t); code != "not_a_warehouse" {
		t.Errorf("http source: %d %s", r.status, r.body)
	}
}
