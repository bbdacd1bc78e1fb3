package sdktest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/infra/browsertest"
	"github.com/unifiedprofiles/up/shared/browsersdk"
)

// browserWait bounds each wait on the browser or on the stack for what the browser sent.
const browserWait = 30 * time.Second

// A website's page holding exactly the snippet the API returns, opened in a real Chromium on
// another origin than the API: the vendored analytics-next bundle loads from the stack, reads
// its settings there, and delivers page (the snippet's own call), identify and track through
// CORS to the short paths; the debugger and the Profile API show them on one profile, the
// source's connection test passes, and the page made no request to anyone else.
func TestWebsiteSnippetInChromium(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sourceType: "javascript", dataSource: "website"})
	var sn struct {
		Language string `json:"language"`
		Snippet  string `json:"snippet"`
	}
	e.mustGet(t, fmt.Sprintf("/v1/workspaces/%s/sources/%s/snippet", e.WorkspaceID, e.SourceID), e.workspaceAuth, &sn)
	if sn.Language != "html" || !strings.Contains(sn.Snippet, e.URL+browsersdk.BundlePath) {
		t.Fatalf("the javascript snippet (%s) does not load %s:\n%s", sn.Language, e.URL+browsersdk.BundlePath, sn.Snippet)
	}

	page := "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Acme shop</title><link rel=\"icon\" href=\"data:,\">\n" + sn.Snippet +
		"\n</head><body><h1>Products</h1></body></html>\n"
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/products" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}))
	t.Cleanup(site.Close)

	tab := browsertest.New(t)
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range tab.Requests() {
				t.Logf("browser request: %s %s → %d %s", r.Method, r.URL, r.Status, r.Failed)
			}
			t.Logf("browser console:\n%s", strings.Join(tab.Console(), "\n"))
		}
	})
	if err := tab.Navigate(site.URL + "/products"); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	if err := tab.WaitFor("window.analytics && window.analytics.initialized", browserWait); err != nil {
		t.Fatalf("analytics-next did not initialise: %v", err)
	}
	user := "browser-" + randomHex(t, 4)
	email := user + "@example.com"
	js := fmt.Sprintf(`analytics.identify(%q, {email: %q, plan: "pro"})
		.then(() => analytics.track("Order Completed", {revenue: 42.5, currency: "USD"}))
		.then(() => analytics.user().anonymousId())`, user, email)
	anon, err := tab.Eval(js)
	if err != nil {
		t.Fatalf("identify and track: %v", err)
	}

	// Delivery is asynchronous: wait until the debugger holds the three messages.
	var accepted map[string]debugEntry
	deadline := time.Now().Add(browserWait)
	for {
		entries, body := e.debugger(t)
		accepted = map[string]debugEntry{}
		for _, d := range entries {
			if d.Status != "accepted" || d.Normalised == nil || d.Outcome == nil {
				t.Fatalf("debugger entry %s is not accepted; debugger:\n%s", d, body)
			}
			accepted[d.Normalised.Type] = d
		}
		if len(accepted) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the debugger has %v, want page, identify and track; debugger:\n%s", browserWait, keys(accepted), body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	profileID := accepted["identify"].Outcome.ProfileID
	for _, typ := range []string{"page", "identify", "track"} {
		d, ok := accepted[typ]
		if !ok {
			t.Fatalf("no accepted %s in the debugger (got %v)", typ, keys(accepted))
		}
		if d.Outcome.ProfileID != profileID {
			t.Errorf("the %s went to profile %s, the identify to %s", typ, d.Outcome.ProfileID, profileID)
		}
		var raw struct {
			AnonymousID string `json:"anonymousId"`
			WriteKey    string `json:"writeKey"`
			Context     struct {
				Library struct{ Name, Version string }
				Page    struct{ URL string }
			} `json:"context"`
		}
		if err := json.Unmarshal(d.Raw, &raw); err != nil {
			t.Fatalf("the %s's raw payload: %v", typ, err)
		}
		lib := raw.Context.Library
		if lib.Name != "analytics.js" || lib.Version != "npm:next-"+browsersdk.Version && lib.Version != "next-"+browsersdk.Version {
			t.Errorf("the %s came from library %s %s, want analytics.js next-%s", typ, lib.Name, lib.Version, browsersdk.Version)
		}
		if `"`+raw.AnonymousID+`"` != string(anon) || raw.WriteKey != e.WriteKey || raw.Context.Page.URL != site.URL+"/products" {
			t.Errorf("the %s: anonymousId %s, writeKey %s, page %s; want %s, the source's key, %s", typ, raw.AnonymousID, raw.WriteKey, raw.Context.Page.URL, anon, site.URL+"/products")
		}
	}
	if d := accepted["track"].Normalised; d.Event != "Order Completed" || d.UserID != user {
		t.Errorf("the track is %+v", d)
	}

	// The Profile API: the identify's traits, and all three events on the user's profile.
	var traits struct {
		Traits map[string]any `json:"traits"`
	}
	body := e.profile(t, "user_id:"+user, "traits", "", &traits)
	if traits.Traits["email"] != email || traits.Traits["plan"] != "pro" {
		t.Errorf("Profile API traits: %s", body)
	}
	var events struct {
		Data []paEvent `json:"data"`
	}
	body = e.profile(t, "user_id:"+user, "events", "limit=100", &events)
	var types []string
	for _, ev := range events.Data {
		types = append(types, ev.Type)
	}
	slices.Sort(types)
	if !slices.Equal(types, []string{"identify", "page", "track"}) {
		t.Errorf("Profile API events are %v, want identify, page and track; answer:\n%s", types, body)
	}

	// The source's connection test passes (a javascript source needs a page).
	conn := e.post(t, fmt.Sprintf("/v1/workspaces/%s/sources/%s/test-connection", e.WorkspaceID, e.SourceID), e.workspaceAuth, "")
	if conn["ok"] != true {
		t.Errorf("test connection: %v", conn)
	}
	if st := e.setupStep(t, "add_connections"); st != "complete" {
		t.Errorf("step 2 (add_connections) is %q after the website passed its connection test, want complete", st)
	}

	// What the browser did: the bundle and the settings from the stack, the three calls to
	// their short paths, nothing refused, nothing sent to a third party.
	var got []string
	for _, r := range tab.Requests() {
		if browsertest.Origin(r.URL) == e.URL && r.Method != http.MethodOptions {
			got = append(got, r.Method+" "+strings.TrimPrefix(r.URL, e.URL))
		}
	}
	for _, want := range []string{"GET " + browsersdk.BundlePath, "GET /v1/projects/" + e.WriteKey + "/settings", "POST /v1/p", "POST /v1/i", "POST /v1/t"} {
		if !slices.Contains(got, want) {
			t.Errorf("the browser never sent %s to the stack; it sent %v", want, got)
		}
	}
	if errs := tab.Errors(); len(errs) > 0 {
		t.Errorf("the page had errors:\n%s", strings.Join(errs, "\n"))
	}
	if foreign := tab.Foreign(site.URL, e.URL); len(foreign) > 0 {
		t.Errorf("the page reached other origins than itself and the stack:\n%s", strings.Join(foreign, "\n"))
	}
}

