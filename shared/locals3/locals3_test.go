package locals3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/unifiedprofiles/up/shared/objects"
	objs3 "github.com/unifiedprofiles/up/shared/objects/s3"
)

const (
	testBucket = "up-uploads"
	testKey    = "uploads/ws_1/up_1.csv"
	maxBytes   = 64
	// consoleOrigin is the one origin the test endpoint allows (configured with a trailing
	// slash and next to a blank entry, which must not matter).
	consoleOrigin = "http://localhost:5173"
	otherOrigin   = "https://evil.example"
)

var testCSV = []byte("email,First Name\nada@example.com,Ada\n")

// created is one OnObjectCreated call.
type created struct {
	bucket, key string
	size        int64
	etag        string
}

type recorder struct {
	mu     sync.Mutex
	events []created
	ctxs   []context.Context
}

func (r *recorder) record(ctx context.Context, bucket, key string, size int64, etag string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, created{bucket, key, size, etag})
	r.ctxs = append(r.ctxs, ctx)
}

func (r *recorder) list() []created {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// env is one server on its own data folder, served by httptest.
type env struct {
	srv    *Server
	http   *httptest.Server
	store  *objs3.Store
	events *recorder
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rec := &recorder{}
	srv, err := Open(Config{
		DataDir: t.TempDir(), Bucket: testBucket, Region: "eu-west-1",
		AccessKey: "LOCALKEY", SecretKey: "local-secret", CORSOrigins: []string{consoleOrigin + "/", " "},
		OnObjectCreated: rec.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return &env{srv: srv, http: ts, store: objs3.New(srv.Client(ts.URL), testBucket), events: rec}
}

func (e *env) presign(t *testing.T) objects.Post {
	t.Helper()
	post, err := e.store.PresignPost(context.Background(), testKey, maxBytes, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return post
}

// presignWith signs a policy with extra conditions straight through the SDK.
func (e *env) presignWith(t *testing.T, key string, conditions ...any) objects.Post {
	t.Helper()
	req, err := s3.NewPresignClient(e.srv.Client(e.http.URL)).PresignPostObject(context.Background(),
		&s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)},
		func(o *s3.PresignPostOptions) { o.Conditions = conditions; o.Expires = time.Minute })
	if err != nil {
		t.Fatal(err)
	}
	return objects.Post{Method: "POST", URL: req.URL, Fields: req.Values}
}

// formBody is a multipart/form-data body: the fields (sorted, as a browser keeps insertion
// order and any order is valid), then the file, last, as S3 requires.
func formBody(t *testing.T, fields map[string]string, file []byte, withFile bool) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if err := mw.WriteField(k, fields[k]); err != nil {
			t.Fatal(err)
		}
	}
	if withFile {
		fw, err := mw.CreateFormFile("file", "people.csv")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(file)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

func send(t *testing.T, method, url string, body io.Reader, contentType string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func postForm(t *testing.T, url string, fields map[string]string, file []byte) (*http.Response, []byte) {
	t.Helper()
	body, ct := formBody(t, fields, file, true)
	return send(t, http.MethodPost, url, body, ct, map[string]string{"Origin": consoleOrigin})
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// readObject reads key through the objects/s3 adapter.
func (e *env) readObject(t *testing.T, key string) ([]byte, error) {
	t.Helper()
	rc, err := e.store.Open(context.Background(), key, objects.Pin{})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestBrowserPostStoresAndNotifies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	post := e.presign(t)
	if want := e.http.URL + "/" + testBucket; post.URL != want {
		t.Errorf("URL = %q, want %q", post.URL, want)
	}

	resp, body := postForm(t, post.URL, post.Fields, testCSV)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d, want 204: %s", resp.StatusCode, body)
	}
	etag := `"` + md5hex(testCSV) + `"`
	if got := resp.Header.Get("ETag"); got != etag {
		t.Errorf("ETag = %q, want %q", got, etag)
	}
	if got, want := resp.Header.Get("Location"), e.http.URL+"/"+testBucket+"/"+testKey; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != consoleOrigin {
		t.Errorf("Access-Control-Allow-Origin = %q", got)
	}
	if got := resp.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "ETag") {
		t.Errorf("Access-Control-Expose-Headers = %q, want ETag in it", got)
	}

	want := []created{{testBucket, testKey, int64(len(testCSV)), md5hex(testCSV)}}
	if got := e.events.list(); !slices.Equal(got, want) {
		t.Errorf("OnObjectCreated calls = %+v, want %+v", got, want)
	}
	got, err := e.readObject(t, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, testCSV) {
		t.Errorf("stored %q, want %q", got, testCSV)
	}

	// What gofakes3 stored carries none of the form's signing fields as metadata.
	head, err := e.srv.Client(e.http.URL).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(testKey)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt64(head.ContentLength) != int64(len(testCSV)) {
		t.Errorf("HEAD: length %d", aws.ToInt64(head.ContentLength))
	}
	for k := range head.Metadata {
		if k = strings.ToLower(k); strings.Contains(k, "signature") || strings.Contains(k, "credential") || strings.Contains(k, "algorithm") || strings.Contains(k, "date") || k == "policy" {
			t.Errorf("stored object keeps form field %s as metadata", k)
		}
	}
}

func TestBrowserPostSizeBounds(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, maxBytes} {
		e := newEnv(t)
		file := bytes.Repeat([]byte("x"), size)
		post := e.presign(t)
		resp, body := postForm(t, post.URL, post.Fields, file)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%d bytes: status %d: %s", size, resp.StatusCode, body)
		}
		if got, err := e.readObject(t, testKey); err != nil || !bytes.Equal(got, file) {
			t.Errorf("%d bytes: Open = %d bytes, %v", size, len(got), err)
		}
	}
}

