package upload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/csvfile"
	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/objects"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Service runs CSV uploads.
type Service struct {
	st       store.Store
	ws       *workspace.Service
	profiles *profile.Service
	objects  objects.Store
	now      func() time.Time
	ids      token.IDs
	lease    time.Duration
	log      *slog.Logger
	afterRow func(i int) error
}

// Options configure a Service.
type Options struct {
	Now    func() time.Time // time.Now when nil
	Lease  time.Duration    // DefaultLease when 0
	Logger *slog.Logger
	// AfterRow, when set, runs after each applied row; an error stops the delivery there, as
	// a crash would (tests).
	AfterRow func(i int) error
}

// New returns a Service. profiles is the identity entry point every ingest path shares.
func New(st store.Store, ws *workspace.Service, profiles *profile.Service, objs objects.Store, opts Options) *Service {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Service{st: st, ws: ws, profiles: profiles, objects: objs, now: func() time.Time { return now().UTC() },
		ids: token.IDs{Now: now}, lease: opts.Lease, log: opts.Logger, afterRow: opts.AfterRow}
	if s.lease <= 0 {
		s.lease = DefaultLease
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

func uploadsPK(wsID string) string        { return "UPLOADS#" + wsID }
func uploadKey(wsID, id string) store.Key { return store.Key{PK: uploadsPK(wsID), SK: "UPLOAD#" + id} }
func slotKey(wsID string) store.Key       { return store.Key{PK: uploadsPK(wsID), SK: "SLOT"} }
func slotItem(wsID, id string, until time.Time) store.Item {
	it := store.JSONItem(slotKey(wsID), slot{UploadID: id})
	it.ExpiresAt = until.Unix()
	return it
}

// slot is the workspace's one upload slot: held by a pending or running upload.
type slot struct {
	UploadID string `json:"upload_id"`
}

// columns returns the identifier columns of a space: user_id and anonymous_id, email, and
// the keys of its custom identifiers (the identifiers a CSV row can carry in its traits).
func (s *Service) columns(ctx context.Context, spaceID string) (csvfile.Columns, error) {
	set, err := s.profiles.Settings(ctx, spaceID)
	if err != nil {
		return csvfile.Columns{}, err
	}
	var cols []string
	for _, r := range set.Identifiers {
		switch {
		case r.Type == identity.TypeUserID || r.Type == identity.TypeAnonymousID || r.Type == identity.TypeEmail:
			cols = append(cols, r.Type)
		case r.Custom:
			cols = append(cols, r.Keys...)
		}
	}
	return csvfile.Columns{Identifiers: slices.Compact(cols)}, nil
}

// Template returns the CSV template of a workspace's first space.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) Template(ctx context.Context, p workspace.Principal, wsID string) ([]byte, error) {
	v, err := s.ws.GetWorkspace(ctx, p, wsID)
	if err != nil {
		return nil, err
	}
	cols, err := s.columns(ctx, v.Workspace.FirstSpaceID)
	if err != nil {
		return nil, err
	}
	return csvfile.Template(cols), nil
}

// Request starts an upload into the workspace's first space: it takes the workspace's one
// upload slot and returns the presigned POST the browser sends the file with.
// Caller: the workspace's token. Errors: forbidden, invalid_field (filename, size),
// upload_in_progress (409).
func (s *Service) Request(ctx context.Context, p workspace.Principal, wsID, filename string, size int64) (Upload, objects.Post, error) {
	if err := p.Owns(wsID); err != nil {
		return Upload{}, objects.Post{}, err
	}
	if !strings.HasSuffix(strings.ToLower(filename), ".csv") || strings.ContainsAny(filename, "/\\") {
		return Upload{}, objects.Post{}, errcode.InvalidField("filename", "must be the name of a .csv file, without a folder")
	}
	if size < 1 || size > MaxFileBytes {
		return Upload{}, objects.Post{}, errcode.InvalidField("size", "must be the file's size in bytes, from 1 to %d", MaxFileBytes)
	}
	v, err := s.ws.GetWorkspace(ctx, p, wsID)
	if err != nil {
		return Upload{}, objects.Post{}, err
	}
	now := s.now()
	u := Upload{ID: s.ids.New("upl_"), WorkspaceID: wsID, SpaceID: v.Workspace.FirstSpaceID, Filename: filename, Size: size,
		Status: StatusPending, Errors: []csvfile.Problem{}, CreatedAt: now, UpdatedAt: now, Deadline: now.Add(PostExpiry)}
	post, err := s.objects.PresignPost(ctx, ObjectKey(wsID, u.ID), size, PostExpiry)
	if err != nil {
		return Upload{}, objects.Post{}, fmt.Errorf("presign the upload: %w", err)
	}
	// The slot outlives the POST's expiry by a minute: the object-created event may lag.
	err = s.st.Transact(ctx,
		store.PutOp(slotItem(wsID, u.ID, u.Deadline.Add(time.Minute)), store.MustNotExist),
		store.ReplaceOp(s.item(u), 0)) // version 1: later writes check it
	if store.FailedOp(err) == 0 {
		return Upload{}, objects.Post{}, s.inProgress(ctx, wsID)
	}
	if err != nil {
		return Upload{}, objects.Post{}, err
	}
	return u, post, nil
}

func (s *Service) inProgress(ctx context.Context, wsID string) error {
	msg := "another upload is pending or running in this workspace; wait for it to complete or fail (GET /v1/workspaces/%s/csv/uploads)"
	if it, err := s.st.Get(ctx, slotKey(wsID)); err == nil {
		var sl slot
		json.Unmarshal(it.Data, &sl)
		msg = "upload " + sl.UploadID + " is pending or running in this workspace; wait for it to complete or fail (GET /v1/workspaces/%s/csv/uploads/" + sl.UploadID + ")"
	}
	return errcode.New(errcode.Conflict, "upload_in_progress", msg, wsID)
}

// item is the stored form of u, kept for History.
func (s *Service) item(u Upload) store.Item {
	it := store.JSONItem(uploadKey(u.WorkspaceID, u.ID), u)
	it.ExpiresAt = u.CreatedAt.Add(History).Unix()
	return it
}

// Get returns an upload. Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) Get(ctx context.Context, p workspace.Principal, wsID, id string) (Upload, error) {
	if err := p.Owns(wsID); err != nil {
		return Upload{}, err
	}
	u, _, err := s.load(ctx, wsID, id)
	return u, err
}

