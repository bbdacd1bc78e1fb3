package httpapi

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// The JSON of a destination over HTTP: POST with a type (or without, for the category's),
// sources and settings per type; GET and the list answer the same object; PATCH renames,
// pauses and changes the sources, and refuses any change of configuration.
func TestDestinationConfigOverHTTP(t *testing.T) {
	t.Parallel()
	c, _, _ := newSealedServer(t)
	tn := c.newTenant(71)
	base := "/v1/workspaces/" + tn.ws + "/destinations"
	// newTenant made the storage destination "Lake"; its answer now has the new fields.
	lake := c.want(200, "GET", base+"/"+tn.destination, tn.token, nil)
	wantKeys := []string{"category", "created_at", "enabled", "id", "name", "settings", "source_ids", "type"}
	if keys := slices.Sorted(maps.Keys(lake)); !slices.Equal(keys, wantKeys) {
		t.Fatalf("keys %v, want %v", keys, wantKeys)
	}
	keyID, _ := tenantS3Keys(71)
	if lake["type"] != "s3" || lake["enabled"] != true || fmt.Sprint(lake["source_ids"]) != "[]" ||
		fmt.Sprint(lake["settings"]) != "map[access_key_id:"+keyID+" bucket:lake secret_access_key:set]" {
		t.Fatalf("lake %v", lake)
	}
	if !strings.Contains(string(c.do("GET", base+"/"+tn.destination, tn.token, nil).body), `"source_ids":[]`) {
		t.Fatalf("source_ids is not an empty array")
	}

	hook := c.want(201, "POST", base, tn.token, map[string]any{"name": "Hook", "category": "event_streams", "type": "webhook",
		"source_ids": []string{tn.extraSource}, "enabled": false,
		"settings": map[string]any{"url": "https://hooks.example.com/in", "secret": "hmac-0451", "batch_size": 25,
			"headers": map[string]any{"Authorization": "Bearer hdr-secret-0452"}}})
	if hook["type"] != "webhook" || hook["enabled"] != false || fmt.Sprint(hook["source_ids"]) != fmt.Sprint([]any{tn.extraSource}) ||
		fmt.Sprint(hook["settings"]) != "map[batch_size:25 headers:set secret:set url:https://hooks.example.com/in]" {
		t.Fatalf("hook %v", hook)
	}
	id := hook["id"].(string)
	if got := c.want(200, "GET", base+"/"+id, tn.token, nil); fmt.Sprint(got) != fmt.Sprint(hook) {
		t.Errorf("GET %v\nPOST %v", got, hook)
	}
	list := c.want(200, "GET", base, tn.token, nil)["destinations"].([]any)
	if len(list) != 2 || fmt.Sprint(list[1]) != fmt.Sprint(hook) {
		t.Errorf("list %v", list)
	}

	// PATCH: resume, rename, every source again, a source list; each answers the whole object.
	got := c.want(200, "PATCH", base+"/"+id, tn.token, map[string]any{"enabled": true})
	if got["enabled"] != true || got["name"] != "Hook" || fmt.Sprint(got["settings"]) != fmt.Sprint(hook["settings"]) {
		t.Errorf("resume %v", got)
	}
	got = c.want(200, "PATCH", base+"/"+id, tn.token, map[string]any{"name": "Hook 2", "source_ids": []string{}})
	if got["name"] != "Hook 2" || fmt.Sprint(got["source_ids"]) != "[]" || got["enabled"] != true {
		t.Errorf("rename %v", got)
	}
	got = c.want(200, "PATCH", base+"/"+id, tn.token, map[string]any{"source_ids": []string{tn.source, tn.extraSource}, "enabled": false})
	if fmt.Sprint(got["source_ids"]) != fmt.Sprint([]any{tn.source, tn.extraSource}) || got["enabled"] != false {
		t.Errorf("sources %v", got)
	}
	if g := c.want(200, "GET", base+"/"+id, tn.token, nil); fmt.Sprint(g) != fmt.Sprint(got) {
		t.Errorf("GET after PATCH %v, want %v", g, got)
	}

	// An s3 destination's settings with its keys, and without them.
	s3 := func(settings map[string]any) map[string]any {
		out := map[string]any{"access_key_id": "AKIAEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"}
		maps.Copy(out, settings)
		return out
	}
	refused := []struct {
		name, method, path string
		body               any
		status             int
		code, field        string
	}{
		{"wrong type", "POST", base, map[string]any{"name": "X", "category": "storage", "type": "webhook", "settings": s3(map[string]any{"bucket": "lake"})}, 400, "invalid_field", "type"},
		{"bad bucket", "POST", base, map[string]any{"name": "X", "category": "storage", "settings": s3(map[string]any{"bucket": "Lake"})}, 400, "invalid_field", "settings.bucket"},
		// A storage destination always carries its own keys: never the deployment's role.
		{"s3 without keys", "POST", base, map[string]any{"name": "X", "category": "storage", "settings": map[string]any{"bucket": "lake"}}, 400, "invalid_field", "settings.access_key_id"},
		{"s3 key id only", "POST", base, map[string]any{"name": "X", "category": "storage", "settings": map[string]any{"bucket": "lake", "access_key_id": "AKIAEXAMPLE"}}, 400, "invalid_field", "settings.secret_access_key"},
		{"s3 secret only", "POST", base, map[string]any{"name": "X", "category": "storage", "settings": map[string]any{"bucket": "lake", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"}}, 400, "invalid_field", "settings.access_key_id"},
		{"s3 null keys", "POST", base, `{"name":"X","category":"storage","settings":{"bucket":"lake","access_key_id":null,"secret_access_key":""}}`, 400, "invalid_field", "settings.access_key_id"},
		{"no url", "POST", base, map[string]any{"name": "X", "category": "analytics"}, 400, "invalid_field", "settings.url"},
		{"metadata url", "POST", base, map[string]any{"name": "X", "category": "analytics", "settings": map[string]any{"url": "http://169.254.169.254/"}}, 400, "invalid_field", "settings.url"},
		{"unknown setting", "POST", base, map[string]any{"name": "X", "category": "analytics", "settings": map[string]any{"url": "https://h.example.com", "user": "u"}}, 400, "invalid_field", "settings.user"},
		{"unknown source", "POST", base, map[string]any{"name": "X", "category": "storage", "settings": s3(map[string]any{"bucket": "lake"}), "source_ids": []string{"src_nope"}}, 400, "invalid_field", "source_ids"},
		{"source_ids not a list", "POST", base, `{"name":"X","category":"storage","settings":{"bucket":"lake","access_key_id":"AKIAEXAMPLE","secret_access_key":"k"},"source_ids":"all"}`, 400, "invalid_field", "source_ids"},
		{"unknown space", "POST", base, map[string]any{"name": "X", "category": "segment_profiles", "settings": map[string]any{"space_id": "sp_nope"}}, 400, "invalid_field", "settings.space_id"},
		{"forward from every source", "POST", base, map[string]any{"name": "X", "category": "segment_connections", "settings": map[string]any{"source_id": tn.extraSource}}, 400, "invalid_field", "source_ids"},
		{"patch settings", "PATCH", base + "/" + id, map[string]any{"settings": map[string]any{"url": "https://other.example.com"}}, 400, "invalid_field", "settings"},
		{"patch type", "PATCH", base + "/" + id, map[string]any{"type": "s3"}, 400, "invalid_field", "type"},
		{"patch category", "PATCH", base + "/" + id, map[string]any{"name": "Y", "category": "analytics"}, 400, "invalid_field", "category"},
		{"patch unknown field", "PATCH", base + "/" + id, map[string]any{"colour": "red"}, 400, "unknown_field", "colour"},
		{"patch enabled as text", "PATCH", base + "/" + id, `{"enabled":"no"}`, 400, "invalid_field", "enabled"},
		{"patch empty name", "PATCH", base + "/" + id, map[string]any{"name": ""}, 400, "invalid_field", "name"},
		{"patch unknown source", "PATCH", base + "/" + id, map[string]any{"source_ids": []string{"src_nope"}}, 400, "invalid_field", "source_ids"},
		{"patch twice the same source", "PATCH", base + "/" + id, map[string]any{"source_ids": []string{tn.source, tn.source}}, 400, "invalid_field", "source_ids"},
		{"patch unknown destination", "PATCH", base + "/dst_nope", map[string]any{"enabled": false}, 404, "not_found", ""},
	}
	for _, tc := range refused {
		r := c.do(tc.method, tc.path, tn.token, tc.body)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
			continue
		}
		if code, field := r.errorCode(t); code != tc.code || field != tc.field {
			t.Errorf("%s: %s %q, want %s %q", tc.name, code, field, tc.code, tc.field)
		}
	}
	r := c.do("PATCH", base+"/"+id, tn.token, map[string]any{"settings": map[string]any{}})
	if !strings.Contains(string(r.body), "delete the destination and create it again") {
		t.Errorf("the refusal does not say what to do: %s", r.body)
	}
	if g := c.want(200, "GET", base+"/"+id, tn.token, nil); fmt.Sprint(g) != fmt.Sprint(got) {
		t.Errorf("a refused request changed it: %v, want %v", g, got)
	}

	// The two Segment types, each with the shape of its settings.
	other := c.want(201, "POST", "/v1/workspaces/"+tn.ws+"/spaces", tn.token, map[string]any{"name": "Second"})
	prof := c.want(201, "POST", base, tn.token, map[string]any{"name": "Profiles", "category": "segment_profiles", "settings": map[string]any{"space_id": other["id"]}})
	if prof["type"] != "segment_profiles" || fmt.Sprint(prof["settings"]) != fmt.Sprint(map[string]any{"space_id": other["id"]}) {
		t.Errorf("segment_profiles %v", prof)
	}
	r = c.do("POST", base, tn.token, map[string]any{"name": "Fwd", "category": "segment_connections", "settings": map[string]any{"source_id": tn.extraSource}, "source_ids": []string{tn.source}})
	if code, _ := r.errorCode(t); r.status != 403 || code != "entitlement_exceeded" {
		t.Fatalf("a fourth destination: %d %s", r.status, r.body)
	}
	c.want(204, "DELETE", base+"/"+prof["id"].(string), tn.token, nil)
	fwd := c.want(201, "POST", base, tn.token, map[string]any{"name": "Fwd", "category": "segment_connections", "type": "segment_connections",
		"settings": map[string]any{"source_id": tn.extraSource}, "source_ids": []string{tn.source}})
	if fwd["type"] != "segment_connections" || fmt.Sprint(fwd["source_ids"]) != fmt.Sprint([]any{tn.source}) {
		t.Errorf("segment_connections %v", fwd)
	}
	r = c.do("PATCH", base+"/"+fwd["id"].(string), tn.token, map[string]any{"source_ids": []string{tn.source, tn.extraSource}})
	if code, field := r.errorCode(t); r.status != 400 || code != "invalid_field" || field != "source_ids" {
		t.Errorf("forwarding into itself: %d %s", r.status, r.body)
	}
}

// Another workspace's token cannot PATCH a destination, through either workspace's path.
func TestDestinationPatchIsolation(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	a, b := c.newTenant(72), c.newTenant(73)
	path := "/v1/workspaces/" + b.ws + "/destinations/" + b.destination
	before := c.want(200, "GET", path, b.token, nil)
	if r := c.do("PATCH", path, a.token, map[string]any{"enabled": false, "name": "Hijack"}); r.status != 403 {
		t.Errorf("A's token on B's path: %d %s", r.status, r.body)
	} else if code, _ := r.errorCode(t); code != "forbidden" {
		t.Errorf("code %s", code)
	}
	if r := c.do("PATCH", "/v1/workspaces/"+a.ws+"/destinations/"+b.destination, a.token, map[string]any{"enabled": false}); r.status != 404 {
		t.Errorf("B's destination under A's path: %d %s", r.status, r.body)
	}
	if after := c.want(200, "GET", path, b.token, nil); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("B's destination changed: %v, was %v", after, before)
	}
}
