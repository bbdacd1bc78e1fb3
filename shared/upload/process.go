package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/csvfile"
	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/objects"
	"github.com/unifiedprofiles/up/shared/store"
)

// ParseObjectKey returns the workspace and upload of an object key (see ObjectKey).
func ParseObjectKey(key string) (wsID, uploadID string, ok bool) {
	rest, ok := strings.CutPrefix(key, "uploads/")
	if !ok {
		return "", "", false
	}
	wsID, file, ok := strings.Cut(rest, "/")
	uploadID, isCSV := strings.CutSuffix(file, ".csv")
	if !ok || !isCSV || wsID == "" || uploadID == "" || strings.Contains(file, "/") {
		return "", "", false
	}
	return wsID, uploadID, true
}

// errBusy: another delivery owns the upload; the platform should deliver again later.
func errBusy(id string, until time.Time) error {
	return errcode.New(errcode.Unavailable, "upload_busy", "upload %s is being processed by another delivery until %s; retry later", id, until.Format(time.RFC3339))
}

var (
	// errLostLease: another delivery took the upload over (this one was too slow); it stops.
	errLostLease = errors.New("upload: another delivery took over")
	// errRetry: a conditional write lost a race; read the upload again and decide again.
	errRetry = errors.New("upload: changed meanwhile")
	// errFileGone: the pinned object cannot be read any more (replaced or removed).
	errFileGone = errors.New("upload: the pinned file is gone")
)

// Process handles an object-created event for obj: the first object stored for a pending
// upload, in time and within its declared size, becomes the upload's file (pinned by its
// ETag and version); the upload validates the whole file, then applies its rows in order.
// Any other object stored under the upload's key (the presigned form posted again, a late
// file, a file for a cancelled upload) is refused and recorded on the upload, and never
// read.
//
// Deliveries are at least once: a finished upload is acknowledged and left alone; one
// another delivery is working on answers upload_busy (the platform delivers again later);
// one whose delivery died (its lease ran out) is taken over and resumes, replaying the rows
// already applied through their dedupe keys, which changes nothing and rebuilds the summary
// exactly.
func (s *Service) Process(ctx context.Context, obj Object) error {
	wsID, id, ok := ParseObjectKey(obj.Key)
	if !ok {
		s.log.Warn("object outside the uploads layout ignored", "key", obj.Key)
		return nil
	}
	obj.ETag = strings.Trim(obj.ETag, `"`)
	if obj.ETag == "" {
		// Without an ETag the object cannot be pinned, and a redelivery would not have one either.
		s.log.Warn("object-created event without an ETag ignored", "key", obj.Key)
		return nil
	}
	if obj.StoredAt.IsZero() {
		obj.StoredAt = s.now()
	}
	for range maxAttempts {
		err := s.process(ctx, wsID, id, obj)
		if !errors.Is(err, errRetry) {
			return err
		}
	}
	return errBusy(id, s.now().Add(s.lease))
}

func (s *Service) process(ctx context.Context, wsID, id string, obj Object) error {
	u, version, err := s.load(ctx, wsID, id)
	if errcode.Is(err, "not_found") {
		s.log.Warn("object of an unknown upload ignored", "key", obj.Key)
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case u.File != nil && u.File.same(obj):
		return s.redelivered(ctx, u, version)
	case u.File != nil:
		return s.refuse(ctx, u, version, obj, fmt.Sprintf("upload %s already received a file (ETag %s) and reads only that one; request a new upload to send another file", u.ID, u.File.ETag))
	case u.Status == StatusCancelled:
		return s.refuse(ctx, u, version, obj, fmt.Sprintf("upload %s was cancelled before this file arrived", u.ID))
	case u.Status == StatusExpired:
		return s.refuse(ctx, u, version, obj, fmt.Sprintf("upload %s had expired (its form worked until %s) when this file arrived", u.ID, u.ExpiresAt.Format(time.RFC3339)))
	case u.Status != StatusPending:
		return s.refuse(ctx, u, version, obj, fmt.Sprintf("upload %s is %s without a file", u.ID, u.Status))
	case u.expiredAt(obj.StoredAt):
		return s.endPending(ctx, u, version, StatusExpired, "", &Refusal{Object: obj, Reason: fmt.Sprintf(
			"the file was stored at %s, after the upload's form expired (%s)", obj.StoredAt.Format(time.RFC3339), u.ExpiresAt.Format(time.RFC3339))})
	case obj.Size > u.Size:
		// The presigned form cannot store more than the declared size: this object came
		// another way. It is not read.
		why := fmt.Sprintf("the file stored is %d bytes, more than the %d bytes declared for the upload", obj.Size, u.Size)
		return s.endPending(ctx, u, version, StatusFailed, why+"; request a new upload with the file's size", &Refusal{Object: obj, Reason: why})
	}
	return s.take(ctx, u, version, obj)
}

