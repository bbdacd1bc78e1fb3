package httpapi_test

import (
	"testing"

	"github.com/unifiedprofiles/up/shared/httpapi"
)

// A space can be deleted, which frees the limit of 2: only when no source feeds it (the first
// space never), and its Profile API tokens stop working at once.
func TestDeleteSpaceFreesTheSlot(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	bearer := map[string]string{"Authorization": "Bearer " + e.wsTok}
	spaces := "/v1/workspaces/" + e.ws + "/spaces"
	r := e.do("POST", spaces, []byte(`{"name":"Second"}`), bearer)
	if r.status != 201 {
		t.Fatalf("create a second space: %d %s", r.status, r.raw)
	}
	second := r.body["id"].(string)
	if r := e.do("POST", spaces, []byte(`{"name":"Third"}`), bearer); r.status != 403 || errCode(r) != "entitlement_exceeded" {
		t.Fatalf("a third space: %d %s, want 403 entitlement_exceeded", r.status, r.raw)
	}
	if r := e.do("DELETE", spaces+"/"+e.space, nil, bearer); r.status != 409 || errCode(r) != "space_in_use" {
		t.Errorf("delete the first space: %d %s, want 409 space_in_use", r.status, r.raw)
	}
	src := e.do("POST", "/v1/workspaces/"+e.ws+"/sources", []byte(`{"name":"Feeds second","type":"http","space_id":"`+second+`"}`), bearer)
	if src.status != 201 {
		t.Fatalf("a source for the second space: %d %s", src.status, src.raw)
	}
	if r := e.do("DELETE", spaces+"/"+second, nil, bearer); r.status != 409 || errCode(r) != "space_in_use" {
		t.Errorf("delete a space a source feeds: %d %s, want 409 space_in_use", r.status, r.raw)
	}
	if r := e.do("DELETE", "/v1/workspaces/"+e.ws+"/sources/"+src.body["id"].(string), nil, bearer); r.status != 204 {
		t.Fatalf("delete the source: %d %s", r.status, r.raw)
	}
	tok := e.do("POST", spaces+"/"+second+"/access-tokens", nil, bearer)
	if tok.status != 201 {
		t.Fatalf("access token: %d %s", tok.status, tok.raw)
	}
	pa := "/v1/spaces/" + second + "/collections/users/profiles/user_id:u1/traits"
	basicAuth := map[string]string{"Authorization": "Basic " + basic(tok.body["token"].(string))}
	if r := e.do("GET", pa, nil, basicAuth); r.status != 404 {
		t.Fatalf("Profile API before the deletion: %d %s, want 404 (no such profile)", r.status, r.raw)
	}
	if r := e.do("DELETE", spaces+"/"+second, nil, bearer); r.status != 204 {
		t.Fatalf("delete the second space: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", spaces+"/"+second, nil, bearer); r.status != 404 {
		t.Errorf("GET the deleted space: %d", r.status)
	}
	if r := e.do("GET", pa, nil, basicAuth); r.status != 401 {
		t.Errorf("Profile API with the deleted space's token: %d %s, want 401", r.status, r.raw)
	}
	if r := e.do("POST", spaces, []byte(`{"name":"Third"}`), bearer); r.status != 201 {
		t.Errorf("a new space after the deletion: %d %s, want 201 (the slot is free)", r.status, r.raw)
	}
}
