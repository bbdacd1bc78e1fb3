package predict_test

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/predict"
	"github.com/unifiedprofiles/up/shared/predict/model"
	"github.com/unifiedprofiles/up/shared/predict/predicttest"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

const operatorToken = "upo_predict_test"

// env is a workspace on the embedded store with the real profile and workspace services,
// and the predictions service on a clock the test moves.
type env struct {
	t        *testing.T
	ctx      context.Context
	clock    *testclock.Clock
	ws       *workspace.Service
	profiles *profile.Service
	svc      *predict.Service
	tn       workspacetest.Tenant
}

// newEnv starts the clock an hour into the day after today (today is then the last complete
// day); wrap, when set, stands between the service and the profiles.
func newEnv(t *testing.T, today int32, wrap func(*profile.Service) predict.Profiles) *env {
	t.Helper()
	clock := testclock.New(dayStart(today + 1).Add(time.Hour))
	// The store's clock too: scores and daily counts expire by it.
	st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"), bolt.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken), Now: clock.Now})
	profiles := profile.New(st, profile.Options{Now: clock.Now})
	var port predict.Profiles = profiles
	if wrap != nil {
		port = wrap(profiles)
	}
	svc := predict.New(st, ws, port, predict.Options{Now: clock.Now})
	return &env{t: t, ctx: context.Background(), clock: clock, ws: ws, profiles: profiles, svc: svc, tn: workspacetest.New(t, ws, operatorToken)}
}

// afterCountingStarts is past the few seconds after a space's first prediction before its
// counts backfill may start (profile.BackfillCounts); a run before that judges nothing.
const afterCountingStarts = 10 * time.Second

func dayStart(d int32) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// Ways in for a history: imported (/v1/import's path: counted as it is applied, whatever its
// age) or live (the tracking API's: stored, and counted only once the space has a prediction,
// when its counts backfill folds the stored events in).
const (
	imported = true
	live     = false
)

// apply sends ds's activity into space sp as track calls on its days (noon UTC), each day's
// Revenue on the first call of the day's count, and anonymous profiles that only browsed.
func (e *env) apply(sp string, ds model.Dataset, anonymous int, viaImport bool) {
	e.t.Helper()
	var msgs []message.Message
	flush := func() {
		applyMany := e.profiles.ApplyMany
		if viaImport {
			applyMany = e.profiles.ImportMany
		}
		outs, err := applyMany(e.ctx, sp, msgs)
		if err != nil {
			e.t.Fatal(err)
		}
		for i, o := range outs {
			if o.Err != nil {
				e.t.Fatalf("message %s: %v", msgs[i].MessageID, o.Err)
			}
		}
		msgs = msgs[:0]
	}
	add := func(m message.Message) {
		if m.Raw == nil {
			m.Raw, _ = json.Marshal(map[string]any{"type": m.Type, "event": m.Event})
		}
		if msgs = append(msgs, m); len(msgs) == 500 {
			flush()
		}
	}
	for _, p := range ds.Profiles {
		for m := range predicttest.Tracks(p, ds.Events) {
			m.ReceivedAt = m.Timestamp
			add(m)
		}
	}
	today := lastDay(e.clock.Now())
	for i := range anonymous {
		at := dayStart(today).Add(time.Hour)
		add(message.Message{Type: message.Track, MessageID: fmt.Sprintf("anon-%d", i), AnonymousID: fmt.Sprintf("anon-%d", i),
			Event: "Page Viewed", Timestamp: at, ReceivedAt: at})
	}
	flush()
}

func lastDay(now time.Time) int32 { return int32(now.Unix()/86400) - 1 }

func (e *env) create(spec string) predict.Prediction {
	e.t.Helper()
	p, err := e.svc.Create(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.SpaceID(), e.spec(spec))
	if err != nil {
		e.t.Fatalf("create %s: %v", spec, err)
	}
	return p
}

