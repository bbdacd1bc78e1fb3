package profile_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/traits"
)

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if e := errcode.As(err); code == "" && err != nil || code != "" && (e == nil || e.Code != code) {
		t.Errorf("%s: %v, want %q", what, err, code)
	}
}

// A prediction's key is taken like a computed trait's: never one a computed trait, another
// prediction, a custom trait, a reserved trait or an identifier has, and a computed trait
// or an identify cannot take it back while the prediction holds it.
func TestPredictionKeys(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		withPhone(t, svc)
		ct := createPreset(t, svc, traits.PresetTotalInbounds)
		for _, tc := range []struct {
			name, id, key string
			custom        []string
			code          string
		}{
			{"free key", "pred_churn", "churn_risk", nil, ""},
			{"again, same key", "pred_churn", "churn_risk", nil, ""},
			{"another prediction's key", "pred_other", "churn_risk", nil, "trait_key_in_use"},
			{"a computed trait's key", "pred_other", ct.Definition.Key, nil, "trait_key_in_use"},
			{"a custom trait's key", "pred_other", "plan", []string{"plan"}, "trait_key_in_use"},
			{"a reserved trait", "pred_other", "email", nil, "trait_key_in_use"},
			{"an identifier's trait", "pred_other", "phone", nil, "trait_key_in_use"},
			{"not snake_case", "pred_other", "Purchase Score", nil, "invalid_field"},
			{"no id", "", "purchase_score", nil, "invalid_field"},
			{"second prediction", "pred_buy", "purchase_score", nil, ""},
		} {
			err := svc.RegisterPrediction(ctx, sp, tc.id, tc.key, tc.custom...)
			wantCode(t, tc.name, err, tc.code)
			if e := errcode.As(err); tc.code == "trait_key_in_use" && (e == nil || e.Kind != errcode.Conflict) {
				t.Errorf("%s: %v, want a 409 conflict", tc.name, err)
			}
		}
		d, _ := traits.Preset(traits.PresetTotalInbounds)
		d.Key = "churn_risk"
		_, err := svc.CreateComputedTrait(ctx, sp, d, "", takeSlot())
		wantCode(t, "a computed trait on a prediction's key", err, "trait_key_in_use")
		_, err = svc.Apply(ctx, sp, identify("u-pk", "", map[string]any{"churn_risk": 1}, t0))
		wantCode(t, "an identify setting a prediction's key", err, "trait_key_reserved")
		// Unregistered, the key is free again.
		wantCode(t, "unregister", svc.UnregisterPrediction(ctx, sp, "pred_churn"), "")
		wantCode(t, "unregister again", svc.UnregisterPrediction(ctx, sp, "pred_churn"), "not_found")
		if _, err := svc.Apply(ctx, sp, identify("u-pk", "", map[string]any{"churn_risk": 1}, t0)); err != nil {
			t.Errorf("identify after unregistering: %v", err)
		}
	})
}

