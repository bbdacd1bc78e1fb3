package httpapi_test

import (
	"encoding/json"
	"testing"

	"github.com/unifiedprofiles/up/shared/httpapi"
)

// A computed trait and a custom trait never share a key, so neither hides the other: a
// computed trait may not take a reserved trait's key (the review's {"key":"email"} showed
// "email":1 in the Profile API), an identifier's, or one the space's data carried; an identify
// that sets a computed trait's key is refused and the computed value stays visible.
func TestComputedAndCustomTraitsNeverShadow(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	src := e.source("http")
	base := "/v1/workspaces/" + e.ws + "/spaces/" + e.space + "/computed-traits"
	bearer := map[string]string{"Authorization": "Bearer " + e.wsTok}
	create := func(key string) trResp {
		body, _ := json.Marshal(map[string]any{"key": key, "type": "event_counter", "event": "Order Completed"})
		return e.do("POST", base, body, bearer)
	}

	if r := e.send(src.WriteKey, "identify", map[string]any{"userId": "u1", "messageId": "m1", "traits": map[string]any{"plan": "pro", "email": "ada@example.com"}}); r.status != 200 {
		t.Fatalf("identify: %d %s", r.status, r.raw)
	}
	for _, key := range []string{"email", "first_name", "plan", "phone"} {
		if r := create(key); r.status != 409 || errCode(r) != "trait_key_in_use" {
			t.Errorf("computed trait %q: %d %s, want 409 trait_key_in_use", key, r.status, r.raw)
		}
	}

	if r := create("orders"); r.status != 201 {
		t.Fatalf("computed trait orders: %d %s", r.status, r.raw)
	}
	if r := e.send(src.WriteKey, "track", map[string]any{"userId": "u1", "messageId": "m2", "event": "Order Completed"}); r.status != 200 {
		t.Fatalf("track: %d %s", r.status, r.raw)
	}
	r := e.send(src.WriteKey, "identify", map[string]any{"userId": "u1", "messageId": "m3", "traits": map[string]any{"orders": 99}})
	if r.status != 400 || errCode(r) != "trait_key_reserved" {
		t.Errorf("identify setting the computed trait's key: %d %s, want 400 trait_key_reserved", r.status, r.raw)
	}
	r = e.send(src.WriteKey, "batch", map[string]any{"batch": []any{
		map[string]any{"type": "identify", "userId": "u1", "messageId": "m4", "traits": map[string]any{"orders": 99}},
		map[string]any{"type": "identify", "userId": "u1", "messageId": "m5", "traits": map[string]any{"tier": "gold"}},
	}})
	rej, _ := r.body["rejected"].([]any)
	if r.status != 200 || len(rej) != 1 || rej[0].(map[string]any)["code"] != "trait_key_reserved" || rej[0].(map[string]any)["index"] != float64(0) {
		t.Errorf("batch: %d %s, want message 0 rejected with trait_key_reserved", r.status, r.raw)
	}
	pa := e.do("GET", "/v1/spaces/"+e.space+"/collections/users/profiles/user_id:u1/traits", nil, map[string]string{"Authorization": "Basic " + basic(e.access)})
	traits, _ := pa.body["traits"].(map[string]any)
	if pa.status != 200 || traits["orders"] != float64(1) || traits["plan"] != "pro" || traits["tier"] != "gold" {
		t.Errorf("Profile API traits: %d %s, want orders 1 (computed), plan pro, tier gold", pa.status, pa.raw)
	}
}
