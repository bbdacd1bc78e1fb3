// Package salesforce holds the domain types of the Salesforce source (issue 15): an object's
// fields as describe reports them, records as queryAll returns them, the Client the sync uses,
// the typed errors the sync branches on, and the SOQL of an incremental sync on SystemModstamp.
//
// It knows nothing of HTTP: the REST API v58.0 adapter is in salesforce/rest, a fake Salesforce
// for tests in salesforce/sfake.
package salesforce

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// APIVersion is the only Salesforce REST API version this service speaks.
const APIVersion = "v58.0"

// Default objects a Salesforce source syncs when the user names none.
var DefaultObjects = []string{"Contact", "Lead", "Account"}

// Field is one field of an object, as describe reports it (REST API v58.0
// DescribeSObjectResult.fields[]).
type Field struct {
	Name string `json:"name"`
	// Type as describe reports it: id, string, textarea, email, phone, url, picklist,
	// multipicklist, combobox, boolean, int, long, double, currency, percent, date, datetime,
	// time, reference, base64, encryptedstring, anyType, address, location, …
	Type              string   `json:"type"`
	Label             string   `json:"label,omitempty"`
	Length            int      `json:"length,omitempty"`
	Precision         int      `json:"precision,omitempty"`
	Scale             int      `json:"scale,omitempty"`
	Nillable          bool     `json:"nillable"`
	Custom            bool     `json:"custom"`
	ReferenceTo       []string `json:"referenceTo,omitempty"`
	CompoundFieldName string   `json:"compoundFieldName,omitempty"` // e.g. MailingCity → MailingAddress
}

// Compound reports whether the field is a compound field (address, location). Its components
// (MailingStreet, MailingCity, …, Latitude/Longitude) are fields of their own, so the sync
// selects those and skips the compound one.
func (f Field) Compound() bool {
	switch strings.ToLower(f.Type) {
	case "address", "location":
		return true
	}
	return false
}

// Object is an sObject as describe reports it.
type Object struct {
	Name   string  `json:"name"`
	Label  string  `json:"label,omitempty"`
	Fields []Field `json:"fields"`
}

// Field returns the field named name (case-insensitively, as SOQL), and whether it exists.
func (o Object) Field(name string) (Field, bool) {
	for _, f := range o.Fields {
		if strings.EqualFold(f.Name, name) {
			return f, true
		}
	}
	return Field{}, false
}

// QueryableFields returns the names of the fields a sync selects: every field but compound
// ones (address, location) and base64 ones (a query returns a blob URL for those, one record at
// a time, not the data), in describe's order.
func (o Object) QueryableFields() []string {
	out := make([]string, 0, len(o.Fields))
	for _, f := range o.Fields {
		if f.Compound() || strings.EqualFold(f.Type, "base64") {
			continue
		}
		out = append(out, f.Name)
	}
	return out
}

// Record is one record as JSON-decoded from a query result, with "attributes" removed. Numbers
// are json.Number (currency and double keep their exact digits); datetimes are strings in
// Salesforce's format (see ParseDatetime).
type Record map[string]any

// ID returns the record's Id, or "".
func (r Record) ID() string { s, _ := r["Id"].(string); return s }

// IsDeleted reports the record's IsDeleted (queryAll returns deleted records too).
func (r Record) IsDeleted() bool { b, _ := r["IsDeleted"].(bool); return b }

