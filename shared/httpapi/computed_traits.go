package httpapi

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/traits"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// computedTraitView is a computed trait as the admin API shows it: its definition's fields
// at the top level, as they are posted.
type computedTraitView struct {
	ID string `json:"id"`
	traits.Definition
	Conditions []traits.Condition `json:"conditions"`
	Preset     string             `json:"preset,omitempty"`
	CreatedAt  time.Time          `json:"created_at"`
	Backfill   profile.Backfill   `json:"backfill"`
}

func viewComputedTrait(t profile.ComputedTrait, b profile.Backfill) computedTraitView {
	v := computedTraitView{ID: t.ID, Definition: t.Definition, Conditions: t.Definition.Conditions, Preset: t.Preset, CreatedAt: t.CreatedAt, Backfill: b}
	if v.Conditions == nil {
		v.Conditions = []traits.Condition{}
	}
	return v
}

func (a *admin) computedTraitView(r *http.Request, spaceID string, t profile.ComputedTrait) (computedTraitView, error) {
	b, err := a.profiles.BackfillProgress(r.Context(), spaceID, t.ID)
	if err != nil && !errcode.Is(err, "not_found") {
		return computedTraitView{}, err
	}
	return viewComputedTrait(t, b), nil
}

func (a *admin) listComputedTraits(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	sp, err := a.ws.GetSpace(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"))
	if err != nil {
		return err
	}
	list, err := a.profiles.ComputedTraits(r.Context(), sp.ID)
	if err != nil {
		return err
	}
	out := make([]computedTraitView, 0, len(list))
	for _, t := range list {
		v, err := a.computedTraitView(r, sp.ID, t)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"computed_traits": out})
	return nil
}

// createComputedTrait takes {"preset":"total_inbounds"} or a full definition; the trait takes
// one of the workspace's computed-trait slots (403 entitlement_exceeded when none is left)
// and is backfilled from stored events in the background (see "backfill" in the answer).
func (a *admin) createComputedTrait(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	wsID := r.PathValue("ws")
	sp, err := a.ws.GetSpace(r.Context(), p, wsID, r.PathValue("sp"))
	if err != nil {
		return err
	}
	var in struct {
		Preset string `json:"preset"`
		traits.Definition
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	d := in.Definition
	if in.Preset != "" {
		if d.Key != "" || d.Type != "" || d.Event != "" || d.Property != "" || d.Aggregate != "" || d.MinFrequency != 0 || d.Conditions != nil || d.WindowDays != 0 {
			return errcode.InvalidField("preset", "give either a preset or a full definition, not both")
		}
		if d, err = traits.Preset(in.Preset); err != nil {
			return err
		}
	}
	// The custom traits the space's data carried: a computed trait may not take their keys.
	sources, err := a.ws.ListSources(r.Context(), p, wsID)
	if err != nil {
		return err
	}
	seen, err := a.seenFields(r.Context(), p, wsID, sp.ID, sources)
	if err != nil {
		return err
	}
	t, err := a.profiles.CreateComputedTrait(r.Context(), sp.ID, d, in.Preset, workspace.TakeSlot(wsID, workspace.ResourceComputedTraits),
		slices.Collect(maps.Keys(seen.Traits))...)
	if errors.Is(err, profile.ErrNoSlot) {
		return a.ws.Exceeded(r.Context(), wsID, workspace.ResourceComputedTraits)
	}
	if err != nil {
		return err
	}
	if err := a.ws.MarkSaved(r.Context(), p, wsID, workspace.SavedTraits); err != nil {
		return err
	}
	v, err := a.computedTraitView(r, sp.ID, t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (a *admin) getComputedTrait(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	sp, err := a.ws.GetSpace(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"))
	if err != nil {
		return err
	}
	t, err := a.profiles.ComputedTrait(r.Context(), sp.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := a.computedTraitView(r, sp.ID, t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (a *admin) deleteComputedTrait(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	wsID := r.PathValue("ws")
	sp, err := a.ws.GetSpace(r.Context(), p, wsID, r.PathValue("sp"))
	if err != nil {
		return err
	}
	if err := a.profiles.DeleteComputedTrait(r.Context(), sp.ID, r.PathValue("id"), workspace.FreeSlot(wsID, workspace.ResourceComputedTraits)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
