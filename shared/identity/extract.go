package identity

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/unifiedprofiles/up/shared/message"
)

// Identifier is one identifier of a profile: a type and a case-sensitive value.
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// String returns "type:value", the form the Profile API and the explorer use. A type never
// holds a colon, so the first colon separates the two.
func (id Identifier) String() string { return id.Type + ":" + id.Value }

// source is where in a message an identifier type is read.
type source uint8

const (
	srcCustom      source = iota // keys in traits, context.traits, properties; context.externalIds
	srcUserID                    // userId
	srcEmail                     // traits.email, else context.traits.email
	srcAnonymousID               // anonymousId
	srcGroupID                   // groupId
	srcDeviceID                  // context.device.id for the rule's platform
	srcIDFA                      // context.device.advertisingId, platform and adTrackingEnabled
	srcPushToken                 // context.device.token for the rule's platform
	srcGAClientID                // context.integrations / integrations ["Google Analytics"].clientId
)

func sourceOf(r Rule) (source, string) {
	if r.Custom {
		return srcCustom, ""
	}
	switch r.Type {
	case TypeUserID:
		return srcUserID, ""
	case TypeEmail:
		return srcEmail, ""
	case TypeAnonymousID:
		return srcAnonymousID, ""
	case TypeGroupID:
		return srcGroupID, ""
	case TypeAndroidID:
		return srcDeviceID, "android"
	case TypeIOSID:
		return srcDeviceID, "ios"
	case TypeAndroidIDFA:
		return srcIDFA, "android"
	case TypeIOSIDFA:
		return srcIDFA, "ios"
	case TypeAndroidPushToken:
		return srcPushToken, "android"
	case TypeIOSPushToken:
		return srcPushToken, "ios"
	case TypeGAClientID:
		return srcGAClientID, ""
	}
	return srcCustom, "" // unreachable for validated settings
}

// Extract returns the identifiers m carries for the configured types, and separately those
// whose value is blocked (kept out of ids so the resolver can record a "blocked value"
// violation). Both are free of repeats and ordered by rule priority (highest first), then by
// value.
//
// Values are used as sent: strings are case-sensitive and not trimmed; numbers become their
// decimal text without exponent (12345, not 1.2345e+04); empty strings, booleans, objects,
// arrays, null and values over MaxValueBytes are ignored. email accepts strings only. A group
// call's traits describe the group, so they are not read for email or custom keys (its
// context.traits still are).
func (c *Compiled) Extract(m message.Message) (ids []Identifier, blocked []Identifier) {
	var x collector
	traits := m.Traits
	if m.Type == message.Group {
		traits = nil
	}
	ctx := m.Context
	var ctxTraits, device map[string]any
	var externalIDs any
	platform := ""
	if c.needContextTraits {
		ctxTraits = message.Object(ctx, "traits")
	}
	if c.needDevice {
		device = message.Object(ctx, "device")
		if t, ok := device["type"].(string); ok {
			switch {
			case equalFoldASCII(t, "android"):
				platform = "android"
			case equalFoldASCII(t, "ios"):
				platform = "ios"
			}
		}
	}
	if c.needExternalIDs {
		externalIDs = ctx["externalIds"]
	}

	for i := range c.rules {
		r := &c.rules[i]
		x.begin()
		switch r.src {
		case srcUserID:
			x.add(r, m.UserID)
		case srcAnonymousID:
			x.add(r, m.AnonymousID)
		case srcGroupID:
			x.add(r, m.GroupID)
		case srcEmail:
			// The message's own traits win; context.traits (cached by client SDKs) is the fallback.
			if v, ok := stringValue(traits["email"]); ok {
				x.add(r, v)
			} else if v, ok := stringValue(ctxTraits["email"]); ok {
				x.add(r, v)
			}
		case srcDeviceID:
			if platform == r.platform {
				x.addAny(r, device["id"])
			}
		case srcIDFA:
			// The advertising id is only an identifier when the user allowed ad tracking.
			if on, _ := device["adTrackingEnabled"].(bool); on && platform == r.platform {
				x.addAny(r, device["advertisingId"])
			}
		case srcPushToken:
			if platform == r.platform {
				x.addAny(r, device["token"])
			}
		case srcGAClientID:
			// Segment's spec puts it in context.integrations; analytics.js at the top level.
			if v, ok := anyValue(message.Object(message.Object(ctx, "integrations"), "Google Analytics")["clientId"]); ok {
				x.add(r, v)
			} else if v, ok := anyValue(message.Object(m.Integrations, "Google Analytics")["clientId"]); ok {
				x.add(r, v)
			}
		case srcCustom:
			for _, name := range r.names {
				x.addAny(r, traits[name])
				x.addAny(r, ctxTraits[name])
				x.addAny(r, m.Properties[name])
			}
			switch list := externalIDs.(type) {
			case []any:
				for _, e := range list {
					if e, ok := e.(map[string]any); ok {
						x.addExternal(r, e)
					}
				}
			case []map[string]any: // messages built in Go rather than decoded from JSON
				for _, e := range list {
					x.addExternal(r, e)
				}
			}
		}
	}
	return x.ids, x.blocked
}

