package sdktest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mobileFixtures are the request bodies of analytics-swift, analytics-kotlin and
// analytics-java, built from those SDKs' sources (shared/tracking/testdata/MOBILE_FIXTURES.md),
// with the path, headers and encoding each SDK uses.
var mobileFixtures = []struct {
	sourceType, file, path string
	headers                map[string]string
	gzip, basicAuth        bool
	screens                int
}{
	{"swift", "analytics-swift-1.10.0-batch.json", "/v1/b",
		map[string]string{"Content-Type": "application/json; charset=utf-8", "User-Agent": "analytics-ios/1.9.4", "Accept-Encoding": "gzip"}, false, false, 2},
	{"kotlin", "analytics-kotlin-1.25.0-batch.json", "/v1/b",
		map[string]string{"Content-Type": "text/plain", "User-Agent": "analytics-kotlin/1.24.1", "Accept-Encoding": "gzip"}, true, false, 2},
	{"java", "analytics-java-3.5.5-batch.json", "/v1/import/",
		map[string]string{"Content-Type": "application/json; charset=UTF-8", "User-Agent": "analytics-java/3.5.5"}, false, true, 1},
}

// fixtureTime is the second every fixture's timestamps start with; the test moves them to now,
// so that the events stay inside the stored window whatever the day the test runs.
const fixtureTime = "2026-11-29T13:13:47"

// Each SDK's batch, sent to its real path with its own headers (gzip and text/plain for
// Kotlin, Basic auth and the trailing slash for Java, the key in the body only for Swift), is
// accepted whole, lands in the debugger and on the profile, and passes the source's
// connection test: a mobile source only once a screen has arrived.
func TestMobileAndJavaSDKBodiesAtTheirPaths(t *testing.T) {
	t.Parallel()
	for _, fx := range mobileFixtures {
		t.Run(fx.sourceType, func(t *testing.T) {
			t.Parallel()
			mobile := fx.sourceType != "java"
			ds := ""
			if mobile {
				ds = "mobile"
			}
			e := newEnv(t, envOptions{sourceType: fx.sourceType, dataSource: ds})
			testConn := fmt.Sprintf("/v1/workspaces/%s/sources/%s/test-connection", e.WorkspaceID, e.SourceID)
			if conn := e.post(t, testConn, e.workspaceAuth, ""); conn["ok"] != false {
				t.Fatalf("test connection before anything was sent: %v, want ok false", conn)
			}

			raw, err := os.ReadFile(filepath.Join("..", "..", "shared", "tracking", "testdata", fx.file))
			if err != nil {
				t.Fatal(err)
			}
			body := strings.ReplaceAll(string(raw), "WRITEKEY_SEG_123", e.WriteKey)
			body = strings.ReplaceAll(body, fixtureTime, time.Now().UTC().Add(-time.Second).Format("2006-01-02T15:04:05"))
			var wire bytes.Buffer
			if fx.gzip {
				zw := gzip.NewWriter(&wire)
				zw.Write([]byte(body))
				zw.Close()
			} else {
				wire.WriteString(body)
			}
			req, err := http.NewRequest(http.MethodPost, e.URL+fx.path, &wire)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range fx.headers {
				req.Header.Set(k, v)
			}
			if fx.gzip {
				req.Header.Set("Content-Encoding", "gzip")
			}
			if fx.basicAuth {
				req.SetBasicAuth(e.WriteKey, "")
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || string(bytes.TrimSpace(answer)) != `{"success":true}` {
				t.Fatalf("POST %s: %d %s, want 200 {\"success\":true}", fx.path, res.StatusCode, answer)
			}

			var sent struct {
				Batch []json.RawMessage `json:"batch"`
			}
			json.Unmarshal([]byte(body), &sent)
			entries, dbg := e.debugger(t)
			screens := 0
			for _, d := range entries {
				if d.Status != "accepted" {
					t.Errorf("debugger entry %s is %s", d, d.Status)
				}
				if d.Normalised != nil && d.Normalised.Type == "screen" {
					screens++
				}
			}
			if len(entries) != len(sent.Batch) || screens != fx.screens {
				t.Fatalf("the debugger has %d entries (%d screens), want %d (%d); debugger:\n%s", len(entries), screens, len(sent.Batch), fx.screens, dbg)
			}
			var events struct {
				Data []paEvent `json:"data"`
			}
			pa := e.profile(t, "user_id:u1", "events", "limit=100", &events)
			home := false
			for _, ev := range events.Data {
				home = home || ev.Type == "screen" && ev.Name == "Home" && ev.Properties["variant"] == "a"
			}
			if !home {
				t.Errorf("the Profile API has no screen Home {variant: a} for u1:\n%s", pa)
			}
			conn := e.post(t, testConn, e.workspaceAuth, "")
			seen, _ := conn["seen"].(map[string]any)
			if conn["ok"] != true || seen["screen"] != true {
				t.Errorf("test connection after the batch: %v, want ok and a screen seen", conn)
			}
			if mobile {
				if st := e.setupStep(t, "add_connections"); st != "complete" {
					t.Errorf("step 2 is %q after the app's screen passed the connection test, want complete", st)
				}
			}
		})
	}
}
