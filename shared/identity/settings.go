// Package identity is identity resolution: which identifiers a message carries, the rules
// that govern them (blocked values, limits over windows, priorities), and the resolver that
// maps every message to exactly one profile.
package identity

// Windows over which an identifier's limit counts distinct values.
const (
	WindowEver     = "ever"
	WindowWeekly   = "weekly"
	WindowMonthly  = "monthly"
	WindowAnnually = "annually"
)

// Blocked-value matchers.
const (
	MatchExact = "exact"
	MatchRegex = "regex"
)

// Blocked is a value that is never used as an identifier (it stays in the stored payload).
type Blocked struct {
	Match string `json:"match"` // exact | regex
	Value string `json:"value"`
}

// Rule configures one identifier type in a space.
type Rule struct {
	Type     string    `json:"type"`             // e.g. user_id, email, phone
	Custom   bool      `json:"custom,omitempty"` // not one of the 11 defaults
	Keys     []string  `json:"keys,omitempty"`   // custom: trait/property keys to read it from
	Limit    int       `json:"limit"`            // distinct values per profile within Window (1–1000)
	Window   string    `json:"window"`           // ever | weekly | monthly | annually
	Priority int       `json:"priority"`         // 1 is the highest; unique in a space
	Blocked  []Blocked `json:"blocked,omitempty"`
}

// Settings are a space's identity settings: the identifiers in use and their rules.
type Settings struct {
	Identifiers []Rule `json:"identifiers"`
}
