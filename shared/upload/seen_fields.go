package upload

import (
	"context"

	"github.com/unifiedprofiles/up/shared/fieldstats"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// SeenFields counts the identifiers and traits of the workspace's completed uploads into
// space spaceID ("" for every space) of the last 30 days, from their summaries: the rows that
// carried each identifier type and each trait column. Step 3 of the setup shows it; it reads
// the summaries and nothing else.
//
// A summary counts a custom identifier under its column (the key it is read from); it is
// reported under the identifier's type, by the space's identity rules as they are now. A
// column no rule reads any more keeps its name. Summaries count per column, so a row that
// filled two columns of one custom identifier counts twice.
// Caller: the workspace's token. Errors: forbidden.
func (s *Service) SeenFields(ctx context.Context, p workspace.Principal, wsID, spaceID string) (fieldstats.Fields, error) {
	ups, err := s.List(ctx, p, wsID)
	if err != nil {
		return fieldstats.Fields{}, err
	}
	out := fieldstats.New()
	types := map[string]map[string]string{} // space → column → custom identifier type
	for _, u := range ups {
		if u.Status != StatusCompleted || u.Summary == nil || spaceID != "" && u.SpaceID != spaceID {
			continue
		}
		byKey, ok := types[u.SpaceID]
		if !ok {
			set, err := s.profiles.Settings(ctx, u.SpaceID)
			if err != nil {
				return fieldstats.Fields{}, err
			}
			byKey = customKeyTypes(set)
			types[u.SpaceID] = byKey
		}
		for col, n := range u.Summary.Identifiers {
			typ, ok := byKey[col]
			if !ok {
				typ = col
			}
			out.AddIdentifier(typ, n)
		}
		for col, n := range u.Summary.Traits {
			out.AddTrait(col, n)
		}
	}
	return out, nil
}

// customKeyTypes maps each key a custom identifier is read from to its type; when two
// rules share a key, the one of higher priority (listed first) names it.
func customKeyTypes(set identity.Settings) map[string]string {
	out := map[string]string{}
	for _, r := range set.Normalize().Identifiers {
		if !r.Custom {
			continue
		}
		for _, k := range r.Keys {
			if _, taken := out[k]; !taken {
				out[k] = r.Type
			}
		}
	}
	return out
}
