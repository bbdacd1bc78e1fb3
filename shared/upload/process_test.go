package upload_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/upload"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

const (
	fileA = "user_id,plan\nalice,pro\n"
	fileB = "user_id,plan\nmallory,admin\n"
)

// assertRefused checks that upload id recorded exactly the objects refused, in order, each
// with a reason containing the given text.
func assertRefused(t *testing.T, u upload.Upload, want ...string) {
	t.Helper()
	if len(u.Refused) != len(want) {
		t.Fatalf("refused %+v, want %d", u.Refused, len(want))
	}
	for i, r := range u.Refused {
		if r.ETag == "" || !strings.Contains(r.Reason, want[i]) {
			t.Errorf("refused[%d] = %+v, want a reason with %q", i, r, want[i])
		}
	}
}

// assertAbsent checks that no profile holds user_id uid.
func assertAbsent(t *testing.T, e *env, uid string) {
	t.Helper()
	if _, err := e.lookup(t, "user_id:"+uid); !errcode.Is(err, "not_found") {
		t.Errorf("%s was written: %v", uid, err)
	}
}

// A second object stored for an upload (the presigned form posted again) is refused,
// recorded on the upload and never read, whenever it comes: after completion, while a
// delivery ingests the first one, or before the first one's event.
func TestSecondObjectRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, e *env) upload.Upload
		// status and failure of the upload at the end
		status, failure string
		refused         string // in the refusal's reason
	}{
		{name: "after completion", status: upload.StatusCompleted, refused: "already received a file",
			run: func(t *testing.T, e *env) upload.Upload {
				u := e.start(t, fileA)
				if err := e.svc.Process(ctx, e.stored(u.ID)); err != nil {
					t.Fatal(err)
				}
				b := e.send(u.ID, fileB)
				for range 2 { // the second is a redelivery: recorded once
					if err := e.svc.Process(ctx, b); err != nil {
						t.Fatal(err)
					}
				}
				return u
			}},
		{name: "while the first is ingested", status: upload.StatusCompleted, refused: "already received a file",
			run: func(t *testing.T, e *env) upload.Upload {
				u := e.start(t, fileA)
				a := e.stored(u.ID)
				e.afterRow = func(int) error {
					// The refusal is written while this delivery holds the upload; its
					// checkpoints keep the record and it completes.
					return e.svc.Process(ctx, e.send(u.ID, fileB))
				}
				if err := e.svc.Process(ctx, a); err != nil {
					t.Fatal(err)
				}
				return u
			}},
		{name: "stored before the first one's event", status: upload.StatusFailed, failure: "was replaced or removed", refused: "already received a file",
			run: func(t *testing.T, e *env) upload.Upload {
				u := e.start(t, fileA)
				a := e.stored(u.ID)
				b := e.send(u.ID, fileB) // replaces A at the key: the bucket is not versioned
				if err := e.svc.Process(ctx, a); err != nil {
					t.Fatal(err)
				}
				if err := e.svc.Process(ctx, b); err != nil {
					t.Fatal(err)
				}
				return u
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			u := c.run(t, e)
			got := e.get(t, u.ID)
			if got.Status != c.status || !strings.Contains(got.Failure, c.failure) || got.File == nil || got.File.ETag != etag([]byte(fileA)) {
				t.Fatalf("upload %+v, file %+v", got, got.File)
			}
			assertRefused(t, got, c.refused)
			if got.Refused[0].ETag != etag([]byte(fileB)) {
				t.Errorf("refused %s, want B's ETag %s", got.Refused[0].ETag, etag([]byte(fileB)))
			}
			assertAbsent(t, e, "mallory")
			if c.status == upload.StatusCompleted {
				if _, err := e.lookup(t, "user_id:alice"); err != nil || got.Summary.ProfilesCreated != 1 {
					t.Errorf("alice: %v, summary %+v", err, got.Summary)
				}
			}
		})
	}
}

