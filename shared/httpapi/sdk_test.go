package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/browsersdk"
	"github.com/unifiedprofiles/up/shared/httpapi"
	"github.com/unifiedprofiles/up/shared/localstack"
	"github.com/unifiedprofiles/up/shared/store/bolt"
)

// The SDK settings name this deployment's host and scheme: http on the local stack, https
// behind API Gateway (X-Forwarded-Proto), UP_PUBLIC_URL when set; only an enabled source's
// key has settings.
func TestSDKSettings(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	src := e.source("javascript")
	host := strings.TrimPrefix(e.base, "http://")
	settingsPath := "/v1/projects/" + src.WriteKey + "/settings"
	for _, tc := range []struct {
		name              string
		hdr               map[string]string
		apiHost, protocol string
	}{
		{"local stack", nil, host + "/v1", "http"},
		{"behind API Gateway", map[string]string{"X-Forwarded-Proto": "https", "Origin": "https://shop.example"}, host + "/v1", "https"},
	} {
		r := e.do("GET", settingsPath, nil, tc.hdr)
		if r.status != 200 {
			t.Fatalf("%s: GET settings: %d %s", tc.name, r.status, r.raw)
		}
		seg := r.body["integrations"].(map[string]any)["Segment.io"].(map[string]any)
		if seg["apiKey"] != src.WriteKey || seg["apiHost"] != tc.apiHost || seg["protocol"] != tc.protocol {
			t.Errorf("%s: Segment.io settings %v, want apiKey, apiHost %s, protocol %s", tc.name, seg, tc.apiHost, tc.protocol)
		}
		plan, _ := r.body["plan"].(map[string]any)
		for _, k := range []string{"track", "identify", "group"} {
			if _, ok := plan[k].(map[string]any); !ok {
				t.Errorf("%s: plan.%s missing: %s", tc.name, k, r.raw)
			}
		}
		if m, _ := r.body["metrics"].(map[string]any); m["sampleRate"] != float64(0) {
			t.Errorf("%s: metrics %v: analytics-next would report to Segment", tc.name, r.body["metrics"])
		}
		if r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: CORS headers %v", tc.name, r.header)
		}
	}

	for name, key := range map[string]string{"unknown key": "wk_nosuchkey", "empty key": ""} {
		if r := e.do("GET", "/v1/projects/"+key+"/settings", nil, nil); r.status != 404 || (key != "" && errCode(r) != "not_found") {
			t.Errorf("%s: %d %s, want 404 not_found", name, r.status, r.raw)
		}
	}
	if r := e.do("PATCH", "/v1/workspaces/"+e.ws+"/sources/"+src.ID, []byte(`{"enabled":false}`), map[string]string{"Authorization": "Bearer " + e.wsTok}); r.status != 200 {
		t.Fatalf("disable the source: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", settingsPath, nil, nil); r.status != 404 {
		t.Errorf("settings of a disabled source: %d %s, want 404", r.status, r.raw)
	}

	// UP_PUBLIC_URL wins over the request.
	pub := newStackWith(t, localstack.Config{PublicURL: "https://api.acme.example/"})
	key := pub.source("kotlin").WriteKey
	if r := pub.do("GET", "/v1/projects/"+key+"/settings", nil, nil); r.status != 200 || !strings.Contains(r.raw, `"apiHost":"api.acme.example/v1","protocol":"https"`) {
		t.Errorf("settings with a public URL: %d %s", r.status, r.raw)
	}
}