// SystemModstamp returns the record's SystemModstamp, or the zero time if absent or malformed.
func (r Record) SystemModstamp() time.Time {
	s, _ := r["SystemModstamp"].(string)
	t, err := ParseDatetime(s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// Page is one page of a query result (REST API v58.0 QueryResult: totalSize, done,
// nextRecordsUrl, records).
type Page struct {
	Records   []Record
	Done      bool
	NextURL   string // nextRecordsUrl, a path relative to the instance; "" when Done
	TotalSize int
}

// Client is what the sync needs of Salesforce. Implementations refresh an expired session
// once themselves; every error they return is an *Error.
type Client interface {
	// Describe returns object's fields.
	Describe(ctx context.Context, object string) (Object, error)
	// QueryAll runs soql including deleted records (queryAll) and returns the first page.
	QueryAll(ctx context.Context, soql string) (Page, error)
	// QueryMore returns the page at nextURL (a Page's NextURL).
	QueryMore(ctx context.Context, nextURL string) (Page, error)
}

// Kind classifies an error for the sync.
type Kind int

const (
	KindOther          Kind = iota // anything else (bad query, server error, network)
	KindRateLimited                // REQUEST_LIMIT_EXCEEDED: stop, keep the checkpoint, resume on a later run
	KindSessionExpired             // INVALID_SESSION_ID even after one refresh
	KindReauthorize                // invalid_grant from the token endpoint: the user must connect again
	KindPermission                 // the user may not read the object or records: needs View All Records
)

func (k Kind) String() string {
	switch k {
	case KindRateLimited:
		return "rate_limited"
	case KindSessionExpired:
		return "session_expired"
	case KindReauthorize:
		return "reauthorize"
	case KindPermission:
		return "permission"
	}
	return "other"
}

// Sentinels for errors.Is: errors.Is(err, salesforce.ErrRateLimited) holds for an *Error of
// that kind.
var (
	ErrRateLimited    = errors.New("salesforce: API request limit exceeded")
	ErrSessionExpired = errors.New("salesforce: session expired or invalid")
	ErrReauthorize    = errors.New("salesforce: authorization revoked or expired")
	ErrPermission     = errors.New("salesforce: insufficient access")
)

// Error is an error from Salesforce, classified. Message is Salesforce's own message (or
// error_description); it never holds a token.
type Error struct {
	Kind    Kind
	Status  int    // HTTP status, 0 when no response arrived
	Code    string // Salesforce errorCode (REQUEST_LIMIT_EXCEEDED, …) or OAuth error (invalid_grant, …)
	Message string
	Object  string // the object concerned, when known
	Err     error  // the cause (transport error), when there is one
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("salesforce")
	if e.Object != "" {
		b.WriteString(" ")
		b.WriteString(e.Object)
	}
	b.WriteString(": ")
	switch e.Kind {
	case KindRateLimited:
		b.WriteString("the org's API request limit is exceeded; the sync resumes from its checkpoint on a later run")
	case KindSessionExpired:
		b.WriteString("the session expired and could not be renewed")
	case KindReauthorize:
		b.WriteString("the authorization was revoked or has expired; reauthorize the Salesforce connection")
	case KindPermission:
		b.WriteString(`the connected user may not read all records; connect as a user with the "View All Records" permission`)
	default:
		b.WriteString("request failed")
	}
	if e.Code != "" || e.Message != "" {
		b.WriteString(" (")
		if e.Status != 0 {
			fmt.Fprintf(&b, "%d ", e.Status)
		}
		b.WriteString(e.Code)
		if e.Message != "" {
			if e.Code != "" {
				b.WriteString(": ")
			}
			b.WriteString(e.Message)
		}
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrRateLimited) (and the other sentinels) hold for the kind.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrRateLimited:
		return e.Kind == KindRateLimited
	case ErrSessionExpired:
		return e.Kind == KindSessionExpired
	case ErrReauthorize:
		return e.Kind == KindReauthorize
	case ErrPermission:
		return e.Kind == KindPermission
	}
	return false
}

// KindOf returns err's Kind (KindOther when err is no *Error).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindOther
}

// APIError classifies an error of the REST API (the body [{"message","errorCode"}], status).
func APIError(status int, code, message string) *Error {
	e := &Error{Kind: KindOther, Status: status, Code: code, Message: message}
	switch code {
	case "REQUEST_LIMIT_EXCEEDED":
		e.Kind = KindRateLimited
	case "INVALID_SESSION_ID":
		e.Kind = KindSessionExpired
	case "INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY",
		"INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", "API_DISABLED_FOR_ORG",
		"API_CURRENTLY_DISABLED", "INSUFFICIENT_PRIVILEGES":
		e.Kind = KindPermission
	default:
		switch status {
		case 401:
			e.Kind = KindSessionExpired
		case 403:
			e.Kind = KindPermission
		}
	}
	return e
}

