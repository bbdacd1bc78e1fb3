// Package browsertest drives a real headless Chromium (Debian's chromium package) from Go
// tests with chromedp, and records what the page did on the network and in its console, so a
// test can assert that a page worked as a user's browser would run it.
//
// `make test` installs chromium when it is missing. Without it a test skips with a message,
// except under CI=true, where it fails.
package browsertest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ExecEnv names the browser binary when it is not on the PATH as chromium.
const ExecEnv = "UP_CHROMIUM"

// install is what `make test` runs when chromium is missing.
const install = "apt-get update && apt-get install -y --no-install-recommends chromium"

// Timeout bounds a whole browser session of a test.
const Timeout = 90 * time.Second

// FindChromium returns the browser binary, or skips the test (fails it under CI=true).
func FindChromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(ExecEnv); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "browsertest: no chromium on the PATH (or $" + ExecEnv + "); `make test` installs it: " + install
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIP: " + msg)
	return ""
}

// Request is one network request the page made.
type Request struct {
	Method, URL string
	Status      int64  // 0 until answered, or when it failed
	Failed      string // the network error, when it failed
}

// Tab is one browser tab: Ctx runs chromedp actions in it.
type Tab struct {
	Ctx context.Context

	mu       sync.Mutex
	requests map[network.RequestID]*Request
	order    []network.RequestID
	console  []string // console messages and uncaught exceptions, "type: text"
}

// New starts a headless Chromium for t (closed at cleanup) and opens a tab in it.
func New(t testing.TB) *Tab {
	t.Helper()
	path := FindChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI, where Chromium's sandbox refuses to start
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), Timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab := &Tab{requests: map[network.RequestID]*Request{}}
	// chromedp enables the Network and Runtime domains of every tab; the listener sees their events.
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf), chromedp.WithListener(tab.record))
	t.Cleanup(func() { cancelTab(); cancelAlloc(); cancelTimeout() })
	tab.Ctx = tabCtx
	if err := chromedp.Do(tabCtx); err != nil { // starts the browser and opens the tab
		t.Fatalf("browsertest: start %s: %v", path, err)
	}
	return tab
}

func (tab *Tab) record(ev any) {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if _, ok := tab.requests[ev.RequestID]; !ok {
			tab.order = append(tab.order, ev.RequestID)
		}
		tab.requests[ev.RequestID] = &Request{Method: ev.Request.Method, URL: ev.Request.URL}
	case *network.EventResponseReceived:
		if r := tab.requests[ev.RequestID]; r != nil {
			r.Status = ev.Response.Status
		}
	case *network.EventLoadingFailed:
		if r := tab.requests[ev.RequestID]; r != nil {
			r.Failed = ev.ErrorText
			if ev.CorsErrorStatus != nil {
				r.Failed += " (CORS: " + string(ev.CorsErrorStatus.CorsError) + ")"
			}
		}
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			if a.Value != nil {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		tab.console = append(tab.console, string(ev.Type)+": "+strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		tab.console = append(tab.console, "exception: "+text)
	}
}

// Requests returns the page's requests so far, in the order they were sent.
func (tab *Tab) Requests() []Request {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	out := make([]Request, 0, len(tab.order))
	for _, id := range tab.order {
		out = append(out, *tab.requests[id])
	}
	return out
}

// Console returns the console messages and uncaught exceptions so far.
func (tab *Tab) Console() []string {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return append([]string(nil), tab.console...)
}

// Errors lists what went wrong in the page: console errors, uncaught exceptions, failed
// requests (CORS refusals included) and answers of 400 or more.
func (tab *Tab) Errors() []string {
	var out []string
	for _, c := range tab.Console() {
		if strings.HasPrefix(c, "error: ") || strings.HasPrefix(c, "exception: ") {
			out = append(out, c)
		}
	}
	for _, r := range tab.Requests() {
		switch {
		case r.Failed != "":
			out = append(out, fmt.Sprintf("%s %s failed: %s", r.Method, r.URL, r.Failed))
		case r.Status >= 400:
			out = append(out, fmt.Sprintf("%s %s answered %d", r.Method, r.URL, r.Status))
		}
	}
	return out
}

// Foreign lists the requests to any origin but the allowed ones (data: URLs aside): a page
// under test must not reach a third party.
func (tab *Tab) Foreign(allowed ...string) []string {
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[Origin(a)] = true
	}
	var out []string
	for _, r := range tab.Requests() {
		if strings.HasPrefix(r.URL, "data:") || ok[Origin(r.URL)] {
			continue
		}
		out = append(out, r.Method+" "+r.URL)
	}
	return out
}

// Origin is scheme://host[:port] of a URL.
func Origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

// Navigate opens url in the tab and waits for it to load.
func (tab *Tab) Navigate(url string) error {
	return chromedp.Do(tab.Ctx, chromedp.Navigate(url))
}

// Eval evaluates a JavaScript expression in the page, awaiting it if it is a promise, and
// returns its value as JSON.
func (tab *Tab) Eval(js string) ([]byte, error) {
	return chromedp.Run(tab.Ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
}

// WaitFor polls a JavaScript condition until it is true or the timeout passes.
func (tab *Tab) WaitFor(js string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		v, err := tab.Eval("!!(" + js + ")")
		if err == nil && string(v) == "true" {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("%s: %w", js, err)
			}
			return fmt.Errorf("%s stayed false for %s", js, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