// take makes obj the file of a pending upload and processes it. The upload must still hold
// the workspace's slot (or find it free): an upload that lost its slot to another one has
// expired.
func (s *Service) take(ctx context.Context, u Upload, version int64, obj Object) error {
	holder, sv, err := s.slotHolder(ctx, u.WorkspaceID)
	if err != nil {
		return err
	}
	if holder != "" && holder != u.ID {
		return s.endPending(ctx, u, version, StatusExpired, "", &Refusal{Object: obj, Reason: fmt.Sprintf(
			"upload %s had expired and upload %s holds the workspace's upload slot", u.ID, holder)})
	}
	now := s.now()
	u.Status, u.File, u.Deliveries, u.Delivery = StatusValidating, &obj, u.Deliveries+1, s.ids.New("dlv_")
	u.UpdatedAt, u.LeaseUntil = now, now.Add(s.lease)
	err = s.st.Transact(ctx, store.ReplaceOp(s.item(u), version), takeSlotOp(u.WorkspaceID, u.ID, sv, now.Add(lockAfterStart)))
	if store.FailedOp(err) >= 0 {
		return errRetry // another delivery took it, or it was cancelled: decide again
	}
	if err != nil {
		return err
	}
	return s.run(ctx, u, version+1)
}

// redelivered handles another delivery of the upload's own file: acknowledged when the
// upload is finished, busy while a delivery owns it, taken over once that lease ran out.
func (s *Service) redelivered(ctx context.Context, u Upload, version int64) error {
	now := s.now()
	switch {
	case u.Status == StatusCompleted:
		// Step 2 may not have been marked when the delivery that completed it died after
		// its last write; marking is idempotent.
		return s.ws.MarkUploadCompleted(ctx, u.WorkspaceID)
	case u.finished():
		return nil
	case now.Before(u.LeaseUntil):
		return errBusy(u.ID, u.LeaseUntil)
	}
	// Take the upload over: the version check makes concurrent deliveries race for it; the
	// loser sees a live lease next time.
	u.Deliveries++
	u.Delivery = s.ids.New("dlv_")
	version, err := s.checkpoint(ctx, &u, version)
	if errors.Is(err, errLostLease) {
		return errBusy(u.ID, now.Add(s.lease))
	}
	if err != nil {
		return err
	}
	return s.run(ctx, u, version)
}

// run validates (when not done yet) and ingests the upload's pinned file.
func (s *Service) run(ctx context.Context, u Upload, version int64) error {
	cols, err := s.columns(ctx, u.SpaceID)
	if err != nil {
		return err
	}
	if u.Status == StatusValidating {
		rep, err := s.validate(ctx, u, cols)
		if errors.Is(err, errFileGone) {
			return s.fileGone(ctx, u, version)
		}
		if err != nil {
			return err
		}
		u.RowsTotal = rep.Rows
		if !rep.OK() {
			u.Status, u.Errors, u.ErrorsTotal = StatusFailed, rep.Problems, rep.Total
			return s.finish(ctx, u, version)
		}
		u.Status = StatusIngesting
		if version, err = s.checkpoint(ctx, &u, version); err != nil {
			return err
		}
	}
	return s.ingest(ctx, u, version, cols)
}

