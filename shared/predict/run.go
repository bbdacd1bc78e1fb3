package predict

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/predict/model"
	"github.com/unifiedprofiles/up/shared/store"
)

// Running a prediction (ARCHITECTURE.md section 3, "Syncs"): Queue finds the due ones in
// the PREDDUE partition and hands them to the sync queue (AWS) or Dispatch runs them
// in-process (local stack); Run claims one with a lease, so that overlapping dispatches and
// a queue's duplicate deliveries never run one prediction twice at once, runs it, and makes
// its next run due.

// maxTries ends, as failed, a prediction whose runs keep stopping without finishing (a worker
// out of time or memory), instead of taking it over every lease for ever.
const maxTries = 3

// maxModelBytes bounds a stored model: one DynamoDB item is at most 400 KB.
const maxModelBytes = 350 << 10

// dueQueryPages bounds how far Queue reads the due partition in one call (100 items a page).
const dueQueryPages = 10

// errLostLease: another run took the prediction over (this one outlived its lease) or it
// was deleted; this run writes nothing more.
var errLostLease = errors.New("predict: the run lost its lease")

// Queue hands every prediction due at now that no run holds to send (the sync-dispatcher
// sends one queue task each for the sync worker, which calls Run), and returns the errors
// joined. A prediction stays due until its run ends, so a lost or duplicate task costs
// nothing: the next minute's Queue sends it again, and Run's claim lets one run only.
func (s *Service) Queue(ctx context.Context, now time.Time, send func(context.Context, Due) error) error {
	due, err := s.due(ctx, now)
	errs := []error{err}
	for _, d := range due {
		if ctx.Err() != nil {
			break
		}
		rec, _, err := s.load(ctx, d.WorkspaceID, d.SpaceID, d.PredictionID)
		switch {
		case errcode.Is(err, "not_found"):
			continue // deleted: its due item went with it
		case err != nil:
			errs = append(errs, err)
			continue
		case now.Before(rec.LeaseUntil):
			continue // running
		}
		errs = append(errs, send(ctx, d))
	}
	return errors.Join(errs...)
}

// Dispatch runs every prediction due at now, one after the other (the local stack's runner),
// and returns their errors joined.
func (s *Service) Dispatch(ctx context.Context, now time.Time) error {
	return s.Queue(ctx, now, func(ctx context.Context, d Due) error {
		if _, err := s.Run(ctx, d.WorkspaceID, d.SpaceID, d.PredictionID); err != nil {
			return fmt.Errorf("prediction %s: %w", d.PredictionID, err)
		}
		return nil
	})
}

// due reads the predictions due at now, oldest first: pages of the PREDDUE partition, up to
// the first item in the future.
func (s *Service) due(ctx context.Context, now time.Time) ([]Due, error) {
	cut := now.UTC().Format(dueStamp) + "#~"
	var out []Due
	after := ""
	for range dueQueryPages {
		items, err := s.st.Query(ctx, duePK, store.Page{After: after, Limit: 100})
		if err != nil {
			return out, fmt.Errorf("list due predictions: %w", err)
		}
		for _, it := range items {
			if it.SK > cut { // in the future: the rest are later still
				return out, nil
			}
			var d Due
			if err := json.Unmarshal(it.Data, &d); err != nil {
				return out, fmt.Errorf("decode due item %s: %w", it.SK, err)
			}
			out = append(out, d)
		}
		if len(items) < 100 {
			break
		}
		after = items[len(items)-1].SK
	}
	return out, nil
}

// Run runs one prediction now if it is due and no other run holds it, and reports whether
// it ran. The run's own failures (too little data, a model that cannot be fitted, running
// out of time) end in the prediction's status and error; the error returned is the store's.
// A prediction that no longer exists is not run (false, nil).
func (s *Service) Run(ctx context.Context, wsID, spID, id string) (bool, error) {
	claimed := s.now()
	runID := s.ids.New("prun_")
	rec, err := s.update(ctx, wsID, spID, id, func(rec *record) ([]store.Op, error) {
		switch {
		case claimed.Before(rec.LeaseUntil):
			return nil, errStop // another run holds it
		case rec.NextRunAt == nil || rec.NextRunAt.After(claimed):
			return nil, errStop // not due: a duplicate task of a run that already ended
		case rec.Tries >= maxTries:
			// The last runs all stopped without finishing: say so and try again tomorrow.
			next := claimed.Add(RecheckEvery)
			rec.Status, rec.Progress, rec.Tries, rec.RunID = StatusFailed, nil, 0, ""
			why := "out of time or memory"
			if rec.LastLoaded > 0 {
				why += fmt.Sprintf(", after loading %d profiles", rec.LastLoaded)
			}
			rec.Error = fmt.Sprintf("the last %d runs stopped without finishing (%s); the next run is %s", maxTries, why, next.Format(time.RFC3339))
			return s.moveDue(rec, &next), nil
		}
		rec.RunID, rec.LeaseUntil, rec.Tries = runID, claimed.Add(s.lease), rec.Tries+1
		rec.Progress = &Progress{StartedAt: claimed, Step: StepCounting}
		return nil, nil
	})
	switch {
	case errors.Is(err, errStop), errcode.Is(err, "not_found"):
		return false, nil
	case err != nil:
		return false, err
	case rec.RunID != runID: // ended as failed above
		return false, nil
	}
	runCtx, cancel := context.WithTimeout(ctx, s.maxRun) // a Lambda's own deadline, if sooner, wins
	defer cancel()
	out := s.execute(runCtx, rec, claimed)
	// Recorded even when ctx ended: the prediction must say how its run ended, and be due again.
	err = s.finish(context.WithoutCancel(ctx), rec, claimed, out)
	if errors.Is(err, errLostLease) || errcode.Is(err, "not_found") {
		return true, nil
	}
	return true, err
}

