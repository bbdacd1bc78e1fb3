package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/localstack/localstacktest"
	"github.com/unifiedprofiles/up/shared/testlog"
)

// stack is the local stack binary running as `make run` runs it.
type stack struct {
	cmd      *exec.Cmd
	base     string
	s3       string // the S3 endpoint the banner names
	store    string // where the banner says the data is
	operator string
	done     chan error
	stdout   *testlog.Buffer // still written by the reader goroutine after the banner
	stderr   *testlog.Buffer // the stack's log (JSON lines)
}

func buildStack(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "local")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// anyPort makes the stack bind a port the system picks and name it in its banner: no
// pick-then-bind race with other tests.
const anyPort = "127.0.0.1:0"

// tables holds each data folder's DynamoDB table when the suite runs on DynamoDB
// (localstacktest.EndpointEnv): a stack restarted on the same folder finds its data again.
var tables sync.Map // data folder → table name

// dynamoTable returns the DynamoDB table of the stacks on dataDir, or "" on bbolt.
func dynamoTable(t *testing.T, dataDir string) string {
	t.Helper()
	if !localstacktest.OnDynamoDB() {
		return ""
	}
	if table, ok := tables.Load(dataDir); ok {
		return table.(string)
	}
	_, table := localstacktest.DynamoDB(t)
	tables.Store(dataDir, table)
	return table
}

// start runs the binary and reads the banner for the base URL and the operator token. On
// DynamoDB (localstacktest) the stack gets the data folder's table and no AWS configuration.
func start(t *testing.T, bin, dataDir, addr string, env ...string) *stack {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "UP_DATA_DIR="+dataDir, "UP_ADDR="+addr, "UP_S3_ADDR=127.0.0.1:0", "UP_OPERATOR_TOKEN=",
		"UP_DYNAMODB_ENDPOINT=", "UP_TABLE_NAME=")
	if table := dynamoTable(t, dataDir); table != "" {
		cmd.Env = append(cmd.Env, localstacktest.BinaryEnv(t, os.Getenv(localstacktest.EndpointEnv), table)...)
	}
	cmd.Env = append(cmd.Env, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &stack{cmd: cmd, done: make(chan error, 1), stdout: &testlog.Buffer{}, stderr: logs}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		s.done <- cmd.Wait()
	}()
	deadline := time.After(30 * time.Second)
	for s.base == "" || s.operator == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the stack exited before printing its banner:\n%s", s.stdout.String())
			}
			fmt.Fprintln(s.stdout, line)
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "base URL:"); ok {
				s.base = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "S3 endpoint:"); ok {
				s.s3, _, _ = strings.Cut(strings.TrimSpace(v), " ")
			}
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "store:"); ok {
				s.store = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "operator token:"); ok {
				s.operator = strings.TrimSpace(v)
			}
		case <-deadline:
			t.Fatalf("no banner after 30s:\n%s", s.stdout.String())
		}
	}
	go func() {
		for line := range lines {
			fmt.Fprintln(s.stdout, line)
		}
	}()
	return s
}

func (s *stack) call(t *testing.T, method, path, tok, body string, want int) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, b)
	}
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

