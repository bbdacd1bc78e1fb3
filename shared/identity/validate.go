package identity

import (
	"cmp"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/unifiedprofiles/up/shared/errcode"
)

// MaxValueBytes is the longest identifier value used; longer values are ignored (they are
// payloads, not ids, and would bloat every index that holds identifiers).
const MaxValueBytes = 1000

// Bounds on settings, checked by Validate.
const (
	maxTypeLen         = 64
	maxKeys            = 10
	maxKeyLen          = 64
	maxLimit           = 1000
	maxBlocked         = 50
	maxBlockedValueLen = 200 // characters
	// MaxCustomIdentifiers bounds a space's custom identifiers: each is looked for under
	// every one of its keys (and their case variants) in every message, and each value
	// found is one more claim read and written per message.
	MaxCustomIdentifiers = 15
)

// Validate checks the settings a person saves. It returns nil or the first *errcode.Error
// (kind Invalid, code invalid_field) whose Field is the JSON path at fault, e.g.
// identifiers[2].blocked[0].value, in the order the identifiers were sent.
func (s Settings) Validate() error {
	if len(s.Identifiers) == 0 {
		return errcode.InvalidField("identifiers", "add at least one identifier, for example user_id or email")
	}
	custom := 0
	for _, r := range s.Identifiers {
		if r.Custom {
			custom++
		}
	}
	if custom > MaxCustomIdentifiers {
		return errcode.InvalidField("identifiers", "has %d custom identifiers; a space takes at most %d (besides the 11 defaults)", custom, MaxCustomIdentifiers)
	}
	types := make(map[string]int, len(s.Identifiers))
	priorities := make(map[int]int, len(s.Identifiers))
	for i := range s.Identifiers {
		if err := validateRule(s.Identifiers, i, types, priorities); err != nil {
			return err
		}
	}
	return nil
}

// validateRule checks identifiers[i]; types and priorities map what earlier rules used to
// their index, so a duplicate is reported on the second occurrence.
func validateRule(rules []Rule, i int, types map[string]int, priorities map[int]int) *errcode.Error {
	r := &rules[i]
	p := fmt.Sprintf("identifiers[%d]", i)

	switch {
	case r.Type == "":
		return errcode.InvalidField(p+".type", "is required: name a default identifier (%s) or a custom one such as phone", strings.Join(DefaultTypes(), ", "))
	case !validType(r.Type):
		return errcode.InvalidField(p+".type", "%q is not a valid type: use 1 to %d characters of lowercase letters a-z, digits, _ and .", errcode.Clip(r.Type), maxTypeLen)
	}
	if j, dup := types[r.Type]; dup {
		return errcode.InvalidField(p+".type", "%s is already configured at identifiers[%d]; configure each type once", r.Type, j)
	}
	types[r.Type] = i

	if r.Custom {
		if IsDefault(r.Type) {
			return errcode.InvalidField(p+".type", "%s is a default identifier, so it cannot be custom: set custom to false to use the default, or give the custom identifier another type", r.Type)
		}
		switch {
		case len(r.Keys) == 0:
			return errcode.InvalidField(p+".keys", "a custom identifier needs 1 to %d trait or property keys to read it from, for example [\"phone\"]", maxKeys)
		case len(r.Keys) > maxKeys:
			return errcode.InvalidField(p+".keys", "has %d keys; a custom identifier takes at most %d", len(r.Keys), maxKeys)
		}
		for j, k := range r.Keys {
			if !validKey(k) {
				return errcode.InvalidField(fmt.Sprintf("%s.keys[%d]", p, j), "%q is not a valid key: start with a letter, then up to %d letters, digits or underscores (phone, phoneNumber, phone_number)", errcode.Clip(k), maxKeyLen-1)
			}
		}
	} else {
		if !IsDefault(r.Type) {
			return errcode.InvalidField(p+".type", "%s is not one of the 11 default identifiers (%s); to read it from your own trait or property keys, set custom to true and list the keys", r.Type, strings.Join(DefaultTypes(), ", "))
		}
		if len(r.Keys) > 0 {
			return errcode.InvalidField(p+".keys", "default identifiers are read from fixed places in a message; remove keys, or set custom to true under another type")
		}
	}

	if r.Limit < 1 || r.Limit > maxLimit {
		return errcode.InvalidField(p+".limit", "must be between 1 and %d distinct values per profile within the window; got %d", maxLimit, r.Limit)
	}
	switch r.Window {
	case WindowEver, WindowWeekly, WindowMonthly, WindowAnnually:
	default:
		return errcode.InvalidField(p+".window", "must be one of ever, weekly, monthly, annually; got %q", errcode.Clip(r.Window))
	}

	if r.Priority < 1 {
		return errcode.InvalidField(p+".priority", "must be 1 or more (1 is the highest); got %d", r.Priority)
	}
	if j, dup := priorities[r.Priority]; dup {
		return errcode.InvalidField(p+".priority", "%d is already the priority of identifiers[%d] (%s); give each identifier its own priority", r.Priority, j, rules[j].Type)
	}
	priorities[r.Priority] = i

	if len(r.Blocked) > maxBlocked {
		return errcode.InvalidField(p+".blocked", "has %d values; at most %d are allowed per identifier", len(r.Blocked), maxBlocked)
	}
	for j, b := range r.Blocked {
		bp := fmt.Sprintf("%s.blocked[%d]", p, j)
		if b.Match != MatchExact && b.Match != MatchRegex {
			return errcode.InvalidField(bp+".match", "must be exact or regex; got %q", errcode.Clip(b.Match))
		}
		if b.Value == "" {
			return errcode.InvalidField(bp+".value", "is required: the value (or regular expression) that must never be used as an identifier")
		}
		if n := utf8.RuneCountInString(b.Value); n > maxBlockedValueLen {
			return errcode.InvalidField(bp+".value", "is %d characters; at most %d are allowed", n, maxBlockedValueLen)
		}
		if b.Match == MatchRegex {
			if _, err := regexp.Compile(b.Value); err != nil {
				return errcode.InvalidField(bp+".value", "is not a valid regular expression (Go RE2 syntax: no backreferences or lookaround): %v", err)
			}
		}
	}
	return nil
}