// outcome is how a run ended.
type outcome struct {
	status       string
	requirements []model.Requirement // nil: unchanged
	anonymous    int
	loaded       int
	err          string
	trained      *model.Result // set when it trained
	scored       int
	scoredAt     time.Time // zero: it did not score
	next         time.Time
	nextTrain    *time.Time // nil: unchanged
	nextScore    *time.Time
}

// execute runs rec's prediction: load, check, then train or rescore.
func (s *Service) execute(ctx context.Context, rec record, claimed time.Time) outcome {
	failed := func(out outcome, format string, args ...any) outcome {
		out.status, out.err, out.next = StatusFailed, errcode.Cut(fmt.Sprintf(format, args...), 1000), claimed.Add(RecheckEvery)
		return out
	}
	// The events the space stored before its first prediction are folded into its daily
	// counts once (profile.BackfillCounts); until then its data is not all there to judge.
	if done, err := s.profiles.BackfillCounts(ctx, rec.SpaceID); err != nil || !done {
		return s.countsPending(ctx, rec, claimed, err)
	}
	if err := s.step(ctx, rec, StepLoading, 0); err != nil {
		return outcome{err: err.Error()}
	}
	today := lastCompleteDay(claimed)
	goal := rec.Goal()
	ds, err := s.dataset(ctx, rec, today)
	out := outcome{anonymous: ds.Anonymous, loaded: len(ds.Profiles)}
	switch {
	case errors.Is(err, errLostLease):
		return outcome{err: errLostLease.Error()}
	case err != nil && ctx.Err() != nil:
		return failed(out, "the run ran out of time after loading %d profiles; it is tried again %s", len(ds.Profiles), claimed.Add(RecheckEvery).Format(time.RFC3339))
	case err != nil:
		return failed(out, "loading the profiles' activity: %v", err)
	}
	out.requirements = model.Check(goal, ds, today)
	mdl, hasModel, err := s.loadModel(ctx, rec)
	if err != nil {
		return failed(out, "reading the trained model: %v", err)
	}
	train := !hasModel || rec.TrainRequestedAt != nil || rec.NextTrainAt == nil || !claimed.Before(*rec.NextTrainAt)
	if train && !allMet(out.requirements) {
		out.status, out.next = StatusWaitingForData, claimed.Add(RecheckEvery)
		return out
	}
	var scores map[string]float64
	if train {
		if err := s.step(ctx, rec, StepTraining, len(ds.Profiles)); err != nil {
			return outcome{err: err.Error()}
		}
		res, err := model.Train(goal, ds, today)
		switch {
		case errors.Is(err, model.ErrNotEnoughData):
			out.status, out.next = StatusWaitingForData, claimed.Add(RecheckEvery)
			return out
		case err != nil:
			return failed(out, "training: %v", err)
		}
		if err := s.saveModel(ctx, rec, res.Model); err != nil {
			return failed(out, "saving the trained model: %v", err)
		}
		nextTrain, nextScore := claimed.Add(RetrainEvery), claimed.Add(RescoreEvery)
		out.trained, out.nextTrain, out.nextScore, scores = &res, &nextTrain, &nextScore, res.Scores
	} else {
		if err := s.step(ctx, rec, StepScoring, len(ds.Profiles)); err != nil {
			return outcome{err: err.Error()}
		}
		scores, _, err = model.Score(mdl, ds, today)
		if err != nil {
			return failed(out, "scoring with the model trained %s: %v", stamp(rec.TrainedAt), err)
		}
		nextScore := claimed.Add(RescoreEvery)
		out.nextScore = &nextScore
	}
	if err := s.held(ctx, rec); err != nil {
		return outcome{err: err.Error()}
	}
	at := s.now()
	if err := s.profiles.PutScores(ctx, rec.SpaceID, rec.ID, scores, at); err != nil {
		return failed(out, "saving the scores: %v", err)
	}
	out.status, out.scored, out.scoredAt = StatusReady, len(scores), at
	nextTrain := rec.NextTrainAt
	if out.nextTrain != nil {
		nextTrain = out.nextTrain
	}
	out.next = *out.nextScore
	if nextTrain != nil && nextTrain.Before(out.next) {
		out.next = *nextTrain
	}
	return out
}

// CountsRetryEvery is how soon a run that found the space's counts backfill under way (or
// failing) runs again.
const CountsRetryEvery = time.Minute

