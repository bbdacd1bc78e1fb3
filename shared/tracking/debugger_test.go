package tracking_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/tracking"
)

// The debugger's entries are spread over partitions and stored a request per item, and still
// read back as one list: the newest first, across requests of one instant, with a tail that
// resumes exactly after its cursor.
func TestDebuggerReadsBackAcrossItemsAndShards(t *testing.T) {
	t.Parallel()
	e := newSeenEnv(t)
	ctx := context.Background()
	src := e.tenant.Sources[0]
	var sent []string // messageIds, oldest first
	for r := range 9 {
		var batch []any
		for i := range 80 {
			id := fmt.Sprintf("dbg-%d-%02d", r, i)
			batch = append(batch, map[string]any{"type": "track", "event": "E", "anonymousId": fmt.Sprintf("a-%d", i%7), "messageId": id})
			sent = append(sent, id)
		}
		e.send(src, "batch", map[string]any{"batch": batch})
		if r%3 == 0 {
			e.clock.Add(-time.Millisecond) // the next request in the same instant as this one
		}
	}
	slices.Reverse(sent)
	ids := func(entries []tracking.Entry) []string {
		out := make([]string, len(entries))
		for i, en := range entries {
			out[i] = en.Normalised.MessageID
		}
		return out
	}
	got, err := e.svc.Debugger(ctx, e.tenant.Owner, e.tenant.ID(), src.ID, "", tracking.DebuggerSize)
	if err != nil {
		t.Fatal(err)
	}
	if want := sent[:tracking.DebuggerSize]; !slices.Equal(ids(got), want) {
		t.Fatalf("the debugger shows %d entries %v…, want the newest %d, newest first: %v…", len(got), ids(got)[:5], len(want), want[:5])
	}
	// A tail from the 300th newest entry: the 299 newer ones, oldest first.
	tail, err := e.svc.DebuggerSince(ctx, e.tenant.Owner, e.tenant.ID(), src.ID, got[299].Cursor, "")
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(sent[:299])
	slices.Reverse(want)
	if !slices.Equal(ids(tail), want) {
		t.Errorf("the tail after entry 300 has %d entries, want the %d newer ones, oldest first", len(tail), len(want))
	}
	found, err := e.svc.Debugger(ctx, e.tenant.Owner, e.tenant.ID(), src.ID, "dbg-8-07", 10)
	if err != nil || len(found) != 1 || found[0].Normalised.MessageID != "dbg-8-07" {
		t.Errorf("search: %v %v", ids(found), err)
	}
}
