package httpapi

import (
	"net/http"
	"time"

	"github.com/unifiedprofiles/up/shared/csvfile"
	"github.com/unifiedprofiles/up/shared/upload"
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

// uploadView is an upload as answers show it: what a user can act on, and nothing of how the
// processing keeps its lease (lease_until, deliveries). expires_at is the one name of the
// upload's deadline, in every answer.
type uploadView struct {
	ID          string            `json:"id"`
	SpaceID     string            `json:"space_id"`
	Filename    string            `json:"filename"`
	Size        int64             `json:"size"`
	Status      string            `json:"status"`
	RowsTotal   int               `json:"rows_total"`
	RowsDone    int               `json:"rows_done"`
	Errors      []csvfile.Problem `json:"errors"`
	ErrorsTotal int               `json:"errors_total"`
	Summary     *upload.Summary   `json:"summary,omitempty"`
	Failure     string            `json:"failure,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	ExpiresAt   time.Time         `json:"expires_at"`
	// File is the object the upload read (its ETag is the one the browser's POST answered);
	// RefusedObjects the other objects stored for it, which were not ingested.
	File           *objectView         `json:"file,omitempty"`
	RefusedObjects []refusedObjectView `json:"refused_objects"`
}

type objectView struct {
	ETag     string    `json:"etag"`
	Size     int64     `json:"size"`
	StoredAt time.Time `json:"stored_at"`
}

type refusedObjectView struct {
	objectView
	Reason string `json:"reason"`
}

func viewUpload(u upload.Upload) uploadView {
	v := uploadView{ID: u.ID, SpaceID: u.SpaceID, Filename: u.Filename, Size: u.Size, Status: u.Status,
		RowsTotal: u.RowsTotal, RowsDone: u.RowsDone, Errors: u.Errors, ErrorsTotal: u.ErrorsTotal, Summary: u.Summary,
		Failure: u.Failure, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, ExpiresAt: u.ExpiresAt,
		RefusedObjects: []refusedObjectView{}}
	if v.Errors == nil {
		v.Errors = []csvfile.Problem{}
	}
	if u.File != nil {
		v.File = &objectView{ETag: u.File.ETag, Size: u.File.Size, StoredAt: u.File.StoredAt}
	}
	for _, r := range u.Refused {
		v.RefusedObjects = append(v.RefusedObjects, refusedObjectView{objectView{ETag: r.ETag, Size: r.Size, StoredAt: r.StoredAt}, r.Reason})
	}
	return v
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
	writeJSON(w, http.StatusCreated, map[string]any{"id": u.ID, "status": u.Status, "upload": post, "expires_at": u.ExpiresAt.Format(time.RFC3339)})
	return nil
}

func (a *admin) listUploads(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	list, err := a.uploads.List(r.Context(), p, r.PathValue("ws"))
	if err != nil {
		return err
	}
	views := make([]uploadView, len(list))
	for i, u := range list {
		views[i] = viewUpload(u)
	}
	writeJSON(w, http.StatusOK, map[string]any{"uploads": views})
	return nil
}

func (a *admin) getUpload(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	u, err := a.uploads.Get(r.Context(), p, r.PathValue("ws"), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewUpload(u))
	return nil
}

// cancelUpload ends a pending upload: 200 with the upload, now cancelled; the workspace's
// upload slot is free again. 409 upload_not_pending once its file arrived.
func (a *admin) cancelUpload(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	u, err := a.uploads.Cancel(r.Context(), p, r.PathValue("ws"), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewUpload(u))
	return nil
}
