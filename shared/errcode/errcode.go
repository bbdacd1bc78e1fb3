// Package errcode holds the error type every domain package returns. The kind decides the
// HTTP status (in httpapi, the one place that maps it); the code is the stable snake_case
// string clients switch on; the message says what happened and what to do.
package errcode

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Kind classifies an error; each maps to one HTTP status.
type Kind int

const (
	Internal     Kind = iota // 500: a bug or an unavailable dependency
	Invalid                  // 400: the request is malformed or breaks a rule
	Unauthorized             // 401: no or unknown credentials
	Forbidden                // 403: known caller, not allowed (not in beta, over an entitlement, other tenant)
	NotFound                 // 404
	Conflict                 // 409: the current state forbids it (locked, protected, exists)
	TooLarge                 // 413
	RateLimited              // 429
	Unavailable              // 503: try again shortly (clients and SDKs retry it)
	Timeout                  // 408: the request did not arrive in time (a body sent too slowly)
)

// Error is a domain error with a stable code.
type Error struct {
	Kind    Kind
	Code    string // snake_case, stable
	Message string // for people: what happened and what to do
	Field   string // the request field at fault, when there is one
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns an error of kind with code and a formatted message.
func New(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidField returns a 400-kind error naming the field at fault.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Code: "invalid_field", Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// NotFoundf returns a not_found error.
func NotFoundf(format string, args ...any) *Error {
	return New(NotFound, "not_found", format, args...)
}

// As returns the *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Is reports whether err carries code.
func Is(err error, code string) bool {
	e := As(err)
	return e != nil && e.Code == code
}

// MaxEcho bounds a caller's value quoted back in an error message: enough to recognise it,
// never the whole megabyte someone sent by mistake (or to make every error that large).
const MaxEcho = 64

// Clip returns s cut to at most MaxEcho bytes, for quoting a caller's value in an error
// message or field. Every place that echoes a value uses it, so that no error grows with
// its input.
func Clip(s string) string { return Cut(s, MaxEcho) }

// Cut returns s cut to at most n bytes at a character boundary, with "…" appended when it
// was cut.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
