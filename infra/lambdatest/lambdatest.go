// Package lambdatest runs a function's real bootstrap binary under the AWS
// Lambda Runtime Interface Emulator (RIE), so tests exercise the same wiring
// (environment, lambda.Start, the API Gateway adapter) that runs in AWS.
//
// A typical test:
//
//	em := lambdatest.Run(t, "setup", map[string]string{"UP_TABLE_NAME": table})
//	ev := lambdatest.LoadV2(t, "setup-create-workspace")
//	resp := em.InvokeV2(t, ev)
//	next := lambdatest.LoadV2(t, "setup-get-workspace").SetPath("/v1/workspaces/" + id)
//
// The emulator binary is looked up in $UP_RIE, then <module root>/bin/aws-lambda-rie
// (installed by `make test`), then PATH. Without it the test is skipped, or
// fails when CI=true so that CI never silently skips these tests.
package lambdatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/unifiedprofiles/up/shared/testlog"
)

// RIEVersion is the emulator version `make test` installs.
const RIEVersion = "v0.0.0-20261030222936-bef5c4ba774d"

const rieInstall = "GOBIN=$(pwd)/bin go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@" + RIEVersion

// ModuleRoot returns the directory holding go.mod, found by walking up from
// the test's working directory (go test runs each package in its own folder).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("lambdatest: working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("lambdatest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// FindRIE returns the path of the aws-lambda-rie binary. When there is none it
// skips the test, or fails it if CI=true.
func FindRIE(t testing.TB) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("lambdatest: the Lambda Runtime Interface Emulator runs on Linux only (this is %s)", runtime.GOOS)
	}
	if p := os.Getenv("UP_RIE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("lambdatest: UP_RIE=%s: %v", p, err)
		}
		return p
	}
	if p := filepath.Join(ModuleRoot(t), "bin", "aws-lambda-rie"); isExecutable(p) {
		return p
	}
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p
	}
	msg := "lambdatest: aws-lambda-rie not found (looked at $UP_RIE, <module root>/bin/aws-lambda-rie, PATH). " +
		"Run `make test`, which installs it, or install it yourself: " + rieInstall
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Bootstrap is a function binary built for the host architecture.
type Bootstrap struct {
	Name  string        // function name, e.g. "setup"
	Path  string        // absolute path of the file named bootstrap
	Size  int64         // bytes on disk
	Build time.Duration // wall time of go build (mostly the build cache's doing)
}

// Build compiles a function's bootstrap into a temporary directory that lives
// as long as t. target is a function name ("setup" → ./functions/setup) or a
// package path relative to the module root starting with "./".
//
// Tests build for the host architecture so the RIE can run the binary;
// deployment builds arm64 (template.yaml).
func Build(t testing.TB, target string) Bootstrap {
	t.Helper()
	pkg := target
	if !strings.HasPrefix(pkg, "./") {
		pkg = "./functions/" + target
	}
	out := filepath.Join(t.TempDir(), "bootstrap")
	// The same flags as make build: stripped (-s -w keeps stack traces, drops the DWARF).
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = ModuleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lambdatest: go build %s: %v\n%s", pkg, err, b)
	}
	took := time.Since(start)
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatalf("lambdatest: %v", err)
	}
	return Bootstrap{Name: filepath.Base(pkg), Path: out, Size: fi.Size(), Build: took}
}

// Run finds the emulator, builds target (see Build) and starts it with env.
// The emulator is looked for first so a machine without it skips at once.
func Run(t testing.TB, target string, env map[string]string) *Emulator {
	t.Helper()
	FindRIE(t)
	return Start(t, Build(t, target), env)
}

// Emulator is one running aws-lambda-rie with one function: like a single
// Lambda execution environment, it handles one invocation at a time.
type Emulator struct {
	Bootstrap Bootstrap
	URL       string // invocation endpoint

	t      testing.TB
	cmd    *exec.Cmd
	out    *testlog.Buffer
	done   chan struct{} // closed when the process has exited
	client *http.Client

	mu    sync.Mutex // serialises invocations, guards the fields below
	count int
	first time.Duration
}

