package predict

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/predict/model"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Profiles is what predictions need of the profile service (profile.Service implements it).
type Profiles interface {
	EachProfile(ctx context.Context, spaceID string) iter.Seq2[profile.Profile, error]
	DailyCounts(ctx context.Context, spaceID string, p profile.Profile, since time.Time) ([]profile.DayCount, error)
	FirstActivity(ctx context.Context, spaceID string, p profile.Profile) (time.Time, bool, error)
	RegisterPrediction(ctx context.Context, spaceID, id, key string, customTraitKeys ...string) error
	UnregisterPrediction(ctx context.Context, spaceID, id string) error
	PutScores(ctx context.Context, spaceID, id string, scores map[string]float64, at time.Time) error
	// BackfillCounts folds the events a space stored before its first prediction into its
	// daily counts, once; a run calls it first and judges the data only when it is done.
	BackfillCounts(ctx context.Context, spaceID string) (done bool, err error)
	CountsBackfillProgress(ctx context.Context, spaceID string) (profile.Backfill, error)
}

// Workspaces is what predictions need of the workspace service (workspace.Service).
type Workspaces interface {
	GetSpace(ctx context.Context, p workspace.Principal, wsID, spaceID string) (workspace.Space, error)
	Exceeded(ctx context.Context, wsID, resource string) error
}

// Defaults of Options.
const (
	// DefaultLease is how long a run holds its prediction: longer than a run may take (the
	// sync worker's 5 minutes; MaxRunTime locally), so a live run is never taken over.
	DefaultLease = 15 * time.Minute
	// DefaultMaxRunTime bounds a run with no deadline of its own (the local stack's).
	DefaultMaxRunTime = 10 * time.Minute
	// DefaultLoaders is how many profiles' daily counts are read at once: each is a few
	// Queries, and 100,000 profiles' one after the other would outlast the sync worker's 5
	// minutes (at ~8 ms a Query, 32 at once take about 75 s).
	DefaultLoaders = 32
	// DefaultProgressEvery is how many profiles a run loads between two progress writes.
	DefaultProgressEvery = 5000
)

// Options configure a Service.
type Options struct {
	Now func() time.Time // time.Now when nil
	// Wake, when set, is told of a prediction due now (created, or "train now"), so that it
	// runs at once rather than at the next dispatch: the setup API sends it to the sync
	// queue, the local stack wakes its runner. Its failure is not the caller's: the
	// dispatcher finds the prediction due within a minute anyway.
	Wake func(ctx context.Context, d Due) error
	// Lease, MaxRunTime, Loaders and ProgressEvery: see the defaults.
	Lease         time.Duration
	MaxRunTime    time.Duration
	Loaders       int
	ProgressEvery int
}

// Service keeps and runs a space's predictions.
type Service struct {
	st            store.Store
	ws            Workspaces
	profiles      Profiles
	now           func() time.Time
	ids           token.IDs
	wake          func(ctx context.Context, d Due) error
	lease         time.Duration
	maxRun        time.Duration
	loaders       int
	progressEvery int
}

// New returns a Service on st.
func New(st store.Store, ws Workspaces, profiles Profiles, o Options) *Service {
	s := &Service{st: st, ws: ws, profiles: profiles, now: o.Now, wake: o.Wake, lease: o.Lease, maxRun: o.MaxRunTime,
		loaders: o.Loaders, progressEvery: o.ProgressEvery}
	if s.now == nil {
		s.now = time.Now
	}
	now := s.now
	s.now = func() time.Time { return now().UTC() }
	s.ids = token.IDs{Now: s.now}
	if s.lease <= 0 {
		s.lease = DefaultLease
	}
	if s.maxRun <= 0 {
		s.maxRun = DefaultMaxRunTime
	}
	if s.maxRun >= s.lease {
		s.maxRun = s.lease / 2
	}
	if s.loaders <= 0 {
		s.loaders = DefaultLoaders
	}
	if s.progressEvery <= 0 {
		s.progressEvery = DefaultProgressEvery
	}
	return s
}

// Keys (shared/store/dynamo/ACCESS_PATTERNS.md): a workspace's predictions and their trained
// models in one partition beside it (at most 2, so listing a space's reads 2 items at most);
// due runs in one time-ordered partition the dispatcher reads each minute.
const (
	duePK    = "PREDDUE"
	dueStamp = "2006-01-02T15:04:05Z"
)

func predPK(ws string) string { return "WS#" + ws + "#PRED" }
func predKey(ws, sp, id string) store.Key {
	return store.Key{PK: predPK(ws), SK: "P#" + sp + "#" + id}
}
func modelKey(ws, id string) store.Key { return store.Key{PK: predPK(ws), SK: "MODEL#" + id} }
func dueKey(ws, sp, id string, at time.Time) store.Key {
	return store.Key{PK: duePK, SK: at.UTC().Format(dueStamp) + "#" + ws + "#" + sp + "#" + id}
}