// Ingest reads exactly the object it validated: a file replaced between validation and
// ingest (an unversioned key, posted again) fails the upload; the replacement is never
// applied.
func TestPinnedReads(t *testing.T) {
	t.Parallel()
	for _, swapAt := range []int{2, 3} { // validation's second pass; the ingest
		t.Run(map[int]string{2: "during validation", 3: "before the ingest"}[swapAt], func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			u := e.start(t, fileA)
			e.objs.beforeOpen = func(_ string, n int) []byte {
				if n == swapAt {
					return []byte(fileB)
				}
				return nil
			}
			if err := e.svc.Process(context.Background(), e.stored(u.ID)); err != nil {
				t.Fatal(err)
			}
			got := e.get(t, u.ID)
			if got.Status != upload.StatusFailed || !strings.Contains(got.Failure, "replaced or removed") || got.RowsDone != 0 {
				t.Fatalf("upload %+v", got)
			}
			assertAbsent(t, e, "mallory")
			assertAbsent(t, e, "alice")
		})
	}
}

// An upload takes a file only while pending, in time and within its declared size; an
// expired upload ends expired and frees the slot it holds, never one another upload took.
func TestExpiryAndSize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name    string
		run     func(t *testing.T, e *env) (upload.Upload, error)
		status  string
		refused string
		written bool
	}{
		{name: "file stored after the form expired", status: upload.StatusExpired, refused: "after the upload's form expired",
			run: func(t *testing.T, e *env) (upload.Upload, error) {
				u := request(t, e, int64(len(fileA)))
				e.clock.Add(upload.PostExpiry + upload.ArrivalGrace)
				return u, e.svc.Process(ctx, e.send(u.ID, fileA))
			}},
		{name: "file stored in time, event late", status: upload.StatusCompleted, written: true,
			run: func(t *testing.T, e *env) (upload.Upload, error) {
				u := request(t, e, int64(len(fileA)))
				e.clock.Add(upload.PostExpiry - time.Second)
				obj := e.send(u.ID, fileA)
				e.clock.Add(time.Hour)
				return u, e.svc.Process(ctx, obj)
			}},
		{name: "file stored in time, after another upload took the slot", status: upload.StatusExpired, refused: "holds the workspace's upload slot",
			run: func(t *testing.T, e *env) (upload.Upload, error) {
				u := request(t, e, int64(len(fileA)))
				obj := e.send(u.ID, fileA)
				e.clock.Add(upload.PostExpiry + upload.ArrivalGrace + time.Second) // the slot's own expiry passed
				other := request(t, e, 10)
				err := e.svc.Process(ctx, obj)
				// The other upload still holds the slot.
				if _, _, err := e.svc.Request(ctx, e.tenant.Owner, e.tenant.ID(), "c.csv", 10); !errcode.Is(err, "upload_in_progress") || !strings.Contains(err.Error(), other.ID) {
					t.Errorf("a third upload: %v, want upload_in_progress naming %s", err, other.ID)
				}
				return u, err
			}},
		{name: "expired by the next request", status: upload.StatusExpired, refused: "had expired",
			run: func(t *testing.T, e *env) (upload.Upload, error) {
				u := request(t, e, int64(len(fileA)))
				obj := e.send(u.ID, fileA)
				e.clock.Add(upload.PostExpiry + upload.ArrivalGrace)
				if got, _, err := e.svc.Request(ctx, e.tenant.Owner, e.tenant.ID(), "b.csv", 10); err != nil || got.Status != upload.StatusPending {
					t.Fatalf("a new upload once the first expired: %v", err)
				}
				if got, err := e.svc.Get(ctx, e.tenant.Owner, e.tenant.ID(), u.ID); err != nil || got.Status != upload.StatusExpired {
					t.Fatalf("the first upload: %+v, %v", got, err)
				}
				return u, e.svc.Process(ctx, obj)
			}},
		{name: "expired when read", status: upload.StatusExpired,
			run: func(t *testing.T, e *env) (upload.Upload, error) {
				u := request(t, e, int64(len(fileA)))
				e.clock.Add(upload.PostExpiry + upload.ArrivalGrace)
				list, err := e.svc.List(ctx, e.tenant.Owner, e.tenant.ID())
				if err != nil || len(list) != 1 || list[0].Status != upload.StatusExpired {
					t.Fatalf("list %+v, %v", list, err)
				}
				// The slot is free: the expiry freed it, not its backstop TTL (still running).
				if _, _, err := e.svc.Request(ctx, e.tenant.Owner, e.tenant.ID(), "b.csv", 10); err != nil {
					t.Errorf("a new upload: %v", err)
				}
				return u, nil
			}},
		{name: "file larger than declared", status: upload.StatusFailed, refused: "more than the 10 bytes declared",
			run: func(t *testing.T, e *env) (upload.Upload, error) {
				u := request(t, e, 10)
				return u, e.svc.Process(ctx, e.send(u.ID, fileA))
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			u, err := c.run(t, e)
			if err != nil {
				t.Fatal(err)
			}
			got := e.get(t, u.ID)
			if got.Status != c.status {
				t.Fatalf("upload %+v", got)
			}
			if c.refused != "" {
				assertRefused(t, got, c.refused)
			}
			if _, err := e.lookup(t, "user_id:alice"); (err == nil) != c.written {
				t.Errorf("alice written: %v, want %v", err == nil, c.written)
			}
		})
	}
}

