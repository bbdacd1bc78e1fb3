// Package upload is the CSV upload of the guided setup: the template, the presigned browser
// upload, and the processing an object-created event starts: validate the whole file, then
// apply its rows through the identity entry point, resumably and exactly once.
package upload

import (
	"time"

	"github.com/unifiedprofiles/up/shared/csvfile"
)

// Statuses of an upload, in the order it goes through them.
const (
	StatusPending    = "pending"    // presigned, the file has not arrived
	StatusValidating = "validating" // the whole file is being checked; nothing written yet
	StatusIngesting  = "ingesting"  // rows are being applied, in order
	StatusCompleted  = "completed"
	StatusFailed     = "failed"
)

// Limits and timings.
const (
	MaxFileBytes   = 50 << 20         // a 9,999-row file of wide rows fits many times over
	PostExpiry     = 15 * time.Minute // the presigned POST's lifetime
	Progress       = 500              // rows between two progress checkpoints
	History        = 30 * 24 * time.Hour
	DefaultLease   = time.Minute // a delivery owns a running upload this long past its last checkpoint
	lockAfterStart = time.Hour   // a running upload holds the workspace's slot at most this long past its last checkpoint
)

// Upload is one CSV upload and its progress.
type Upload struct {
	ID          string            `json:"id"`
	WorkspaceID string            `json:"workspace_id"`
	SpaceID     string            `json:"space_id"`
	Filename    string            `json:"filename"`
	Size        int64             `json:"size"`
	Status      string            `json:"status"`
	RowsTotal   int               `json:"rows_total"`
	RowsDone    int               `json:"rows_done"`
	Errors      []csvfile.Problem `json:"errors"`
	ErrorsTotal int               `json:"errors_total"`
	Summary     *Summary          `json:"summary,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	Deadline    time.Time         `json:"deadline"`          // pending: the file must arrive before
	LeaseUntil  time.Time         `json:"lease_until"`       // running: the delivery working on it owns it until then
	Deliveries  int               `json:"deliveries"`        // deliveries that took the upload over
	Failure     string            `json:"failure,omitempty"` // why it failed, besides Errors
}

// Summary is what an ingest did; step 3 of the setup shows it.
type Summary struct {
	ProfilesCreated int            `json:"profiles_created"`
	ProfilesUpdated int            `json:"profiles_updated"`
	Identifiers     map[string]int `json:"identifiers"` // identifier type → rows that carried it
	Traits          map[string]int `json:"traits"`      // trait (column) → rows that set it
}

// ObjectKey is where the file of an upload is stored.
func ObjectKey(wsID, uploadID string) string { return "uploads/" + wsID + "/" + uploadID + ".csv" }
