package sdktest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/httpapi"
	"github.com/unifiedprofiles/up/shared/localstack"
	"github.com/unifiedprofiles/up/shared/localstack/localstacktest"
	"github.com/unifiedprofiles/up/shared/testlog"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

// env is one local stack served over HTTP, with a workspace, a server source whose write key
// the SDKs use, and a space access token for the Profile API. Each test gets its own, so the
// SDKs' tests run in parallel without seeing each other's messages.
type env struct {
	URL         string // the stack's base URL: the SDKs' host / endpoint
	WorkspaceID string
	SpaceID     string
	SourceID    string
	WriteKey    string
	wsToken     string // workspace token: the debugger
	accessToken string // space access token: the Profile API

	batches atomic.Int64 // POST /v1/batch requests that reached the stack
	gzipped atomic.Int64 // of those, sent with Content-Encoding: gzip
	lost    atomic.Int64 // of those, answered by closing the connection (loseFirstBatch)
}

type envOptions struct {
	// loseFirstBatch makes the first POST /v1/batch lose its response: the messages are
	// committed, then the connection is closed without an answer, as when a network drops
	// the response. SDKs see a network error and retry the same batch.
	loseFirstBatch bool
	// sourceType is the type of the source whose write key the SDKs use ("http" when empty).
	sourceType string
	// dataSource, when set, is chosen in step 1 of the guided setup before the source is made.
	dataSource string
}

func newEnv(t *testing.T, opts envOptions) *env {
	t.Helper()
	e := &env{}
	logs := &testlog.Buffer{}
	// Registered first, so it runs last: after the server and the store are closed.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("local stack log:\n%s", logs.String())
		}
	})

	operator := token.New(token.OperatorPrefix)
	cfg := localstack.Config{
		DataDir:           t.TempDir(),
		DynamoDB:          dynamoDB(t),
		OperatorTokenHash: token.Hash(operator),
		Logger:            slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if opts.loseFirstBatch {
		var done atomic.Bool
		cfg.Tracking = httpapi.TrackingOptions{AfterCommit: func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/v1/batch" || !done.CompareAndSwap(false, true) {
				return false
			}
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("lose the first batch's response: hijack: %v", err)
				return false
			}
			conn.Close()
			e.lost.Add(1)
			return true
		}}
	}
	stack, err := localstack.Open(cfg)
	if err != nil {
		t.Fatalf("open the local stack: %v", err)
	}
	t.Cleanup(func() { stack.Close() })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/batch" {
			e.batches.Add(1)
			if r.Header.Get("Content-Encoding") == "gzip" {
				e.gzipped.Add(1)
			}
		}
		stack.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.URL = srv.URL

	tn := workspacetest.New(t, stack.Workspaces, operator)
	if opts.dataSource != "" {
		if _, err := stack.Workspaces.ChooseDataSource(t.Context(), tn.Owner, tn.ID(), opts.dataSource); err != nil {
			t.Fatalf("choose the data source %s: %v", opts.dataSource, err)
		}
	}
	typ := opts.sourceType
	if typ == "" {
		typ = "http"
	}
	src := tn.Source(t, typ)
	e.WorkspaceID, e.SpaceID, e.wsToken = tn.ID(), tn.SpaceID(), tn.Token
	e.SourceID, e.WriteKey = src.ID, src.WriteKey
	e.accessToken = tn.AccessToken(t)
	return e
}

// dynamoDB is the table of one stack when the suite runs on DynamoDB (see localstacktest),
// else nothing: bbolt. Its cleanup, deleting the table, runs after the stack's.
func dynamoDB(t *testing.T) localstack.DynamoDB {
	t.Helper()
	endpoint, table := localstacktest.DynamoDB(t)
	return localstack.DynamoDB{Endpoint: endpoint, Table: table}
}

// get GETs path on the stack with auth and decodes a 200 answer's JSON into out. It returns
// the status and body; any other status is the caller's to judge (out is left alone).
func (e *env) get(t *testing.T, path string, auth func(*http.Request), out any) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	auth(req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(res.Body); err != nil {
		t.Fatalf("GET %s: read the answer: %v", path, err)
	}
	if res.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(body.Bytes(), out); err != nil {
			t.Fatalf("GET %s: decode the answer: %v\n%s", path, err, body.Bytes())
		}
	}
	return res.StatusCode, body.Bytes()
}

// mustGet is get that fails the test on any answer but 200.
func (e *env) mustGet(t *testing.T, path string, auth func(*http.Request), out any) []byte {
	t.Helper()
	status, body := e.get(t, path, auth, out)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200; body:\n%s", path, status, body)
	}
	return body
}

func (e *env) profileAuth(r *http.Request)   { r.SetBasicAuth(e.accessToken, "") }
func (e *env) workspaceAuth(r *http.Request) { r.Header.Set("Authorization", "Bearer "+e.wsToken) }

// profile GETs a Profile API resource of the profile identified by "type:value".
func (e *env) profile(t *testing.T, identifier, resource, query string, out any) []byte {
	t.Helper()
	path := fmt.Sprintf("/v1/spaces/%s/collections/users/profiles/%s/%s", e.SpaceID, url.PathEscape(identifier), resource)
	if query != "" {
		path += "?" + query
	}
	return e.mustGet(t, path, e.profileAuth, out)
}

// debugEntry is one entry of a source's debugger (shared/tracking.Entry, as the API shows it).
type debugEntry struct {
	ReceivedAt time.Time       `json:"received_at"`
	Status     string          `json:"status"`
	Raw        json.RawMessage `json:"raw"`
	Normalised *struct {
		Type       string `json:"type"`
		MessageID  string `json:"message_id"`
		UserID     string `json:"user_id"`
		GroupID    string `json:"group_id"`
		PreviousID string `json:"previous_id"`
		Event      string `json:"event"`
		Name       string `json:"name"`
	} `json:"normalised"`
	Outcome *struct {
		ProfileID string `json:"profile_id"`
	} `json:"outcome"`
	Rejection *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"rejection"`
}

func (d debugEntry) String() string {
	b, _ := json.Marshal(d)
	return string(b)
}

// debugger returns the source's debugger entries, newest first, and the answer's body.
func (e *env) debugger(t *testing.T) ([]debugEntry, []byte) {
	t.Helper()
	var out struct {
		Entries []debugEntry `json:"entries"`
	}
	body := e.mustGet(t, fmt.Sprintf("/v1/workspaces/%s/sources/%s/debugger?limit=500", e.WorkspaceID, e.SourceID), e.workspaceAuth, &out)
	return out.Entries, body
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// post POSTs body to path on the stack with auth and returns the 200 answer's JSON object;
// any other status fails the test.
func (e *env) post(t *testing.T, path string, auth func(*http.Request), body string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	auth(req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if res.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil {
		t.Fatalf("POST %s: status %d, want 200 with a JSON object; body:\n%s", path, res.StatusCode, raw)
	}
	return out
}

// setupStep returns the status of a guided-setup step of the workspace.
func (e *env) setupStep(t *testing.T, step string) string {
	t.Helper()
	var ws struct {
		Setup struct {
			Steps map[string]struct{ Status string } `json:"steps"`
		} `json:"setup"`
	}
	e.mustGet(t, "/v1/workspaces/"+e.WorkspaceID, e.workspaceAuth, &ws)
	return ws.Setup.Steps[step].Status
}
