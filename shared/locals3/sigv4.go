package locals3

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Every request but a browser-form POST upload (post.go checks its policy signature) must
// carry an AWS Signature Version 4 made with Config.AccessKey and Config.SecretKey, in the
// Authorization header, as S3 requires of a private bucket. gofakes3 checks no signature at
// all, so without this anyone who reaches the port (any web page the user visits, through
// the browser) could list, read, overwrite and delete every tenant's files.
//
// The check follows the SigV4 specification (Amazon S3 API Reference, "Authenticating
// Requests: Using the Authorization Header (AWS Signature Version 4)"), with S3's rules: the
// canonical URI is the path exactly as sent (S3 does not normalise or re-encode it), the
// canonical query is the decoded parameters re-encoded and sorted as the SDKs do, the
// canonical headers are exactly the SignedHeaders the client listed (which must include
// host and every x-amz-* header sent), and x-amz-content-sha256 is required: a hex SHA-256,
// which the body must then match, or UNSIGNED-PAYLOAD. X-Amz-Date must be within 15 minutes
// of the server's clock and on the credential's day; the credential must name the
// configured key, region and the s3 service.
//
// Refused, with S3's error codes: no signature (AccessDenied), query-string signatures
// (presigned URLs: this stack never hands them out, and a presigned URL needs no preflight,
// so a page could use one without CORS ever being asked), signature version 2, and the
// aws-chunked streaming payloads (whose chunk signatures are not checked here).

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	amzDateFormat  = "20060102T150405Z"
	// maxClockSkew is how far X-Amz-Date may be from the server's clock (S3: 15 minutes).
	maxClockSkew = 15 * time.Minute
	// unsignedPayload is the x-amz-content-sha256 of a request whose body is not signed.
	unsignedPayload = "UNSIGNED-PAYLOAD"
	// memoryBodyBytes: a signed body up to this size is checked in memory, a larger one
	// through a temporary file.
	memoryBodyBytes = 1 << 20
)

// withSigV4 lets a request through to next only when its SigV4 signature holds; the body
// then reaches next only once its signed hash is checked.
func (s *Server) withSigV4(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		payloadHash, e := s.verifySigV4(r)
		if e != nil {
			writeError(w, r, e)
			return
		}
		if payloadHash != unsignedPayload {
			body, cleanup, e := checkedBody(r, payloadHash)
			if e != nil {
				writeError(w, r, e)
				return
			}
			defer cleanup()
			r.Body = body
		}
		next.ServeHTTP(w, r)
	})
}

// authHeader is a parsed SigV4 Authorization header.
type authHeader struct {
	keyID, day, region, service, terminal string
	signedHeaders                         []string
	signature                             string
}

// verifySigV4 checks r's signature and returns its x-amz-content-sha256.
func (s *Server) verifySigV4(r *http.Request) (string, *s3Error) {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		q := r.URL.Query()
		if q.Has("X-Amz-Signature") || q.Has("X-Amz-Algorithm") || q.Has("Signature") {
			return "", errAccessDenied("Query-string authentication (presigned URLs) is not accepted by this endpoint; sign the request with the Authorization header (AWS Signature Version 4).")
		}
		return "", errAccessDenied("Access Denied")
	}
	a, e := parseAuthHeader(authz)
	if e != nil {
		return "", e
	}
	if a.keyID != s.cfg.AccessKey {
		return "", &s3Error{Status: http.StatusForbidden, Code: "InvalidAccessKeyId", Message: "The AWS Access Key Id you provided does not exist in our records."}
	}
	if a.region != s.cfg.Region {
		return "", malformedAuth(fmt.Sprintf("the region '%s' is wrong; expecting '%s'", a.region, s.cfg.Region))
	}
	if a.service != postService || a.terminal != postTerminal {
		return "", malformedAuth("the Credential scope must end in /s3/aws4_request")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return "", errAccessDenied("AWS authentication requires a valid X-Amz-Date header (yyyymmddThhmmssZ)")
	}
	if at.Format("20060102") != a.day {
		return "", malformedAuth(fmt.Sprintf("the date in the Credential (%s) is not the day of X-Amz-Date (%s)", a.day, amzDate))
	}
	if skew := s.now().Sub(at); skew > maxClockSkew || skew < -maxClockSkew {
		return "", &s3Error{Status: http.StatusForbidden, Code: "RequestTimeTooSkewed", Message: "The difference between the request time and the current time is too large."}
	}
	if !slices.Contains(a.signedHeaders, "host") {
		return "", errAccessDenied("The host header must be signed.")
	}
	for name := range r.Header {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-amz-") && !slices.Contains(a.signedHeaders, lower) {
			return "", errAccessDenied("There were headers present in the request which were not signed: " + lower)
		}
	}
	payloadHash := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case payloadHash == "":
		return "", &s3Error{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: "Missing required header for this request: x-amz-content-sha256"}
	case payloadHash == unsignedPayload:
	case isHexSHA256(payloadHash):
	case strings.HasPrefix(payloadHash, "STREAMING-"):
		return "", &s3Error{Status: http.StatusNotImplemented, Code: "NotImplemented", Message: "Streaming (aws-chunked) payloads are not supported by this endpoint; send the body with its SHA-256 or UNSIGNED-PAYLOAD."}
	default:
		return "", &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256 in hex."}
	}

	canonical := canonicalRequest(r, a.signedHeaders, payloadHash)
	scope := a.day + "/" + a.region + "/" + postService + "/" + postTerminal
	sum := sha256.Sum256([]byte(canonical))
	stringToSign := sigV4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	want := hex.EncodeToString(hmacSHA256(signingKey(s.cfg.SecretKey, a.day, a.region, postService), []byte(stringToSign)))
	if !hmac.Equal([]byte(want), []byte(a.signature)) {
		return "", &s3Error{Status: http.StatusForbidden, Code: "SignatureDoesNotMatch", Message: "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	}
	return payloadHash, nil
}

// parseAuthHeader reads "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request,
// SignedHeaders=host;x-amz-date, Signature=hex".
func parseAuthHeader(v string) (authHeader, *s3Error) {
	var a authHeader
	rest, ok := strings.CutPrefix(v, sigV4Algorithm+" ")
	if !ok {
		if strings.HasPrefix(v, "AWS ") {
			return a, &s3Error{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."}
		}
		return a, malformedAuth("the Authorization header must start with " + sigV4Algorithm)
	}
	parts := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return a, malformedAuth(fmt.Sprintf("%q is not name=value", strings.TrimSpace(p)))
		}
		parts[k] = val
	}
	cred := strings.Split(parts["Credential"], "/")
	if len(cred) != 5 || parts["SignedHeaders"] == "" || parts["Signature"] == "" {
		return a, malformedAuth("it needs Credential=<key>/<yyyymmdd>/<region>/s3/aws4_request, SignedHeaders and Signature")
	}
	a.keyID, a.day, a.region, a.service, a.terminal = cred[0], cred[1], cred[2], cred[3], cred[4]
	a.signedHeaders = strings.Split(parts["SignedHeaders"], ";")
	a.signature = strings.ToLower(parts["Signature"])
	return a, nil
}

