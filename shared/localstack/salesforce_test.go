package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/localstack/localstacktest"
	sfrest "github.com/unifiedprofiles/up/shared/salesforce/rest"
	"github.com/unifiedprofiles/up/shared/salesforce/sfake"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// Connecting a Salesforce source over HTTP on the local stack, with the fake Salesforce as the
// login host through UP_SALESFORCE_LOGIN_URL (and the connected app through its two
// variables), as `make run` reads them: PUT, the browser's trip through the authorize URL, the
// callback, and the source's status. (Not parallel: it sets the environment.)
func TestSalesforceConnectOnLocalStack(t *testing.T) {
	fake := sfake.New(t, sfake.Options{})
	t.Setenv(sfrest.EnvLoginURL, fake.LoginURL())
	t.Setenv(sfrest.EnvClientID, fake.ClientID())
	t.Setenv(sfrest.EnvClientSecret, fake.ClientSecret())
	logs := &lockedBuffer{}
	clock := testclock.New(time.Now().UTC().Truncate(time.Second))
	var ddb DynamoDB
	ddb.Endpoint, ddb.Table = localstacktest.DynamoDB(t)
	st, err := Open(Config{DataDir: t.TempDir(), DynamoDB: ddb, OperatorTokenHash: token.Hash(testOperator), Now: clock.Now,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(st.Handler)
	t.Cleanup(func() { api.Close(); st.Close() })
	tn := workspacetest.New(t, st.Workspaces, testOperator)
	sfSrc, whSrc := tn.Source(t, "salesforce").ID, tn.Source(t, "postgres").ID

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	call := func(method, url, body, accept string, auth bool) (int, http.Header, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		if auth {
			req.Header.Set("Authorization", "Bearer "+tn.Token)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		json.Unmarshal(b, &out)
		return resp.StatusCode, resp.Header, out
	}
	path := api.URL + "/v1/workspaces/" + tn.ID() + "/sources/" + sfSrc + "/salesforce"

	status, _, out := call("PUT", path, `{"environment":"sandbox","objects":["Contact"],"warehouse_source_id":"`+whSrc+`"}`, "", true)
	if status != 200 {
		t.Fatalf("PUT: %d %v", status, out)
	}
	// The browser goes to Salesforce, which sends it back to the callback.
	status, h, _ := call("GET", out["authorize_url"].(string), "", "text/html", false)
	if status != 302 || !strings.HasPrefix(h.Get("Location"), api.URL+"/v1/salesforce/callback?") {
		t.Fatalf("authorize: %d %s", status, h.Get("Location"))
	}
	callback := h.Get("Location")
	status, _, out = call("GET", callback, "", "application/json", false)
	if status != 200 || out["connected"] != true || out["source_id"] != sfSrc {
		t.Fatalf("callback: %d %v", status, out)
	}
	status, _, out = call("GET", path, "", "", true)
	if status != 200 || out["status"] != "connected" || out["username"] != fake.Username() || out["instance_url"] != fake.InstanceURL() ||
		out["environment"] != "sandbox" || out["next_sync_at"] == nil {
		t.Fatalf("GET: %d %v", status, out)
	}
	// The first sync is due now, for the dispatcher (unless the stack's ticker already ran
	// it: it fails here, the warehouse source having no connection).
	due, err := st.Salesforce.Due(context.Background(), clock.Now(), 0)
	if runs, _ := st.SalesforceSyncs.ListSyncs(context.Background(), tn.Owner, tn.ID(), sfSrc); err != nil || (len(due) != 1 || due[0].SourceID != sfSrc) && len(runs) == 0 {
		t.Fatalf("due: %v %v", due, err)
	}
	// The callback again: the state was used.
	if status, _, out = call("GET", callback, "", "", false); status != 400 {
		t.Fatalf("replay: %d %v", status, out)
	}
	creds, err := st.Salesforce.Credentials(context.Background(), tn.ID(), sfSrc)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), creds.RefreshToken.Reveal()) {
		t.Fatal("the refresh token was logged")
	}
}