// A registered prediction's scores show among the profile's computed trait values under its
// key, each profile its own; unregistered they stop at once, registered again they are back.
func TestPredictionScoresShowAsTraits(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		a := mustApply(t, svc, track("ps-1", "u-ps-a", "", "Viewed", t0)).ProfileID
		b := mustApply(t, svc, track("ps-2", "u-ps-b", "", "Viewed", t0)).ProfileID
		mustApply(t, svc, track("ps-3", "u-ps-c", "", "Viewed", t0))
		createPreset(t, svc, traits.PresetTotalInbounds)
		if err := svc.RegisterPrediction(ctx, sp, "pred_churn", "churn_risk"); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(-time.Hour)
		wantCode(t, "a score over 1", svc.PutScores(ctx, sp, "pred_churn", map[string]float64{a: 1.5}, at), "invalid_field")
		if err := svc.PutScores(ctx, sp, "pred_churn", map[string]float64{a: 0.83, b: 0}, at); err != nil {
			t.Fatal(err)
		}
		// A prediction not registered (yet) stores its scores without showing them.
		if err := svc.PutScores(ctx, sp, "pred_later", map[string]float64{a: 0.5}, at); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			user string
			want any // the churn_risk value; nil: absent
		}{{"u-ps-a", 0.83}, {"u-ps-b", 0.0}, {"u-ps-c", nil}} {
			vals := values(t, svc, "user_id:"+tc.user)
			if got, ok := vals["churn_risk"]; tc.want == nil && ok || tc.want != nil && got != tc.want {
				t.Errorf("%s: churn_risk %v (present %v), want %v", tc.user, got, ok, tc.want)
			}
			if _, ok := vals["pred_later"]; ok {
				t.Errorf("%s: an unregistered prediction shows", tc.user)
			}
		}
		it, err := st.Get(ctx, store.Key{PK: "SP#" + sp + "#P#" + a, SK: "S#pred_churn"})
		if err != nil || it.ExpiresAt != at.Add(profile.ScoreRetention).Unix() {
			t.Errorf("score item %+v %v, want it to expire %v after it was computed", it, err, profile.ScoreRetention)
		}
		if err := svc.UnregisterPrediction(ctx, sp, "pred_churn"); err != nil {
			t.Fatal(err)
		}
		if _, ok := values(t, svc, "user_id:u-ps-a")["churn_risk"]; ok {
			t.Error("the score still shows after the prediction was unregistered")
		}
		if err := svc.RegisterPrediction(ctx, sp, "pred_churn", "churn_risk"); err != nil {
			t.Fatal(err)
		}
		if got := values(t, svc, "user_id:u-ps-a")["churn_risk"]; got != 0.83 {
			t.Errorf("registered again: churn_risk %v, want 0.83", got)
		}
	})
}

// readCountingStore counts the read round trips (Get, GetMany, Query).
type readCountingStore struct {
	store.Store
	mu    sync.Mutex
	reads int
}

func (r *readCountingStore) count() {
	r.mu.Lock()
	r.reads++
	r.mu.Unlock()
}

func (r *readCountingStore) Get(ctx context.Context, k store.Key) (store.Item, error) {
	r.count()
	return r.Store.Get(ctx, k)
}

func (r *readCountingStore) GetMany(ctx context.Context, keys ...store.Key) (map[store.Key]store.Item, error) {
	r.count()
	return r.Store.GetMany(ctx, keys...)
}

func (r *readCountingStore) Query(ctx context.Context, pk string, p store.Page) ([]store.Item, error) {
	r.count()
	return r.Store.Query(ctx, pk, p)
}

// The Profile API's traits read a profile's computed values in one round trip when the space
// has neither computed traits nor predictions, and in two otherwise (definitions and
// registrations together, then the profile's states and scores together).
func TestComputedTraitValuesRoundTrips(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, svc *profile.Service, c *testclock.Clock, st store.Store) {
		ctx := context.Background()
		rc := &readCountingStore{Store: st}
		reader := profile.New(rc, profile.Options{Now: c.Now})
		p := lookup(t, svc, "user_id:"+mustApplyUser(t, svc, "u-rt-a"))
		reads := func(step string, want int, score any) {
			t.Helper()
			rc.mu.Lock()
			rc.reads = 0
			rc.mu.Unlock()
			vals, err := reader.ComputedTraitValues(ctx, sp, p)
			if err != nil {
				t.Fatal(err)
			}
			if rc.reads != want || vals["rt_score"] != score {
				t.Errorf("%s: %d round trips and %v, want %d and rt_score %v", step, rc.reads, vals, want, score)
			}
		}
		reads("nothing defined", 1, nil)
		if err := svc.RegisterPrediction(ctx, sp, "pred_rt", "rt_score"); err != nil {
			t.Fatal(err)
		}
		if err := svc.PutScores(ctx, sp, "pred_rt", map[string]float64{p.ID: 0.25}, t0); err != nil {
			t.Fatal(err)
		}
		reads("a prediction", 2, 0.25)
		createPreset(t, svc, traits.PresetTotalInbounds)
		reads("a prediction and a computed trait", 2, 0.25)
	})
}

func mustApplyUser(t *testing.T, svc *profile.Service, user string) string {
	t.Helper()
	mustApply(t, svc, track("rt-"+user, user, "", "Viewed", t0))
	return user
}
