package profile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/store"
)

// claim is the owner record of an identifier.
type claim struct {
	ProfileID string `json:"profile_id"`
}

// claimOwner returns the profile a stored claim names. Every message reads its identifiers'
// claims, so the form json.Marshal writes for a plain ID is read without encoding/json;
// anything else (escapes, spacing) goes through json.Unmarshal.
func claimOwner(data []byte) (string, error) {
	const head, tail = `{"profile_id":"`, `"}`
	if len(data) >= len(head)+len(tail) && string(data[:len(head)]) == head && string(data[len(data)-len(tail):]) == tail {
		id := data[len(head) : len(data)-len(tail)]
		if !bytes.ContainsAny(id, "\\\"") && utf8.Valid(id) && !slices.ContainsFunc(id, func(c byte) bool { return c < 0x20 }) {
			return string(id), nil
		}
	}
	var c claim
	err := json.Unmarshal(data, &c)
	return c.ProfileID, err
}

// appendClaimKeys adds the claim keys of ids not yet asked for.
func appendClaimKeys(keys []store.Key, asked map[store.Key]bool, spaceID string, ids []identity.Identifier) []store.Key {
	for _, id := range ids {
		if k := claimKey(spaceID, id); !asked[k] {
			asked[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// owners maps each identifier to the live profile owning it (absent when none), reading
// the claims in got and then the profiles they point at, one round trip per merge hop.
// Every profile read is returned, forwarded ones included. also, when set, names more keys
// to read with each hop's profiles; what every hop reads is added to got.
func (s *Service) owners(ctx context.Context, spaceID string, ids []identity.Identifier, got map[store.Key]store.Item, also func(pids []string) []store.Key) (map[identity.Identifier]string, map[string]*loaded, error) {
	pointed := map[identity.Identifier]string{}
	for _, id := range ids {
		it, ok := got[claimKey(spaceID, id)]
		if !ok {
			continue
		}
		pid, err := claimOwner(it.Data)
		if err != nil {
			return nil, nil, fmt.Errorf("decode claim %s: %w", claimKey(spaceID, id), err) // the key names it without its value
		}
		pointed[id] = pid
	}
	profiles := map[string]*loaded{}
	next := slices.Sorted(maps.Values(pointed))
	for hops := 0; len(next) > 0; hops++ {
		if hops > identity.MaxMerges+1 {
			return nil, nil, fmt.Errorf("profile: a merge chain in space %s is longer than %d", spaceID, identity.MaxMerges+1)
		}
		var pids []string
		var keys []store.Key
		for _, pid := range slices.Compact(next) {
			if profiles[pid] == nil {
				pids = append(pids, pid)
				keys = append(keys, profileKey(spaceID, pid))
			}
		}
		if also != nil {
			keys = append(keys, also(pids)...) // in the same round trip
		}
		read := map[store.Key]store.Item{}
		if err := s.getMany(ctx, read, keys); err != nil {
			return nil, nil, err
		}
		maps.Copy(got, read)
		next = next[:0]
		for i, pid := range pids {
			it, ok := read[keys[i]]
			if !ok {
				// A claim commits with its profile in one transaction: a missing profile
				// means we read between two of someone else's steps. Start over.
				return nil, nil, errContended
			}
			l := &loaded{version: it.Version, raw: it.Data}
			if err := l.decodeHead(&s.heads, keys[i]); err != nil {
				return nil, nil, fmt.Errorf("decode profile %s: %w", pid, err)
			}
			profiles[pid] = l
			if l.p.MergedInto != "" && profiles[l.p.MergedInto] == nil {
				next = append(next, l.p.MergedInto)
			}
		}
		slices.Sort(next)
	}
	owners := make(map[identity.Identifier]string, len(pointed))
	for id, pid := range pointed {
		// Every hop was read above; the bound only guards against a corrupt cycle.
		for hops := 0; profiles[pid].p.MergedInto != ""; hops++ {
			if hops > identity.MaxMerges+1 {
				return nil, nil, fmt.Errorf("profile: the merge chain of %s does not end", claimKey(spaceID, id))
			}
			pid = profiles[pid].p.MergedInto
		}
		owners[id] = pid
	}
	return owners, profiles, nil
}

// mergeInto moves loser's identifiers, traits and history into survivor.
func mergeInto(survivor, loser *Profile) {
	survivor.Identifiers = append(survivor.Identifiers, loser.Identifiers...)
	survivor.Merges += 1 + loser.Merges
	survivor.MergedIDs = append(append(survivor.MergedIDs, loser.ID), loser.MergedIDs...)
	survivor.Violations = append(survivor.Violations, loser.Violations...)
	for _, g := range loser.Groups {
		if !slices.Contains(survivor.Groups, g) {
			survivor.Groups = append(survivor.Groups, g)
		}
	}
	if survivor.Traits == nil && len(loser.Traits) > 0 {
		survivor.Traits = map[string]Trait{}
	}
	for k, t := range loser.Traits {
		if cur, ok := survivor.Traits[k]; !ok || t.At.After(cur.At) {
			survivor.Traits[k] = t
		}
	}
	if loser.First.At.Before(survivor.First.At) {
		survivor.First = loser.First
	}
}

// applyTraits sets traits newest-wins by event time: a trait set by a later event is not
// overwritten by an earlier one arriving late; null removes (leaving a tombstone with its
// time); "" is kept as a value. It reports whether anything changed.
func applyTraits(p *Profile, traits map[string]any, at time.Time) bool {
	changed := false
	for _, k := range slices.Sorted(maps.Keys(traits)) {
		v := traits[k]
		cur, ok := p.Traits[k]
		if ok && cur.At.After(at) {
			continue
		}
		next := Trait{Value: v, At: at, Removed: v == nil}
		if ok && cur.Removed == next.Removed && equalJSON(cur.Value, v) && !at.After(cur.At) {
			continue
		}
		if p.Traits == nil {
			p.Traits = map[string]Trait{}
		}
		p.Traits[k] = next
		changed = true
	}
	return changed
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func ref(m message.Message) MessageRef {
	return MessageRef{ID: m.MessageID, Type: m.Type, At: m.Timestamp, SourceID: m.SourceID}
}

func item(k store.Key, v any) store.Item { return store.JSONItem(k, v) }