// request starts an upload without sending its file.
func request(t *testing.T, e *env, size int64) upload.Upload {
	t.Helper()
	u, _, err := e.svc.Request(context.Background(), e.tenant.Owner, e.tenant.ID(), "people.csv", size)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// A pending upload can be cancelled: it ends cancelled, frees the slot, and a file that
// comes later is refused. Once its file arrived, it cannot.
func TestCancel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name   string
		before func(t *testing.T, e *env, u upload.Upload)
		code   string // "" when the cancel succeeds
		status string // of the upload at the end
	}{
		{name: "pending", status: upload.StatusCancelled},
		{name: "completed", code: "upload_not_pending", status: upload.StatusCompleted,
			before: func(t *testing.T, e *env, u upload.Upload) {
				if err := e.svc.Process(ctx, e.send(u.ID, fileA)); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "running", code: "upload_not_pending", status: upload.StatusIngesting,
			before: func(t *testing.T, e *env, u upload.Upload) {
				e.afterRow = func(int) error { return errors.New("simulated crash") }
				if err := e.svc.Process(ctx, e.send(u.ID, fileA)); err == nil {
					t.Fatal("the crash did not stop the delivery")
				}
			}},
		{name: "expired", code: "upload_not_pending", status: upload.StatusExpired,
			before: func(t *testing.T, e *env, u upload.Upload) { e.clock.Add(upload.PostExpiry + upload.ArrivalGrace) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			u := request(t, e, int64(len(fileA)))
			if c.before != nil {
				c.before(t, e, u)
			}
			got, err := e.svc.Cancel(ctx, e.tenant.Owner, e.tenant.ID(), u.ID)
			if c.code != "" {
				if ce := errcode.As(err); ce == nil || ce.Code != c.code || ce.Kind != errcode.Conflict || !strings.Contains(ce.Message, c.status) {
					t.Fatalf("cancel: %v, want %s", err, c.code)
				}
			} else if err != nil || got.Status != upload.StatusCancelled {
				t.Fatalf("cancel: %+v, %v", got, err)
			}
			if got := e.get(t, u.ID); got.Status != c.status {
				t.Fatalf("status %s, want %s", got.Status, c.status)
			}
			if c.code != "" {
				return
			}
			// The slot is free, and the file that comes now is refused.
			if _, _, err := e.svc.Request(ctx, e.tenant.Owner, e.tenant.ID(), "b.csv", 10); err != nil {
				t.Errorf("a new upload after the cancel: %v", err)
			}
			if err := e.svc.Process(ctx, e.send(u.ID, fileA)); err != nil {
				t.Fatal(err)
			}
			got = e.get(t, u.ID)
			if got.Status != upload.StatusCancelled {
				t.Errorf("status %s after a late file", got.Status)
			}
			assertRefused(t, got, "cancelled")
			assertAbsent(t, e, "alice")
		})
	}

	t.Run("other workspace and unknown upload", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		u := request(t, e, 10)
		other := workspacetest.New(t, e.ws, operator)
		if _, err := e.svc.Cancel(ctx, other.Owner, e.tenant.ID(), u.ID); !errcode.Is(err, "forbidden") {
			t.Errorf("another workspace's token: %v", err)
		}
		if _, err := e.svc.Cancel(ctx, e.tenant.Owner, e.tenant.ID(), "upl_none"); !errcode.Is(err, "not_found") {
			t.Errorf("unknown upload: %v", err)
		}
		if got := e.get(t, u.ID); got.Status != upload.StatusPending {
			t.Errorf("status %s", got.Status)
		}
	})
}
