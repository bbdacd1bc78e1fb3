// Package consoletest drives the web console (shared/console) in a real headless Chromium
// through the whole guided setup of a workspace, against a local stack started in the test:
// the operator's beta page, workspace creation, sign-in with the workspace token, the four
// steps on the CSV path and on the website path, step 2 on the warehouse path (a real
// PostgreSQL) and on the mobile path, the event debugger and the profile explorer.
//
// With UP_SCREENSHOTS=<dir> (make screenshots) the tests also write a PNG of each step there.
package consoletest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/unifiedprofiles/up/infra/browsertest"
	"github.com/unifiedprofiles/up/shared/localstack"
	"github.com/unifiedprofiles/up/shared/localstack/localstacktest"
	"github.com/unifiedprofiles/up/shared/testlog"
	"github.com/unifiedprofiles/up/shared/token"
)

// ScreenshotsEnv names the folder the tests write their screenshots to (none when unset).
const ScreenshotsEnv = "UP_SCREENSHOTS"

// wait bounds each wait on the page.
const wait = 30 * time.Second

// stack is a local stack served over HTTP, its S3 endpoint too, as make run serves them:
// the console is same-origin with the API, and the S3 endpoint lets it upload (CORS).
type stack struct {
	URL      string // the API and the console
	S3       string // the S3 endpoint presigned uploads point at
	operator string // the operator token
}

func newStack(t *testing.T) *stack {
	t.Helper()
	return newStackWith(t, nil)
}

// newStackWith is newStack with the stack's configuration changed by config first (nil: none).
func newStackWith(t *testing.T, config func(*localstack.Config)) *stack {
	t.Helper()
	logs := &testlog.Buffer{}
	t.Cleanup(func() { // registered first, so it runs last
		if t.Failed() {
			t.Logf("local stack log:\n%s", logs.String())
		}
	})
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s3Ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		apiLn.Close()
		t.Fatal(err)
	}
	s := &stack{URL: "http://" + apiLn.Addr().String(), S3: "http://" + s3Ln.Addr().String(), operator: token.New(token.OperatorPrefix)}
	var ddb localstack.DynamoDB // bbolt unless the suite runs on DynamoDB
	ddb.Endpoint, ddb.Table = localstacktest.DynamoDB(t)
	cfg := localstack.Config{
		DataDir: t.TempDir(), DynamoDB: ddb, OperatorTokenHash: token.Hash(s.operator),
		// As make run does: the console the stack serves is same-origin, and it may upload.
		ConsoleOrigins: []string{s.URL}, S3URL: s.S3,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if config != nil {
		config(&cfg)
	}
	st, err := localstack.Open(cfg)
	if err != nil {
		apiLn.Close()
		s3Ln.Close()
		t.Fatalf("open the local stack: %v", err)
	}
	api := httptest.NewUnstartedServer(st.Handler)
	api.Listener.Close()
	api.Listener = apiLn
	api.Start()
	s3 := httptest.NewUnstartedServer(st.S3Handler)
	s3.Listener.Close()
	s3.Listener = s3Ln
	s3.Start()
	t.Cleanup(func() {
		api.Close()
		s3.Close()
		st.Close()
	})
	return s
}

// console is one browser tab on the console of a stack.
type console struct {
	t     *testing.T
	s     *stack
	tab   *browsertest.Tab
	shots string // the screenshots' folder, "" for none
	name  string // the path under test: the screenshots' prefix

	mu      sync.Mutex
	dialogs []string // the messages of the dialogs the page opened (all accepted)

	expected []string // errors the test provoked on purpose (clean lets each through once)
}

// expectError says the next error ending in suffix is provoked on purpose (a refused input).
func (c *console) expectError(suffix string) { c.expected = append(c.expected, suffix) }

