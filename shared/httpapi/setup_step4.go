package httpapi

import (
	"net/http"

	"github.com/unifiedprofiles/up/shared/setupcheck"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// me answers which workspace a workspace token manages: the console signs in with a token
// alone (ARCHITECTURE.md section 5, "Web console"). Any other token (the operator's
// included) → 403: it names no workspace.
func (a *admin) me(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	ws, err := a.ws.Me(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, meView{WorkspaceID: ws.ID, Name: ws.Name})
	return nil
}

// checkSetup is step 4, "Check configuration": every source (a Salesforce one by its
// connection and last sync), the CSV uploads, every
// mapping's last sync and Flex, each pass, fail or skipped; with no failed item the step
// completes. It takes no body.
func (a *admin) checkSetup(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	// A nil *warehouse.Service in the interface would not be nil: pass none instead.
	var wh setupcheck.Warehouse
	if a.warehouse != nil {
		wh = a.warehouse
	}
	c := setupcheck.New(a.ws, a.tracking, a.uploads, wh)
	if a.salesforce != nil { // likewise: a deployment without it skips Salesforce sources
		c.WithSalesforce(a.salesforce)
	}
	res, err := c.Check(r.Context(), p, r.PathValue("ws"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewCheck(res))
	return nil
}
