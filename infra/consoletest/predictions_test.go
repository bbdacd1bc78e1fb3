package consoletest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// predictionView is what the API answers for one prediction (the fields the test reads).
type predictionView struct {
	ID           string `json:"id"`
	Key          string `json:"key"`
	Kind         string `json:"kind"`
	Status       string `json:"status"`
	Requirements []struct {
		Rule   string `json:"rule"`
		Met    bool   `json:"met"`
		Detail string `json:"detail"`
	} `json:"requirements"`
}

// Step 3's optional predictive traits, as the seed's step 6 has an admin set them up: open
// the "Set up predictive traits" dropdown, complete Likelihood to Churn on a space with (next
// to) no data: it waits for data and the table shows each unmet requirement's detail, as the
// API reports it; complete Predicted Lifetime Value: two rows, the usage shows 2 of 2, and a
// third (a custom goal) is refused with the entitlement error; Train now retrains; Delete
// removes a row and frees the slot.
func TestPredictionsStep3(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := newConsole(t, s, "predictions")
	wsToken := c.createWorkspace("Acme Predict")
	wsID := unquote(t, c.eval(`JSON.parse(sessionStorage.getItem("up.session")).workspace_id`))
	wsURL := s.URL + "/v1/workspaces/" + url.PathEscape(wsID)

	// One track into the first space (through its auto-created server source): its event is
	// suggested, while the space stays far from what training needs.
	var spaces struct {
		Spaces []struct {
			ID string `json:"id"`
		} `json:"spaces"`
	}
	apiJSON(t, http.MethodGet, wsURL+"/spaces", wsToken, nil, http.StatusOK, &spaces)
	if len(spaces.Spaces) == 0 {
		t.Fatal("the workspace has no space")
	}
	sp := spaces.Spaces[0].ID
	type source struct {
		ID       string `json:"id"`
		SpaceID  string `json:"space_id"`
		Type     string `json:"type"`
		WriteKey string `json:"write_key"`
	}
	var sources struct {
		Sources []source `json:"sources"`
	}
	apiJSON(t, http.MethodGet, wsURL+"/sources", wsToken, nil, http.StatusOK, &sources)
	i := slices.IndexFunc(sources.Sources, func(src source) bool { return src.Type == "java" && src.SpaceID == sp && src.WriteKey != "" })
	if i < 0 {
		t.Fatalf("no auto-created server source among %+v", sources.Sources)
	}
	track, _ := json.Marshal(map[string]any{"userId": "buyer-1", "event": "Checkout Started", "properties": map[string]any{"revenue": 12.5}})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/track", bytes.NewReader(track))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(sources.Sources[i].WriteKey, "")
	send(t, req)

	c.goTo("#/setup/identifiers", "Add identifiers and traits")
	if need := c.text("#predictions-need-data"); !strings.Contains(need, "up to 48 hours") || !strings.Contains(need, "event data") {
		t.Errorf("the predictive traits do not say they need event data and up to 48 hours:\n%s", need)
	}
	c.waitFor("document.getElementById('no-predictions')")
	// The dropdown is closed until opened: its forms are hidden.
	if c.eval("document.getElementById('predictive-setup').open || document.getElementById('complete-churn').checkVisibility()") != "false" {
		t.Errorf("the Set up predictive traits dropdown is open before it is selected")
	}
	if got := c.text("#predictive-setup > summary"); got != "Set up predictive traits" {
		t.Errorf("the dropdown says %q", got)
	}
	c.click("#predictive-setup > summary")
	c.waitFor("document.getElementById('predictive-setup').open && document.getElementById('complete-churn').checkVisibility()")
	for _, b := range []string{"#complete-churn", "#complete-ltv"} {
		if got := c.text(b); got != "Complete setup" {
			t.Errorf("%s says %q, want Complete setup", b, got)
		}
	}
	var suggested []string
	decode(t, c.eval(`[...document.querySelectorAll("#prediction-events option")].map(o => o.value)`), &suggested)
	if !slices.Contains(suggested, "Checkout Started") {
		t.Errorf("the events suggested are %q, want the tracked Checkout Started among them", suggested)
	}
	var defaults map[string]string
	decode(t, c.eval(`({churnKey: document.getElementById("churn-key").value, churnWindow: document.getElementById("churn-window").value,
		windows: [...document.getElementById("churn-window").options].map(o => o.value).join(","),
		ltvEvent: document.getElementById("ltv-event").value, ltvKey: document.getElementById("ltv-key").value,
		properties: [...document.getElementById("ltv-property").options].map(o => o.value).join(",")})`), &defaults)
	for k, want := range map[string]string{"churnKey": "likelihood_to_churn", "churnWindow": "30", "windows": "15,30,60,90,120",
		"ltvEvent": "Order Completed", "ltvKey": "predicted_ltv", "properties": "revenue,total,value,price"} {
		if defaults[k] != want {
			t.Errorf("the form's %s is %q, want %q", k, defaults[k], want)
		}
	}
	c.labelled("#/setup/identifiers with the predictive traits open")

	// Complete setup without an event: refused in the page, nothing sent.
	c.click("#complete-churn")
	c.waitText(`fieldset[data-prediction=churn] > .error`, "Name the event")
	if n := c.countRequests(http.MethodPost, "/predictions", 0); n != 0 {
		t.Errorf("an incomplete churn form sent %d requests", n)
	}

	// Likelihood to Churn: it waits for data, each unmet requirement's detail shown.
	c.set("#churn-event", "Order Completed")
	c.set("#churn-window", "60")
	c.click("#complete-churn")
	c.waitText("#prediction-list", "likelihood_to_churn")
	if e := c.text(`fieldset[data-prediction=churn] > .error`); e != "" {
		t.Errorf("the churn form still shows an error after it was completed: %s", e)
	}
	c.waitStatus("likelihood_to_churn", "waiting for data")
	preds := listPredictions(t, wsURL, sp, wsToken)
	churn := findPrediction(t, preds, "likelihood_to_churn")
	if churn.Kind != "churn" || churn.Status != "waiting_for_data" || len(churn.Requirements) == 0 {
		t.Fatalf("the API has the churn prediction as %+v, want kind churn waiting for data with its requirements", churn)
	}
	var raw map[string]any
	apiJSON(t, http.MethodGet, wsURL+"/spaces/"+sp+"/predictions/"+churn.ID, wsToken, nil, http.StatusOK, &raw)
	if fmt.Sprint(raw["event"]) != "Order Completed" || fmt.Sprint(raw["window_days"]) != "60" {
		t.Errorf("the churn prediction was created with event %v and window %v, want Order Completed and 60 (%v)", raw["event"], raw["window_days"], raw)
	}
	shown := c.requirementsShown("likelihood_to_churn")
	unmet := 0
	for _, r := range churn.Requirements {
		if r.Met {
			continue
		}
		unmet++
		if r.Detail == "" {
			t.Errorf("the API's unmet requirement %q has no detail", r.Rule)
		}
		if got := shown[r.Rule]; got != r.Detail {
			t.Errorf("the row shows requirement %q as %q, want the API's detail %q", r.Rule, got, r.Detail)
		}
	}
	if unmet == 0 || len(shown) != unmet {
		t.Errorf("the row shows %d unmet requirements (%q), the API reports %d", len(shown), shown, unmet)
	}
	if c.eval("document.getElementById('complete-churn').disabled") != "true" {
		t.Errorf("Likelihood to Churn can still be completed once set up")
	}

	// Predicted Lifetime Value: two rows, both slots used.
	c.set("#ltv-property", "total")
	c.click("#complete-ltv")
	c.waitText("#prediction-list", "predicted_ltv")
	c.waitStatus("predicted_ltv", "waiting for data")
	if n := c.eval("document.querySelectorAll('#prediction-list tbody tr').length"); n != "2" {
		t.Errorf("the table has %s rows, want 2:\n%s", n, c.text("#prediction-list"))
	}
	c.waitText("#usage [data-usage=predictions]", "2 of 2")
	ltv := findPrediction(t, listPredictions(t, wsURL, sp, wsToken), "predicted_ltv")
	apiJSON(t, http.MethodGet, wsURL+"/spaces/"+sp+"/predictions/"+ltv.ID, wsToken, nil, http.StatusOK, &raw)
	if ltv.Kind != "ltv" || fmt.Sprint(raw["purchase_event"]) != "Order Completed" || fmt.Sprint(raw["revenue_property"]) != "total" {
		t.Errorf("the LTV prediction is %+v with %v, want kind ltv on Order Completed's total", ltv, raw)
	}
	if len(c.requirementsShown("predicted_ltv")) == 0 {
		t.Errorf("the LTV row shows no unmet requirement:\n%s", c.text("#prediction-list"))
	}

	// A third (a custom goal): three events are refused in the page, then the entitlement.
	c.set("#custom-kind", "custom")
	c.set("#custom-events", "Signed Up, Trial Started, Plan Chosen")
	c.set("#custom-key", "likely_to_sign_up")
	c.click("#create-custom-prediction")
	c.waitText("#custom-prediction > .error", "one or two events")
	c.set("#custom-events", "Signed Up, Trial Started")
	c.expectError("/predictions answered 403")
	c.click("#create-custom-prediction")
	refused := c.waitText("#custom-prediction > .error", "no predictive trait left")
	if !strings.Contains(refused, "limit is 2") {
		t.Errorf("the refusal does not carry the API's message (the limit of 2): %s", refused)
	}
	if n := len(listPredictions(t, wsURL, sp, wsToken)); n != 2 {
		t.Errorf("the API has %d predictions after the refused third, want 2", n)
	}
	c.labelled("#/setup/identifiers with two predictions")
	c.shot("3-predictive-traits")

	// Train now: the API is asked, and the row ends waiting for data again.
	c.click(`[data-train="predicted_ltv"]`)
	deadline := time.Now().Add(wait)
	for c.countRequests(http.MethodPost, "/predictions/"+ltv.ID+"/train", http.StatusAccepted) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Train now sent no train request answered 202")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.waitStatus("predicted_ltv", "waiting for data")

	// Delete: asked first, then the row goes and the slot is free again.
	c.click(`[data-delete="likelihood_to_churn"]`)
	c.waitFor(`![...document.querySelectorAll("#prediction-list tbody tr")].some(tr => tr.cells[0].innerText === "likelihood_to_churn")`)
	c.mu.Lock()
	last := c.dialogs[len(c.dialogs)-1]
	c.mu.Unlock()
	if !strings.Contains(last, "likelihood_to_churn") {
		t.Errorf("Delete asked %q, want a confirmation naming the trait", last)
	}
	if rows := c.text("#prediction-list"); !strings.Contains(rows, "predicted_ltv") {
		t.Errorf("deleting the churn trait removed the LTV row too:\n%s", rows)
	}
	c.waitText("#usage [data-usage=predictions]", "1 of 2")
	c.waitFor("!document.getElementById('complete-churn').disabled")
	if left := listPredictions(t, wsURL, sp, wsToken); len(left) != 1 || left[0].Key != "predicted_ltv" {
		t.Errorf("the API has %+v after the delete, want predicted_ltv alone", left)
	}
	c.clean()
}

