// Package upload is the CSV upload of the guided setup: the template, the presigned browser
// upload, and the processing an object-created event starts: validate the whole file, then
// apply its rows through the identity entry point, resumably and exactly once.
//
// An upload reads exactly one stored object: the first one an object-created event announces
// while the upload is pending, pinned by the ETag (and version) of that event. Every read of
// the file asks the object store for that object and no other, so a second POST with the
// same presigned form cannot change what is validated or ingested; a second object is
// refused and recorded on the upload (Refused), never ingested.
package upload

import (
	"time"

	"github.com/unifiedprofiles/up/shared/csvfile"
	"github.com/unifiedprofiles/up/shared/store"
)

// Statuses of an upload, in the order it goes through them.
const (
	StatusPending    = "pending"    // presigned, the file has not arrived
	StatusValidating = "validating" // the whole file is being checked; nothing written yet
	StatusIngesting  = "ingesting"  // rows are being applied, in order
	StatusCompleted  = "completed"
	StatusFailed     = "failed"
	StatusExpired    = "expired"   // no file arrived in time (one that came later was refused); nothing read
	StatusCancelled  = "cancelled" // cancelled while pending; nothing read
)

// Limits and timings.
const (
	MaxFileBytes = 50 << 20         // a 9,999-row file of wide rows fits many times over
	PostExpiry   = 15 * time.Minute // the presigned POST's lifetime
	// ArrivalGrace: a file stored up to this long after the POST expired is still taken (a
	// transfer begun in time may end after it); past it the upload is expired by whoever
	// sees it first (a request for another upload, a read, a late file).
	ArrivalGrace = time.Minute
	// StallGrace: how long after its lease ran out a running upload waits for a delivery to
	// take it over (csv-ingest's asynchronous retries come within minutes, the local stack's
	// within seconds). Past it nothing will resume it: whoever sees it first ends it failed,
	// so an upload never stays validating or ingesting forever.
	StallGrace     = 30 * time.Minute
	Progress       = 500 // rows between two progress checkpoints
	History        = 30 * 24 * time.Hour
	DefaultLease   = time.Minute // a delivery owns a running upload this long past its last checkpoint
	lockAfterStart = time.Hour   // a running upload holds the workspace's slot at most this long past its last checkpoint
	// MaxRefused: the refused objects an upload records (a presigned form can be posted
	// again and again until it expires; the record stays bounded).
	MaxRefused = 10
	// MaxRowIdentifiers: the most identifiers one row may carry. A row is applied in one
	// transaction (store.MaxOps writes): one write per identifier (a new claim, or the merge
	// of the profile that owns it), plus the profile, the event, the dedupe key and, for a
	// new profile, its list entry.
	MaxRowIdentifiers = store.MaxOps - 4
)

// Upload is one CSV upload and its progress, as stored. Answers show only what a user needs
// (see httpapi); LeaseUntil, Deliveries and Delivery are the processing's own.
type Upload struct {
	ID          string            `json:"id"`
	WorkspaceID string            `json:"workspace_id"`
	SpaceID     string            `json:"space_id"`
	Filename    string            `json:"filename"`
	Size        int64             `json:"size"` // declared when requested: the most the file may have
	Status      string            `json:"status"`
	RowsTotal   int               `json:"rows_total"`
	RowsDone    int               `json:"rows_done"`
	Errors      []csvfile.Problem `json:"errors"`
	ErrorsTotal int               `json:"errors_total"`
	Summary     *Summary          `json:"summary,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	ExpiresAt   time.Time         `json:"expires_at"`        // the presigned POST works until then
	File        *Object           `json:"file,omitempty"`    // the object this upload reads, pinned when it arrived
	Refused     []Refusal         `json:"refused,omitempty"` // other objects stored for it, not ingested
	Failure     string            `json:"failure,omitempty"` // why it failed, besides Errors
	LeaseUntil  time.Time         `json:"lease_until"`       // running: the delivery working on it owns it until then
	Deliveries  int               `json:"deliveries"`        // deliveries that took the upload over
	Delivery    string            `json:"delivery,omitempty"`
}

// Object is a stored file, as an object-created event reports it.
type Object struct {
	Key       string    `json:"-"`
	ETag      string    `json:"etag"`                 // without quotes
	VersionID string    `json:"version_id,omitempty"` // "" in an unversioned bucket
	Size      int64     `json:"size"`
	StoredAt  time.Time `json:"stored_at"` // the event's time; when zero, when it was processed
}

// same reports whether o and other are one stored object.
func (o Object) same(other Object) bool {
	return o.ETag == other.ETag && o.VersionID == other.VersionID
}

// Refusal is an object stored for an upload and not ingested, and why.
type Refusal struct {
	Object
	Reason string `json:"reason"`
}

// Summary is what an ingest did; step 3 of the setup shows it.
type Summary struct {
	ProfilesCreated int            `json:"profiles_created"`
	ProfilesUpdated int            `json:"profiles_updated"`
	Identifiers     map[string]int `json:"identifiers"` // identifier type → rows that carried it
	Traits          map[string]int `json:"traits"`      // trait (column) → rows that set it
}

// finished reports whether the upload has reached an end.
func (u Upload) finished() bool {
	switch u.Status {
	case StatusCompleted, StatusFailed, StatusExpired, StatusCancelled:
		return true
	}
	return false
}

// expiredAt reports whether a pending upload can no longer take a file at now.
func (u Upload) expiredAt(now time.Time) bool {
	return u.Status == StatusPending && !now.Before(u.ExpiresAt.Add(ArrivalGrace))
}

// stalledAt reports whether a running upload was abandoned: its lease ran out StallGrace ago
// and no delivery took it over.
func (u Upload) stalledAt(now time.Time) bool {
	running := u.Status == StatusValidating || u.Status == StatusIngesting
	return running && !u.LeaseUntil.IsZero() && !now.Before(u.LeaseUntil.Add(StallGrace))
}

// stalledFailure is what a stalled upload's failure says.
const stalledFailure = "the ingest stopped and no retry resumed it; rows applied before it stopped stay applied (each once); upload the file again to apply the rest"

// overdue reports whether the upload must be ended when seen at now, and with what status
// and failure.
func (u Upload) overdue(now time.Time) (status, failure string, ok bool) {
	switch {
	case u.expiredAt(now):
		return StatusExpired, "", true
	case u.stalledAt(now):
		return StatusFailed, stalledFailure, true
	}
	return "", "", false
}

// ObjectKey is where the file of an upload is stored.
func ObjectKey(wsID, uploadID string) string { return "uploads/" + wsID + "/" + uploadID + ".csv" }
