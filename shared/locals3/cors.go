package locals3

import (
	"net/http"
	"strings"
)

// CORS as an S3 bucket whose CORS rule names the console's origins answers it:
// AllowedOrigins Config.CORSOrigins, AllowedMethods [POST, PUT] (the browser uploads; the
// same rule as the uploads bucket of template.yaml), AllowedHeaders ["*"], ExposeHeaders
// [ETag, …]. Any other origin gets no CORS header at all, so a web page the user happens to
// visit can neither read an answer nor send a request that needs a preflight (every signed
// request does: it carries an Authorization header).
//
// gofakes3 has a CORS layer of its own that cannot be switched off: it answers every request
// with Access-Control-Allow-Origin "*" and sets Access-Control-Expose-Headers on preflights
// only, where browsers ignore it. This wrapper answers preflights itself and rewrites the
// CORS headers of every other answer just before they are sent (corsWriter), including the
// refusals of post.go and sigv4.go.
const (
	corsAllowMethods  = "POST, PUT"
	corsExposeHeaders = "ETag, x-amz-request-id, x-amz-id-2, x-amz-version-id"
	corsMaxAge        = "3000"
)

var corsAllowedMethod = map[string]bool{"POST": true, "PUT": true}

// corsHeaders are the answer headers the policy owns; whatever else set them is dropped.
var corsHeaders = []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
	"Access-Control-Expose-Headers", "Access-Control-Max-Age", "Access-Control-Allow-Credentials"}

// corsOrigins normalises the allowed origins (scheme://host[:port], no trailing slash).
func corsOrigins(list []string) map[string]bool {
	out := map[string]bool{}
	for _, o := range list {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			out[o] = true
		}
	}
	return out
}

func withCORS(origins map[string]bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := origin != "" && origins[origin]
		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			preflight(w, r, allowed)
			return
		}
		cw := &corsWriter{ResponseWriter: w, origin: origin, allowed: allowed}
		next.ServeHTTP(cw, r)
		if !cw.sent {
			cw.WriteHeader(http.StatusOK) // an answer of headers only (gofakes3's HEAD): fix them too
		}
	})
}

// preflight answers as S3 does: the rule's headers for an allowed origin and method, else
// 403 AccessForbidden without any Access-Control-Allow-* header.
func preflight(w http.ResponseWriter, r *http.Request, allowed bool) {
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	if !allowed || !corsAllowedMethod[r.Header.Get("Access-Control-Request-Method")] {
		writeError(w, r, &s3Error{Status: http.StatusForbidden, Code: "AccessForbidden",
			Message: "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."})
		return
	}
	h.Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req) // AllowedHeaders "*": echo what was asked
	}
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusOK)
}

// corsWriter replaces the CORS headers of an answer with the policy's when the answer's
// headers are sent.
type corsWriter struct {
	http.ResponseWriter
	origin  string
	allowed bool
	sent    bool
}

func (w *corsWriter) WriteHeader(code int) {
	if !w.sent {
		w.sent = true
		h := w.Header()
		for _, k := range corsHeaders {
			h.Del(k)
		}
		if w.origin != "" {
			h.Add("Vary", "Origin")
		}
		if w.allowed {
			h.Set("Access-Control-Allow-Origin", w.origin)
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *corsWriter) Write(p []byte) (int, error) {
	if !w.sent {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *corsWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
