package consoletest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/unifiedprofiles/up/infra/pgtest"
)

// customers is how many rows the warehouse's table holds: more than a preview shows (10).
const customers = 12

// startWarehouse runs a PostgreSQL with a role retl (a SCRAM password: the cluster refuses
// others over its socket) that reads a table customers of n rows.
func startWarehouse(t *testing.T, n int) *pgtest.Cluster {
	t.Helper()
	pg := pgtest.Start(t)
	pg.Exec(t,
		"CREATE ROLE retl LOGIN PASSWORD 'right-password'", "GRANT CREATE ON DATABASE postgres TO retl",
		"CREATE TABLE customers (id integer PRIMARY KEY, email text, first_name text, plan text)", "GRANT SELECT ON customers TO retl",
		fmt.Sprintf("INSERT INTO customers SELECT i, 'customer' || i || '@example.com', 'Customer' || i, CASE WHEN i %% 2 = 0 THEN 'pro' ELSE 'free' END FROM generate_series(1, %d) i", n),
	)
	return pg
}

// The data warehouse path: workspace, "A data warehouse" chosen in step 1, a PostgreSQL
// source created, its connection saved with a wrong password (the test says why and what to
// do) then the right one, a model previewed (a misspelt column first: the warehouse's error
// and its position), created, mapped onto identifiers and traits, synced by hand (the
// history follows the sync to its end), step 2 complete, and the explorer finding a synced
// row's profile with its traits.
func TestWarehousePath(t *testing.T) {
	t.Parallel()
	pg := startWarehouse(t, customers)
	s := newStack(t)
	c := newConsole(t, s, "warehouse")
	start := time.Now()
	c.createWorkspace("Acme Analytics")
	c.chooseSource("warehouse", "Connect your data warehouse")
	c.wantSteps(map[string]string{"select_data_source": "complete", "add_connections": "not started"})

	c.goTo("#/setup/warehouse", "Connect your data warehouse")
	c.set("#warehouse-type", "postgres")
	c.set("#warehouse-name", "Acme Postgres")
	// No connection is saved yet: the page reads it, and the API answers 404 not_configured.
	c.expectError("/warehouse answered 404")
	c.click("#create-warehouse")
	c.waitFor("document.getElementById('wh-host')")
	c.waitText("#main", "Acme Postgres")
	c.labelled("#/setup/warehouse, the connection")
	c.waitText("#usage [data-usage=sources]", "1 of")

	// A wrong password: the connection is saved and its test says why and what to do.
	connect := func(password string) string {
		t.Helper()
		for sel, v := range map[string]string{"#wh-host": pg.Socket, "#wh-port": "5432", "#wh-database": "postgres",
			"#wh-user": "retl", "#wh-password": password, "#wh-ssl_mode": "disable"} {
			c.set(sel, v)
		}
		c.eval(`document.getElementById("warehouse-test").replaceChildren(); true`)
		c.click("#save-warehouse")
		c.waitFor("document.querySelector('#warehouse-test > div')")
		return c.text("#warehouse-test")
	}
	if got := connect("wrong-password"); !strings.HasPrefix(got, "auth:") || !strings.Contains(got, "Check the user and password") {
		t.Errorf("with a wrong password the test says %q, want the reason auth and its hint", got)
	}
	if c.eval("document.querySelector('#warehouse-test > div').className") != `"error"` {
		t.Errorf("the failed test is not shown as an error")
	}
	if got := connect("right-password"); got != "The connection works." {
		t.Fatalf("with the right password the test says %q", got)
	}
	c.eval(`document.getElementById("warehouse-test").replaceChildren(); true`)
	c.click("#test-warehouse")
	c.waitText("#warehouse-test", "The connection works.")

	// A misspelt column: the warehouse's words and the position in the model.
	c.set("#model-name", "Customers")
	c.set("#model-sql", "SELECT id, emial, first_name, plan FROM customers")
	c.expectError("/models/preview answered 400")
	c.click("#preview-model")
	bad := c.waitText("#model-preview .error", "emial")
	if !strings.Contains(bad, "at character 12") {
		t.Errorf("the preview's error is %q, want the warehouse's message and the position 12 of emial", bad)
	}
	c.set("#model-sql", "SELECT id, email, first_name, plan FROM customers")
	c.click("#preview-model")
	c.waitFor("document.querySelector('#model-preview table')")
	if e := c.text("#model-preview .error"); e != "" {
		t.Errorf("the error stays after a good preview: %s", e)
	}
	var head []string
	decode(t, c.eval(`[...document.querySelectorAll('#model-preview th')].map(th => th.innerText)`), &head)
	if want := []string{"id (int4)", "email (text)", "first_name (text)", "plan (text)"}; strings.Join(head, "|") != strings.Join(want, "|") {
		t.Errorf("the preview's columns are %q, want %q", head, want)
	}
	if n := c.eval(`document.querySelectorAll('#model-preview tbody tr').length`); n != "10" {
		t.Errorf("the preview shows %s rows, want 10", n)
	}
	if p := c.text("#model-preview tbody"); !strings.Contains(p, "customer1@example.com") {
		t.Errorf("the preview lacks the first customer:\n%s", p)
	}
	c.labelled("#/setup/warehouse with a preview")
	c.shot("2-connection-and-preview")

	c.set("#model-id-column", "id")
	c.click("#create-model")
	c.waitFor("document.querySelector('[data-model]') && document.getElementById('map-user_id')")
	if m := c.text("[data-model]"); !strings.Contains(m, "Customers") || !strings.Contains(m, "id") {
		t.Errorf("the model's section says %q", m)
	}
	c.set("#map-user_id", "id")
	c.set("#map-email", "email")
	c.click("input[data-trait=first_name]")
	c.click("input[data-trait=plan]")
	c.set("#map-schedule", "manual")
	c.labelled("#/setup/warehouse, the mapping")
	c.click("#create-mapping")
	c.waitText("[data-mapping]", "No syncs yet.")
	if m := c.text("[data-mapping]"); !strings.Contains(m, "next sync: manual") {
		t.Errorf("the mapping says %q, want a manual schedule", m)
	}

	// Sync now: the history follows the sync to its end without a reload.
	c.click("#sync-now")
	history := c.waitText("[data-mapping] table", "succeeded")
	row := c.text("[data-mapping] tbody tr")
	for _, want := range []string{"manual", "succeeded", fmt.Sprintf("%d / 0 / 0", customers), fmt.Sprintf("%d / 0", customers)} {
		if !strings.Contains(row, want) {
			t.Errorf("the sync's row %q lacks %q (history:\n%s)", row, want, history)
		}
	}
	// The end is said in the live region, and the focus is back on Sync now.
	c.waitText("#flash", fmt.Sprintf("Sync succeeded: %d loaded, 0 failed.", customers))
	if got := c.eval("document.activeElement && document.activeElement.id"); got != `"sync-now"` {
		t.Errorf("after the sync the focus is on %s, want Sync now", got)
	}
	c.labelled("#/setup/warehouse after a sync")
	c.shot("2-sync-history")

	// A second model: its mapping form's controls get ids of their own, each with its label.
	c.set("#model-name", "Plans")
	c.set("#model-sql", "SELECT DISTINCT plan FROM customers")
	c.click("#preview-model")
	c.waitText("#model-preview table", "plan (text)")
	c.set("#model-id-column", "plan")
	c.click("#create-model")
	c.waitFor("document.querySelectorAll('[data-model]').length === 2")
	if dup := c.eval(`(() => { const ids = [...document.querySelectorAll("#main [id]")].map((e) => e.id);
		return ids.filter((id, i) => ids.indexOf(id) !== i); })()`); dup != "[]" {
		t.Errorf("with two models these ids are not unique: %s", dup)
	}
	c.labelled("#/setup/warehouse with two models")

	// The same after a reload: the page reads the connection and the history again.
	c.do(chromedp.Reload())
	c.waitFor("document.getElementById('wh-host') && document.querySelectorAll('[data-model]').length === 2")
	c.waitText("[data-mapping] table", "succeeded")
	if got := c.eval("document.getElementById('wh-host').value"); got != fmt.Sprintf("%q", pg.Socket) {
		t.Errorf("the saved connection's host shows as %s", got)
	}
	if got := c.eval("document.getElementById('wh-password').value"); got != `""` {
		t.Errorf("the password is shown again: %s", got)
	}
	c.waitText("#warehouse-test", "The connection works.")

	c.wantSteps(map[string]string{"select_data_source": "complete", "add_connections": "complete"})

	prof := c.explore("email", "customer4@example.com")
	traits, ids := c.text("#profile-traits"), c.text("#profile-identifiers")
	for _, want := range []string{"first_name\tCustomer4", "plan\tpro"} {
		if !strings.Contains(traits, want) {
			t.Errorf("the explorer's traits lack %q:\n%s", want, prof)
		}
	}
	if !strings.Contains(ids, "user_id\t4\t") {
		t.Errorf("the explorer's identifiers lack user_id 4 (the row's id):\n%s", prof)
	}
	c.clean()
	t.Logf("the warehouse path took %s in the browser", time.Since(start).Round(time.Millisecond))
}

