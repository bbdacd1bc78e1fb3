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

// slot is the workspace's one upload slot: held by a pending or running upload. Every write
// to it is conditional on the version read (VersionIs), so an upload only ever takes a free
// slot, renews or frees its own, and never one another upload holds. Its expiry is a
// backstop: an expired upload frees it with the write that expires it (Request, endPending).
type slot struct {
	UploadID string `json:"upload_id"`
}

// slotHolder returns the upload holding the workspace's slot ("" when free) and the slot's
// version (0 when free), for the conditional write that follows.
func (s *Service) slotHolder(ctx context.Context, wsID string) (string, int64, error) {
	it, err := s.st.Get(ctx, slotKey(wsID))
	if errors.Is(err, store.ErrNotFound) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	var sl slot
	if err := json.Unmarshal(it.Data, &sl); err != nil {
		return "", 0, fmt.Errorf("decode the upload slot of %s: %w", wsID, err)
	}
	return sl.UploadID, it.Version, nil
}

// takeSlotOp takes (version 0: must be free) or renews (its version) the slot for id.
func takeSlotOp(wsID, id string, version int64, until time.Time) store.Op {
	return store.ReplaceOp(slotItem(wsID, id, until), version)
}

// freeSlotOp frees the slot if it is still at version.
func freeSlotOp(wsID string, version int64) store.Op {
	return store.Op{Kind: store.Delete, Item: store.Item{Key: slotKey(wsID)}, Cond: store.VersionIs, Version: version}
}

// maxAttempts bounds the retries of a conditional write that lost a race.
const maxAttempts = 10

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
	cts, err := s.profiles.ComputedTraits(ctx, spaceID)
	if err != nil {
		return csvfile.Columns{}, err
	}
	var reserved []string
	for _, ct := range cts {
		reserved = append(reserved, ct.Definition.Key)
	}
	return csvfile.Columns{Identifiers: slices.Compact(cols), MaxTraits: profile.MaxTraitsPerIdentify, Reserved: reserved}, nil
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
// upload slot and returns the presigned POST the browser sends the file with. A pending
// upload whose time ran out holds the slot no more: it is expired in the same transaction.
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
		Status: StatusPending, Errors: []csvfile.Problem{}, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(PostExpiry)}
	post, err := s.objects.PresignPost(ctx, ObjectKey(wsID, u.ID), size, PostExpiry)
	if err != nil {
		return Upload{}, objects.Post{}, fmt.Errorf("presign the upload: %w", err)
	}
	for range maxAttempts {
		holder, sv, err := s.slotHolder(ctx, wsID)
		if err != nil {
			return Upload{}, objects.Post{}, err
		}
		var ops []store.Op
		if holder != "" {
			h, hv, err := s.load(ctx, wsID, holder)
			switch {
			case errcode.Is(err, "not_found"): // the holder's record is gone: a stale slot
			case err != nil:
				return Upload{}, objects.Post{}, err
			case h.expiredAt(now) || h.stalledAt(now):
				h.Status, h.Failure, _ = h.overdue(now)
				h.UpdatedAt, h.LeaseUntil = now, time.Time{}
				ops = append(ops, store.ReplaceOp(s.item(h), hv))
			case !h.finished():
				return Upload{}, objects.Post{}, s.inProgress(wsID, holder)
			}
		}
		// The slot lasts as long as the POST can deliver a file; past that, the upload is
		// expired by whoever comes next (this request, a read, a late file).
		ops = append(ops, takeSlotOp(wsID, u.ID, sv, u.ExpiresAt.Add(ArrivalGrace)), store.ReplaceOp(s.item(u), 0))
		err = s.st.Transact(ctx, ops...)
		if store.FailedOp(err) >= 0 {
			continue // the slot or its holder changed meanwhile: look again
		}
		if err != nil {
			return Upload{}, objects.Post{}, err
		}
		if len(ops) == 3 {
			s.log.Info("pending upload expired", "workspace", wsID, "upload", holder)
		}
		return u, post, nil
	}
	return Upload{}, objects.Post{}, s.inProgress(wsID, "")
}

// inProgress is the refusal of a second upload while holder is pending or running.
func (s *Service) inProgress(wsID, holder string) error {
	if holder == "" {
		return errcode.New(errcode.Conflict, "upload_in_progress",
			"another upload is pending or running in this workspace; wait for it to complete or fail (GET /v1/workspaces/%s/csv/uploads)", wsID)
	}
	return errcode.New(errcode.Conflict, "upload_in_progress",
		"upload %s is pending or running in this workspace; wait for it to complete or fail, or cancel it while it is pending (GET or DELETE /v1/workspaces/%s/csv/uploads/%s)", holder, wsID, holder)
}

// item is the stored form of u, kept for History.
func (s *Service) item(u Upload) store.Item {
	it := store.JSONItem(uploadKey(u.WorkspaceID, u.ID), u)
	it.ExpiresAt = u.CreatedAt.Add(History).Unix()
	return it
}

// Get returns an upload; a pending one whose time ran out is expired first, and a running one
// that stalled (see StallGrace) is failed first.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) Get(ctx context.Context, p workspace.Principal, wsID, id string) (Upload, error) {
	if err := p.Owns(wsID); err != nil {
		return Upload{}, err
	}
	for range maxAttempts {
		u, version, err := s.load(ctx, wsID, id)
		if err != nil {
			return u, err
		}
		status, failure, overdue := u.overdue(s.now())
		if !overdue {
			return u, nil
		}
		// End it (expired, or failed when stalled), then read it again (or, having lost a
		// race, read what won).
		if err := s.endPending(ctx, u, version, status, failure, nil); err != nil && !errors.Is(err, errRetry) {
			return Upload{}, err
		}
	}
	return Upload{}, fmt.Errorf("upload %s kept changing while it was read", id)
}

// List returns the workspace's uploads of the last 30 days, newest first; pending ones whose
// time ran out are expired first.
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
		if _, _, overdue := u.overdue(s.now()); overdue {
			if u, err = s.Get(ctx, p, wsID, u.ID); err != nil {
				return nil, err
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// Cancel ends a pending upload: it becomes cancelled, frees the workspace's slot, and a file
// that arrives for it later is refused. Only a pending upload can be cancelled: once its
// file arrived, validation and ingest run to their end.
// Caller: the workspace's token. Errors: forbidden, not_found, upload_not_pending (409).
func (s *Service) Cancel(ctx context.Context, p workspace.Principal, wsID, id string) (Upload, error) {
	if err := p.Owns(wsID); err != nil {
		return Upload{}, err
	}
	for range maxAttempts {
		u, version, err := s.load(ctx, wsID, id)
		if err != nil {
			return Upload{}, err
		}
		status := StatusCancelled
		if u.expiredAt(s.now()) {
			status = StatusExpired
		} else if u.Status != StatusPending {
			return Upload{}, notPending(u)
		}
		err = s.endPending(ctx, u, version, status, "", nil)
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return Upload{}, err
		}
		if status == StatusExpired {
			u.Status = status
			return Upload{}, notPending(u)
		}
		return s.Get(ctx, p, wsID, id)
	}
	return Upload{}, fmt.Errorf("upload %s kept changing while it was cancelled", id)
}

func notPending(u Upload) error {
	return errcode.New(errcode.Conflict, "upload_not_pending",
		"upload %s is %s; only a pending upload (its file not received yet) can be cancelled", u.ID, u.Status)
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