// OAuthError classifies an error of the token endpoint ({"error","error_description"}).
// invalid_grant (a revoked or expired refresh token, a used or expired code), inactive_user
// and inactive_org mean the user must connect again.
func OAuthError(status int, code, description string) *Error {
	e := &Error{Kind: KindOther, Status: status, Code: code, Message: description}
	switch code {
	case "invalid_grant", "inactive_user", "inactive_org":
		e.Kind = KindReauthorize
	case "rate_limit_exceeded":
		e.Kind = KindRateLimited
	}
	return e
}

// ValidName reports whether s is a valid object or field API name (letters, digits and
// underscores, starting with a letter; custom ones end in __c and the like). The SOQL builder
// relies on it: names are not quoted in SOQL.
func ValidName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_'):
		default:
			return false
		}
	}
	return true
}

// IncrementalQuery returns the SOQL of an incremental sync of object: fields (with Id,
// SystemModstamp and IsDeleted always first, duplicates and invalid names dropped, compared
// case-insensitively as SOQL does) of the records changed after since, oldest first:
//
//	SELECT Id, SystemModstamp, IsDeleted, Email FROM Contact WHERE SystemModstamp > 2026-01-01T00:00:00Z ORDER BY SystemModstamp, Id
//
// A zero since selects every record (no WHERE). SOQL datetime literals are unquoted ISO 8601 in
// UTC with whole seconds: since is truncated down to the second, so records of since's second
// come again (upserts on Id make that harmless) and none is missed. Pass fields from
// Object.QueryableFields; the caller validates object with ValidName (IncrementalQuery panics on
// an invalid one, as it would be SOQL injection).
//
// SystemModstamp is set when a transaction starts, so a record committed late can carry a stamp
// older than one already seen: callers should start from their checkpoint minus a margin.
func IncrementalQuery(object string, fields []string, since time.Time) string {
	if !ValidName(object) {
		panic("salesforce: invalid object name in IncrementalQuery")
	}
	seen := map[string]bool{}
	cols := make([]string, 0, len(fields)+3)
	add := func(f string) {
		k := strings.ToLower(f)
		if !ValidName(f) || seen[k] {
			return
		}
		seen[k] = true
		cols = append(cols, f)
	}
	for _, f := range []string{"Id", "SystemModstamp", "IsDeleted"} {
		add(f)
	}
	for _, f := range fields {
		add(f)
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(strings.Join(cols, ", "))
	b.WriteString(" FROM ")
	b.WriteString(object)
	if !since.IsZero() {
		b.WriteString(" WHERE SystemModstamp > ")
		b.WriteString(FormatLiteral(since))
	}
	b.WriteString(" ORDER BY SystemModstamp, Id")
	return b.String()
}

// FormatLiteral returns t as a SOQL datetime literal: UTC, whole seconds (truncated), Z.
func FormatLiteral(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z")
}

// ParseDatetime parses a datetime as Salesforce returns it in records
// ("2026-01-01T00:00:00.000+0000") or as an ISO 8601 / SOQL literal ("2026-01-01T00:00:00Z",
// "…+01:00", with or without fractional seconds). The result is in UTC, within Salesforce's
// range of datetimes (years 1700 to 4000).
func ParseDatetime(s string) (time.Time, error) {
	for _, layout := range []string{
		"2006-01-02T15:04:05.000-0700",
		"2006-01-02T15:04:05-0700",
		time.RFC3339Nano,
	} {
		if t, err := time.Parse(layout, s); err == nil {
			if t = t.UTC(); t.Year() < 1700 || t.Year() > 4000 {
				break
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("salesforce: %q is not a datetime", truncate(s, 40))
}

// FormatDatetime formats t as Salesforce returns datetimes in records.
func FormatDatetime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000+0000")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
