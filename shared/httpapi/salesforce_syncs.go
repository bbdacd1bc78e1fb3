package httpapi

import (
	"net/http"

	"github.com/unifiedprofiles/up/shared/salesforce"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// A Salesforce source's syncs (issue 15, part 2): start one now (the dispatcher runs it
// within its next tick) and list the latest runs.

// sfSyncs adapts h to the route table; without the runner the routes answer
// salesforce_not_configured.
func (a *admin) sfSyncs(h func(w http.ResponseWriter, r *http.Request, p workspace.Principal, run *salesforce.Runner) error) authed {
	return func(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
		if a.sfRunner == nil {
			return sfNotConfigured()
		}
		return h(w, r, p, a.sfRunner)
	}
}

// salesforceSyncNow is POST …/salesforce/syncs: 202 with the queued run.
func (a *admin) salesforceSyncNow(w http.ResponseWriter, r *http.Request, p workspace.Principal, run *salesforce.Runner) error {
	sy, err := run.SyncNow(r.Context(), p, r.PathValue("ws"), r.PathValue("src"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": sy.ID, "status": sy.Status})
	return nil
}

// listSalesforceSyncs is GET …/salesforce/syncs: the latest runs, newest first.
func (a *admin) listSalesforceSyncs(w http.ResponseWriter, r *http.Request, p workspace.Principal, run *salesforce.Runner) error {
	syncs, err := run.ListSyncs(r.Context(), p, r.PathValue("ws"), r.PathValue("src"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"syncs": syncs})
	return nil
}
