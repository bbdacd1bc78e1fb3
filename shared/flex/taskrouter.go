package flex

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/message"
)

// Names of the track events Flex interactions become (PRODUCT.md section 7).
const (
	EventEngagementInitiated = "Flex - Engagement Initiated"
	EventEngagementCompleted = "Flex - Engagement Completed"
)

// TaskRouter event types that are recorded, and the track event each becomes.
var recordedEvents = map[string]string{
	"reservation.wrapup": EventEngagementInitiated,
	"task.completed":     EventEngagementCompleted,
}

// Channel types a Flex interaction is normalised to.
const (
	ChannelVoice    = "voice"
	ChannelSMS      = "sms"
	ChannelWhatsApp = "whatsapp"
	ChannelChat     = "chat"
	ChannelEmail    = "email"
)

// EventFromTaskRouter turns a TaskRouter event callback (the decoded form body) into a track
// message. ok is false, with no error, for an event type that is not recorded (anything but
// "reservation.wrapup" → "Flex - Engagement Initiated" and "task.completed" → "Flex - Engagement
// Completed"): answer 200 and drop it.
//
// Properties: channelType (voice, sms, whatsapp, chat or email; left out when none can be told),
// direction (inbound unless TaskAttributes.direction starts with "outbound"), duration (seconds,
// from TaskAge, else TaskAttributes.conversations.duration), interactionSid
// (flexInteractionSid, else TaskSid), channelSid (flexInteractionChannelSid, else channelSid),
// lastKnownAgentWorkerSid (WorkerSid), codes (disposition/wrap-up codes, []string), sentiment
// (conversations.sentiment), and taskSid, reservationSid, taskQueueName when sent; absent
// values are left out.
//
// The customer's address is TaskAttributes.from for inbound and .to for outbound tasks, then
// customerAddress, customers.phone and customers.email. The first phone number (made E.164 by
// NormalizePhone with no default region, so national numbers are not taken) and the first email
// address found go in Context["traits"] as "phone" and "email"; AnonymousID is "flex:" and the
// first usable address (normalised when it is a phone or email, else as sent, e.g. a chat
// identity). A task with no customer address at all is an error.
//
// MessageID is "flex-" and 32 hex digits of SHA-256 over TaskSid, EventType and ReservationSid,
// so Twilio retrying a callback yields the same ID. Timestamp is the form's TimestampMs or
// Timestamp (epoch seconds, or milliseconds when it is that large), else receivedAt. Raw is
// the form as a JSON object (each name → its value, or list of values when repeated). SourceID
// is left to the caller.
//
// Errors (*errcode.Error, kind Invalid, code "invalid_flex_event"): no TaskSid, TaskAttributes
// that is not a JSON object, no customer address.
func EventFromTaskRouter(form url.Values, receivedAt time.Time) (message.Message, bool, error) {
	eventType := strings.TrimSpace(form.Get("EventType"))
	event, ok := recordedEvents[eventType]
	if !ok {
		return message.Message{}, false, nil
	}
	taskSid := strings.TrimSpace(form.Get("TaskSid"))
	if taskSid == "" {
		return message.Message{}, false, flexErr("TaskSid", "the %s callback has no TaskSid", eventType)
	}
	attrs := map[string]any{}
	if s := strings.TrimSpace(form.Get("TaskAttributes")); s != "" {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil || dec.More() {
			return message.Message{}, false, flexErr("TaskAttributes", "TaskAttributes is not valid JSON")
		}
		obj, isObj := v.(map[string]any)
		if !isObj {
			return message.Message{}, false, flexErr("TaskAttributes", "TaskAttributes must be a JSON object")
		}
		attrs = obj
	}
	conv := message.Object(attrs, "conversations")
	customers := message.Object(attrs, "customers")
	reservationSid := strings.TrimSpace(form.Get("ReservationSid"))

	props := map[string]any{"taskSid": taskSid}
	direction := "inbound"
	if strings.HasPrefix(strings.ToLower(str(attrs["direction"])), "outbound") {
		direction = "outbound"
	}
	props["direction"] = direction

	// Customer address candidates, most specific first.
	var candidates []string
	if direction == "outbound" {
		candidates = append(candidates, str(attrs["to"]))
	} else {
		candidates = append(candidates, str(attrs["from"]))
	}
	candidates = append(candidates, str(attrs["customerAddress"]), str(customers["phone"]), str(customers["email"]))

	if ch := channelType(form.Get("TaskChannelUniqueName"), str(attrs["channelType"]), candidates[0]); ch != "" {
		props["channelType"] = ch
	}
	if d, ok := number(form.Get("TaskAge")); ok {
		props["duration"] = d
	} else if d, ok := number(conv["duration"]); ok {
		props["duration"] = d
	}
	props["interactionSid"] = firstNonEmpty(str(attrs["flexInteractionSid"]), taskSid)
	if s := firstNonEmpty(str(attrs["flexInteractionChannelSid"]), str(attrs["channelSid"])); s != "" {
		props["channelSid"] = s
	}
	if s := strings.TrimSpace(form.Get("WorkerSid")); s != "" {
		props["lastKnownAgentWorkerSid"] = s
	}
	if reservationSid != "" {
		props["reservationSid"] = reservationSid
	}
	if s := strings.TrimSpace(form.Get("TaskQueueName")); s != "" {
		props["taskQueueName"] = s
	}
	var codes []string
	for _, v := range []any{conv["disposition_code"], conv["disposition_codes"], conv["wrapup_code"], conv["wrapup_codes"],
		attrs["disposition_code"], attrs["disposition_codes"], attrs["wrapup_code"], attrs["wrapup_codes"]} {
		codes = appendCodes(codes, v)
	}
	if len(codes) > 0 {
		props["codes"] = codes
	}
	if s, ok := conv["sentiment"]; ok && s != nil {
		if n, isNum := number(s); isNum {
			props["sentiment"] = n
		} else if t := str(s); t != "" {
			props["sentiment"] = t
		}
	}

	traits := map[string]any{}
	anon := ""
	for _, c := range candidates {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		norm := ""
		if e, isEmail := normalEmail(c); isEmail {
			norm = e
			if _, seen := traits["email"]; !seen {
				traits["email"] = e
			}
		} else if p, err := NormalizePhone(c, ""); err == nil {
			norm = p
			if _, seen := traits["phone"]; !seen {
				traits["phone"] = p
			}
		}
		if anon == "" {
			anon = firstNonEmpty(norm, c)
		}
	}
	if anon == "" {
		return message.Message{}, false, flexErr("TaskAttributes", "the task has no customer address: TaskAttributes needs %q, customerAddress, customers.phone or customers.email", map[string]string{"inbound": "from", "outbound": "to"}[direction])
	}

	m := message.Message{
		Type:        message.Track,
		MessageID:   messageID(taskSid, eventType, reservationSid),
		AnonymousID: "flex:" + anon,
		Event:       event,
		Properties:  props,
		Context:     map[string]any{},
		Timestamp:   timestamp(form, receivedAt),
		ReceivedAt:  receivedAt,
		Raw:         rawForm(form),
	}
	if len(traits) > 0 {
		m.Context["traits"] = traits
	}
	return m, true, nil
}

