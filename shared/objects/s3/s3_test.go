package s3_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/locals3"
	"github.com/unifiedprofiles/up/shared/objects"
	objs3 "github.com/unifiedprofiles/up/shared/objects/s3"
)

const bucket = "up-uploads"

type event struct {
	key  string
	size int64
}

// local is a locals3 endpoint served in-process, with the adapter on it.
type local struct {
	srv    *locals3.Server
	url    string
	store  *objs3.Store
	mu     sync.Mutex
	events []event
}

func newLocal(t *testing.T) *local {
	t.Helper()
	l := &local{}
	srv, err := locals3.Open(locals3.Config{
		DataDir: t.TempDir(), Bucket: bucket, AccessKey: "LOCALKEY", SecretKey: "local-secret",
		OnObjectCreated: func(_ context.Context, _, key string, size int64, _ string) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.events = append(l.events, event{key, size})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	l.srv, l.url = srv, ts.URL
	l.store = objs3.New(srv.Client(ts.URL), bucket)
	return l
}

// upload POSTs file to a presigned form as a browser would: the fields, then the file.
func upload(t *testing.T, post objects.Post, file []byte) *http.Response {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range post.Fields {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", "people.csv")
	fw.Write(file)
	mw.Close()
	req, err := http.NewRequest(post.Method, post.URL, &buf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func readAll(t *testing.T, s objects.Store, key string) []byte {
	t.Helper()
	rc, err := s.Open(context.Background(), key, objects.Pin{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPresignPostPolicy(t *testing.T) {
	t.Parallel()
	l := newLocal(t)
	const key = "uploads/ws_1/up_1.csv"
	before := time.Now()
	post, err := l.store.PresignPost(context.Background(), key, 1<<20, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if post.Method != "POST" || post.URL != l.url+"/"+bucket {
		t.Errorf("post %s %s", post.Method, post.URL)
	}
	for _, f := range []string{"key", "policy", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Signature"} {
		if post.Fields[f] == "" {
			t.Errorf("field %s missing: %v", f, post.Fields)
		}
	}
	if post.Fields["key"] != key {
		t.Errorf("key field %q", post.Fields["key"])
	}
	raw, err := base64.StdEncoding.DecodeString(post.Fields["policy"])
	if err != nil {
		t.Fatal(err)
	}
	var pol struct {
		Expiration time.Time         `json:"expiration"`
		Conditions []json.RawMessage `json:"conditions"`
	}
	if err := json.Unmarshal(raw, &pol); err != nil {
		t.Fatal(err)
	}
	if exp := pol.Expiration.Sub(before); exp < 14*time.Minute || exp > 16*time.Minute {
		t.Errorf("expiration %s is %s from now, want 15m", pol.Expiration, exp)
	}
	var conds []string
	for _, c := range pol.Conditions {
		conds = append(conds, string(c))
	}
	all := strings.Join(conds, " ")
	for _, want := range []string{`{"key":"` + key + `"}`, `["content-length-range",1,1048576]`, `{"bucket":"` + bucket + `"}`} {
		if !strings.Contains(all, want) {
			t.Errorf("conditions %s lack %s", all, want)
		}
	}
	if strings.Contains(all, "starts-with") {
		t.Errorf("conditions %s allow more than the exact key", all)
	}
}

func TestPresignPostRejectsBadArguments(t *testing.T) {
	t.Parallel()
	l := newLocal(t)
	cases := []struct {
		name     string
		key      string
		maxBytes int64
		expires  time.Duration
	}{
		{"empty key", "", 10, time.Minute},
		{"zero maxBytes", "k", 0, time.Minute},
		{"zero expiry", "k", 10, 0},
		{"negative expiry", "k", 10, -time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := l.store.PresignPost(context.Background(), c.key, c.maxBytes, c.expires); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestUploadThenOpenStreams(t *testing.T) {
	t.Parallel()
	l := newLocal(t)
	const key = "uploads/ws_1/up_1.csv"
	csv := []byte("user_id,email,First Name\nu1,ada@example.com,Ada\nu2,alan@example.com,Alan\n")
	post, err := l.store.PresignPost(context.Background(), key, int64(len(csv)), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if resp := upload(t, post, csv); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("upload status %d", resp.StatusCode)
	}
	l.mu.Lock()
	events := l.events
	l.mu.Unlock()
	if len(events) != 1 || events[0] != (event{key, int64(len(csv))}) {
		t.Errorf("OnObjectCreated calls %+v", events)
	}
	if got := readAll(t, l.store, key); !bytes.Equal(got, csv) {
		t.Errorf("Open read %q, want %q", got, csv)
	}

	// Open hands back the response body as it arrives: a partial read then Close is fine.
	rc, err := l.store.Open(context.Background(), key, objects.Pin{})
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 8)
	if _, err := io.ReadFull(rc, head); err != nil || string(head) != "user_id," {
		t.Errorf("first bytes %q, %v", head, err)
	}
	if err := rc.Close(); err != nil {
		t.Error(err)
	}
}

func TestUploadRefusedBeyondPolicy(t *testing.T) {
	t.Parallel()
	l := newLocal(t)
	const key = "uploads/ws_1/up_2.csv"
	post, err := l.store.PresignPost(context.Background(), key, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if resp := upload(t, post, []byte("0123456789A")); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("11 bytes for at most 10: status %d, want 400", resp.StatusCode)
	}
	if resp := upload(t, post, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("empty file: status %d, want 400", resp.StatusCode)
	}
	if _, err := l.store.Open(context.Background(), key, objects.Pin{}); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("Open after refusals: %v, want ErrNotFound", err)
	}
}

// Open reads the pinned object or nothing: once a second upload replaced it, the pin that
// named the first answers ErrChanged instead of the replacement's bytes.
func TestOpenPinned(t *testing.T) {
	t.Parallel()
	l := newLocal(t)
	const key = "uploads/ws_1/up_3.csv"
	first, second := []byte("user_id\nvalidated\n"), []byte("user_id\nswapped!!\n")
	post, err := l.store.PresignPost(context.Background(), key, 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp := upload(t, post, first)
	pin := objects.Pin{ETag: strings.Trim(resp.Header.Get("ETag"), `"`)}
	if pin.ETag == "" {
		t.Fatal("the POST answered no ETag")
	}
	cases := []struct {
		name    string
		replace bool
		pin     objects.Pin
		want    string
		err     error
	}{
		{name: "pinned, unchanged", pin: pin, want: string(first)},
		{name: "pinned, replaced by a second POST", replace: true, pin: pin, err: objects.ErrChanged},
		{name: "unknown version", pin: objects.Pin{ETag: pin.ETag, VersionID: "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd"}, err: errors.New("any")},
	}
	for _, c := range cases { // in order: the second case replaces the object
		t.Run(c.name, func(t *testing.T) {
			if c.replace {
				if resp := upload(t, post, second); resp.StatusCode != http.StatusNoContent {
					t.Fatalf("second POST: status %d", resp.StatusCode)
				}
			}
			rc, err := l.store.Open(context.Background(), key, c.pin)
			if c.err != nil {
				if err == nil || c.err == objects.ErrChanged && !errors.Is(err, objects.ErrChanged) {
					t.Fatalf("Open: %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if got, _ := io.ReadAll(rc); string(got) != c.want {
				t.Errorf("read %q, want %q", got, c.want)
			}
		})
	}
}

func TestOpenMissingKey(t *testing.T) {
	t.Parallel()
	l := newLocal(t)
	_, err := l.store.Open(context.Background(), "uploads/none.csv", objects.Pin{ETag: "d41d8cd98f00b204e9800998ecf8427e"})
	if !errors.Is(err, objects.ErrNotFound) {
		t.Fatalf("error %v, want objects.ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "uploads/none.csv") {
		t.Errorf("error %q does not name the key", err)
	}
}

func TestOpenOtherErrorsAreNotNotFound(t *testing.T) {
	t.Parallel()
	l := newLocal(t)
	// A bucket that does not exist is a configuration error, not a missing object.
	_, err := objs3.New(l.srv.Client(l.url), "no-such-bucket").Open(context.Background(), "k", objects.Pin{})
	if err == nil || errors.Is(err, objects.ErrNotFound) {
		t.Errorf("error %v, want a non-NotFound error", err)
	}
}

// TestOpenFromEnv configures the adapter the way a Lambda is configured: the standard AWS
// variables, with AWS_ENDPOINT_URL_S3 pointing at the local endpoint. It sets environment
// variables, so it does not run in parallel.
func TestOpenFromEnv(t *testing.T) {
	l := newLocal(t)
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "LOCALKEY")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local-secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", locals3.DefaultRegion)
	// A host name, not an IP address: for an IP the SDK falls back to path-style by itself.
	endpoint := strings.Replace(l.url, "127.0.0.1", "localhost", 1)
	t.Setenv("AWS_ENDPOINT_URL_S3", endpoint)

	t.Run("no bucket", func(t *testing.T) {
		t.Setenv("UP_UPLOADS_BUCKET", "")
		if _, err := objs3.OpenFromEnv(context.Background()); err == nil || !strings.Contains(err.Error(), "UP_UPLOADS_BUCKET") {
			t.Errorf("error %v, want one naming UP_UPLOADS_BUCKET", err)
		}
	})
	t.Run("path-style on the endpoint override", func(t *testing.T) {
		t.Setenv("UP_UPLOADS_BUCKET", bucket)
		st, err := objs3.OpenFromEnv(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		const key = "uploads/ws_1/env.csv"
		post, err := st.PresignPost(context.Background(), key, 100, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if post.URL != endpoint+"/"+bucket {
			t.Errorf("URL %q, want %q", post.URL, endpoint+"/"+bucket)
		}
		if resp := upload(t, post, []byte("email\na@example.com\n")); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("upload status %d", resp.StatusCode)
		}
		if got := readAll(t, st, key); string(got) != "email\na@example.com\n" {
			t.Errorf("Open read %q", got)
		}
	})
}
