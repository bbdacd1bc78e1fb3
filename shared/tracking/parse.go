package tracking

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/jsoncheck"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
)

// Parse reads the body of POST /v1/<call> (call is one of Calls; "import" is "batch").
//
// A request-level problem (size, JSON, the batch's shape, an invalid single call) is returned as
// an *errcode.Error of kind Invalid. In a batch each message is validated on its own: the valid
// ones are in Messages, the others in Rejected, both with their index in the batch. Every Raw is
// a copy, so body may be reused once Parse returns.
func Parse(call string, body []byte, env Env) (Request, error) {
	switch call {
	case "batch", "import":
	case message.Identify, message.Track, message.Page, message.Screen, message.Group, message.Alias:
	default:
		return Request{}, errcode.NotFoundf("there is no tracking call %q; the calls are %s", call, strings.Join(Calls, ", "))
	}
	if len(body) > MaxRequestBytes {
		return Request{}, errcode.New(errcode.Invalid, "request_too_large",
			"the request body is %d bytes; the limit is %d bytes per request", len(body), MaxRequestBytes)
	}
	if env.ReceivedAt.IsZero() {
		env.ReceivedAt = time.Now()
	}
	env.ReceivedAt = env.ReceivedAt.UTC()
	if env.NewID == nil {
		env.NewID = randomMessageID
	}
	env.imported = call == "import"
	if err := checkJSONObject(body); err != nil {
		return Request{}, err
	}
	if call == "batch" || call == "import" {
		req, err := parseBatch(body, env)
		req.Import = env.imported
		return req, err
	}
	return parseSingle(call, body, env)
}

// parseSingle parses /v1/identify, /v1/track, …: the body is the message, its type the call.
// The body is read once (decoder); one the fast path cannot vouch for is read again by
// parseSingleReference, which answers it.
func parseSingle(call string, body []byte, env Env) (Request, error) {
	if len(body) > MaxMessageBytes {
		return Request{}, messageTooLarge(singleSubject, len(body))
	}
	var w wireMessage
	if !decodeWhole(body, &w, nil) {
		return parseSingleReference(call, body, env)
	}
	return singleRequest(call, body, &w, nil, env)
}

// parseSingleReference is parseSingle by encoding/json and jsoncheck.
func parseSingleReference(call string, body []byte, env Env) (Request, error) {
	var w wireMessage
	typeErr, err := decodeMessage(body, &w)
	if err != nil {
		return Request{}, err
	}
	if e := checkText(body, singleSubject, jsoncheck.Options{Type: wireMessageType}); e != nil {
		return Request{}, e
	}
	return singleRequest(call, body, &w, typeErr, env)
}

// singleRequest validates and normalises the decoded and checked body of a single call.
func singleRequest(call string, body []byte, w *wireMessage, typeErr *json.UnmarshalTypeError, env Env) (Request, error) {
	if w.WriteKey.kind != 0 && w.WriteKey.kind != 's' {
		return Request{}, invalidKind(noSubject, "writeKey", "a string", w.WriteKey.kind)
	}
	m, e := normalise(call, w, typeErr, singleSubject, batchShared{}, env)
	if e != nil {
		return Request{}, e
	}
	// A copy, so that the message does not pin (or see changes to) the caller's buffer.
	m.Raw = append(json.RawMessage(nil), body...)
	return Request{WriteKey: w.WriteKey.s, Messages: []Parsed{{Index: 0, Message: m}}, Total: 1}, nil
}

// wireBatch is the body of /v1/batch. Elements stay raw so that each is validated (and can be
// rejected) on its own, and keeps its bytes as received; json.RawMessage copies them.
type wireBatch struct {
	Batch        []json.RawMessage `json:"batch"`
	Context      map[string]any    `json:"context"`
	Integrations map[string]any    `json:"integrations"`
	SentAt       jsonValue         `json:"sentAt"`
	WriteKey     jsonValue         `json:"writeKey"`
}

// batchShared is what a batch contributes to each of its messages.
type batchShared struct {
	sentAt       time.Time // zero when the batch has no sentAt
	context      map[string]any
	integrations map[string]any
}

