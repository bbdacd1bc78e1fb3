package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/traits"
)

// Predictions (shared/predict) score profiles; a registered prediction's score shows as a
// computed trait under its key (ComputedTraitValues: the Profile API's traits and the
// explorer). The registrations are one space item, read with the computed-trait
// definitions; each score is an item of its own in the profile's partition.

// ScoreRetention is how long a score is kept after it was computed: a prediction that stops
// running stops showing stale scores.
const ScoreRetention = 30 * 24 * time.Hour

// scoresPerBatch bounds one store.TransactBatch of PutScores (bbolt: one commit; DynamoDB:
// up to 16 single writes in flight).
const scoresPerBatch = 500

// predictionSet is the stored registrations of a space: prediction id → trait key.
type predictionSet struct {
	Keys map[string]string `json:"keys"`
	// CountingSince is set when the first prediction registers (kept while one stays, cleared
	// with the last): from then on every message applied is counted as it is applied, so
	// BackfillCounts folds in what was stored before it (see countingGrace).
	CountingSince time.Time `json:"counting_since,omitzero"`
}

// countingGrace is how long after a space's first registration every Apply counts: an Apply
// commits within maxAttemptAge of reading the space's config (configTTL old at most), so
// after this no Apply that read it before the registration can still commit an event
// uncounted and unmarked.
const countingGrace = configTTL + maxAttemptAge

func predictionsKey(sp string) store.Key { return store.Key{PK: spacePK(sp), SK: "PREDICTIONS"} }

func scoreKey(sp, pid, predictionID string) store.Key {
	return store.Key{PK: profilePK(sp, pid), SK: "S#" + predictionID}
}

// storedScore is one profile's score for one prediction.
type storedScore struct {
	Score float64   `json:"score"`
	At    time.Time `json:"at"`
}

// compiledPredictions are a space's registrations at a version (0: none stored).
type compiledPredictions struct {
	version       int64
	keys          map[string]string // id → key
	ids           []string          // sorted
	countingSince time.Time
}

// refuseShadowing refuses an identify that sets a prediction's key, as for computed traits.
// Errors: trait_key_reserved (400).
func (c compiledPredictions) refuseShadowing(m message.Message) error {
	if m.Type != message.Identify || len(c.ids) == 0 {
		return nil
	}
	for _, id := range c.ids {
		if _, ok := m.Traits[c.keys[id]]; ok {
			return &errcode.Error{Kind: errcode.Invalid, Code: "trait_key_reserved", Field: "traits." + c.keys[id],
				Message: fmt.Sprintf("trait %q is the key of a prediction of this space (%s); send it under another key", c.keys[id], id)}
		}
	}
	return nil
}

// decodePredictions decodes a space's PREDICTIONS item.
func decodePredictions(data []byte, version int64) (compiledPredictions, error) {
	var set predictionSet
	if err := json.Unmarshal(data, &set); err != nil {
		return compiledPredictions{}, err
	}
	return compiledPredictions{version: version, keys: set.Keys, ids: slices.Sorted(maps.Keys(set.Keys)), countingSince: set.CountingSince}, nil
}

// loadDefinitions reads a space's computed traits and predictions in one round trip.
func (s *Service) loadDefinitions(ctx context.Context, spaceID string) (compiledTraits, compiledPredictions, error) {
	tk, pk := traitsKey(spaceID), predictionsKey(spaceID)
	got, err := s.st.GetMany(ctx, tk, pk)
	if err != nil {
		return compiledTraits{}, compiledPredictions{}, fmt.Errorf("read computed traits and predictions of %s: %w", spaceID, err)
	}
	return s.decodeDefinitions(spaceID, got)
}

// decodeDefinitions decodes what loadDefinitions (or the space config) read.
func (s *Service) decodeDefinitions(spaceID string, got map[store.Key]store.Item) (compiledTraits, compiledPredictions, error) {
	var ti, pi *store.Item
	if it, ok := got[traitsKey(spaceID)]; ok {
		ti = &it
	}
	if it, ok := got[predictionsKey(spaceID)]; ok {
		pi = &it
	}
	ct, err := s.traitDefs.decode(spaceID, ti, decodeTraits)
	if err != nil {
		return compiledTraits{}, compiledPredictions{}, err
	}
	cp, err := s.predictions.decode(spaceID, pi, decodePredictions)
	return ct, cp, err
}

func predictionNotFound(id string) error {
	return errcode.NotFoundf("prediction %s was not found", id)
}

