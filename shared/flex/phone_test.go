package flex

import (
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/errcode"
)

func TestNormalizePhone(t *testing.T) {
	cases := []struct {
		raw, region, want string
	}{
		{"+1 (415) 555-0100", "", "+14155550100"},
		{"+14155550100", "GB", "+14155550100"},
		{"415-555-0100", "US", "+14155550100"},
		{"(415) 555.0100", "us", "+14155550100"},
		{"1 415 555 0100", "US", "+14155550100"},
		{"14155550100", "CA", "+14155550100"},
		{"+44 20 7946 0958", "", "+442079460958"},
		{"0044 20 7946 0958", "", "+442079460958"},
		{"0044 20 7946 0958", "US", "+442079460958"},
		{"020 7946 0958", "GB", "+442079460958"},
		{"01 23 45 67 89", "FR", "+33123456789"},
		{"whatsapp:+14155550100", "", "+14155550100"},
		{"WhatsApp:+44 20 7946 0958", "", "+442079460958"},
		{"sms:+14155550100", "", "+14155550100"},
		{"tel:+1-415-555-0100", "", "+14155550100"},
		{"  +49 30 901820  ", "", "+4930901820"},
		{"+61 2 9374 4000", "", "+61293744000"},
		{"+234 567 890 123 451", "", "+234567890123451"}, // 15 digits, the most E.164 allows
		{"+33 1 23 45 6", "", "+33123456"},               // 8 digits, the fewest accepted
	}
	for _, c := range cases {
		got, err := NormalizePhone(c.raw, c.region)
		if err != nil || got != c.want {
			t.Errorf("NormalizePhone(%q, %q) = %q, %v; want %q", c.raw, c.region, got, err, c.want)
		}
	}
}

func TestNormalizePhoneRejects(t *testing.T) {
	cases := []struct {
		raw, region, reason string // reason: a fragment of the message
	}{
		{"", "US", "empty"},
		{"whatsapp:", "US", "empty"},
		{"call me", "US", "letters"},
		{"+1 415 CALL NOW", "", "letters"},
		{"415-555-0100 x12", "US", "letters"},
		{"+1 415 555 0100#", "", `'#'`},
		{"1+4155550100", "", "may only start"},
		{"++14155550100", "", "may only start"},
		{"---", "US", "no digits"},
		{"+44 20 79", "", "too short"},
		{"+1234567", "", "too short"},
		{"+44 1234 5678 9012 3456", "", "too long"},
		{"0044 1234 5678 9012 3456", "", "too long"},
		{"415-555-0100", "", "needs a default region"},
		{"415-555-0100", "ZZ", "known default region"},
		{"555-0100", "US", "10 digits"},
		{"24155550100", "US", "10 digits"},
		{"+1 415 555 01000", "", "10 digits after the country code"},
		{"+0 415 555 0100", "", "cannot start with 0"},
		{"000 20 7946 0958", "", "cannot start with 0"}, // "00" then a country code starting with 0
	}
	for _, c := range cases {
		got, err := NormalizePhone(c.raw, c.region)
		e := errcode.As(err)
		if e == nil || e.Kind != errcode.Invalid || e.Code != "invalid_phone" {
			t.Errorf("NormalizePhone(%q, %q) = %q, %v; want an invalid_phone error", c.raw, c.region, got, err)
			continue
		}
		if !strings.Contains(e.Message, c.reason) {
			t.Errorf("NormalizePhone(%q, %q): message %q does not say %q", c.raw, c.region, e.Message, c.reason)
		}
	}
}