func flexErr(field, format string, args ...any) *errcode.Error {
	e := errcode.New(errcode.Invalid, "invalid_flex_event", format, args...)
	e.Field = field
	return e
}

// channelType tells the channel of a task: WhatsApp when the customer address says so, then
// the attributes' channelType, then the TaskChannelUniqueName; "" when none is known.
func channelType(taskChannel, attrChannel, address string) string {
	tc := strings.ToLower(strings.TrimSpace(taskChannel))
	ac := strings.ToLower(strings.TrimSpace(attrChannel))
	if tc == "voice" || ac == "voice" || ac == "phone" {
		return ChannelVoice
	}
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(address)), "whatsapp:") {
		return ChannelWhatsApp
	}
	for _, c := range []string{ac, tc} {
		switch c {
		case "whatsapp":
			return ChannelWhatsApp
		case "sms":
			return ChannelSMS
		case "email":
			return ChannelEmail
		case "chat", "web", "webchat", "messenger", "gbm":
			return ChannelChat
		}
	}
	return ""
}

func messageID(taskSid, eventType, reservationSid string) string {
	sum := sha256.Sum256([]byte(taskSid + "\x00" + eventType + "\x00" + reservationSid))
	return "flex-" + hex.EncodeToString(sum[:])[:32]
}

// timestamp reads TimestampMs, then Timestamp (seconds, or milliseconds when ≥ 1e11, i.e.
// after 1973 in ms), else receivedAt.
func timestamp(form url.Values, receivedAt time.Time) time.Time {
	if ms, err := strconv.ParseInt(strings.TrimSpace(form.Get("TimestampMs")), 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms).UTC()
	}
	if v, err := strconv.ParseInt(strings.TrimSpace(form.Get("Timestamp")), 10, 64); err == nil && v > 0 {
		if v >= 1e11 {
			return time.UnixMilli(v).UTC()
		}
		return time.Unix(v, 0).UTC()
	}
	return receivedAt
}

func rawForm(form url.Values) json.RawMessage {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	obj := make(map[string]any, len(form))
	for _, k := range keys {
		if vs := form[k]; len(vs) == 1 {
			obj[k] = vs[0]
		} else {
			obj[k] = vs
		}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil
	}
	return bytes.Clone(b)
}

// str returns v as a trimmed string when it is a string or a JSON number, else "".
func str(v any) string {
	switch t := v.(type) {
	case string:
		return strings.TrimSpace(t)
	case json.Number:
		return t.String()
	}
	return ""
}

// number returns v (a string, json.Number or float64) as a finite float64.
func number(v any) (float64, bool) {
	var f float64
	var err error
	switch t := v.(type) {
	case string:
		if strings.TrimSpace(t) == "" {
			return 0, false
		}
		f, err = strconv.ParseFloat(strings.TrimSpace(t), 64)
	case json.Number:
		f, err = t.Float64()
	case float64:
		f = t
	default:
		return 0, false
	}
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// appendCodes adds v (a string, a JSON number, or a list of them) to codes, skipping
// empty and repeated values.
func appendCodes(codes []string, v any) []string {
	add := func(s string) {
		if s == "" {
			return
		}
		for _, c := range codes {
			if c == s {
				return
			}
		}
		codes = append(codes, s)
	}
	switch t := v.(type) {
	case []any:
		for _, x := range t {
			add(str(x))
		}
	default:
		add(str(t))
	}
	return codes
}

// normalEmail returns s (without a "mailto:" prefix) lower-cased when it looks like an email
// address: one '@', something before it, a dot in the domain, no spaces.
func normalEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= 7 && strings.EqualFold(s[:7], "mailto:") {
		s = s[7:]
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 || strings.Count(s, "@") != 1 || strings.ContainsAny(s, " \t\r\n<>") {
		return "", false
	}
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", false
	}
	return strings.ToLower(s), true
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
