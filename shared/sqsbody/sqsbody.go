// Package sqsbody decodes the JSON body of an SQS message strictly, for the queues that carry
// this project's work as one JSON object a message (warehouse/sqsqueue's sync tasks,
// delivery/sqsqueue's delivery jobs), and says in words what is wrong with a body it refuses.
// Each queue puts its own words in front ("the message body is not a sync task: …") and checks
// its own fields, with CheckID for the ids among them.
package sqsbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
)

// ErrEmpty is Decode's problem with a body that is empty or only white space.
var ErrEmpty = errors.New("the message body is empty")

// Decode decodes body into v, a pointer to a struct: the body must be one JSON object, with
// nothing but white space after it. Unknown fields are ignored, so that a message sent by a
// newer version during a deployment still decodes. The problem is ErrEmpty for an empty body,
// else it says what is wrong (the object is JSON null, or data follows it, or encoding/json's
// error in words: a field of the wrong JSON kind, a syntax error's offset, an early end, a
// time that is not RFC 3339 text). On a problem, v may hold part of the body.
func Decode(body string, v any) (problem error) {
	if strings.TrimSpace(body) == "" {
		return ErrEmpty
	}
	dec := json.NewDecoder(strings.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return errors.New(jsonProblem(err, v))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data follows the JSON object")
	}
	if bytes.Equal(bytes.TrimSpace([]byte(body)), []byte("null")) {
		return errors.New("it is JSON null, want an object")
	}
	return nil
}

// jsonProblem says in words what encoding/json found wrong decoding into v.
func jsonProblem(err error, v any) string {
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Sprintf("it is a JSON %s, want an object", typ.Value)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s is a JSON %s, want %s", typ.Field, typ.Value, jsonKind(typ.Type.Kind().String()))
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	}
	// A time.Time decodes itself, and its error does not name the field.
	var tp *time.ParseError
	if errors.As(err, &tp) || strings.HasPrefix(err.Error(), "Time.UnmarshalJSON") {
		return timeFields(v) + " is not a time as RFC 3339 text (" + err.Error() + ")"
	}
	return "invalid JSON: " + err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int":
		return "an integer (a number without a fraction, within range)"
	}
	return goKind
}

// timeFields names the time.Time fields of the struct v points to by their JSON names
// ("accepted_at", or "a or b"), or says "a field" when it has none of its own.
func timeFields(v any) string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return "a field"
	}
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || f.Type != reflect.TypeFor[time.Time]() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return "a field"
	}
	return strings.Join(names, " or ")
}

// CheckID checks the id value of the field named name: prefix followed by at least one
// character, at most max bytes, and only letters, digits, '_' and '-' (ids become parts of
// DynamoDB keys, where '#' separates the parts). The error names the field and what is wrong.
func CheckID(name, prefix, value string, max int) error {
	switch {
	case value == "":
		return fmt.Errorf("%s is missing or empty, want an id starting %s", name, prefix)
	case !strings.HasPrefix(value, prefix) || len(value) == len(prefix):
		return fmt.Errorf("%s %q does not look like an id of its kind: want %s followed by the id", name, Clip(value), prefix)
	case len(value) > max:
		return fmt.Errorf("%s is %d characters long, at most %d", name, len(value), max)
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%s %q has the character %q at byte %d: ids hold only letters, digits, '_' and '-'", name, Clip(value), c, i)
		}
	}
	return nil
}

// Clip shortens what goes into an error message: the first 40 bytes of s and "…".
func Clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