// open streams the upload's file: the pinned object and no other.
func (s *Service) open(ctx context.Context, u Upload) (io.ReadCloser, error) {
	r, err := s.objects.Open(ctx, ObjectKey(u.WorkspaceID, u.ID), objects.Pin{ETag: u.File.ETag, VersionID: u.File.VersionID})
	if errors.Is(err, objects.ErrChanged) || errors.Is(err, objects.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", errFileGone, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open upload %s: %w", u.ID, err)
	}
	return r, nil
}

// fileGone fails an upload whose pinned file can no longer be read: it was replaced under an
// unversioned key (the local S3 endpoint), or removed. What is read is never another file.
func (s *Service) fileGone(ctx context.Context, u Upload, version int64) error {
	u.Status = StatusFailed
	u.Failure = fmt.Sprintf("the file received (ETag %s) was replaced or removed before it was read in full, so it cannot be validated and ingested as received; request a new upload and send the file once", u.File.ETag)
	if u.RowsDone > 0 {
		u.Failure += fmt.Sprintf(" (the first %d rows were applied)", u.RowsDone)
	}
	return s.finish(ctx, u, version)
}

// validate checks the whole file before anything is written: the file rules and the limits
// of the identify call every row becomes (csvfile), then, on a second pass, the rows as the
// space's identity rules read them: every row must carry an identifier they accept (the
// cells may hold only blocked values, such as "null"), and at most MaxRowIdentifiers.
func (s *Service) validate(ctx context.Context, u Upload, cols csvfile.Columns) (csvfile.Report, error) {
	r, err := s.open(ctx, u)
	if err != nil {
		return csvfile.Report{}, err
	}
	rep, err := csvfile.Validate(r, u.Filename, cols)
	r.Close()
	if err != nil || !rep.OK() {
		return rep, err
	}
	rules, err := s.profiles.Rules(ctx, u.SpaceID)
	if err != nil {
		return rep, err
	}
	if r, err = s.open(ctx, u); err != nil {
		return rep, err
	}
	defer r.Close()
	problem := func(p csvfile.Problem) {
		rep.Total++
		if len(rep.Problems) < csvfile.MaxProblems {
			rep.Problems = append(rep.Problems, p)
		}
	}
	err = csvfile.Messages(r, u.ID, u.CreatedAt, 0, func(i int, m message.Message) error {
		ids, blocked := rules.Extract(m)
		row := i + 2
		switch {
		case len(ids) > MaxRowIdentifiers:
			problem(csvfile.Problem{Row: row, Message: fmt.Sprintf(
				"row %d: the row carries %d identifiers (%s); the limit is %d per row, the most one profile update can claim at once",
				row, len(ids), identifierCounts(ids), MaxRowIdentifiers)})
		case len(ids) == 0:
			var vals []string
			for _, b := range blocked {
				vals = append(vals, fmt.Sprintf("%s %q", b.Type, b.Value))
			}
			why := "no identifier value"
			if len(vals) > 0 {
				why = "blocked by the space's identity settings: " + strings.Join(vals, ", ")
			}
			problem(csvfile.Problem{Row: row, Message: fmt.Sprintf(
				"row %d: no usable identifier (%s); give the row a real identifier value", row, why)})
		}
		return nil
	})
	return rep, err
}

// identifierCounts returns "email 1, phone 12, user_id 1".
func identifierCounts(ids []identity.Identifier) string {
	n := map[string]int{}
	for _, id := range ids {
		n[id.Type]++
	}
	types := make([]string, 0, len(n))
	for t := range n {
		types = append(types, t)
	}
	slices.Sort(types)
	for i, t := range types {
		types[i] = fmt.Sprintf("%s %d", t, n[t])
	}
	return strings.Join(types, ", ")
}