// parseBatch parses /v1/batch. The body is read once (decoder); a message the fast path cannot
// vouch for is read again by parseElement, and a body it cannot vouch for (an error at the
// batch's level, most often) by parseBatchReference, which answers it.
func parseBatch(body []byte, env Env) (Request, error) {
	fb := newFastBatch()
	defer fb.release()
	if !decodeWhole(body, nil, &fb) {
		return parseBatchReference(body, env)
	}
	// What parseBatchReference checks once the body is decoded and checked (a batch of 1 to
	// MaxBatchMessages messages, or the decoder set slow); an error is its to word.
	if fb.wb.WriteKey.kind != 0 && fb.wb.WriteKey.kind != 's' {
		return parseBatchReference(body, env)
	}
	sh := batchShared{context: fb.wb.Context, integrations: fb.wb.Integrations}
	if t, ok, e := timeField(noSubject, "sentAt", fb.wb.SentAt); e != nil {
		return parseBatchReference(body, env)
	} else if ok {
		sh.sentAt = t
	}

	// One copy of the messages' bytes, which every Raw shares (each capped to its own).
	buf := append([]byte(nil), body[fb.arrayStart:fb.arrayEnd]...)
	req := Request{WriteKey: fb.wb.WriteKey.s, Total: len(fb.elems), Messages: make([]Parsed, 0, len(fb.elems))}
	for i := range fb.elems {
		el := &fb.elems[i]
		start, end := el.start-fb.arrayStart, el.end-fb.arrayStart
		raw := json.RawMessage(buf[start:end:end])
		var m message.Message
		var e *errcode.Error
		if el.slow || len(raw) > MaxMessageBytes {
			m, e = parseElement(raw, subject(i), sh, env)
		} else {
			m, e = typedElement(&el.w, nil, subject(i), sh, env)
		}
		req.add(i, raw, m, e)
	}
	return req, nil
}

// add records a batch's message i, raw as sent: accepted as m, or rejected with e.
func (req *Request) add(i int, raw json.RawMessage, m message.Message, e *errcode.Error) {
	if e != nil {
		req.Rejected = append(req.Rejected, Rejection{Index: i, Code: e.Code, Message: e.Message, Field: e.Field, Raw: raw})
		return
	}
	m.Raw = raw
	req.Messages = append(req.Messages, Parsed{Index: i, Message: m})
}

// parseBatchReference is parseBatch by encoding/json and jsoncheck.
func parseBatchReference(body []byte, env Env) (Request, error) {
	var wb wireBatch
	if err := json.Unmarshal(body, &wb); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return Request{}, invalidJSON(err)
		}
		field, msg := describeTypeError(te)
		return Request{}, invalidFieldErr(field, "%s", msg)
	}
	switch {
	case wb.Batch == nil:
		return Request{}, invalidFieldErr("batch", "the body has no batch; send the messages as an array in batch")
	case len(wb.Batch) == 0:
		return Request{}, invalidFieldErr("batch", "batch is empty; send at least one message")
	case len(wb.Batch) > MaxBatchMessages:
		return Request{}, reject("too_many_messages", "batch",
			"the batch has %d messages; the limit is %d messages per batch", len(wb.Batch), MaxBatchMessages)
	}
	// The batch's own fields (its context goes into every message); each message is checked
	// on its own below, so that a bad one is rejected alone.
	if e := checkText(body, noSubject, jsoncheck.Options{Type: wireBatchType, Skip: "batch"}); e != nil {
		return Request{}, e
	}
	if wb.WriteKey.kind != 0 && wb.WriteKey.kind != 's' {
		return Request{}, invalidKind(noSubject, "writeKey", "a string", wb.WriteKey.kind)
	}
	sh := batchShared{context: wb.Context, integrations: wb.Integrations}
	if t, ok, e := timeField(noSubject, "sentAt", wb.SentAt); e != nil {
		return Request{}, e
	} else if ok {
		sh.sentAt = t
	}

	req := Request{WriteKey: wb.WriteKey.s, Total: len(wb.Batch), Messages: make([]Parsed, 0, len(wb.Batch))}
	for i, raw := range wb.Batch {
		m, e := parseElement(raw, subject(i), sh, env)
		req.add(i, raw, m, e)
	}
	return req, nil
}

// parseElement validates and normalises one element of a batch, by encoding/json and
// jsoncheck.
func parseElement(raw []byte, subj subject, sh batchShared, env Env) (message.Message, *errcode.Error) {
	if raw[0] != '{' { // raw is a valid JSON value (the whole body was), never empty
		return message.Message{}, invalidFieldErr("", "%s is %s, not a JSON object", subj, describeKind(raw[0]))
	}
	if len(raw) > MaxMessageBytes {
		return message.Message{}, messageTooLarge(subj, len(raw))
	}
	var w wireMessage
	typeErr, err := decodeMessage(raw, &w)
	if err != nil { // cannot happen: the batch was valid JSON; kept as a rejection, not a panic
		return message.Message{}, invalidFieldErr("", "%s is not valid JSON", subj)
	}
	if e := checkText(raw, subj, jsoncheck.Options{Type: wireMessageType}); e != nil {
		return message.Message{}, e
	}
	return typedElement(&w, typeErr, subj, sh, env)
}