// Start runs the emulator on free loopback ports with b as the function and
// waits until it accepts invocations. The function starts on the first
// Invoke, as a cold start does in Lambda. The emulator is stopped when t ends;
// if t failed, the emulator's output (including the function's) is logged.
//
// The function sees only env plus Lambda-like defaults, not the test's
// environment, so a developer's AWS profile or CA bundle cannot leak in:
// AWS_REGION=us-east-1 and dummy credentials unless env overrides them, and
// AWS_LAMBDA_FUNCTION_TIMEOUT=10 as in template.yaml.
func Start(t testing.TB, b Bootstrap, env map[string]string) *Emulator {
	t.Helper()
	rie := FindRIE(t)
	home := t.TempDir()

	var lastOut string
	for attempt := 0; attempt < 3; attempt++ {
		// The emulator serves invocations on one port and the Runtime API for
		// the function on another; the latter defaults to 127.0.0.1:9001,
		// which would collide between parallel test packages.
		addr, apiAddr := freeAddr(t), freeAddr(t)
		em := &Emulator{
			Bootstrap: b,
			URL:       "http://" + addr + "/2015-03-31/functions/function/invocations",
			t:         t,
			out:       &testlog.Buffer{},
			done:      make(chan struct{}),
			client:    &http.Client{Transport: &http.Transport{}},
		}
		em.cmd = exec.Command(rie,
			"--runtime-interface-emulator-address", addr,
			"--runtime-api-address", apiAddr,
			b.Path)
		// The emulator runs the bootstrap in its own working directory, the
		// equivalent of /var/task.
		em.cmd.Dir = filepath.Dir(b.Path)
		em.cmd.Env = functionEnv(b, home, env)
		em.cmd.Stdout = em.out
		em.cmd.Stderr = em.out
		if err := em.cmd.Start(); err != nil {
			t.Fatalf("lambdatest: start %s: %v", rie, err)
		}
		go func() {
			em.cmd.Wait()
			close(em.done)
		}()

		if err := em.waitReady(10*time.Second, addr, apiAddr); err != nil {
			em.Stop()
			lastOut = em.out.String()
			if errors.Is(err, errExited) {
				// Most likely another process took a port between freeAddr
				// and the emulator's bind; try new ports.
				continue
			}
			t.Fatalf("lambdatest: %v\naws-lambda-rie output:\n%s", err, lastOut)
		}
		t.Cleanup(func() {
			em.Stop()
			if t.Failed() {
				t.Logf("aws-lambda-rie output (%s):\n%s", b.Name, em.out.String())
			}
		})
		return em
	}
	t.Fatalf("lambdatest: aws-lambda-rie exited before it was ready, 3 times; last output:\n%s", lastOut)
	return nil
}

