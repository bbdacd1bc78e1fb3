package locals3

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Browser-form POST uploads (POST /bucket, multipart/form-data).
//
// This check exists because gofakes3 does not do it: its createObjectBrowserUpload stores
// whatever file a form POST carries, under whatever key, without looking at the policy, the
// signature, the expiry or the content-length-range. A presigned POST would then grant the
// local stack more than it grants in AWS, and tests of refusals would pass for nothing.
//
// It follows AWS's documented POST policy rules (Amazon S3 API Reference, "Authenticating
// Requests in Browser-Based Uploads Using POST (AWS Signature Version 4)" and "Creating a POST
// Policy"):
//
//   - the fields before the file are at most 20 KB (MaxPostPreDataLengthExceeded);
//   - exactly one file, in the field named "file"; fields after it are ignored;
//   - x-amz-algorithm AWS4-HMAC-SHA256, x-amz-credential <key id>/<yyyymmdd>/<region>/s3/
//     aws4_request with this server's key id and region, x-amz-date on the same day;
//   - x-amz-signature = hex(HMAC-SHA256(signing key, policy)), the signing key being
//     HMAC-SHA256 chained over "AWS4"+secret, the date, the region, "s3", "aws4_request";
//   - the policy (base64 JSON) has not expired;
//   - every condition holds: {"field": "value"} and ["eq", "$field", "value"] exact match,
//     ["starts-with", "$field", "prefix"], ["content-length-range", min, max] on the file's
//     size; "bucket" is matched against the bucket of the URL;
//   - every form field except x-amz-signature, file, policy and x-ignore-* is named by a
//     condition ("Extra input fields").
//
// Refusals answer as S3 does: an XML <Error> with S3's code (AccessDenied, SignatureDoesNotMatch,
// InvalidAccessKeyId, EntityTooLarge, EntityTooSmall, …) and status, and nothing is stored.
//
// Not supported: the ${filename} variable in key, success_action_redirect, and signature
// version 2 forms (AWSAccessKeyId + signature), which are refused.

const (
	// maxPreFileBytes bounds the form fields that precede the file (S3: 20 KB); they are
	// held in memory.
	maxPreFileBytes = 20 << 10
	// maxPostObjectBytes bounds a file when the policy has no content-length-range: S3's
	// limit for a POST upload (5 GB). The file goes to a temporary file, not to memory.
	maxPostObjectBytes = 5 << 30

	postAlgorithm = "AWS4-HMAC-SHA256"
	postService   = "s3"
	postTerminal  = "aws4_request"
)

// withPostPolicy checks browser-form uploads before gofakes3 sees them and hands gofakes3 a
// rebuilt request that holds only what was checked. Such a POST is authenticated by its
// policy's signature alone (it carries no Authorization header, as a browser form cannot);
// every other request goes to other, which checks its SigV4 signature.
func (s *Server) withPostPolicy(next, other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bucket, ok := browserUploadBucket(r)
		if !ok {
			other.ServeHTTP(w, r)
			return
		}
		if e := s.browserUpload(w, r, bucket, next); e != nil {
			writeError(w, r, e)
		}
	})
}

// browserUploadBucket reports whether gofakes3's router (routeBase, routeBucket) would send r
// to createObjectBrowserUpload, and for which bucket.
func browserUploadBucket(r *http.Request) (string, bool) {
	if r.Method != http.MethodPost {
		return "", false
	}
	bucket, object, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if bucket == "" || object != "" {
		return "", false
	}
	q := r.URL.Query()
	if q.Get("uploadId") != "" {
		return "", false
	}
	for _, sub := range []string{"uploads", "versioning", "versions", "delete"} {
		if q.Has(sub) {
			return "", false
		}
	}
	if v := q.Get("versionId"); v != "" && v != "null" {
		return "", false
	}
	return bucket, true
}

// formField is one field that preceded the file.
type formField struct {
	name, value string
}

