package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/flex"
	"github.com/unifiedprofiles/up/shared/flex/flextest"
)

// The contact-center loop against the real binary: a workspace stores its Twilio auth token,
// Twilio posts signed TaskRouter callbacks (inbound and outbound, voice, SMS and WhatsApp)
// before and after the two preset computed traits exist, and the agent lookup shows Total
// inbounds and Frequent inbound channel — the earlier events through the backfill, the later
// ones live, a Twilio retry and forged callbacks changing nothing.
func TestFlexLoopAgainstTheBinary(t *testing.T) {
	t.Parallel()
	s := start(t, buildStack(t), t.TempDir(), anyPort, "UP_BACKFILL_DELAY=1s")
	const sid, authToken = "AC00000000000000000000000000000f1e", "f1e0f1e0f1e0f1e0f1e0f1e0f1e0f1e0"
	inv := s.call(t, "POST", "/v1/beta/accounts", s.operator, `{"account_sid":"`+sid+`"}`, 201)
	ws := s.call(t, "POST", "/v1/workspaces", inv["invite_token"].(string), `{"name":"Acme Support","account_sid":"`+sid+`"}`, 201)
	wsID, tok := ws["id"].(string), ws["token"].(string)
	space := ws["spaces"].([]any)[0].(map[string]any)["id"].(string)

	cfg := s.call(t, "PUT", "/v1/workspaces/"+wsID+"/flex", tok, `{"auth_token":"`+authToken+`"}`, 200)
	hook, _ := cfg["webhook_url"].(string)
	if hook != s.base+"/v1/flex/"+wsID+"/webhooks" || strings.Contains(fmt.Sprint(cfg), authToken) {
		t.Fatalf("flex config answer %v", cfg)
	}

	post := func(form url.Values, signature string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", hook, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if signature != "" {
			req.Header.Set("X-Twilio-Signature", signature)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	n := 0
	engagement := func(direction, channel, customer string) url.Values {
		n++
		return flextest.Engagement(direction, channel, customer, base.Add(time.Duration(n)*time.Minute))
	}
	send := func(form url.Values) string {
		t.Helper()
		status, body := post(form, flex.Sign(authToken, hook, form))
		if status != 200 || !strings.Contains(body, `"recorded":true`) {
			t.Fatalf("signed callback: %d %s", status, body)
		}
		return body
	}
	const alice, bob = "+14155550101", "+442079460958"

	// Before the traits exist.
	send(engagement("inbound", "sms", alice))
	send(engagement("outbound", "whatsapp", alice))
	send(engagement("inbound", "sms", alice))
	send(engagement("inbound", "voice", bob))

	traits := "/v1/workspaces/" + wsID + "/spaces/" + space + "/computed-traits"
	s.call(t, "POST", traits, tok, `{"preset":"total_inbounds"}`, 201)
	s.call(t, "POST", traits, tok, `{"preset":"frequent_inbound_channel"}`, 201)
	if e := s.call(t, "POST", traits, tok, `{"key":"third","type":"event_counter","event":"x"}`, 403); e["error"].(map[string]any)["code"] != "entitlement_exceeded" {
		t.Fatalf("third trait: %v", e)
	}

	// After: live.
	send(engagement("inbound", "voice", alice))
	last := engagement("inbound", "voice", alice)
	send(last)
	send(engagement("outbound", "voice", alice))
	send(engagement("inbound", "whatsapp", alice))
	// Twilio retries the same callback: acknowledged, not applied again.
	if body := send(last); !strings.Contains(body, `"duplicate":true`) {
		t.Fatalf("retry: %s", body)
	}
	// Forged callbacks: nothing is written.
	forged := engagement("inbound", "sms", alice)
	good := flex.Sign(authToken, hook, forged)
	tampered := url.Values{}
	for k, v := range forged {
		tampered[k] = v
	}
	tampered.Set("TaskAttributes", `{"direction":"inbound","from":"`+bob+`"}`)
	for name, c := range map[string]struct {
		form url.Values
		sig  string
	}{
		"no signature": {forged, ""}, "tampered parameter": {tampered, good},
		"other token": {forged, flex.Sign("00000000000000000000000000000000", hook, forged)},
		"other URL":   {forged, flex.Sign(authToken, hook+"?x=1", forged)},
	} {
		if status, body := post(c.form, c.sig); status != 403 || !strings.Contains(body, "invalid_signature") {
			t.Fatalf("%s: %d %s", name, status, body)
		}
	}

	// The backfill finishes in the background.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		list := s.call(t, "GET", traits, tok, "", 200)["computed_traits"].([]any)
		done := 0
		for _, ct := range list {
			if ct.(map[string]any)["backfill"].(map[string]any)["status"] == "done" {
				done++
			}
		}
		if done == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backfill not done: %v", list)
		}
	}

	lookup := func(query string, want int) map[string]any {
		t.Helper()
		return s.call(t, "GET", "/v1/flex/"+wsID+"/profiles?"+query, tok, "", want)
	}
	// alice, inbound: sms ×2 (before), voice ×2 and whatsapp (after); voice ties sms at 2 and
	// was seen last. bob: one inbound, below the minimum frequency of 2.
	a := lookup("phone="+url.QueryEscape(alice), 200)
	if ct := a["computed_traits"].(map[string]any); ct["total_inbounds"] != 5.0 || ct["frequent_inbound_channel"] != "voice" {
		t.Fatalf("alice: %v", ct)
	}
	if got := len(a["interactions"].([]any)); got != 7 {
		t.Fatalf("alice has %d interactions, want 7", got)
	}
	if ct := lookup("phone="+url.QueryEscape(bob), 200)["computed_traits"].(map[string]any); len(ct) != 1 || ct["total_inbounds"] != 1.0 {
		t.Fatalf("bob: %v", ct)
	}
	// The explorer and the Profile API agree.
	found := s.call(t, "GET", "/v1/workspaces/"+wsID+"/spaces/"+space+"/profiles?identifier="+url.QueryEscape("anonymous_id:flex:"+alice), tok, "", 200)
	pid := found["profiles"].([]any)[0].(map[string]any)["id"].(string)
	if ct := s.call(t, "GET", "/v1/workspaces/"+wsID+"/spaces/"+space+"/profiles/"+pid, tok, "", 200)["computed_traits"].(map[string]any); ct["total_inbounds"] != 5.0 {
		t.Fatalf("explorer: %v", ct)
	}
	// Studio's "Search for a Profile": a new caller gets a blank profile once.
	lookup("phone="+url.QueryEscape("+14155550199"), 404)
	lookup("phone="+url.QueryEscape("+14155550199")+"&create=true", 201)
	lookup("phone="+url.QueryEscape("+14155550199")+"&create=true", 200)
	// Another workspace's token reads nothing here.
	const sid2 = "AC00000000000000000000000000000f1f"
	inv2 := s.call(t, "POST", "/v1/beta/accounts", s.operator, `{"account_sid":"`+sid2+`"}`, 201)
	other := s.call(t, "POST", "/v1/workspaces", inv2["invite_token"].(string), `{"name":"Other","account_sid":"`+sid2+`"}`, 201)
	s.call(t, "GET", "/v1/flex/"+wsID+"/profiles?phone="+url.QueryEscape(alice), other["token"].(string), "", 403)
}