// s3ErrorDoc is the part of S3's error document the tests read.
type s3ErrorDoc struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func TestBrowserPostRefused(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("a"), maxBytes+1)
	cases := []struct {
		name string
		// edit changes the form (fields, file, URL) before it is sent.
		edit     func(e *env, f map[string]string, file *[]byte, url *string)
		clock    time.Duration // added to the server's clock
		status   int
		code     string
		inMsg    string
		withFile bool
	}{
		{name: "wrong key", status: 403, code: "AccessDenied", inMsg: `Policy Condition failed: ["eq", "$key", "` + testKey + `"]`,
			edit: func(_ *env, f map[string]string, _ *[]byte, _ *string) { f["key"] = "uploads/ws_1/other.csv" }},
		{name: "expired policy", status: 403, code: "AccessDenied", inMsg: "Policy expired", clock: 2 * time.Minute},
		{name: "tampered signature", status: 403, code: "SignatureDoesNotMatch",
			edit: func(_ *env, f map[string]string, _ *[]byte, _ *string) {
				sig := []byte(f["X-Amz-Signature"])
				if sig[0] == '0' {
					sig[0] = '1'
				} else {
					sig[0] = '0'
				}
				f["X-Amz-Signature"] = string(sig)
			}},
		{name: "tampered policy", status: 403, code: "SignatureDoesNotMatch",
			edit: func(_ *env, f map[string]string, _ *[]byte, _ *string) {
				e := newPolicyEditor(t, f["policy"])
				f["policy"] = e.replace(`"content-length-range",1,64`, `"content-length-range",1,6400`)
			}},
		{name: "file over maxBytes", status: 400, code: "EntityTooLarge",
			edit: func(_ *env, _ map[string]string, file *[]byte, _ *string) { *file = big }},
		{name: "empty file", status: 400, code: "EntityTooSmall",
			edit: func(_ *env, _ map[string]string, file *[]byte, _ *string) { *file = nil }},
		{name: "field not in policy", status: 403, code: "AccessDenied", inMsg: "Extra input fields: x-amz-meta-owner",
			edit: func(_ *env, f map[string]string, _ *[]byte, _ *string) { f["x-amz-meta-owner"] = "mallory" }},
		{name: "unknown access key", status: 403, code: "InvalidAccessKeyId",
			edit: func(_ *env, f map[string]string, _ *[]byte, _ *string) {
				f["X-Amz-Credential"] = strings.Replace(f["X-Amz-Credential"], "LOCALKEY", "OTHERKEY", 1)
			}},
		{name: "other bucket", status: 403, code: "AccessDenied", inMsg: `["eq", "$bucket", "up-uploads"]`,
			edit: func(_ *env, _ map[string]string, _ *[]byte, url *string) {
				*url = strings.TrimSuffix(*url, testBucket) + "other-bucket"
			}},
		{name: "no policy", status: 400, code: "InvalidArgument",
			edit: func(_ *env, f map[string]string, _ *[]byte, _ *string) { delete(f, "policy") }},
		{name: "no signature fields", status: 403, code: "AccessDenied",
			edit: func(_ *env, f map[string]string, _ *[]byte, _ *string) {
				for k := range f {
					if k != "key" {
						delete(f, k)
					}
				}
			}},
		{name: "fields before the file over 20 KB", status: 400, code: "MaxPostPreDataLengthExceeded",
			edit: func(_ *env, f map[string]string, _ *[]byte, _ *string) {
				f["x-ignore-padding"] = strings.Repeat("p", 21<<10)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if c.clock != 0 {
				e.srv.now = func() time.Time { return time.Now().Add(c.clock) }
			}
			post := e.presign(t)
			file := slices.Clone(testCSV)
			url := post.URL
			if c.edit != nil {
				c.edit(e, post.Fields, &file, &url)
			}
			resp, body := postForm(t, url, post.Fields, file)
			assertS3Error(t, resp, body, c.status, c.code, c.inMsg)
			assertNothingStored(t, e, testKey, "uploads/ws_1/other.csv")
		})
	}

	t.Run("no file", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		post := e.presign(t)
		body, ct := formBody(t, post.Fields, nil, false)
		resp, b := send(t, http.MethodPost, post.URL, body, ct, nil)
		assertS3Error(t, resp, b, 400, "InvalidArgument", "exactly one file")
		assertNothingStored(t, e, testKey)
	})
	t.Run("not multipart", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		resp, b := send(t, http.MethodPost, e.http.URL+"/"+testBucket, strings.NewReader("key="+testKey), "application/x-www-form-urlencoded", nil)
		assertS3Error(t, resp, b, 400, "MalformedPOSTRequest", "")
		assertNothingStored(t, e, testKey)
	})
}