// List returns the workspace's uploads of the last 30 days, newest first.
// Caller: the workspace's token. Errors: forbidden.
func (s *Service) List(ctx context.Context, p workspace.Principal, wsID string) ([]Upload, error) {
	if err := p.Owns(wsID); err != nil {
		return nil, err
	}
	items, err := s.st.Query(ctx, uploadsPK(wsID), store.Page{Prefix: "UPLOAD#"})
	if err != nil {
		return nil, err
	}
	out := make([]Upload, 0, len(items))
	for _, it := range slices.Backward(items) {
		var u Upload
		if err := json.Unmarshal(it.Data, &u); err != nil {
			return nil, fmt.Errorf("decode %s: %w", it.Key, err)
		}
		out = append(out, u)
	}
	return out, nil
}

func (s *Service) load(ctx context.Context, wsID, id string) (Upload, int64, error) {
	it, err := s.st.Get(ctx, uploadKey(wsID, id))
	if errors.Is(err, store.ErrNotFound) {
		return Upload{}, 0, errcode.NotFoundf("upload %s was not found in workspace %s (uploads are kept 30 days)", id, wsID)
	}
	if err != nil {
		return Upload{}, 0, err
	}
	var u Upload
	if err := json.Unmarshal(it.Data, &u); err != nil {
		return Upload{}, 0, fmt.Errorf("decode upload %s: %w", id, err)
	}
	return u, it.Version, nil
}

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

// parallelRows bounds the rows of an upload applied at once.
const parallelRows = 128

// errBusy: another delivery owns the upload; the platform should deliver again later.
func errBusy(id string, until time.Time) error {
	return errcode.New(errcode.Unavailable, "upload_busy", "upload %s is being processed by another delivery until %s; retry later", id, until.Format(time.RFC3339))
}

// errLostLease: another delivery took the upload over (this one was too slow); it stops.
var errLostLease = errors.New("upload: another delivery took over")

