package localstack

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/localstack/localstacktest"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

// The CSV upload and the local S3 endpoint, black-box over HTTP as a browser, curl and the
// AWS SDK reach them: the admin API, presigned POSTs, plain S3 requests.

const (
	testOperator  = "upo_localstack_uploads_test"
	consoleOrigin = "http://console.test:5173"
)

type stackEnv struct {
	t     *testing.T
	stack *Stack
	api   string // base URL of the APIs
	s3    string // the S3 endpoint presigned POSTs name
	clock *testclock.Clock
	tn    workspacetest.Tenant
	dir   string // the data folder
}

func newStackEnv(t *testing.T) *stackEnv {
	t.Helper()
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	return openStackEnv(t, c, func(cfg *Config) { cfg.ConsoleOrigins = []string{consoleOrigin} })
}

// openStackEnv opens a local stack on clock (nil: the real clock) with tune's changes to its
// configuration, and serves its APIs and S3 endpoint.
func openStackEnv(t *testing.T, clock *testclock.Clock, tune func(*Config)) *stackEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var ddb DynamoDB // bbolt unless the suite runs on DynamoDB
	ddb.Endpoint, ddb.Table = localstacktest.DynamoDB(t)
	cfg := Config{DataDir: dir, DynamoDB: ddb, OperatorTokenHash: token.Hash(testOperator), S3URL: "http://" + ln.Addr().String(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if clock != nil {
		cfg.Now = clock.Now
	}
	tune(&cfg)
	st, err := Open(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	api := httptest.NewServer(st.Handler)
	s3srv := httptest.NewUnstartedServer(st.S3Handler)
	s3srv.Listener.Close()
	s3srv.Listener = ln
	s3srv.Start()
	t.Cleanup(func() {
		api.Close()
		s3srv.Close()
		st.Close()
	})
	return &stackEnv{t: t, stack: st, api: api.URL, s3: s3srv.URL, clock: clock, tn: workspacetest.New(t, st.Workspaces, testOperator), dir: dir}
}

// call sends an admin API request with the workspace token and decodes the JSON answer.
func (e *stackEnv) call(method, path, body string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.api+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.tn.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Fatalf("%s %s: %d %q", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, out
}

func (e *stackEnv) uploadsPath() string { return "/v1/workspaces/" + e.tn.ID() + "/csv/uploads" }

// request asks for an upload of size bytes.
func (e *stackEnv) request(size int) (id string, form map[string]any) {
	e.t.Helper()
	status, up := e.call("POST", e.uploadsPath(), fmt.Sprintf(`{"filename":"people.csv","size":%d}`, size))
	if status != 201 {
		e.t.Fatalf("request an upload: %d %v", status, up)
	}
	return up["id"].(string), up["upload"].(map[string]any)
}

// post sends file with a presigned form, as a browser does, and returns the status and ETag.
func (e *stackEnv) post(form map[string]any, file string) (int, string) {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range form["fields"].(map[string]any) {
		mw.WriteField(k, v.(string))
	}
	fw, _ := mw.CreateFormFile("file", "people.csv")
	io.WriteString(fw, file)
	mw.Close()
	req, _ := http.NewRequest("POST", form["url"].(string), &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", consoleOrigin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, strings.Trim(resp.Header.Get("ETag"), `"`)
}

// wait polls the upload until done holds (or fails the test after 15 s).
func (e *stackEnv) wait(id string, what string, done func(u map[string]any) bool) map[string]any {
	e.t.Helper()
	var u map[string]any
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var status int
		status, u = e.call("GET", e.uploadsPath()+"/"+id, "")
		if status == 200 && done(u) {
			return u
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("upload %s: still not %s: %v", id, what, u)
		}
	}
}

func finished(u map[string]any) bool {
	s := u["status"]
	return s == "completed" || s == "failed" || s == "expired" || s == "cancelled"
}

func refusedCount(u map[string]any) int {
	list, _ := u["refused_objects"].([]any)
	return len(list)
}

// absent checks that no profile holds user_id uid.
func (e *stackEnv) absent(uid string) {
	e.t.Helper()
	if p, err := e.stack.Profiles.Lookup(context.Background(), e.tn.SpaceID(), identity.Identifier{Type: identity.TypeUserID, Value: uid}); err == nil {
		e.t.Errorf("%s was written: profile %s", uid, p.ID)
	}
}

func (e *stackEnv) present(uid string) {
	e.t.Helper()
	if _, err := e.stack.Profiles.Lookup(context.Background(), e.tn.SpaceID(), identity.Identifier{Type: identity.TypeUserID, Value: uid}); err != nil {
		e.t.Errorf("%s: %v", uid, err)
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Issue 12, item 6: the S3 endpoint answers only requests signed with the stack's
// credentials (and browser POSTs with a valid policy), and CORS only to the console.
func TestLocalS3RequiresSignatures(t *testing.T) {
	t.Parallel()
	e := newStackEnv(t)
	ctx := context.Background()
	const secretFile = "user_id,email\ncust-1,ada@example.com\n"
	id, form := e.request(len(secretFile))
	if status, _ := e.post(form, secretFile); status != 204 {
		t.Fatalf("browser POST: %d", status)
	}
	e.wait(id, "completed", func(u map[string]any) bool { return u["status"] == "completed" })
	key := "uploads/" + e.tn.ID() + "/" + id + ".csv"
	objectURL := e.s3 + "/" + UploadsBucket + "/" + key

	type answer struct {
		status int
		code   string
		acao   string // Access-Control-Allow-Origin
	}
	plain := func(method, url string, hdr map[string]string, body string) answer {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var doc struct{ Code string }
		xml.Unmarshal(b, &doc)
		return answer{resp.StatusCode, doc.Code, resp.Header.Get("Access-Control-Allow-Origin")}
	}
	cases := []struct {
		name string
		do   func() answer
		want answer
	}{
		{name: "unsigned list", want: answer{403, "AccessDenied", ""},
			do: func() answer { return plain("GET", e.s3+"/"+UploadsBucket+"?list-type=2", nil, "") }},
		{name: "unsigned read", want: answer{403, "AccessDenied", ""},
			do: func() answer { return plain("GET", objectURL, nil, "") }},
		{name: "unsigned delete", want: answer{403, "AccessDenied", ""},
			do: func() answer { return plain("DELETE", objectURL, nil, "") }},
		{name: "unsigned read from another page", want: answer{403, "AccessDenied", ""},
			do: func() answer { return plain("GET", objectURL, map[string]string{"Origin": "https://evil.example"}, "") }},
		{name: "preflight from another page", want: answer{403, "AccessForbidden", ""},
			do: func() answer {
				return plain("OPTIONS", objectURL, map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"}, "")
			}},
		{name: "preflight of the upload POST from the console", want: answer{200, "", consoleOrigin},
			do: func() answer {
				return plain("OPTIONS", e.s3+"/"+UploadsBucket, map[string]string{"Origin": consoleOrigin, "Access-Control-Request-Method": "POST"}, "")
			}},
		{name: "unsigned curl", want: answer{403, "AccessDenied", ""},
			do: func() answer {
				if _, err := exec.LookPath("curl"); err != nil {
					t.Skip("SKIP: curl is not installed")
				}
				out, err := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", objectURL).Output()
				if err != nil {
					t.Fatal(err)
				}
				if string(out) == "403" {
					return plain("GET", objectURL, nil, "") // the code, read the same way
				}
				return answer{status: 200}
			}},
		{name: "AWS SDK with a wrong secret", want: answer{403, "SignatureDoesNotMatch", ""},
			do: func() answer {
				cl := s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(s3AccessKey, "guessed-secret", ""),
					BaseEndpoint: aws.String(e.s3), UsePathStyle: true})
				_, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(UploadsBucket), Key: aws.String(key)})
				if err == nil {
					return answer{status: 200}
				}
				code := ""
				if strings.Contains(err.Error(), "SignatureDoesNotMatch") {
					code = "SignatureDoesNotMatch"
				}
				return answer{403, code, ""}
			}},
		{name: "AWS SDK with the stack's credentials", want: answer{200, "", ""},
			do: func() answer {
				out, err := e.stack.s3.Client(e.s3).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(UploadsBucket), Key: aws.String(key)})
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(out.Body)
				out.Body.Close()
				if string(b) != secretFile {
					t.Errorf("read %q", b)
				}
				return answer{status: 200}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.do(); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
	// None of it changed the file.
	out, err := e.stack.s3.Client(e.s3).HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(UploadsBucket), Key: aws.String(key)})
	if err != nil || strings.Trim(aws.ToString(out.ETag), `"`) != md5hex(secretFile) {
		t.Errorf("the file after the refusals: %v", err)
	}
	// The secret is the data folder's own, not one written in the source.
	if b, err := os.ReadFile(filepath.Join(e.dir, "s3-secret-key")); err != nil || len(strings.TrimSpace(string(b))) < 32 {
		t.Errorf("secret key file: %q, %v", b, err)
	}
}

// Issue 12, item 4: every limit the ingest enforces is checked before the first write; a
// file that breaks one on row 3 writes nothing, not even row 2's profile.
func TestUploadAllOrNothing(t *testing.T) {
	t.Parallel()
	wide := func(n int) string {
		var h, r strings.Builder
		h.WriteString("user_id")
		r.WriteString("u2")
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&h, ",c%d", i)
			r.WriteString(",x")
		}
		return h.String() + "\nu1,x" + strings.Repeat(",", n-1) + "\n" + r.String() + "\n"
	}
	cases := []struct {
		name   string
		ids    int // custom identifier keys k1…kn the space reads
		file   string
		inMsg  string
		column string
		row    float64
	}{
		{name: "user_id plus 300 trait columns", file: wide(profile.MaxTraitsPerIdentify),
			row: 3, column: "c300", inMsg: "the limit is 299 traits per row"},
		{name: "97 identifiers in a row", ids: 96, row: 3, inMsg: "the limit is 96 per row",
			file: func() string {
				var h, r strings.Builder
				h.WriteString("user_id")
				r.WriteString("u2")
				for i := 1; i <= 96; i++ {
					fmt.Fprintf(&h, ",k%d", i)
					fmt.Fprintf(&r, ",v%d", i)
				}
				return h.String() + "\nu1,one" + strings.Repeat(",", 95) + "\n" + r.String() + "\n"
			}()},
		{name: "a row over 32 KB", row: 3, column: "note", inMsg: "the limit is 32,768 bytes per row",
			file: "user_id,note\nu1,short\nu2," + strings.Repeat("n", 40<<10) + "\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newStackEnv(t)
			if c.ids > 0 {
				set := identity.DefaultSettings()
				for i := 1; i <= c.ids; i += 10 {
					r := identity.Rule{Type: fmt.Sprintf("custom%d", i), Custom: true, Limit: 1000, Window: identity.WindowEver, Priority: 100 + i}
					for k := i; k < i+10 && k <= c.ids; k++ {
						r.Keys = append(r.Keys, fmt.Sprintf("k%d", k))
					}
					set.Identifiers = append(set.Identifiers, r)
				}
				if _, err := e.stack.Profiles.SaveSettings(context.Background(), e.tn.SpaceID(), set); err != nil {
					t.Fatal(err)
				}
			}
			id, form := e.request(len(c.file))
			if status, _ := e.post(form, c.file); status != 204 {
				t.Fatalf("POST: %d", status)
			}
			u := e.wait(id, "finished", finished)
			errs, _ := u["errors"].([]any)
			if u["status"] != "failed" || len(errs) != 1 {
				t.Fatalf("upload %v", u)
			}
			p := errs[0].(map[string]any)
			if p["row"] != c.row || p["column"] != c.column || !strings.Contains(p["message"].(string), c.inMsg) {
				t.Errorf("problem %v, want row %v column %q and %q", p, c.row, c.column, c.inMsg)
			}
			e.absent("u1")
			e.absent("u2")
		})
	}
}

