package tracking

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/unifiedprofiles/up/shared/fieldstats"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// SeenFields counts the identifiers and traits in what sources sent lately: over each
// source's debugger (its latest DebuggerSize entries of the last 7 days), the accepted
// messages that carried each identifier type and each trait key. Step 3 of the setup shows
// it. It reads the debugger and nothing else, so ingest pays nothing for it.
//
// Identifiers are extracted again with the identity rules the source's space has now, not
// those of when the message arrived: a custom identifier just defined shows how many recent
// messages carry it. Blocked values do not count. Traits are the keys of an identify's
// traits and of any message's context.traits, counted once per message; keys the space
// reads as identifiers (email, the keys of custom identifiers) count as identifiers only,
// as a CSV upload's summary counts them. Duplicates (retries) and rejected messages do not
// count. A batch's shared context is not in a debugger entry, so its context.traits are not
// seen.
//
// The caller has checked that the sources are the caller's (workspace.ListSources).
func (s *Service) SeenFields(ctx context.Context, sources []workspace.Source) (fieldstats.Fields, error) {
	out := fieldstats.New()
	rules := map[string]*seenRules{} // by space
	for _, src := range sources {
		r, ok := rules[src.SpaceID]
		if !ok {
			c, err := s.profiles.Rules(ctx, src.SpaceID)
			if err != nil {
				return fieldstats.Fields{}, err
			}
			r = newSeenRules(c)
			rules[src.SpaceID] = r
		}
		entries, err := s.entries(ctx, src.ID, "")
		if err != nil {
			return fieldstats.Fields{}, fmt.Errorf("read the debugger of %s: %w", src.ID, err)
		}
		for _, e := range entries {
			if e.Status == StatusAccepted && e.Normalised != nil {
				r.count(&out, e)
			}
		}
	}
	return out, nil
}

// seenRules is a space's compiled rules and the trait keys they read as identifiers.
type seenRules struct {
	c    *identity.Compiled
	isID map[string]bool
}

func newSeenRules(c *identity.Compiled) *seenRules {
	r := &seenRules{c: c, isID: map[string]bool{}}
	for _, rule := range c.Rules() {
		switch {
		case rule.Type == identity.TypeEmail:
			r.isID[rule.Type] = true
		case rule.Custom:
			for _, k := range rule.Keys {
				r.isID[k] = true
			}
		}
	}
	return r
}

// count adds what one accepted entry carried to f.
func (r *seenRules) count(f *fieldstats.Fields, e Entry) {
	// The ids and the type come from what normalisation decided; the objects identity reads
	// from, from the payload as received (normalisation keeps them as sent).
	var w struct {
		Traits       map[string]any `json:"traits"`
		Properties   map[string]any `json:"properties"`
		Context      map[string]any `json:"context"`
		Integrations map[string]any `json:"integrations"`
	}
	_ = json.Unmarshal(e.Raw, &w) // accepted, so valid; a field of another shape stays nil
	n := e.Normalised
	m := message.Message{Type: n.Type, UserID: n.UserID, AnonymousID: n.AnonymousID, GroupID: n.GroupID,
		Context: w.Context, Integrations: w.Integrations}
	switch n.Type { // as normalise keeps them
	case message.Identify, message.Group:
		m.Traits = w.Traits
	case message.Track, message.Page, message.Screen:
		m.Properties = w.Properties
	}

	ids, _ := r.c.Extract(m)
	for i, id := range ids {
		// Extract groups a type's values together, so a type repeats only right after itself.
		if i == 0 || ids[i-1].Type != id.Type {
			f.AddIdentifier(id.Type, 1)
		}
	}

	var traits map[string]any
	if n.Type == message.Identify { // a group's traits describe the group
		traits = m.Traits
	}
	for k := range traits {
		if !r.isID[k] {
			f.AddTrait(k, 1)
		}
	}
	for k := range message.Object(m.Context, "traits") {
		if _, both := traits[k]; !both && !r.isID[k] {
			f.AddTrait(k, 1)
		}
	}
}
