package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/store"
)

// A space counts its messages as they are applied only while it has a prediction (or for an
// import). When its first prediction registers, the events it already stores (up to
// EventRetention) were not counted: BackfillCounts folds them into the counts once, as
// foldedCounters beside the live ones, so a prediction created today still sees the last
// 30 days. Each stored event says whether it was counted as it was applied (Event.Counted),
// and the backfill folds exactly those that were not: no event counts twice, whatever the
// order in which Apply and the backfill run.

// foldedPrefix starts the sort keys of both folded counters ("DB#" and "DBR#").
const foldedPrefix = "DB"

func countsBackfillKey(sp string) store.Key {
	return store.Key{PK: spacePK(sp), SK: "COUNTS#BACKFILL"}
}

// countsJob is the progress of a space's counts backfill for one counting_since,
// checkpointed after every page of the profile list.
type countsJob struct {
	CountingSince time.Time `json:"counting_since"`
	Status        string    `json:"status"` // BackfillRunning, BackfillDone
	listWalk
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Error      string    `json:"error,omitempty"` // the last failure, for people
}

func (s *Service) loadCountsJob(ctx context.Context, spaceID string) (countsJob, int64, error) {
	it, err := s.st.Get(ctx, countsBackfillKey(spaceID))
	if errors.Is(err, store.ErrNotFound) {
		return countsJob{}, 0, nil
	}
	if err != nil {
		return countsJob{}, 0, err
	}
	var job countsJob
	if err := json.Unmarshal(it.Data, &job); err != nil {
		return countsJob{}, 0, fmt.Errorf("decode the counts backfill of %s: %w", spaceID, err)
	}
	return job, it.Version, nil
}

// BackfillCounts folds the events a space stored before it counted them (see above) into
// its daily counts, from its checkpoint until every listed profile is covered (done) or ctx
// ends; call it again until it reports done. It is done at once when the space has no
// registered prediction, or when the backfill for the current registration finished. It
// does not start (false, nil) before counting_since, when every Apply is sure to count, nor
// while another runner holds it (a lease, as for a computed trait's backfill). A run that
// stops part-way (a crash, ctx) goes on from its last checkpoint: what it writes are sums,
// not additions, so a page done twice counts once. The caller has checked that the space is
// the caller's.
func (s *Service) BackfillCounts(ctx context.Context, spaceID string) (done bool, err error) {
	_, cp, err := s.loadDefinitions(ctx, spaceID)
	if err != nil {
		return false, err
	}
	if len(cp.ids) == 0 {
		return true, nil
	}
	job, version, err := s.loadCountsJob(ctx, spaceID)
	if err != nil {
		return false, err
	}
	if job.CountingSince.Equal(cp.countingSince) && job.Status == BackfillDone {
		return true, nil
	}
	now := s.now()
	if now.Before(cp.countingSince) {
		return false, nil
	}
	if !job.CountingSince.Equal(cp.countingSince) || job.Status == "" {
		// The space's first backfill, or one for a new first registration (its predictions
		// were all unregistered since the last): over the whole list again. A runner still on
		// the old one keeps its lease, and loses it at its next checkpoint.
		job = countsJob{CountingSince: cp.countingSince, Status: BackfillRunning, StartedAt: now, listWalk: listWalk{LeaseUntil: job.LeaseUntil}}
	}
	save := func() error { return s.saveWalk(ctx, countsBackfillKey(spaceID), job, &version) }
	if held, err := s.takeLease(&job.listWalk, save); !held || err != nil {
		return false, err
	}
	err = s.walkList(ctx, spaceID, &job.listWalk, func(pid string) error { return s.foldUncounted(ctx, spaceID, pid) }, func() error {
		job.Error = ""
		if job.done() {
			job.Status, job.FinishedAt = BackfillDone, s.now()
		}
		return save()
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errLeaseLost):
		return false, nil // another runner took it over
	case ctx.Err() != nil:
		return false, err
	}
	// Released, so the next call retries at once.
	job.LeaseUntil, job.Error = time.Time{}, "the counts backfill stopped on an internal error; it is retried on the next run"
	if serr := save(); serr != nil && !errors.Is(serr, errLeaseLost) {
		return false, errors.Join(err, serr)
	}
	return false, err
}

// CountsBackfillProgress returns how far the space's counts backfill is for its current
// registration: pending (not started; NotBefore is counting_since), running or done, and
// the listed profiles covered. A space with no registered prediction has none (zero).
func (s *Service) CountsBackfillProgress(ctx context.Context, spaceID string) (Backfill, error) {
	_, cp, err := s.loadDefinitions(ctx, spaceID)
	if err != nil || len(cp.ids) == 0 {
		return Backfill{}, err
	}
	job, _, err := s.loadCountsJob(ctx, spaceID)
	if err != nil {
		return Backfill{}, err
	}
	if !job.CountingSince.Equal(cp.countingSince) || job.Status == "" {
		return Backfill{Status: BackfillPending, NotBefore: cp.countingSince}, nil
	}
	return Backfill{Status: job.Status, Profiles: job.Profiles, NotBefore: job.CountingSince, StartedAt: job.StartedAt, FinishedAt: job.FinishedAt, Error: job.Error}, nil
}

// foldUncounted writes into profile pid's partition the daily sums of the track events
// stored there that were not counted as they were applied: one Put per (day, event) and
// money property, never an addition, so doing it again writes the same. An item that holds
// more already keeps it: a later backfill, after some events expired, never shrinks what an
// earlier one found. pid may have been merged into another profile: its events stay under
// its id, and so do these sums (DailyCounts reads the merged ids).
func (s *Service) foldUncounted(ctx context.Context, spaceID, pid string) error {
	now := s.now()
	sums := map[store.Key]*contribution{}
	var keys []store.Key
	for e, err := range s.EventsInOrder(ctx, spaceID, Profile{ID: pid}, time.Time{}, allTime, false) {
		if err != nil {
			return err
		}
		if e.Counted {
			continue
		}
		m := message.Message{Type: e.Type, Event: e.Event, Timestamp: e.Timestamp, Properties: e.Properties}
		for _, c := range contributions(foldedCounters, spaceID, pid, m, now) {
			if sum := sums[c.key]; sum != nil {
				sum.delta += c.delta
				continue
			}
			sums[c.key] = &c
			keys = append(keys, c.key)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	held := map[string]int64{}
	for it, err := range s.allItems(ctx, profilePK(spaceID, pid), foldedPrefix, "") {
		if err != nil {
			return err
		}
		held[it.SK] = it.Count
	}
	var txs []store.Tx
	for _, k := range keys {
		c := sums[k]
		if c.delta <= held[k.SK] {
			continue
		}
		it := store.Item{Key: k, Count: c.delta, ExpiresAt: c.expires}
		txs = append(txs, store.Tx{Ops: []store.Op{store.PutOp(it, store.Always)}})
	}
	if len(txs) == 0 {
		return nil
	}
	errs, err := store.TransactBatch(ctx, s.st, txs)
	if err != nil {
		return fmt.Errorf("write the folded counts of a profile: %w", err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("write the folded counts of a profile: %w", err)
	}
	return nil
}
