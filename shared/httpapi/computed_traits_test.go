package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/message"
)

func TestComputedTraitsAPI(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	tn := c.newTenant(61)
	base := "/v1/workspaces/" + tn.ws + "/spaces/" + tn.space + "/computed-traits"
	usage := func() float64 {
		ws := c.want(200, "GET", "/v1/workspaces/"+tn.ws, tn.token, nil)
		return ws["usage"].(map[string]any)["computed_traits"].(map[string]any)["used"].(float64)
	}

	bad := []struct {
		name, body, field string
	}{
		{"unknown preset", `{"preset":"total_outbounds"}`, "preset"},
		{"preset and definition", `{"preset":"total_inbounds","key":"x"}`, "preset"},
		{"no key", `{"type":"event_counter","event":"Order Completed"}`, "key"},
		{"bad type", `{"key":"k","type":"median","event":"e"}`, "type"},
		{"no property", `{"key":"k","type":"most_frequent","event":"e"}`, "property"},
		{"bad op", `{"key":"k","type":"event_counter","event":"e","conditions":[{"property":"p","op":"like","value":"x"}]}`, "conditions[0].op"},
		{"bad window", `{"key":"k","type":"event_counter","event":"e","window_days":-1}`, "window_days"},
		{"unknown field", `{"key":"k","type":"event_counter","event":"e","windowDays":7}`, ""},
	}
	for _, b := range bad {
		r := c.do("POST", base, tn.token, b.body)
		code, field := r.errorCode(t)
		if r.status != 400 || (b.field != "" && field != b.field) {
			t.Errorf("%s: %d %s field %q, want 400 on %q", b.name, r.status, code, field, b.field)
		}
	}
	if u := usage(); u != 0 {
		t.Fatalf("refused definitions took %v slots", u)
	}

	total := c.want(201, "POST", base, tn.token, map[string]any{"preset": "total_inbounds"})
	if total["key"] != "total_inbounds" || total["type"] != "event_counter" || total["event"] != "Flex - Engagement Initiated" ||
		total["preset"] != "total_inbounds" || total["backfill"].(map[string]any)["status"] != "pending" {
		t.Fatalf("created preset %v", total)
	}
	c.want(409, "POST", base, tn.token, map[string]any{"preset": "total_inbounds"})
	spend := c.want(201, "POST", base, tn.token, map[string]any{"key": "max_order", "type": "aggregation", "aggregate": "max",
		"event": "Order Completed", "property": "total", "conditions": []any{map[string]any{"property": "currency", "op": "equals", "value": "USD"}}, "window_days": 30})
	if u := usage(); u != 2 {
		t.Fatalf("usage after two traits: %v", u)
	}
	r := c.do("POST", base, tn.token, map[string]any{"preset": "frequent_inbound_channel"})
	if code, _ := r.errorCode(t); r.status != 403 || code != "entitlement_exceeded" {
		t.Fatalf("third trait: %d %s", r.status, r.body)
	}
	list := c.want(200, "GET", base, tn.token, nil)["computed_traits"].([]any)
	if len(list) != 2 || list[1].(map[string]any)["id"] != spend["id"] {
		t.Fatalf("list %v", list)
	}
	steps := c.want(200, "GET", "/v1/workspaces/"+tn.ws, tn.token, nil)["setup"].(map[string]any)["steps"].(map[string]any)
	if s := steps["identifiers_and_traits"].(map[string]any)["status"]; s != "in_progress" {
		t.Fatalf("step 3 after saving traits only: %v", s)
	}

	// Values: through the Profile API (class=computed_trait and all traits) and the explorer.
	ctx := context.Background()
	now := time.Now().UTC()
	for i, m := range []message.Message{
		{Type: message.Identify, UserID: "u1", Traits: map[string]any{"plan": "pro"}},
		{Type: message.Track, UserID: "u1", Event: "Flex - Engagement Initiated", Properties: map[string]any{"direction": "inbound", "channelType": "sms"}},
		{Type: message.Track, UserID: "u1", Event: "Flex - Engagement Initiated", Properties: map[string]any{"direction": "outbound", "channelType": "sms"}},
		{Type: message.Track, UserID: "u1", Event: "Order Completed", Properties: map[string]any{"total": 40, "currency": "USD"}},
		{Type: message.Track, UserID: "u1", Event: "Order Completed", Properties: map[string]any{"total": 90, "currency": "EUR"}},
		{Type: message.Track, UserID: "u1", Event: "Order Completed", Properties: map[string]any{"total": "55.5", "currency": "USD"}},
	} {
		m.MessageID, m.Timestamp, m.ReceivedAt = fmt.Sprintf("ct-%d", i), now.Add(time.Duration(i)*time.Second), now
		if _, err := c.profiles.Apply(ctx, tn.space, m); err != nil {
			t.Fatal(err)
		}
	}
	tok := c.want(201, "POST", "/v1/workspaces/"+tn.ws+"/spaces/"+tn.space+"/access-tokens", tn.token, nil)["token"].(string)
	pa := func(query string) map[string]any {
		req, _ := http.NewRequest("GET", c.base+"/v1/spaces/"+tn.space+"/collections/users/profiles/user_id:u1/traits"+query, nil)
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(tok+":")))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct {
			Traits map[string]any `json:"traits"`
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 {
			t.Fatalf("Profile API %s: %d %v", query, res.StatusCode, err)
		}
		return out.Traits
	}
	if got := pa("?class=computed_trait"); len(got) != 2 || got["total_inbounds"] != 1.0 || got["max_order"] != 55.5 {
		t.Fatalf("class=computed_trait: %v", got)
	}
	if got := pa(""); len(got) != 3 || got["plan"] != "pro" || got["total_inbounds"] != 1.0 {
		t.Fatalf("all traits: %v", got)
	}
	if got := pa("?class=audience"); len(got) != 0 {
		t.Fatalf("class=audience: %v", got)
	}
	prof := c.want(200, "GET", "/v1/workspaces/"+tn.ws+"/spaces/"+tn.space+"/profiles?identifier=user_id:u1", tn.token, nil)["profiles"].([]any)[0].(map[string]any)
	view := c.want(200, "GET", "/v1/workspaces/"+tn.ws+"/spaces/"+tn.space+"/profiles/"+prof["id"].(string), tn.token, nil)
	if ct := view["computed_traits"].(map[string]any); ct["total_inbounds"] != 1.0 || ct["max_order"] != 55.5 {
		t.Fatalf("explorer computed traits %v", ct)
	}

	// Another workspace can neither see nor delete them.
	other := c.newTenant(62)
	c.want(403, "GET", base, other.token, nil)
	c.want(403, "DELETE", base+"/"+total["id"].(string), other.token, nil)
	c.want(404, "GET", "/v1/workspaces/"+other.ws+"/spaces/"+tn.space+"/computed-traits/"+total["id"].(string), other.token, nil)

	// Deleting one frees the slot; its value is gone from the profile.
	c.want(204, "DELETE", base+"/"+total["id"].(string), tn.token, nil)
	c.want(404, "GET", base+"/"+total["id"].(string), tn.token, nil)
	c.want(404, "DELETE", base+"/"+total["id"].(string), tn.token, nil)
	if u := usage(); u != 1 {
		t.Fatalf("usage after a delete: %v", u)
	}
	if got := pa("?class=computed_trait"); len(got) != 1 || got["total_inbounds"] != nil {
		t.Fatalf("after delete: %v", got)
	}
	c.want(201, "POST", base, tn.token, map[string]any{"preset": "frequent_inbound_channel"})
	if !strings.HasPrefix(spend["id"].(string), "ctr_") {
		t.Fatalf("trait ids: %v", spend["id"])
	}
}
