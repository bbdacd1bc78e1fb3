package localstack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/localstack/localstacktest"
	"github.com/unifiedprofiles/up/shared/predict"
	"github.com/unifiedprofiles/up/shared/predict/model"
	"github.com/unifiedprofiles/up/shared/predict/predicttest"
)

// Predictions on the local stack, black-box over HTTP (ARCHITECTURE.md section 5): a history
// imported through POST /v1/import (a synthetic shop of 300 customers over 100 days, with a
// planted signal), a churn prediction trained by the stack's own runner, its quality, and its
// score as a computed trait in the explorer and the Profile API; a second space with too
// little data waits for it, naming each unmet requirement; a third prediction is refused;
// train now → 202; delete → the trait is gone.
func TestPredictionsOverHTTP(t *testing.T) {
	t.Parallel()
	// The real clock: a run waits for the space's counts backfill, which starts a few seconds
	// after its first prediction.
	e := openStackEnv(t, nil, func(*Config) {})
	ws := "/v1/workspaces/" + e.tn.ID()
	today := int32(time.Now().Unix()/86400) - 1 // the last complete UTC day

	// 36,000 track calls: seconds on bbolt, but moto_server takes about 80 ms a message, so
	// the suite's DynamoDB run trains nothing here (the store-neutral run above, and
	// shared/predict's tests, do) and checks the rest on a small history.
	train := !localstacktest.OnDynamoDB()
	cfg := predicttest.Config{Seed: 7, Profiles: 300, Days: 100, Today: today, Signal: true}
	if !train {
		cfg = predicttest.Config{Seed: 7, Profiles: 10, Days: 5, Today: today}
	}
	ds, _ := predicttest.Generate(cfg)
	start := time.Now()
	n := e.importHistory(e.tn.Sources[0].WriteKey, ds)
	t.Logf("imported %d track calls of %d customers over %d days in %v", n, len(ds.Profiles), cfg.Days, time.Since(start).Round(time.Millisecond))

	preds := ws + "/spaces/" + e.tn.SpaceID() + "/predictions"
	created := e.want(201, "POST", preds, `{"kind":"churn","key":"likely_to_churn","event":"Order Completed","window_days":30}`)
	if created["status"] != predict.StatusTraining {
		t.Fatalf("created %v", created)
	}
	churn := preds + "/" + created["id"].(string)
	start = time.Now()
	got := e.waitPrediction(churn, 60*time.Second)
	t.Logf("the first run ended %s %v after creation", got["status"], time.Since(start).Round(time.Millisecond))
	at := e.tn.AccessToken(t)
	var withScore string
	if train {
		withScore = e.checkReady(got, at, ws, ds)
	} else if got["status"] != predict.StatusWaitingForData {
		t.Fatalf("the prediction on a small history: %v", got)
	}

	// A second space with a little data: waiting for data, each unmet rule with what it lacks.
	sp2 := e.want(201, "POST", ws+"/spaces", `{"name":"Second"}`)["id"].(string)
	src2 := e.want(201, "POST", ws+"/sources", fmt.Sprintf(`{"name":"Shop 2","type":"http","space_id":%q}`, sp2))
	small, _ := predicttest.Generate(predicttest.Config{Seed: 2, Profiles: 20, Days: 10, Today: today, EventTypes: 3})
	e.importHistory(src2["write_key"].(string), small)
	waiting := e.want(201, "POST", ws+"/spaces/"+sp2+"/predictions", `{"kind":"purchase","key":"will_buy","events":["Order Completed"],"property":"revenue","window_days":15}`)
	got = e.waitPrediction(ws+"/spaces/"+sp2+"/predictions/"+waiting["id"].(string), 30*time.Second)
	if got["status"] != predict.StatusWaitingForData {
		t.Fatalf("the second space's prediction: %v", got)
	}
	unmet := map[string]string{}
	for _, x := range got["requirements"].([]any) {
		r := x.(map[string]any)
		if r["met"] == false {
			unmet[r["rule"].(string)] = r["detail"].(string)
		}
	}
	for _, rule := range []string{model.RuleGoalReached, model.RuleGoalNotReached, model.RuleHistory, model.RuleEventTypes, model.RuleIdentifiedProfiles} {
		if d := unmet[rule]; !strings.Contains(d, "more") {
			t.Errorf("requirement %s: %q, want it unmet and saying how many more", rule, d)
		}
	}
	t.Logf("waiting for data: %v", unmet)

	// A third prediction: the workspace has 2.
	r, out := e.call("POST", preds, `{"kind":"ltv","key":"predicted_ltv","purchase_event":"Order Completed","revenue_property":"revenue"}`)
	if errBody, _ := out["error"].(map[string]any); r != 403 || errBody["code"] != "entitlement_exceeded" {
		t.Fatalf("a third prediction: %d %v", r, out)
	}

	// Train now, then delete: the score leaves the profiles.
	trained := e.want(202, "POST", churn+"/train", "")
	if trained["next_run_at"] == nil {
		t.Fatalf("train now: %v", trained)
	}
	e.want(204, "DELETE", churn, "")
	if withScore != "" {
		if v, ok := e.profileTrait(at, e.tn.SpaceID(), withScore, "likely_to_churn"); ok {
			t.Fatalf("%s still shows likely_to_churn %v after the delete", withScore, v)
		}
	}
	if status, _ := e.call("GET", churn, ""); status != 404 {
		t.Fatalf("GET after delete: %d", status)
	}
	if u := e.want(200, "GET", ws, "")["usage"].(map[string]any)["predictions"].(map[string]any)["used"]; u != 1.0 {
		t.Fatalf("predictions used after the delete: %v", u)
	}
}