// The paths Segment's own SDKs post to are the tracking calls: analytics-next's one-letter
// paths with its text/plain body and writeKey inside it, /v1/b, and analytics-java's
// /v1/import/ (exactly: nothing below it).
func TestSDKPaths(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	src := e.source("javascript")
	plain := map[string]string{"Content-Type": "text/plain"}
	for _, tc := range []struct{ path, body, wantType string }{
		{"/v1/t", `{"type":"track","event":"Clicked","anonymousId":"a1","writeKey":"` + src.WriteKey + `","messageId":"m-t"}`, "track"},
		{"/v1/p", `{"type":"page","name":"Home","anonymousId":"a1","writeKey":"` + src.WriteKey + `","messageId":"m-p"}`, "page"},
		{"/v1/i", `{"type":"identify","userId":"u1","anonymousId":"a1","writeKey":"` + src.WriteKey + `","messageId":"m-i"}`, "identify"},
		{"/v1/g", `{"type":"group","groupId":"g1","userId":"u1","writeKey":"` + src.WriteKey + `","messageId":"m-g"}`, "group"},
		{"/v1/a", `{"type":"alias","userId":"u2","previousId":"u1","writeKey":"` + src.WriteKey + `","messageId":"m-a"}`, "alias"},
		{"/v1/s", `{"type":"screen","name":"Home","userId":"u1","writeKey":"` + src.WriteKey + `","messageId":"m-s"}`, "screen"},
		{"/v1/b", `{"writeKey":"` + src.WriteKey + `","batch":[{"type":"screen","name":"B","userId":"u1","messageId":"m-b"}]}`, "screen"},
		{"/v1/import/", `{"writeKey":"` + src.WriteKey + `","batch":[{"type":"track","event":"Imported","userId":"u1","messageId":"m-imp"}]}`, "track"},
	} {
		r := e.do("POST", tc.path, []byte(tc.body), plain)
		if r.status != 200 || r.body["success"] != true {
			t.Errorf("POST %s: %d %s", tc.path, r.status, r.raw)
			continue
		}
		if d := e.debugger(src.ID, "?limit=1"); len(d) != 1 || d[0]["normalised"].(map[string]any)["type"] != tc.wantType {
			t.Errorf("POST %s: the newest debugger entry is %v, want a %s", tc.path, d, tc.wantType)
		}
	}
	for _, path := range []string{"/v1/import/x", "/v1/tt", "/v1/b/"} {
		if r := e.do("POST", path, []byte(`{}`), plain); r.status != 404 {
			t.Errorf("POST %s: %d, want 404", path, r.status)
		}
	}
	if r := e.do("POST", "/v1/t", []byte(`{"type":"track","event":"x","anonymousId":"a"}`), plain); r.status != 401 || errCode(r) != "invalid_write_key" {
		t.Errorf("POST /v1/t without a key: %d %s", r.status, r.raw)
	}
}

