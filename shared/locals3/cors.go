package locals3

import (
	"net/http"
)

// CORS as an S3 bucket with this rule answers it: AllowedOrigins ["*"], AllowedMethods
// [GET, HEAD, PUT, POST, DELETE], AllowedHeaders ["*"], ExposeHeaders [ETag, …].
//
// gofakes3's own CORS (cors.go) answers a preflight with a fixed list of allowed headers and
// sets Access-Control-Expose-Headers on the preflight only, where browsers ignore it: the
// real POST's ETag stays hidden from scripts. This wrapper answers preflights itself (echoing
// the requested headers, as S3 does for AllowedHeaders "*") and exposes ETag on every answer,
// including the POST policy refusals of post.go.
const (
	corsAllowMethods  = "GET, HEAD, PUT, POST, DELETE"
	corsExposeHeaders = "ETag, x-amz-request-id, x-amz-id-2, x-amz-version-id"
	corsMaxAge        = "3000"
)

var corsAllowedMethod = map[string]bool{"GET": true, "HEAD": true, "PUT": true, "POST": true, "DELETE": true}

func withCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if !corsAllowedMethod[r.Header.Get("Access-Control-Request-Method")] {
				writeError(w, r, &s3Error{Status: http.StatusForbidden, Code: "AccessForbidden", Message: "CORSResponse: This CORS request is not allowed."})
				return
			}
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
			}
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusOK)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}