// checkReady checks a trained prediction's quality, and its score on the first customers as a
// computed trait in the Profile API (a number in [0, 1]) and the explorer; it returns a
// customer that has one.
func (e *stackEnv) checkReady(got map[string]any, accessToken, ws string, ds model.Dataset) string {
	t := e.t
	t.Helper()
	q, _ := got["quality"].(map[string]any)
	if got["status"] != predict.StatusReady || q == nil {
		t.Fatalf("the prediction after its first run: %v", got)
	}
	auc, _ := q["auc"].(float64)
	logLoss, _ := q["log_loss"].(float64)
	lift, _ := q["lift_top_20"].(float64)
	grade, _ := q["grade"].(string)
	features, _ := got["top_features"].([]any)
	scored, _ := got["profiles_scored"].(float64)
	t.Logf("AUC %.3f, log loss %.3f, lift of the top 20 %% %.2f, grade %s; %d top features, %v profiles scored", auc, logLoss, lift, grade, len(features), scored)
	if auc < 0.7 || logLoss <= 0 || lift <= 1 || !slices.Contains([]string{"fair", "good", "excellent"}, grade) ||
		len(features) == 0 || scored < 100 || got["trained_at"] == nil || got["scored_at"] == nil {
		t.Fatalf("quality %v, features %v, scored %v: want AUC ≥ 0.7, a log loss, lift > 1, a grade above poor, features and scores", q, features, scored)
	}
	var withScore string
	for _, p := range ds.Profiles[:40] {
		v, ok := e.profileTrait(accessToken, e.tn.SpaceID(), p.ID, "likely_to_churn")
		if !ok {
			continue
		}
		f, isNum := v.(float64)
		if !isNum || f < 0 || f > 1 {
			t.Fatalf("%s's likely_to_churn is %v, want a number in [0, 1]", p.ID, v)
		}
		withScore = p.ID
	}
	if withScore == "" {
		t.Fatal("none of the first 40 customers shows likely_to_churn in the Profile API")
	}
	if v := e.explorerTrait(ws, e.tn.SpaceID(), withScore, "likely_to_churn"); v == nil {
		t.Fatalf("the explorer shows no likely_to_churn for %s", withScore)
	}
	return withScore
}

// importHistory sends ds's activity to POST /v1/import with writeKey: one track call per
// count, on its day (noon UTC), the day's revenue on the first. It returns how many.
func (e *stackEnv) importHistory(writeKey string, ds model.Dataset) int {
	e.t.Helper()
	var batch []string
	sent := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		req, _ := http.NewRequest("POST", e.api+"/v1/import", strings.NewReader(`{"batch":[`+strings.Join(batch, ",")+`]}`))
		req.SetBasicAuth(writeKey, "")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			e.t.Fatal(err)
		}
		var out struct {
			Success  bool              `json:"success"`
			Rejected []json.RawMessage `json:"rejected"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 200 || !out.Success || len(out.Rejected) > 0 {
			e.t.Fatalf("import: %d, success %v, rejected %s", resp.StatusCode, out.Success, out.Rejected)
		}
		sent += len(batch)
		batch = batch[:0]
	}
	for _, p := range ds.Profiles {
		for m := range predicttest.Tracks(p, ds.Events) {
			batch = append(batch, string(m.Raw))
			if len(batch) == 1000 {
				flush()
			}
		}
	}
	flush()
	return sent
}

// want calls the admin API and fails unless it answers status.
func (e *stackEnv) want(status int, method, path, body string) map[string]any {
	e.t.Helper()
	got, out := e.call(method, path, body)
	if got != status {
		e.t.Fatalf("%s %s: %d %v, want %d", method, path, got, out, status)
	}
	return out
}

// waitPrediction polls a prediction until its run has ended (status no longer training).
func (e *stackEnv) waitPrediction(path string, d time.Duration) map[string]any {
	e.t.Helper()
	var got map[string]any
	wait(e.t, "the prediction's run", d, func() (bool, string) {
		got = e.want(200, "GET", path, "")
		return got["status"] != predict.StatusTraining, fmt.Sprint(got)
	})
	return got
}

// profileTrait reads trait key of user uid through the Profile API (a space access token).
func (e *stackEnv) profileTrait(accessToken, sp, uid, key string) (any, bool) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.api+"/v1/spaces/"+sp+"/collections/users/profiles/user_id:"+url.PathEscape(uid)+"/traits?class=computed_trait", nil)
	req.SetBasicAuth(accessToken, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 404 {
		return nil, false
	}
	var out struct {
		Traits map[string]any `json:"traits"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("traits of %s: %d %v", uid, resp.StatusCode, err)
	}
	v, ok := out.Traits[key]
	return v, ok
}

// explorerTrait reads computed trait key of user uid in the profile explorer.
func (e *stackEnv) explorerTrait(ws, sp, uid, key string) any {
	e.t.Helper()
	found := e.want(200, "GET", ws+"/spaces/"+sp+"/profiles?identifier="+url.QueryEscape("user_id:"+uid), "")["profiles"].([]any)
	if len(found) != 1 {
		e.t.Fatalf("explorer search for %s: %v", uid, found)
	}
	p := e.want(200, "GET", ws+"/spaces/"+sp+"/profiles/"+found[0].(map[string]any)["id"].(string), "")
	ct, _ := p["computed_traits"].(map[string]any)
	return ct[key]
}
