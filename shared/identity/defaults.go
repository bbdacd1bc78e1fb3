package identity

import "slices"

// The 11 default identifier types (Segment's). Each is read from a fixed place in a message;
// see Compiled.Extract.
const (
	TypeUserID           = "user_id"
	TypeEmail            = "email"
	TypeAnonymousID      = "anonymous_id"
	TypeGroupID          = "group_id"
	TypeAndroidID        = "android.id"
	TypeIOSID            = "ios.id"
	TypeAndroidIDFA      = "android.idfa"
	TypeIOSIDFA          = "ios.idfa"
	TypeAndroidPushToken = "android.push_token"
	TypeIOSPushToken     = "ios.push_token"
	TypeGAClientID       = "ga_client_id"
)

// DefaultTypes returns the 11 default identifier types, a new slice on every call (a function
// rather than a package variable so no caller can change the list for everyone else).
func DefaultTypes() []string {
	return []string{
		TypeUserID, TypeEmail, TypeAnonymousID, TypeGroupID,
		TypeAndroidID, TypeIOSID, TypeAndroidIDFA, TypeIOSIDFA,
		TypeAndroidPushToken, TypeIOSPushToken, TypeGAClientID,
	}
}

// IsDefault reports whether typ is one of the 11 default identifier types (exact, lowercase).
func IsDefault(typ string) bool {
	switch typ {
	case TypeUserID, TypeEmail, TypeAnonymousID, TypeGroupID,
		TypeAndroidID, TypeIOSID, TypeAndroidIDFA, TypeIOSIDFA,
		TypeAndroidPushToken, TypeIOSPushToken, TypeGAClientID:
		return true
	}
	return false
}

// SuggestedBlocked returns the blocked values suggested for every identifier: values SDKs and
// forms send when they have no real id (zeros and dashes, -1, "null", "anonymous"). Exact
// matches are case-sensitive, like identifier values.
func SuggestedBlocked() []Blocked {
	return []Blocked{
		{Match: MatchRegex, Value: `^[0-]*$`},
		{Match: MatchExact, Value: "-1"},
		{Match: MatchExact, Value: "null"},
		{Match: MatchExact, Value: "anonymous"},
	}
}

// DefaultSettings returns a space's identity settings before anyone edits them: every default
// identifier, in priority order. Limits are Segment's defaults (user_id 1 ever, every other 5
// weekly) so that a shared device or email cannot merge strangers; priorities are user_id 1,
// email 2, then the rest alphabetically from 3; every identifier blocks the suggested values.
func DefaultSettings() Settings {
	rest := DefaultTypes()
	rest = slices.DeleteFunc(rest, func(t string) bool { return t == TypeUserID || t == TypeEmail })
	slices.Sort(rest)
	order := append([]string{TypeUserID, TypeEmail}, rest...)

	s := Settings{Identifiers: make([]Rule, len(order))}
	for i, t := range order {
		r := Rule{Type: t, Limit: 5, Window: WindowWeekly, Priority: i + 1, Blocked: SuggestedBlocked()}
		if t == TypeUserID {
			r.Limit, r.Window = 1, WindowEver
		}
		s.Identifiers[i] = r
	}
	return s
}
