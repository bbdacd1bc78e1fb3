package flex

import (
	"net/url"
	"testing"

	"github.com/twilio/twilio-go/client"
)

// singleValues is params as twilio-go's RequestValidator takes them (first value per name).
func singleValues(p url.Values) map[string]string {
	m := make(map[string]string, len(p))
	for k, v := range p {
		m[k] = v[0]
	}
	return m
}

// The vector from twilio-go's own request_validator_test.go.
func TestSignKnownVector(t *testing.T) {
	params := url.Values{
		"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"}, "Caller": {"+14158675309"},
		"From": {"+14158675309"}, "ReasonConferenceEnded": {"test"}, "Reason": {"Participant"},
	}
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	if got := Sign("12345", u, params); got != "vOEb5UThFn24KEfnOFLQY2AE5FY=" {
		t.Fatalf("Sign = %q, want the twilio-go test vector", got)
	}
	if !ValidSignature("12345", u, params, "vOEb5UThFn24KEfnOFLQY2AE5FY=") {
		t.Fatal("known vector refused")
	}
	if ValidSignature("12345", u, params, "95+Bu0JVPi0r/SsESZCVf0dWAjw=") {
		t.Fatal("signature over wrongly sorted params accepted")
	}
}

func taskRouterParams() url.Values {
	return url.Values{
		"EventType":             {"reservation.wrapup"},
		"AccountSid":            {"AC0123456789abcdef0123456789abcdef"},
		"WorkspaceSid":          {"WS0123456789abcdef0123456789abcdef"},
		"TaskSid":               {"WT0123456789abcdef0123456789abcdef"},
		"TaskAttributes":        {`{"from":"+14155550100","direction":"inbound","call_sid":"CA1"}`},
		"TaskChannelUniqueName": {"voice"},
		"WorkerSid":             {"WK0123456789abcdef0123456789abcdef"},
		"Timestamp":             {"1764437000"},
		"EventDescription":      {"Reservation WR… wrapped up & done = ✓"},
	}
}

// Signatures Twilio would send (as twilio-go checks them) are accepted by ValidSignature, on the
// same inputs, for URLs with and without ports and query strings.
func TestValidSignatureAgreesWithTwilioGo(t *testing.T) {
	const token = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
	rv := client.NewRequestValidator(token)
	cases := []struct {
		name     string
		signURL  string // the URL Twilio signed
		checkURL string // the URL the handler reconstructs
	}{
		{"https plain", "https://api.example.com/v1/flex/ws_1/webhooks", "https://api.example.com/v1/flex/ws_1/webhooks"},
		{"https with query", "https://api.example.com/v1/flex/ws_1/webhooks?x=1&y=a%20b", "https://api.example.com/v1/flex/ws_1/webhooks?x=1&y=a%20b"},
		{"http plain", "http://localhost/v1/flex/ws_1/webhooks", "http://localhost/v1/flex/ws_1/webhooks"},
		{"signed with :443, checked without", "https://api.example.com:443/hook", "https://api.example.com/hook"},
		{"signed without, checked with :443", "https://api.example.com/hook", "https://api.example.com:443/hook"},
		{"signed with :80, checked without", "http://api.example.com:80/hook", "http://api.example.com/hook"},
		{"signed without, checked with non-default port", "http://127.0.0.1/hook", "http://127.0.0.1:9000/hook"},
		{"non-default port both", "http://127.0.0.1:9000/hook?a=b", "http://127.0.0.1:9000/hook?a=b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			params := taskRouterParams()
			sig := Sign(token, c.signURL, params)
			twilio := rv.Validate(c.checkURL, singleValues(params), sig)
			ours := ValidSignature(token, c.checkURL, params, sig)
			if !twilio || !ours {
				t.Fatalf("twilio-go Validate = %v, ValidSignature = %v; want both true", twilio, ours)
			}
			body := []byte(params.Encode())
			if !rv.ValidateBody(c.checkURL, body, sig) {
				t.Fatal("twilio-go ValidateBody refused the form body")
			}
			// The empty-params case too (Twilio GET-style callbacks).
			if s := Sign(token, c.signURL, nil); !rv.Validate(c.checkURL, map[string]string{}, s) || !ValidSignature(token, c.checkURL, url.Values{}, s) {
				t.Fatal("empty params disagree")
			}
		})
	}
}