func newConsole(t *testing.T, s *stack, name string) *console {
	t.Helper()
	c := &console{t: t, s: s, tab: browsertest.New(t), shots: os.Getenv(ScreenshotsEnv), name: name}
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range c.tab.Requests() {
				t.Logf("browser request: %s %s → %d %s", r.Method, r.URL, r.Status, r.Failed)
			}
			t.Logf("browser console:\n%s", strings.Join(c.tab.Console(), "\n"))
		}
	})
	// Step 1 asks confirm(): accept it as a user clicking Continue would. The dialog blocks
	// the page, so it is answered from another goroutine than the listener's.
	if err := chromedp.Listen(c.tab.Ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			c.mu.Lock()
			c.dialogs = append(c.dialogs, d.Message)
			c.mu.Unlock()
			go func() {
				if _, err := chromedp.Call(c.tab.Ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil {
					t.Errorf("accept the dialog %q: %v", d.Message, err)
				}
			}()
		}
	}); err != nil {
		t.Fatalf("listen to the tab: %v", err)
	}
	c.do(chromedp.EmulateViewport(1280, 900))
	if c.shots != "" {
		if err := os.MkdirAll(c.shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *console) do(actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.tab.Ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		c.t.Fatalf("browser: %v", err)
	}
}

// eval evaluates js in the page (awaiting a promise) and returns its JSON.
func (c *console) eval(js string) string {
	c.t.Helper()
	v, err := c.tab.Eval(js)
	if err != nil {
		c.t.Fatalf("evaluate %s: %v", js, err)
	}
	return string(v)
}

// open navigates to the console's page at hash and waits for its heading.
func (c *console) open(hash string) {
	c.t.Helper()
	if err := c.tab.Navigate(c.s.URL + "/" + hash); err != nil {
		c.t.Fatalf("open %s: %v", hash, err)
	}
	c.waitFor("document.querySelector('#main h1')")
}

// goTo follows an in-app link (sets location.hash) and waits for the page's heading to say
// title; the focus must be on it (so a screen reader announces the page) and every form
// control of the page must have a label.
func (c *console) goTo(hash, title string) {
	c.t.Helper()
	// The old page's heading is marked, to wait for the new one. On the page already,
	// setting the same hash changes nothing: draw the page again.
	c.eval(fmt.Sprintf(`document.querySelector("#main h1")?.setAttribute("data-old", "");
		location.hash === %q ? dispatchEvent(new HashChangeEvent("hashchange")) : (location.hash = %q)`, hash, hash))
	c.waitText("#main h1:not([data-old])", title)
	if got := c.eval("document.activeElement === document.querySelector('#main h1')"); got != "true" {
		c.t.Errorf("on %s the focus is on %s, want the page's heading", hash, c.eval("document.activeElement.outerHTML.slice(0, 80)"))
	}
	c.labelled(hash)
}

// labelled checks that every form control in the page has an accessible name: a label, or
// aria-label / aria-labelledby.
func (c *console) labelled(where string) {
	c.t.Helper()
	var bare []string
	decode(c.t, c.eval(`[...document.querySelectorAll("#main input, #main select, #main textarea, #main progress")]
		.filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.getAttribute("aria-labelledby"))
		.map(e => e.outerHTML.slice(0, 100))`), &bare)
	if len(bare) > 0 {
		c.t.Errorf("on %s these controls have no label:\n%s", where, strings.Join(bare, "\n"))
	}
}

func (c *console) click(sel string) {
	c.t.Helper()
	c.do(chromedp.Click(chromedp.CSS(sel)))
}

func (c *console) set(sel, value string) {
	c.t.Helper()
	c.do(chromedp.SetValue(chromedp.CSS(sel), value))
}

func (c *console) waitFor(js string) {
	c.t.Helper()
	if err := c.tab.WaitFor(js, wait); err != nil {
		c.t.Fatalf("%v\nthe page says:\n%s", err, c.mainText())
	}
}

// text is the text of the first element matching sel ("" when none).
func (c *console) text(sel string) string {
	c.t.Helper()
	return unquote(c.t, c.eval(fmt.Sprintf("(document.querySelector(%q) || {}).innerText || ''", sel)))
}

// waitText waits until the element sel holds want, and returns its text.
func (c *console) waitText(sel, want string) string {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("((document.querySelector(%q) || {}).innerText || '').includes(%q)", sel, want))
	return c.text(sel)
}

func (c *console) mainText() string {
	v, err := c.tab.Eval("(document.getElementById('main') || document.body).innerText + '\\n' + document.getElementById('flash').innerText")
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return unquote(c.t, string(v))
}

