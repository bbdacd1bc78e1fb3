package lambdatest_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/infra/lambdatest"
)

// TestEchoUnderRIE proves the harness end to end with a throwaway function:
// build the bootstrap, run it under the emulator, invoke it with a sample
// event and an edited copy of it.
func TestEchoUnderRIE(t *testing.T) {
	em := lambdatest.Run(t, "./infra/lambdatest/testdata/echo", map[string]string{"ECHO_ENV": "from-test"})

	get := lambdatest.LoadV2(t, "setup-get-workspace")
	resp := em.InvokeV2(t, get)
	t.Logf("bootstrap %d bytes (built in %v), first invocation %v",
		em.Bootstrap.Size, em.Bootstrap.Build.Round(time.Millisecond), em.FirstInvocation().Round(time.Microsecond))
	if resp.StatusCode != 200 {
		t.Fatalf("statusCode = %d, want 200; body %s", resp.StatusCode, resp.Body)
	}
	got := decodeEcho(t, resp.Body)
	want := echo{Method: "GET", Path: "/v1/workspaces/ws_example", Authorization: "Bearer op_rie_test_operator_token", Env: "from-test"}
	if got != want {
		t.Errorf("echo = %+v, want %+v", got, want)
	}
	if em.FirstInvocation() <= 0 {
		t.Errorf("FirstInvocation = %v, want > 0", em.FirstInvocation())
	}

	// Reuse the realistic event with values "from a previous response".
	post := get.Clone().
		SetMethod("POST").
		SetPath("/v1/workspaces/ws_123/sources").
		SetBody(`{"name":"Website","type":"javascript"}`).
		SetHeader("Authorization", "Bearer tok_from_previous_response").
		SetHeader("Content-Type", "application/json")
	resp = em.InvokeV2(t, post)
	if resp.StatusCode != 200 {
		t.Fatalf("statusCode = %d, want 200; body %s", resp.StatusCode, resp.Body)
	}
	got = decodeEcho(t, resp.Body)
	want = echo{Method: "POST", Path: "/v1/workspaces/ws_123/sources", Body: `{"name":"Website","type":"javascript"}`,
		Authorization: "Bearer tok_from_previous_response", Env: "from-test"}
	if got != want {
		t.Errorf("echo = %+v, want %+v", got, want)
	}
	if get.RequestContext.HTTP.Method != "GET" {
		t.Errorf("Clone shares state: original method is now %q", get.RequestContext.HTTP.Method)
	}

	// A payload the function cannot decode comes back as a function error.
	_, err := em.Invoke(context.Background(), []byte(`"not an event"`))
	var fe *lambdatest.FunctionError
	if !errors.As(err, &fe) {
		t.Errorf("Invoke(bad payload) error = %v, want *FunctionError", err)
	}
}

type echo struct {
	Method, Path, Body, Authorization, Env string
}

func decodeEcho(t *testing.T, body string) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("echo body %q: %v", body, err)
	}
	return e
}

// TestV2EventEdits checks the setters keep API Gateway's copies consistent;
// it needs no emulator.
func TestV2EventEdits(t *testing.T) {
	tests := []struct {
		name       string
		event      string
		edit       func(*lambdatest.V2Event)
		wantParams map[string]string
		wantQuery  map[string]string
	}{
		{
			name:       "proxy route keeps the rest of the path",
			event:      "setup-get-workspace",
			edit:       func(e *lambdatest.V2Event) { e.SetPath("/v1/workspaces/ws_9/sources/src_1/snippet") },
			wantParams: map[string]string{"proxy": "ws_9/sources/src_1/snippet"},
		},
		{
			name:  "query string is split out",
			event: "setup-get-workspace",
			edit: func(e *lambdatest.V2Event) {
				e.SetPath("/v1/workspaces/ws_9/sources/src_1/debugger?search=page&limit=5&limit=6")
			},
			wantParams: map[string]string{"proxy": "ws_9/sources/src_1/debugger"},
			wantQuery:  map[string]string{"search": "page", "limit": "5,6"},
		},
		{
			name:  "path outside the route drops parameters",
			event: "setup-get-workspace",
			edit:  func(e *lambdatest.V2Event) { e.SetPath("/v1/workspaces") },
		},
		{
			name:  "new route",
			event: "setup-create-workspace",
			edit: func(e *lambdatest.V2Event) {
				e.SetPath("/v1/beta/accounts").SetRoute("ANY /v1/beta/{proxy+}")
			},
			wantParams: map[string]string{"proxy": "accounts"},
		},
		{
			name:  "named parameter",
			event: "setup-get-workspace",
			edit: func(e *lambdatest.V2Event) {
				e.SetRoute("GET /v1/workspaces/{ws}/sources/{src}").SetPath("/v1/workspaces/ws_1/sources/src_2")
			},
			wantParams: map[string]string{"ws": "ws_1", "src": "src_2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := lambdatest.LoadV2(t, tt.event)
			tt.edit(e)
			if e.RawPath != e.RequestContext.HTTP.Path {
				t.Errorf("rawPath %q != requestContext.http.path %q", e.RawPath, e.RequestContext.HTTP.Path)
			}
			if !equal(e.PathParameters, tt.wantParams) {
				t.Errorf("pathParameters = %v, want %v", e.PathParameters, tt.wantParams)
			}
			if !equal(e.QueryStringParameters, tt.wantQuery) {
				t.Errorf("queryStringParameters = %v, want %v", e.QueryStringParameters, tt.wantQuery)
			}
		})
	}

	t.Run("body sets content-length", func(t *testing.T) {
		e := lambdatest.LoadV2(t, "setup-create-source").SetBody(`{"name":"Café"}`)
		if got := e.Headers["content-length"]; got != "16" {
			t.Errorf("content-length = %q, want 16 (bytes, not runes)", got)
		}
		if e.SetBody("").Headers["content-length"] != "" {
			t.Errorf("content-length kept for an empty body")
		}
	})

	t.Run("sample events are consistent", func(t *testing.T) {
		for _, name := range []string{"setup-accept-beta", "setup-create-workspace", "setup-get-workspace", "setup-create-source"} {
			e := lambdatest.LoadV2(t, name)
			if e.Version != "2.0" || e.RequestContext.Stage != "$default" || e.RouteKey != e.RequestContext.RouteKey ||
				e.RawPath != e.RequestContext.HTTP.Path || e.Headers["authorization"] != "Bearer op_rie_test_operator_token" {
				t.Errorf("%s: inconsistent sample event", name)
			}
			before := e.PathParameters
			if e.SetPath(e.RawPath); !equal(before, e.PathParameters) {
				t.Errorf("%s: pathParameters %v do not match route %q (derived %v)", name, before, e.RouteKey, e.PathParameters)
			}
			if e.Body != "" {
				if e.Headers["content-type"] != "application/json" || !json.Valid([]byte(e.Body)) {
					t.Errorf("%s: body is not JSON with a JSON content-type", name)
				}
				if before := e.Headers["content-length"]; e.SetBody(e.Body).Headers["content-length"] != before {
					t.Errorf("%s: content-length %s does not match the body", name, before)
				}
			}
		}
	})
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
