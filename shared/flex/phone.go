package flex

import (
	"strings"
	"unicode"

	"github.com/unifiedprofiles/up/shared/errcode"
)

// Phone number limits (E.164: at most 15 digits including the country code).
const (
	MinPhoneDigits = 8
	MaxPhoneDigits = 15
)

// nationalRegions are the default regions NormalizePhone knows for numbers written without an
// international prefix: the country calling code and whether the national form starts with a
// trunk prefix 0 that is dropped in E.164. NANP regions (US, CA) are handled apart.
var nationalRegions = map[string]struct {
	code      string
	trunkZero bool
}{
	"GB": {"44", true},
	"IE": {"353", true},
	"FR": {"33", true},
	"DE": {"49", true},
	"NL": {"31", true},
	"AU": {"61", true},
}

// nanpRegions use the North American Numbering Plan: country code 1, 10 national digits.
var nanpRegions = map[string]bool{"US": true, "CA": true}

// NormalizePhone returns raw as an E.164 number ("+" and 8 to 15 digits). What it accepts,
// exactly:
//
//   - an optional channel prefix, case-insensitive: "whatsapp:", "sms:" or "tel:" (Twilio writes
//     WhatsApp addresses as "whatsapp:+14155550100");
//   - separators anywhere: spaces, '-', '.', '(', ')', '/'; no other characters (letters, '#',
//     extensions such as "x123" are refused);
//   - international form: "+" then the digits (the "+" only at the start), or "00" then the
//     digits ("0044 20 7946 0958" → "+442079460958"); the country code must not start with 0;
//   - national form, only with defaultRegion (case-insensitive): "US" or "CA" take 10 digits,
//     or 11 starting with 1 ("415-555-0100" → "+14155550100"); "GB", "IE", "FR", "DE", "NL" and
//     "AU" drop one leading trunk 0 and prepend the country code ("020 7946 0958" with "GB" →
//     "+442079460958");
//   - numbers with country code 1 must have exactly 10 digits after it.
//
// It does not check that a number is allocated or which numbering plan lengths a country uses
// beyond the above (no libphonenumber). Any failure is an *errcode.Error of kind Invalid and
// code "invalid_phone" whose message says why; it does not repeat the number.
func NormalizePhone(raw, defaultRegion string) (string, error) {
	s := strings.TrimSpace(raw)
	for _, p := range []string{"whatsapp:", "sms:", "tel:"} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			s = strings.TrimSpace(s[len(p):])
			break
		}
	}
	if s == "" {
		return "", phoneErr("the phone number is empty")
	}
	plus := false
	digits := make([]byte, 0, len(s))
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits = append(digits, byte(r))
		case r == '+':
			if i != 0 {
				return "", phoneErr("a '+' may only start the phone number")
			}
			plus = true
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/' || r == '\t':
		case unicode.IsLetter(r):
			return "", phoneErr("the phone number contains letters; send digits only, in E.164 (+14155550100) or national form")
		default:
			return "", phoneErr("the phone number contains %q; only digits, a leading '+', spaces, '-', '.', '(', ')' and '/' are allowed", r)
		}
	}
	if len(digits) == 0 {
		return "", phoneErr("the phone number has no digits")
	}

	var e164 string // digits without '+'
	switch {
	case plus:
		e164 = string(digits)
	case len(digits) > 2 && digits[0] == '0' && digits[1] == '0':
		e164 = string(digits[2:])
	default:
		region := strings.ToUpper(strings.TrimSpace(defaultRegion))
		if nanpRegions[region] {
			switch {
			case len(digits) == 10:
				e164 = "1" + string(digits)
			case len(digits) == 11 && digits[0] == '1':
				e164 = string(digits)
			default:
				return "", phoneErr("a national %s number has 10 digits, or 11 starting with 1; this one has %d", region, len(digits))
			}
		} else if nr, ok := nationalRegions[region]; ok {
			d := string(digits)
			if nr.trunkZero {
				d = strings.TrimPrefix(d, "0")
			}
			e164 = nr.code + d
		} else if region == "" {
			return "", phoneErr("a national number (no '+' or 00 prefix) needs a default region; none was given")
		} else {
			return "", phoneErr("a national number (no '+' or 00 prefix) needs a known default region; %q is not one (US, CA, GB, IE, FR, DE, NL, AU), so send it in E.164 (+ and country code)", clipRegion(region))
		}
	}

	switch {
	case len(e164) < MinPhoneDigits:
		return "", phoneErr("the phone number is too short: %d digits with the country code, at least %d expected", len(e164), MinPhoneDigits)
	case len(e164) > MaxPhoneDigits:
		return "", phoneErr("the phone number is too long: %d digits with the country code, at most %d allowed (E.164)", len(e164), MaxPhoneDigits)
	case e164[0] == '0':
		return "", phoneErr("a country code cannot start with 0")
	case e164[0] == '1' && len(e164) != 11:
		return "", phoneErr("a +1 (North American) number has 10 digits after the country code; this one has %d", len(e164)-1)
	}
	return "+" + e164, nil
}

func phoneErr(format string, args ...any) *errcode.Error {
	return errcode.New(errcode.Invalid, "invalid_phone", format, args...)
}

func clipRegion(s string) string {
	if len(s) > 8 {
		return s[:8] + "…"
	}
	return s
}
