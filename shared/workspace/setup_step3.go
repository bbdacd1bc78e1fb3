package workspace

import (
	"context"
	"time"

	"github.com/unifiedprofiles/up/shared/store"
)

// The two parts of guided-setup step 3 ("Identifiers and traits"), as Setup.Saved records
// them: the space's identity settings, and its computed traits.
const (
	SavedIdentifiers = "identifiers"
	SavedTraits      = "traits"
)

// identifiersAndTraitsStatus is step 3's status. The rule: complete once both the
// identifiers and the computed traits have been saved at least once, in progress once one
// of them has, not started before. Identifiers come first in the product, but a user may
// save traits first; either counts as having started. Saving is what counts, not what is
// saved: the defaults saved unchanged are a choice too.
func (s Setup) identifiersAndTraitsStatus() string {
	_, ids := s.Saved[SavedIdentifiers]
	_, traits := s.Saved[SavedTraits]
	switch {
	case ids && traits:
		return StatusComplete
	case ids || traits:
		return StatusInProgress
	}
	return StatusNotStarted
}

// MarkSaved records that part (SavedIdentifiers or SavedTraits) of step 3 was saved, in any
// space of the workspace: the step is the workspace's, like the others. Only the first save
// is recorded, so saving again writes nothing (the status depends on whether, not when).
// Callers record it after their own save succeeded.
// Caller: the workspace's token. Errors: forbidden, not_found, invalid_field (part).
func (s *Service) MarkSaved(ctx context.Context, p Principal, wsID, part string) error {
	if err := p.Owns(wsID); err != nil {
		return err
	}
	if err := oneOf("part", part, []string{SavedIdentifiers, SavedTraits}); err != nil {
		return err
	}
	return retryOnRace(ctx, func() error {
		ws, version, err := s.loadWorkspace(ctx, wsID)
		if err != nil {
			return err
		}
		if _, done := ws.Setup.Saved[part]; done {
			return nil
		}
		if ws.Setup.Saved == nil {
			ws.Setup.Saved = map[string]time.Time{}
		}
		ws.Setup.Saved[part] = s.now()
		// Version-checked like every workspace write: a concurrent change of the setup (a
		// data-source choice, the lock) is re-read rather than overwritten.
		if err := s.st.Transact(ctx, store.ReplaceOp(item(workspaceKey(wsID), ws), version)); err != nil {
			if store.FailedOp(err) == 0 {
				return errRace
			}
			return err
		}
		return nil
	})
}
