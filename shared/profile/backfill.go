package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"slices"
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/traits"
)

// Backfill statuses of a computed trait.
const (
	BackfillPending = "pending"
	BackfillRunning = "running"
	BackfillDone    = "done"
	// BackfillFailed: the backfill failed maxBackfillFailures runs in a row and is no longer
	// tried (the live values keep counting); Backfill.Error says why.
	BackfillFailed = "failed"
)

// backfillLease is how long a runner holds a backfill without checkpointing: overlapping
// scheduled invocations skip a held backfill, and a runner that died is replaced once its
// lease runs out. A checkpoint (every backfillPage profiles) renews it.
const backfillLease = time.Minute

// maxBackfillFailures ends a backfill that keeps failing, instead of leaving it running.
const maxBackfillFailures = 5

// DefaultBackfillDelay is how long a new trait waits before its backfill starts. An Apply
// that read the definitions before the trait existed gives up an attempt older than
// maxAttemptAge, so once this delay has passed every event the live path did not count is
// stored and the backfill sees it.
const DefaultBackfillDelay = 10 * time.Second

// allTime is an end for Events that no stored event reaches.
var allTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// maxAttemptAge bounds the time between an Apply attempt's first read and its commit.
const maxAttemptAge = 5 * time.Second

// profileListShards spread a space's profile list over partitions so that creating many
// profiles at once does not write one hot partition: 8 DynamoDB partitions take about 4,000
// transactional creates per second per space (30 % new visitors at 10,000 messages a second;
// ACCESS_PATTERNS.md). Only ever raise it: the backfill reads every shard below it, so
// profiles listed under a smaller count are still found.
const profileListShards = 8

// backfillPage is how many listed profiles one step of a backfill covers between checkpoints.
const backfillPage = 100

// listKey lists a profile in its space, for whole-space work (backfills); written with the
// profile's creation.
func listKey(sp, pid string) store.Key {
	h := fnv.New32a()
	h.Write([]byte(pid))
	return store.Key{PK: listPK(sp, int(h.Sum32()%profileListShards)), SK: pid}
}

func listPK(sp string, shard int) string { return fmt.Sprintf("%s#PL#%02d", spacePK(sp), shard) }

// listCursor is a position in a space's profile list: the shard and the last id read there.
// A shard of profileListShards is the end.
type listCursor struct {
	shard int
	after string
}

// listedPage is one query's page of a space's profile list and the cursor after it.
type listedPage struct {
	pids []string
	next listCursor
}

// listedPages yields a space's listed profile ids from the cursor on, shard by shard, one
// query (backfillPage ids) per page as the caller pulls. Every page is yielded, an empty
// shard's too, so a caller that checkpoints after each moves past it. Listed ids include
// profiles merged away since (the list only grows).
func (s *Service) listedPages(ctx context.Context, spaceID string, from listCursor) iter.Seq2[listedPage, error] {
	return func(yield func(listedPage, error) bool) {
		for cur := from; cur.shard < profileListShards; {
			if err := ctx.Err(); err != nil {
				yield(listedPage{}, err)
				return
			}
			items, err := s.st.Query(ctx, listPK(spaceID, cur.shard), store.Page{After: cur.after, Limit: backfillPage})
			if err != nil {
				yield(listedPage{}, err)
				return
			}
			page := listedPage{pids: make([]string, len(items))}
			for i, it := range items {
				page.pids[i] = it.SK
			}
			if len(items) < backfillPage {
				cur = listCursor{shard: cur.shard + 1}
			} else {
				cur.after = items[len(items)-1].SK
			}
			page.next = cur
			if !yield(page, nil) {
				return
			}
		}
	}
}

func backfillKey(sp, traitID string) store.Key {
	return store.Key{PK: spacePK(sp), SK: "CTRAIT#" + traitID + "#BACKFILL"}
}

// pendingBackfillsPK holds one item per backfill not finished yet, across spaces, so the
// scheduled runner finds them in one query.
const pendingBackfillsPK = "BACKFILLS"