// browserUpload reads the fields, checks them, spools the file (bounded by the policy) into
// a rebuilt form in a temporary file and lets gofakes3 store it.
func (s *Server) browserUpload(w http.ResponseWriter, r *http.Request, bucket string, next http.Handler) *s3Error {
	mr, err := r.MultipartReader()
	if err != nil {
		return errMalformedPOST()
	}
	var (
		fields   []formField
		byName   = map[string]string{} // lower-cased name → value
		budget   = maxPreFileBytes
		filePart *multipart.Part
	)
	for filePart == nil {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "POST requires exactly one file upload per request."}
		}
		if err != nil {
			return errMalformedPOST()
		}
		name := part.FormName()
		if name == "" {
			return errMalformedPOST()
		}
		if name == "file" {
			filePart = part
			break
		}
		budget -= len(name)
		value, err := io.ReadAll(io.LimitReader(part, int64(max(budget, 0))+1))
		if err != nil {
			return errMalformedPOST()
		}
		if budget -= len(value); budget < 0 {
			return &s3Error{Status: http.StatusBadRequest, Code: "MaxPostPreDataLengthExceeded", Message: "Your POST request fields preceding the upload file were too large."}
		}
		lower := strings.ToLower(name)
		if _, dup := byName[lower]; dup {
			return &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: fmt.Sprintf("Field %s appears more than once in the POST request.", name)}
		}
		byName[lower] = string(value)
		fields = append(fields, formField{name, string(value)})
	}

	limits, e := s.checkPolicy(bucket, byName)
	if e != nil {
		return e
	}

	tmp, err := os.CreateTemp("", "locals3-post-*")
	if err != nil {
		return errInternal(err)
	}
	defer func() {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
	}()
	body, size, e := rebuildForm(tmp, fields, filePart, limits)
	if e != nil {
		return e
	}

	// The request gofakes3 sees: the checked key, the metadata fields and the file.
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(body)
	r2.ContentLength = size
	r2.Header.Set("Content-Length", strconv.FormatInt(size, 10))
	r2.Header.Set("Content-Type", body.contentType)
	r2.Form, r2.PostForm, r2.MultipartForm = nil, nil, nil

	sw := &statusWriter{ResponseWriter: w}
	next.ServeHTTP(sw, r2)
	if r2.MultipartForm != nil {
		// gofakes3 parsed r2 itself (spilling files over 24 MB to disk); net/http cleans
		// up only the request it created, so remove those files here.
		_ = r2.MultipartForm.RemoveAll()
	}
	if !sw.wroteHeader {
		// gofakes3 stored the object and wrote nothing (net/http would answer 200): answer
		// as S3 does, by success_action_status (204 by default).
		writePostSuccess(w, r, bucket, byName["key"], byName["success_action_status"])
	}
	return nil
}

// postLimits is the policy's content-length-range.
type postLimits struct{ min, max int64 }

// spooled is the rebuilt multipart body, ready to be read from the start.
type spooled struct {
	*os.File
	contentType string
}

