package localstack

import (
	"fmt"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/infra/pgtest"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/warehouse"
)

// A full queue refuses at once: Send runs inside API requests and the worker itself, and
// the dispatcher sends a refused task again when its sync's lease runs out.
func TestSyncQueueNeverBlocks(t *testing.T) {
	t.Parallel()
	q := newSyncQueue()
	for i := range syncQueueSize {
		if err := q.Send(t.Context(), warehouse.Task{SyncID: fmt.Sprint(i)}); err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- q.Send(t.Context(), warehouse.Task{SyncID: "one too many"}) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a full queue took a task")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send blocked on a full queue")
	}
}

// Reverse ETL over the stack's HTTP API against a real PostgreSQL: the syncs run on the
// stack's own worker, as `make run` runs them, with no test hand on the queue.
func TestReverseETLOverHTTP(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	ctx := t.Context()
	pg.Exec(t,
		"CREATE ROLE retl LOGIN PASSWORD 'right-password'", "GRANT CREATE ON DATABASE postgres TO retl",
		"CREATE TABLE contacts (id integer, email text, name text)", "GRANT SELECT ON contacts TO retl",
		"INSERT INTO contacts SELECT i, 'user' || i || '@example.com', 'Name ' || i FROM generate_series(1, 3) i",
	)
	e := newStackEnv(t)
	src := "/v1/workspaces/" + e.tn.ID() + "/sources/" + e.tn.Source(t, "postgres").ID
	want := func(status int, method, path, body string) map[string]any {
		t.Helper()
		got, out := e.call(method, path, body)
		if got != status {
			t.Fatalf("%s %s: %d %v, want %d", method, path, got, out, status)
		}
		return out
	}
	conn := want(200, "PUT", src+"/warehouse", fmt.Sprintf(`{"host":%q,"port":5432,"database":"postgres","user":"retl","password":"right-password","ssl_mode":"disable"}`, pg.Socket))
	if test, _ := conn["test"].(map[string]any); test["ok"] != true {
		t.Fatalf("connection test: %v", conn)
	}
	pv := want(200, "POST", src+"/models/preview", `{"sql":"SELECT id, email, name FROM contacts ORDER BY id"}`)
	if cols, rows := pv["columns"].([]any), pv["rows"].([]any); len(cols) != 3 || len(rows) != 3 || rows[0].(map[string]any)["email"] != "user1@example.com" {
		t.Fatalf("preview %v", pv)
	}
	model := src + "/models/" + want(201, "POST", src+"/models", `{"name":"Contacts","sql":"SELECT id, email, name FROM contacts","id_column":"id"}`)["id"].(string)
	mp := want(201, "POST", model+"/mappings", `{"identifiers":{"user_id":"id","email":"email"},"traits":{"name":"name"},"schedule":{"interval":"1h"}}`)
	mapping := model + "/mappings/" + mp["id"].(string)
	first, _ := mp["running_sync_id"].(string)
	if first == "" {
		t.Fatalf("an interval schedule starts its first sync at once: %v", mp)
	}
	// wait polls a sync until it ends (the stack's worker runs it in the background).
	wait := func(id string) map[string]any {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			sy := want(200, "GET", mapping+"/syncs/"+id, "")
			if sy["status"] != warehouse.StatusInProgress {
				return sy
			}
			if time.Now().After(deadline) {
				t.Fatalf("sync %s still in progress: %v", id, sy)
			}
		}
	}
	tests := []struct {
		name             string
		before           func()
		trigger          string
		added, succeeded float64
	}{
		{"first", func() {}, warehouse.TriggerFirst, 3, 3},
		{"nothing changed", func() {}, warehouse.TriggerManual, 0, 0},
		{"after a reset", func() { want(204, "POST", mapping+"/reset", "") }, warehouse.TriggerManual, 3, 3},
	}
	for i, tc := range tests { // in order: each sync diffs against the one before
		tc.before()
		id := first
		if i > 0 {
			started := want(202, "POST", mapping+"/syncs", "")
			if started["status"] != warehouse.StatusInProgress {
				t.Fatalf("%s: started %v", tc.name, started)
			}
			id = started["id"].(string)
		}
		sy := wait(id)
		ex, ld := sy["extracted"].(map[string]any), sy["loaded"].(map[string]any)
		if sy["status"] != warehouse.StatusSucceeded || sy["trigger"] != tc.trigger || ex["added"] != tc.added || ld["succeeded"] != tc.succeeded || sy["finished_at"] == nil {
			t.Fatalf("%s: sync %v", tc.name, sy)
		}
	}
	if syncs := want(200, "GET", mapping+"/syncs", "")["syncs"].([]any); len(syncs) != len(tests) {
		t.Fatalf("%d syncs listed, want %d", len(syncs), len(tests))
	}
	// The workspace view shows each mapping's last sync and next run; the step-2 tile of the
	// warehouse source is complete.
	view := want(200, "GET", "/v1/workspaces/"+e.tn.ID(), "")
	maps, _ := view["mappings"].([]any)
	if len(maps) != 1 {
		t.Fatalf("workspace view mappings: %v", view["mappings"])
	}
	last, _ := maps[0].(map[string]any)["last_sync"].(map[string]any)
	if last == nil || last["status"] != warehouse.StatusSucceeded || maps[0].(map[string]any)["next_sync_at"] == nil {
		t.Fatalf("workspace view mapping: %v", maps[0])
	}
	p, err := e.stack.Profiles.Lookup(ctx, e.tn.SpaceID(), identity.Identifier{Type: identity.TypeUserID, Value: "2"})
	if err != nil || p.Traits["name"].Value != "Name 2" {
		t.Fatalf("profile of user 2: %v, %v", p.Traits, err)
	}
	changed := want(200, "PATCH", mapping, `{"traits":{"full_name":"name"},"schedule":{"daily_at":"06:30"}}`)
	if fmt.Sprint(changed["traits"], changed["schedule"], changed["identifiers"]) != "map[full_name:name] map[daily_at:06:30] map[email:email user_id:id]" || changed["next_sync_at"] == nil {
		t.Fatalf("changed %v", changed)
	}
	paused := want(200, "PATCH", mapping, `{"enabled":false}`)
	if paused["enabled"] != false || paused["next_sync_at"] != nil {
		t.Fatalf("paused %v", paused)
	}
	if status, out := e.call("POST", mapping+"/syncs", ""); status != 409 || out["error"].(map[string]any)["code"] != "paused" {
		t.Fatalf("sync of a paused mapping: %d %v", status, out)
	}
	if status, out := e.call("DELETE", model, ""); status != 409 || out["error"].(map[string]any)["code"] != "in_use" {
		t.Fatalf("delete of a mapped model: %d %v", status, out)
	}
	want(204, "DELETE", mapping, "")
	want(204, "DELETE", model, "")
}
