package flex

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Sign returns the X-Twilio-Signature Twilio sends for a POST to fullURL with the form params:
// base64(HMAC-SHA1(authToken, fullURL + name1 + value1 + name2 + value2 …)), the names sorted
// byte-wise (Unix-style, case-sensitive). A name sent more than once contributes name+value for
// each distinct value, values sorted (as Twilio's Python and Node helpers do). fullURL is used
// exactly as given, query string included.
func Sign(authToken, fullURL string, params url.Values) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range names {
		vs := append([]string(nil), params[k]...)
		sort.Strings(vs)
		for i, v := range vs {
			if i > 0 && v == vs[i-1] {
				continue
			}
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	h := hmac.New(sha1.New, []byte(authToken))
	h.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// ValidSignature reports whether signature is the X-Twilio-Signature of a POST to fullURL with
// the form params, keyed by authToken. Like twilio-go's RequestValidator it checks two forms of
// the URL, because Twilio is inconsistent about ports: the URL with a port (the one given, or
// :443 for https and :80 otherwise when it has none) and the URL without any port. The
// comparison is constant-time. An empty token or signature is never valid.
func ValidSignature(authToken, fullURL string, params url.Values, signature string) bool {
	if authToken == "" || signature == "" {
		return false
	}
	withPort, withoutPort := portVariants(fullURL)
	// Evaluate both so the time taken does not depend on which one matched.
	a := subtle.ConstantTimeCompare([]byte(Sign(authToken, withPort, params)), []byte(signature))
	b := subtle.ConstantTimeCompare([]byte(Sign(authToken, withoutPort, params)), []byte(signature))
	return a|b == 1
}

// portVariants returns fullURL with a port (unchanged when it has one; :443 added for https,
// :80 for anything else) and without a port (unchanged when it has none), as twilio-go does. A
// rewritten URL is re-serialised by net/url, again as twilio-go does; an unparseable URL is
// returned unchanged in both.
func portVariants(fullURL string) (withPort, withoutPort string) {
	u, err := url.Parse(fullURL)
	if err != nil || u.Host == "" {
		return fullURL, fullURL
	}
	if u.Port() != "" {
		v := *u
		v.Host = strings.TrimSuffix(u.Host, ":"+u.Port())
		return fullURL, v.String()
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	v := *u
	v.Host = u.Host + ":" + strconv.Itoa(port)
	return v.String(), fullURL
}
