package s3sink_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/unifiedprofiles/up/shared/delivery"
	"github.com/unifiedprofiles/up/shared/delivery/s3sink"
	"github.com/unifiedprofiles/up/shared/locals3"
)

const (
	bucket    = "up-exports"
	region    = "eu-west-1"
	accessKey = "LOCALKEY"
	secretKey = "local-secret-do-not-show"
)

// server is a locals3 endpoint (gofakes3 checking SigV4 signatures) served in-process; wrap,
// when not nil, sees every request first.
type server struct {
	url    string
	client *s3.Client
}

func newServer(t *testing.T, wrap func(http.Handler) http.Handler) *server {
	t.Helper()
	srv, err := locals3.Open(locals3.Config{DataDir: t.TempDir(), Bucket: bucket, Region: region,
		AccessKey: accessKey, SecretKey: secretKey})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return &server{url: ts.URL, client: srv.Client(ts.URL)}
}

func (s *server) settings(kv ...string) map[string]any {
	m := map[string]any{"bucket": bucket, "region": region, "endpoint": s.url,
		"access_key_id": accessKey, "secret_access_key": secretKey}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// objects lists every key in the bucket with its body gunzipped.
func (s *server) objects(t *testing.T) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	list, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		get, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(get.Body)
		get.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if ct := aws.ToString(get.ContentType); ct != "application/gzip" {
			t.Errorf("%s: Content-Type %q, want application/gzip", *o.Key, ct)
		}
		if ce := aws.ToString(get.ContentEncoding); ce != "" {
			t.Errorf("%s: Content-Encoding %q, want none", *o.Key, ce)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: not gzip: %v", *o.Key, err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: gunzip: %v", *o.Key, err)
		}
		out[*o.Key] = plain
	}
	return out
}

func job(src, id string, at time.Time, payload string) delivery.Job {
	return delivery.Job{WorkspaceID: "ws_1", DestinationID: "dst_1", SourceID: src, MessageID: id,
		Type: "track", Payload: json.RawMessage(payload), AcceptedAt: at}
}

// objectID is the expected id, computed here independently of the package.
func objectID(ids ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n") + "\n"))
	return hex.EncodeToString(sum[:16])
}

func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestSendGroupsBySourceAndHour(t *testing.T) {
	t.Parallel()
	h10 := time.Date(2026, 3, 14, 10, 5, 0, 0, time.UTC)
	// 12:59 in UTC+2 is 10:59 UTC: the same hour part as h10.
	h10b := time.Date(2026, 3, 14, 12, 59, 59, 0, time.FixedZone("CEST", 2*3600))
	h11 := time.Date(2026, 3, 14, 11, 0, 0, 0, time.UTC)
	payloads := map[string]string{
		"m1": `{"messageId":"m1", "type":"track",
			"event":"Signed Up", "properties": {"plan": "pro"}}`,
		"m2": `{"messageId":"m2","type":"identify","traits":{"email":"a@example.com"}}`,
		"m3": `{ "messageId" : "m3" , "type" : "page" }`,
		"m4": `{"messageId":"m4","type":"track","event":"Line\nBreak in a string"}`,
		"m5": `{"messageId":"m5","type":"track"}`,
	}
	jobs := []delivery.Job{
		job("src_a", "m1", h10, payloads["m1"]),
		job("src_b", "m2", h10, payloads["m2"]),
		job("src_a", "m3", h11, payloads["m3"]),
		job("src_a", "m4", h10b, payloads["m4"]),
		job("src_b", "m5", h11, payloads["m5"]),
	}
	want := map[string][]string{ // key → message ids in order
		"exports/daily/src_a/2026/03/14/10/" + objectID("m1", "m4") + ".jsonl.gz": {"m1", "m4"},
		"exports/daily/src_b/2026/03/14/10/" + objectID("m2") + ".jsonl.gz":       {"m2"},
		"exports/daily/src_a/2026/03/14/11/" + objectID("m3") + ".jsonl.gz":       {"m3"},
		"exports/daily/src_b/2026/03/14/11/" + objectID("m5") + ".jsonl.gz":       {"m5"},
	}
	srv := newServer(t, nil)
	sender := s3sink.New(s3sink.Options{})
	tgt := delivery.Target{Settings: srv.settings("prefix", "/exports/daily/")}

	for attempt := 1; attempt <= 2; attempt++ { // the same batch again overwrites, adds nothing
		if err := sender.Send(context.Background(), tgt, jobs); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		got := srv.objects(t)
		if len(got) != len(want) {
			t.Fatalf("attempt %d: %d objects %v, want %d", attempt, len(got), slices.Sorted(keys(got)), len(want))
		}
		for key, ids := range want {
			body, ok := got[key]
			if !ok {
				t.Fatalf("attempt %d: no object %s; have %v", attempt, key, slices.Sorted(keys(got)))
			}
			var wantBody strings.Builder
			for _, id := range ids {
				wantBody.WriteString(compact(t, payloads[id]) + "\n")
			}
			if string(body) != wantBody.String() {
				t.Errorf("%s:\n%s\nwant\n%s", key, body, wantBody.String())
			}
			// Each line decodes to exactly its payload.
			lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
			for i, line := range lines {
				var gotV, wantV any
				if err := json.Unmarshal([]byte(line), &gotV); err != nil {
					t.Fatalf("%s line %d: %v", key, i, err)
				}
				json.Unmarshal([]byte(payloads[ids[i]]), &wantV)
				if g, w := mustJSON(gotV), mustJSON(wantV); g != w {
					t.Errorf("%s line %d = %s, want %s", key, i, g, w)
				}
			}
		}
	}
}