// countsPending is the outcome of a run that found the space's daily counts not complete
// yet: nothing judged, the status kept, and the next run when the backfill may start (a few
// seconds after the space's first prediction), or in a minute.
func (s *Service) countsPending(ctx context.Context, rec record, claimed time.Time, err error) outcome {
	out := outcome{status: rec.Status, err: rec.Error, anonymous: rec.AnonymousProfiles, next: claimed.Add(CountsRetryEvery)}
	if err != nil && ctx.Err() == nil {
		out.err = errcode.Cut("folding the space's stored events into its daily counts: "+err.Error()+"; tried again in a minute", 1000)
	}
	if bf, perr := s.profiles.CountsBackfillProgress(ctx, rec.SpaceID); perr == nil && bf.NotBefore.After(claimed) {
		out.next = bf.NotBefore
	}
	return out
}

func allMet(reqs []model.Requirement) bool {
	for _, r := range reqs {
		if !r.Met {
			return false
		}
	}
	return true
}

func stamp(t *time.Time) string {
	if t == nil {
		return "earlier"
	}
	return "at " + t.Format(time.RFC3339)
}

// finish records the run's outcome on the prediction, frees it and makes its next run due;
// "train now" asked during the run makes it due again at once.
func (s *Service) finish(ctx context.Context, held record, claimed time.Time, out outcome) error {
	now := s.now()
	_, err := s.update(ctx, held.WorkspaceID, held.SpaceID, held.ID, func(rec *record) ([]store.Op, error) {
		if rec.RunID != held.RunID || out.status == "" {
			return nil, errLostLease // taken over (or deleted) mid-way: the record is not this run's
		}
		rec.RunID, rec.LeaseUntil, rec.Progress, rec.Tries, rec.LastLoaded = "", time.Time{}, nil, 0, out.loaded
		rec.Status, rec.Error, rec.LastRunAt, rec.AnonymousProfiles = out.status, out.err, &now, out.anonymous
		if out.requirements != nil {
			rec.Requirements = out.requirements
		}
		if r := out.trained; r != nil {
			q := r.Quality
			rec.Quality, rec.TopFeatures, rec.TrainedAt = &q, r.TopFeatures, &out.scoredAt
			if rec.TopFeatures == nil {
				rec.TopFeatures = []model.Feature{}
			}
		}
		if !out.scoredAt.IsZero() {
			rec.ScoredAt, rec.ProfilesScored = &out.scoredAt, out.scored
		}
		if out.nextTrain != nil {
			rec.NextTrainAt = out.nextTrain
		}
		if out.nextScore != nil {
			rec.NextScoreAt = out.nextScore
		}
		next := out.next
		if r := rec.TrainRequestedAt; r != nil {
			switch {
			case r.After(claimed):
				next = now // asked while this run ran: another run trains at once
			case out.requirements != nil: // this run judged the data: the request is answered
				rec.TrainRequestedAt = nil
			}
		}
		return s.moveDue(rec, &next), nil
	})
	return err
}

// step records that the run moved on to step, having loaded n profiles. Errors: errLostLease.
func (s *Service) step(ctx context.Context, held record, step string, n int) error {
	_, err := s.update(ctx, held.WorkspaceID, held.SpaceID, held.ID, func(rec *record) ([]store.Op, error) {
		if rec.RunID != held.RunID {
			return nil, errLostLease
		}
		if rec.Progress == nil {
			rec.Progress = &Progress{StartedAt: s.now()}
		}
		rec.Progress.Step, rec.Progress.ProfilesLoaded, rec.LastLoaded = step, n, n
		return nil, nil
	})
	if errcode.Is(err, "not_found") {
		return errLostLease
	}
	return err
}

// held checks that the run still holds its prediction before it writes results elsewhere
// (the model, the scores): a deleted prediction or a run taken over writes nothing more.
func (s *Service) held(ctx context.Context, held record) error {
	rec, _, err := s.load(ctx, held.WorkspaceID, held.SpaceID, held.ID)
	switch {
	case errcode.Is(err, "not_found"):
		return errLostLease
	case err != nil:
		return err
	case rec.RunID != held.RunID:
		return errLostLease
	}
	return nil
}

func (s *Service) loadModel(ctx context.Context, rec record) (model.Model, bool, error) {
	m, _, err := store.LoadJSON[model.Model](ctx, s.st, modelKey(rec.WorkspaceID, rec.ID), errcode.NotFoundf("no model"))
	if errcode.Is(err, "not_found") {
		return model.Model{}, false, nil
	}
	return m, err == nil, err
}

func (s *Service) saveModel(ctx context.Context, rec record, m model.Model) error {
	if err := s.held(ctx, rec); err != nil {
		return err
	}
	it := store.JSONItem(modelKey(rec.WorkspaceID, rec.ID), m)
	if len(it.Data) > maxModelBytes {
		return fmt.Errorf("the model is %d KB, over the %d KB a stored item may hold", len(it.Data)>>10, maxModelBytes>>10)
	}
	return s.st.Transact(ctx, store.PutOp(it, store.Always))
}
