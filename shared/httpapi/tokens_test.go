package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
)

// profileRead calls the Profile API with tok as the Basic user and returns the status.
func (c *client) profileRead(space, tok string) int {
	c.t.Helper()
	req, err := http.NewRequest("GET", c.base+"/v1/spaces/"+space+"/collections/users/profiles/user_id:nobody/traits", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.SetBasicAuth(tok, "")
	return roundTrip(c.t, req).status
}

// POST …/token/rotate answers a new workspace token; the old one stops working at once, on
// every route.
func TestTokenRotate(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	tn := c.newTenant(41)
	ws := "/v1/workspaces/" + tn.ws
	got := c.want(200, "POST", ws+"/token/rotate", tn.token, nil)
	next, _ := got["token"].(string)
	if len(got) != 1 || !strings.HasPrefix(next, "upw_") || next == tn.token {
		t.Fatalf("rotate answered %v", got)
	}
	for _, path := range []string{ws, ws + "/sources", ws + "/destinations"} {
		if r := c.do("GET", path, tn.token, nil); r.status != 401 {
			t.Errorf("GET %s with the old token: %d, want 401", path, r.status)
		}
		c.want(200, "GET", path, next, nil)
	}
	// Rotating with the old token is refused; with the new one it works.
	if r := c.do("POST", ws+"/token/rotate", tn.token, nil); r.status != 401 {
		t.Errorf("rotate with the old token: %d", r.status)
	}
	third := c.want(200, "POST", ws+"/token/rotate", next, nil)["token"].(string)
	c.want(401, "GET", ws, next, nil)
	c.want(200, "GET", ws, third, nil)
}

// Two rotations at once leave exactly one valid token.
func TestTokenRotateConcurrently(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	tn := c.newTenant(42)
	ws := "/v1/workspaces/" + tn.ws
	const n = 2
	res := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { res[i] = c.do("POST", ws+"/token/rotate", tn.token, nil) })
	}
	wg.Wait()
	candidates := []string{tn.token}
	var statuses []int
	for _, r := range res {
		statuses = append(statuses, r.status)
		if r.status == 200 {
			candidates = append(candidates, r.json(t)["token"].(string))
		}
	}
	slices.Sort(statuses)
	if !slices.Equal(statuses, []int{200, 401}) {
		t.Fatalf("statuses %v, want one 200 and one 401", statuses)
	}
	valid := 0
	for _, tok := range candidates {
		if c.do("GET", ws, tok, nil).status == 200 {
			valid++
		}
	}
	if valid != 1 {
		t.Fatalf("%d valid workspace tokens after two concurrent rotations", valid)
	}
}

// GET …/access-tokens lists ids and creation times, never the tokens; DELETE revokes one, and
// the Profile API refuses it at once (401) while the others keep working.
func TestAccessTokensListAndRevoke(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	tn := c.newTenant(43)
	base := "/v1/workspaces/" + tn.ws + "/spaces/" + tn.space + "/access-tokens"
	var ids, toks []string
	for range 2 {
		got := c.want(201, "POST", base, tn.token, nil)
		id, _ := got["id"].(string)
		if id == "" || got["created_at"] == nil || got["space_id"] != tn.space {
			t.Fatalf("create answered %v", got)
		}
		ids, toks = append(ids, id), append(toks, got["token"].(string))
	}
	for _, tok := range toks {
		if s := c.profileRead(tn.space, tok); s != 404 {
			t.Fatalf("Profile API with a fresh token: %d, want 404 (no such profile)", s)
		}
	}
	r := c.do("GET", base, tn.token, nil)
	if r.status != 200 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	list, _ := r.json(t)["access_tokens"].([]any)
	if len(list) != 2 {
		t.Fatalf("list %s", r.body)
	}
	for i, x := range list {
		e := x.(map[string]any)
		if len(e) != 2 || e["id"] != ids[i] || e["created_at"] == nil {
			t.Errorf("entry %d: %v, want {id: %s, created_at}", i, e, ids[i])
		}
	}
	for _, tok := range toks {
		if strings.Contains(string(r.body), tok) {
			t.Errorf("the list holds a token: %s", r.body)
		}
	}

	c.want(204, "DELETE", base+"/"+ids[0], tn.token, nil)
	if s := c.profileRead(tn.space, toks[0]); s != 401 {
		t.Errorf("Profile API with the revoked token: %d, want 401", s)
	}
	if s := c.profileRead(tn.space, toks[1]); s != 404 {
		t.Errorf("Profile API with the other token: %d, want 404", s)
	}
	list, _ = c.want(200, "GET", base, tn.token, nil)["access_tokens"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != ids[1] {
		t.Errorf("list after revoking: %v", list)
	}
	if code, _ := c.do("DELETE", base+"/"+ids[0], tn.token, nil).errorCode(t); code != "not_found" {
		t.Errorf("revoking twice: %s", code)
	}
	if r := c.do("GET", "/v1/workspaces/"+tn.ws+"/spaces/sp_nope/access-tokens", tn.token, nil); r.status != 404 {
		t.Errorf("list of an unknown space: %d", r.status)
	}
}

// Another workspace's token, the operator and a space token get 403 on every token route,
// and change nothing.
func TestTokenRoutesRefuseOthers(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	a, b := c.newTenant(44), c.newTenant(45)
	base := "/v1/workspaces/" + a.ws
	at := c.want(201, "POST", base+"/spaces/"+a.space+"/access-tokens", a.token, nil)
	atID, _ := at["id"].(string)
	atTok, _ := at["token"].(string)
	if atID == "" || atTok == "" {
		t.Errorf("create answered %v", at)
	}
	for _, tc := range []struct{ name, method, path string }{
		{"rotate", "POST", base + "/token/rotate"},
		{"list", "GET", base + "/spaces/" + a.space + "/access-tokens"},
		{"create", "POST", base + "/spaces/" + a.space + "/access-tokens"},
		{"revoke", "DELETE", base + "/spaces/" + a.space + "/access-tokens/" + atID},
	} {
		for who, tok := range map[string]string{"B's token": b.token, "the operator": opToken, "A's space token": atTok} {
			r := c.do(tc.method, tc.path, tok, nil)
			if r.status != 403 {
				t.Errorf("%s with %s: %d, want 403: %s", tc.name, who, r.status, r.body)
			}
			if atID != "" && strings.Contains(string(r.body), atID) {
				t.Errorf("%s with %s: the answer names A's token id", tc.name, who)
			}
		}
	}
	c.want(200, "GET", base, a.token, nil)
	if s := c.profileRead(a.space, atTok); s != 404 {
		t.Errorf("A's access token after the attempts: %d", s)
	}
}