// maxPathID bounds an id from a path before it becomes part of a key.
const maxPathID = 128

func notFound(id string) error {
	return errcode.NotFoundf("prediction %s was not found in this space", errcode.Clip(id))
}

// space checks that p may use space sp of workspace ws. Errors: forbidden, not_found.
func (s *Service) space(ctx context.Context, p workspace.Principal, wsID, spID string) error {
	_, err := s.ws.GetSpace(ctx, p, wsID, spID)
	return err
}

func (s *Service) load(ctx context.Context, ws, sp, id string) (record, int64, error) {
	if len(id) > maxPathID {
		return record{}, 0, notFound(id)
	}
	return store.LoadJSON[record](ctx, s.st, predKey(ws, sp, id), notFound(id))
}

// Create adds a prediction to a space: it takes one of the workspace's prediction slots in
// the same transaction as the record, registers the key with the profile service (the score
// shows as a computed trait under it), and queues the first run at once. The prediction
// starts in status training: the first run checks the data requirements, then trains, or
// ends waiting_for_data with each requirement and what is missing. customTraitKeys are the
// custom trait keys the space's data carried (the key may not be one of them).
// Caller: the workspace's token. Errors: forbidden, not_found (space), invalid_field (400),
// entitlement_exceeded (403), the key's conflicts from RegisterPrediction (409).
func (s *Service) Create(ctx context.Context, p workspace.Principal, wsID, spID string, spec Spec, customTraitKeys ...string) (Prediction, error) {
	if err := s.space(ctx, p, wsID, spID); err != nil {
		return Prediction{}, err
	}
	if err := spec.Validate(); err != nil {
		return Prediction{}, err
	}
	pred := fromSpec(spec)
	if err := pred.Goal().Validate(); err != nil { // Spec.Validate holds model's rules; a bug if not
		return Prediction{}, errcode.New(errcode.Invalid, "invalid_prediction", "%v", err)
	}
	now := s.now()
	pred.ID, pred.WorkspaceID, pred.SpaceID = s.ids.New("pred_"), wsID, spID
	pred.Status, pred.Requirements, pred.TopFeatures, pred.CreatedAt = StatusTraining, []model.Requirement{}, []model.Feature{}, now
	rec := record{Prediction: pred}
	ops := append([]store.Op{workspace.TakeSlot(wsID, workspace.ResourcePredictions)}, s.moveDue(&rec, &now)...) // due at once
	pred = rec.Prediction
	ops = append(ops, store.ReplaceOp(store.JSONItem(predKey(wsID, spID, pred.ID), rec), 0)) // version 1: updates check it
	err := s.st.Transact(ctx, ops...)
	if store.FailedOp(err) == 0 {
		return Prediction{}, s.ws.Exceeded(ctx, wsID, workspace.ResourcePredictions)
	}
	if err != nil {
		return Prediction{}, err
	}
	// Registered after the record (not before): a crash in between leaves a prediction the
	// user sees and may delete, never a key held by nothing.
	if err := s.profiles.RegisterPrediction(ctx, spID, pred.ID, pred.Key, customTraitKeys...); err != nil {
		if derr := s.st.Transact(context.WithoutCancel(ctx),
			store.DeleteOp(predKey(wsID, spID, pred.ID), store.Always),
			store.DeleteOp(dueKey(wsID, spID, pred.ID, *pred.NextRunAt), store.Always),
			workspace.FreeSlot(wsID, workspace.ResourcePredictions)); derr != nil {
			return Prediction{}, errors.Join(err, derr)
		}
		return Prediction{}, err
	}
	s.wakeUp(ctx, rec, now)
	return pred, nil
}

// wakeUp tells the runner that rec is due at now (best effort: the dispatcher finds it anyway).
func (s *Service) wakeUp(ctx context.Context, rec record, now time.Time) {
	if s.wake != nil {
		_ = s.wake(ctx, due(rec, now))
	}
}

func due(rec record, at time.Time) Due {
	return Due{WorkspaceID: rec.WorkspaceID, SpaceID: rec.SpaceID, PredictionID: rec.ID, At: at}
}

// Get returns one prediction. Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) Get(ctx context.Context, p workspace.Principal, wsID, spID, id string) (Prediction, error) {
	if err := s.space(ctx, p, wsID, spID); err != nil {
		return Prediction{}, err
	}
	rec, _, err := s.load(ctx, wsID, spID, id)
	return s.view(rec), err
}

// List returns a space's predictions, oldest first. Caller: the workspace's token.
// Errors: forbidden, not_found (space).
func (s *Service) List(ctx context.Context, p workspace.Principal, wsID, spID string) ([]Prediction, error) {
	if err := s.space(ctx, p, wsID, spID); err != nil {
		return nil, err
	}
	recs, err := store.ListJSON[record](ctx, s.st, predPK(wsID), "P#"+spID+"#")
	if err != nil {
		return nil, err
	}
	out := make([]Prediction, len(recs))
	for i, r := range recs {
		out[i] = s.view(r)
	}
	return out, nil
}