// collector gathers identifiers rule by rule. Each rule's values form a run at the end of ids
// (and of blocked), kept sorted by value and free of repeats by insertion: runs are a handful
// of values, so this beats sorting a slice of (priority, value) pairs afterwards.
type collector struct {
	ids, blocked     []Identifier
	idStart, blStart int
}

func (x *collector) begin() { x.idStart, x.blStart = len(x.ids), len(x.blocked) }

func (x *collector) addAny(r *compiledRule, v any) {
	if s, ok := anyValue(v); ok {
		x.add(r, s)
	}
}

// addExternal adds e.id when e is {id, type, collection:"users", encoding:"none"} for r's
// type; the type is compared lowercased, since senders capitalise it.
func (x *collector) addExternal(r *compiledRule, e map[string]any) {
	if s, _ := e["collection"].(string); s != "users" {
		return
	}
	if s, _ := e["encoding"].(string); s != "none" {
		return
	}
	if t, _ := e["type"].(string); !equalFoldASCII(t, r.Type) {
		return
	}
	x.addAny(r, e["id"])
}

func (x *collector) add(r *compiledRule, v string) {
	if v == "" || len(v) > MaxValueBytes {
		return
	}
	i, found := search(x.ids, x.idStart, v)
	if found {
		return
	}
	j, found := search(x.blocked, x.blStart, v)
	if found {
		return
	}
	id := Identifier{Type: r.Type, Value: v}
	if r.blocks(v) {
		x.blocked = insertAt(x.blocked, j, id)
	} else {
		x.ids = insertAt(x.ids, i, id)
	}
}

// search returns where v belongs in the sorted run s[start:], and whether it is there.
func search(s []Identifier, start int, v string) (int, bool) {
	for i := start; i < len(s); i++ {
		if s[i].Value >= v {
			return i, s[i].Value == v
		}
	}
	return len(s), false
}

func insertAt(s []Identifier, i int, id Identifier) []Identifier {
	if s == nil {
		s = make([]Identifier, 0, 8) // one allocation covers a typical message
	}
	s = append(s, Identifier{})
	copy(s[i+1:], s[i:])
	s[i] = id
	return s
}

// stringValue returns v if it is a usable string identifier value.
func stringValue(v any) (string, bool) {
	s, ok := v.(string)
	return s, ok && s != "" && len(s) <= MaxValueBytes
}

// anyValue returns the identifier text of a string or number; anything else is not an id.
func anyValue(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, x != "" && len(x) <= MaxValueBytes
	case float64:
		return formatFloat(x, 64)
	case json.Number:
		return formatNumber(string(x))
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case uint:
		return strconv.FormatUint(uint64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true
	case float32:
		return formatFloat(float64(x), 32)
	}
	return "", false
}

// formatFloat writes f in decimal without exponent (12345, 42.5, 0.0001), "0" for ±0; JSON
// cannot carry NaN or infinities, so they are not ids.
func formatFloat(f float64, bits int) (string, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", false
	}
	if f == 0 {
		return "0", true
	}
	return strconv.FormatFloat(f, 'f', -1, bits), true
}

// formatNumber canonicalises a JSON number's text. A plain integer keeps every digit (it may be
// beyond float64's precision: 20-digit account numbers); other forms go through float64, so
// 1.2345e4 and 12345.0 both give 12345. Text that is not a JSON number is not an id.
func formatNumber(s string) (string, bool) {
	integer, ok := jsonNumber(s)
	switch {
	case !ok:
		return "", false
	case integer:
		if s == "-0" {
			return "0", true
		}
		return s, len(s) <= MaxValueBytes
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil { // out of range
		return "", false
	}
	return formatFloat(f, 64)
}

// jsonNumber reports whether s is a JSON number, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?,
// and whether it is a plain integer (no fraction or exponent). strconv accepts more (hex,
// underscores, "inf"), which a json.Number built in Go could hold.
func jsonNumber(s string) (integer, ok bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false, false
	}
	integer = true
	if i < len(s) && s[i] == '.' {
		integer = false
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return false, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		integer = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return false, false
		}
	}
	return integer, i == len(s)
}

// equalFoldASCII reports whether s equals lower, an ASCII lower-case string, ignoring ASCII
// case. Unicode folding would let "ioſ" (long s) pass as ios.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