// typedElement validates and normalises a decoded and checked element of a batch, whose type
// is its own.
func typedElement(w *wireMessage, typeErr *json.UnmarshalTypeError, subj subject, sh batchShared, env Env) (message.Message, *errcode.Error) {
	typ := w.Type.s
	if w.Type.kind != 's' || !validType(typ) {
		if w.Type.kind == 0 {
			return message.Message{}, invalidTypeErr("%s has no type; set type to one of %s", subj, typeList)
		}
		return message.Message{}, invalidTypeErr("%s has type %s; the types are %s", subj, quoteValue(w.Type), typeList)
	}
	return normalise(typ, w, typeErr, subj, sh, env)
}

// subject names a message in errors: "message 3" (its index in a batch), "the message" (a
// single call's body), or nothing (the batch's own fields, a single call's writeKey). Only
// an error spells it out.
type subject int

const (
	singleSubject subject = -1
	noSubject     subject = -2
)

func (s subject) String() string {
	switch s {
	case singleSubject:
		return "the message"
	case noSubject:
		return ""
	}
	return "message " + strconv.Itoa(int(s))
}

const typeList = "identify, track, page, screen, group and alias"

func validType(t string) bool {
	switch t {
	case message.Identify, message.Track, message.Page, message.Screen, message.Group, message.Alias:
		return true
	}
	return false
}

// wireMessage is one message as SDKs send it. Scalars are jsonValue so that ids may be strings
// or numbers and every wrong type is reported with its field; the objects decode straight into
// maps, since that is what message.Message holds.
type wireMessage struct {
	Type              jsonValue      `json:"type"`
	MessageID         jsonValue      `json:"messageId"`
	UserID            jsonValue      `json:"userId"`
	AnonymousID       jsonValue      `json:"anonymousId"`
	GroupID           jsonValue      `json:"groupId"`
	PreviousID        jsonValue      `json:"previousId"`
	Event             jsonValue      `json:"event"`
	Name              jsonValue      `json:"name"`
	Timestamp         jsonValue      `json:"timestamp"`
	OriginalTimestamp jsonValue      `json:"originalTimestamp"`
	SentAt            jsonValue      `json:"sentAt"`
	WriteKey          jsonValue      `json:"writeKey"` // single calls only
	Traits            map[string]any `json:"traits"`
	Properties        map[string]any `json:"properties"`
	Context           map[string]any `json:"context"`
	Integrations      map[string]any `json:"integrations"`
}

var (
	wireMessageType = reflect.TypeFor[wireMessage]()
	wireBatchType   = reflect.TypeFor[wireBatch]()
)

// checkText refuses what the decoder would change without a word (jsoncheck): invalid UTF-8
// and unpaired surrogates, which all decode as U+FFFD and so would make different ids one
// profile; NUL characters, which ids, event names and the identifiers read from traits must
// not hold; keys given twice, of which only the last would count. subj ("message 3", "the
// message", nothing for the batch) prefixes the message; the field is the JSON path at fault.
func checkText(raw []byte, subj subject, opts jsoncheck.Options) *errcode.Error {
	e := jsoncheck.Check(raw, opts)
	if e != nil {
		e.Message = subjectPrefix(subj) + e.Message
	}
	return e
}

// decodeMessage unmarshals raw into w. A wrong type in one of the objects is returned as typeErr
// (the decoder fills in the other fields regardless), so that the caller can report the type
// first; a syntax error is the request's invalid_json.
func decodeMessage(raw []byte, w *wireMessage) (typeErr *json.UnmarshalTypeError, err error) {
	if err := json.Unmarshal(raw, w); err != nil {
		if errors.As(err, &typeErr) {
			return typeErr, nil
		}
		return nil, invalidJSON(err)
	}
	return nil, nil
}

