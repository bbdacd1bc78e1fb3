package s3event_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/unifiedprofiles/up/shared/objects"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/upload"
	"github.com/unifiedprofiles/up/shared/upload/s3event"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

const operator = "upo_s3event_test"

// versionedObjects holds one object per key, at one version, and records the pin of every
// read: as S3 does, it serves a pinned read only for the pinned ETag and version.
type versionedObjects struct {
	mu      sync.Mutex
	data    map[string][]byte
	version string
	pins    []objects.Pin
}

func (v *versionedObjects) PresignPost(context.Context, string, int64, time.Duration) (objects.Post, error) {
	return objects.Post{Method: "POST"}, nil
}

func (v *versionedObjects) Open(_ context.Context, key string, pin objects.Pin) (io.ReadCloser, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pins = append(v.pins, pin)
	b, ok := v.data[key]
	if !ok || pin.VersionID != v.version {
		return nil, objects.ErrNotFound
	}
	if sum := md5.Sum(b); pin.ETag != hex.EncodeToString(sum[:]) {
		return nil, objects.ErrChanged
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// The handler hands the upload the object the event names, ETag and version id, so every
// read is pinned to it; a key arrives URL-encoded, as S3 sends it.
func TestHandlerPinsTheEventsObject(t *testing.T) {
	t.Parallel()
	sample, err := os.ReadFile(filepath.Join("..", "..", "..", "events", "s3-object-created.json"))
	if err != nil {
		t.Fatal(err)
	}
	const file = "user_id,Favourite Colour\nada,green blue\n"
	sum := md5.Sum([]byte(file))
	for _, version := range []string{"", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nrjfkd"} {
		t.Run("version "+version, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operator)})
			tn := workspacetest.New(t, ws, operator)
			objs := &versionedObjects{data: map[string][]byte{}, version: version}
			svc := upload.New(st, ws, profile.New(st, profile.Options{}), objs, upload.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			u, _, err := svc.Request(ctx, tn.Owner, tn.ID(), "my people.csv", int64(len(file)))
			if err != nil {
				t.Fatal(err)
			}
			key := upload.ObjectKey(tn.ID(), u.ID)
			objs.data[key] = []byte(file)

			var ev events.S3Event
			if err := json.Unmarshal(sample, &ev); err != nil {
				t.Fatal(err)
			}
			rec := &ev.Records[0]
			rec.EventTime = time.Now().UTC()
			rec.S3.Object.Key = url.QueryEscape(key)
			rec.S3.Object.Size = int64(len(file))
			rec.S3.Object.ETag = hex.EncodeToString(sum[:])
			rec.S3.Object.VersionID = version
			if err := s3event.Handler(svc)(ctx, ev); err != nil {
				t.Fatal(err)
			}
			got, err := svc.Get(ctx, tn.Owner, tn.ID(), u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != upload.StatusCompleted || got.File == nil || got.File.VersionID != version || got.File.ETag != rec.S3.Object.ETag {
				t.Fatalf("upload %+v, file %+v", got, got.File)
			}
			want := objects.Pin{ETag: rec.S3.Object.ETag, VersionID: version}
			if len(objs.pins) != 3 {
				t.Errorf("%d reads, want 3 (validation, identifiers, ingest)", len(objs.pins))
			}
			for i, p := range objs.pins {
				if p != want {
					t.Errorf("read %d pinned to %+v, want %+v", i, p, want)
				}
			}
		})
	}
}