// Issue 12, item 5: an upload reads the one file it took, pinned; a reused form, a plain
// PUT, a late file and a cancelled upload's file are refused and recorded, never ingested;
// an expired upload frees its slot and never takes another's; answers show no internal
// fields and one deadline, expires_at.
func TestUploadSwapsAndBypasses(t *testing.T) {
	t.Parallel()
	const fileA, fileB = "user_id,plan\nalice,pro\n", "user_id,plan\nmallory,\n" // one size: the form takes both
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, e *stackEnv)
	}{
		{name: "the form posted again after completion", run: func(t *testing.T, e *stackEnv) {
			id, form := e.request(len(fileA))
			e.post(form, fileA)
			e.wait(id, "completed", func(u map[string]any) bool { return u["status"] == "completed" })
			if status, _ := e.post(form, fileB); status != 204 {
				t.Fatalf("second POST: %d", status) // S3 takes it: the form is valid for 15 minutes
			}
			u := e.wait(id, "told of the second file", func(u map[string]any) bool { return refusedCount(u) == 1 })
			if u["status"] != "completed" || u["file"].(map[string]any)["etag"] != md5hex(fileA) ||
				u["refused_objects"].([]any)[0].(map[string]any)["etag"] != md5hex(fileB) {
				t.Errorf("upload %v", u)
			}
			e.present("alice")
			e.absent("mallory")
		}},
		{name: "a plain PUT to a pending upload's key", run: func(t *testing.T, e *stackEnv) {
			id, _ := e.request(len(fileA))
			req, _ := http.NewRequest("PUT", e.s3+"/"+UploadsBucket+"/uploads/"+e.tn.ID()+"/"+id+".csv", strings.NewReader(fileB+strings.Repeat("x,y\n", 100)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 403 {
				t.Errorf("unsigned PUT: %d", resp.StatusCode)
			}
			time.Sleep(200 * time.Millisecond) // an ingest, had it started, would be under way
			if _, u := e.call("GET", e.uploadsPath()+"/"+id, ""); u["status"] != "pending" {
				t.Errorf("upload %v", u)
			}
			e.absent("mallory")
		}},
		{name: "a signed PUT larger than declared", run: func(t *testing.T, e *stackEnv) {
			id, _ := e.request(len(fileA))
			big := fileB + strings.Repeat("x,y\n", 100)
			if _, err := e.stack.s3.Client(e.s3).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(UploadsBucket),
				Key: aws.String("uploads/" + e.tn.ID() + "/" + id + ".csv"), Body: strings.NewReader(big)}); err != nil {
				t.Fatal(err)
			}
			u := e.wait(id, "finished", finished)
			if u["status"] != "failed" || refusedCount(u) != 1 {
				t.Errorf("upload %v", u)
			}
			e.absent("mallory")
		}},
		{name: "a file after the form expired", run: func(t *testing.T, e *stackEnv) {
			id, form := e.request(len(fileA))
			e.clock.Add(16 * time.Minute)
			e.post(form, fileA) // the endpoint's own clock still accepts the form
			// Reading it may expire it before the file's event does: either way the file ends refused.
			u := e.wait(id, "told of the late file", func(u map[string]any) bool { return refusedCount(u) == 1 })
			if u["status"] != "expired" || refusedCount(u) != 1 {
				t.Errorf("upload %v", u)
			}
			e.absent("alice")
			if status, _ := e.call("POST", e.uploadsPath(), `{"filename":"b.csv","size":10}`); status != 201 {
				t.Errorf("a new upload after the expiry: %d", status)
			}
		}},
		{name: "an expired upload's file while another holds the slot", run: func(t *testing.T, e *stackEnv) {
			first, form := e.request(len(fileA))
			e.clock.Add(16 * time.Minute)
			second, _ := e.request(10) // the first expired: its slot is the second's now
			if _, u := e.call("GET", e.uploadsPath()+"/"+first, ""); u["status"] != "expired" {
				t.Errorf("first upload %v", u)
			}
			e.post(form, fileA)
			e.wait(first, "told of the late file", func(u map[string]any) bool { return refusedCount(u) == 1 })
			e.absent("alice")
			status, out := e.call("POST", e.uploadsPath(), `{"filename":"c.csv","size":10}`)
			if msg, _ := out["error"].(map[string]any); status != 409 || !strings.Contains(fmt.Sprint(msg["message"]), second) {
				t.Errorf("a third upload while the second is pending: %d %v", status, out)
			}
		}},
		{name: "cancel a pending upload", run: func(t *testing.T, e *stackEnv) {
			id, form := e.request(len(fileA))
			status, u := e.call("DELETE", e.uploadsPath()+"/"+id, "")
			if status != 200 || u["status"] != "cancelled" {
				t.Fatalf("cancel: %d %v", status, u)
			}
			if status, _ := e.call("POST", e.uploadsPath(), `{"filename":"b.csv","size":10}`); status != 201 {
				t.Errorf("a new upload after the cancel: %d", status)
			}
			e.post(form, fileA)
			u = e.wait(id, "told of the late file", func(u map[string]any) bool { return refusedCount(u) == 1 })
			if u["status"] != "cancelled" {
				t.Errorf("upload %v", u)
			}
			e.absent("alice")
			if status, out := e.call("DELETE", e.uploadsPath()+"/"+id, ""); status != 409 {
				t.Errorf("cancel again: %d %v", status, out)
			}
		}},
		{name: "answers", run: func(t *testing.T, e *stackEnv) {
			id, form := e.request(len(fileA))
			_, pending := e.call("GET", e.uploadsPath()+"/"+id, "")
			e.post(form, fileA)
			done := e.wait(id, "completed", func(u map[string]any) bool { return u["status"] == "completed" })
			_, list := e.call("GET", e.uploadsPath(), "")
			for _, u := range []map[string]any{pending, done, list["uploads"].([]any)[0].(map[string]any)} {
				for _, internal := range []string{"lease_until", "deliveries", "delivery", "deadline"} {
					if _, ok := u[internal]; ok {
						t.Errorf("answer shows %s: %v", internal, u)
					}
				}
				if _, err := time.Parse(time.RFC3339, fmt.Sprint(u["expires_at"])); err != nil {
					t.Errorf("answer without expires_at: %v", u)
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newStackEnv(t))
		})
	}
}