// RegisterPrediction shows prediction id's scores under key from now on. The key follows
// the computed-trait rules (snake_case, at most 100 characters) and must be free: not a
// computed trait's, another prediction's, nor one keyInUse refuses (reserved, an
// identifier's, a custom trait in customTraitKeys). Registering an id again with its key
// changes nothing; with another key it moves there. The space's first registration starts
// its daily counts (counting_since: see BackfillCounts). The caller has checked that the
// space is the caller's. Errors: invalid_field (400); trait_key_in_use (409).
func (s *Service) RegisterPrediction(ctx context.Context, spaceID, id, key string, customTraitKeys ...string) error {
	if id == "" {
		return errcode.InvalidField("id", "is required")
	}
	// The computed traits' rule for a key, reused whole (only the key can be at fault here).
	if err := (traits.Definition{Key: key, Type: traits.EventCounter, Event: "-"}).Validate(); err != nil {
		return err
	}
	if err := s.keyInUse(ctx, spaceID, key, customTraitKeys); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		ct, cp, err := s.loadDefinitions(ctx, spaceID)
		if err != nil {
			return err
		}
		if cp.keys[id] == key {
			return nil
		}
		for _, t := range ct.traits {
			if t.Definition.Key == key {
				return keyTaken(key, "the key of computed trait "+t.ID)
			}
		}
		for other, k := range cp.keys {
			if k == key && other != id {
				return keyTaken(key, "the key of prediction "+other)
			}
		}
		set := predictionSet{Keys: maps.Clone(cp.keys), CountingSince: cp.countingSince}
		if set.Keys == nil {
			set.Keys = map[string]string{}
		}
		set.Keys[id] = key
		if set.CountingSince.IsZero() {
			set.CountingSince = s.now().Add(countingGrace)
		}
		// The definitions' version is checked too: a computed trait taking the key meanwhile
		// fails this write (CreateComputedTrait checks the registrations the same way).
		err = s.st.Transact(ctx, store.ReplaceOp(store.JSONItem(predictionsKey(spaceID), set), cp.version),
			store.CheckVersionOp(traitsKey(spaceID), ct.version))
		if store.FailedOp(err) >= 0 && attempt < maxAttempts {
			continue
		}
		if err == nil {
			s.configs.forget(spaceID)
		}
		return err
	}
}

// UnregisterPrediction stops showing prediction id's scores, at once: every read of them
// filters by the registrations. The scores stay until they expire (ScoreRetention). Once
// the last one goes, messages are no longer counted (within configTTL everywhere); the
// counts written so far stay until they expire (CountsRetention).
// Errors: not_found (404).
func (s *Service) UnregisterPrediction(ctx context.Context, spaceID, id string) error {
	for attempt := 0; ; attempt++ {
		_, cp, err := s.loadDefinitions(ctx, spaceID)
		if err != nil {
			return err
		}
		if _, ok := cp.keys[id]; !ok {
			return predictionNotFound(id)
		}
		set := predictionSet{Keys: maps.Clone(cp.keys), CountingSince: cp.countingSince}
		delete(set.Keys, id)
		if len(set.Keys) == 0 {
			set.CountingSince = time.Time{} // the next first registration counts anew
		}
		err = s.st.Transact(ctx, store.ReplaceOp(store.JSONItem(predictionsKey(spaceID), set), cp.version))
		if store.FailedOp(err) == 0 && attempt < maxAttempts {
			continue
		}
		if err == nil {
			s.configs.forget(spaceID)
		}
		return err
	}
}

// PutScores stores prediction id's scores (profile id → score, a percentile in [0, 1])
// computed at at; each expires ScoreRetention after at. Each is a single write of its own,
// many in flight at once (store.TransactBatch), scoresPerBatch per batch. A score is shown
// only while its prediction is registered. Errors: invalid_field (400), before anything is
// written.
func (s *Service) PutScores(ctx context.Context, spaceID, id string, scores map[string]float64, at time.Time) error {
	if id == "" {
		return errcode.InvalidField("id", "is required")
	}
	pids := slices.Sorted(maps.Keys(scores))
	for _, pid := range pids {
		if v := scores[pid]; pid == "" || math.IsNaN(v) || v < 0 || v > 1 {
			return errcode.InvalidField("scores", "the score of profile %q is %v; a score is a percentile from 0 to 1 of a profile id", pid, v)
		}
	}
	expires := at.Add(ScoreRetention).Unix()
	for len(pids) > 0 {
		n := min(len(pids), scoresPerBatch)
		txs := make([]store.Tx, n)
		for i, pid := range pids[:n] {
			it := store.JSONItem(scoreKey(spaceID, pid, id), storedScore{Score: scores[pid], At: at.UTC()})
			it.ExpiresAt = expires
			txs[i] = store.Tx{Ops: []store.Op{store.PutOp(it, store.Always)}}
		}
		errs, err := store.TransactBatch(ctx, s.st, txs)
		if err != nil {
			return fmt.Errorf("store scores of prediction %s: %w", id, err)
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("store scores of prediction %s: %w", id, err)
		}
		pids = pids[n:]
	}
	return nil
}

// keyTaken is keyInUse's answer for a key a computed trait or prediction holds.
func keyTaken(key, why string) error {
	return &errcode.Error{Kind: errcode.Conflict, Code: "trait_key_in_use", Field: "key",
		Message: fmt.Sprintf("%q is %s, so a trait of that key would hide it or be hidden; choose another key", key, why)}
}
