package browsersdk

import (
	"bytes"
	"compress/gzip"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Every chunk the standalone bundle can load on demand is vendored: webpack names each one
// <name>.bundle.<content hash>.js and the bundle holds the table of hashes.
func TestEveryChunkIsVendored(t *testing.T) {
	t.Parallel()
	f, ok := Open(Standalone)
	if !ok {
		t.Fatalf("no %s", Standalone)
	}
	hashes := regexp.MustCompile(`\d+:"([0-9a-f]{20})"`).FindAllSubmatch(f.Plain, -1)
	if len(hashes) == 0 {
		t.Fatal("no chunk hash table in the bundle: has the build changed shape?")
	}
	names := Names()
	for _, h := range hashes {
		found := slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, ".bundle."+string(h[1])+".js") })
		if !found {
			t.Errorf("the bundle loads a chunk with hash %s that is not vendored (have %v)", h[1], names)
		}
	}
	if got, want := len(names), len(hashes)+1; got != want {
		t.Errorf("%d vendored files, want the bundle and its %d chunks", got, len(hashes))
	}
	if !bytes.Contains(f.Plain, []byte(ChunkPrefix)) {
		t.Errorf("the bundle does not load its chunks from %s", ChunkPrefix)
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	for _, name := range Names() {
		f, ok := Open(name)
		if !ok || len(f.Plain) == 0 || f.Immutable != (name != Standalone) {
			t.Errorf("Open(%s): %v, %d bytes, immutable %v", name, ok, len(f.Plain), f.Immutable)
		}
		zr, err := gzip.NewReader(bytes.NewReader(f.Gzip))
		if err != nil {
			t.Fatalf("%s.gz: %v", name, err)
		}
		if b, err := io.ReadAll(zr); err != nil || !bytes.Equal(b, f.Plain) {
			t.Errorf("%s.gz is not %s", name, name)
		}
	}
	for _, name := range []string{"", "standalone.js.gz", "../browsersdk.go", "dist/standalone.js", `a\b.js`, "nope.js", "standalone.js.map"} {
		if _, ok := Open(name); ok {
			t.Errorf("Open(%q) found a file", name)
		}
	}
}