func malformedAuth(why string) *s3Error {
	return &s3Error{Status: http.StatusBadRequest, Code: "AuthorizationHeaderMalformed", Message: "The authorization header is malformed; " + why + "."}
}

// canonicalRequest is SigV4's canonical form of r for S3.
func canonicalRequest(r *http.Request, signed []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	for _, name := range signed {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// canonicalURI is the path as the client sent it: the client signed the escaped path it
// put on the wire, and S3 compares against that, not against a decoded and re-encoded form.
func canonicalURI(r *http.Request) string {
	p := r.RequestURI
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if !strings.HasPrefix(p, "/") { // absolute form (through a proxy): keep the path part
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			p = u.EscapedPath()
		}
	}
	if p == "" {
		return "/"
	}
	return p
}

// canonicalQuery decodes the query and re-encodes it sorted by name, every byte but the
// unreserved ones percent-encoded (a space as %20), as the AWS SDKs do.
func canonicalQuery(raw string) string {
	q, err := url.ParseQuery(raw)
	if err != nil {
		// What cannot be decoded was not signed by an SDK either; the signature will not match.
		return raw
	}
	return strings.ReplaceAll(q.Encode(), "+", "%20")
}

// canonicalHeaderValue is a header's values, each trimmed with inner runs of spaces made
// one, joined by commas. Go moves Host and Transfer-Encoding out of Header.
func canonicalHeaderValue(r *http.Request, name string) string {
	var values []string
	switch name {
	case "host":
		values = []string{r.Host}
	case "content-length":
		values = r.Header.Values("Content-Length")
		if len(values) == 0 && r.ContentLength >= 0 {
			values = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		values = r.TransferEncoding
	default:
		values = r.Header.Values(name)
	}
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

func isHexSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// checkedBody reads r's whole body, checks it against the signed SHA-256 and returns it to
// be read again: nothing is stored unless the body is the one that was signed. gofakes3
// reads exactly Content-Length bytes, so checking at EOF while it reads would never fire.
func checkedBody(r *http.Request, payloadHash string) (io.ReadCloser, func(), *s3Error) {
	h := sha256.New()
	var mem bytes.Buffer
	n, err := io.Copy(io.MultiWriter(h, &mem), io.LimitReader(r.Body, memoryBodyBytes+1))
	if err != nil {
		return nil, nil, &s3Error{Status: http.StatusBadRequest, Code: "IncompleteBody", Message: "The request body terminated unexpectedly"}
	}
	body := io.ReadCloser(io.NopCloser(&mem))
	cleanup := func() {}
	if n > memoryBodyBytes {
		tmp, err := os.CreateTemp("", "locals3-put-*")
		if err != nil {
			return nil, nil, errInternal(err)
		}
		cleanup = func() {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
		if _, err := io.Copy(tmp, &mem); err != nil {
			cleanup()
			return nil, nil, errInternal(err)
		}
		if _, err := io.Copy(io.MultiWriter(h, tmp), r.Body); err != nil {
			cleanup()
			var pathErr *os.PathError
			if errors.As(err, &pathErr) {
				return nil, nil, errInternal(err)
			}
			return nil, nil, &s3Error{Status: http.StatusBadRequest, Code: "IncompleteBody", Message: "The request body terminated unexpectedly"}
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			cleanup()
			return nil, nil, errInternal(err)
		}
		body = io.NopCloser(tmp)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(payloadHash) {
		cleanup()
		return nil, nil, &s3Error{Status: http.StatusBadRequest, Code: "XAmzContentSHA256Mismatch", Message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
	}
	return body, cleanup, nil
}
