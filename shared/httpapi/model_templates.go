package httpapi

import (
	"net/http"

	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// templateView is a ready model: what to fill a new model with (name, sql, id_column) and
// the identifiers and traits to map it with.
type templateView struct {
	Object      string            `json:"object"`
	Name        string            `json:"name"`
	SQL         string            `json:"sql"`
	IDColumn    string            `json:"id_column"`
	Identifiers map[string]string `json:"identifiers"`
	Traits      map[string]string `json:"traits"`
}

// listModelTemplates answers the ready models of a warehouse source (the Salesforce
// Contacts, Leads and Accounts models in its dialect).
func (a *admin) listModelTemplates(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	ts, err := wh.ModelTemplates(r.Context(), p, r.PathValue("ws"), r.PathValue("src"))
	if err != nil {
		return err
	}
	out := make([]templateView, len(ts))
	for i, t := range ts {
		out[i] = templateView{Object: t.Object, Name: t.Name, SQL: t.SQL, IDColumn: t.IDColumn, Identifiers: t.Identifiers, Traits: t.Traits}
	}
	writeJSON(w, http.StatusOK, map[string]any{"templates": out})
	return nil
}
