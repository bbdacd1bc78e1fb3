package identity

import (
	"cmp"
	"slices"
	"time"
)

// Caps per profile (PRODUCT.md section 3): past them no further merges or mappings happen,
// but messages still resolve.
const (
	MaxMerges      = 100
	MaxIdentifiers = 1000
)

// Violation kinds: every decision that drops an identifier or refuses a merge leaves one.
const (
	ViolationBlocked      = "blocked_value"
	ViolationValueLimit   = "value_limit_exceeded"
	ViolationMergeLimit   = "merge_limit_exceeded"
	ViolationMappingLimit = "mapping_limit_exceeded"
)

// Violation explains why an identifier was not used or a merge did not happen.
type Violation struct {
	Kind       string     `json:"kind"`
	Identifier Identifier `json:"identifier"`
	Detail     string     `json:"detail"`
	At         time.Time  `json:"at"`
}

// Seen is an identifier of a profile with the time it was first mapped to it.
type Seen struct {
	Identifier
	FirstSeen time.Time `json:"first_seen"`
}

// Candidate is what the resolver needs to know of a live profile that owns an identifier.
type Candidate struct {
	ID          string
	CreatedAt   time.Time // the oldest profile survives a merge (ties: the smaller ID)
	Identifiers []Seen
	Merges      int // profiles merged into this one so far, transitively
}

// Decision is what a message does to the identity graph.
type Decision struct {
	// Profile is the profile the message resolves to; empty when Create is set.
	Profile string
	Create  bool
	// Merge lists the profiles merged into Profile (the oldest of the matched ones).
	Merge []string
	// Add lists the identifiers newly mapped to the resolved profile.
	Add []Identifier
	// Used lists the message's identifiers that took part in matching.
	Used       []Identifier
	Violations []Violation
}

func windowLength(w string) (time.Duration, bool) {
	switch w {
	case WindowWeekly:
		return 7 * 24 * time.Hour, true
	case WindowMonthly:
		return 30 * 24 * time.Hour, true
	case WindowAnnually:
		return 365 * 24 * time.Hour, true
	}
	return 0, false // ever
}

// Resolver decides, for one space's rules, which profile a message resolves to.
type Resolver struct {
	rules *Compiled
}

// NewResolver returns a resolver for a space's compiled settings.
func NewResolver(c *Compiled) *Resolver { return &Resolver{rules: c} }

// rule returns the rule of typ; an unconfigured type ranks last with the tightest limit.
func (r *Resolver) rule(typ string) Rule {
	if rule, ok := r.rules.Rule(typ); ok {
		return rule
	}
	return Rule{Type: typ, Limit: 1, Window: WindowEver, Priority: int(^uint(0) >> 1)}
}

func (r *Resolver) priority(id Identifier) int { return r.rule(id.Type).Priority }