// rebuildForm writes a multipart/form-data body to tmp holding the key, the fields gofakes3
// turns into object metadata (x-amz-meta-*, Content-Type, Content-Disposition,
// Content-Encoding) and the file, which is copied from the request as it arrives and
// refused once it passes limits.max.
func rebuildForm(tmp *os.File, fields []formField, file *multipart.Part, limits postLimits) (*spooled, int64, *s3Error) {
	mw := multipart.NewWriter(tmp)
	for _, f := range fields {
		lower := strings.ToLower(f.name)
		name := ""
		switch {
		case lower == "key":
			name = "key"
		case strings.HasPrefix(lower, "x-amz-meta-"), lower == "content-type", lower == "content-disposition", lower == "content-encoding":
			name = textproto.CanonicalMIMEHeaderKey(f.name)
		default:
			continue // policy, signature fields, acl, success_action_status, x-ignore-*, …
		}
		if err := mw.WriteField(name, f.value); err != nil {
			return nil, 0, errInternal(err)
		}
	}
	filename := file.FileName()
	if filename == "" {
		filename = "file" // net/http treats a part without a filename as a plain value
	}
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": filename}))
	hdr.Set("Content-Type", "application/octet-stream")
	if ct := file.Header.Get("Content-Type"); ct != "" {
		hdr.Set("Content-Type", ct)
	}
	fw, err := mw.CreatePart(hdr)
	if err != nil {
		return nil, 0, errInternal(err)
	}
	n, err := io.Copy(fw, io.LimitReader(file, limits.max+1))
	if err != nil {
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			return nil, 0, errInternal(err)
		}
		return nil, 0, &s3Error{Status: http.StatusBadRequest, Code: "IncompleteBody", Message: "The request body terminated unexpectedly"}
	}
	if n > limits.max {
		return nil, 0, &s3Error{Status: http.StatusBadRequest, Code: "EntityTooLarge", Message: "Your proposed upload exceeds the maximum allowed size", MaxSizeAllowed: &limits.max}
	}
	if n < limits.min {
		return nil, 0, &s3Error{Status: http.StatusBadRequest, Code: "EntityTooSmall", Message: "Your proposed upload is smaller than the minimum allowed size", ProposedSize: &n, MinSizeAllowed: &limits.min}
	}
	if err := mw.Close(); err != nil {
		return nil, 0, errInternal(err)
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, errInternal(err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, 0, errInternal(err)
	}
	return &spooled{File: tmp, contentType: mw.FormDataContentType()}, size, nil
}

