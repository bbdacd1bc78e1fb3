// Package httpapi is the HTTP face of the domain packages: routes, authentication, request
// decoding and the one error envelope. Domain error kinds become statuses here and only here.
package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"strings"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/jsoncheck"
	"github.com/unifiedprofiles/up/shared/store"
)

// MaxBodyBytes bounds every request body of the admin API.
const MaxBodyBytes = 1 << 20

var statusOf = map[errcode.Kind]int{
	errcode.Internal:     http.StatusInternalServerError,
	errcode.Invalid:      http.StatusBadRequest,
	errcode.Unauthorized: http.StatusUnauthorized,
	errcode.Forbidden:    http.StatusForbidden,
	errcode.NotFound:     http.StatusNotFound,
	errcode.Conflict:     http.StatusConflict,
	errcode.TooLarge:     http.StatusRequestEntityTooLarge,
	errcode.RateLimited:  http.StatusTooManyRequests,
	errcode.Unavailable:  http.StatusServiceUnavailable,
	errcode.Timeout:      http.StatusRequestTimeout,
}

// Bounds of an error answer. Values a caller sent are clipped where they are quoted
// (errcode.Clip); these bound the whole message and field as well, whatever they quote.
const (
	maxErrorMessage = 1024
	maxErrorField   = 2 * errcode.MaxEcho
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// writeError answers with the error envelope. Errors that are not domain errors are bugs or
// outages: they are logged and answered with a generic 500, never with their text.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := errcode.As(err)
	if e == nil && errors.Is(err, store.ErrThrottled) {
		// DynamoDB refused for capacity after the SDK's retries: the caller retries later
		// (SDKs and Twilio retry a 503), nothing here retries again.
		log.WarnContext(r.Context(), "store throttled", "method", r.Method, "route", r.Pattern, "err", err)
		w.Header().Set("Retry-After", "2")
		e = errcode.New(errcode.Unavailable, "throttled", "the store is over its capacity right now; retry after the Retry-After delay")
	}
	if e == nil {
		log.ErrorContext(r.Context(), "internal error", "method", r.Method, "route", r.Pattern, "err", err)
		e = errcode.New(errcode.Internal, "internal", "something went wrong on our side; retry, and contact support if it persists")
	}
	status := statusOf[e.Kind]
	if e.Kind == errcode.Unauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="unified-profiles"`)
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1") // SDKs and Twilio retry a 503; say when
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: e.Code, Message: errcode.Cut(e.Message, maxErrorMessage), Field: errcode.Cut(e.Field, maxErrorField)}})
}

// basicChallenge makes a 401 ask for Basic credentials (the Profile and tracking APIs take
// them) instead of the bearer token writeError asks for.
type basicChallenge struct {
	http.ResponseWriter
	challenge string // e.g. Basic realm="profiles"
}

func (b basicChallenge) WriteHeader(status int) {
	if status == http.StatusUnauthorized {
		b.Header().Set("WWW-Authenticate", b.challenge)
	}
	b.ResponseWriter.WriteHeader(status)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if w.Header().Get("Cache-Control") == "" { // a handler may allow caching
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v) // the client may be gone; nothing useful to do with the error
}

// decode reads a JSON object body into dst strictly: one object, known fields only, the
// right types, at most MaxBodyBytes, and nothing the decoder would change or drop without a
// word: invalid UTF-8 (it would store U+FFFD), NUL characters, a key given twice (see
// jsoncheck). Errors name what was wrong. The Content-Type is not checked: the body is JSON
// whatever curl's -d calls it.
func decode(w http.ResponseWriter, r *http.Request, dst any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return readError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return &errcode.Error{Kind: errcode.Invalid, Code: "invalid_json", Message: "the body must hold exactly one JSON object"}
	}
	if e := jsoncheck.Check(body, jsoncheck.Options{Type: reflect.TypeOf(dst)}); e != nil {
		return e
	}
	return nil
}

// readError says why a request body could not be read: too large (413), too slow (408: the
// server's read deadline passed, see infra/local), or the connection failed.
func readError(err error) error {
	switch {
	case tooLarge(err):
		return decodeError(err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &errcode.Error{Kind: errcode.Timeout, Code: "body_timeout", Message: "the request body did not arrive in time; send it at once, and retry"}
	}
	return &errcode.Error{Kind: errcode.Invalid, Code: "invalid_body", Message: "the request body could not be read: " + err.Error()}
}

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

func decodeError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case tooLarge(err):
		return &errcode.Error{Kind: errcode.TooLarge, Code: "body_too_large", Message: fmt.Sprintf("the request body is over the limit of %d bytes", MaxBodyBytes)}
	case errors.Is(err, io.EOF):
		return &errcode.Error{Kind: errcode.Invalid, Code: "invalid_json", Message: "the request body is empty; send a JSON object"}
	case errors.As(err, &syntax):
		return &errcode.Error{Kind: errcode.Invalid, Code: "invalid_json", Message: fmt.Sprintf("the body is not valid JSON (at byte %d: %v)", syntax.Offset, syntax)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &errcode.Error{Kind: errcode.Invalid, Code: "invalid_json", Message: "the body is not valid JSON (it ends too early)"}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return &errcode.Error{Kind: errcode.Invalid, Code: "invalid_json", Message: fmt.Sprintf("the body must be a JSON object, not %s", typ.Value)}
		}
		// The field's path holds the caller's keys and a number's value its digits: clipped.
		return errcode.InvalidField(errcode.Clip(typ.Field), "must be %s, not %s", jsonType(typ.Type.Kind().String()), errcode.Clip(typ.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := errcode.Clip(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`))
		return &errcode.Error{Kind: errcode.Invalid, Code: "unknown_field", Field: field, Message: fmt.Sprintf("unknown field %q; check its spelling", field)}
	}
	return &errcode.Error{Kind: errcode.Invalid, Code: "invalid_json", Message: "the body is not valid JSON: " + err.Error()}
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "int", "int64", "float64":
		return "a number"
	}
	return "of another type"
}
