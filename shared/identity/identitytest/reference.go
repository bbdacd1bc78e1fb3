// Package identitytest holds the reference model of the identity rules, written apart from
// the resolver, that tests compare the resolver and the stores against.
package identitytest

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
)

// NewReference returns an empty reference model for settings s.
func NewReference(s identity.Settings) *Reference {
	m := &Reference{rules: map[string]identity.Rule{}}
	for _, r := range s.Identifiers {
		m.rules[r.Type] = r
	}
	return m
}

// Partition lists the reference's live profiles, each as its sorted identifiers.
func (m *Reference) Partition() []string {
	var groups [][]identity.Identifier
	for _, p := range m.profiles {
		if p.alive {
			var l []identity.Identifier
			for i := range p.ids {
				l = append(l, i)
			}
			groups = append(groups, l)
		}
	}
	return Partition(groups)
}

// Reference is the rules of PRODUCT.md section 3 written again, plainly and apart from the
// resolver: profiles are slices scanned in full for every message.
type Reference struct {
	rules    map[string]identity.Rule
	profiles []*refProfile
}

type refProfile struct {
	seq    int
	ids    map[identity.Identifier]time.Time
	merges int
	alive  bool
}

func (m *Reference) Apply(now time.Time, msg []identity.Identifier) {
	cur := slices.Clone(msg)
	sort.SliceStable(cur, func(i, j int) bool {
		if m.rules[cur[i].Type].Priority != m.rules[cur[j].Type].Priority {
			return m.rules[cur[i].Type].Priority < m.rules[cur[j].Type].Priority
		}
		return cur[i].Value < cur[j].Value
	})
	cur = slices.Compact(cur)
	var owners []*refProfile
	for {
		owners = nil
		for _, p := range m.profiles {
			if !p.alive {
				continue
			}
			for _, i := range cur {
				if _, ok := p.ids[i]; ok {
					owners = append(owners, p)
					break
				}
			}
		}
		if len(cur) <= 1 || !m.over(now, cur, owners) {
			break
		}
		cur = cur[:len(cur)-1]
	}
	if len(owners) == 0 {
		p := &refProfile{seq: len(m.profiles), ids: map[identity.Identifier]time.Time{}, alive: true}
		for _, i := range cur {
			p.ids[i] = now
		}
		m.profiles = append(m.profiles, p)
		return
	}
	surv := owners[0] // profiles are kept in creation order
	total, merges := 0, surv.merges
	all := map[identity.Identifier]bool{}
	for _, p := range owners {
		for i := range p.ids {
			all[i] = true
		}
		if p != surv {
			merges += p.merges + 1
		}
	}
	for _, i := range cur {
		all[i] = true
	}
	total = len(all)
	if len(owners) > 1 && (merges > identity.MaxMerges || total > identity.MaxIdentifiers) {
		return
	}
	if total > identity.MaxIdentifiers {
		return
	}
	for _, p := range owners[1:] {
		for i, at := range p.ids {
			surv.ids[i] = at
		}
		p.alive = false
	}
	surv.merges = merges
	for _, i := range cur {
		if _, ok := surv.ids[i]; !ok {
			surv.ids[i] = now
		}
	}
}

func (m *Reference) over(now time.Time, cur []identity.Identifier, owners []*refProfile) bool {
	counts := map[string]map[string]bool{}
	single := map[string]int{}
	live := func(typ string, at time.Time) bool {
		switch m.rules[typ].Window {
		case identity.WindowWeekly:
			return now.Sub(at) < 7*24*time.Hour
		case identity.WindowMonthly:
			return now.Sub(at) < 30*24*time.Hour
		case identity.WindowAnnually:
			return now.Sub(at) < 365*24*time.Hour
		}
		return true
	}
	put := func(i identity.Identifier) {
		if counts[i.Type] == nil {
			counts[i.Type] = map[string]bool{}
		}
		counts[i.Type][i.Value] = true
	}
	for _, p := range owners {
		n := map[string]int{}
		for i, at := range p.ids {
			if live(i.Type, at) {
				put(i)
				n[i.Type]++
			}
		}
		for typ, k := range n {
			single[typ] = max(single[typ], k)
		}
	}
	for _, i := range cur {
		put(i)
	}
	for typ, vals := range counts {
		if len(vals) > m.rules[typ].Limit && len(vals) > single[typ] {
			return true
		}
	}
	return false
}

// Partition lists each live profile's identifiers, sorted, for comparison.
func Partition(groups [][]identity.Identifier) []string {
	var out []string
	for _, g := range groups {
		var s []string
		for _, i := range g {
			s = append(s, i.String())
		}
		sort.Strings(s)
		out = append(out, strings.Join(s, " "))
	}
	sort.Strings(out)
	return out
}