// steps is what the overview's tiles show: step → status word.
func (c *console) steps() map[string]string {
	c.t.Helper()
	c.goTo("#/setup", "Getting started")
	c.waitFor("document.querySelectorAll('[data-step] .status').length === 4")
	out := map[string]string{}
	for _, key := range []string{"select_data_source", "add_connections", "identifiers_and_traits", "check_configuration"} {
		out[key] = c.text(fmt.Sprintf("[data-step=%q] .status", key))
	}
	return out
}

func (c *console) wantSteps(want map[string]string) {
	c.t.Helper()
	got := c.steps()
	for k, v := range want {
		if got[k] != v {
			c.t.Errorf("the overview shows step %s as %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

// shot writes a full-page PNG of the page as <path>-<name>.png into the screenshots' folder.
func (c *console) shot(name string) {
	c.t.Helper()
	if c.shots == "" {
		return
	}
	png, err := chromedp.Run(c.tab.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(c.shots, c.name+"-"+name+".png"), png, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// createWorkspace runs the operator page (beta acceptance) and the create page, signs out and
// signs in again with the workspace token; it returns the workspace's token.
func (c *console) createWorkspace(name string) string {
	c.t.Helper()
	sid := "AC" + randomHex(c.t, 16)
	c.open("#/operator")
	c.set("#operator-token", c.s.operator)
	c.set("#account-sid", sid)
	c.click("#main form button[type=submit]")
	invite := strings.TrimSpace(c.waitText("#invite-token", "upi_"))

	c.goTo("#/create", "Create a Unified Profiles workspace")
	c.set("#invite", invite)
	c.set("#ws-name", name)
	c.set("#ws-account-sid", sid)
	c.click("#main form button[type=submit]")
	c.waitFor("document.getElementById('workspace-token')")
	wsToken := strings.TrimSpace(c.text("#workspace-token"))
	if wsToken == "" {
		c.t.Fatalf("no workspace token shown:\n%s", c.mainText())
	}
	if focused := c.eval("document.activeElement && document.activeElement.id"); focused != `"continue"` {
		c.t.Errorf("after creating the workspace the focus is on %s, want the continue button", focused)
	}
	c.click("#continue")
	c.waitText("#main h1", "Getting started")
	c.waitText("#workspace-name", name)

	// Sign out, then in again with the token alone (GET /v1/me names the workspace).
	c.click("#sign-out")
	c.waitText("#main h1", "Sign in")
	if c.eval("document.getElementById('nav').hidden") != "true" {
		c.t.Errorf("the navigation is shown while signed out")
	}
	c.set("#token", wsToken)
	c.click("#main form button[type=submit]")
	c.waitText("#main h1", "Getting started")
	c.waitText("#workspace-name", name)
	return wsToken
}

// chooseSource picks kind in step 1 and accepts the dialog; the page of step 2 follows.
func (c *console) chooseSource(kind, nextTitle string) {
	c.t.Helper()
	c.goTo("#/setup", "Getting started")
	c.click("#kind-" + kind)
	c.click("#choose-source")
	c.waitText("#main h1", nextTitle)
	c.mu.Lock()
	dialogs := append([]string(nil), c.dialogs...)
	c.mu.Unlock()
	if len(dialogs) == 0 || !strings.Contains(dialogs[len(dialogs)-1], "cannot change this choice") {
		c.t.Errorf("choosing %s opened the dialogs %q, want one that warns the choice is final", kind, dialogs)
	}
}

// identifiers runs step 3: a custom identifier saved, and the two recommended computed traits.
func (c *console) identifiers(custom, key string) {
	c.t.Helper()
	c.goTo("#/setup/identifiers", "Add identifiers and traits")
	c.set("#new-identifier", custom)
	c.set("#new-keys", key)
	c.click("#add-identifier")
	c.waitText("#identifiers", custom)
	c.click("#save-identifiers")
	c.waitText("#identifiers-saved", "Identifiers saved.")
	c.click("#preset-total_inbounds")
	c.waitText("#trait-list", "total_inbounds")
	c.click("#preset-frequent_inbound_channel")
	c.waitText("#trait-list", "frequent_inbound_channel")
	c.waitText("#usage [data-usage=computed_traits]", "2 of 2")
	for _, id := range []string{"#preset-total_inbounds", "#preset-frequent_inbound_channel"} {
		if c.eval(fmt.Sprintf("document.querySelector(%q).disabled", id)) != "true" {
			c.t.Errorf("%s is still enabled after the trait was added", id)
		}
	}
	c.labelled("#/setup/identifiers after adding")
	c.shot("3-identifiers-and-traits")
}

// check runs step 4 and returns the rows of its table: item name → [kind, status, reason, hint].
func (c *console) check() (summary string, items map[string][]string) {
	c.t.Helper()
	c.goTo("#/setup/check", "Check configuration")
	c.click("#run-check")
	c.waitFor("document.getElementById('check-items')")
	summary = c.text("#check-summary")
	var rows [][]string
	decode(c.t, c.eval(`[...document.querySelectorAll('#check-items tbody tr')].map(tr => [...tr.cells].map(td => td.innerText))`), &rows)
	items = map[string][]string{}
	for _, r := range rows {
		items[r[0]] = r[1:]
	}
	c.shot("4-check-configuration")
	return summary, items
}

// explore searches the explorer for typ:value and returns the profile's text.
func (c *console) explore(typ, value string) string {
	c.t.Helper()
	c.goTo("#/explorer", "Profile explorer")
	c.set("#explorer-type", typ)
	c.set("#explorer-value", value)
	c.click("#explorer-search")
	c.waitFor("document.getElementById('profile') || document.getElementById('explorer-none')")
	if c.text("#explorer-none") != "" {
		c.t.Fatalf("the explorer found no profile with %s:%s", typ, value)
	}
	c.waitText("#profile-identifiers", value)
	c.labelled("#/explorer with a profile")
	c.shot("explorer")
	return c.text("#profile")
}

// clean asserts the page had no error and reached no third party.
func (c *console) clean(allowed ...string) {
	c.t.Helper()
	expected := slices.Clone(c.expected)
	var errs []string
	for _, e := range c.tab.Errors() {
		if i := slices.IndexFunc(expected, func(x string) bool { return strings.HasSuffix(e, x) }); i >= 0 {
			expected = slices.Delete(expected, i, i+1)
			continue
		}
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		c.t.Errorf("the console had errors:\n%s", strings.Join(errs, "\n"))
	}
	if len(expected) > 0 {
		c.t.Errorf("errors expected and not seen: %q", expected)
	}
	if private := c.privateCalls(); len(private) > 0 {
		c.t.Errorf("the console called routes the public API does not document:\n%s", strings.Join(private, "\n"))
	}
	if foreign := c.tab.Foreign(append(allowed, c.s.URL, c.s.S3)...); len(foreign) > 0 {
		c.t.Errorf("the console reached third parties:\n%s", strings.Join(foreign, "\n"))
	}
}

// publicAPI is the public API the console may call: ARCHITECTURE.md section 5's routes as
// method and path ({name} is one path segment), besides the console's own files. The tracking
// API's SDK routes are here for the website the website path loads in the same tab.
var publicAPI = []string{
	"GET /v1/sdk/{file}", "GET /v1/projects/{writeKey}/settings", "POST /v1/p", "POST /v1/i", "POST /v1/t", "POST /v1/s", "POST /v1/g", "POST /v1/a",
	"GET /v1/me", "POST /v1/beta/accounts", "POST /v1/workspaces", "GET /v1/workspaces/{ws}",
	"PUT /v1/workspaces/{ws}/setup/data-source", "GET /v1/workspaces/{ws}/setup/identifiers-and-traits", "POST /v1/workspaces/{ws}/setup/check",
	"GET /v1/workspaces/{ws}/spaces", "GET /v1/workspaces/{ws}/spaces/{sp}/identity", "PUT /v1/workspaces/{ws}/spaces/{sp}/identity",
	"GET /v1/workspaces/{ws}/spaces/{sp}/computed-traits", "POST /v1/workspaces/{ws}/spaces/{sp}/computed-traits", "DELETE /v1/workspaces/{ws}/spaces/{sp}/computed-traits/{id}",
	"GET /v1/workspaces/{ws}/spaces/{sp}/profiles", "GET /v1/workspaces/{ws}/spaces/{sp}/profiles/{profile}",
	"GET /v1/workspaces/{ws}/sources", "POST /v1/workspaces/{ws}/sources", "GET /v1/workspaces/{ws}/sources/{src}/snippet",
	"POST /v1/workspaces/{ws}/sources/{src}/test-connection", "GET /v1/workspaces/{ws}/sources/{src}/debugger",
	"GET /v1/workspaces/{ws}/csv/template", "GET /v1/workspaces/{ws}/csv/uploads", "POST /v1/workspaces/{ws}/csv/uploads", "GET /v1/workspaces/{ws}/csv/uploads/{id}",
	"GET /v1/workspaces/{ws}/flex", "PUT /v1/workspaces/{ws}/flex",
	"GET /v1/workspaces/{ws}/sources/{src}/warehouse", "PUT /v1/workspaces/{ws}/sources/{src}/warehouse", "POST /v1/workspaces/{ws}/sources/{src}/warehouse/test",
	"POST /v1/workspaces/{ws}/sources/{src}/models/preview", "GET /v1/workspaces/{ws}/sources/{src}/models", "POST /v1/workspaces/{ws}/sources/{src}/models",
	"GET /v1/workspaces/{ws}/sources/{src}/models/templates",
	"GET /v1/salesforce/callback", "GET /v1/workspaces/{ws}/sources/{src}/salesforce", "PUT /v1/workspaces/{ws}/sources/{src}/salesforce",
	"GET /v1/workspaces/{ws}/sources/{src}/models/{model}/mappings", "POST /v1/workspaces/{ws}/sources/{src}/models/{model}/mappings",
	"GET /v1/workspaces/{ws}/sources/{src}/models/{model}/mappings/{mapping}",
	"GET /v1/workspaces/{ws}/sources/{src}/models/{model}/mappings/{mapping}/syncs", "POST /v1/workspaces/{ws}/sources/{src}/models/{model}/mappings/{mapping}/syncs",
	"GET /v1/workspaces/{ws}/spaces/{sp}/predictions", "POST /v1/workspaces/{ws}/spaces/{sp}/predictions",
	"GET /v1/workspaces/{ws}/spaces/{sp}/predictions/{id}", "DELETE /v1/workspaces/{ws}/spaces/{sp}/predictions/{id}",
	"POST /v1/workspaces/{ws}/spaces/{sp}/predictions/{id}/train",
}

// privateCalls lists the requests the page made to the stack that are neither the console's
// own files nor a route of publicAPI: the console needs nothing the public API lacks.
func (c *console) privateCalls() []string {
	var out []string
	for _, r := range c.tab.Requests() {
		u, err := url.Parse(r.URL)
		if err != nil || browsertest.Origin(r.URL) != browsertest.Origin(c.s.URL) {
			continue // S3 and the test's website are checked by Foreign
		}
		if r.Method == http.MethodGet && (u.Path == "/" || strings.HasPrefix(u.Path, "/console/")) || r.Method == http.MethodOptions {
			continue
		}
		if !slices.ContainsFunc(publicAPI, func(route string) bool { return routeMatches(route, r.Method, u.Path) }) {
			out = append(out, r.Method+" "+u.Path)
		}
	}
	return out
}

// routeMatches reports whether method and path fit route ("METHOD /a/{x}/b").
func routeMatches(route, method, path string) bool {
	m, pattern, _ := strings.Cut(route, " ")
	want, got := strings.Split(pattern, "/"), strings.Split(path, "/")
	if m != method || len(want) != len(got) {
		return false
	}
	for i := range want {
		if want[i] != got[i] && !(strings.HasPrefix(want[i], "{") && got[i] != "") {
			return false
		}
	}
	return true
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// unquote decodes a JSON string.
func unquote(t *testing.T, v string) string {
	t.Helper()
	var s string
	decode(t, v, &s)
	return s
}

func decode(t *testing.T, v string, out any) {
	t.Helper()
	if err := json.Unmarshal([]byte(v), out); err != nil {
		t.Fatalf("decode %s: %v", v, err)
	}
}

// send does req and fails t unless it is answered 200 OK.
func send(t *testing.T, req *http.Request) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s %s answered %s: %s", req.Method, req.URL.Path, res.Status, out)
	}
}
