package workspace

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/unifiedprofiles/up/shared/errcode"
)

// validName checks a display name: present, at most MaxNameLength characters, no control
// characters, no surrounding spaces (they make two names look alike).
func validName(field, name string) error {
	switch {
	case name == "":
		return errcode.InvalidField(field, "is required")
	case !utf8.ValidString(name):
		return errcode.InvalidField(field, "is not valid UTF-8")
	case utf8.RuneCountInString(name) > MaxNameLength:
		return errcode.InvalidField(field, "is %d characters long; the limit is %d", utf8.RuneCountInString(name), MaxNameLength)
	case strings.TrimSpace(name) != name:
		return errcode.InvalidField(field, "must not start or end with spaces")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return errcode.InvalidField(field, "must not contain control characters")
	}
	return nil
}

// oneOf checks that v is one of allowed.
func oneOf(field, v string, allowed []string) error {
	if v == "" {
		return errcode.InvalidField(field, "is required; one of %s", strings.Join(allowed, ", "))
	}
	if !slices.Contains(allowed, v) {
		return errcode.InvalidField(field, "%q is not allowed; use one of %s", errcode.Clip(v), strings.Join(allowed, ", "))
	}
	return nil
}

// A Twilio account SID: "AC" and 32 hex digits.
var accountSIDPattern = regexp.MustCompile(`^AC[0-9a-f]{32}$`)

func validAccountSID(sid string) error {
	if sid == "" {
		return errcode.InvalidField("account_sid", "is required")
	}
	if !accountSIDPattern.MatchString(sid) {
		return errcode.InvalidField("account_sid", "must be a Twilio account SID: AC followed by 32 lowercase hex digits")
	}
	return nil
}

const maxURLLength = 2048

func validWebsiteURL(field, raw string) error {
	if raw == "" {
		return nil
	}
	if len(raw) > maxURLLength {
		return errcode.InvalidField(field, "is %d characters long; the limit is %d", len(raw), maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errcode.InvalidField(field, "must be an absolute http or https URL")
	}
	return nil
}

// Destination settings: a flat object of plain values, small enough to stay one item.
const (
	maxSettings        = 50
	maxSettingKey      = 100
	maxSettingValueLen = 2000
)

func validSettings(settings map[string]any) error {
	if len(settings) > maxSettings {
		return errcode.InvalidField("settings", "has %d keys; the limit is %d", len(settings), maxSettings)
	}
	for k, v := range settings {
		field := "settings." + k
		if k == "" || len(k) > maxSettingKey {
			return errcode.InvalidField("settings", "keys must be 1 to %d characters", maxSettingKey)
		}
		switch v := v.(type) {
		case string:
			if len(v) > maxSettingValueLen {
				return errcode.InvalidField(field, "is %d characters long; the limit is %d", len(v), maxSettingValueLen)
			}
		case bool, float64, nil:
		default:
			return errcode.InvalidField(field, "must be a string, number, boolean or null")
		}
	}
	return nil
}