// normalise validates a decoded message of type typ and turns it into a message.Message (Raw is
// left to the caller). subj names the message in errors: "message 3" or "the message".
func normalise(typ string, w *wireMessage, typeErr *json.UnmarshalTypeError, subj subject, sh batchShared, env Env) (message.Message, *errcode.Error) {
	if typeErr != nil {
		field, msg := describeTypeError(typeErr)
		return message.Message{}, invalidFieldErr(field, "%s: %s", subj, msg)
	}
	for _, f := range [...]struct {
		name string
		v    jsonValue
	}{
		{"messageId", w.MessageID}, {"userId", w.UserID}, {"anonymousId", w.AnonymousID},
		{"groupId", w.GroupID}, {"previousId", w.PreviousID},
	} {
		if f.v.kind != 0 && f.v.kind != 's' && f.v.kind != 'n' {
			return message.Message{}, invalidKind(subj, f.name, "a string or a number", f.v.kind)
		}
	}
	for _, f := range [...]struct {
		name string
		v    jsonValue
	}{{"event", w.Event}, {"name", w.Name}} {
		if f.v.kind != 0 && f.v.kind != 's' {
			return message.Message{}, invalidKind(subj, f.name, "a string", f.v.kind)
		}
	}
	if n := len(w.MessageID.s); n > MaxMessageIDLen {
		return message.Message{}, reject("message_id_too_long", "messageId",
			"%s has a messageId of %d bytes; the limit is %d bytes", subj, n, MaxMessageIDLen)
	}
	if w.UserID.s == "" && w.AnonymousID.s == "" {
		return message.Message{}, reject("no_user_anon_id", "userId|anonymousId",
			"%s has neither a userId nor an anonymousId; send at least one of them", subj)
	}
	switch {
	case typ == message.Track && w.Event.s == "":
		return message.Message{}, reject("missing_event", "event", "%s is a track call without an event; set event to the event's name", subj)
	case typ == message.Group && w.GroupID.s == "":
		return message.Message{}, reject("missing_group_id", "groupId", "%s is a group call without a groupId; set groupId", subj)
	case typ == message.Alias && w.PreviousID.s == "":
		return message.Message{}, reject("missing_previous_id", "previousId", "%s is an alias call without a previousId; set previousId to the id being merged", subj)
	}
	if n := len(w.Traits); n > MaxFields {
		return message.Message{}, reject("too_many_traits", "traits", "%s has %d traits; the limit is %d per message", subj, n, MaxFields)
	}
	if n := len(w.Properties); n > MaxFields {
		return message.Message{}, reject("too_many_properties", "properties", "%s has %d properties; the limit is %d per message", subj, n, MaxFields)
	}
	originalField := "originalTimestamp"
	original, hasOriginal, e := timeField(subj, originalField, w.OriginalTimestamp)
	if e != nil {
		return message.Message{}, e
	}
	if !hasOriginal {
		originalField = "timestamp"
		if original, hasOriginal, e = timeField(subj, originalField, w.Timestamp); e != nil {
			return message.Message{}, e
		}
	} else if _, _, e = timeField(subj, "timestamp", w.Timestamp); e != nil {
		return message.Message{}, e
	}
	sentAt, hasSentAt, e := timeField(subj, "sentAt", w.SentAt)
	if e != nil {
		return message.Message{}, e
	}
	if !hasSentAt && !sh.sentAt.IsZero() {
		sentAt, hasSentAt = sh.sentAt, true
	}

	m := message.Message{
		Type:         typ,
		MessageID:    w.MessageID.s,
		UserID:       w.UserID.s,
		AnonymousID:  w.AnonymousID.s,
		Context:      mergeBatchObject(w.Context, sh.context),
		Integrations: mergeBatchObject(w.Integrations, sh.integrations),
		ReceivedAt:   env.ReceivedAt,
	}
	if m.MessageID == "" {
		m.MessageID = env.NewID()
	}
	switch typ {
	case message.Identify:
		m.Traits = w.Traits
	case message.Track:
		m.Event, m.Properties = w.Event.s, w.Properties
	case message.Page, message.Screen:
		m.Name, m.Properties = w.Name.s, w.Properties
	case message.Group:
		m.GroupID, m.Traits = w.GroupID.s, w.Traits
	case message.Alias:
		m.PreviousID = w.PreviousID.s
	}
	// The device's clock may be wrong: keep the interval between the event and the send, and
	// anchor it to our clock (Segment's rule).
	switch {
	case hasOriginal && hasSentAt:
		m.Timestamp = env.ReceivedAt.Add(-sentAt.Sub(original))
	case hasOriginal:
		m.Timestamp = original
	default:
		m.Timestamp = env.ReceivedAt
	}
	// Accept only what is kept. An event older than the retention would answer 200 and be
	// gone (or never shown): it is refused, naming the limit. /v1/import takes history up to
	// ImportWindow old for its counts (the answer says how many events are not kept). One
	// from further in the future than a fast clock explains would stay out of every reader's
	// window (they look profile.FutureSkew ahead) until its time came, and would date the
	// profile's first message after its last: it takes the time it arrived, the one time
	// known to be right. Both bounds apply after the clock-skew correction.
	window := profile.EventRetention
	if env.imported {
		window = ImportWindow
	}
	switch oldest := env.ReceivedAt.Add(-window); {
	case m.Timestamp.Before(oldest) && env.imported:
		return message.Message{}, reject("timestamp_too_old", originalField,
			"%s%s is %s, %d days before it arrived; /v1/import takes events up to %d days old, so the oldest accepted now is %s",
			subjectPrefix(subj), originalField, m.Timestamp.Format(time.RFC3339), int(env.ReceivedAt.Sub(m.Timestamp)/(24*time.Hour)),
			int(window/(24*time.Hour)), oldest.Format(time.RFC3339))
	case m.Timestamp.Before(oldest):
		return message.Message{}, reject("timestamp_too_old", originalField,
			"%s%s is %s, %d days before it arrived; events are kept %d days, so the oldest accepted now is %s",
			subjectPrefix(subj), originalField, m.Timestamp.Format(time.RFC3339), int(env.ReceivedAt.Sub(m.Timestamp)/(24*time.Hour)),
			int(window/(24*time.Hour)), oldest.Format(time.RFC3339))
	case m.Timestamp.After(env.ReceivedAt.Add(profile.FutureSkew)):
		m.Timestamp = env.ReceivedAt
	}
	if direct, _ := m.Context["direct"].(bool); direct && env.IP != "" {
		m.Context["ip"] = env.IP
	}
	return m, nil
}

