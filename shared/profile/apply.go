package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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
	Duplicate  bool // the messageId was applied before; nothing changed now
}

type dedupeRecord struct {
	ProfileID string `json:"profile_id"`
}

// Apply resolves a normalised message into a space and applies it to exactly one profile:
// identifiers, traits (identify), group links (group), the event and the metadata, all in
// one transaction. It is idempotent per messageId for DedupeWindow.
// Errors: invalid_field / too_many_traits / no_identifiers (400); identity_contention (409)
// when the graph kept changing under it — never a silent split.
func (s *Service) Apply(ctx context.Context, spaceID string, m message.Message) (Result, error) {
	if m.MessageID == "" {
		return Result{}, errcode.InvalidField("messageId", "is required to apply a message exactly once")
	}
	if m.Type == message.Identify && len(m.Traits) >= MaxTraitsPerIdentify {
		return Result{}, &errcode.Error{Kind: errcode.Invalid, Code: "too_many_traits", Field: "traits",
			Message: fmt.Sprintf("identify carries %d traits; the limit is fewer than %d", len(m.Traits), MaxTraitsPerIdentify)}
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		res, err := s.apply(ctx, spaceID, m)
		if !errors.Is(err, errContended) {
			return res, err
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
	if dup, err := s.st.Get(ctx, dedupeKey(spaceID, m.MessageID)); err == nil {
		var rec dedupeRecord
		json.Unmarshal(dup.Data, &rec)
		return Result{ProfileID: rec.ProfileID, Duplicate: true}, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return Result{}, err
	}
	rules, err := s.rules(ctx, spaceID)
	if err != nil {
		return Result{}, err
	}
	now := s.now()
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

	// Who owns each identifier now: claims point at the profile that first took them, which
	// forwards (MergedInto) to the survivor of any merge.
	owners := map[identity.Identifier]string{}
	profiles := map[string]*loaded{}
	for _, id := range ids {
		pid, err := s.owner(ctx, spaceID, id, profiles)
		if err != nil {
			return Result{}, err
		}
		owners[id] = pid
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
		ReceivedAt: m.ReceivedAt, SourceID: m.SourceID, Properties: m.Properties, Identifiers: ids, Raw: m.Raw}
	evItem := item(eventKey(spaceID, target.ID, m.Timestamp, m.MessageID), ev)
	evItem.ExpiresAt = exp
	dd := item(dedupeKey(spaceID, m.MessageID), dedupeRecord{ProfileID: target.ID})
	dd.ExpiresAt = now.Add(DedupeWindow).Unix()
	ops = append(ops, store.PutOp(evItem, store.Always), store.PutOp(dd, store.MustNotExist))
	if len(ops) > store.MaxOps {
		return Result{}, &errcode.Error{Kind: errcode.Invalid, Code: "too_many_identifiers",
			Message: fmt.Sprintf("the message would change %d records at once; send fewer identifiers per message", len(ops))}
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

// owner returns the live profile owning id ("" when none), loading every profile on the way
// into profiles.
func (s *Service) owner(ctx context.Context, spaceID string, id identity.Identifier, profiles map[string]*loaded) (string, error) {
	it, err := s.st.Get(ctx, claimKey(spaceID, id))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var c claim
	if err := json.Unmarshal(it.Data, &c); err != nil {
		return "", fmt.Errorf("decode claim %s: %w", id, err)
	}
	pid := c.ProfileID
	for hops := 0; hops <= identity.MaxMerges+1; hops++ {
		l, ok := profiles[pid]
		if !ok {
			it, err := s.st.Get(ctx, profileKey(spaceID, pid))
			if errors.Is(err, store.ErrNotFound) {
				// A claim committed with its profile in one transaction: a missing profile
				// means we read between two of someone else's steps. Start over.
				return "", errContended
			}
			if err != nil {
				return "", err
			}
			l = &loaded{version: it.Version}
			if err := json.Unmarshal(it.Data, &l.p); err != nil {
				return "", fmt.Errorf("decode profile %s: %w", pid, err)
			}
			profiles[pid] = l
		}
		if l.p.MergedInto == "" {
			return pid, nil
		}
		pid = l.p.MergedInto
	}
	return "", fmt.Errorf("profile: merge chain from %s is longer than %d", id, identity.MaxMerges+1)
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
