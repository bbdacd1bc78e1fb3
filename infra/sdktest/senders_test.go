package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"
)

// ids are what one SDK run sends about; derived from the run id like node/common.mjs does.
type ids struct {
	Run, UserID, GroupID, PreviousID, Email string
}

func idsFor(run string) ids {
	return ids{Run: run, UserID: run + "-user", GroupID: run + "-group", PreviousID: run + "-anon", Email: run + "@example.com"}
}

func newRun(t *testing.T, sdk string) ids {
	return idsFor(sdk + "-" + randomHex(t, 6))
}

// The six calls every sender makes (node/common.mjs sends the same).
var (
	wantTraits = map[string]any{"name": "Ada Lovelace", "plan": "pro", "logins": 3} // plus email: ids.Email
	wantTypes  = []string{"identify", "track", "page", "screen", "group", "alias"}
)

// sent is what a sender reports: the messageId of each call, when the SDK tells it.
type sent struct {
	MessageIDs map[string]string // type → messageId; empty when the SDK does not expose them
	Notes      string            // what the SDK did on the wire, for the log
}

// nodeTimeout bounds one sender script (analytics-node's own flush timeout is 75 s).
const nodeTimeout = 45 * time.Second

// requireNode returns the node binary, or skips (fails under CI=true) when node or the
// installed packages are missing.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not installed")
	}
	for _, pkg := range []string{"@segment/analytics-node", "@rudderstack/rudder-sdk-node"} {
		if _, err := os.Stat(filepath.Join("node", "node_modules", pkg, "package.json")); err != nil {
			missing(t, fmt.Sprintf("infra/sdktest/node/node_modules has no %s: run npm ci --prefix infra/sdktest/node", pkg))
		}
	}
	return node
}

func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI (CI=true) needs it to run the Node SDK tests", what)
	}
	t.Skipf("SKIP: %s; the Node SDK tests are skipped (CI=true fails instead)", what)
}

// nodeSummary is the JSON a sender script prints on stdout.
type nodeSummary struct {
	SDK    string `json:"sdk"`
	UserID string `json:"userId"`
	Sent   []struct {
		Type      string `json:"type"`
		MessageID string `json:"messageId"`
	} `json:"sent"`
	HTTP   []map[string]any `json:"http"`
	Errors []string         `json:"errors"`
}

// sendNode runs node/<script> against e with the ids of run and returns what it reported.
func sendNode(t *testing.T, e *env, script string, run ids) sent {
	t.Helper()
	node := requireNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = "node"
	cmd.Env = append(os.Environ(), "UP_HOST="+e.URL, "UP_WRITE_KEY="+e.WriteKey, "UP_RUN="+run.Run)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("node %s did not finish within %s\nstdout:\n%s\nstderr:\n%s", script, nodeTimeout, stdout.Bytes(), stderr.Bytes())
	}
	if err != nil {
		t.Fatalf("node %s failed (%v): the SDK reported errors\nstdout:\n%s\nstderr:\n%s", script, err, stdout.Bytes(), stderr.Bytes())
	}
	var sum nodeSummary
	out := bytes.TrimSpace(stdout.Bytes())
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("node %s: the summary is not JSON: %v\nstdout:\n%s\nstderr:\n%s", script, err, stdout.Bytes(), stderr.Bytes())
	}
	if sum.UserID != run.UserID || len(sum.Sent) != len(wantTypes) {
		t.Fatalf("node %s sent %d calls for %q, want %d for %q; summary:\n%s", script, len(sum.Sent), sum.UserID, len(wantTypes), run.UserID, out)
	}
	t.Logf("%s: sent in %s; summary: %s", sum.SDK, time.Since(start).Round(time.Millisecond), out)
	s := sent{MessageIDs: map[string]string{}}
	for _, c := range sum.Sent {
		if c.MessageID != "" {
			s.MessageIDs[c.Type] = c.MessageID
		}
	}
	if h, err := json.Marshal(sum.HTTP); err == nil && len(sum.HTTP) > 0 {
		s.Notes = "; the SDK's HTTP exchanges: " + string(h)
	}
	return s
}

// goCallback records analytics-go's per-message outcome.
type goCallback struct {
	mu     sync.Mutex
	ok     map[string]string // type → messageId
	failed []string
	done   chan struct{} // closed when every expected message has an outcome
	want   int
}

func newGoCallback(want int) *goCallback {
	return &goCallback{ok: map[string]string{}, done: make(chan struct{}), want: want}
}