// checkPolicy verifies the signature, the expiry and every condition of the policy against
// the fields that preceded the file, and returns the allowed file sizes.
func (s *Server) checkPolicy(bucket string, fields map[string]string) (postLimits, *s3Error) {
	var none postLimits
	if _, ok := fields["key"]; !ok {
		return none, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields."}
	}
	policyB64, hasPolicy := fields["policy"]
	sig, hasSig := fields["x-amz-signature"]
	switch {
	case !hasPolicy && !hasSig:
		// An anonymous POST: allowed by S3 only to a publicly writable bucket.
		return none, errAccessDenied("Access Denied")
	case !hasPolicy:
		return none, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "Bucket POST must contain a field named 'policy'.  If it is specified, please check the order of the fields."}
	case !hasSig:
		return none, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "Bucket POST must contain a field named 'x-amz-signature'.  If it is specified, please check the order of the fields."}
	}
	if alg := fields["x-amz-algorithm"]; alg != postAlgorithm {
		return none, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: fmt.Sprintf("Only %s is supported; x-amz-algorithm is %q.", postAlgorithm, alg)}
	}

	// x-amz-credential: <key id>/<yyyymmdd>/<region>/s3/aws4_request
	cred := strings.Split(fields["x-amz-credential"], "/")
	if len(cred) != 5 || cred[3] != postService || cred[4] != postTerminal {
		return none, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "x-amz-credential must be <key id>/<yyyymmdd>/<region>/s3/aws4_request."}
	}
	keyID, day, region := cred[0], cred[1], cred[2]
	if _, err := time.Parse("20060102", day); err != nil {
		return none, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: fmt.Sprintf("x-amz-credential: invalid date %q.", day)}
	}
	if keyID != s.cfg.AccessKey {
		return none, &s3Error{Status: http.StatusForbidden, Code: "InvalidAccessKeyId", Message: "The AWS Access Key Id you provided does not exist in our records."}
	}
	if region != s.cfg.Region {
		return none, &s3Error{Status: http.StatusBadRequest, Code: "AuthorizationQueryParametersError", Message: fmt.Sprintf("Error parsing the X-Amz-Credential parameter; the region '%s' is wrong; expecting '%s'", region, s.cfg.Region)}
	}
	if date := fields["x-amz-date"]; len(date) < 8 || date[:8] != day {
		return none, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "x-amz-date must be yyyymmddThhmmssZ of the day in x-amz-credential."}
	} else if _, err := time.Parse("20060102T150405Z", date); err != nil {
		return none, &s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: fmt.Sprintf("x-amz-date: invalid date %q.", date)}
	}
	want := hex.EncodeToString(hmacSHA256(signingKey(s.cfg.SecretKey, day, region, postService), []byte(policyB64)))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(sig))) {
		return none, &s3Error{Status: http.StatusForbidden, Code: "SignatureDoesNotMatch", Message: "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	}

	// The signature holds: the policy is the one the key holder wrote.
	pol, e := parsePolicy(policyB64)
	if e != nil {
		return none, e
	}
	if !s.now().Before(pol.expiration) {
		return none, errAccessDenied("Invalid according to Policy: Policy expired.")
	}
	limits := postLimits{min: 0, max: maxPostObjectBytes}
	named := map[string]bool{}
	for _, c := range pol.conditions {
		if c.op == "content-length-range" {
			limits.min, limits.max = max(limits.min, c.min), min(limits.max, c.max)
			continue
		}
		named[c.field] = true
		value := fields[c.field]
		if c.field == "bucket" {
			value = bucket
		}
		if (c.op == "eq" && value != c.value) || (c.op == "starts-with" && !strings.HasPrefix(value, c.value)) {
			return none, errAccessDenied("Invalid according to Policy: Policy Condition failed: " + c.String())
		}
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if named[name] || name == "x-amz-signature" || name == "policy" || strings.HasPrefix(name, "x-ignore-") {
			continue
		}
		return none, errAccessDenied("Invalid according to Policy: Extra input fields: " + name)
	}
	return limits, nil
}

// policy is a decoded POST policy.
type policy struct {
	expiration time.Time
	conditions []condition
}

// condition is one policy condition: eq or starts-with on a (lower-cased) field, or
// content-length-range.
type condition struct {
	op, field, value string
	min, max         int64
}

func (c condition) String() string {
	b, _ := json.Marshal([]string{c.op, "$" + c.field, c.value})
	return strings.ReplaceAll(string(b), `","`, `", "`)
}

// parsePolicy decodes a policy; an invalid one is S3's InvalidPolicyDocument.
func parsePolicy(b64 string) (policy, *s3Error) {
	invalid := func(msg string) *s3Error {
		return &s3Error{Status: http.StatusBadRequest, Code: "InvalidPolicyDocument", Message: "Invalid Policy: " + msg}
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return policy{}, invalid("Policy is not base64.")
	}
	var doc struct {
		Expiration *string            `json:"expiration"`
		Conditions *[]json.RawMessage `json:"conditions"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil {
		return policy{}, invalid("Invalid JSON.")
	}
	if doc.Expiration == nil {
		return policy{}, invalid("Policy missing expiration.")
	}
	exp, err := time.Parse(time.RFC3339, *doc.Expiration)
	if err != nil {
		return policy{}, invalid(fmt.Sprintf("Invalid 'expiration' value: '%s'", *doc.Expiration))
	}
	if doc.Conditions == nil {
		return policy{}, invalid("Policy missing conditions.")
	}
	p := policy{expiration: exp}
	for _, rc := range *doc.Conditions {
		cs, ok := parseCondition(rc)
		if !ok {
			return policy{}, invalid(fmt.Sprintf("Invalid Policy Condition: %s", bytes.TrimSpace(rc)))
		}
		p.conditions = append(p.conditions, cs...)
	}
	return p, nil
}

func parseCondition(rc json.RawMessage) ([]condition, bool) {
	trimmed := bytes.TrimSpace(rc)
	if len(trimmed) == 0 {
		return nil, false
	}
	switch trimmed[0] {
	case '{': // {"field": "value"}: exact match
		var m map[string]string
		if err := json.Unmarshal(trimmed, &m); err != nil || len(m) == 0 {
			return nil, false
		}
		out := make([]condition, 0, len(m))
		for k, v := range m {
			out = append(out, condition{op: "eq", field: strings.ToLower(strings.TrimPrefix(k, "$")), value: v})
		}
		return out, true
	case '[':
		var parts []json.RawMessage
		if err := json.Unmarshal(trimmed, &parts); err != nil || len(parts) != 3 {
			return nil, false
		}
		var op string
		if err := json.Unmarshal(parts[0], &op); err != nil {
			return nil, false
		}
		switch op = strings.ToLower(op); op {
		case "eq", "starts-with":
			var field, value string
			if json.Unmarshal(parts[1], &field) != nil || json.Unmarshal(parts[2], &value) != nil || !strings.HasPrefix(field, "$") {
				return nil, false
			}
			return []condition{{op: op, field: strings.ToLower(field[1:]), value: value}}, true
		case "content-length-range":
			lo, err1 := policyInt(parts[1])
			hi, err2 := policyInt(parts[2])
			if err1 != nil || err2 != nil || lo < 0 || hi < lo {
				return nil, false
			}
			return []condition{{op: op, min: lo, max: hi}}, true
		}
	}
	return nil, false
}

// policyInt reads a number given as a JSON number or a string of digits.
func policyInt(raw json.RawMessage) (int64, error) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
}

// signingKey is SigV4's derived key: HMAC-SHA256 chained over the date, region and service.
func signingKey(secret, day, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(day))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte(postTerminal))
}

func hmacSHA256(key, data []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(data)
	return h.Sum(nil)
}

// statusWriter records whether the wrapped handler wrote anything.
type statusWriter struct {
	http.ResponseWriter
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writePostSuccess answers a stored browser upload as S3 does: success_action_status 200 or
// 201 (with a PostResponse document), else 204; Location names the object.
func writePostSuccess(w http.ResponseWriter, r *http.Request, bucket, key, status string) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	loc := (&url.URL{Scheme: scheme, Host: r.Host, Path: "/" + bucket + "/" + key}).String()
	w.Header().Set("Location", loc)
	switch status {
	case "200":
		w.WriteHeader(http.StatusOK)
	case "201":
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, xml.Header)
		_ = xml.NewEncoder(w).Encode(struct {
			XMLName  xml.Name `xml:"PostResponse"`
			Location string
			Bucket   string
			Key      string
			ETag     string
		}{Location: loc, Bucket: bucket, Key: key, ETag: w.Header().Get("ETag")})
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// s3Error is S3's error document.
type s3Error struct {
	XMLName        xml.Name `xml:"Error"`
	Status         int      `xml:"-"`
	Code           string   `xml:"Code"`
	Message        string   `xml:"Message"`
	ProposedSize   *int64   `xml:"ProposedSize,omitempty"`
	MinSizeAllowed *int64   `xml:"MinSizeAllowed,omitempty"`
	MaxSizeAllowed *int64   `xml:"MaxSizeAllowed,omitempty"`
	RequestID      string   `xml:"RequestId"`
	HostID         string   `xml:"HostId"`
}

func (e *s3Error) Error() string { return e.Code + ": " + e.Message }

func errAccessDenied(msg string) *s3Error {
	return &s3Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: msg}
}

func errMalformedPOST() *s3Error {
	return &s3Error{Status: http.StatusBadRequest, Code: "MalformedPOSTRequest", Message: "The body of your POST request is not well-formed multipart/form-data."}
}

func errInternal(err error) *s3Error {
	return &s3Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: "We encountered an internal error. Please try again. (" + err.Error() + ")"}
}

// writeError writes e as S3 does (no body for HEAD).
func writeError(w http.ResponseWriter, r *http.Request, e *s3Error) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	e.RequestID = strings.ToUpper(hex.EncodeToString(id[:]))
	e.HostID = base64.StdEncoding.EncodeToString(append(id[:], id[:]...))
	h := w.Header()
	h.Set("x-amz-request-id", e.RequestID)
	h.Set("x-amz-id-2", e.HostID)
	h.Set("Content-Type", "application/xml")
	h.Set("Server", "AmazonS3")
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(e)
}