func functionEnv(b Bootstrap, home string, env map[string]string) []string {
	m := map[string]string{
		"PATH":                            os.Getenv("PATH"),
		"HOME":                            home,
		"LAMBDA_TASK_ROOT":                filepath.Dir(b.Path),
		"_HANDLER":                        "bootstrap",
		"AWS_LAMBDA_FUNCTION_NAME":        b.Name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     "10",
		"AWS_REGION":                      "us-east-1",
		"AWS_DEFAULT_REGION":              "us-east-1",
		"AWS_ACCESS_KEY_ID":               "test",
		"AWS_SECRET_ACCESS_KEY":           "test",
		// No instance metadata here; without this a missing credential
		// would cost seconds of IMDS timeouts instead of failing at once.
		"AWS_EC2_METADATA_DISABLED": "true",
	}
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		m["TMPDIR"] = tmp
	}
	for k, v := range env {
		m[k] = v
	}
	// Its presence switches the emulator into Lambda Managed Instances mode.
	delete(m, "AWS_LAMBDA_MAX_CONCURRENCY")
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("lambdatest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

var errExited = errors.New("aws-lambda-rie exited before it was ready")

// waitReady waits until both the invocation endpoint and the Runtime API
// accept connections. Dialing is the only safe probe: any request to the
// invocation path invokes the function, whatever the method.
func (em *Emulator) waitReady(timeout time.Duration, addrs ...string) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-em.done:
			return errExited
		default:
		}
		ready := true
		for _, a := range addrs {
			c, err := net.DialTimeout("tcp", a, 100*time.Millisecond)
			if err != nil {
				ready = false
				break
			}
			c.Close()
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("aws-lambda-rie not ready on %v after %v", addrs, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop asks the emulator to shut down (it kills the function process on
// SIGTERM) and kills it if it has not exited within a few seconds.
func (em *Emulator) Stop() {
	em.client.CloseIdleConnections()
	select {
	case <-em.done:
		return
	default:
	}
	em.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-em.done:
	case <-time.After(5 * time.Second):
		em.cmd.Process.Kill()
		<-em.done
	}
}

// FunctionError is a function's error response ({"errorMessage","errorType"}),
// which the emulator returns with status 200 like the Lambda Invoke API does.
type FunctionError struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("function error %s: %s", e.Type, e.Message)
}

// Invoke sends one event and returns the function's response payload. A
// function error is returned as *FunctionError along with the raw payload.
// Concurrent calls are serialised.
func (em *Emulator) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	em.mu.Lock()
	defer em.mu.Unlock()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, em.URL, bytes.NewReader(event))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := em.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("lambdatest: invoke %s: %w", em.Bootstrap.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("lambdatest: invoke %s: read response: %w", em.Bootstrap.Name, err)
	}
	if em.count == 0 {
		em.first = time.Since(start)
	}
	em.count++
	if resp.StatusCode != http.StatusOK {
		// 502 with an empty body: the function exited or failed during init
		// (e.g. a missing environment variable); its last words are in the output.
		return body, fmt.Errorf("lambdatest: invoke %s: emulator answered %s %s\nlast output:\n%s",
			em.Bootstrap.Name, resp.Status, body, lastLines(em.out.String(), 30))
	}
	if fe := asFunctionError(body); fe != nil {
		return body, fe
	}
	return body, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func asFunctionError(body []byte) *FunctionError {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	if _, ok := m["errorMessage"]; !ok {
		return nil
	}
	if _, ok := m["statusCode"]; ok {
		return nil
	}
	var fe FunctionError
	if json.Unmarshal(body, &fe) != nil {
		return nil
	}
	return &fe
}

// InvokeV2 invokes the function with an API Gateway v2 request and decodes
// the response; any error fails the test.
func (em *Emulator) InvokeV2(t testing.TB, ev *V2Event) events.APIGatewayV2HTTPResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := em.Invoke(ctx, ev.Bytes())
	if err != nil {
		t.Fatalf("%s %s: %v", ev.RequestContext.HTTP.Method, ev.RawPath, err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("%s %s: response is not an API Gateway v2 response: %v\n%s", ev.RequestContext.HTTP.Method, ev.RawPath, err, out)
	}
	return resp
}

// FirstInvocation is the wall time of the first invocation as the client saw
// it: starting the bootstrap process, its init and the first request (a cold
// start). Zero before the first invocation.
func (em *Emulator) FirstInvocation() time.Duration {
	em.mu.Lock()
	defer em.mu.Unlock()
	return em.first
}

// Output returns what the emulator and the function have written so far.
func (em *Emulator) Output() string { return em.out.String() }

