package httpapi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/predict"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/upload"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// newPredictionServer is newServer with the predictions service, which it also returns (the
// test runs due predictions itself, as the dispatcher would), every part on clock.
func newPredictionServer(t *testing.T, clock *testclock.Clock) (*client, *predict.Service) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"), bolt.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mux := NewMux()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	profiles := profile.New(st, profile.Options{Now: clock.Now})
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(opToken), Secrets: testSealer(t), Now: clock.Now})
	preds := predict.New(st, ws, profiles, predict.Options{Now: clock.Now})
	MountAdmin(mux, Services{Workspaces: ws, Profiles: profiles, Tracking: tracking.New(st, ws, profiles, tracking.Options{Logger: log}),
		Uploads: upload.New(st, ws, profiles, nil, upload.Options{Logger: log}), Predictions: preds}, AdminOptions{Logger: log})
	srv := httptest.NewServer(Logged(mux, log))
	t.Cleanup(srv.Close)
	return &client{t: t, base: srv.URL, profiles: profiles}, preds
}

// The predictions routes end to end over HTTP: refusals in the envelope naming the field,
// create → 201 training, the run → waiting_for_data with each requirement, train now → 202,
// at most 2 (403 entitlement_exceeded), delete → 204 and the slot back.
func TestPredictionsAPI(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Now().UTC().Add(123 * time.Millisecond)) // not on a whole second
	c, preds := newPredictionServer(t, clock)
	tn := c.newTenant(71)
	base := "/v1/workspaces/" + tn.ws + "/spaces/" + tn.space + "/predictions"
	usage := func() float64 {
		ws := c.want(200, "GET", "/v1/workspaces/"+tn.ws, tn.token, nil)
		return ws["usage"].(map[string]any)["predictions"].(map[string]any)["used"].(float64)
	}

	bad := []struct {
		name, body, code, field string
	}{
		{"unknown kind", `{"kind":"upsell","key":"k"}`, "invalid_field", "kind"},
		{"no window", `{"kind":"churn","key":"k","event":"Order Completed"}`, "invalid_field", "window_days"},
		{"bad window", `{"kind":"churn","key":"k","event":"Order Completed","window_days":7}`, "invalid_field", "window_days"},
		{"another kind's field", `{"kind":"churn","key":"k","event":"e","window_days":30,"revenue_property":"total"}`, "invalid_field", "revenue_property"},
		{"three events", `{"kind":"purchase","key":"k","events":["a","b","c"],"window_days":30}`, "invalid_field", "events"},
		{"not a money property", `{"kind":"ltv","key":"k","purchase_event":"o","revenue_property":"amount"}`, "invalid_field", "revenue_property"},
		{"window as text", `{"kind":"churn","key":"k","event":"e","window_days":"30"}`, "invalid_field", "window_days"},
		{"unknown field", `{"kind":"churn","key":"k","event":"e","window_days":30,"windowDays":30}`, "unknown_field", "windowDays"},
		{"reserved key", `{"kind":"churn","key":"email","event":"e","window_days":30}`, "trait_key_in_use", "key"},
	}
	for _, b := range bad {
		r := c.do("POST", base, tn.token, b.body)
		code, field := r.errorCode(t)
		if r.status/100 != 4 || code != b.code || field != b.field {
			t.Errorf("%s: %d %s field %q, want %s on %q: %s", b.name, r.status, code, field, b.code, b.field, r.body)
		}
	}
	if u := usage(); u != 0 {
		t.Fatalf("refused bodies took %v slots", u)
	}

	churn := c.want(201, "POST", base, tn.token, `{"kind":"churn","key":"likely_to_churn","event":"Order Completed","window_days":30}`)
	id, _ := churn["id"].(string)
	if !strings.HasPrefix(id, "pred_") || churn["status"] != "training" || churn["window_days"] != 30.0 || churn["event"] != "Order Completed" ||
		churn["quality"] != nil || len(churn["requirements"].([]any)) != 0 || churn["next_run_at"] == nil {
		t.Fatalf("created %v", churn)
	}
	for _, absent := range []string{"events", "property", "purchase_event", "revenue_property", "currency", "run_id", "lease_until", "tries"} {
		if _, ok := churn[absent]; ok {
			t.Errorf("a churn prediction shows %q: %v", absent, churn)
		}
	}
	ltv := c.want(201, "POST", base, tn.token, `{"kind":"ltv","key":"predicted_ltv","purchase_event":"Order Completed","revenue_property":"total"}`)
	if ltv["window_days"] != 120.0 || ltv["revenue_property"] != "total" {
		t.Fatalf("created %v", ltv)
	}
	// Train now on a prediction due at once, twice within the second: still due then (its due
	// item is not moved onto itself).
	for range 2 {
		clock.Add(100 * time.Millisecond)
		c.want(202, "POST", base+"/"+ltv["id"].(string)+"/train", tn.token, nil)
	}
	if u := usage(); u != 2 {
		t.Fatalf("usage after two: %v", u)
	}
	r := c.do("POST", base, tn.token, `{"kind":"custom","key":"will_sign_up","events":["Signed Up"],"window_days":15}`)
	if code, _ := r.errorCode(t); r.status != 403 || code != "entitlement_exceeded" {
		t.Fatalf("a third: %d %s", r.status, r.body)
	}

	// The first run, as the dispatcher would start it once the space counts its events (a few
	// seconds after its first prediction): no data, so waiting for it.
	clock.Add(10 * time.Second)
	if err := preds.Dispatch(context.Background(), clock.Now()); err != nil {
		t.Fatal(err)
	}
	got := c.want(200, "GET", base+"/"+id, tn.token, nil)
	reqs, _ := got["requirements"].([]any)
	if got["status"] != "waiting_for_data" || len(reqs) != 5 || got["progress"] != nil {
		t.Fatalf("after its run: %v", got)
	}
	for _, x := range reqs {
		req := x.(map[string]any)
		if req["met"] != false || req["rule"] == "" || req["detail"] == "" {
			t.Errorf("requirement %v", req)
		}
	}
	list := c.want(200, "GET", base, tn.token, nil)["predictions"].([]any)
	if len(list) != 2 {
		t.Fatalf("list %v", list)
	}

	tr := c.want(202, "POST", base+"/"+id+"/train", tn.token, nil)
	if tr["id"] != id || tr["next_run_at"] == nil {
		t.Fatalf("train now: %v", tr)
	}
	c.want(204, "DELETE", base+"/"+id, tn.token, nil)
	for _, m := range []string{"GET", "DELETE"} {
		if r := c.do(m, base+"/"+id, tn.token, nil); r.status != 404 {
			t.Errorf("%s after delete: %d %s", m, r.status, r.body)
		}
	}
	if r := c.do("POST", base+"/"+id+"/train", tn.token, nil); r.status != 404 {
		t.Errorf("train after delete: %d %s", r.status, r.body)
	}
	if u := usage(); u != 1 {
		t.Fatalf("usage after the delete: %v", u)
	}
	if r := c.do("PUT", base+"/"+ltv["id"].(string), tn.token, `{}`); r.status != 405 {
		t.Errorf("PUT a prediction: %d", r.status)
	}
}

