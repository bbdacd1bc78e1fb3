// Package browsersdk holds Segment's analytics-next browser bundle, vendored byte for byte from
// the npm package @segment/analytics-next at Version (dist/umd: the standalone build, the chunks
// it loads on demand, and the gzip copies the package ships), so that a website source loads
// the SDK from this deployment and never from a third-party CDN.
//
// To move to another version: pin it in infra/sdktest/node/package.json, npm install there,
// and run `make vendor-browser-sdk`; infra/sdktest checks the copies against the lockfile's
// package on every `make test`.
package browsersdk

import (
	"embed"
	"io/fs"
	"strings"
)

// Version is the vendored @segment/analytics-next release.
const Version = "1.84.3"

// The URLs the bundle is served at. BundlePath is what the snippet loads; the bundle loads its
// chunks from "<cdn>/analytics-next/bundles/", where <cdn> is the snippet's analytics._cdn
// (this deployment's base URL), so they are served at ChunkPrefix.
const (
	BundlePath  = "/v1/sdk/analytics-next.min.js"
	ChunkPrefix = "/analytics-next/bundles/"
)

// Standalone is the vendored file served at BundlePath.
const Standalone = "standalone.js"

//go:embed dist/*.js dist/*.js.gz
var dist embed.FS

// File is one vendored file, plain and gzipped.
type File struct {
	Name string
	Plain,
	Gzip []byte
	// Immutable files have a content hash in their name (the chunks): caches keep them forever.
	Immutable bool
}

// Open returns the vendored file name (Standalone or a chunk's name), or false.
func Open(name string) (File, bool) {
	if !strings.HasSuffix(name, ".js") || strings.ContainsAny(name, `/\`) {
		return File{}, false
	}
	plain, err := fs.ReadFile(dist, "dist/"+name)
	if err != nil {
		return File{}, false
	}
	gz, err := fs.ReadFile(dist, "dist/"+name+".gz")
	if err != nil {
		return File{}, false
	}
	return File{Name: name, Plain: plain, Gzip: gz, Immutable: strings.Contains(name, ".bundle.")}, true
}

// Names lists the vendored files (without their .gz copies).
func Names() []string {
	entries, _ := fs.ReadDir(dist, "dist")
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".js") {
			out = append(out, e.Name())
		}
	}
	return out
}
