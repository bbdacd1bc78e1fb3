package locals3

import (
	"net/http"
	"strings"
)

// withIfMatch makes GET and HEAD honour If-Match, as S3 does (412 PreconditionFailed when
// the stored object's ETag is another), which gofakes3 ignores: it would serve whatever is
// stored now. A reader that pins the object it validated (objects/s3 sends the ETag of the
// object-created event) must never be handed a replacement.
//
// The check is made on the answer gofakes3 is about to send: the ETag header it sets and the
// body it streams come from one read of the bolt backend, so there is no window between
// checking and reading in which a new upload could slip in.
func withIfMatch(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := r.Header.Get("If-Match")
		if want == "" || r.Method != http.MethodGet && r.Method != http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		iw := &ifMatchWriter{ResponseWriter: w, r: r, want: want}
		next.ServeHTTP(iw, r)
		if !iw.decided {
			iw.WriteHeader(http.StatusOK) // gofakes3 answers HEAD by setting headers only
		}
	})
}

// ifMatchWriter turns a successful answer into 412 when its ETag is not one If-Match lists;
// the refused body is dropped.
type ifMatchWriter struct {
	http.ResponseWriter
	r       *http.Request
	want    string
	decided bool
	refused bool
}

func (w *ifMatchWriter) WriteHeader(code int) {
	if w.decided {
		if !w.refused {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	w.decided = true
	if code >= 200 && code < 300 && !etagListed(w.want, w.Header().Get("ETag")) {
		w.refused = true
		h := w.Header()
		for _, k := range []string{"ETag", "Content-Length", "Content-Range", "Last-Modified", "Accept-Ranges", "x-amz-version-id"} {
			h.Del(k)
		}
		writeError(w.ResponseWriter, w.r, &s3Error{Status: http.StatusPreconditionFailed, Code: "PreconditionFailed",
			Message: "At least one of the pre-conditions you specified did not hold"})
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *ifMatchWriter) Write(p []byte) (int, error) {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	if w.refused {
		return len(p), nil // the replaced object's bytes go nowhere
	}
	return w.ResponseWriter.Write(p)
}

func (w *ifMatchWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// etagListed reports whether etag is one of the If-Match list ("*" matches any object).
func etagListed(list, etag string) bool {
	etag = strings.Trim(strings.TrimPrefix(strings.TrimSpace(etag), "W/"), `"`)
	for _, v := range strings.Split(list, ",") {
		v = strings.TrimSpace(v)
		if v == "*" || etag != "" && strings.Trim(strings.TrimPrefix(v, "W/"), `"`) == etag {
			return true
		}
	}
	return false
}