// Any page may send events and read the SDK files (no credentials); only the console's
// origins may call the admin API from a browser; the Profile API takes no browser calls.
func TestCORS(t *testing.T) {
	t.Parallel()
	const console = "https://console.acme.example"
	e := newStackWith(t, localstack.Config{ConsoleOrigins: []string{console + "/", ""}})
	tn := e.tenant

	const page = "https://shop.example"
	for _, path := range []string{"/v1/t", "/v1/batch", "/v1/import/", "/v1/projects/wk_x/settings", browsersdk.BundlePath} {
		r := e.do("OPTIONS", path, nil, map[string]string{"Origin": page, "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "authorization,content-type,x-retry-count"})
		h := r.header
		if r.status != 204 || h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "" ||
			h.Get("Access-Control-Allow-Headers") != "authorization,content-type,x-retry-count" || h.Get("Access-Control-Max-Age") == "" {
			t.Errorf("preflight %s: %d %v", path, r.status, h)
		}
		if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") && !strings.Contains(h.Get("Access-Control-Allow-Methods"), "GET") {
			t.Errorf("preflight %s: methods %q", path, h.Get("Access-Control-Allow-Methods"))
		}
	}
	r := e.do("POST", "/v1/t", []byte(`{}`), map[string]string{"Origin": page})
	if r.header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Errorf("a tracking error answer must be readable by the page: %v", r.header)
	}

	wsPath := "/v1/workspaces/" + tn.ID()
	bearer := map[string]string{"Authorization": "Bearer " + tn.Token}
	for _, tc := range []struct {
		origin     string
		wantStatus int
		allowed    bool
	}{{console, 204, true}, {page, 403, false}} {
		r := e.do("OPTIONS", wsPath+"/sources", nil, map[string]string{"Origin": tc.origin, "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "authorization,content-type"})
		got := r.header.Get("Access-Control-Allow-Origin")
		if r.status != tc.wantStatus || (got == tc.origin) != tc.allowed || got == "*" {
			t.Errorf("admin preflight from %s: %d, Allow-Origin %q; want %d", tc.origin, r.status, got, tc.wantStatus)
		}
		if tc.allowed && (r.header.Get("Access-Control-Allow-Methods") != "OPTIONS, GET, POST" || r.header.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type") {
			t.Errorf("admin preflight: %v", r.header)
		}
		if !tc.allowed && errCode(r) != "origin_not_allowed" {
			t.Errorf("admin preflight from %s: %s", tc.origin, r.raw)
		}
		hdr := map[string]string{"Origin": tc.origin}
		for k, v := range bearer {
			hdr[k] = v
		}
		r = e.do("GET", wsPath, nil, hdr)
		if got := r.header.Get("Access-Control-Allow-Origin"); r.status != 200 || (got == tc.origin) != tc.allowed || !strings.Contains(r.header.Get("Vary"), "Origin") {
			t.Errorf("GET %s from %s: %d, Allow-Origin %q, Vary %q", wsPath, tc.origin, r.status, got, r.header.Get("Vary"))
		}
	}
	r = e.do("OPTIONS", "/v1/spaces/"+tn.SpaceID()+"/collections/users/profiles/user_id:u1/traits", nil, map[string]string{"Origin": console, "Access-Control-Request-Method": "GET"})
	if r.header.Get("Access-Control-Allow-Origin") != "" || r.status < 400 {
		t.Errorf("Profile API preflight: %d %v; the Profile API is for servers", r.status, r.header)
	}
}

// The vendored analytics-next bundle and its chunks: gzip when asked, revalidation by ETag,
// long caching for the hashed chunks, nothing else served from there.
func TestSDKFiles(t *testing.T) {
	t.Parallel()
	e := newTrackingStack(t, httpapi.TrackingOptions{})
	plain, _ := browsersdk.Open(browsersdk.Standalone)

	get := func(path string, hdr map[string]string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", e.base+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		// A bare transport: it neither asks for gzip nor unzips behind the test's back.
		res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	res, body := get(browsersdk.BundlePath, nil)
	if res.StatusCode != 200 || !bytes.Equal(body, plain.Plain) || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") ||
		res.Header.Get("Content-Encoding") != "" || res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("GET bundle: %d %v (%d bytes)", res.StatusCode, res.Header, len(body))
	}
	etag := res.Header.Get("ETag")
	res, body = get(browsersdk.BundlePath, map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	if res.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("GET bundle with gzip: %v", res.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if unzipped, _ := io.ReadAll(zr); !bytes.Equal(unzipped, plain.Plain) {
		t.Error("the gzipped bundle is not the bundle")
	}
	if res, _ = get(browsersdk.BundlePath, map[string]string{"Accept-Encoding": "gzip;q=0"}); res.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}
	if res, _ = get(browsersdk.BundlePath, map[string]string{"If-None-Match": etag}); res.StatusCode != 304 {
		t.Errorf("revalidation with ETag %s: %d, want 304", etag, res.StatusCode)
	}
	for _, name := range browsersdk.Names() {
		if name == browsersdk.Standalone {
			continue
		}
		res, body := get(browsersdk.ChunkPrefix+name, nil)
		f, _ := browsersdk.Open(name)
		if res.StatusCode != 200 || !bytes.Equal(body, f.Plain) || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("GET chunk %s: %d %v", name, res.StatusCode, res.Header)
		}
	}
	for _, path := range []string{browsersdk.ChunkPrefix + "standalone.js.map", browsersdk.ChunkPrefix + "nope.bundle.0.js",
		browsersdk.ChunkPrefix + "..%2Fbrowsersdk.go", "/v1/sdk/other.js"} {
		if res, _ := get(path, nil); res.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", path, res.StatusCode)
		}
	}
}

// GET /health answers 200 while the store answers reads, 503 with Retry-After once it does not.
func TestHealth(t *testing.T) {
	t.Parallel()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mux := httpapi.NewMux()
	httpapi.MountHealth(mux, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &trEnv{t: t, base: srv.URL}
	if r := e.do("GET", "/health", nil, nil); r.status != 200 || r.body["status"] != "ok" || r.body["store"] != "ok" {
		t.Fatalf("GET /health: %d %s", r.status, r.raw)
	}
	st.Close()
	if r := e.do("GET", "/health", nil, nil); r.status != 503 || errCode(r) != "store_unavailable" || r.header.Get("Retry-After") == "" {
		t.Errorf("GET /health with the store closed: %d %v %s", r.status, r.header, r.raw)
	}
}