func assertS3Error(t *testing.T, resp *http.Response, body []byte, status int, code, inMsg string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/xml" {
		t.Errorf("Content-Type = %q", ct)
	}
	var doc s3ErrorDoc
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if doc.Code != code {
		t.Errorf("Code = %q, want %q (%s)", doc.Code, code, doc.Message)
	}
	if !strings.Contains(doc.Message, inMsg) {
		t.Errorf("Message = %q, want it to contain %q", doc.Message, inMsg)
	}
}

func assertNothingStored(t *testing.T, e *env, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, err := e.readObject(t, k); !errors.Is(err, objects.ErrNotFound) {
			t.Errorf("Open(%q) error = %v, want objects.ErrNotFound", k, err)
		}
	}
	if got := e.events.list(); len(got) != 0 {
		t.Errorf("OnObjectCreated called: %+v", got)
	}
	list, err := e.srv.Client(e.http.URL).ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(testBucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 0 {
		t.Errorf("bucket holds %d objects, want none", len(list.Contents))
	}
}

// policyEditor edits a base64 policy's JSON.
type policyEditor struct {
	t    *testing.T
	json string
}

func newPolicyEditor(t *testing.T, b64 string) policyEditor {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	return policyEditor{t, string(raw)}
}

func (p policyEditor) replace(old, new string) string {
	if !strings.Contains(p.json, old) {
		p.t.Fatalf("policy %s has no %s", p.json, old)
	}
	return base64.StdEncoding.EncodeToString([]byte(strings.Replace(p.json, old, new, 1)))
}

func TestBrowserPostPolicyConditions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		key        string // signed key
		conditions []any
		edit       func(f map[string]string)
		status     int
		code       string
	}{
		{name: "starts-with key accepted", key: "uploads/ws_1/a.csv",
			conditions: []any{[]any{"starts-with", "$key", "uploads/ws_1/"}},
			edit:       func(f map[string]string) { f["key"] = "uploads/ws_1/b.csv" }, status: 204},
		{name: "starts-with key refused", key: "uploads/ws_1/a.csv",
			conditions: []any{[]any{"starts-with", "$key", "uploads/ws_1/"}},
			edit:       func(f map[string]string) { f["key"] = "uploads/ws_2/b.csv" }, status: 403, code: "AccessDenied"},
		{name: "success_action_status 200", key: "k.csv",
			conditions: []any{map[string]string{"success_action_status": "200"}},
			edit:       func(f map[string]string) { f["success_action_status"] = "200" }, status: 200},
		{name: "success_action_status 201", key: "k.csv",
			conditions: []any{map[string]string{"success_action_status": "201"}},
			edit:       func(f map[string]string) { f["success_action_status"] = "201" }, status: 201},
		{name: "eq condition on a missing field", key: "k.csv",
			conditions: []any{[]any{"eq", "$Content-Type", "text/csv"}}, status: 403, code: "AccessDenied"},
		{name: "content-type and metadata covered", key: "k.csv",
			conditions: []any{[]any{"starts-with", "$Content-Type", "text/"}, map[string]string{"x-amz-meta-upload": "up_1"}},
			edit: func(f map[string]string) {
				f["Content-Type"] = "text/csv"
				f["x-amz-meta-upload"] = "up_1"
			}, status: 204},
		{name: "content-length-range as strings", key: "k.csv",
			conditions: []any{[]any{"content-length-range", "1", "10"}}, status: 400, code: "EntityTooLarge"},
		{name: "x-ignore fields need no condition", key: "k.csv",
			edit: func(f map[string]string) { f["x-ignore-anything"] = "1" }, status: 204},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			post := e.presignWith(t, c.key, c.conditions...)
			if c.edit != nil {
				c.edit(post.Fields)
			}
			resp, body := postForm(t, post.URL, post.Fields, testCSV)
			if c.code != "" {
				assertS3Error(t, resp, body, c.status, c.code, "")
				assertNothingStored(t, e, c.key, post.Fields["key"])
				return
			}
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			key := post.Fields["key"]
			if got, err := e.readObject(t, key); err != nil || !bytes.Equal(got, testCSV) {
				t.Errorf("Open(%q) = %q, %v", key, got, err)
			}
			if c.status == 201 {
				var doc struct {
					Bucket, Key, ETag string
				}
				if err := xml.Unmarshal(body, &doc); err != nil {
					t.Fatal(err)
				}
				if doc.Bucket != testBucket || doc.Key != key || doc.ETag != `"`+md5hex(testCSV)+`"` {
					t.Errorf("PostResponse = %+v", doc)
				}
			}
			if c.name == "content-type and metadata covered" {
				head, err := e.srv.Client(e.http.URL).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
				if err != nil {
					t.Fatal(err)
				}
				if aws.ToString(head.ContentType) != "text/csv" || head.Metadata["upload"] != "up_1" {
					t.Errorf("HEAD Content-Type %q, metadata %v", aws.ToString(head.ContentType), head.Metadata)
				}
			}
		})
	}
}