// Decide resolves a message's identifiers (blocked values already removed) against the
// profiles that own them. owner maps an identifier to the live profile that owns it ("" for
// none); candidates holds those profiles. now is the clock that windows count from.
//
// The rule (PRODUCT.md section 3): match on any identifier; check the limits on the would-be
// profile; while one is exceeded, drop the lowest-priority identifier from the message and
// match again. Then create, add, or merge into the oldest, within the caps.
func (r *Resolver) Decide(ids []Identifier, owner func(Identifier) string, candidates map[string]Candidate, now time.Time) Decision {
	cur := slices.Clone(ids)
	slices.SortStableFunc(cur, func(a, b Identifier) int {
		return cmp.Or(cmp.Compare(r.priority(a), r.priority(b)), cmp.Compare(a.Type, b.Type), cmp.Compare(a.Value, b.Value))
	})
	cur = slices.Compact(cur)
	var d Decision
	var matched []Candidate
	for {
		matched = matched[:0]
		seen := map[string]bool{}
		for _, id := range cur {
			if p := owner(id); p != "" && !seen[p] {
				seen[p] = true
				matched = append(matched, candidates[p])
			}
		}
		typ, over := r.exceeded(cur, matched, now)
		if !over || len(cur) <= 1 {
			break
		}
		dropped := cur[len(cur)-1]
		cur = cur[:len(cur)-1]
		d.Violations = append(d.Violations, Violation{
			Kind: ViolationValueLimit, Identifier: dropped, At: now,
			Detail: "the " + typ + " limit would be exceeded; " + dropped.String() + " (lowest priority) was not used",
		})
	}
	d.Used = cur
	slices.SortFunc(matched, func(a, b Candidate) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	if len(matched) == 0 {
		d.Create = true
		d.Add = cur
		return d
	}
	survivor := matched[0]
	d.Profile = survivor.ID
	owned := map[Identifier]bool{}
	merges := survivor.Merges
	for _, c := range matched {
		for _, s := range c.Identifiers {
			owned[s.Identifier] = true
		}
		if c.ID != survivor.ID {
			merges += 1 + c.Merges
		}
	}
	var fresh []Identifier
	for _, id := range cur {
		if !owned[id] && owner(id) == "" {
			fresh = append(fresh, id)
		}
	}
	if len(matched) > 1 {
		switch {
		case merges > MaxMerges:
			d.Violations = append(d.Violations, r.refused(ViolationMergeLimit, matched[1:], now,
				"the merge cap of 100 per profile would be exceeded"))
			return d
		case len(owned)+len(fresh) > MaxIdentifiers:
			d.Violations = append(d.Violations, r.refused(ViolationMappingLimit, matched[1:], now,
				"the cap of 1,000 identifiers per profile would be exceeded"))
			return d
		}
		for _, c := range matched[1:] {
			d.Merge = append(d.Merge, c.ID)
		}
	}
	if len(owned)+len(fresh) > MaxIdentifiers {
		for _, id := range fresh {
			d.Violations = append(d.Violations, Violation{Kind: ViolationMappingLimit, Identifier: id, At: now,
				Detail: "the cap of 1,000 identifiers per profile is reached; " + id.String() + " was not added"})
		}
		return d
	}
	d.Add = fresh
	return d
}

// refused records a merge that did not happen, naming one identifier of each profile left apart.
func (r *Resolver) refused(kind string, apart []Candidate, now time.Time, why string) Violation {
	v := Violation{Kind: kind, At: now, Detail: why + "; profiles "}
	for i, c := range apart {
		if i > 0 {
			v.Detail += ", "
		}
		v.Detail += c.ID
	}
	v.Detail += " were not merged"
	if len(apart[0].Identifiers) > 0 {
		v.Identifier = apart[0].Identifiers[0].Identifier
	}
	return v
}

// exceeded reports the first identifier type whose limit the would-be profile (the matched
// profiles plus the message's identifiers) breaks: more distinct values within the window
// than the limit, and more than any matched profile already holds (settings apply to new
// data only, so a profile over a since-lowered limit is not made worse, nor split).
func (r *Resolver) exceeded(cur []Identifier, matched []Candidate, now time.Time) (string, bool) {
	if len(matched) == 1 && r.holdsInWindow(matched[0], cur, now) {
		return "", false // the would-be profile is the matched one: no count grows past its own
	}
	return r.exceededCounting(cur, matched, now)
}

// holdsInWindow reports whether c already holds every identifier of cur within its type's
// window: the common case (a returning visitor), answered without exceededCounting's maps.
func (r *Resolver) holdsInWindow(c Candidate, cur []Identifier, now time.Time) bool {
	for _, id := range cur {
		i := slices.IndexFunc(c.Identifiers, func(s Seen) bool { return s.Identifier == id })
		if i < 0 {
			return false
		}
		if l, ok := windowLength(r.rule(id.Type).Window); ok && now.Sub(c.Identifiers[i].FirstSeen) >= l {
			return false
		}
	}
	return true
}

// exceededCounting is exceeded by counting every type's values in the would-be profile.
func (r *Resolver) exceededCounting(cur []Identifier, matched []Candidate, now time.Time) (string, bool) {
	union := map[string]map[string]bool{} // type → values in window
	most := map[string]int{}              // type → the most values any one matched profile holds
	inWindow := func(typ string, at time.Time) bool {
		l, ok := windowLength(r.rule(typ).Window)
		return !ok || now.Sub(at) < l
	}
	add := func(typ, value string) {
		if union[typ] == nil {
			union[typ] = map[string]bool{}
		}
		union[typ][value] = true
	}
	for _, c := range matched {
		per := map[string]int{}
		for _, s := range c.Identifiers {
			if inWindow(s.Type, s.FirstSeen) {
				add(s.Type, s.Value)
				per[s.Type]++
			}
		}
		for typ, n := range per {
			most[typ] = max(most[typ], n)
		}
	}
	for _, id := range cur {
		add(id.Type, id.Value)
	}
	// Check in priority order so the violation names the most important type.
	types := make([]string, 0, len(union))
	for typ := range union {
		types = append(types, typ)
	}
	slices.SortFunc(types, func(a, b string) int {
		return cmp.Or(cmp.Compare(r.rule(a).Priority, r.rule(b).Priority), cmp.Compare(a, b))
	})
	for _, typ := range types {
		if n := len(union[typ]); n > r.rule(typ).Limit && n > most[typ] {
			return typ, true
		}
	}
	return "", false
}
