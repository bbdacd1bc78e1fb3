package httpapi

import (
	"context"
	"net/http"
	"slices"

	"github.com/unifiedprofiles/up/shared/fieldstats"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// step3View is GET …/setup/identifiers-and-traits: what step 3 of the guided setup shows.
type step3View struct {
	SpaceID     string            `json:"space_id"`
	Status      string            `json:"status"`
	Identifiers []step3Identifier `json:"identifiers"`
	// AvailableDefaults are the default identifier types the space does not use now, for
	// the page to offer back.
	AvailableDefaults []string            `json:"available_defaults"`
	Seen              fieldstats.Fields   `json:"seen"`
	ComputedTraits    []computedTraitView `json:"computed_traits"`
}

// step3Identifier is an identifier rule as the identity GET shows it, marked default or not
// so the page can group the 11 defaults apart from custom ones.
type step3Identifier struct {
	identity.Rule
	Default bool `json:"default"`
}

// identifiersAndTraits shows step 3 for one space (?space_id=, the workspace's first space
// by default): the step's status, the space's identifiers, what its sources' recent messages
// and its completed CSV uploads carried, and its computed traits. Identifiers are edited
// with PUT …/spaces/{sp}/identity, computed traits with their own routes; this route only
// reads.
func (a *admin) identifiersAndTraits(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	ctx, wsID := r.Context(), r.PathValue("ws")
	v, err := a.ws.GetWorkspace(ctx, p, wsID)
	if err != nil {
		return err
	}
	spaceID := r.URL.Query().Get("space_id")
	if spaceID == "" {
		spaceID = v.Workspace.FirstSpaceID
	} else if _, err := a.ws.GetSpace(ctx, p, wsID, spaceID); err != nil {
		return err // another workspace's space is not_found, like any unknown one
	}

	set, err := a.profiles.Settings(ctx, spaceID)
	if err != nil {
		return err
	}
	ids := make([]step3Identifier, len(set.Identifiers))
	available := identity.DefaultTypes()
	for i, rule := range set.Identifiers {
		ids[i] = step3Identifier{Rule: rule, Default: !rule.Custom} // validated: not custom ⇔ one of the 11
		available = slices.DeleteFunc(available, func(t string) bool { return t == rule.Type })
	}

	seen, err := a.seenFields(ctx, p, wsID, spaceID, v.Sources)
	if err != nil {
		return err
	}

	cts, err := a.profiles.ComputedTraits(ctx, spaceID)
	if err != nil {
		return err
	}
	views := []computedTraitView{} // a list, never null
	for _, t := range cts {
		cv, err := a.computedTraitView(r, spaceID, t)
		if err != nil {
			return err
		}
		views = append(views, cv)
	}
	writeJSON(w, http.StatusOK, step3View{SpaceID: spaceID, Status: v.Steps[workspace.StepIdentifiersAndTraits],
		Identifiers: ids, AvailableDefaults: available, Seen: seen, ComputedTraits: views})
	return nil
}

// seenFields counts the identifiers and traits a space's data carried: the accepted messages
// in the debuggers of the sources feeding it, and its completed CSV uploads.
func (a *admin) seenFields(ctx context.Context, p workspace.Principal, wsID, spaceID string, sources []workspace.Source) (fieldstats.Fields, error) {
	var feeding []workspace.Source
	for _, src := range sources {
		if src.SpaceID == spaceID {
			feeding = append(feeding, src)
		}
	}
	seen, err := a.tracking.SeenFields(ctx, feeding)
	if err != nil {
		return fieldstats.Fields{}, err
	}
	fromCSV, err := a.uploads.SeenFields(ctx, p, wsID, spaceID)
	if err != nil {
		return fieldstats.Fields{}, err
	}
	seen.Merge(fromCSV)
	return seen, nil
}