func pendingBackfillKey(sp, traitID string) store.Key {
	return store.Key{PK: pendingBackfillsPK, SK: sp + "#" + traitID}
}

type pendingBackfill struct {
	SpaceID string `json:"space_id"`
	TraitID string `json:"trait_id"`
}

// listWalk is where a walk over a space's profile list (a backfill) is and who holds it,
// checkpointed in the walk's own item after every page (walkList).
type listWalk struct {
	Shard    int    `json:"shard"`
	After    string `json:"after,omitempty"`
	Profiles int    `json:"profiles"` // listed profiles covered so far
	// LeaseUntil: a runner holds the walk until then (renewed at each checkpoint).
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

func (w *listWalk) done() bool { return w.Shard >= profileListShards }

// takeLease takes w's lease for this runner unless another runner holds it (false), and
// saves it with save: of two runners that read the same checkpoint only one's save succeeds
// (the other's answers errLeaseLost, and it leaves the walk).
func (s *Service) takeLease(w *listWalk, save func() error) (bool, error) {
	now := s.now()
	if now.Before(w.LeaseUntil) {
		return false, nil
	}
	w.LeaseUntil = now.Add(backfillLease)
	switch err := save(); {
	case errors.Is(err, errLeaseLost):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// walkList calls each for every listed profile id from w's position on, and after every
// page moves w past it, renews the lease (released once the list is done) and checkpoints
// with save; it stops at the first error.
func (s *Service) walkList(ctx context.Context, spaceID string, w *listWalk, each func(pid string) error, save func() error) error {
	for page, err := range s.listedPages(ctx, spaceID, listCursor{shard: w.Shard, after: w.After}) {
		if err != nil {
			return err
		}
		for _, pid := range page.pids {
			if err := each(pid); err != nil {
				return err
			}
		}
		w.Profiles += len(page.pids)
		w.Shard, w.After = page.next.shard, page.next.after
		w.LeaseUntil = s.now().Add(backfillLease)
		if w.done() {
			w.LeaseUntil = time.Time{}
		}
		if err := save(); err != nil {
			return err
		}
	}
	return nil
}

// backfillJob is the progress of one trait's backfill, checkpointed after every page.
type backfillJob struct {
	TraitID   string    `json:"trait_id"`
	Status    string    `json:"status"`
	NotBefore time.Time `json:"not_before"`
	listWalk
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Failures   int       `json:"failures,omitempty"` // runs in a row that failed
	Error      string    `json:"error,omitempty"`    // the last failure, for people
}

// Backfill is the progress of a trait's backfill, for people to read.
type Backfill struct {
	Status     string    `json:"status"`
	Profiles   int       `json:"profiles"`
	NotBefore  time.Time `json:"not_before"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Error      string    `json:"error,omitempty"` // why it failed, when it did
}

// BackfillProgress returns the backfill progress of a trait. Errors: not_found (404).
func (s *Service) BackfillProgress(ctx context.Context, spaceID, traitID string) (Backfill, error) {
	job, _, err := s.loadJob(ctx, spaceID, traitID)
	if err != nil {
		return Backfill{}, err
	}
	return Backfill{Status: job.Status, Profiles: job.Profiles, NotBefore: job.NotBefore, StartedAt: job.StartedAt, FinishedAt: job.FinishedAt, Error: job.Error}, nil
}

func (s *Service) loadJob(ctx context.Context, spaceID, traitID string) (backfillJob, int64, error) {
	it, err := s.st.Get(ctx, backfillKey(spaceID, traitID))
	if errors.Is(err, store.ErrNotFound) {
		return backfillJob{}, 0, traitNotFound(traitID)
	}
	if err != nil {
		return backfillJob{}, 0, err
	}
	var job backfillJob
	if err := json.Unmarshal(it.Data, &job); err != nil {
		return backfillJob{}, 0, fmt.Errorf("decode backfill of %s: %w", traitID, err)
	}
	return job, it.Version, nil
}

// RunBackfills works on every unfinished backfill that is due, until all are done or ctx
// ends (a scheduled run then continues from the checkpoints). Overlapping runners never work
// on one backfill together: each takes a backfill's lease with a conditional write first.
func (s *Service) RunBackfills(ctx context.Context) error {
	items, err := s.st.Query(ctx, pendingBackfillsPK, store.Page{})
	if err != nil {
		return fmt.Errorf("list pending backfills: %w", err)
	}
	var errs []error
	for _, it := range items {
		var p pendingBackfill
		if err := json.Unmarshal(it.Data, &p); err != nil {
			errs = append(errs, fmt.Errorf("decode pending backfill %s: %w", it.SK, err))
			continue
		}
		if _, err := s.Backfill(ctx, p.SpaceID, p.TraitID); err != nil {
			errs = append(errs, fmt.Errorf("backfill %s of space %s: %w", p.TraitID, p.SpaceID, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// Backfill runs one trait's backfill from its checkpoint until it is done or ctx ends, and
// reports whether it is done. A backfill not yet due (see DefaultBackfillDelay), or held by
// another runner's lease, is left. A run that fails is counted; after maxBackfillFailures in
// a row the backfill ends failed.
func (s *Service) Backfill(ctx context.Context, spaceID, traitID string) (bool, error) {
	job, version, err := s.loadJob(ctx, spaceID, traitID)
	if err != nil {
		return false, err
	}
	if job.Status == BackfillDone || job.Status == BackfillFailed {
		return true, s.st.Transact(ctx, store.DeleteOp(pendingBackfillKey(spaceID, traitID), store.Always))
	}
	now := s.now()
	if now.Before(job.NotBefore) || now.Before(job.LeaseUntil) {
		return false, nil // not due, or another runner holds it
	}
	ct, err := s.loadTraits(ctx, spaceID)
	if err != nil {
		return false, err
	}
	i := slices.IndexFunc(ct.traits, func(t ComputedTrait) bool { return t.ID == traitID })
	if i < 0 { // deleted meanwhile
		return true, s.st.Transact(ctx, store.DeleteOp(pendingBackfillKey(spaceID, traitID), store.Always))
	}
	trait := ct.traits[i]
	if job.Status == BackfillPending {
		job.Status, job.StartedAt = BackfillRunning, now
	}
	if held, err := s.takeLease(&job.listWalk, func() error { return s.checkpoint(ctx, spaceID, job, &version) }); !held || err != nil {
		return false, err
	}
	done, err := s.backfillFrom(ctx, spaceID, trait, &job, &version)
	if errors.Is(err, errLeaseLost) || err != nil && ctx.Err() != nil {
		return false, err // replaced by another runner, or stopped: nothing to count
	}
	if err != nil {
		return false, s.backfillFailed(ctx, spaceID, job, version, err)
	}
	return done, s.st.Transact(ctx, store.DeleteOp(pendingBackfillKey(spaceID, traitID), store.Always))
}

// backfillFrom covers the listed profiles from job's checkpoint, checkpointing (and renewing
// the lease) after every page.
func (s *Service) backfillFrom(ctx context.Context, spaceID string, trait ComputedTrait, job *backfillJob, version *int64) (bool, error) {
	err := s.walkList(ctx, spaceID, &job.listWalk, func(pid string) error { return s.backfillProfile(ctx, spaceID, trait, pid) }, func() error {
		job.Failures, job.Error = 0, ""
		if job.done() {
			job.Status, job.FinishedAt = BackfillDone, s.now()
		}
		return s.checkpoint(ctx, spaceID, *job, version)
	})
	return err == nil, err
}

// backfillFailed records a failed run and releases the lease, so the next scheduled run
// retries at once; the maxBackfillFailures-th failure in a row ends the backfill failed.
func (s *Service) backfillFailed(ctx context.Context, spaceID string, job backfillJob, version int64, cause error) error {
	job.Failures++
	job.LeaseUntil = time.Time{}
	job.Error = "the backfill stopped on an internal error; it is retried on the next run"
	if job.Failures >= maxBackfillFailures {
		job.Status, job.FinishedAt = BackfillFailed, s.now()
		job.Error = fmt.Sprintf("the backfill failed %d runs in a row and was stopped; the trait keeps counting new events", job.Failures)
	}
	if err := s.checkpoint(ctx, spaceID, job, &version); err != nil && !errors.Is(err, errLeaseLost) {
		return errors.Join(cause, err)
	}
	return cause
}

// errLeaseLost: another runner took the backfill (our lease ran out); stop without writing.
var errLeaseLost = errors.New("profile: backfill lease lost")

// checkpoint saves a backfill's progress (saveWalk).
func (s *Service) checkpoint(ctx context.Context, spaceID string, job backfillJob, version *int64) error {
	return s.saveWalk(ctx, backfillKey(spaceID, job.TraitID), job, version)
}

// saveWalk writes a walk's item at k if no other runner wrote it since *version (which only
// happens when one took over an expired lease): then it answers errLeaseLost. It moves
// *version on to the version written.
func (s *Service) saveWalk(ctx context.Context, k store.Key, job any, version *int64) error {
	err := s.st.Transact(ctx, store.ReplaceOp(store.JSONItem(k, job), *version))
	switch {
	case store.FailedOp(err) == 0:
		return errLeaseLost
	case err != nil:
		return err
	}
	*version++
	return nil
}

// backfillProfile computes the backfilled half of one trait on the live profile that pid is
// (or was merged into), unless that profile has it already.
func (s *Service) backfillProfile(ctx context.Context, spaceID string, t ComputedTrait, pid string) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		l, err := s.live(ctx, spaceID, pid)
		if errors.Is(err, errNoProfile) {
			return nil
		}
		if err != nil {
			return err
		}
		states := map[stateRef]*loadedState{}
		if err := s.readStates(ctx, spaceID, []string{l.p.ID}, []ComputedTrait{t}, states, nil, nil); err != nil {
			return err
		}
		cur := states[stateRef{l.p.ID, t.ID}]
		if cur.st.Backfilled != nil {
			return nil
		}
		events, err := s.Events(ctx, spaceID, l.p, time.Time{}, allTime)
		if err != nil {
			return err
		}
		var state traits.State
		for _, e := range events {
			if e.TraitsVersion >= t.Since || e.Type != message.Track {
				continue // counted live, or not an event the traits read
			}
			state.Add(t.Definition, traits.Event{Name: e.Event, Properties: e.Properties, Time: e.Timestamp, ID: e.MessageID})
		}
		state.Prune(t.Definition, s.now())
		cur.st.Backfilled = &state
		it, err := stateItem(stateKey(spaceID, l.p.ID, t.ID), t, cur.st)
		if err != nil {
			return err
		}
		// The state's version guards it: Apply counting into it, or a merge taking it
		// into another profile (which deletes it), sends this profile round again.
		err = s.st.Transact(ctx, store.ReplaceOp(it, cur.version))
		if store.FailedOp(err) == 0 {
			continue
		}
		return err
	}
	return contention(spaceID)
}

var errNoProfile = errors.New("profile: not found")

// live reads the live profile pid is or was merged into, with its version.
func (s *Service) live(ctx context.Context, spaceID, pid string) (loaded, error) {
	for hops := 0; hops <= identity.MaxMerges+1; hops++ {
		it, err := s.st.Get(ctx, profileKey(spaceID, pid))
		if errors.Is(err, store.ErrNotFound) {
			return loaded{}, errNoProfile
		}
		if err != nil {
			return loaded{}, err
		}
		l := loaded{version: it.Version}
		if err := json.Unmarshal(it.Data, &l.p); err != nil {
			return loaded{}, fmt.Errorf("decode profile %s: %w", pid, err)
		}
		if l.p.MergedInto == "" {
			return l, nil
		}
		pid = l.p.MergedInto
	}
	return loaded{}, fmt.Errorf("profile: merge chain from %s too long", pid)
}