func (c *goCallback) Success(m analytics.Message) { c.record(m, nil) }

func (c *goCallback) Failure(m analytics.Message, err error) { c.record(m, err) }

func (c *goCallback) record(m analytics.Message, err error) {
	typ, id := goMessageID(m)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.failed = append(c.failed, fmt.Sprintf("%s %s: %v", typ, id, err))
	} else {
		c.ok[typ] = id
	}
	if len(c.ok)+len(c.failed) == c.want {
		close(c.done)
	}
}

func goMessageID(m analytics.Message) (typ, id string) {
	switch m := m.(type) {
	case analytics.Identify:
		return m.Type, m.MessageId
	case analytics.Track:
		return m.Type, m.MessageId
	case analytics.Page:
		return m.Type, m.MessageId
	case analytics.Screen:
		return m.Type, m.MessageId
	case analytics.Group:
		return m.Type, m.MessageId
	case analytics.Alias:
		return m.Type, m.MessageId
	}
	return fmt.Sprintf("%T", m), ""
}

// sendGo sends the six calls with analytics-go, configured as a customer would but for the
// endpoint and the write key (and a Callback, to see each message's outcome), then Close()s.
//
// waitBeforeClose is for the retry test: analytics-go abandons a failed batch instead of
// retrying it once Close() has been called (its send loop selects on the closed quit channel),
// so there the batch goes out when it is full (BatchSize 6) and the test waits for every
// message's callback — the retry included — before calling Close().
func sendGo(t *testing.T, e *env, run ids, waitBeforeClose bool) sent {
	t.Helper()
	cb := newGoCallback(len(wantTypes))
	cfg := analytics.Config{Endpoint: e.URL, Callback: cb, Logger: testLogger{t}}
	if waitBeforeClose {
		cfg.BatchSize = len(wantTypes)
	}
	client, err := analytics.NewWithConfig(e.WriteKey, cfg)
	if err != nil {
		t.Fatalf("analytics-go: %v", err)
	}
	// On an early t.Fatal, stop the client before the test ends (its log goes to t).
	t.Cleanup(func() { client.Close() })
	msgs := []analytics.Message{
		analytics.Identify{UserId: run.UserID, Traits: analytics.NewTraits().
			SetName("Ada Lovelace").SetEmail(run.Email).Set("plan", "pro").Set("logins", 3)},
		analytics.Track{UserId: run.UserID, Event: "Order Completed",
			Properties: analytics.NewProperties().SetRevenue(42.5).SetCurrency("USD")},
		analytics.Page{UserId: run.UserID, Name: "Intro",
			Properties: analytics.NewProperties().SetCategory("Docs").SetURL("https://x.test/intro")},
		analytics.Screen{UserId: run.UserID, Name: "Home", Properties: analytics.NewProperties().Set("variant", "a")},
		analytics.Group{UserId: run.UserID, GroupId: run.GroupID, Traits: analytics.NewTraits().SetName("Acme")},
		analytics.Alias{UserId: run.UserID, PreviousId: run.PreviousID},
	}
	start := time.Now()
	for _, m := range msgs {
		if err := client.Enqueue(m); err != nil {
			t.Fatalf("analytics-go: enqueue %T: %v", m, err)
		}
	}
	if waitBeforeClose {
		select {
		case <-cb.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("analytics-go: no outcome for every message within 30 s (batches received: %d)", e.batches.Load())
		}
	}
	if err := client.Close(); err != nil {
		t.Fatalf("analytics-go: close: %v", err)
	}
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if len(cb.failed) > 0 || len(cb.ok) != len(wantTypes) {
		t.Fatalf("analytics-go: %d of %d messages delivered; failures: %s", len(cb.ok), len(wantTypes), strings.Join(cb.failed, "; "))
	}
	t.Logf("analytics-go: delivered %d messages in %s", len(cb.ok), time.Since(start).Round(time.Millisecond))
	ids := map[string]string{}
	for k, v := range cb.ok {
		ids[k] = v
	}
	return sent{MessageIDs: ids}
}

// testLogger routes analytics-go's log to the test's.
type testLogger struct{ t *testing.T }

func (l testLogger) Logf(format string, args ...any) { l.t.Logf("analytics-go: "+format, args...) }
func (l testLogger) Errorf(format string, args ...any) {
	l.t.Logf("analytics-go ERROR: "+format, args...)
}