// ingest applies every row in order (rows applied by an earlier delivery come back as
// duplicates), with a checkpoint every Progress rows, and completes the upload.
func (s *Service) ingest(ctx context.Context, u Upload, version int64, cols csvfile.Columns) error {
	r, err := s.open(ctx, u)
	if errors.Is(err, errFileGone) {
		return s.fileGone(ctx, u, version)
	}
	if err != nil {
		return err
	}
	defer r.Close()
	isID := map[string]bool{}
	for _, c := range cols.Identifiers {
		isID[c] = true
	}
	sum := Summary{Identifiers: map[string]int{}, Traits: map[string]int{}}
	created, touched := map[string]bool{}, map[string]bool{}
	// Rows go in chunks of Progress, each applied as one batch (profile.ApplyMany: one
	// snapshot, one commit) and followed by a checkpoint.
	chunk := make([]message.Message, 0, Progress)
	first := 0
	flush := func() error {
		outs, err := s.profiles.ApplyMany(ctx, u.SpaceID, chunk)
		for j, o := range outs {
			if o.Skipped {
				continue
			}
			if o.Err != nil {
				return fmt.Errorf("row %d: %w", first+j+2, o.Err)
			}
			if o.Created {
				created[o.ProfileID] = true
			} else {
				touched[o.ProfileID] = true
			}
			m := chunk[j]
			if m.UserID != "" {
				sum.Identifiers[identity.TypeUserID]++
			}
			if m.AnonymousID != "" {
				sum.Identifiers[identity.TypeAnonymousID]++
			}
			for k := range m.Traits {
				if isID[k] {
					sum.Identifiers[k]++
				} else {
					sum.Traits[k]++
				}
			}
		}
		if err != nil {
			return err
		}
		if s.afterRow != nil {
			for j := range chunk {
				if err := s.afterRow(first + j); err != nil {
					return err
				}
			}
		}
		first += len(chunk)
		chunk = chunk[:0]
		u.RowsDone = max(u.RowsDone, first)
		version, err = s.checkpoint(ctx, &u, version)
		return err
	}
	err = csvfile.Messages(r, u.ID, u.CreatedAt, 0, func(i int, m message.Message) error {
		if chunk = append(chunk, m); len(chunk) == Progress {
			return flush()
		}
		return nil
	})
	if err == nil && len(chunk) > 0 {
		err = flush()
	}
	if err != nil {
		if e := errcode.As(err); e != nil && e.Kind == errcode.Invalid {
			// Validation checks every limit the identity entry point enforces, so this only
			// happens when the space's identity settings changed during the ingest (a row
			// whose identifiers became blocked): the upload fails there, the rows before it
			// stay applied.
			u.Status, u.Failure = StatusFailed, err.Error()
			return s.finish(ctx, u, version)
		}
		return err
	}
	for pid := range created {
		delete(touched, pid)
	}
	sum.ProfilesCreated, sum.ProfilesUpdated = len(created), len(touched)
	u.Summary, u.Status, u.RowsDone = &sum, StatusCompleted, u.RowsTotal
	if err := s.finish(ctx, u, version); err != nil {
		return err
	}
	return s.ws.MarkUploadCompleted(ctx, u.WorkspaceID) // step 2 of a csv workspace
}

// checkpoint saves a running upload's progress and renews its lease and the workspace slot
// (when the slot is still its own, or free); it returns the new version, or errLostLease
// when another delivery took the upload over. A refusal recorded meanwhile is kept.
func (s *Service) checkpoint(ctx context.Context, u *Upload, version int64) (int64, error) {
	for range maxAttempts {
		now := s.now()
		u.UpdatedAt, u.LeaseUntil = now, now.Add(s.lease)
		holder, sv, err := s.slotHolder(ctx, u.WorkspaceID)
		if err != nil {
			return 0, err
		}
		ops := []store.Op{store.ReplaceOp(s.item(*u), version)}
		if holder == "" || holder == u.ID {
			// Another holder means this upload's slot lapsed while no delivery ran (a whole
			// lockAfterStart) and a new upload took it: that one keeps it.
			ops = append(ops, takeSlotOp(u.WorkspaceID, u.ID, sv, now.Add(lockAfterStart)))
		}
		err = s.st.Transact(ctx, ops...)
		switch store.FailedOp(err) {
		case 0:
			if version, err = s.stillOurs(ctx, u); err != nil {
				return 0, err
			}
			continue
		case 1:
			continue // the slot changed: read it again
		}
		if err != nil {
			return 0, err
		}
		return version + 1, nil
	}
	return 0, errLostLease
}

