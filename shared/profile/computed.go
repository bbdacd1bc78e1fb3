package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/traits"
)

// Computed traits are kept per profile as traits.State, one item per profile and trait beside
// the profile (stateKey), each with its own 400 KB on DynamoDB, so a profile full of traits
// still counts its events. Apply updates a state in the same transaction as the event that
// changes it, so a value never counts an event twice nor misses one that committed.
//
// A trait created after events arrived is backfilled from the stored events. Each event
// records the version of the space's trait definitions it was applied under
// (Event.TraitsVersion); a trait records the version it was created at (Since). Apply counts
// an event for every trait it knew of, the backfill counts exactly the events applied before
// the trait existed: together, each event once. The two halves are kept apart
// (ComputedState.Live and .Backfilled) so the backfill can be rerun and simply replaces its
// half.

// ComputedTrait is a computed trait of a space.
type ComputedTrait struct {
	ID         string            `json:"id"`
	Definition traits.Definition `json:"definition"`
	// Preset is the preset it was created from, if any.
	Preset    string    `json:"preset,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Since is the version of the space's definitions that first held this trait.
	Since int64 `json:"since"`
}

// ComputedState is what a profile keeps for one computed trait.
type ComputedState struct {
	// Live counts the events applied while the trait existed.
	Live traits.State `json:"live"`
	// Backfilled counts the events applied before it existed; nil until the backfill has
	// covered this profile (or after a merge with a profile it had not covered yet).
	Backfilled *traits.State `json:"backfilled,omitempty"`
}

// value is the trait's value at now from both halves.
func (c *ComputedState) value(d traits.Definition, now time.Time) (any, bool) {
	var st traits.State
	st.Merge(c.Live)
	if c.Backfilled != nil {
		st.Merge(*c.Backfilled)
	}
	return st.Value(d, now)
}

// traitSet is the stored list of a space's computed traits (one item, so Apply reads them
// with the identity settings).
type traitSet struct {
	Traits []ComputedTrait `json:"traits"`
}

func traitsKey(sp string) store.Key { return store.Key{PK: spacePK(sp), SK: "CTRAITS"} }

// compiledTraits are a space's definitions at a version.
type compiledTraits struct {
	version int64
	traits  []ComputedTrait
}

// refuseShadowing refuses an identify that sets a trait of a computed trait's key: stored, the
// custom value would hide the computed one or be hidden by it.
// Errors: trait_key_reserved (400).
func (c compiledTraits) refuseShadowing(m message.Message) error {
	if m.Type != message.Identify {
		return nil
	}
	for _, t := range c.traits {
		if _, ok := m.Traits[t.Definition.Key]; ok {
			return &errcode.Error{Kind: errcode.Invalid, Code: "trait_key_reserved", Field: "traits." + t.Definition.Key,
				Message: fmt.Sprintf("trait %q is the key of a computed trait of this space (%s); send it under another key", t.Definition.Key, t.ID)}
		}
	}
	return nil
}

// versionCache remembers what a space's item decoded to, per space and item version: the
// item is read with every batch and decoded again only when it changed.
type versionCache[T any] struct {
	mu sync.Mutex
	m  map[string]versioned[T]
}

type versioned[T any] struct {
	version int64
	v       T
}

// decode returns what it (nil: no item, the zero T) decodes to with decodeFn, from the cache
// when the space's item has the version decoded last.
func (c *versionCache[T]) decode(spaceID string, it *store.Item, decodeFn func(data []byte, version int64) (T, error)) (T, error) {
	var zero T
	if it == nil {
		return zero, nil
	}
	c.mu.Lock()
	got, ok := c.m[spaceID]
	c.mu.Unlock()
	if ok && got.version == it.Version {
		return got.v, nil
	}
	v, err := decodeFn(it.Data, it.Version)
	if err != nil {
		return zero, fmt.Errorf("decode %s of %s: %w", it.SK, spaceID, err)
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]versioned[T]{}
	}
	c.m[spaceID] = versioned[T]{version: it.Version, v: v}
	c.mu.Unlock()
	return v, nil
}

// decodeTraits decodes a space's CTRAITS item.
func decodeTraits(data []byte, version int64) (compiledTraits, error) {
	var set traitSet
	if err := json.Unmarshal(data, &set); err != nil {
		return compiledTraits{}, err
	}
	return compiledTraits{version: version, traits: set.Traits}, nil
}

// loadTraits reads a space's computed traits with their item version (0: none yet).
func (s *Service) loadTraits(ctx context.Context, spaceID string) (compiledTraits, error) {
	it, err := s.st.Get(ctx, traitsKey(spaceID))
	if errors.Is(err, store.ErrNotFound) {
		return compiledTraits{}, nil
	}
	if err != nil {
		return compiledTraits{}, fmt.Errorf("read computed traits of %s: %w", spaceID, err)
	}
	return s.traitDefs.decode(spaceID, &it, decodeTraits)
}

// ComputedTraits lists a space's computed traits, oldest first. The caller has checked that
// the space is the caller's.
func (s *Service) ComputedTraits(ctx context.Context, spaceID string) ([]ComputedTrait, error) {
	ct, err := s.loadTraits(ctx, spaceID)
	return slices.Clone(ct.traits), err
}

// ComputedTrait returns one computed trait. Errors: not_found (404).
func (s *Service) ComputedTrait(ctx context.Context, spaceID, id string) (ComputedTrait, error) {
	ct, err := s.loadTraits(ctx, spaceID)
	if err != nil {
		return ComputedTrait{}, err
	}
	for _, t := range ct.traits {
		if t.ID == id {
			return t, nil
		}
	}
	return ComputedTrait{}, traitNotFound(id)
}

func traitNotFound(id string) error {
	return errcode.NotFoundf("computed trait %s was not found", id)
}

// ErrNoSlot is returned by CreateComputedTrait when the caller's entitlement op failed.
var ErrNoSlot = errors.New("profile: no computed-trait slot left")

// CreateComputedTrait adds a trait to a space and schedules its backfill, in one
// transaction with take, the caller's entitlement op (a bounded counter): when take fails
// the result is ErrNoSlot and nothing is written. preset names the preset d came from ("" for
// none). customTraitKeys are the custom trait keys known to be in use in the space (what its
// sources and uploads carried): a computed trait never takes the key of a custom trait, nor
// of a reserved trait or one an identifier is read from, so neither ever hides the other
// (and Apply refuses an identify that sets a computed trait's key). Nor does it take a
// registered prediction's key (RegisterPrediction).
// Errors: invalid_field (400); computed_trait_exists, trait_key_in_use (409).
func (s *Service) CreateComputedTrait(ctx context.Context, spaceID string, d traits.Definition, preset string, take store.Op, customTraitKeys ...string) (ComputedTrait, error) {
	if err := d.Validate(); err != nil {
		return ComputedTrait{}, err
	}
	if err := s.keyInUse(ctx, spaceID, d.Key, customTraitKeys); err != nil {
		return ComputedTrait{}, err
	}
	now := s.now()
	t := ComputedTrait{ID: s.ids.New("ctr_"), Definition: d, Preset: preset, CreatedAt: now}
	for attempt := 0; ; attempt++ {
		ct, cp, err := s.loadDefinitions(ctx, spaceID)
		if err != nil {
			return ComputedTrait{}, err
		}
		for _, x := range ct.traits {
			if x.Definition.Key == d.Key {
				return ComputedTrait{}, errcode.New(errcode.Conflict, "computed_trait_exists",
					"a computed trait with key %q already exists in this space (%s); delete it first or choose another key", d.Key, x.ID)
			}
		}
		for _, id := range cp.ids {
			if cp.keys[id] == d.Key {
				return ComputedTrait{}, keyTaken(d.Key, "the key of prediction "+id)
			}
		}
		t.Since = ct.version + 1
		set := traitSet{Traits: append(slices.Clone(ct.traits), t)}
		job := backfillJob{TraitID: t.ID, NotBefore: now.Add(s.backfillDelay), Status: BackfillPending}
		err = s.st.Transact(ctx, take,
			store.ReplaceOp(store.JSONItem(traitsKey(spaceID), set), ct.version),
			store.ReplaceOp(store.JSONItem(backfillKey(spaceID, t.ID), job), 0),
			store.PutOp(store.JSONItem(pendingBackfillKey(spaceID, t.ID), pendingBackfill{SpaceID: spaceID, TraitID: t.ID}), store.Always),
			// A prediction registering the key meanwhile fails this (RegisterPrediction
			// checks the definitions the same way).
			store.CheckVersionOp(predictionsKey(spaceID), cp.version))
		switch store.FailedOp(err) {
		case -1:
			if err != nil {
				return ComputedTrait{}, err
			}
			s.configs.forget(spaceID)
			return t, nil
		case 0:
			return ComputedTrait{}, ErrNoSlot
		case 1, 4:
			if attempt < maxAttempts {
				continue // another definition or registration change won the race: read again
			}
		}
		return ComputedTrait{}, err
	}
}

// DeleteComputedTrait removes a trait from a space in one transaction with free, the
// caller's op that gives its entitlement slot back. Profiles' states for it stay, never read
// again (trait ids are not reused).
// Errors: not_found (404).
func (s *Service) DeleteComputedTrait(ctx context.Context, spaceID, id string, free store.Op) error {
	for attempt := 0; ; attempt++ {
		ct, err := s.loadTraits(ctx, spaceID)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(ct.traits, func(t ComputedTrait) bool { return t.ID == id })
		if i < 0 {
			return traitNotFound(id)
		}
		set := traitSet{Traits: slices.Delete(slices.Clone(ct.traits), i, i+1)}
		err = s.st.Transact(ctx,
			store.ReplaceOp(store.JSONItem(traitsKey(spaceID), set), ct.version),
			free,
			store.DeleteOp(backfillKey(spaceID, id), store.Always),
			store.DeleteOp(pendingBackfillKey(spaceID, id), store.Always))
		if store.FailedOp(err) == 0 && attempt < maxAttempts {
			continue
		}
		if err == nil {
			s.configs.forget(spaceID)
		}
		return err
	}
}

// ComputedTraitValues returns the current values of a profile's computed traits by key; a
// trait without a value (no qualifying event, or below its minimum frequency) is left out.
// Each registered prediction's score (0–1) is there too under the prediction's key, when
// the profile has one. Reads: the definitions and registrations in one round trip, then the
// profile's states and scores in another (none when the space has neither).
func (s *Service) ComputedTraitValues(ctx context.Context, spaceID string, p Profile) (map[string]any, error) {
	ct, cp, err := s.loadDefinitions(ctx, spaceID)
	if err != nil {
		return nil, err
	}
	got := map[store.Key]store.Item{}
	asked := map[store.Key]bool{}
	keys := make([]store.Key, 0, len(ct.traits)+len(cp.ids))
	for _, t := range ct.traits {
		k := stateKey(spaceID, p.ID, t.ID)
		keys, asked[k] = append(keys, k), true
	}
	for _, id := range cp.ids {
		keys = append(keys, scoreKey(spaceID, p.ID, id))
	}
	if err := s.getMany(ctx, got, keys); err != nil {
		return nil, err
	}
	states := map[stateRef]*loadedState{}
	if err := s.readStates(ctx, spaceID, []string{p.ID}, ct.traits, states, got, asked); err != nil {
		return nil, err
	}
	now := s.now()
	out := make(map[string]any, len(ct.traits)+len(cp.ids))
	for _, id := range cp.ids {
		it, ok := got[scoreKey(spaceID, p.ID, id)]
		if !ok {
			continue
		}
		var sc storedScore
		if err := json.Unmarshal(it.Data, &sc); err != nil {
			return nil, fmt.Errorf("decode score %s: %w", it.Key, err)
		}
		out[cp.keys[id]] = sc.Score
	}
	for _, t := range ct.traits {
		st := ComputedState{}
		if l := states[stateRef{p.ID, t.ID}]; l != nil {
			st = l.st
		}
		if v, ok := st.value(t.Definition, now); ok {
			out[t.Definition.Key] = v
		}
	}
	return out, nil
}

// traitEvent is a message as the computed traits see it; only track calls count.
func traitEvent(m message.Message) (traits.Event, bool) {
	if m.Type != message.Track {
		return traits.Event{}, false
	}
	return traits.Event{Name: m.Event, Properties: m.Properties, Time: m.Timestamp, ID: m.MessageID}, true
}

// clone is a deep copy of c.
func (c ComputedState) clone() ComputedState {
	var out ComputedState
	out.Live.Merge(c.Live)
	if c.Backfilled != nil {
		out.Backfilled = &traits.State{}
		out.Backfilled.Merge(*c.Backfilled)
	}
	return out
}

// mergeStates combines a loser's state into the survivor's: live halves add; a backfilled
// half stays only when both profiles had theirs (the events before the trait are disjoint,
// so their states add), otherwise it is cleared for the backfill to recompute.
func mergeStates(a, b ComputedState) ComputedState {
	var merged ComputedState
	merged.Live.Merge(a.Live)
	merged.Live.Merge(b.Live)
	if a.Backfilled != nil && b.Backfilled != nil {
		merged.Backfilled = &traits.State{}
		merged.Backfilled.Merge(*a.Backfilled)
		merged.Backfilled.Merge(*b.Backfilled)
	}
	return merged
}

// keyInUse refuses a computed-trait key that a custom trait has, or may have: a reserved
// trait, a trait an identifier of the space is read from, or a key the space's data carried.
func (s *Service) keyInUse(ctx context.Context, spaceID, key string, customTraitKeys []string) error {
	inUse := func(why string) error { return keyTaken(key, why) }
	if slices.Contains(traits.ReservedKeys, key) {
		return inUse("a reserved trait (Segment's identify spec)")
	}
	set, err := s.Settings(ctx, spaceID)
	if err != nil {
		return err
	}
	for _, r := range set.Identifiers {
		if r.Type == key || slices.Contains(r.Keys, key) {
			return inUse("where the " + r.Type + " identifier is read from")
		}
	}
	if slices.Contains(customTraitKeys, key) {
		return inUse("a custom trait this space's data already carries")
	}
	return nil
}