// CORS answers the console's origin only: a page on any other origin gets no CORS header
// (its script cannot read an answer) and no preflight (it cannot send a signed request).
func TestCORS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bucketURL := e.http.URL + "/" + testBucket
	objectURL := bucketURL + "/" + testKey
	cases := []struct {
		name    string
		method  string
		url     string
		hdr     map[string]string
		status  int
		headers map[string]string // header → substring expected ("" = absent)
	}{
		{name: "preflight for the upload POST from the console", method: http.MethodOptions, url: bucketURL,
			hdr:    map[string]string{"Origin": consoleOrigin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-requested-with"},
			status: 200,
			headers: map[string]string{
				"Access-Control-Allow-Origin":   consoleOrigin,
				"Access-Control-Allow-Methods":  "POST",
				"Access-Control-Allow-Headers":  "content-type,x-requested-with",
				"Access-Control-Expose-Headers": "ETag",
				"Vary":                          "Origin",
			}},
		{name: "preflight from another origin", method: http.MethodOptions, url: bucketURL,
			hdr:     map[string]string{"Origin": otherOrigin, "Access-Control-Request-Method": "POST"},
			status:  403,
			headers: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": ""}},
		{name: "preflight for a DELETE from the console", method: http.MethodOptions, url: objectURL,
			hdr:     map[string]string{"Origin": consoleOrigin, "Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "authorization"},
			status:  403,
			headers: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": ""}},
		{name: "preflight for a signed listing from another origin", method: http.MethodOptions, url: bucketURL + "?list-type=2",
			hdr:     map[string]string{"Origin": otherOrigin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization,x-amz-date,x-amz-content-sha256"},
			status:  403,
			headers: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "GET from another origin", method: http.MethodGet, url: bucketURL,
			hdr:     map[string]string{"Origin": otherOrigin},
			status:  403,
			headers: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Expose-Headers": ""}},
		{name: "GET from the console reads the refusal", method: http.MethodGet, url: objectURL,
			hdr:     map[string]string{"Origin": consoleOrigin},
			status:  403,
			headers: map[string]string{"Access-Control-Allow-Origin": consoleOrigin, "Access-Control-Expose-Headers": "ETag"}},
		{name: "no Origin", method: http.MethodGet, url: bucketURL,
			status:  403,
			headers: map[string]string{"Access-Control-Allow-Origin": ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			resp, body := send(t, c.method, c.url, nil, "", c.hdr)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			for h, want := range c.headers {
				got := resp.Header.Get(h)
				if want == "" && got != "" || !strings.Contains(got, want) {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
		})
	}

	// gofakes3 answers Access-Control-Allow-Origin "*" itself; that never reaches a page,
	// whether the answer has a body (GET) or headers only (HEAD).
	e.put(t, testKey, testCSV)
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		for origin, want := range map[string]string{otherOrigin: "", consoleOrigin: consoleOrigin} {
			resp, _ := signedResp(t, e, m, "/"+testBucket+"/"+testKey, nil, "", time.Now(), func(r *http.Request) { r.Header.Set("Origin", origin) })
			if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != want {
				t.Errorf("signed %s from %s: status %d, Access-Control-Allow-Origin %q, want %q", m, origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), want)
			}
		}
	}

	// A browser upload from another origin is a simple request: the browser sends it (the
	// policy signature decides whether it is stored) but shows its page nothing.
	post := e.presign(t)
	body, ct := formBody(t, post.Fields, testCSV, true)
	resp, b := send(t, http.MethodPost, post.URL, body, ct, map[string]string{"Origin": otherOrigin})
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Expose-Headers") != "" {
		t.Errorf("POST from another origin: status %d, CORS %q %q: %s", resp.StatusCode,
			resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Expose-Headers"), b)
	}
}

// TestSDKWritesNotify covers the other ways an object is created: PutObject, CopyObject and a
// multipart upload all call OnObjectCreated once, after the object is readable.
func TestSDKWritesNotify(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	cl := e.srv.Client(e.http.URL)
	data := []byte("id,email\n1,a@example.com\n")

	if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("uploads/put.csv"), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(testBucket), Key: aws.String("uploads/copy.csv"), CopySource: aws.String(testBucket + "/uploads/put.csv")}); err != nil {
		t.Fatal(err)
	}
	mpu, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("uploads/multi.csv")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String("uploads/multi.csv"), UploadId: mpu.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(testBucket), Key: aws.String("uploads/multi.csv"), UploadId: mpu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}},
	}); err != nil {
		t.Fatal(err)
	}

	sum := md5hex(data)
	n := int64(len(data))
	want := []created{
		{testBucket, "uploads/put.csv", n, sum},
		{testBucket, "uploads/copy.csv", n, sum},
		{testBucket, "uploads/multi.csv", n, sum},
	}
	if got := e.events.list(); !slices.Equal(got, want) {
		t.Errorf("OnObjectCreated calls:\n got %+v\nwant %+v", got, want)
	}
	for _, w := range want {
		if got, err := e.readObject(t, w.key); err != nil || !bytes.Equal(got, data) {
			t.Errorf("Open(%q) = %q, %v", w.key, got, err)
		}
	}

	// The callback's context lives until Close.
	e.events.mu.Lock()
	cbCtx := e.events.ctxs[0]
	e.events.mu.Unlock()
	if cbCtx.Err() != nil {
		t.Errorf("callback context done before Close: %v", cbCtx.Err())
	}
	e.http.Close()
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if cbCtx.Err() == nil {
		t.Error("callback context not cancelled by Close")
	}
	// (The cleanup's second Close is a no-op.)
}