// Every tampered part is refused. (A port added to the URL is not tampering: Twilio, and
// twilio-go, also check the URL with any port removed; see TestValidSignatureAgreesWithTwilioGo.)
func TestValidSignatureRefusesTampering(t *testing.T) {
	const token = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
	const u = "https://api.example.com/v1/flex/ws_1/webhooks?src=flex"
	base := taskRouterParams()
	sig := Sign(token, u, base)
	if !ValidSignature(token, u, base, sig) {
		t.Fatal("untampered request refused")
	}
	edit := func(f func(p url.Values)) url.Values {
		p := url.Values{}
		for k, v := range base {
			p[k] = append([]string(nil), v...)
		}
		f(p)
		return p
	}
	cases := []struct {
		name   string
		token  string
		url    string
		params url.Values
		sig    string
	}{
		{"scheme", token, "http://api.example.com/v1/flex/ws_1/webhooks?src=flex", base, sig},
		{"host", token, "https://evil.example.com/v1/flex/ws_1/webhooks?src=flex", base, sig},
		{"path", token, "https://api.example.com/v1/flex/ws_2/webhooks?src=flex", base, sig},
		{"path case", token, "https://api.example.com/v1/flex/WS_1/webhooks?src=flex", base, sig},
		{"query value", token, "https://api.example.com/v1/flex/ws_1/webhooks?src=flez", base, sig},
		{"query removed", token, "https://api.example.com/v1/flex/ws_1/webhooks", base, sig},
		{"query added", token, u + "&x=1", base, sig},
		{"param value", token, u, edit(func(p url.Values) { p.Set("WorkerSid", "WK_other") }), sig},
		{"attributes value", token, u, edit(func(p url.Values) { p.Set("TaskAttributes", `{"from":"+14155550199"}`) }), sig},
		{"param name", token, u, edit(func(p url.Values) { p["Workersid"] = p["WorkerSid"]; delete(p, "WorkerSid") }), sig},
		{"param added", token, u, edit(func(p url.Values) { p.Set("Extra", "1") }), sig},
		{"empty param added", token, u, edit(func(p url.Values) { p.Set("Extra", "") }), sig},
		{"param removed", token, u, edit(func(p url.Values) { delete(p, "Timestamp") }), sig},
		{"second value added", token, u, edit(func(p url.Values) { p.Add("WorkerSid", "WK_other") }), sig},
		{"token", "f0e1d2c3b4a5968778695a4b3c2d1e0e", u, base, sig},
		{"empty token", "", u, base, sig},
		{"empty signature", token, u, base, ""},
		{"signature altered", token, u, base, "A" + sig[1:]},
		{"signature truncated", token, u, base, sig[:len(sig)-1]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if ValidSignature(c.token, c.url, c.params, c.sig) {
				t.Fatal("tampered request accepted")
			}
			// twilio-go agrees (it sees one value per name, so skip the repeated-value case,
			// and it accepts an empty token only if the signature was made with one).
			if c.name != "second value added" && c.token != "" && c.sig != "" {
				v := client.NewRequestValidator(c.token)
				if v.Validate(c.url, singleValues(c.params), c.sig) {
					t.Fatal("twilio-go accepted it: the test case is wrong")
				}
			}
		})
	}
}

// Repeated names sign name+value per distinct value, values sorted (Twilio's Python and Node
// helpers); order of values as received does not matter.
func TestSignRepeatedValues(t *testing.T) {
	a := Sign("tok", "https://x.example/h", url.Values{"A": {"2", "1"}, "B": {"x"}})
	b := Sign("tok", "https://x.example/h", url.Values{"A": {"1", "2"}, "B": {"x"}})
	c := Sign("tok", "https://x.example/hA1A2Bx", nil)
	if a != b || a != c {
		t.Fatalf("repeated values: %q %q %q", a, b, c)
	}
	if d := Sign("tok", "https://x.example/h", url.Values{"A": {"1", "1", "2"}, "B": {"x"}}); d != a {
		t.Fatal("duplicate values should count once")
	}
}