// mergeBatchObject fills in own's missing top-level keys from the batch's object (the message
// wins). Values taken from the batch are deep copies, so that no two messages share a map or a
// slice: a consumer that edits one message's context must not edit its neighbours'.
func mergeBatchObject(own, batch map[string]any) map[string]any {
	if len(batch) == 0 {
		return own
	}
	if own == nil {
		own = make(map[string]any, len(batch))
	}
	for k, v := range batch {
		if _, ok := own[k]; !ok {
			own[k] = cloneJSONValue(v)
		}
	}
	return own
}

// cloneJSONValue deep-copies a value decoded by encoding/json into an any.
func cloneJSONValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = cloneJSONValue(x)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = cloneJSONValue(x)
		}
		return s
	}
	return v
}

// timeLayouts are the ISO-8601 forms SDKs send: RFC 3339, and the offset without a colon
// (+0000) that some mobile SDKs' date formatters produce.
var timeLayouts = [...]string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700"}

// timeField parses a timestamp field; absent, null and "" are absent. subj is noSubject at
// the batch level.
func timeField(subj subject, field string, v jsonValue) (time.Time, bool, *errcode.Error) {
	if v.kind == 0 || (v.kind == 's' && v.s == "") {
		return time.Time{}, false, nil
	}
	if v.kind != 's' {
		return time.Time{}, false, invalidKind(subj, field, "an ISO-8601 timestamp string", v.kind)
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, v.s); err == nil {
			return t.UTC(), true, nil
		}
	}
	return time.Time{}, false, invalidFieldErr(field, "%s%s is %s, not an ISO-8601 timestamp such as 2026-01-02T15:04:05.000Z",
		subjectPrefix(subj), field, quoteValue(v))
}

// jsonValue is a scalar field decoded without committing to its JSON type: kind is 0 (absent
// or null), 's' (string: s is its value), 'n' (number: s is its text exactly as sent), 'b'
// (true or false), 'o' (object) or 'a' (array).
type jsonValue struct {
	s    string
	kind byte
}

// UnmarshalJSON never fails, so that a wrong type is reported by the validation, naming the
// field, rather than ending the decoding.
func (v *jsonValue) UnmarshalJSON(b []byte) error {
	if len(b) == 0 {
		*v = jsonValue{}
		return nil
	}
	switch c := b[0]; c {
	case '"':
		*v = jsonValue{s: unquoteJSON(b), kind: 's'}
	case 'n':
		*v = jsonValue{}
	case 't', 'f':
		*v = jsonValue{kind: 'b'}
	case '{':
		*v = jsonValue{kind: 'o'}
	case '[':
		*v = jsonValue{kind: 'a'}
	default:
		*v = jsonValue{s: string(b), kind: 'n'}
	}
	return nil
}

