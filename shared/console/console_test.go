package console_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/console"
)

func TestServes(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }) // the API's fallback
	console.Mount(mux)
	for _, tc := range []struct {
		method, path string
		status       int
		typ, body    string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `<script type="module" src="/console/app.js">`},
		{"GET", "/console/app.js", 200, "text/javascript; charset=utf-8", "import { api"},
		{"GET", "/console/style.css", 200, "text/css; charset=utf-8", ":root"},
		{"HEAD", "/console/api.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/console/", 404, "", ""},
		{"GET", "/console/nothing.js", 404, "", ""},
		{"GET", "/console/index.html/", 404, "", ""},
		{"POST", "/", http.StatusTeapot, "", ""}, // other methods fall to the API
		{"GET", "/v1/anything", http.StatusTeapot, "", ""},
	} {
		req := httptest.NewRequest(tc.method, "http://up.test/", nil)
		req.URL.Path = tc.path // as sent, uncleaned
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != tc.status || (tc.typ != "" && rec.Header().Get("Content-Type") != tc.typ) || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s %s: %d %q %.60q", tc.method, tc.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
		}
		if tc.status == 200 && (rec.Header().Get("Cache-Control") != "no-cache" || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'self'")) {
			t.Errorf("%s %s: headers %v", tc.method, tc.path, rec.Header())
		}
	}
}

// A path that climbs out of the assets is refused by the handler itself (the mux, in front,
// would redirect it to its cleaned form).
func TestNoFileOutsideTheAssets(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"/console/../console.go", "/console/..%2fconsole.go", "/console/assets/index.html", "/index.html"} {
		req := httptest.NewRequest("GET", "http://up.test/", nil)
		req.URL.Path = p
		rec := httptest.NewRecorder()
		console.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d %.60q", p, rec.Code, rec.Body.String())
		}
	}
}

// Every module the page imports is one of the embedded files, and nothing loads from another
// host: the console works offline.
func TestAssetsAreSelfContained(t *testing.T) {
	t.Parallel()
	dir := "assets"
	imports := regexp.MustCompile(`(?:from|import)\s+"([^"]+)"|src="([^"]+)"|href="([^"#][^"]*)"`)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range imports.FindAllStringSubmatch(string(b), -1) {
			ref := m[1] + m[2] + m[3]
			switch {
			case strings.Contains(ref, "://") || strings.HasPrefix(ref, "//"):
				t.Errorf("%s refers to another host: %s", path, ref)
			case strings.HasPrefix(ref, "./"):
				if _, err := os.Stat(filepath.Join(dir, ref)); err != nil {
					t.Errorf("%s imports %s, which is not embedded", path, ref)
				}
			case strings.HasPrefix(ref, "/console/"):
				if _, err := os.Stat(filepath.Join(dir, strings.TrimPrefix(ref, "/console/"))); err != nil {
					t.Errorf("%s loads %s, which is not embedded", path, ref)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
