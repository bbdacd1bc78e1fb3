package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/delivery/deliverytest"
	"github.com/unifiedprofiles/up/shared/localstack/localstacktest"
)

// pollUntil polls done every 50 ms for at most d.
func pollUntil(t *testing.T, what string, d time.Duration, done func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := done()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, d, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Issue 17: a crash between commit and delivery loses nothing. Against the binary, as `make
// run` serves it: 500 events are accepted while the destination's webhook answers 503 to
// everything (so nothing can be delivered before the crash, and the jobs are waiting in the
// queue with backed-off due times); the stack is killed with SIGKILL, no shutdown at all; the
// webhook is mended and the stack started again on the same data (the same DynamoDB table on
// DynamoDB). Every accepted message then reaches the webhook, signed, with its messageId.
func TestDeliveryCrashLosesNothing(t *testing.T) {
	t.Parallel()
	bin := buildStack(t)
	data := t.TempDir()
	var stacks []*stack
	t.Cleanup(func() {
		if t.Failed() { // what the stacks had to say
			for i, st := range stacks {
				for _, line := range strings.Split(st.stderr.String(), "\n") {
					if !strings.Contains(line, `"level":"INFO"`) && line != "" {
						t.Logf("stack %d: %s", i+1, line)
					}
				}
			}
		}
	})
	s := start(t, bin, data, anyPort)
	stacks = append(stacks, s)

	const secret = "crash-secret"
	// The webhook answers 503 to every signed request until it is healed.
	recv := deliverytest.New(t, secret, deliverytest.Options{
		Fail:       func([]string) bool { return true },
		FailStatus: http.StatusServiceUnavailable,
	})
	sid := "AC0123456789abcdef0123456789abcdef"
	inv := s.call(t, "POST", "/v1/beta/accounts", s.operator, `{"account_sid":"`+sid+`"}`, 201)
	ws := s.call(t, "POST", "/v1/workspaces", inv["invite_token"].(string), `{"name":"Crash","account_sid":"`+sid+`"}`, 201)
	wsPath, tok := "/v1/workspaces/"+ws["id"].(string), ws["token"].(string)
	writeKey := s.call(t, "POST", wsPath+"/sources", tok, `{"name":"Website","type":"javascript"}`, 201)["write_key"].(string)
	dst := s.call(t, "POST", wsPath+"/destinations", tok, fmt.Sprintf(
		`{"name":"Crash webhook","category":"analytics","type":"webhook","settings":{"url":%q,"secret":%q,"batch_size":20}}`, recv.URL, secret), 201)["id"].(string)
	deliveries := wsPath + "/destinations/" + dst + "/deliveries"

	// 500 messages; 100 on DynamoDB: moto_server as make test starts it copies the whole
	// table for every transaction, and took 5 minutes to accept the 500 (2 cores, 2026-12-02),
	// 7 to 35 s for 100.
	n := 500
	if localstacktest.OnDynamoDB() {
		n = 100
	}
	ids := make([]string, n)
	sent := map[string]bool{}
	for i := range ids {
		ids[i] = fmt.Sprintf("crash-%03d", i)
		sent[ids[i]] = true
	}
	began := time.Now()
	for c := range slices.Chunk(ids, 100) {
		var parts []string
		for _, id := range c {
			parts = append(parts, fmt.Sprintf(`{"type":"track","messageId":%q,"userId":"user-%s","event":"Order Completed","properties":{"id":%q}}`, id, id, id))
		}
		req, _ := http.NewRequest("POST", s.base+"/v1/batch", strings.NewReader(`{"batch":[`+strings.Join(parts, ",")+`]}`))
		req.SetBasicAuth(writeKey, "")
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || strings.Contains(string(b), `"rejected"`) {
			t.Fatalf("batch: %d %s", res.StatusCode, b)
		}
	}
	t.Logf("%d events accepted in %v", n, time.Since(began).Round(time.Millisecond))
	// Attempts were made and refused: the jobs are queued for a retry. Kill at once, while
	// the backoff is short (1 s, doubling), so that the retries after the restart are due soon.
	pollUntil(t, "a refused attempt in the record", 30*time.Second, func() (bool, string) {
		d := s.call(t, "GET", deliveries, tok, "", 200)
		return d["failed"].(float64) >= 1, fmt.Sprint(d)
	})
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-s.done
	s.done <- nil // for start's cleanup
	// A request the dead process sent may still be in the receiver's hands (under -race the
	// test process is slow to serve it): it must be refused too, or its messages would count
	// as delivered although the stack that sent them never learnt it. Wait until the
	// receiver has been idle a while before mending it.
	recv.CloseClientConnections()
	pollUntil(t, "the receiver idle after the kill", 10*time.Second, func() (bool, string) {
		return recv.Quiet(300 * time.Millisecond), "requests still coming"
	})
	before := recv.Failed()
	if before == 0 || recv.Distinct() != 0 {
		t.Fatalf("before the crash: %d requests refused, %d messages delivered; want some refused and none delivered", before, recv.Distinct())
	}

	recv.Heal()
	again := start(t, bin, data, anyPort)
	stacks = append(stacks, again)
	pollUntil(t, "every message at the webhook after the restart", 60*time.Second, func() (bool, string) {
		return recv.Distinct() == n, fmt.Sprintf("%d of %d", recv.Distinct(), n)
	})
	t.Logf("every message delivered %v after the kill (%d requests refused before it)", time.Since(killed).Round(time.Millisecond), before)

	// At least once: a message may arrive more than once, so repeats are allowed; a
	// messageId never sent is not, nor is an unsigned request. On bbolt none is expected:
	// nothing could be delivered before the crash, a retry's move of its jobs to their next
	// due time is one commit there, and the restarted stack is not killed again. On DynamoDB
	// the move is single writes, the new item before the old one is deleted (queue.go,
	// settle): a kill between the two leaves the job queued twice, and it is sent twice.
	count := recv.Counts()
	for _, id := range ids {
		if count[id] == 0 {
			t.Errorf("%s never arrived", id)
		}
	}
	for id, k := range count {
		if !sent[id] {
			t.Errorf("a messageId never sent arrived %d times: %q", k, id)
		}
	}
	if bad := recv.BadSig(); bad != 0 {
		t.Errorf("%d requests with a wrong X-Signature", bad)
	}
	// The record counts every delivery the webhook took: n on bbolt, n and the repeats on
	// DynamoDB. Its "retrying" is not checked: a kill between an attempt's record and the
	// queue's update leaves retries counted as started that never end (read.go: "a crash
	// between an attempt and its record may skew them a little").
	var d map[string]any
	received := 0
	pollUntil(t, "the record after the restart", 30*time.Second, func() (bool, string) {
		d = again.call(t, "GET", deliveries, tok, "", 200)
		received = recv.Received()
		return d["delivered"] == float64(received), fmt.Sprintf("%v (the webhook took %d)", d, received)
	})
	if received != n {
		var repeated []string
		for id, k := range recv.Counts() {
			if k > 1 {
				repeated = append(repeated, fmt.Sprintf("%s ×%d", id, k))
			}
		}
		slices.Sort(repeated)
		t.Logf("%d deliveries of %d messages: %d repeats: %v", received, n, received-n, repeated)
		if !localstacktest.OnDynamoDB() {
			t.Errorf("%d repeats on bbolt, where none is expected", received-n)
		}
	}
	if d["dead_lettered"] != float64(0) || d["failed"].(float64) < 1 || d["last_delivered_at"] == nil {
		t.Errorf("deliveries after the restart: %v; want none dead-lettered, the refused attempts counted", d)
	}
	t.Logf("deliveries after the restart: %v", d)
}