// waitStatus waits until the row of key shows status (a training one is refreshed with the
// Refresh button meanwhile, should the page's own refresh not have run yet).
func (c *console) waitStatus(key, status string) {
	c.t.Helper()
	cell := fmt.Sprintf(`([...document.querySelectorAll("#prediction-list tbody tr")].find(tr => tr.cells[0].innerText === %q)?.cells[2].innerText || "")`, key)
	deadline := time.Now().Add(wait)
	for {
		got := unquote(c.t, c.eval(cell))
		if got == status {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the row of %s shows %q after %s, want %q:\n%s", key, got, wait, status, c.mainText())
		}
		if got == "training" {
			c.eval(`document.getElementById("refresh-predictions")?.click(); true`)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// requirementsShown is the row of key's unmet requirements: rule → the detail shown.
func (c *console) requirementsShown(key string) map[string]string {
	c.t.Helper()
	var shown map[string]string
	decode(c.t, c.eval(fmt.Sprintf(`Object.fromEntries([...([...document.querySelectorAll("#prediction-list tbody tr")]
		.find(tr => tr.cells[0].innerText === %q)?.querySelectorAll("ul.unmet li[data-rule]") || [])]
		.filter(li => li.checkVisibility()).map(li => [li.dataset.rule, li.innerText]))`, key)), &shown)
	return shown
}

// countRequests counts the page's requests of method whose path ends in suffix, answered
// status (0: any, or none yet).
func (c *console) countRequests(method, suffix string, status int64) int {
	n := 0
	for _, r := range c.tab.Requests() {
		if u, err := url.Parse(r.URL); err == nil && r.Method == method && strings.HasSuffix(u.Path, suffix) && (status == 0 || r.Status == status) {
			n++
		}
	}
	return n
}

func listPredictions(t *testing.T, wsURL, sp, tok string) []predictionView {
	t.Helper()
	var out struct {
		Predictions []predictionView `json:"predictions"`
	}
	apiJSON(t, http.MethodGet, wsURL+"/spaces/"+sp+"/predictions", tok, nil, http.StatusOK, &out)
	return out.Predictions
}

func findPrediction(t *testing.T, list []predictionView, key string) predictionView {
	t.Helper()
	for _, p := range list {
		if p.Key == key {
			return p
		}
	}
	t.Fatalf("the API has no prediction %s among %+v", key, list)
	return predictionView{}
}

// apiJSON calls the API with the workspace token, wants status, and decodes the answer into out.
func apiJSON(t *testing.T, method, u, tok string, body any, status int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		t.Fatalf("%s %s answered %s, want %d: %s", method, u, res.Status, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, u, b, err)
		}
	}
}