func keys[M ~map[string]V, V any](m M) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSendNoPrefix(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil)
	at := time.Date(2025, 12, 31, 23, 30, 0, 0, time.UTC)
	err := s3sink.New(s3sink.Options{}).Send(context.Background(), delivery.Target{Settings: srv.settings()},
		[]delivery.Job{job("src_a", "m1", at, `{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	got := srv.objects(t)
	key := "src_a/2025/12/31/23/" + objectID("m1") + ".jsonl.gz"
	if _, ok := got[key]; !ok || len(got) != 1 {
		t.Errorf("objects %v, want only %s", slices.Sorted(keys(got)), key)
	}
}

func TestSendErrors(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	jobs := []delivery.Job{job("src_a", "m1", at, `{"a":1}`), job("src_a", "m2", at, `{"a":2}`)}
	tests := []struct {
		name      string
		settings  map[string]any
		jobs      []delivery.Job
		permanent bool
		mention   string // the error names it, when not empty
	}{
		{name: "no bucket setting", settings: srv.without("bucket"), permanent: true, mention: `"bucket"`},
		{name: "bucket not a string", settings: srv.settings2("bucket", 12.0), permanent: true},
		{name: "bucket does not exist", settings: srv.settings("bucket", "no-such-bucket"), permanent: true},
		{name: "unknown access key", settings: srv.settings("access_key_id", "OTHERKEY"), permanent: true},
		{name: "wrong secret", settings: srv.settings("secret_access_key", "wrong-secret"), permanent: true},
		// Keys missing: refused, never signed with the deployment's own credentials.
		{name: "no keys", settings: srv.without("access_key_id", "secret_access_key"), permanent: true, mention: `"access_key_id"`},
		{name: "empty keys", settings: srv.settings("access_key_id", "", "secret_access_key", " "), permanent: true, mention: `"access_key_id"`},
		{name: "key id without secret", settings: srv.without("secret_access_key"), permanent: true, mention: `"secret_access_key"`},
		{name: "key id with an empty secret", settings: srv.settings("secret_access_key", ""), permanent: true, mention: `"secret_access_key"`},
		{name: "secret without key id", settings: srv.without("access_key_id"), permanent: true, mention: `"access_key_id"`},
		{name: "key id not a string", settings: srv.settings2("access_key_id", 12.0), permanent: true, mention: `"access_key_id"`},
		{name: "endpoint not a URL", settings: srv.settings("endpoint", "not a url"), permanent: true},
		{name: "endpoint link-local", settings: srv.settings("endpoint", "http://169.254.169.254"), permanent: true},
		{name: "invalid JSON payload", settings: srv.settings(),
			jobs: []delivery.Job{job("src_a", "m1", at, `{"a":`)}, permanent: true},
		{name: "source id with a slash", settings: srv.settings(),
			jobs: []delivery.Job{job("src/a", "m1", at, `{}`)}, permanent: true},
	}
	sender := s3sink.New(s3sink.Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			js := tc.jobs
			if js == nil {
				js = jobs
			}
			err := sender.Send(context.Background(), delivery.Target{Settings: tc.settings}, js)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			if delivery.IsPermanent(err) != tc.permanent {
				t.Errorf("err = %v, permanent %v, want %v", err, delivery.IsPermanent(err), tc.permanent)
			}
			if tc.mention != "" && !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("err = %v, want it to name %s", err, tc.mention)
			}
			if strings.Contains(err.Error(), secretKey) || strings.Contains(err.Error(), "wrong-secret") {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
	if got := srv.objects(t); len(got) != 0 {
		t.Errorf("failed sends wrote %v", slices.Sorted(keys(got)))
	}
}

// settings2 is settings with one non-string value.
func (s *server) settings2(k string, v any) map[string]any {
	m := s.settings()
	m[k] = v
	return m
}

// without is settings without the keys named.
func (s *server) without(keys ...string) map[string]any {
	m := s.settings()
	for _, k := range keys {
		delete(m, k)
	}
	return m
}

// TestSendNeverUsesTheDeploymentCredentials: a target without both keys is refused before
// any request, even when the environment holds keys the endpoint would accept (the SDK's
// default credential chain would find them). Not parallel: it sets the environment.
func TestSendNeverUsesTheDeploymentCredentials(t *testing.T) {
	var requests atomic.Int64
	srv := newServer(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			next.ServeHTTP(w, r)
		})
	})
	nowhere := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", nowhere)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", nowhere)
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")

	sender := s3sink.New(s3sink.Options{})
	jobs := []delivery.Job{job("src_a", "m1", time.Now(), `{}`)}
	for _, tc := range []struct {
		name    string
		drop    []string
		mention string
	}{
		{"no keys", []string{"access_key_id", "secret_access_key"}, `"access_key_id"`},
		{"no secret", []string{"secret_access_key"}, `"secret_access_key"`},
		{"no key id", []string{"access_key_id"}, `"access_key_id"`},
	} {
		err := sender.Send(context.Background(), delivery.Target{Settings: srv.without(tc.drop...)}, jobs)
		if !delivery.IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent", tc.name, err)
		} else if !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: err = %v, want it to name %s", tc.name, err, tc.mention)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached the endpoint for targets without keys", n)
	}
	// The same sender still writes for a target with its keys.
	if err := sender.Send(context.Background(), delivery.Target{Settings: srv.settings()}, jobs); err != nil {
		t.Fatalf("with keys: %v", err)
	}
	if got := srv.objects(t); len(got) != 1 {
		t.Errorf("objects %v, want the one written with the target's keys", slices.Sorted(keys(got)))
	}
}

// TestSendCorrectedSecret: a destination whose secret was wrong works once it is corrected,
// under the same access key id (the client cache must not keep the old secret).
func TestSendCorrectedSecret(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil)
	sender := s3sink.New(s3sink.Options{})
	jobs := []delivery.Job{job("src_a", "m1", time.Now(), `{}`)}
	if err := sender.Send(context.Background(), delivery.Target{Settings: srv.settings("secret_access_key", "typo")}, jobs); !delivery.IsPermanent(err) {
		t.Fatalf("wrong secret: err = %v, want permanent", err)
	}
	if err := sender.Send(context.Background(), delivery.Target{Settings: srv.settings()}, jobs); err != nil {
		t.Fatalf("corrected secret: %v", err)
	}
}

// failPuts answers PUTs whose key holds a source segment with an S3 error, as S3 would.
func failPuts(bySource map[string]struct {
	status int
	code   string
}) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for src, e := range bySource {
				if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/"+src+"/") {
					io.Copy(io.Discard, r.Body)
					w.Header().Set("Content-Type", "application/xml")
					w.WriteHeader(e.status)
					io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+e.code+`</Code><Message>refused by the test</Message></Error>`)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestSendPartialFailure(t *testing.T) {
	t.Parallel()
	srv := newServer(t, failPuts(map[string]struct {
		status int
		code   string
	}{
		"src_busy":   {http.StatusConflict, "OperationAborted"},
		"src_denied": {http.StatusForbidden, "AccessDenied"},
	}))
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	jobs := []delivery.Job{
		job("src_ok", "m1", at, `{"n":1}`),
		job("src_busy", "m2", at, `{"n":2}`),
		job("src_denied", "m3", at, `{"n":3}`),
		job("src_ok", "m4", at.Add(time.Hour), `{"n":4}`),
		job("src_busy", "m5", at, `{"n":5}`),
	}
	err := s3sink.New(s3sink.Options{}).Send(context.Background(), delivery.Target{Settings: srv.settings()}, jobs)
	var je *delivery.JobErrors
	if !errors.As(err, &je) {
		t.Fatalf("err = %v, want *delivery.JobErrors", err)
	}
	t.Log(err)
	if len(je.Errs) != len(jobs) {
		t.Fatalf("%d errors for %d jobs", len(je.Errs), len(jobs))
	}
	const (
		ok = iota
		retry
		permanent
	)
	want := []int{ok, retry, permanent, ok, retry}
	for i, w := range want {
		e := je.Errs[i]
		switch {
		case w == ok && e != nil:
			t.Errorf("job %d: %v, want delivered", i, e)
		case w == retry && (e == nil || delivery.IsPermanent(e)):
			t.Errorf("job %d: %v, want retryable", i, e)
		case w == permanent && !delivery.IsPermanent(e):
			t.Errorf("job %d: %v, want permanent", i, e)
		}
	}
	if got := srv.objects(t); len(got) != 2 {
		t.Errorf("objects %v, want the 2 of src_ok", slices.Sorted(keys(got)))
	}
}

// TestSendOneGroupFails: when the batch's only group fails, the error is the batch's.
func TestSendOneGroupFails(t *testing.T) {
	t.Parallel()
	srv := newServer(t, failPuts(map[string]struct {
		status int
		code   string
	}{"src_busy": {http.StatusConflict, "OperationAborted"}}))
	jobs := []delivery.Job{job("src_busy", "m1", time.Now(), `{}`), job("src_busy", "m2", time.Now(), `{}`)}
	err := s3sink.New(s3sink.Options{}).Send(context.Background(), delivery.Target{Settings: srv.settings()}, jobs)
	var je *delivery.JobErrors
	if err == nil || errors.As(err, &je) || delivery.IsPermanent(err) {
		t.Fatalf("err = %v, want one retryable error for the batch", err)
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	g := s3sink.GroupOf{SourceID: "src_1", Hour: time.Date(2026, 7, 4, 9, 0, 0, 0, time.UTC)}
	tests := []struct{ prefix, want string }{
		{"", "src_1/2026/07/04/09/id.jsonl.gz"},
		{"exports", "exports/src_1/2026/07/04/09/id.jsonl.gz"},
		{"exports/", "exports/src_1/2026/07/04/09/id.jsonl.gz"},
		{"/exports", "exports/src_1/2026/07/04/09/id.jsonl.gz"},
		{"a//b/", "a/b/src_1/2026/07/04/09/id.jsonl.gz"},
		{"/", "src_1/2026/07/04/09/id.jsonl.gz"},
	}
	for _, tc := range tests {
		if got := s3sink.Key(tc.prefix, g, "id"); got != tc.want {
			t.Errorf("Key(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

func TestObjectID(t *testing.T) {
	t.Parallel()
	at := time.Now()
	js := func(ids ...string) []delivery.Job {
		var out []delivery.Job
		for _, id := range ids {
			out = append(out, job("s", id, at, `{}`))
		}
		return out
	}
	all := func(n int) []int {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	a := s3sink.ObjectID(js("m1", "m2"), all(2))
	tests := []struct {
		name string
		ids  []string
		same bool
	}{
		{"same ids", []string{"m1", "m2"}, true},
		{"other order", []string{"m2", "m1"}, false},
		{"run together", []string{"m1m2"}, false},
		{"split differently", []string{"m", "1m2"}, false},
		{"one more", []string{"m1", "m2", "m3"}, false},
	}
	for _, tc := range tests {
		b := s3sink.ObjectID(js(tc.ids...), all(len(tc.ids)))
		if (a == b) != tc.same {
			t.Errorf("%s: %s vs %s, same = %v", tc.name, a, b, a == b)
		}
	}
	if a != objectID("m1", "m2") || len(a) != 32 {
		t.Errorf("ObjectID = %s, want %s", a, objectID("m1", "m2"))
	}
	// Only the indexed jobs count.
	if got := s3sink.ObjectID(js("x", "m1", "y", "m2"), []int{1, 3}); got != a {
		t.Errorf("ObjectID over indexes = %s, want %s", got, a)
	}
}

func TestGroup(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		jobs []delivery.Job
		want [][]int
	}{
		{"empty", nil, nil},
		{"one", []delivery.Job{job("a", "1", t0, `{}`)}, [][]int{{0}}},
		{"same hour edges", []delivery.Job{job("a", "1", t0, `{}`), job("a", "2", t0.Add(59*time.Minute+59*time.Second), `{}`)}, [][]int{{0, 1}}},
		{"next hour", []delivery.Job{job("a", "1", t0, `{}`), job("a", "2", t0.Add(time.Hour), `{}`)}, [][]int{{0}, {1}}},
		{"two sources interleaved", []delivery.Job{job("a", "1", t0, `{}`), job("b", "2", t0, `{}`), job("a", "3", t0, `{}`)}, [][]int{{0, 2}, {1}}},
		{"zone does not matter", []delivery.Job{job("a", "1", t0, `{}`), job("a", "2", t0.In(time.FixedZone("X", -5*3600)), `{}`)}, [][]int{{0, 1}}},
	}
	for _, tc := range tests {
		got := s3sink.Group(tc.jobs)
		var idx [][]int
		for _, g := range got {
			idx = append(idx, g.Index)
			if g.Hour.Location() != time.UTC || !g.Hour.Equal(g.Hour.Truncate(time.Hour)) {
				t.Errorf("%s: group hour %v is not a UTC hour", tc.name, g.Hour)
			}
		}
		if mustJSON(idx) != mustJSON(tc.want) {
			t.Errorf("%s: groups %v, want %v", tc.name, idx, tc.want)
		}
	}
}

func TestBodyIsDeterministic(t *testing.T) {
	t.Parallel()
	jobs := []delivery.Job{job("a", "1", time.Now(), `{"a": 1}`), job("a", "2", time.Now(), ` [1, 2] `)}
	b1, err := s3sink.Body(jobs, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := s3sink.Body(jobs, []int{0, 1})
	if !bytes.Equal(b1, b2) {
		t.Error("the same jobs gave different bytes")
	}
	zr, _ := gzip.NewReader(bytes.NewReader(b1))
	plain, _ := io.ReadAll(zr)
	if string(plain) != "{\"a\":1}\n[1,2]\n" {
		t.Errorf("body %q", plain)
	}
}