// validType reports whether t matches [a-z0-9_.]{1,64}; a loop, not a regexp, because it
// also guards identifier strings of the form type:value (a type never holds a colon).
func validType(t string) bool {
	if len(t) == 0 || len(t) > maxTypeLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validKey reports whether k matches [A-Za-z][A-Za-z0-9_]{0,63}.
func validKey(k string) bool {
	if len(k) == 0 || len(k) > maxKeyLen || !isLetter(k[0]) {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if !(isLetter(c) || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// Normalize returns a deep copy of the settings with the identifiers in priority order (the
// order they are stored, shown and resolved in; equal priorities keep their order). Validate
// before normalising: error paths refer to the order as sent.
func (s Settings) Normalize() Settings {
	out := Settings{Identifiers: make([]Rule, len(s.Identifiers))}
	for i, r := range s.Identifiers {
		r.Keys = slices.Clone(r.Keys)
		r.Blocked = slices.Clone(r.Blocked)
		out.Identifiers[i] = r
	}
	slices.SortStableFunc(out.Identifiers, func(a, b Rule) int { return cmp.Compare(a.Priority, b.Priority) })
	return out
}

// Rule returns the rule for typ, if the settings configure it.
func (s Settings) Rule(typ string) (Rule, bool) {
	for _, r := range s.Identifiers {
		if r.Type == typ {
			return r, true
		}
	}
	return Rule{}, false
}

// Compiled is validated settings prepared for the hot path: rules in priority order, blocked
// regexes compiled once, where to read each type decided once. It is immutable, so one value
// serves concurrent requests.
type Compiled struct {
	rules  []compiledRule // priority order
	byType map[string]int // type → index in rules

	// Which parts of a message any rule reads, so Extract skips the lookups nobody needs.
	needContextTraits bool
	needDevice        bool
	needExternalIDs   bool
}

type compiledRule struct {
	Rule
	src      source
	platform string   // "android" or "ios" for device sources
	names    []string // custom: every key and its camelCase / snake_case variants, once each
	exact    []string // blocked exact values
	classes  []runClass
	regexes  []*regexp.Regexp
}

// blockedPattern is a prepared blocked regex: a runClass when it has that form, else compiled.
type blockedPattern struct {
	class   runClass
	isClass bool
	re      *regexp.Regexp
}

// runClass is a blocked regex of the form ^[class]*$ or ^[class]+$ (the suggested ^[0-]*$ is
// one, on every identifier), matched by a loop over the value's runes: several times faster
// than the regexp machine, with the same answer.
type runClass struct {
	ranges []rune // lo, hi pairs, as regexp/syntax gives them
	min    int    // runes required: 0 for *, 1 for +
}

// wholeValueClass returns the runClass equivalent to pattern, if pattern has that form.
func wholeValueClass(pattern string) (runClass, bool) {
	re, err := syntax.Parse(pattern, syntax.Perl) // the flags regexp.Compile uses
	if err != nil {
		return runClass{}, false
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) != 3 ||
		re.Sub[0].Op != syntax.OpBeginText || re.Sub[2].Op != syntax.OpEndText {
		return runClass{}, false
	}
	rc := runClass{}
	switch rep := re.Sub[1]; rep.Op {
	case syntax.OpStar:
	case syntax.OpPlus:
		rc.min = 1
	default:
		return runClass{}, false
	}
	switch sub := re.Sub[1].Sub[0]; {
	case sub.Op == syntax.OpCharClass:
		rc.ranges = slices.Clone(sub.Rune)
	case sub.Op == syntax.OpLiteral && len(sub.Rune) == 1 && sub.Flags&syntax.FoldCase == 0:
		rc.ranges = []rune{sub.Rune[0], sub.Rune[0]}
	default:
		return runClass{}, false
	}
	return rc, true
}

// match reports whether every rune of v is in the class. Invalid UTF-8 reads as U+FFFD, as
// in package regexp.
func (rc *runClass) match(v string) bool {
	n := 0
	for _, r := range v {
		in := false
		for i := 0; i+1 < len(rc.ranges); i += 2 {
			if r >= rc.ranges[i] && r <= rc.ranges[i+1] {
				in = true
				break
			}
		}
		if !in {
			return false
		}
		n++
	}
	return n >= rc.min
}

// Compile validates s (returning Validate's error) and prepares it for Extract and Blocked.
func Compile(s Settings) (*Compiled, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	n := s.Normalize()
	c := &Compiled{rules: make([]compiledRule, len(n.Identifiers)), byType: make(map[string]int, len(n.Identifiers))}
	// Each distinct pattern is prepared once and shared by every rule that blocks it.
	patterns := map[string]blockedPattern{}
	for i, r := range n.Identifiers {
		cr := compiledRule{Rule: r}
		cr.src, cr.platform = sourceOf(r)
		switch cr.src {
		case srcEmail:
			c.needContextTraits = true
		case srcDeviceID, srcIDFA, srcPushToken:
			c.needDevice = true
		case srcCustom:
			c.needContextTraits, c.needExternalIDs = true, true
			for _, k := range r.Keys {
				for _, v := range keyVariants(k) {
					if !slices.Contains(cr.names, v) {
						cr.names = append(cr.names, v)
					}
				}
			}
		}
		seen := map[Blocked]bool{}
		for _, b := range r.Blocked {
			if seen[b] {
				continue
			}
			seen[b] = true
			if b.Match == MatchExact {
				cr.exact = append(cr.exact, b.Value)
				continue
			}
			p, ok := patterns[b.Value]
			if !ok {
				if p.class, p.isClass = wholeValueClass(b.Value); !p.isClass {
					var err error
					if p.re, err = regexp.Compile(b.Value); err != nil { // Validate compiled it already
						return nil, fmt.Errorf("identity: compile blocked regex %q: %w", b.Value, err)
					}
				}
				patterns[b.Value] = p
			}
			if p.isClass {
				cr.classes = append(cr.classes, p.class)
			} else {
				cr.regexes = append(cr.regexes, p.re)
			}
		}
		c.rules[i] = cr
		c.byType[r.Type] = i
	}
	return c, nil
}

// Rules returns the rules in priority order (highest first). Their Keys and Blocked slices are
// shared with c: read them, do not modify them.
func (c *Compiled) Rules() []Rule {
	out := make([]Rule, len(c.rules))
	for i := range c.rules {
		out[i] = c.rules[i].Rule
	}
	return out
}

// Rule returns the rule for typ. Its Keys and Blocked slices are shared with c: read them, do
// not modify them.
func (c *Compiled) Rule(typ string) (Rule, bool) {
	i, ok := c.byType[typ]
	if !ok {
		return Rule{}, false
	}
	return c.rules[i].Rule, true
}

// Blocked reports whether value is blocked for typ: equal to one of its exact values
// (case-sensitive) or matched by one of its regexes (unanchored, as Go's MatchString: anchor
// with ^ and $ to match the whole value). An unconfigured type blocks nothing.
func (c *Compiled) Blocked(typ, value string) bool {
	i, ok := c.byType[typ]
	return ok && c.rules[i].blocks(value)
}

func (r *compiledRule) blocks(v string) bool {
	for _, e := range r.exact {
		if v == e {
			return true
		}
	}
	for i := range r.classes {
		if r.classes[i].match(v) {
			return true
		}
	}
	for _, re := range r.regexes {
		if re.MatchString(v) {
			return true
		}
	}
	return false
}

// keyVariants returns k as configured, its snake_case and its camelCase form, without
// repeats: phone_number → phone_number, phoneNumber; userID → userID, user_id, userId.
func keyVariants(k string) []string {
	snake := toSnake(k)
	camel := toCamel(snake)
	out := []string{k}
	for _, v := range []string{snake, camel} {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// toSnake lowercases k and puts an underscore at each word start marked by case: before an
// upper-case letter that follows a lower-case letter or digit, or that starts a word after an
// acronym (IDNumber → id_number).
func toSnake(k string) string {
	var b strings.Builder
	b.Grow(len(k) + 4)
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 'A' && c <= 'Z' {
			if i > 0 && k[i-1] != '_' {
				prev := k[i-1]
				nextLower := i+1 < len(k) && k[i+1] >= 'a' && k[i+1] <= 'z'
				if prev >= 'a' && prev <= 'z' || prev >= '0' && prev <= '9' || (prev >= 'A' && prev <= 'Z' && nextLower) {
					b.WriteByte('_')
				}
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// toCamel joins snake_case words, capitalising all but the first: phone_number → phoneNumber.
func toCamel(snake string) string {
	var b strings.Builder
	b.Grow(len(snake))
	upper := false
	for i := 0; i < len(snake); i++ {
		c := snake[i]
		if c == '_' {
			upper = b.Len() > 0
			continue
		}
		if upper && c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		upper = false
		b.WriteByte(c)
	}
	return b.String()
}