// stillOurs reads the upload after a write of this delivery lost a version check: when the
// delivery still owns it (only a refusal was recorded meanwhile), u takes the refusals and
// the new version is returned; else errLostLease.
func (s *Service) stillOurs(ctx context.Context, u *Upload) (int64, error) {
	cur, version, err := s.load(ctx, u.WorkspaceID, u.ID)
	if err != nil {
		return 0, err
	}
	if cur.Delivery != u.Delivery || cur.finished() {
		return 0, errLostLease
	}
	u.Refused = cur.Refused
	return version, nil
}

// finish records a running upload's outcome and frees the workspace's upload slot, if it
// still holds it.
func (s *Service) finish(ctx context.Context, u Upload, version int64) error {
	for range maxAttempts {
		u.UpdatedAt, u.LeaseUntil = s.now(), time.Time{}
		holder, sv, err := s.slotHolder(ctx, u.WorkspaceID)
		if err != nil {
			return err
		}
		ops := []store.Op{store.ReplaceOp(s.item(u), version)}
		if holder == u.ID {
			ops = append(ops, freeSlotOp(u.WorkspaceID, sv))
		}
		err = s.st.Transact(ctx, ops...)
		switch store.FailedOp(err) {
		case 0:
			if version, err = s.stillOurs(ctx, &u); err != nil {
				return err
			}
			continue
		case 1:
			continue
		}
		return err
	}
	return errLostLease
}

// endPending ends a pending upload (expired, cancelled, failed), records the refused object
// when there is one, and frees the workspace's slot if the upload holds it: all in one
// conditional write. errRetry: the upload or the slot changed; read and decide again.
func (s *Service) endPending(ctx context.Context, u Upload, version int64, status, failure string, refused *Refusal) error {
	holder, sv, err := s.slotHolder(ctx, u.WorkspaceID)
	if err != nil {
		return err
	}
	u.Status, u.Failure, u.UpdatedAt, u.LeaseUntil = status, failure, s.now(), time.Time{}
	if refused != nil {
		u.Refused = addRefusal(u.Refused, *refused)
	}
	ops := []store.Op{store.ReplaceOp(s.item(u), version)}
	if holder == u.ID {
		ops = append(ops, freeSlotOp(u.WorkspaceID, sv))
	}
	err = s.st.Transact(ctx, ops...)
	if store.FailedOp(err) >= 0 {
		return errRetry
	}
	if err != nil {
		return err
	}
	s.log.Info("pending upload ended", "workspace", u.WorkspaceID, "upload", u.ID, "status", status)
	if refused != nil {
		s.log.Warn("object refused", "workspace", u.WorkspaceID, "upload", u.ID, "etag", refused.ETag, "reason", refused.Reason)
	}
	return nil
}

// refuse records an object that will not be ingested on its upload, whatever its status
// (a delivery running on the upload keeps the record: see stillOurs). A redelivery of the
// same event records nothing more.
func (s *Service) refuse(ctx context.Context, u Upload, version int64, obj Object, why string) error {
	for _, r := range u.Refused {
		if r.same(obj) {
			return nil
		}
	}
	s.log.Warn("object refused", "workspace", u.WorkspaceID, "upload", u.ID, "etag", obj.ETag, "reason", why)
	if len(u.Refused) >= MaxRefused {
		return nil
	}
	u.Refused = addRefusal(u.Refused, Refusal{Object: obj, Reason: why})
	if err := s.st.Transact(ctx, store.ReplaceOp(s.item(u), version)); store.FailedOp(err) >= 0 {
		return errRetry
	} else if err != nil {
		return err
	}
	return nil
}

// addRefusal appends r unless the list is full (MaxRefused) or holds it already.
func addRefusal(list []Refusal, r Refusal) []Refusal {
	for _, x := range list {
		if x.same(r.Object) {
			return list
		}
	}
	if len(list) >= MaxRefused {
		return list
	}
	return append(slices.Clip(list), r)
}