// Workspace A's token on every predictions route of B's (and on A's own path with B's space
// and prediction): 403 or 404, nothing of B's in the answer, and B's predictions unchanged.
func TestPredictionsIsolation(t *testing.T) {
	t.Parallel()
	c, _ := newPredictionServer(t, testclock.New(time.Now()))
	a, b := c.newTenant(72), c.newTenant(73)
	bBase := "/v1/workspaces/" + b.ws + "/spaces/" + b.space + "/predictions"
	bp := c.want(201, "POST", bBase, b.token, `{"kind":"churn","key":"likely_to_churn","event":"Order Completed","window_days":30}`)
	bid := bp["id"].(string)
	before := c.want(200, "GET", bBase+"/"+bid, b.token, nil)
	walked := 0
	for _, rt := range (&admin{}).routes() {
		if !strings.Contains(rt.pattern, "/predictions") {
			continue
		}
		for method := range rt.methods {
			for _, ws := range []tenant{b, a} {
				path := strings.NewReplacer("{ws}", ws.ws, "{sp}", b.space, "{id}", bid).Replace(rt.pattern)
				body := any(nil)
				if method == "POST" && strings.HasSuffix(rt.pattern, "/predictions") {
					body = `{"kind":"churn","key":"hijack","event":"Order Completed","window_days":30}`
				}
				r := c.do(method, path, a.token, body)
				if r.status != http.StatusForbidden && r.status != http.StatusNotFound {
					t.Errorf("%s %s with A's token: %d %s", method, path, r.status, r.body)
				}
				r.errorCode(t)
				for _, s := range append(b.secrets, bid, "likely_to_churn") {
					if bytes.Contains(r.body, []byte(s)) && s != b.ws {
						t.Errorf("%s %s leaked %q", method, path, s)
					}
				}
				walked++
			}
		}
	}
	if walked != 10 {
		t.Fatalf("walked %d route/path pairs, want 10 (5 methods × 2 paths)", walked)
	}
	after := c.want(200, "GET", bBase+"/"+bid, b.token, nil)
	if before["status"] != after["status"] || before["next_run_at"] != after["next_run_at"] {
		t.Fatalf("B's prediction changed under A's requests:\n%v\n%v", before, after)
	}
}

// Without the predictions service the routes say so, after the tenant check.
func TestPredictionsNotConfigured(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	tn := c.newTenant(74)
	r := c.do("GET", "/v1/workspaces/"+tn.ws+"/spaces/"+tn.space+"/predictions", tn.token, nil)
	if code, _ := r.errorCode(t); r.status != 500 || code != "predictions_not_configured" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r := c.do("GET", "/v1/workspaces/"+tn.ws+"/spaces/sp_missing/predictions", tn.token, nil); r.status != 404 {
		t.Fatalf("an unknown space: %d %s", r.status, r.body)
	}
}

// A space with a prediction is not deleted (409 space_in_use naming it): its predictions are
// reached through the space, so deleted with it they could be neither seen nor deleted and
// their workspace slots would be lost. Once they are deleted, so can the space be.
func TestDeleteSpaceWithPredictions(t *testing.T) {
	t.Parallel()
	c, _ := newPredictionServer(t, testclock.New(time.Now().UTC()))
	tn := c.newTenant(72)
	second := c.want(201, "POST", "/v1/workspaces/"+tn.ws+"/spaces", tn.token, map[string]any{"name": "Second"})["id"].(string)
	spacePath := "/v1/workspaces/" + tn.ws + "/spaces/" + second
	pred := c.want(201, "POST", spacePath+"/predictions", tn.token,
		map[string]any{"kind": "churn", "key": "likely_to_churn", "event": "Order Completed", "window_days": 30})["id"].(string)
	r := c.do("DELETE", spacePath, tn.token, "")
	if code, _ := r.errorCode(t); r.status != 409 || code != "space_in_use" || !strings.Contains(string(r.body), "likely_to_churn") {
		t.Fatalf("delete a space with a prediction: %d %s, want 409 space_in_use naming it", r.status, r.body)
	}
	c.want(200, "GET", spacePath+"/predictions/"+pred, tn.token, nil) // still there
	c.want(204, "DELETE", spacePath+"/predictions/"+pred, tn.token, nil)
	c.want(204, "DELETE", spacePath, tn.token, nil)
}