// Process handles an object-created event for key: it validates the whole file, then
// applies its rows in order. Deliveries are at least once: a finished upload is
// acknowledged and left alone; one another delivery is working on answers upload_busy (the
// platform delivers again later); one whose delivery died (its lease ran out) is taken over
// and resumes, replaying the rows already applied through their dedupe keys, which changes
// nothing and rebuilds the summary exactly.
func (s *Service) Process(ctx context.Context, key string) error {
	wsID, id, ok := ParseObjectKey(key)
	if !ok {
		s.log.Warn("object outside the uploads layout ignored", "key", key)
		return nil
	}
	u, version, err := s.load(ctx, wsID, id)
	if errcode.Is(err, "not_found") {
		s.log.Warn("object of an unknown upload ignored", "key", key)
		return nil
	}
	if err != nil {
		return err
	}
	now := s.now()
	switch {
	case u.Status == StatusCompleted || u.Status == StatusFailed:
		return nil
	case u.Status != StatusPending && now.Before(u.LeaseUntil):
		return errBusy(u.ID, u.LeaseUntil)
	}
	// Take the upload: a version check makes concurrent deliveries race for it; the loser
	// sees a live lease next time.
	if u.Status == StatusPending {
		u.Status = StatusValidating
	}
	u.Deliveries++
	version, err = s.checkpoint(ctx, &u, version)
	if errors.Is(err, errLostLease) {
		return errBusy(u.ID, now.Add(s.lease))
	}
	if err != nil {
		return err
	}
	cols, err := s.columns(ctx, u.SpaceID)
	if err != nil {
		return err
	}
	if u.Status == StatusValidating {
		rep, err := s.validate(ctx, u, cols)
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

// validate checks the whole file: the file rules (csvfile), then, on a second pass, that
// every row carries an identifier the space's identity rules accept (the cells may hold
// only blocked values, such as "null"). Either way nothing has been written yet.
func (s *Service) validate(ctx context.Context, u Upload, cols csvfile.Columns) (csvfile.Report, error) {
	r, err := s.objects.Open(ctx, ObjectKey(u.WorkspaceID, u.ID))
	if err != nil {
		return csvfile.Report{}, fmt.Errorf("open upload %s: %w", u.ID, err)
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
	if r, err = s.objects.Open(ctx, ObjectKey(u.WorkspaceID, u.ID)); err != nil {
		return rep, fmt.Errorf("open upload %s: %w", u.ID, err)
	}
	defer r.Close()
	err = csvfile.Messages(r, u.ID, u.CreatedAt, 0, func(i int, m message.Message) error {
		ids, blocked := rules.Extract(m)
		if len(ids) > 0 {
			return nil
		}
		rep.Total++
		if len(rep.Problems) < csvfile.MaxProblems {
			var vals []string
			for _, b := range blocked {
				vals = append(vals, fmt.Sprintf("%s %q", b.Type, b.Value))
			}
			why := "no identifier value"
			if len(vals) > 0 {
				why = "blocked by the space's identity settings: " + strings.Join(vals, ", ")
			}
			rep.Problems = append(rep.Problems, csvfile.Problem{Row: i + 2, Message: fmt.Sprintf(
				"row %d: no usable identifier (%s); give the row a real identifier value", i+2, why)})
		}
		return nil
	})
	return rep, err
}

// ingest applies every row in order (rows applied by an earlier delivery come back as
// duplicates), with a checkpoint every Progress rows, and completes the upload.
func (s *Service) ingest(ctx context.Context, u Upload, version int64, cols csvfile.Columns) error {
	r, err := s.objects.Open(ctx, ObjectKey(u.WorkspaceID, u.ID))
	if err != nil {
		return fmt.Errorf("open upload %s: %w", u.ID, err)
	}
	defer r.Close()
	isID := map[string]bool{}
	for _, c := range cols.Identifiers {
		isID[c] = true
	}
	sum := Summary{Identifiers: map[string]int{}, Traits: map[string]int{}}
	created, touched := map[string]bool{}, map[string]bool{}
	// Rows go in chunks of Progress: within a chunk, rows that share an identifier apply in
	// order and the others concurrently (profile.ApplyMany); chunks apply in order, each
	// followed by a checkpoint.
	chunk := make([]message.Message, 0, Progress)
	first := 0
	flush := func() error {
		outs, err := s.profiles.ApplyMany(ctx, u.SpaceID, chunk, parallelRows)
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
			// A row the identity rules refuse (its identifier values are all blocked values)
			// fails the upload there; the rows before it stay applied.
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
	return s.finish(ctx, u, version)
}

// checkpoint saves u's progress and renews its lease and the workspace slot; it returns
// the new version, or errLostLease when another delivery took the upload over.
func (s *Service) checkpoint(ctx context.Context, u *Upload, version int64) (int64, error) {
	now := s.now()
	u.UpdatedAt, u.LeaseUntil = now, now.Add(s.lease)
	err := s.st.Transact(ctx,
		store.ReplaceOp(s.item(*u), version),
		store.PutOp(slotItem(u.WorkspaceID, u.ID, now.Add(lockAfterStart)), store.Always))
	if store.FailedOp(err) == 0 {
		return 0, errLostLease
	}
	if err != nil {
		return 0, err
	}
	return version + 1, nil
}

// finish records the outcome and frees the workspace's upload slot.
func (s *Service) finish(ctx context.Context, u Upload, version int64) error {
	u.UpdatedAt, u.LeaseUntil = s.now(), time.Time{}
	err := s.st.Transact(ctx,
		store.ReplaceOp(s.item(u), version),
		store.DeleteOp(slotKey(u.WorkspaceID), store.Always))
	if store.FailedOp(err) == 0 {
		return errLostLease
	}
	return err
}
