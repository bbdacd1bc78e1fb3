package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAcceptsGzip(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "br, gzip;q=0.8": true, "gzip;q=0": false, "gzip; q=0.0": false,
		"deflate, br": false, "x-gzip": false, "gzip;q=1.0, identity": true, "gzip;q=abc": false, "*": false,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", header)
		if got := acceptsGzip(r); got != want {
			t.Errorf("Accept-Encoding %q: acceptsGzip %v, want %v", header, got, want)
		}
	}
}

// Whatever the header, acceptsGzip answers without panicking, and never says yes to a header
// that does not name gzip.
func FuzzAcceptsGzip(f *testing.F) {
	for _, seed := range []string{"gzip", "br, gzip;q=0.8", "gzip;q=0", ";;,,q=", "gzip;q=1e400", "GZip ; Q=0.5"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Accept-Encoding"] = []string{header}
		if acceptsGzip(r) && !strings.Contains(strings.ToLower(header), "gzip") {
			t.Fatalf("acceptsGzip(%q) is true", header)
		}
	})
}
