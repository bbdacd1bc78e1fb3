package httpapi

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/unifiedprofiles/up/shared/errcode"
)

// cors is one cross-origin policy (handlers answer CORS themselves, on AWS too: the HTTP API
// has no CorsConfiguration, since API Gateway would apply one policy to every route).
//
// Two policies exist. The tracking API, the SDK settings and the SDK bundle are public, as
// Segment's are: any web page may send events with a write key, which identifies a source
// but protects nothing (it is published in the page). Credentials are never allowed, so no
// cookie rides along. The admin API (and the agent lookup) carry a workspace token: only the
// console's origins may call them from a browser.
type cors struct {
	anyOrigin bool
	origins   map[string]bool
	// headers are the request headers a preflight allows; nil: whatever the browser asks
	// for (public routes: SDKs add their own, e.g. analytics-next's X-Retry-Count).
	headers []string
}

// publicCORS is the policy of the tracking API, the SDK settings and the SDK bundle.
var publicCORS = cors{anyOrigin: true}

// consoleCORS allows the given origins (scheme://host[:port]) to call bearer-token routes.
func consoleCORS(origins []string) cors {
	c := cors{origins: map[string]bool{}, headers: []string{"Authorization", "Content-Type"}}
	for _, o := range origins {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			c.origins[o] = true
		}
	}
	return c
}

// allowed reports whether origin may read the answers.
func (c cors) allowed(origin string) bool {
	return origin != "" && (c.anyOrigin || c.origins[origin])
}

// handle adds the CORS answer headers to h's responses.
func (c cors) handle(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.setOrigin(w, r)
		if c.allowed(r.Header.Get("Origin")) {
			w.Header().Set("Access-Control-Expose-Headers", "Retry-After, ETag")
		}
		h.ServeHTTP(w, r)
	})
}

func (c cors) setOrigin(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	switch {
	case c.anyOrigin:
		w.Header().Set("Access-Control-Allow-Origin", "*")
	case c.allowed(origin):
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
	default:
		w.Header().Add("Vary", "Origin")
	}
}

// preflight answers OPTIONS for a route that allows methods: 204 with the policy, or 403
// origin_not_allowed naming the origin, so that curl users see why browsers refuse.
func (c cors) preflight(methods []string) http.Handler {
	allow := strings.Join(append([]string{"OPTIONS"}, methods...), ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		origin := r.Header.Get("Origin")
		c.setOrigin(w, r)
		if origin != "" && !c.allowed(origin) {
			writeError(w, r, slog.Default(), errcode.New(errcode.Forbidden, "origin_not_allowed",
				"the page's origin (the Origin header) may not call this API from a browser; add it to UP_CONSOLE_ORIGIN (local stack) or the ConsoleOrigin parameter (AWS)"))
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", allow)
		if c.headers != nil {
			h.Set("Access-Control-Allow-Headers", strings.Join(c.headers, ", "))
		} else if asked := strings.Join(r.Header.Values("Access-Control-Request-Headers"), ","); asked != "" {
			// Values, not Get: API Gateway's payload 2.0 joins repeated headers with commas and
			// the Lambda adapter splits them again, so a list arrives as several values.
			h.Set("Access-Control-Allow-Headers", asked)
			h.Add("Vary", "Access-Control-Request-Headers")
		}
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
	})
}