// view is rec as shown: a run whose lease ran out shows no progress.
func (s *Service) view(rec record) Prediction {
	if rec.Progress != nil && !s.now().Before(rec.LeaseUntil) {
		rec.Progress = nil
	}
	return rec.Prediction
}

// Delete removes a prediction: its score disappears from the profiles at once, its slot is
// freed, its model and due run are deleted (a run under way writes nothing at its end).
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) Delete(ctx context.Context, p workspace.Principal, wsID, spID, id string) error {
	if err := s.space(ctx, p, wsID, spID); err != nil {
		return err
	}
	if _, _, err := s.load(ctx, wsID, spID, id); err != nil {
		return err
	}
	// The key first: a failure here leaves the prediction whole, to delete again; the other
	// way round, a failure would leave a trait no prediction owns.
	if err := s.profiles.UnregisterPrediction(ctx, spID, id); err != nil && !errcode.Is(err, "not_found") {
		return err
	}
	for attempt := 0; ; attempt++ {
		rec, version, err := s.load(ctx, wsID, spID, id)
		if err != nil {
			return err
		}
		ops := []store.Op{
			{Kind: store.Delete, Item: store.Item{Key: predKey(wsID, spID, id)}, Cond: store.VersionIs, Version: version},
			workspace.FreeSlot(wsID, workspace.ResourcePredictions),
			store.DeleteOp(modelKey(wsID, id), store.Always),
		}
		if rec.NextRunAt != nil {
			ops = append(ops, store.DeleteOp(dueKey(wsID, spID, id, *rec.NextRunAt), store.Always))
		}
		err = s.st.Transact(ctx, ops...)
		if store.FailedOp(err) != 0 || attempt == 4 {
			return err
		}
		// A run moved the record meanwhile (its progress): once more, at its new version.
	}
}

// TrainNow makes the prediction's next run train (whatever its schedule) and makes it due
// now; a run under way keeps going, and the training follows it at once.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) TrainNow(ctx context.Context, p workspace.Principal, wsID, spID, id string) (Prediction, error) {
	if err := s.space(ctx, p, wsID, spID); err != nil {
		return Prediction{}, err
	}
	if _, _, err := s.load(ctx, wsID, spID, id); err != nil {
		return Prediction{}, err
	}
	now := s.now()
	rec, err := s.update(ctx, wsID, spID, id, func(rec *record) ([]store.Op, error) {
		rec.TrainRequestedAt = &now
		return s.moveDue(rec, &now), nil
	})
	if err != nil {
		return Prediction{}, err
	}
	if !now.Before(rec.LeaseUntil) { // no run holds it: one can start at once
		s.wakeUp(ctx, rec, now)
	}
	return s.view(rec), nil
}

// moveDue sets rec's next run to next (nil: none), in whole seconds as its due item's key
// has it, and returns the ops that move that item.
func (s *Service) moveDue(rec *record, next *time.Time) []store.Op {
	if next != nil {
		n := next.UTC().Truncate(time.Second)
		next = &n
	}
	var ops []store.Op
	old := rec.NextRunAt
	if old != nil && (next == nil || !old.Equal(*next)) {
		ops = append(ops, store.DeleteOp(dueKey(rec.WorkspaceID, rec.SpaceID, rec.ID, *old), store.Always))
	}
	if next != nil && (old == nil || !old.Equal(*next)) {
		ops = append(ops, store.PutOp(store.JSONItem(dueKey(rec.WorkspaceID, rec.SpaceID, rec.ID, *next), due(*rec, *next)), store.Always))
	}
	rec.NextRunAt = next
	return ops
}

// errStop ends an update without writing (change decided nothing is to be done).
var errStop = errors.New("predict: nothing to write")

// update applies change to the stored record with the ops it returns, in one transaction
// version-checked on the record; a concurrent change (a run's progress, "train now") makes it
// read and apply again, a few times. change returning errStop ends it without writing (the
// record as read is returned with errStop).
func (s *Service) update(ctx context.Context, ws, sp, id string, change func(rec *record) ([]store.Op, error)) (record, error) {
	for attempt := 0; ; attempt++ {
		rec, version, err := s.load(ctx, ws, sp, id)
		if err != nil {
			return record{}, err
		}
		ops, err := change(&rec)
		if err != nil {
			return rec, err
		}
		ops = append(ops, store.ReplaceOp(store.JSONItem(predKey(ws, sp, id), rec), version))
		err = s.st.Transact(ctx, ops...)
		if err == nil || store.FailedOp(err) != len(ops)-1 {
			return rec, err
		}
		if attempt == 4 {
			return rec, errcode.New(errcode.Conflict, "conflict", "prediction %s keeps changing: try again", id)
		}
	}
}
