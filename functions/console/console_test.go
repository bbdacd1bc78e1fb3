package main

import (
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/infra/lambdatest"
)

// The console function's bootstrap, under the Lambda Runtime Interface Emulator, serves the
// page for the sample API Gateway v2 event, its modules, and 404 for anything else.
func TestConsoleUnderRIE(t *testing.T) {
	t.Parallel()
	em := lambdatest.Run(t, "console", nil)
	page := em.InvokeV2(t, lambdatest.LoadV2(t, "console-page"))
	t.Logf("bootstrap %d bytes, first invocation %v", em.Bootstrap.Size, em.FirstInvocation().Round(time.Microsecond))
	if page.StatusCode != 200 || !strings.HasPrefix(page.Headers["Content-Type"], "text/html") || !strings.Contains(page.Body, `<script type="module" src="/console/app.js">`) {
		t.Fatalf("GET /: %d %v %.200s", page.StatusCode, page.Headers, page.Body)
	}
	if csp := page.Headers["Content-Security-Policy"]; !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("GET /: Content-Security-Policy %q", csp)
	}
	for _, tc := range []struct {
		path, route string
		status      int
		typ, body   string
	}{
		{"/console/app.js", "GET /console/{proxy+}", 200, "text/javascript", "import "},
		{"/console/style.css", "GET /console/{proxy+}", 200, "text/css", "body"},
		{"/console/missing.js", "GET /console/{proxy+}", 404, "", ""},
		{"/console/", "GET /console/{proxy+}", 404, "", ""},
	} {
		ev := lambdatest.LoadV2(t, "console-page").Clone().SetRoute(tc.route).SetPath(tc.path)
		res := em.InvokeV2(t, ev)
		if res.StatusCode != tc.status || !strings.HasPrefix(res.Headers["Content-Type"], tc.typ) || !strings.Contains(res.Body, tc.body) {
			t.Errorf("GET %s: %d %q %.80q", tc.path, res.StatusCode, res.Headers["Content-Type"], res.Body)
		}
	}
}
