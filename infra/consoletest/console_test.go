package consoletest

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/unifiedprofiles/up/infra/lambdatest"
	"github.com/unifiedprofiles/up/shared/flex"
)

// deliverFlexEvent posts the sample TaskRouter event (events/flex-webhook-taskrouter.json, its
// form body) to webhook, signed with authToken as Twilio signs.
func deliverFlexEvent(t *testing.T, webhook, authToken string) {
	t.Helper()
	var ev struct {
		Body            string `json:"body"`
		IsBase64Encoded bool   `json:"isBase64Encoded"`
	}
	decode(t, string(lambdatest.LoadEvent(t, "flex-webhook-taskrouter")), &ev)
	body := ev.Body
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			t.Fatal(err)
		}
		body = string(b)
	}
	form, err := url.ParseQuery(body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, webhook, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", flex.Sign(authToken, webhook, form))
	send(t, req)
}

// The CSV path of the guided setup, as an admin walks it in the console: beta acceptance,
// workspace creation, sign-in with the token, CSV chosen in step 1, the template downloaded,
// a file with a character outside the allowed set refused with its row and column, the fixed
// file uploaded (the progress bar reaching 100) and ingested, step 3 (a custom identifier,
// the two recommended computed traits), step 4, and the explorer finding a profile of the file.
func TestCSVPath(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := newConsole(t, s, "csv")
	start := time.Now()
	c.createWorkspace("Acme Support")
	c.wantSteps(map[string]string{"select_data_source": "not started", "add_connections": "not started",
		"identifiers_and_traits": "not started", "check_configuration": "not started"})
	c.shot("1-overview")

	c.chooseSource("csv", "Upload profiles and custom traits")

	// Download template: the browser saves the file the API answers.
	downloads := t.TempDir()
	done := make(chan string, 1)
	if err := chromedp.ListenBrowser(c.tab.Ctx, func(ev any) {
		if d, ok := ev.(*browser.EventDownloadProgress); ok && d.State == browser.DownloadProgressStateCompleted {
			select {
			case done <- d.GUID:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	yes := true
	if _, err := chromedp.CallBrowser(c.tab.Ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: &yes}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	c.click("#download-template")
	select {
	case guid := <-done:
		b, err := os.ReadFile(filepath.Join(downloads, guid))
		if err != nil {
			t.Fatalf("the downloaded template: %v", err)
		}
		if header, _, _ := strings.Cut(string(b), "\r\n"); !strings.Contains(header, "email") || !strings.Contains(header, "first_name") {
			t.Errorf("the template's header is %q, want email and first_name among its columns", header)
		}
	case <-time.After(wait):
		t.Fatalf("the template was not downloaded within %s:\n%s", wait, c.mainText())
	}
	if e := c.text("#main .error"); e != "" {
		t.Errorf("downloading the template showed an error: %s", e)
	}

	// A file with a character outside the allowed set (the euro sign; see
	// /work/shared/fixtures/csv-allowed-characters.txt): refused, naming the row and the column.
	const rows, badRow = 60, 7
	bad := writeCSV(t, rows, badRow)
	good := writeCSV(t, rows, 0)
	seen := c.upload(bad, "Upload failed")
	t.Logf("progress bar values seen (refused file): %v", seen)
	errs := c.waitText("#upload-errors", "first_name")
	// The header is row 1: the bad data row is row badRow+1 of the file.
	if !strings.Contains(errs, fmt.Sprint(badRow+1)) || !strings.Contains(errs, "€") {
		t.Errorf("the errors table does not name row %d, column first_name and the character €:\n%s", badRow+1, errs)
	}
	c.labelled("#/setup/csv after a refused upload")
	c.shot("2-upload-errors")

	seen = c.upload(good, "Upload completed")
	t.Logf("progress bar values seen (fixed file): %v", seen)
	c.waitText("#ingest-rows", fmt.Sprintf("%d of %d rows", rows, rows))
	history := c.waitText("#upload-history", "completed")
	if !strings.Contains(history, "failed") {
		t.Errorf("the uploads list does not show the refused upload:\n%s", history)
	}
	c.shot("2-upload-completed")
	c.wantSteps(map[string]string{"select_data_source": "complete", "add_connections": "complete",
		"identifiers_and_traits": "not started", "check_configuration": "not started"})

	c.identifiers("crm_id", "crm_id")
	editAndDelete(c)
	c.wantSteps(map[string]string{"identifiers_and_traits": "complete"})

	summary, items := c.check()
	if it := items["CSV upload"]; len(it) < 2 || it[0] != "csv" || it[1] != "pass" {
		t.Errorf("step 4's CSV item is %q, want kind csv, status pass (items: %q)", it, items)
	}
	if it := items["Twilio Flex"]; len(it) < 4 || it[1] != "fail" || it[3] == "" {
		t.Errorf("step 4's Flex item is %q, want a failure with a hint (Flex is not configured)", it)
	}
	if !strings.Contains(summary, "Some checks failed") {
		t.Errorf("step 4's summary is %q, want that some checks failed", summary)
	}
	c.wantSteps(map[string]string{"check_configuration": "not started"})

	prof := c.explore("email", "person3@example.com")
	if !strings.Contains(prof, "Person3") {
		t.Errorf("the explorer's profile does not show the file's first_name:\n%s", prof)
	}
	c.clean()
	t.Logf("the CSV path took %s in the browser", time.Since(start).Round(time.Millisecond))
}

// writeCSV writes a CSV of n rows into a file people.csv; row bad (1-based, 0 for none) has a
// euro sign in first_name. Rows after the fifth carry 4 KB of notes, so the file (about
// 220 KB) takes a while to upload, while the rows stay few, for ingest on moto too.
func writeCSV(t *testing.T, n, bad int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("user_id,email,first_name,plan,crm_id,notes\r\n")
	long := strings.TrimSpace(strings.Repeat("Lorem ipsum dolor sit amet ", 150))
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("Person%d", i)
		if i == bad {
			name += " €"
		}
		notes := "Prefers email"
		if i > 5 {
			notes = long
		}
		fmt.Fprintf(&b, "user-%d,person%d@example.com,%s,pro,CRM-%d,%s\r\n", i, i, name, i, notes)
	}
	path := filepath.Join(t.TempDir(), "people.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// upload picks file in the CSV page, clicks Upload and follows the progress bar until the
// status says want; it returns the bar's values seen, and checks it ended at 100.
func (c *console) upload(file, want string) []float64 {
	c.t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		c.t.Fatal(err)
	}
	c.do(chromedp.SetUploadFiles(chromedp.CSS("#csv-file"), []string{file}))
	c.waitText("#picked", fmt.Sprintf("people.csv (%d bytes)", fi.Size()))
	// Every value the bar takes, recorded in the page; the test also polls it.
	c.eval(`window.progressSeen = [];
		new MutationObserver(() => {
			const p = document.getElementById("upload-progress");
			if (p && window.progressSeen[window.progressSeen.length - 1] !== p.value) window.progressSeen.push(p.value);
		}).observe(document.getElementById("upload-result"), { subtree: true, childList: true, attributes: true, attributeFilter: ["value"] }); true`)
	// Uploads to the S3 endpoint go at 256 KB/s (the file is about 220 KB), as over a slow
	// line, so the bar has time to show its way to 100.
	if _, err := chromedp.Call(c.tab.Ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{URLPattern: c.s.S3 + "/*", UploadThroughput: 256 << 10, DownloadThroughput: -1}}}); err != nil {
		c.t.Fatalf("throttle uploads: %v", err)
	}
	c.click("#upload")
	var polled []float64
	deadline := time.Now().Add(wait)
	for {
		var st struct {
			Value  *float64 `json:"value"`
			Status string   `json:"status"`
		}
		decode(c.t, c.eval(`({value: document.getElementById("upload-progress")?.value ?? null, status: document.getElementById("upload-status")?.innerText ?? ""})`), &st)
		if st.Value != nil && (len(polled) == 0 || polled[len(polled)-1] != *st.Value) {
			polled = append(polled, *st.Value)
		}
		if strings.Contains(st.Status, want) {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the upload's status did not say %q within %s (bar: %v):\n%s", want, wait, polled, c.mainText())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The upload ends once the uploads list is drawn again: the button is enabled then.
	c.waitFor("!document.getElementById('upload').disabled")
	var observed []float64
	decode(c.t, c.eval("window.progressSeen"), &observed)
	if len(observed) == 0 || observed[len(observed)-1] != 100 || polled[len(polled)-1] != 100 {
		c.t.Errorf("the progress bar ended at %v (observed) / %v (polled), want 100", observed, polled)
	}
	if len(observed) < 3 || observed[0] != 0 {
		c.t.Errorf("the progress bar took the values %v, want it to start at 0 and move through values below 100", observed)
	}
	if pct := c.text("#upload-percent"); pct != "100 %" {
		c.t.Errorf("the upload's percentage says %q, want 100 %%", pct)
	}
	c.t.Logf("progress bar values polled: %v", polled)
	return observed
}

// The website path: workspace, website chosen in step 1, the source created, its snippet
// copied and loaded in a page of another origin (the vendored analytics-next sends a page,
// an identify and a track), the connection test failing before and passing after, step 3,
// step 4 (the website's item passes), the debugger showing the events and the explorer the
// profile.
func TestWebsitePath(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := newConsole(t, s, "website")
	start := time.Now()
	wsToken := c.createWorkspace("Acme Shop")
	c.chooseSource("website", "Connect your website")
	c.wantSteps(map[string]string{"select_data_source": "complete", "add_connections": "not started"})
	c.goTo("#/setup/website", "Connect your website")
	c.set("#source-name", "Acme website")
	c.set("#source-url", "https://shop.acme.example")
	c.click("#create-source")
	c.waitFor("document.getElementById('write-key')")
	writeKey := c.text("#write-key")
	snippet := c.text("#snippet")
	if !strings.Contains(snippet, s.URL) || !strings.Contains(snippet, writeKey) {
		t.Fatalf("the snippet does not load from the stack with the write key %s:\n%s", writeKey, snippet)
	}

	// Copy snippet: with the clipboard permission granted, the Clipboard API holds it after.
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(c.tab.Ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: s.URL}); err != nil {
			t.Fatalf("grant %s: %v", name, err)
		}
	}
	c.click("#copy-snippet")
	c.waitText("#copy-status", "Copied to the clipboard.")
	if clip, err := c.tab.Eval("navigator.clipboard.readText()"); err != nil {
		t.Logf("the clipboard cannot be read back here (%v); the page said it copied", err)
	} else if got := unquote(t, string(clip)); got != snippet {
		t.Errorf("the clipboard holds %q, want the snippet", got)
	}
	c.click("#test-connection")
	if out := c.waitText("#test-outcome", "Not yet"); out == "" {
		t.Fatal("no test outcome")
	}
	c.labelled("#/setup/website")

	// The website: a page of another origin holding the copied snippet.
	page := "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Acme shop</title><link rel=\"icon\" href=\"data:,\">\n" + snippet +
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
	if err := c.tab.Navigate(site.URL + "/products"); err != nil {
		t.Fatalf("open the website: %v", err)
	}
	c.waitFor("window.analytics && window.analytics.initialized")
	user := "shopper-" + randomHex(t, 4)
	c.eval(fmt.Sprintf(`analytics.identify(%q, {email: %q, plan: "pro"})
		.then(() => analytics.track("Order Completed", {revenue: 42.5, currency: "USD"})).then(() => true)`, user, user+"@example.com"))

	// Back to the console (the session is the tab's): the test passes now.
	c.open("#/setup/website")
	c.waitFor("document.getElementById('test-connection')")
	c.click("#test-connection")
	c.waitText("#test-outcome", "Connection works")
	c.waitFor("document.querySelector('[data-seen=page]')")
	if seen := c.text("[data-seen=page]"); !strings.HasPrefix(seen, "✓") {
		t.Errorf("the test shows the page as %q, want it seen", seen)
	}
	c.shot("2-snippet-and-test")
	c.wantSteps(map[string]string{"select_data_source": "complete", "add_connections": "complete"})

	c.identifiers("loyalty_id", "loyaltyId")

	// The custom identifier works from now on: the website's next identify carries the trait
	// loyaltyId, and the explorer finds the shopper's profile by loyalty_id.
	if err := c.tab.Navigate(site.URL + "/products"); err != nil {
		t.Fatalf("open the website again: %v", err)
	}
	c.waitFor("window.analytics && window.analytics.initialized")
	loyalty := "L-" + randomHex(t, 3)
	c.eval(fmt.Sprintf(`analytics.identify(%q, {loyaltyId: %q}).then(() => true)`, user, loyalty))
	c.open("#/setup")

	summary, items := c.check()
	if it := items["Acme website"]; len(it) < 2 || it[0] != "tracking_source" || it[1] != "pass" {
		t.Errorf("step 4's website item is %q, want kind tracking_source, status pass (items: %q)", it, items)
	}
	if it := items["Twilio Flex"]; len(it) < 2 || it[1] != "fail" || !strings.HasPrefix(summary, "Some checks failed") {
		t.Errorf("before Flex is connected: summary %q, Flex item %q, want it failed (items: %q)", summary, it, items)
	}
	c.wantSteps(map[string]string{"identifiers_and_traits": "complete", "check_configuration": "not started"})

	// Connect Flex on the same page (a bad token first, then a good one), and the check passes:
	// the setup is complete.
	c.goTo("#/setup/check", "Check configuration")
	c.set("#flex-token", "not-a-token")
	c.expectError("/flex answered 400")
	c.click("#save-flex")
	c.waitText("#main .error", "auth_token")
	flexToken := randomHex(t, 16)
	c.set("#flex-token", flexToken)
	c.click("#save-flex")
	c.waitText("#flex-status", "Flex is connected.")
	// Flex then sends its first TaskRouter event (the sample in events/) to the webhook URL the
	// page shows, signed with the token, as Twilio would: the Flex source has its first message.
	deliverFlexEvent(t, c.text("#flex-webhook"), flexToken)
	summary, items = c.check()
	if !strings.HasPrefix(summary, "All checks passed") {
		t.Errorf("with Flex connected: summary %q (items: %q)", summary, items)
	}
	c.wantSteps(map[string]string{"identifiers_and_traits": "complete", "check_configuration": "complete"})

	// The event debugger shows what the website sent.
	c.goTo("#/debugger", "Event debugger")
	events := c.waitText("#debugger-events table", "Order Completed")
	for _, want := range []string{"page", "identify", user} {
		if !strings.Contains(events, want) {
			t.Errorf("the debugger does not show %q:\n%s", want, events)
		}
	}
	c.shot("debugger")

	prof := c.explore("user_id", user)
	if !strings.Contains(prof, "Order Completed") || !strings.Contains(prof, user+"@example.com") {
		t.Errorf("the explorer's profile lacks the track or the email:\n%s", prof)
	}
	profileID := c.text("#profile-id")
	if byLoyalty := c.explore("loyalty_id", loyalty); !strings.Contains(byLoyalty, user) || c.text("#profile-id") != profileID {
		t.Errorf("the explorer finds loyalty_id:%s on %q, want the shopper's %q:\n%s", loyalty, c.text("#profile-id"), profileID, byLoyalty)
	}
	c.clean(site.URL)

	// The token rotated elsewhere (curl, another tab): the next page signs the console out
	// and says why. Its refused requests (401) are then the only errors.
	before := len(c.tab.Errors())
	wsID := unquote(t, c.eval(`JSON.parse(sessionStorage.getItem("up.session")).workspace_id`))
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/workspaces/"+wsID+"/token/rotate", nil)
	req.Header.Set("Authorization", "Bearer "+wsToken)
	send(t, req)
	c.eval(`location.hash = "#/debugger"`)
	c.waitText("#main h1", "Sign in")
	c.waitText("#flash", "Your session ended")
	for _, e := range c.tab.Errors()[before:] {
		if !strings.HasSuffix(e, "answered 401") {
			t.Errorf("after the token rotated: %s", e)
		}
	}
	t.Logf("the website path took %s in the browser", time.Since(start).Round(time.Millisecond))
}

// editAndDelete edits a default identifier (email: limit 7, monthly) in its dialog, adds and
// then deletes a custom one, saves, and finds exactly that after a reload.
func editAndDelete(c *console) {
	c.t.Helper()
	c.goTo("#/setup/identifiers", "Add identifiers and traits")
	c.set("#new-identifier", "temp_id")
	c.click("#add-identifier")
	c.waitText("#identifiers", "temp_id")
	c.click(`#identifiers button[aria-label="Edit email"]`)
	c.waitFor("document.querySelector('dialog[open] #edit-limit')")
	c.set("#edit-limit", "7")
	c.set("#edit-window", "monthly")
	c.click("#edit-apply")
	c.click(`#identifiers button[aria-label="Delete temp_id"]`)
	c.click("#save-identifiers")
	c.waitText("#identifiers-saved", "Identifiers saved.")
	c.open("#/setup/identifiers")
	c.waitText("#identifiers", "crm_id")
	var rows [][]string
	decode(c.t, c.eval(`[...document.querySelectorAll('#identifiers tbody tr')].map(tr => [...tr.cells].slice(1, 5).map(td => td.innerText))`), &rows)
	byType := map[string][]string{}
	for _, r := range rows {
		byType[r[0]] = r[1:]
	}
	if got := byType["email"]; len(got) < 3 || got[0] != "7" || got[1] != "monthly" || got[2] != "default" {
		c.t.Errorf("email after the edit: %q, want limit 7, monthly, default", got)
	}
	if _, ok := byType["temp_id"]; ok || len(byType) != 12 {
		c.t.Errorf("after deleting temp_id: %d identifiers %q, want the 11 defaults and crm_id", len(byType), rows)
	}
}
