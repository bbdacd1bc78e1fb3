// Package console serves the web console: the guided setup, the event debugger and the
// profile explorer, as plain ES modules embedded in the binary (no build step, no CDN, works
// offline). The console runs in the browser on nothing but the public API (ARCHITECTURE.md
// section 5): it signs in with a workspace token, which it keeps in the tab's session storage.
package console

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// Prefix is where the console's files are served; "/" serves its page.
const Prefix = "/console/"

// policy keeps the page to its own scripts and styles. connect-src stays open: the CSV upload
// posts the file straight to the presigned S3 URL, whose host is the deployment's bucket.
const policy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src *; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Mount adds GET / (the console's page) and GET /console/{file} to mux.
func Mount(mux *http.ServeMux) {
	h := Handler()
	mux.Handle("GET /{$}", h)
	mux.Handle("GET "+Prefix, h)
}

// Handler serves the page at / and the files under Prefix; anything else is 404.
func Handler() http.Handler {
	files, _ := fs.Sub(assets, "assets")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "index.html"
		if r.URL.Path != "/" {
			rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
			if !ok || rest == "" || strings.Contains(rest, "..") {
				http.NotFound(w, r)
				return
			}
			name = rest
		}
		body, err := fs.ReadFile(files, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		typ := mime.TypeByExtension(path.Ext(name))
		if path.Ext(name) == ".js" { // some systems' MIME tables lack it; modules need it exact
			typ = "text/javascript; charset=utf-8"
		}
		w.Header().Set("Content-Type", typ)
		// A deployment changes the files under the same names: revalidate every time.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", policy)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if r.Method == http.MethodHead {
			return
		}
		w.Write(body)
	})
}
