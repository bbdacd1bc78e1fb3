package httpapi

import (
	"net/http"
	"time"

	"github.com/unifiedprofiles/up/shared/workspace"
)

func (a *admin) csvTemplate(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	body, err := a.uploads.Template(r.Context(), p, r.PathValue("ws"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="unified-profiles-template.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
	return nil
}

func (a *admin) requestUpload(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	var in struct {
		Filename string `json:"filename"`
		Size     int64  `json:"size"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	u, post, err := a.uploads.Request(r.Context(), p, r.PathValue("ws"), in.Filename, in.Size)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": u.ID, "status": u.Status, "upload": post, "expires_at": u.Deadline.Format(time.RFC3339)})
	return nil
}

func (a *admin) listUploads(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	list, err := a.uploads.List(r.Context(), p, r.PathValue("ws"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"uploads": list})
	return nil
}

func (a *admin) getUpload(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	u, err := a.uploads.Get(r.Context(), p, r.PathValue("ws"), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}