// The README walkthrough against the real binary; then Ctrl-C, a restart on the same data
// folder, and everything is still there with the same generated operator token.
func TestReadmeWalkthroughAndRestart(t *testing.T) {
	t.Parallel()
	bin := buildStack(t)
	data := t.TempDir()
	s := start(t, bin, data, anyPort)
	if !strings.HasPrefix(s.base, "http://127.0.0.1:") || strings.HasSuffix(s.base, ":0") || !strings.HasPrefix(s.operator, "upo_") {
		t.Fatalf("banner: base %q operator %q", s.base, s.operator)
	}
	checkStoreInBanner(t, s, data)

	sid := "AC0123456789abcdef0123456789abcdef"
	inv := s.call(t, "POST", "/v1/beta/accounts", s.operator, `{"account_sid":"`+sid+`"}`, 201)
	ws := s.call(t, "POST", "/v1/workspaces", inv["invite_token"].(string), `{"name":"Acme Support","account_sid":"`+sid+`"}`, 201)
	id, tok := ws["id"].(string), ws["token"].(string)
	s.call(t, "PUT", "/v1/workspaces/"+id+"/setup/data-source", tok, `{"kind":"website"}`, 200)
	s.call(t, "POST", "/v1/workspaces/"+id+"/sources", tok, `{"name":"Website","type":"javascript","url":"https://acme.example"}`, 201)
	view := s.call(t, "GET", "/v1/workspaces/"+id, tok, "", 200)
	if got := fmt.Sprint(view["usage"].(map[string]any)["sources"]); got != "map[limit:4 used:1]" {
		t.Fatalf("usage.sources %s", got)
	}

	// Ctrl-C: a clean shutdown, exit status 0.
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("exit after Ctrl-C: %v\n%s", err, s.stdout.String())
		}
		s.done <- nil // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15s after Ctrl-C")
	}

	again := start(t, bin, data, anyPort)
	if again.operator != s.operator {
		t.Fatalf("operator token changed across restarts: %q → %q", s.operator, again.operator)
	}
	after := again.call(t, "GET", "/v1/workspaces/"+id, tok, "", 200)
	if fmt.Sprint(after) != fmt.Sprint(view) {
		t.Fatalf("data changed across the restart:\n%v\n%v", view, after)
	}
	if fi, err := os.Stat(filepath.Join(data, "operator-token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("operator token file: %v %v", fi, err)
	}
}

// checkStoreInBanner checks that the banner says where the data is: the bbolt file in the
// data folder, or the DynamoDB table and endpoint (requests serialised: moto is on loopback).
func checkStoreInBanner(t *testing.T, s *stack, dataDir string) {
	t.Helper()
	if table := dynamoTable(t, dataDir); table != "" {
		want := "DynamoDB table " + table + " at " + os.Getenv(localstacktest.EndpointEnv) + " (us-east-1), one request at a time"
		if !strings.HasPrefix(s.store, want) {
			t.Errorf("banner store %q, want it to begin %q", s.store, want)
		}
		return
	}
	if want := "bbolt " + filepath.Join(dataDir, "up.db"); s.store != want {
		t.Errorf("banner store %q, want %q", s.store, want)
	}
}

