package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/store"
)

// Result says what Apply did.
type Result struct {
	ProfileID  string
	Created    bool
	Added      []identity.Identifier
	Merged     []string // profiles merged into ProfileID
	Violations []identity.Violation
	// Duplicate: the messageId was applied before and nothing changed now; ProfileID and
	// Created say what the first application did.
	Duplicate bool
}

// dedupeRecord remembers what a message did, for the answer to its redeliveries.
type dedupeRecord struct {
	ProfileID string `json:"profile_id"`
	Created   bool   `json:"created,omitempty"`
}

// Apply resolves a normalised message into a space and applies it to exactly one profile:
// identifiers, traits (identify), group links (group), the event and the metadata, all in
// one transaction. It is idempotent per messageId for DedupeWindow.
// Errors: invalid_field / too_many_traits / no_identifiers (400); identity_contention (503)
// when the graph kept changing under it — never a silent split.
func (s *Service) Apply(ctx context.Context, spaceID string, m message.Message) (Result, error) {
	if m.MessageID == "" {
		return Result{}, errcode.InvalidField("messageId", "is required to apply a message exactly once")
	}
	if m.Type == message.Identify && len(m.Traits) >= MaxTraitsPerIdentify {
		return Result{}, &errcode.Error{Kind: errcode.Invalid, Code: "too_many_traits", Field: "traits",
			Message: fmt.Sprintf("identify carries %d traits; the limit is fewer than %d", len(m.Traits), MaxTraitsPerIdentify)}
	}
	// A lost race is retried at once, then with jittered exponential backoff, so that writers
	// colliding on one profile spread out; 25 attempts take at most about 1.5 s. Only lost
	// races come back here: a throttled store (store.ErrThrottled) is not retried again above
	// the SDK, and goes to the caller as a 503.
	delay := time.Millisecond
	for attempt := 0; attempt < maxAttempts; attempt++ {
		res, err := s.apply(ctx, spaceID, m)
		if !errors.Is(err, errContended) {
			return res, err
		}
		if attempt > 0 {
			wait := delay/2 + time.Duration(rand.Int64N(int64(delay/2)+1))
			select {
			case <-ctx.Done():
				return Result{}, ctx.Err()
			case <-time.After(wait):
			}
			delay = min(delay*2, 100*time.Millisecond)
		}
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
	}
	return Result{}, contention(spaceID)
}

// loaded is a profile read for this attempt, with its version.
type loaded struct {
	p       Profile
	version int64
}

