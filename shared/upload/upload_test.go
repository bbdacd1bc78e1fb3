package upload_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/objects"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/upload"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

// memObjects is an in-memory object store for these unit tests: the S3 side (presigned
// POST, streaming reads, If-Match) is tested against a real S3 API in objects/s3 and locals3,
// and end to end on the local stack. Like S3, it serves a pinned read only while the object
// stored at the key is the pinned one, and every put answers the object-created event S3
// would send.
type memObjects struct {
	mu   sync.Mutex
	objs map[string][]byte
	// beforeOpen, when set, runs before the n-th Open (from 1) and may replace the object
	// at key by returning new contents (nil: leave it), as a second upload would.
	beforeOpen func(key string, n int) []byte
	opens      int
}

func (m *memObjects) PresignPost(_ context.Context, key string, maxBytes int64, expires time.Duration) (objects.Post, error) {
	return objects.Post{Method: "POST", URL: "memory://" + key, Fields: map[string]string{"key": key}}, nil
}

func (m *memObjects) Open(_ context.Context, key string, pin objects.Pin) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.opens++
	if m.beforeOpen != nil {
		if b := m.beforeOpen(key, m.opens); b != nil {
			m.objs[key] = b
		}
	}
	b, ok := m.objs[key]
	if !ok {
		return nil, objects.ErrNotFound
	}
	if pin.ETag != "" && pin.ETag != etag(b) {
		return nil, objects.ErrChanged
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// put stores b at key and returns the object-created event's object.
func (m *memObjects) put(key string, b []byte, at time.Time) upload.Object {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = b
	return upload.Object{Key: key, ETag: etag(b), Size: int64(len(b)), StoredAt: at}
}

func etag(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

const operator = "upo_upload_test"

type env struct {
	svc      *upload.Service
	profiles *profile.Service
	objs     *memObjects
	clock    *testclock.Clock
	tenant   workspacetest.Tenant
	ws       *workspace.Service
	mu       sync.Mutex
	events   map[string]upload.Object // upload → the event of the last object put for it
	// afterRow, when set, runs after each applied row (see upload.Options.AfterRow); tests
	// set it once the env exists.
	afterRow func(i int) error
}

func newEnv(t *testing.T, afterRow func(int) error) *env {
	t.Helper()
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"), bolt.WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operator), Now: c.Now})
	profiles := profile.New(st, profile.Options{Now: c.Now})
	objs := &memObjects{objs: map[string][]byte{}}
	e := &env{profiles: profiles, objs: objs, clock: c, tenant: workspacetest.New(t, ws, operator), ws: ws, events: map[string]upload.Object{}, afterRow: afterRow}
	e.svc = upload.New(st, ws, profiles, objs, upload.Options{Now: c.Now, Lease: time.Minute,
		AfterRow: func(i int) error {
			if e.afterRow != nil {
				return e.afterRow(i)
			}
			return nil
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return e
}

// start requests an upload of file and puts the file where the browser would.
func (e *env) start(t *testing.T, file string) upload.Upload {
	t.Helper()
	u, post, err := e.svc.Request(context.Background(), e.tenant.Owner, e.tenant.ID(), "people.csv", int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	if post.Fields["key"] != upload.ObjectKey(e.tenant.ID(), u.ID) {
		t.Fatalf("presigned for %q", post.Fields["key"])
	}
	e.send(u.ID, file)
	return u
}

// send stores file for upload id as the browser's POST would, and returns the event.
func (e *env) send(id, file string) upload.Object {
	obj := e.objs.put(upload.ObjectKey(e.tenant.ID(), id), []byte(file), e.clock.Now())
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events[id] = obj
	return obj
}

// stored is the object-created event of the last object sent for upload id.
func (e *env) stored(id string) upload.Object {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.events[id]
}

func (e *env) get(t *testing.T, id string) upload.Upload {
	t.Helper()
	u, err := e.svc.Get(context.Background(), e.tenant.Owner, e.tenant.ID(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (e *env) lookup(t *testing.T, ident string) (profile.Profile, error) {
	t.Helper()
	id, err := profile.ParseIdentifier("identifier", ident)
	if err != nil {
		t.Fatal(err)
	}
	return e.profiles.Lookup(context.Background(), e.tenant.SpaceID(), id)
}

func rows(n int) string {
	var b strings.Builder
	b.WriteString("user_id,email,First Name,first name,plan\n")
	for i := range n {
		fmt.Fprintf(&b, "u%d,u%d@example.com,Ada,ada,%s\n", i, i, map[bool]string{true: "pro", false: ""}[i%2 == 0])
	}
	return b.String()
}

func TestUploadCompletes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// u0 exists before the upload: its row updates it.
	if _, err := e.profiles.Apply(context.Background(), e.tenant.SpaceID(), identifyU0(e.clock.Now())); err != nil {
		t.Fatal(err)
	}
	u := e.start(t, rows(3))
	if err := e.svc.Process(context.Background(), e.stored(u.ID)); err != nil {
		t.Fatal(err)
	}
	got := e.get(t, u.ID)
	if got.Status != upload.StatusCompleted || got.RowsTotal != 3 || got.RowsDone != 3 || got.Summary == nil {
		t.Fatalf("upload %+v", got)
	}
	s := got.Summary
	if s.ProfilesCreated != 2 || s.ProfilesUpdated != 1 || s.Identifiers["user_id"] != 3 || s.Identifiers["email"] != 3 ||
		s.Traits["First Name"] != 3 || s.Traits["first name"] != 3 || s.Traits["plan"] != 2 {
		t.Errorf("summary %+v", *s)
	}
	p, err := e.lookup(t, "email:u1@example.com")
	if err != nil {
		t.Fatal(err)
	}
	tv := p.TraitValues()
	if tv["First Name"] != "Ada" || tv["first name"] != "ada" || tv["plan"] != nil {
		t.Errorf("traits of u1: %v (header case kept, empty cells ignored)", tv)
	}
	// The slot is free again.
	if _, _, err := e.svc.Request(context.Background(), e.tenant.Owner, e.tenant.ID(), "more.csv", 10); err != nil {
		t.Errorf("a new upload after completion: %v", err)
	}
}

func identifyU0(at time.Time) message.Message {
	return message.Message{Type: message.Identify, MessageID: "before-upload", UserID: "u0", Traits: map[string]any{"plan": "free"}, Timestamp: at, ReceivedAt: at}
}

// A file that breaks a rule fails with its problems and writes no profile data.
func TestUploadInvalidWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	u := e.start(t, "user_id,plan\nu1,pro\nu2,pr\u00f8 plan\nu3,ok  twice\n")
	if err := e.svc.Process(context.Background(), e.stored(u.ID)); err != nil {
		t.Fatal(err)
	}
	got := e.get(t, u.ID)
	if got.Status != upload.StatusFailed || got.ErrorsTotal == 0 || len(got.Errors) != got.ErrorsTotal || got.RowsDone != 0 {
		t.Fatalf("upload %+v", got)
	}
	for _, p := range got.Errors {
		if p.Row == 0 || p.Column == "" || p.Message == "" {
			t.Errorf("problem without a place: %+v", p)
		}
	}
	if _, err := e.lookup(t, "user_id:u1"); !errcode.Is(err, "not_found") {
		t.Errorf("u1 was written by a failed upload: %v", err)
	}
}

// One upload at a time per workspace; a pending upload whose file never came frees the slot.
func TestUploadSlot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	first := e.start(t, rows(1))
	_, _, err := e.svc.Request(ctx, e.tenant.Owner, e.tenant.ID(), "b.csv", 10)
	if ce := errcode.As(err); ce == nil || ce.Code != "upload_in_progress" || ce.Kind != errcode.Conflict || !strings.Contains(ce.Message, first.ID) {
		t.Fatalf("second upload: %v", err)
	}
	for _, bad := range []struct {
		name string
		size int64
	}{{"people.xlsx", 10}, {"../x.csv", 10}, {"a.csv", 0}, {"a.csv", upload.MaxFileBytes + 1}} {
		if _, _, err := e.svc.Request(ctx, e.tenant.Owner, e.tenant.ID(), bad.name, bad.size); !errcode.Is(err, "invalid_field") {
			t.Errorf("%s (%d bytes): %v", bad.name, bad.size, err)
		}
	}
	e.clock.Add(upload.PostExpiry + 2*time.Minute)
	if _, _, err := e.svc.Request(ctx, e.tenant.Owner, e.tenant.ID(), "c.csv", 10); err != nil {
		t.Errorf("after the first upload's POST expired: %v", err)
	}
}

// The same object-created event delivered twice, and twice at once: every row applied once.
func TestUploadRedelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	u := e.start(t, rows(50))
	key := e.stored(u.ID)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = e.svc.Process(context.Background(), key) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errcode.Is(err, "upload_busy") {
			t.Fatalf("concurrent delivery: %v", err)
		}
	}
	// Whichever lost comes back later, as the platform redelivers: nothing more happens.
	if err := e.svc.Process(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	got := e.get(t, u.ID)
	if got.Status != upload.StatusCompleted || got.Summary.ProfilesCreated != 50 || got.Deliveries != 1 {
		t.Fatalf("upload %+v %+v", got, got.Summary)
	}
	assertEventsOnce(t, e, 50)
}

// A delivery that dies half-way: the next one (after the lease) completes with the right
// counts and no row applied twice.
func TestUploadResumesAfterCrash(t *testing.T) {
	t.Parallel()
	crash := true
	e := newEnv(t, func(i int) error {
		if crash && i == 1199 {
			return fmt.Errorf("simulated crash after row %d", i)
		}
		return nil
	})
	u := e.start(t, rows(2000))
	key := e.stored(u.ID)
	if err := e.svc.Process(context.Background(), key); err == nil || !strings.Contains(err.Error(), "simulated crash") {
		t.Fatalf("crashing delivery: %v", err)
	}
	mid := e.get(t, u.ID)
	if mid.Status != upload.StatusIngesting || mid.RowsDone != 1000 || mid.RowsTotal != 2000 {
		t.Fatalf("after the crash: %+v", mid)
	}
	crash = false
	if err := e.svc.Process(context.Background(), key); !errcode.Is(err, "upload_busy") {
		t.Fatalf("redelivery within the lease: %v", err)
	}
	e.clock.Add(2 * time.Minute)
	if err := e.svc.Process(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	got := e.get(t, u.ID)
	if got.Status != upload.StatusCompleted || got.RowsDone != 2000 || got.Deliveries != 2 ||
		got.Summary.ProfilesCreated != 2000 || got.Summary.ProfilesUpdated != 0 || got.Summary.Traits["plan"] != 1000 {
		t.Fatalf("after resuming: %+v %+v", got, got.Summary)
	}
	assertEventsOnce(t, e, 2000)
}

// assertEventsOnce checks that users u0…u(n-1) each hold exactly one event.
func assertEventsOnce(t *testing.T, e *env, n int) {
	t.Helper()
	for i := range n {
		p, err := e.lookup(t, fmt.Sprintf("user_id:u%d", i))
		if err != nil {
			t.Fatalf("u%d: %v", i, err)
		}
		evs, err := e.profiles.Events(context.Background(), e.tenant.SpaceID(), p, e.clock.Now().Add(-time.Hour), e.clock.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 {
			t.Fatalf("u%d has %d events, want 1", i, len(evs))
		}
	}
}

// 9,999 data rows are accepted; 10,000 fail validation and write nothing.
func TestUploadRowLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rows int
		want string
	}{{9999, upload.StatusCompleted}, {10000, upload.StatusFailed}} {
		t.Run(fmt.Sprint(tc.rows), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			u := e.start(t, rows(tc.rows))
			if err := e.svc.Process(context.Background(), e.stored(u.ID)); err != nil {
				t.Fatal(err)
			}
			got := e.get(t, u.ID)
			if got.Status != tc.want || got.RowsTotal != tc.rows {
				t.Fatalf("upload %+v", got)
			}
			_, err := e.lookup(t, "user_id:u0")
			if tc.want == upload.StatusFailed {
				if len(got.Errors) != 1 || got.Errors[0].Message != "the file has 10,000 data rows; the limit is 9,999" {
					t.Errorf("errors %+v", got.Errors)
				}
				if !errcode.Is(err, "not_found") {
					t.Errorf("a failed upload wrote u0: %v", err)
				}
			} else if err != nil || got.Summary.ProfilesCreated != 9999 {
				t.Errorf("u0: %v; summary %+v", err, got.Summary)
			}
		})
	}
}

// A row whose identifier cells hold only blocked values fails the whole file before
// anything is written.
func TestUploadBlockedIdentifierFailsWhole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	u := e.start(t, "user_id,email,plan\nu1,u1@example.com,pro\nnull,,free\n")
	if err := e.svc.Process(context.Background(), e.stored(u.ID)); err != nil {
		t.Fatal(err)
	}
	got := e.get(t, u.ID)
	want := `row 3: no usable identifier (blocked by the space's identity settings: user_id "null"); give the row a real identifier value`
	if got.Status != upload.StatusFailed || got.ErrorsTotal != 1 || got.Errors[0].Row != 3 || got.Errors[0].Message != want {
		t.Fatalf("upload %+v", got)
	}
	if _, err := e.lookup(t, "user_id:u1"); !errcode.Is(err, "not_found") {
		t.Errorf("u1 was written by a failed upload: %v", err)
	}
}

// With the CSV data source, a completed upload completes step 2 (a failed one does not), and a
// redelivery of the completed upload marks it too (idempotently).
func TestCompletedUploadCompletesStep2(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.ws.ChooseDataSource(ctx, e.tenant.Owner, e.tenant.ID(), workspace.DataSourceCSV); err != nil {
		t.Fatal(err)
	}
	step2 := func() string {
		t.Helper()
		v, err := e.ws.GetWorkspace(ctx, e.tenant.Owner, e.tenant.ID())
		if err != nil {
			t.Fatal(err)
		}
		return v.Steps[workspace.StepAddConnections]
	}
	bad := e.start(t, "user_id,plan\n,pro\n") // no identifier value: fails validation
	if err := e.svc.Process(ctx, e.stored(bad.ID)); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, bad.ID); got.Status != upload.StatusFailed || step2() == workspace.StatusComplete {
		t.Fatalf("a failed upload (%s) completed step 2", got.Status)
	}
	u := e.start(t, rows(2))
	if err := e.svc.Process(ctx, e.stored(u.ID)); err != nil {
		t.Fatal(err)
	}
	if got := step2(); got != workspace.StatusComplete {
		t.Errorf("step 2 is %s after a completed upload, want complete", got)
	}
	if err := e.svc.Process(ctx, e.stored(u.ID)); err != nil {
		t.Errorf("redelivery of the completed upload: %v", err)
	}
}

// An upload whose delivery died and was never retried does not stay ingesting forever: once
// its lease ran out StallGrace ago, the next read (or the next upload request) ends it failed,
// with a reason, and frees the slot.
func TestStalledUploadEndsFailed(t *testing.T) {
	t.Parallel()
	crash := errors.New("the function ran out of time")
	e := newEnv(t, func(i int) error {
		if i == 1 {
			return crash
		}
		return nil
	})
	ctx := context.Background()
	u := e.start(t, rows(3))
	if err := e.svc.Process(ctx, e.stored(u.ID)); !errors.Is(err, crash) {
		t.Fatalf("Process: %v, want the crash", err)
	}
	if got := e.get(t, u.ID); got.Status != upload.StatusIngesting {
		t.Fatalf("after the crash: %s", got.Status)
	}
	e.clock.Add(upload.StallGrace) // the lease (1 minute) has not yet run out StallGrace ago
	if got := e.get(t, u.ID); got.Status != upload.StatusIngesting {
		t.Fatalf("before the grace ran out: %s", got.Status)
	}
	e.clock.Add(2 * time.Minute)
	got := e.get(t, u.ID)
	if got.Status != upload.StatusFailed || !strings.Contains(got.Failure, "upload the file again") {
		t.Fatalf("a stalled upload: %s %q, want failed with a reason", got.Status, got.Failure)
	}
	if _, _, err := e.svc.Request(ctx, e.tenant.Owner, e.tenant.ID(), "again.csv", 10); err != nil {
		t.Errorf("a new upload after the stalled one failed: %v", err)
	}
}