// Store settings the stack cannot honour stop it at once, saying which: a table without an
// endpoint would otherwise put the data in bbolt while the developer believes it goes to the
// table.
func TestStoreSettingsRefused(t *testing.T) {
	t.Parallel()
	bin := buildStack(t)
	for _, tc := range []struct{ name, endpoint, table, want string }{
		{"table without endpoint", "", "up-mine", "UP_TABLE_NAME is set (\"up-mine\") but UP_DYNAMODB_ENDPOINT is not"},
		{"endpoint not a URL", "127.0.0.1:5000", "", `DynamoDB endpoint "127.0.0.1:5000": want an http:// or https:// URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(bin)
			cmd.Env = append(os.Environ(), "UP_DATA_DIR="+t.TempDir(), "UP_ADDR="+anyPort, "UP_S3_ADDR="+anyPort,
				"UP_DYNAMODB_ENDPOINT="+tc.endpoint, "UP_TABLE_NAME="+tc.table)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "base URL:") {
				t.Errorf("exit %v, output %q; want a failure saying %q before any banner", err, out, tc.want)
			}
		})
	}
}

func TestOperatorTokenFromEnvironment(t *testing.T) {
	t.Parallel()
	s := start(t, buildStack(t), t.TempDir(), anyPort, "UP_OPERATOR_TOKEN=upo_from_env")
	if s.operator != "upo_from_env" {
		t.Fatalf("operator %q", s.operator)
	}
	s.call(t, "POST", "/v1/beta/accounts", "upo_from_env", `{"account_sid":"AC0123456789abcdef0123456789abcdef"}`, 201)
}

// The banner names GET /health, which answers while the store does; UP_CONSOLE_ORIGIN adds
// browser origins for the admin API to the stack's own, and no other origin gets in.
func TestHealthAndConsoleOrigins(t *testing.T) {
	t.Parallel()
	s := start(t, buildStack(t), t.TempDir(), anyPort, "UP_CONSOLE_ORIGIN=https://console.acme.example")
	if !strings.Contains(s.stdout.String(), s.base+"/health") {
		t.Errorf("the banner does not name %s/health:\n%s", s.base, s.stdout.String())
	}
	if h := s.call(t, "GET", "/health", "", "", 200); h["status"] != "ok" || h["store"] != "ok" {
		t.Errorf("GET /health: %v", h)
	}
	for origin, want := range map[string]int{s.base: 204, "https://console.acme.example": 204, "https://evil.example": 403} {
		req, _ := http.NewRequest("OPTIONS", s.base+"/v1/workspaces", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		allowed := res.Header.Get("Access-Control-Allow-Origin") == origin
		if res.StatusCode != want || allowed != (want == 204) {
			t.Errorf("preflight from %s: %d, Allow-Origin %q; want %d", origin, res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), want)
		}
	}
}

// No identifier value reaches the log: a run that sends, searches and looks up customers by
// email and phone (found and not found, valid and refused) leaves neither in any log line.
func TestLogsHoldNoIdentifierValues(t *testing.T) {
	t.Parallel()
	s := start(t, buildStack(t), t.TempDir(), anyPort)
	const email, phone = "grace.hopper@navy.example", "+14155550199"
	sid := "AC0123456789abcdef0123456789abcdef"
	inv := s.call(t, "POST", "/v1/beta/accounts", s.operator, `{"account_sid":"`+sid+`"}`, 201)
	ws := s.call(t, "POST", "/v1/workspaces", inv["invite_token"].(string), `{"name":"Navy","account_sid":"`+sid+`"}`, 201)
	id, tok := ws["id"].(string), ws["token"].(string)
	space := ws["spaces"].([]any)[0].(map[string]any)["id"].(string)
	key := ws["sources"].([]any)[0].(map[string]any)["write_key"].(string)
	send := func(path, body string, want int) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.base+path, strings.NewReader(body))
		req.SetBasicAuth(key, "")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("POST %s: %d, want %d", path, res.StatusCode, want)
		}
	}
	send("/v1/identify", `{"userId":"gh","traits":{"email":"`+email+`","phone":"`+phone+`"}}`, 200)
	send("/v1/identify", `{"userId":"`+email+`\u0000"}`, 400)
	send("/v1/batch", `{"batch":[{"type":"track","userId":"`+email+`","event":"e","timestamp":"2001-01-01T00:00:00Z"}]}`, 200)
	s.call(t, "GET", "/v1/workspaces/"+id+"/spaces/"+space+"/profiles?identifier=email:"+url.QueryEscape(email), tok, "", 200)
	s.call(t, "GET", "/v1/flex/"+id+"/profiles?email="+url.QueryEscape(email), tok, "", 200)
	s.call(t, "GET", "/v1/flex/"+id+"/profiles?email="+url.QueryEscape("nobody."+email), tok, "", 404)
	s.call(t, "GET", "/v1/flex/"+id+"/profiles?phone="+url.QueryEscape(phone)+"&create=true", tok, "", 201)
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	<-s.done
	s.done <- nil // for the cleanup
	logs := s.stderr.String()
	if !strings.Contains(logs, `"route"`) {
		t.Fatalf("the stack logged no requests: %q", logs)
	}
	for _, v := range []string{email, "grace.hopper", phone, "4155550199"} {
		if strings.Contains(logs, v) {
			t.Errorf("the log holds %q:\n%s", v, logs)
		}
	}
}