// WaitOutput returns the output once it contains every one of want, or as it is after
// timeout: a function's log line reaches the emulator's pipe a moment after its answer, later
// still on a busy machine, so a test reading the output right after Invoke can miss it.
func (em *Emulator) WaitOutput(timeout time.Duration, want ...string) string {
	deadline := time.Now().Add(timeout)
	for {
		out := em.Output()
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(out, w)
		}
		if !missing || time.Now().After(deadline) {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// LoadEvent reads <module root>/events/<name>.json (".json" optional).
func LoadEvent(t testing.TB, name string) []byte {
	t.Helper()
	if !strings.HasSuffix(name, ".json") {
		name += ".json"
	}
	b, err := os.ReadFile(filepath.Join(ModuleRoot(t), "events", name))
	if err != nil {
		t.Fatalf("lambdatest: %v", err)
	}
	return b
}

// V2Event is an API Gateway HTTP API (payload 2.0) request that a test edits
// before invoking: start from a realistic sample and change only what the
// step needs, e.g. an id or a token from a previous response. The setters
// keep the copies API Gateway makes consistent (rawPath and
// requestContext.http.path, pathParameters, content-length).
type V2Event struct {
	events.APIGatewayV2HTTPRequest
}

// LoadV2 loads a sample event from events/ (see LoadEvent).
func LoadV2(t testing.TB, name string) *V2Event {
	t.Helper()
	var ev V2Event
	if err := json.Unmarshal(LoadEvent(t, name), &ev.APIGatewayV2HTTPRequest); err != nil {
		t.Fatalf("lambdatest: events/%s: %v", name, err)
	}
	return &ev
}

// Clone returns a copy whose maps can be edited independently.
func (e *V2Event) Clone() *V2Event {
	c := *e
	c.Headers = cloneMap(e.Headers)
	c.QueryStringParameters = cloneMap(e.QueryStringParameters)
	c.PathParameters = cloneMap(e.PathParameters)
	c.StageVariables = cloneMap(e.StageVariables)
	c.Cookies = append([]string(nil), e.Cookies...)
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// SetMethod sets the HTTP method.
func (e *V2Event) SetMethod(method string) *V2Event {
	e.RequestContext.HTTP.Method = strings.ToUpper(method)
	return e
}

// SetPath sets the path and, after a "?", the query string. pathParameters
// are derived again from the route key; they are dropped when the route no
// longer matches (use SetRoute for a request another route would take).
func (e *V2Event) SetPath(pathAndQuery string) *V2Event {
	path, query, _ := strings.Cut(pathAndQuery, "?")
	e.RawPath = path
	e.RequestContext.HTTP.Path = path
	e.RawQueryString = query
	e.QueryStringParameters = nil
	if query != "" {
		// API Gateway joins repeated parameters with commas.
		if vals, err := url.ParseQuery(query); err == nil {
			e.QueryStringParameters = make(map[string]string, len(vals))
			for k, v := range vals {
				e.QueryStringParameters[k] = strings.Join(v, ",")
			}
		}
	}
	e.PathParameters = routeParams(e.RouteKey, path)
	return e
}

// SetRoute sets the route key (e.g. "ANY /v1/workspaces/{proxy+}") and
// derives pathParameters for the current path.
func (e *V2Event) SetRoute(routeKey string) *V2Event {
	e.RouteKey = routeKey
	e.RequestContext.RouteKey = routeKey
	e.PathParameters = routeParams(routeKey, e.RawPath)
	return e
}

// SetBody sets a plain-text (not base64) body and its content-length.
func (e *V2Event) SetBody(body string) *V2Event {
	e.Body = body
	e.IsBase64Encoded = false
	if body == "" {
		e.DelHeader("content-length")
	} else {
		e.SetHeader("content-length", strconv.Itoa(len(body)))
	}
	return e
}

// SetHeader sets a header; API Gateway v2 sends names in lower case.
func (e *V2Event) SetHeader(name, value string) *V2Event {
	if e.Headers == nil {
		e.Headers = map[string]string{}
	}
	e.Headers[strings.ToLower(name)] = value
	return e
}

// DelHeader removes a header.
func (e *V2Event) DelHeader(name string) *V2Event {
	delete(e.Headers, strings.ToLower(name))
	return e
}

// Bytes returns the event as the JSON payload Lambda receives.
func (e *V2Event) Bytes() []byte {
	b, err := json.Marshal(e.APIGatewayV2HTTPRequest)
	if err != nil {
		// Only strings, maps of strings, numbers and bools: cannot happen
		// unless a test put an unencodable value in the authorizer map.
		panic(fmt.Sprintf("lambdatest: encode event: %v", err))
	}
	return b
}

// routeParams matches path against the path part of routeKey ("ANY
// /v1/workspaces/{proxy+}") and returns its parameters, or nil.
func routeParams(routeKey, path string) map[string]string {
	_, pattern, ok := strings.Cut(routeKey, " ")
	if !ok {
		return nil // $default
	}
	pp := strings.Split(strings.Trim(pattern, "/"), "/")
	sp := strings.Split(strings.Trim(path, "/"), "/")
	params := map[string]string{}
	for i, p := range pp {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "+}") {
			if i >= len(sp) || strings.Join(sp[i:], "/") == "" {
				return nil
			}
			params[p[1:len(p)-2]] = strings.Join(sp[i:], "/")
			return params
		}
		if i >= len(sp) {
			return nil
		}
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if sp[i] == "" {
				return nil
			}
			params[p[1:len(p)-1]] = sp[i]
			continue
		}
		if p != sp[i] {
			return nil
		}
	}
	if len(sp) != len(pp) || len(params) == 0 {
		return nil
	}
	return params
}