// The vendored analytics-next files are byte for byte those of the npm package the lockfile
// pins (installed by make test's npm ci), at browsersdk.Version, gzip copies included.
func TestVendoredBrowserSDKMatchesTheLockfile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("node", "node_modules", "@segment", "analytics-next")
	manifest, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		missing(t, "infra/sdktest/node/node_modules has no @segment/analytics-next: run npm ci --prefix infra/sdktest/node")
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(manifest, &pkg); err != nil || pkg.Version != browsersdk.Version {
		t.Fatalf("the lockfile installs @segment/analytics-next %q, browsersdk vendors %s (%v): run make vendor-browser-sdk", pkg.Version, browsersdk.Version, err)
	}
	names := browsersdk.Names()
	if !slices.Contains(names, browsersdk.Standalone) {
		t.Fatalf("browsersdk has no %s: %v", browsersdk.Standalone, names)
	}
	for _, name := range names {
		f, _ := browsersdk.Open(name)
		want, err := os.ReadFile(filepath.Join(dir, "dist", "umd", name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		wantGz, err := os.ReadFile(filepath.Join(dir, "dist", "umd", name+".gz"))
		if err != nil {
			t.Errorf("%s.gz: %v", name, err)
			continue
		}
		if !bytes.Equal(f.Plain, want) || !bytes.Equal(f.Gzip, wantGz) {
			t.Errorf("%s differs from the npm package's copy: run make vendor-browser-sdk", name)
		}
		zr, err := gzip.NewReader(bytes.NewReader(f.Gzip))
		if err != nil {
			t.Fatalf("%s.gz: %v", name, err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(unzipped, f.Plain) {
			t.Errorf("%s.gz does not unzip to %s (%v)", name, name, err)
		}
	}
}