func TestOpenKeepsDataAndEnsuresBucket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := Config{DataDir: filepath.Join(dir, "nested"), Bucket: testBucket, AccessKey: "k", SecretKey: "s"}
	srv, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	ctx := context.Background()
	if _, err := srv.Client(ts.URL).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("a"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	ts.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened, with a second bucket: the first bucket and its object are still there.
	cfg.Bucket = "second-bucket"
	srv, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts = httptest.NewServer(srv.Handler())
	defer ts.Close()
	if srv.cfg.Region != DefaultRegion {
		t.Errorf("region %q, want %q", srv.cfg.Region, DefaultRegion)
	}
	out, err := srv.Client(ts.URL).ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range out.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"second-bucket", testBucket}) {
		t.Errorf("buckets %v", names)
	}
	if got, err := objs3.New(srv.Client(ts.URL), testBucket).Open(ctx, "a", objects.Pin{}); err != nil {
		t.Errorf("Open after reopen: %v", err)
	} else {
		got.Close()
	}
	if filepath.Base(srv.db.Path()) != FileName {
		t.Errorf("bolt file %s", srv.db.Path())
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	t.Parallel()
	ok := Config{DataDir: t.TempDir(), Bucket: testBucket, AccessKey: "k", SecretKey: "s"}
	cases := []struct {
		name string
		edit func(c *Config)
	}{
		{"no data folder", func(c *Config) { c.DataDir = "" }},
		{"invalid bucket name", func(c *Config) { c.Bucket = "Up_Uploads" }},
		{"no bucket", func(c *Config) { c.Bucket = "" }},
		{"no access key", func(c *Config) { c.AccessKey = "" }},
		{"no secret key", func(c *Config) { c.SecretKey = "" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			c.edit(&cfg)
			if srv, err := Open(cfg); err == nil {
				srv.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}
