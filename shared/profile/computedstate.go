package profile

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
)

// stateKey is a profile's state for one computed trait: in the profile's partition, an item
// of its own.
func stateKey(sp, pid, traitID string) store.Key {
	return store.Key{PK: profilePK(sp, pid), SK: "CT#" + traitID}
}

// stateRef names a state: the profile and the trait.
type stateRef struct{ pid, trait string }

// loadedState is a stored state with its item version (0: none stored yet).
type loadedState struct {
	st      ComputedState
	version int64
}

// readStates reads the states of every trait in defs for each profile in pids into into.
// Keys in asked were read already: their items, if any, are in got.
func (s *Service) readStates(ctx context.Context, spaceID string, pids []string, defs []ComputedTrait, into map[stateRef]*loadedState, got map[store.Key]store.Item, asked map[store.Key]bool) error {
	if len(defs) == 0 || len(pids) == 0 {
		return nil
	}
	var keys, missing []store.Key
	var refs []stateRef
	for _, pid := range pids {
		for _, t := range defs {
			if _, ok := into[stateRef{pid, t.ID}]; !ok {
				k := stateKey(spaceID, pid, t.ID)
				keys = append(keys, k)
				refs = append(refs, stateRef{pid, t.ID})
				if !asked[k] {
					missing = append(missing, k)
				}
			}
		}
	}
	if got == nil {
		got = map[store.Key]store.Item{}
	}
	if err := s.getMany(ctx, got, missing); err != nil {
		return err
	}
	for i, k := range keys {
		l := &loadedState{}
		if it, ok := got[k]; ok {
			l.version = it.Version
			if err := json.Unmarshal(it.Data, &l.st); err != nil {
				return fmt.Errorf("decode computed-trait state %s: %w", k, err)
			}
		}
		into[refs[i]] = l
	}
	return nil
}

// MaxStateBytes is the most one profile's state for one computed trait may hold (DynamoDB's
// item limit, less room for the keys): past it a matching event is refused, not counted
// wrongly. The states are bounded well below it (traits.MaxValues), so only a trait whose
// every day holds hundreds of distinct values over years can reach it.
const MaxStateBytes = MaxProfileBytes

// stateItem encodes a state to write, refusing one past MaxStateBytes.
// Errors: computed_trait_state_too_large (400).
func stateItem(k store.Key, t ComputedTrait, st ComputedState) (store.Item, error) {
	it := store.JSONItem(k, st)
	if n := len(it.Data); n > MaxStateBytes {
		return store.Item{}, &errcode.Error{Kind: errcode.Invalid, Code: "computed_trait_state_too_large",
			Message: fmt.Sprintf("counting this event, the profile's state for computed trait %s (%s) would take %d bytes; a state holds at most %d bytes (DynamoDB's 400 KB item limit), so the message was not applied", t.ID, t.Definition.Key, n, MaxStateBytes)}
	}
	return it, nil
}