// unquoteJSON returns the value of the JSON string literal b (already validated by the
// decoder), without the decoder's reflection when there is nothing to unescape.
func unquoteJSON(b []byte) string {
	inner := b[1 : len(b)-1]
	plain := utf8.Valid(inner)
	for _, c := range inner {
		if c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(b, &s) // cannot fail on a valid literal; invalid UTF-8 (which checkText refuses) becomes U+FFFD
	return s
}

// describeTypeError says which field has the wrong JSON type. The decoder's Field is the path
// of struct fields (their JSON names), which for our flat structs is the top-level key.
func describeTypeError(te *json.UnmarshalTypeError) (field, msg string) {
	field = te.Field
	top, _, _ := strings.Cut(field, ".")
	if n, ok := strings.CutPrefix(te.Value, "number "); ok {
		// Only maps hold float64s: a number too large for one, somewhere inside field.
		return top, fmt.Sprintf("%s holds the number %s, which is out of range", errcode.Clip(field), errcode.Clip(n))
	}
	want := "another type"
	switch top {
	case "traits", "properties", "context", "integrations":
		want = "an object"
	case "batch":
		want = "an array of messages"
	}
	if field == "" {
		return "", fmt.Sprintf("the value is %s, not %s", article(te.Value), want)
	}
	return top, fmt.Sprintf("%s must be %s, not %s", top, want, article(te.Value))
}

func article(jsonType string) string {
	switch jsonType {
	case "object", "array":
		return "an " + jsonType
	case "bool":
		return "a boolean"
	}
	return "a " + jsonType
}

func describeKind(c byte) string {
	switch c {
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '[':
		return "an array"
	case '{':
		return "an object"
	}
	return "a number"
}

// checkJSONObject refuses a body that is not a JSON object before decoding it: the decoder
// would accept null into a struct, and describe anything else in Go's terms.
func checkJSONObject(body []byte) error {
	for _, c := range body {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return nil
		}
		if !json.Valid(body) {
			return errcode.New(errcode.Invalid, "invalid_json", "the body is not valid JSON; send a JSON object")
		}
		return errcode.New(errcode.Invalid, "invalid_json", "the body is %s; send a JSON object", describeKind(c))
	}
	return errcode.New(errcode.Invalid, "invalid_json", "the body is empty; send a JSON object")
}

func invalidJSON(err error) *errcode.Error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return errcode.New(errcode.Invalid, "invalid_json", "the body is not valid JSON: %v (at byte %d)", se, se.Offset)
	}
	return errcode.New(errcode.Invalid, "invalid_json", "the body is not valid JSON: %v", err)
}

func messageTooLarge(subj subject, n int) *errcode.Error {
	return reject("message_too_large", "", "%s is %d bytes; the limit is %d bytes per message", subj, n, MaxMessageBytes)
}

func reject(code, field, format string, args ...any) *errcode.Error {
	return &errcode.Error{Kind: errcode.Invalid, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

func invalidFieldErr(field, format string, args ...any) *errcode.Error {
	return reject("invalid_field", field, format, args...)
}

func invalidTypeErr(format string, args ...any) *errcode.Error {
	return reject("invalid_type", "type", format, args...)
}

func invalidKind(subj subject, field, want string, kind byte) *errcode.Error {
	return invalidFieldErr(field, "%s%s must be %s, not %s", subjectPrefix(subj), field, want, describeKind(kindByte(kind)))
}

// kindByte maps a jsonValue kind to a first byte describeKind understands.
func kindByte(kind byte) byte {
	switch kind {
	case 's':
		return '"'
	case 'b':
		return 't'
	case 'o':
		return '{'
	case 'a':
		return '['
	}
	return '0'
}

func subjectPrefix(subj subject) string {
	if subj == noSubject {
		return ""
	}
	return subj.String() + ": "
}

// quoteValue shows a value a client sent, shortened: it goes into an error message.
func quoteValue(v jsonValue) string {
	if v.kind == 's' {
		return fmt.Sprintf("%q", errcode.Clip(v.s))
	}
	if v.kind == 'n' {
		return errcode.Clip(v.s)
	}
	return describeKind(kindByte(v.kind))
}

// randomMessageID stands in for Env.NewID when a caller leaves it nil.
func randomMessageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