func (s *Service) apply(ctx context.Context, spaceID string, m message.Message) (Result, error) {
	// First round trip: the dedupe key, the settings, and the claims of the identifiers the
	// last known settings extract (usually the right ones: settings rarely change).
	dk, sk, tk := dedupeKey(spaceID, m.MessageID), settingsKey(spaceID), traitsKey(spaceID)
	asked := map[store.Key]bool{dk: true, sk: true, tk: true}
	keys := []store.Key{dk, sk, tk}
	if last := s.lastRules(spaceID); last != nil {
		guess, _ := last.Extract(m)
		keys = appendClaimKeys(keys, asked, spaceID, guess)
	}
	got := map[store.Key]store.Item{}
	if err := s.getMany(ctx, got, keys); err != nil {
		return Result{}, err
	}
	if dup, ok := got[dk]; ok {
		var rec dedupeRecord
		json.Unmarshal(dup.Data, &rec)
		return Result{ProfileID: rec.ProfileID, Created: rec.Created, Duplicate: true}, nil
	}
	var settingsItem *store.Item
	if it, ok := got[sk]; ok {
		settingsItem = &it
	}
	rules, err := s.rules(spaceID, settingsItem)
	if err != nil {
		return Result{}, err
	}
	var traitsItem *store.Item
	if it, ok := got[tk]; ok {
		traitsItem = &it
	}
	defs, err := s.traitDefs.decode(spaceID, traitsItem)
	if err != nil {
		return Result{}, err
	}
	if err := defs.refuseShadowing(m); err != nil {
		return Result{}, err
	}
	now := s.now()
	readAt := now
	ids, blocked := rules.Extract(m)
	var violations []identity.Violation
	for _, b := range blocked {
		violations = append(violations, identity.Violation{Kind: identity.ViolationBlocked, Identifier: b, At: now,
			Detail: b.String() + " is a blocked value: kept in the payload, not used as an identifier"})
	}
	if len(ids) == 0 {
		return Result{}, &errcode.Error{Kind: errcode.Invalid, Code: "no_identifiers",
			Message: "the message carries no usable identifier (userId, anonymousId or a configured identifier; blocked values do not count)"}
	}
	if missing := appendClaimKeys(nil, asked, spaceID, ids); len(missing) > 0 {
		if err := s.getMany(ctx, got, missing); err != nil {
			return Result{}, err
		}
	}

	// Who owns each identifier now: claims point at the profile that first took them, which
	// forwards (MergedInto) to the survivor of any merge.
	owners, profiles, err := s.owners(ctx, spaceID, ids, got)
	if err != nil {
		return Result{}, err
	}
	cands := make(map[string]identity.Candidate, len(profiles))
	for pid, l := range profiles {
		if l.p.MergedInto == "" {
			cands[pid] = l.p.candidate()
		}
	}
	d := identity.NewResolver(rules).Decide(ids, func(id identity.Identifier) string { return owners[id] }, cands, now)
	violations = append(violations, d.Violations...)

	res := Result{ProfileID: d.Profile, Created: d.Create, Added: d.Add, Merged: d.Merge, Violations: violations}
	var ops []store.Op
	var target *Profile
	var prev int64
	if d.Create {
		res.ProfileID = s.ids.New("prof_")
		target = &Profile{ID: res.ProfileID, SpaceID: spaceID, CreatedAt: now, First: ref(m)}
	} else {
		l := profiles[d.Profile]
		target, prev = &l.p, l.version
	}
	changed := d.Create || len(d.Add) > 0 || len(d.Merge) > 0 || len(violations) > 0
	for _, loser := range d.Merge {
		l := profiles[loser]
		mergeInto(target, &l.p)
		mergeComputed(target, &l.p)
		forward := Profile{ID: l.p.ID, SpaceID: spaceID, MergedInto: target.ID, CreatedAt: l.p.CreatedAt, UpdatedAt: now, First: l.p.First}
		ops = append(ops, store.ReplaceOp(item(profileKey(spaceID, loser), forward), l.version))
	}
	for _, id := range d.Add {
		target.Identifiers = append(target.Identifiers, Identifier{Seen: identity.Seen{Identifier: id, FirstSeen: now}, SourceID: m.SourceID})
		ops = append(ops, store.PutOp(item(claimKey(spaceID, id), claim{ProfileID: target.ID}), store.MustNotExist))
	}
	if m.Type == message.Identify && applyTraits(target, m.Traits, m.Timestamp) {
		changed = true
	}
	if m.Type == message.Group && m.GroupID != "" && !slices.Contains(target.Groups, m.GroupID) {
		target.Groups = append(target.Groups, m.GroupID)
		changed = true
	}
	if updateComputed(target, defs, m, d.Create, now) {
		changed = true
	}
	if changed {
		target.Violations = append(target.Violations, violations...)
		if n := len(target.Violations); n > MaxViolationsKept {
			target.Violations = slices.Clone(target.Violations[n-MaxViolationsKept:])
		}
		target.UpdatedAt = now
		ops = append(ops, store.ReplaceOp(item(profileKey(spaceID, target.ID), target), prev))
	}
	// When nothing on the profile changes (a returning visitor) it is not even checked: if it
	// was merged away meanwhile, the event stays under its id, which the survivor lists in
	// MergedIDs and reads. That keeps a returning visitor at two writes (event, dedupe key).
	exp := now.Add(EventRetention).Unix()
	ev := Event{MessageID: m.MessageID, Type: m.Type, Event: m.Event, Name: m.Name, Timestamp: m.Timestamp,
		ReceivedAt: m.ReceivedAt, SourceID: m.SourceID, Properties: m.Properties, Identifiers: ids, Raw: m.Raw,
		TraitsVersion: defs.version}
	evItem := item(eventKey(spaceID, target.ID, m.Timestamp, m.MessageID), ev)
	evItem.ExpiresAt = exp
	dd := item(dedupeKey(spaceID, m.MessageID), dedupeRecord{ProfileID: target.ID, Created: d.Create})
	dd.ExpiresAt = now.Add(DedupeWindow).Unix()
	ops = append(ops, store.PutOp(evItem, store.Always), store.PutOp(dd, store.MustNotExist))
	if d.Create {
		ops = append(ops, store.PutOp(store.Item{Key: listKey(spaceID, target.ID)}, store.Always))
	}
	if len(ops) > store.MaxOps {
		return Result{}, &errcode.Error{Kind: errcode.Invalid, Code: "too_many_identifiers",
			Message: fmt.Sprintf("the message would change %d records at once; send fewer identifiers per message", len(ops))}
	}
	if s.now().Sub(readAt) > maxAttemptAge {
		// Too old to commit: the computed-trait definitions read may have changed, and a new
		// trait's backfill relies on no attempt committing this long after its read.
		return Result{}, errContended
	}
	if err := s.st.Transact(ctx, ops...); err != nil {
		// A failed condition means the graph moved since we read it (or the same messageId
		// committed concurrently, which the next attempt reports as a duplicate).
		if store.FailedOp(err) >= 0 || errors.Is(err, store.ErrContention) {
			return Result{}, errContended
		}
		return Result{}, err
	}
	return res, nil
}

// claim is the owner record of an identifier.
type claim struct {
	ProfileID string `json:"profile_id"`
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
// Every profile read is returned, forwarded ones included.
func (s *Service) owners(ctx context.Context, spaceID string, ids []identity.Identifier, got map[store.Key]store.Item) (map[identity.Identifier]string, map[string]*loaded, error) {
	pointed := map[identity.Identifier]string{}
	for _, id := range ids {
		it, ok := got[claimKey(spaceID, id)]
		if !ok {
			continue
		}
		var c claim
		if err := json.Unmarshal(it.Data, &c); err != nil {
			return nil, nil, fmt.Errorf("decode claim %s: %w", claimKey(spaceID, id), err) // the key names it without its value
		}
		pointed[id] = c.ProfileID
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
		read := map[store.Key]store.Item{}
		if err := s.getMany(ctx, read, keys); err != nil {
			return nil, nil, err
		}
		next = next[:0]
		for i, pid := range pids {
			it, ok := read[keys[i]]
			if !ok {
				// A claim commits with its profile in one transaction: a missing profile
				// means we read between two of someone else's steps. Start over.
				return nil, nil, errContended
			}
			l := &loaded{version: it.Version}
			if err := json.Unmarshal(it.Data, &l.p); err != nil {
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