// The mobile path: "A mobile app" chosen in step 1, an Android source, its snippet, the
// connection test failing, a screen posted as analytics-kotlin posts it (a gzipped batch to
// /v1/b with the write key as Basic user), and the test passing.
func TestMobilePath(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := newConsole(t, s, "mobile")
	c.createWorkspace("Acme App")
	c.chooseSource("mobile", "Connect your mobile app")
	c.goTo("#/setup/mobile", "Connect your mobile app")
	c.set("#source-name", "Acme Android")
	c.click("input[name=os][value=kotlin]")
	c.click("#create-source")
	c.waitFor("document.getElementById('write-key')")
	writeKey := c.text("#write-key")
	if src := c.text("#main p"); !strings.Contains(src, "Android (Kotlin)") {
		t.Errorf("the source is %q, want an Android (kotlin) one", src)
	}
	if snippet := c.text("#snippet"); !strings.Contains(snippet, writeKey) || !strings.Contains(snippet, s.URL) {
		t.Errorf("the snippet lacks the write key %s or the stack's URL:\n%s", writeKey, snippet)
	}
	c.labelled("#/setup/mobile")
	c.click("#test-connection")
	c.waitText("#test-outcome", "Not yet")

	postKotlinScreen(t, s.URL, writeKey)

	c.click("#test-connection")
	c.waitText("#test-outcome", "Connection works")
	if seen := c.text("[data-seen=screen]"); !strings.HasPrefix(seen, "✓") {
		t.Errorf("the test shows the screen as %q, want it seen", seen)
	}
	c.shot("2-snippet-and-test")
	c.wantSteps(map[string]string{"select_data_source": "complete", "add_connections": "complete"})
	c.clean()
}

// postKotlinScreen sends a screen as analytics-kotlin sends it: a gzipped batch, text/plain,
// to /v1/b, the write key as the Basic user and in the body.
func postKotlinScreen(t *testing.T, base, writeKey string) {
	t.Helper()
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	body, err := json.Marshal(map[string]any{
		"batch": []map[string]any{{
			"type": "screen", "name": "Home", "userId": "android-user-1", "anonymousId": "3ce1b347-0187-4c05-b0cc-76289bd7f38b",
			"messageId": "m-" + randomHex(t, 8), "timestamp": now, "properties": map[string]any{},
			"context":      map[string]any{"library": map[string]any{"name": "analytics-kotlin", "version": "1.24.1"}, "os": map[string]any{"name": "Android", "version": "14"}},
			"integrations": map[string]any{},
		}},
		"sentAt": now, "writeKey": writeKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wire bytes.Buffer
	zw := gzip.NewWriter(&wire)
	zw.Write(body)
	zw.Close()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/b", &wire)
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("User-Agent", "analytics-kotlin/1.24.1")
	req.SetBasicAuth(writeKey, "")
	send(t, req)
}
