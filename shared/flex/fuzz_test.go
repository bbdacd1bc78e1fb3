package flex

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// FuzzNormalizePhone: whatever comes in, the result is E.164 or a reasoned refusal, and a
// normalised number normalises to itself.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"+1 (415) 555-0100", "whatsapp:+14155550100", "0044 20 7946 0958", "415-555-0100", "020 7946 0958", "+", "00", "tel:", "+1415555010x", "++1"} {
		f.Add(s, "US")
		f.Add(s, "")
		f.Add(s, "GB")
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		got, err := NormalizePhone(raw, region)
		if err != nil {
			if got != "" || err.Error() == "" {
				t.Fatalf("refusal with a result %q or no reason: %v", got, err)
			}
			return
		}
		if !e164.MatchString(got) {
			t.Fatalf("NormalizePhone(%q, %q) = %q, not E.164", raw, region, got)
		}
		if again, err := NormalizePhone(got, ""); err != nil || again != got {
			t.Fatalf("not idempotent: %q → %q, %v", got, again, err)
		}
	})
}

// FuzzEventFromTaskRouter: any form body either becomes a well-formed Flex track message,
// is dropped, or is refused with invalid_flex_event; the message id depends on the task
// event only, so a retried callback dedupes.
func FuzzEventFromTaskRouter(f *testing.F) {
	seeds := []url.Values{
		callback("reservation.wrapup", "voice", `{"from":"+14155550100","direction":"inbound"}`),
		callback("task.completed", "sms", `{"to":"+14155550100","direction":"outbound","conversations":{"outcome":"resolved"}}`),
		callback("reservation.wrapup", "chat", `{"from":"whatsapp:+14155550100","channelType":"whatsapp","customers":{"email":"A@Example.com"}}`),
		callback("task.created", "voice", `{}`),
		callback("reservation.wrapup", "voice", `not json`),
	}
	for _, s := range seeds {
		f.Add(s.Encode())
	}
	at := time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return // the webhook refuses an unparseable body before this
		}
		m, ok, err := EventFromTaskRouter(form, at)
		if err != nil {
			if ok || !strings.Contains(err.Error(), "invalid_flex_event") && !strings.Contains(err.Error(), "Task") {
				t.Fatalf("error %v with ok=%v", err, ok)
			}
			return
		}
		if !ok {
			return
		}
		if m.Type != "track" || (m.Event != EventEngagementInitiated && m.Event != EventEngagementCompleted) {
			t.Fatalf("message %s %q", m.Type, m.Event)
		}
		if !strings.HasPrefix(m.MessageID, "flex-") || m.AnonymousID == "" || m.Timestamp.IsZero() {
			t.Fatalf("message id %q anonymousId %q timestamp %v", m.MessageID, m.AnonymousID, m.Timestamp)
		}
		traits, _ := m.Context["traits"].(map[string]any)
		if p, ok := traits["phone"].(string); ok && !e164.MatchString(p) {
			t.Fatalf("phone trait %q is not E.164", p)
		}
		again, _, _ := EventFromTaskRouter(form, at.Add(time.Hour))
		if again.MessageID != m.MessageID {
			t.Fatalf("the same callback got two message ids: %s, %s", m.MessageID, again.MessageID)
		}
	})
}