func (e *env) spec(body string) predict.Spec {
	e.t.Helper()
	var s predict.Spec
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) get(id string) predict.Prediction {
	e.t.Helper()
	p, err := e.svc.Get(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.SpaceID(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) dispatch() {
	e.t.Helper()
	if err := e.svc.Dispatch(e.ctx, e.clock.Now()); err != nil {
		e.t.Fatalf("Dispatch: %v", err)
	}
}

// trait reads the score of user uid under key as the explorer and the Profile API show it.
func (e *env) trait(uid, key string) (any, bool) {
	e.t.Helper()
	p, err := e.profiles.Lookup(e.ctx, e.tn.SpaceID(), identity.Identifier{Type: identity.TypeUserID, Value: uid})
	if errcode.Is(err, "not_found") {
		return nil, false // a generated customer with no activity yet: no profile
	}
	if err != nil {
		e.t.Fatalf("lookup %s: %v", uid, err)
	}
	vals, err := e.profiles.ComputedTraitValues(e.ctx, e.tn.SpaceID(), p)
	if err != nil {
		e.t.Fatal(err)
	}
	v, ok := vals[key]
	return v, ok
}

func (e *env) usage() int {
	e.t.Helper()
	v, err := e.ws.GetWorkspace(e.ctx, e.tn.Owner, e.tn.ID())
	if err != nil {
		e.t.Fatal(err)
	}
	q, ok := v.Usage[workspace.ResourcePredictions]
	if !ok {
		e.t.Fatalf("no predictions usage in %+v", v.Usage)
	}
	return q.Used
}

// A space with too little data: the first run ends waiting_for_data with every requirement
// reported and what each lacks; anonymous profiles are counted, never used; a day later it
// checks again.
func TestWaitingForDataNamesEachUnmetRule(t *testing.T) {
	t.Parallel()
	today := predicttest.DefaultToday
	e := newEnv(t, today, nil)
	ds, _ := predicttest.Generate(predicttest.Config{Seed: 3, Profiles: 40, Days: 20, Today: today, Signal: true, EventTypes: 3})
	e.apply(e.tn.SpaceID(), ds, 7, live)
	identified := 0 // a generated customer with no activity has no profile
	for _, p := range ds.Profiles {
		if len(p.Activity) > 0 {
			identified++
		}
	}

	p := e.create(`{"kind":"churn","key":"likely_to_churn","event":"Order Completed","window_days":30}`)
	if p.Status != predict.StatusTraining || p.NextRunAt == nil || !p.NextRunAt.Equal(e.clock.Now()) || len(p.Requirements) != 0 {
		t.Fatalf("created %+v: want status training, due now, requirements not checked yet", p)
	}
	// The first run, at once: the space's first prediction has just started its daily counts,
	// and the events it stored before (these, sent live) are folded in a few seconds later;
	// the run judges nothing and runs again then.
	e.dispatch()
	now := e.clock.Now()
	first := e.get(p.ID)
	if first.Status != predict.StatusTraining || len(first.Requirements) != 0 || first.Progress != nil ||
		!first.NextRunAt.After(now) || first.NextRunAt.After(now.Add(10*time.Second)) {
		t.Fatalf("the run before the counts backfill could start: %+v", first)
	}
	e.clock.Set(*first.NextRunAt)
	e.dispatch()
	got := e.get(p.ID)
	if got.Status != predict.StatusWaitingForData || got.Quality != nil || got.TrainedAt != nil || got.Progress != nil {
		t.Fatalf("after the first run: %+v", got)
	}
	want := map[string]string{
		model.RuleGoalReached:        "(", // "… 100 are needed (n more)"
		model.RuleGoalNotReached:     "(",
		model.RuleHistory:            "the oldest activity is 20 days old; 90 days are needed",
		model.RuleEventTypes:         "3 event types have activity; 5 are needed (2 more)",
		model.RuleIdentifiedProfiles: fmt.Sprintf("%d identified profiles (anonymous ones are not used: 7 left out); 200 are needed (%d more)", identified, 200-identified),
	}
	if len(got.Requirements) != len(want) {
		t.Fatalf("requirements %+v, want the %d rules", got.Requirements, len(want))
	}
	for _, r := range got.Requirements {
		says, ok := want[r.Rule]
		if !ok || r.Met || !strings.Contains(r.Detail, says) {
			t.Errorf("requirement %+v: want unmet, saying %q", r, says)
		}
		t.Logf("%s: %s", r.Rule, r.Detail)
	}
	if got.AnonymousProfiles != 7 || got.LastRunAt == nil || got.NextRunAt == nil || !got.NextRunAt.Equal(e.clock.Now().Add(predict.RecheckEvery)) {
		t.Errorf("anonymous %d, last run %v, next run %v: want 7, now, a day later", got.AnonymousProfiles, got.LastRunAt, got.NextRunAt)
	}
	if _, ok := e.trait("user-000001", "likely_to_churn"); ok {
		t.Error("a prediction waiting for data put a score on a profile")
	}

	// Not due again before the day is out; then it checks again.
	e.clock.Add(23 * time.Hour)
	e.dispatch()
	if again := e.get(p.ID); !again.LastRunAt.Equal(*got.LastRunAt) {
		t.Fatalf("ran again within the day: %+v", again)
	}
	e.clock.Add(time.Hour)
	e.dispatch()
	if again := e.get(p.ID); !again.LastRunAt.After(*got.LastRunAt) || again.Status != predict.StatusWaitingForData {
		t.Fatalf("the daily check did not run: %+v", again)
	}
}

// A run reads only the days its features use (3 × the window), but the history rule is about
// how far back the space's activity goes: one customer's single order imported 120 days ago
// is history enough for a 30-day window (90 days), though no profile has activity on the
// first day read. Without it the space has 20 days.
func TestHistoryReachesBeyondTheDaysRead(t *testing.T) {
	t.Parallel()
	today := predicttest.DefaultToday
	for _, tc := range []struct {
		name    string
		old     bool
		met     bool
		saysAge string
	}{
		{"an order imported 120 days ago", true, true, "the oldest activity is 120 days old; 90 days are needed"},
		{"20 days of history only", false, false, "the oldest activity is 20 days old; 90 days are needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, today, nil)
			ds, _ := predicttest.Generate(predicttest.Config{Seed: 3, Profiles: 40, Days: 20, Today: today, Signal: true, EventTypes: 3})
			e.apply(e.tn.SpaceID(), ds, 0, imported)
			if tc.old {
				past := model.Dataset{Events: []string{predicttest.Purchase}, Profiles: []model.Profile{
					{ID: "user-old", Activity: []model.Activity{{Day: today - 119, Event: 0, Count: 1}}}}}
				e.apply(e.tn.SpaceID(), past, 0, imported)
			}
			p := e.create(`{"kind":"churn","key":"likely_to_churn","event":"Order Completed","window_days":30}`)
			for range 3 { // the first run waits for the counts backfill (nothing to fold here)
				e.dispatch()
				if got := e.get(p.ID); got.NextRunAt != nil && got.Status == predict.StatusTraining {
					e.clock.Set(*got.NextRunAt)
				}
			}
			got := e.get(p.ID)
			if got.Status != predict.StatusWaitingForData {
				t.Fatalf("status %s, want waiting_for_data (too few profiles either way): %+v", got.Status, got)
			}
			for _, r := range got.Requirements {
				if r.Rule != model.RuleHistory {
					continue
				}
				if r.Met != tc.met || !strings.Contains(r.Detail, tc.saysAge) {
					t.Errorf("history %+v: want met %v, saying %q", r, tc.met, tc.saysAge)
				}
				return
			}
			t.Fatalf("no history rule in %+v", got.Requirements)
		})
	}
}

// A space with a planted signal (predicttest: engagement that fades before customers churn),
// 300 customers over 100 days applied as track calls: the first run trains a churn
// prediction, reports its held-out quality and top features, and every customer's score is a
// computed trait in [0, 1]. Then the schedule: nothing runs before 7 days, a rescore at 7
// (same model), a retrain at 30; "train now" trains at once.
func TestTrainsScoresThenRescoresAndRetrains(t *testing.T) {
	t.Parallel()
	today := predicttest.DefaultToday
	e := newEnv(t, today, nil)
	// History up to today + 30: days after today are in the future for the first runs (a run
	// reads complete days only), and are the new data the retrain learns from.
	ds, _ := predicttest.Generate(predicttest.Config{Seed: 7, Profiles: 300, Days: 130, Today: today + 30, Signal: true})
	start := time.Now()
	e.apply(e.tn.SpaceID(), ds, 5, imported)
	t.Logf("applied %d profiles' activity in %v", len(ds.Profiles), time.Since(start).Round(time.Millisecond))

	p := e.create(`{"kind":"churn","key":"likely_to_churn","event":"Order Completed","window_days":30}`)
	e.clock.Add(afterCountingStarts)
	start = time.Now()
	e.dispatch()
	t.Logf("first run (load, check, train, score) in %v", time.Since(start).Round(time.Millisecond))
	got := e.get(p.ID)
	q := got.Quality
	if got.Status != predict.StatusReady || q == nil || got.Error != "" {
		t.Fatalf("after the first run: %+v", got)
	}
	t.Logf("quality: AUC %.3f, log loss %v, lift of the top 20 %% %.2f, grade %s (held out %d, trained on %d); %d scored; top features %v",
		q.AUC, deref(q.LogLoss), q.LiftTop20, q.Grade, q.HeldOut, q.Trained, got.ProfilesScored, got.TopFeatures)
	if q.AUC < 0.7 || q.LogLoss == nil || q.LiftTop20 <= 1 || q.Grade == "" || q.Grade == "poor" {
		t.Errorf("quality %+v on a planted signal: want AUC ≥ 0.7, a log loss, lift > 1, a grade above poor", q)
	}
	if len(got.TopFeatures) == 0 || got.ProfilesScored < 100 || got.ProfilesScored > 300 || got.AnonymousProfiles != 5 {
		t.Errorf("top features %v, %d scored, %d anonymous: want features, 100–300 scored, 5 anonymous", got.TopFeatures, got.ProfilesScored, got.AnonymousProfiles)
	}
	for _, r := range got.Requirements {
		if !r.Met {
			t.Errorf("a ready prediction with an unmet requirement: %+v", r)
		}
	}
	now := e.clock.Now()
	if !got.TrainedAt.Equal(now) || !got.ScoredAt.Equal(now) || !got.NextTrainAt.Equal(now.Add(predict.RetrainEvery)) ||
		!got.NextScoreAt.Equal(now.Add(predict.RescoreEvery)) || !got.NextRunAt.Equal(*got.NextScoreAt) {
		t.Errorf("times after training at %v: trained %v scored %v, next train %v score %v run %v", now, got.TrainedAt, got.ScoredAt, got.NextTrainAt, got.NextScoreAt, got.NextRunAt)
	}
	scores := e.scores(ds, "likely_to_churn")
	if len(scores) != got.ProfilesScored {
		t.Errorf("%d profiles show the trait, %d were scored", len(scores), got.ProfilesScored)
	}

	// Not due before 7 days.
	e.clock.Add(predict.RescoreEvery - time.Minute)
	e.dispatch()
	if g := e.get(p.ID); !g.ScoredAt.Equal(*got.ScoredAt) {
		t.Fatalf("ran before the rescore was due: %+v", g)
	}
	// At 7 days: scored again with the stored model, not trained.
	e.clock.Add(time.Minute)
	e.dispatch()
	re := e.get(p.ID)
	if re.Status != predict.StatusReady || !re.TrainedAt.Equal(*got.TrainedAt) || !re.ScoredAt.Equal(e.clock.Now()) ||
		re.Quality.AUC != got.Quality.AUC || re.Quality.Grade != got.Quality.Grade || !re.NextScoreAt.Equal(e.clock.Now().Add(predict.RescoreEvery)) || !re.NextTrainAt.Equal(*got.NextTrainAt) {
		t.Fatalf("the 7-day rescore: %+v", re)
	}
	t.Logf("rescored %d profiles a week later", re.ProfilesScored)
	e.scores(ds, "likely_to_churn")

	// Weekly rescores on days 14, 21 and 28, then the retrain on day 30 (before day 35's
	// rescore).
	var runs []string
	for len(runs) < 5 {
		before := e.get(p.ID)
		e.clock.Set(*before.NextRunAt)
		e.dispatch()
		after := e.get(p.ID)
		day := int(after.LastRunAt.Sub(*got.TrainedAt) / (24 * time.Hour))
		if !after.TrainedAt.Equal(*before.TrainedAt) {
			runs = append(runs, fmt.Sprintf("train@%d", day))
			break
		}
		runs = append(runs, fmt.Sprintf("score@%d", day))
	}
	if fmt.Sprint(runs) != "[score@14 score@21 score@28 train@30]" {
		t.Fatalf("runs after the first rescore: %v, want rescores on days 14, 21, 28 and the retrain on day 30", runs)
	}
	rt := e.get(p.ID)
	if rt.Status != predict.StatusReady || !rt.TrainedAt.Equal(got.TrainedAt.Add(predict.RetrainEvery)) || rt.Error != "" {
		t.Fatalf("the 30-day retrain: %+v (first trained %v)", rt, got.TrainedAt)
	}
	t.Logf("retrained after 30 days: AUC %.3f, grade %s, %d scored", rt.Quality.AUC, rt.Quality.Grade, rt.ProfilesScored)

	// Train now: due at once, and the run trains although the schedule says rescore.
	e.clock.Add(time.Hour)
	tn, err := e.svc.TrainNow(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.SpaceID(), p.ID)
	if err != nil || !tn.NextRunAt.Equal(e.clock.Now()) {
		t.Fatalf("TrainNow: %+v, %v", tn, err)
	}
	e.dispatch()
	if g := e.get(p.ID); !g.TrainedAt.Equal(e.clock.Now()) || !g.NextRunAt.Equal(e.clock.Now().Add(predict.RescoreEvery)) {
		t.Fatalf("after train now: trained %v, next run %v", g.TrainedAt, g.NextRunAt)
	}

	// The history ends here. Rescores go on with the stored model; the retrain 30 days on
	// finds nobody who ordered in its window: waiting_for_data, and the last scores stay.
	trained := e.get(p.ID).TrainedAt
	for range 6 {
		before := e.get(p.ID)
		e.clock.Set(*before.NextRunAt)
		e.dispatch()
		if e.get(p.ID).Status != predict.StatusReady {
			break
		}
	}
	w := e.get(p.ID)
	if w.Status != predict.StatusWaitingForData || !w.TrainedAt.Equal(*trained) || w.Quality == nil {
		t.Fatalf("the retrain without new data: %+v, want waiting_for_data keeping the model trained at %v", w, trained)
	}
	unmet := false
	for _, r := range w.Requirements {
		unmet = unmet || (r.Rule == model.RuleGoalNotReached && !r.Met)
	}
	if !unmet {
		t.Errorf("requirements %+v: want goal_not_reached unmet", w.Requirements)
	}
	// (A profile scored by an earlier run and not by the last keeps that score until it
	// expires, 30 days after it was written.)
	if kept := e.scores(ds, "likely_to_churn"); len(kept) < w.ProfilesScored {
		t.Errorf("%d profiles keep the trait after the retrain that waits, %d were scored last", len(kept), w.ProfilesScored)
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// scores reads every profile's trait key: each a number in [0, 1], some near each end.
func (e *env) scores(ds model.Dataset, key string) map[string]float64 {
	e.t.Helper()
	out := map[string]float64{}
	for _, p := range ds.Profiles {
		v, ok := e.trait(p.ID, key)
		if !ok {
			continue
		}
		f, isNum := v.(float64)
		if !isNum || f < 0 || f > 1 {
			e.t.Fatalf("%s's %s is %v (%T), want a number in [0, 1]", p.ID, key, v, v)
		}
		out[p.ID] = f
	}
	lo, hi := 1.0, 0.0
	for _, f := range out {
		lo, hi = min(lo, f), max(hi, f)
	}
	if len(out) == 0 || lo > 0.05 || hi < 0.95 {
		e.t.Errorf("%d scores between %.3f and %.3f: want percentiles across [0, 1]", len(out), lo, hi)
	}
	return out
}

// gate holds each run in EachProfile until released: it hands the test the run's own
// release channel.
type gate struct {
	*profile.Service
	entered chan chan struct{}
}

func (g *gate) EachProfile(ctx context.Context, sp string) iter.Seq2[profile.Profile, error] {
	release := make(chan struct{})
	g.entered <- release
	<-release
	return g.Service.EachProfile(ctx, sp)
}

// Two runs of one prediction at once (the dispatcher's task and a redelivery): one runs, the
// other returns at once without running. A run that outlives its lease is taken over, and
// writes nothing at its end; a task for a run that already ended runs nothing.
func TestLeaseLetsOneRunAtATime(t *testing.T) {
	t.Parallel()
	today := predicttest.DefaultToday
	g := &gate{entered: make(chan chan struct{}, 4)}
	e := newEnv(t, today, func(s *profile.Service) predict.Profiles { g.Service = s; return g })
	ds, _ := predicttest.Generate(predicttest.Config{Seed: 3, Profiles: 30, Days: 20, Today: today})
	e.apply(e.tn.SpaceID(), ds, 0, imported)
	p := e.create(`{"kind":"custom","key":"will_open","events":["App Opened"],"window_days":15}`)
	e.clock.Add(afterCountingStarts)
	run := func() (bool, error) { return e.svc.Run(e.ctx, e.tn.ID(), e.tn.SpaceID(), p.ID) }

	type result struct {
		ran bool
		err error
	}
	first := make(chan result, 1)
	go func() { ran, err := run(); first <- result{ran, err} }()
	releaseFirst := <-g.entered // the first run holds the lease and is loading
	if held := e.get(p.ID); held.Progress == nil || held.Progress.Step != predict.StepLoading {
		t.Errorf("a run under way shows progress %+v", held.Progress)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var others []result
	for range 3 {
		wg.Go(func() {
			ran, err := run()
			mu.Lock()
			others = append(others, result{ran, err})
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, r := range others {
		if r.ran || r.err != nil {
			t.Fatalf("a second run while the first holds the lease: ran %v, %v", r.ran, r.err)
		}
	}

	// The first run stalls past its lease: the next one takes over and finishes.
	e.clock.Add(predict.DefaultLease + time.Second)
	second := make(chan result, 1)
	go func() { ran, err := run(); second <- result{ran, err} }()
	close(<-g.entered) // the second goes on
	if r := <-second; !r.ran || r.err != nil {
		t.Fatalf("the run after the lease ran out: %v, %v", r.ran, r.err)
	}
	took := e.get(p.ID)
	if took.Status != predict.StatusWaitingForData || took.LastRunAt == nil || took.Progress != nil {
		t.Fatalf("after the second run: %+v", took)
	}
	close(releaseFirst) // the first goes on, finds its lease gone, writes nothing
	if r := <-first; !r.ran || r.err != nil {
		t.Fatalf("the stalled run: %v, %v", r.ran, r.err)
	}
	if after := e.get(p.ID); !after.LastRunAt.Equal(*took.LastRunAt) || !after.NextRunAt.Equal(*took.NextRunAt) {
		t.Fatalf("the stalled run wrote over the one that took over: %+v, was %+v", after, took)
	}
	// A duplicate task once the run ended: not due, nothing runs.
	if ran, err := run(); ran || err != nil {
		t.Fatalf("a duplicate task ran: %v, %v", ran, err)
	}
}

// Create takes a slot and registers the key; at most 2 per workspace (entitlement_exceeded,
// nothing written); Delete hides the score at once and frees the slot; a key a computed
// trait or another prediction holds is refused; the others' space is not found.
func TestSlotsKeysAndDelete(t *testing.T) {
	t.Parallel()
	today := predicttest.DefaultToday
	e := newEnv(t, today, nil)
	ds, _ := predicttest.Generate(predicttest.Config{Seed: 7, Profiles: 300, Days: 100, Today: today, Signal: true})
	e.apply(e.tn.SpaceID(), ds, 0, imported)

	churn := e.create(`{"kind":"churn","key":"likely_to_churn","event":"Order Completed","window_days":30}`)
	if _, err := e.svc.Create(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.SpaceID(), e.spec(`{"kind":"purchase","key":"likely_to_churn","events":["Order Completed"],"window_days":30}`)); err == nil {
		t.Fatal("a second prediction took the key of the first")
	} else if e := errcode.As(err); e == nil || e.Kind != errcode.Conflict {
		t.Fatalf("the same key twice: %v, want a conflict", err)
	}
	if u := e.usage(); u != 1 {
		t.Fatalf("usage %d after one prediction and a refused key, want 1", u)
	}
	ltv := e.create(`{"kind":"ltv","key":"predicted_ltv","purchase_event":"Order Completed","revenue_property":"revenue","currency":"EUR"}`)
	if ltv.WindowDays != 120 || ltv.Currency != "EUR" || ltv.RevenueProperty != "revenue" {
		t.Errorf("ltv created as %+v", ltv)
	}
	_, err := e.svc.Create(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.SpaceID(), e.spec(`{"kind":"custom","key":"third","events":["App Opened"],"window_days":15}`))
	if ee := errcode.As(err); ee == nil || ee.Code != "entitlement_exceeded" || ee.Kind != errcode.Forbidden {
		t.Fatalf("a third prediction: %v, want entitlement_exceeded", err)
	}
	list, err := e.svc.List(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.SpaceID())
	if err != nil || len(list) != 2 || e.usage() != 2 {
		t.Fatalf("list %+v (%v), usage %d: want the 2", list, err, e.usage())
	}

	e.clock.Add(afterCountingStarts)
	e.dispatch()
	if g := e.get(churn.ID); g.Status != predict.StatusReady {
		t.Fatalf("churn after its run: %+v", g)
	}
	if _, ok := e.trait("user-000010", "likely_to_churn"); !ok {
		t.Fatal("no score on a scored profile")
	}
	if err := e.svc.Delete(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.SpaceID(), churn.ID); err != nil {
		t.Fatal(err)
	}
	for _, uid := range []string{"user-000010", "user-000100", "user-000200"} {
		if v, ok := e.trait(uid, "likely_to_churn"); ok {
			t.Errorf("%s still shows the deleted prediction's score %v", uid, v)
		}
	}
	if _, err := e.svc.Get(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.SpaceID(), churn.ID); !errcode.Is(err, "not_found") {
		t.Errorf("get after delete: %v", err)
	}
	if err := e.svc.Delete(e.ctx, e.tn.Owner, e.tn.ID(), e.tn.SpaceID(), churn.ID); !errcode.Is(err, "not_found") {
		t.Errorf("delete twice: %v", err)
	}
	if u := e.usage(); u != 1 {
		t.Fatalf("usage after the delete: %d, want 1", u)
	}
	// The slot and the key are free again.
	again := e.create(`{"kind":"churn","key":"likely_to_churn","event":"Order Completed","window_days":60}`)
	if again.ID == churn.ID || e.usage() != 2 {
		t.Fatalf("created again as %+v, usage %d", again, e.usage())
	}

	// Another tenant's token: its space is not found, its predictions not even listed.
	other := workspacetest.New(t, e.ws, operatorToken)
	if _, err := e.svc.List(e.ctx, other.Owner, e.tn.ID(), e.tn.SpaceID()); err == nil {
		t.Error("another workspace's token listed the predictions")
	}
	if _, err := e.svc.Get(e.ctx, other.Owner, other.ID(), other.SpaceID(), ltv.ID); !errcode.Is(err, "not_found") {
		t.Errorf("a prediction read through another workspace's space: %v", err)
	}
}

// Runs that never finish (a worker killed by its timeout or memory, mid-run): each claim
// after a lease ran out counts one; the claim after 3 such runs ends the prediction failed,
// saying why, and makes it due the next day instead of taking it over again.
func TestRunsThatNeverFinishEndFailed(t *testing.T) {
	t.Parallel()
	today := predicttest.DefaultToday
	g := &gate{entered: make(chan chan struct{}, 4)}
	e := newEnv(t, today, func(s *profile.Service) predict.Profiles { g.Service = s; return g })
	p := e.create(`{"kind":"churn","key":"likely_to_churn","event":"Order Completed","window_days":30}`)
	e.clock.Add(afterCountingStarts)
	var stalled []chan struct{}
	done := make(chan struct{}, 3)
	for range 3 {
		go func() {
			e.svc.Run(e.ctx, e.tn.ID(), e.tn.SpaceID(), p.ID)
			done <- struct{}{}
		}()
		stalled = append(stalled, <-g.entered) // this run holds the lease and never goes on
		e.clock.Add(predict.DefaultLease + time.Second)
	}
	if ran, err := e.svc.Run(e.ctx, e.tn.ID(), e.tn.SpaceID(), p.ID); ran || err != nil {
		t.Fatalf("the fourth claim ran: %v, %v", ran, err)
	}
	got := e.get(p.ID)
	if got.Status != predict.StatusFailed || !strings.Contains(got.Error, "the last 3 runs stopped without finishing") ||
		!got.NextRunAt.Equal(e.clock.Now().Add(predict.RecheckEvery)) || got.Progress != nil {
		t.Fatalf("after 3 runs that never finished: %+v", got)
	}
	t.Logf("error: %s", got.Error)
	for _, c := range stalled { // the stalled runs wake up: their leases are gone, they write nothing
		close(c)
		<-done
	}
	if after := e.get(p.ID); after.Status != predict.StatusFailed || !after.NextRunAt.Equal(*got.NextRunAt) {
		t.Fatalf("a stalled run wrote when it woke: %+v", after)
	}
	// The next day it is tried again, and runs.
	e.clock.Set(*got.NextRunAt)
	go func() { close(<-g.entered) }()
	if ran, err := e.svc.Run(e.ctx, e.tn.ID(), e.tn.SpaceID(), p.ID); !ran || err != nil {
		t.Fatalf("the next day's run: %v, %v", ran, err)
	}
	if g := e.get(p.ID); g.Status != predict.StatusWaitingForData || g.Error != "" {
		t.Fatalf("after the next day's run: %+v", g)
	}
}
