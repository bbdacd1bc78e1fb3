package flex

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/message"
)

var received = time.Date(2026, 11, 29, 17, 0, 0, 0, time.UTC)

// callback builds a TaskRouter event callback form as Twilio posts it.
func callback(eventType, channel, attrs string, extra ...string) url.Values {
	f := url.Values{
		"AccountSid":            {"AC00000000000000000000000000000001"},
		"WorkspaceSid":          {"WS00000000000000000000000000000001"},
		"WorkspaceName":         {"Flex Task Assignment"},
		"EventType":             {eventType},
		"EventDescription":      {"event " + eventType},
		"ResourceType":          {"task"},
		"ResourceSid":           {"WT00000000000000000000000000000001"},
		"Timestamp":             {"1764435600"}, // 2025-11-29T17:00:00Z
		"TaskSid":               {"WT00000000000000000000000000000001"},
		"TaskQueueSid":          {"WQ00000000000000000000000000000001"},
		"TaskQueueName":         {"Everyone"},
		"TaskChannelSid":        {"TC00000000000000000000000000000001"},
		"TaskChannelUniqueName": {channel},
		"TaskAge":               {"184"},
		"TaskPriority":          {"0"},
		"TaskAssignmentStatus":  {"wrapping"},
		"TaskAttributes":        {attrs},
	}
	if eventType == "reservation.wrapup" {
		f.Set("ResourceType", "reservation")
		f.Set("ReservationSid", "WR00000000000000000000000000000001")
		f.Set("WorkerSid", "WK00000000000000000000000000000001")
		f.Set("WorkerName", "alice")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			f.Del(extra[i])
		} else {
			f.Set(extra[i], extra[i+1])
		}
	}
	return f
}

type obj = map[string]any

func TestEventFromTaskRouter(t *testing.T) {
	ts := time.Unix(1764435600, 0).UTC()
	cases := []struct {
		name      string
		form      url.Values
		event     string
		anon      string
		traits    obj
		props     obj
		timestamp time.Time
	}{
		{
			name: "inbound voice wrap-up",
			form: callback("reservation.wrapup", "voice",
				`{"from":"+14155550100","to":"+18005550199","direction":"inbound","call_sid":"CA1","caller":"+14155550100","called":"+18005550199","conversations":{"sentiment":"positive"},"flexInteractionSid":"KD00000000000000000000000000000001","flexInteractionChannelSid":"UO00000000000000000000000000000001"}`),
			event: EventEngagementInitiated, anon: "flex:+14155550100", traits: obj{"phone": "+14155550100"},
			props: obj{"channelType": "voice", "direction": "inbound", "duration": 184.0, "taskSid": "WT00000000000000000000000000000001",
				"interactionSid": "KD00000000000000000000000000000001", "channelSid": "UO00000000000000000000000000000001",
				"lastKnownAgentWorkerSid": "WK00000000000000000000000000000001", "reservationSid": "WR00000000000000000000000000000001",
				"taskQueueName": "Everyone", "sentiment": "positive"},
			timestamp: ts,
		},
		{
			name: "inbound SMS (Conversations chat task) completed with disposition codes",
			form: callback("task.completed", "chat",
				`{"channelType":"sms","from":"+44 20 7946 0958","direction":"inbound","conversationSid":"CH00000000000000000000000000000001","channelSid":"CH00000000000000000000000000000001","conversations":{"disposition_code":"resolved","wrapup_codes":["billing","resolved"],"duration":312,"sentiment":-0.4}}`,
				"TaskAge", "", "TimestampMs", "1764435600123"),
			event: EventEngagementCompleted, anon: "flex:+442079460958", traits: obj{"phone": "+442079460958"},
			props: obj{"channelType": "sms", "direction": "inbound", "duration": 312.0, "taskSid": "WT00000000000000000000000000000001",
				"interactionSid": "WT00000000000000000000000000000001", "channelSid": "CH00000000000000000000000000000001",
				"taskQueueName": "Everyone", "codes": []string{"resolved", "billing"}, "sentiment": -0.4},
			timestamp: time.UnixMilli(1764435600123).UTC(),
		},
		{
			name: "inbound WhatsApp told by the from address",
			form: callback("reservation.wrapup", "chat",
				`{"channelType":"chat","from":"whatsapp:+14155550100","direction":"inbound","name":"whatsapp:+14155550100"}`,
				"Timestamp", "1764435600000"),
			event: EventEngagementInitiated, anon: "flex:+14155550100", traits: obj{"phone": "+14155550100"},
			props: obj{"channelType": "whatsapp", "direction": "inbound", "duration": 184.0, "taskSid": "WT00000000000000000000000000000001",
				"interactionSid": "WT00000000000000000000000000000001", "lastKnownAgentWorkerSid": "WK00000000000000000000000000000001",
				"reservationSid": "WR00000000000000000000000000000001", "taskQueueName": "Everyone"},
			timestamp: ts,
		},
		{
			name: "outbound voice: the customer is 'to', not the caller ID",
			form: callback("reservation.wrapup", "voice",
				`{"type":"outbound","direction":"outbound","from":"+18005550199","to":"+1 415 555 0111","name":"+14155550111","targetWorker":"client:alice"}`),
			event: EventEngagementInitiated, anon: "flex:+14155550111", traits: obj{"phone": "+14155550111"},
			props: obj{"channelType": "voice", "direction": "outbound", "duration": 184.0, "taskSid": "WT00000000000000000000000000000001",
				"interactionSid": "WT00000000000000000000000000000001", "lastKnownAgentWorkerSid": "WK00000000000000000000000000000001",
				"reservationSid": "WR00000000000000000000000000000001", "taskQueueName": "Everyone"},
			timestamp: ts,
		},
		{
			name: "email task with customers.email and phone",
			form: callback("task.completed", "email",
				`{"channelType":"email","direction":"inbound","from":"mailto:Jane.Doe@Example.COM","customers":{"email":"jane.doe@example.com","phone":"+14155550122"},"flexInteractionSid":"KD2","conversations":{"disposition_code":"refund"}}`,
				"TaskAge", "45", "Timestamp", ""),
			event: EventEngagementCompleted, anon: "flex:jane.doe@example.com", traits: obj{"email": "jane.doe@example.com", "phone": "+14155550122"},
			props: obj{"channelType": "email", "direction": "inbound", "duration": 45.0, "taskSid": "WT00000000000000000000000000000001",
				"interactionSid": "KD2", "taskQueueName": "Everyone", "codes": []string{"refund"}},
			timestamp: received,
		},
		{
			name:  "web chat without phone or email keeps the chat identity as anonymous ID",
			form:  callback("task.completed", "chat", `{"channelType":"web","from":"Jane","direction":"inbound"}`, "TaskQueueName", ""),
			event: EventEngagementCompleted, anon: "flex:Jane", traits: nil,
			props: obj{"channelType": "chat", "direction": "inbound", "duration": 184.0, "taskSid": "WT00000000000000000000000000000001",
				"interactionSid": "WT00000000000000000000000000000001"},
			timestamp: ts,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, ok, err := EventFromTaskRouter(c.form, received)
			if err != nil || !ok {
				t.Fatalf("ok=%v err=%v", ok, err)
			}
			if m.Type != message.Track || m.Event != c.event || m.AnonymousID != c.anon || m.UserID != "" {
				t.Errorf("type %q event %q anonymousId %q userId %q", m.Type, m.Event, m.AnonymousID, m.UserID)
			}
			if got := message.Object(m.Context, "traits"); !reflect.DeepEqual(got, map[string]any(c.traits)) && !(got == nil && c.traits == nil) {
				t.Errorf("context.traits = %#v, want %#v", got, c.traits)
			}
			if !reflect.DeepEqual(m.Properties, map[string]any(c.props)) {
				t.Errorf("properties =\n %#v\nwant\n %#v", m.Properties, c.props)
			}
			if !m.Timestamp.Equal(c.timestamp) || !m.ReceivedAt.Equal(received) {
				t.Errorf("timestamp %v receivedAt %v, want %v", m.Timestamp, m.ReceivedAt, c.timestamp)
			}
			if !strings.HasPrefix(m.MessageID, "flex-") || len(m.MessageID) != 5+32 {
				t.Errorf("messageId %q", m.MessageID)
			}
			var raw map[string]any
			if err := json.Unmarshal(m.Raw, &raw); err != nil || raw["TaskSid"] != c.form.Get("TaskSid") {
				t.Errorf("raw %s: %v", m.Raw, err)
			}
		})
	}
}

// A Twilio retry of the same callback gets the same MessageID; another event, reservation or
// task does not.
func TestEventFromTaskRouterMessageID(t *testing.T) {
	attrs := `{"from":"+14155550100"}`
	id := func(f url.Values) string {
		t.Helper()
		m, ok, err := EventFromTaskRouter(f, received)
		if err != nil || !ok {
			t.Fatalf("ok=%v err=%v", ok, err)
		}
		return m.MessageID
	}
	first := id(callback("reservation.wrapup", "voice", attrs))
	retry := id(callback("reservation.wrapup", "voice", attrs, "Timestamp", "1764435999", "TaskAge", "999"))
	if first != retry {
		t.Fatalf("retry got a new MessageID: %s vs %s", first, retry)
	}
	others := []url.Values{
		callback("task.completed", "voice", attrs),
		callback("reservation.wrapup", "voice", attrs, "ReservationSid", "WR00000000000000000000000000000002"),
		callback("reservation.wrapup", "voice", attrs, "TaskSid", "WT00000000000000000000000000000002"),
	}
	for i, f := range others {
		if id(f) == first {
			t.Errorf("case %d: same MessageID as a different event", i)
		}
	}
}

func TestEventFromTaskRouterIgnored(t *testing.T) {
	for _, et := range []string{"task.created", "reservation.created", "reservation.accepted", "reservation.completed",
		"worker.activity.update", "task-queue.entered", "", "RESERVATION.WRAPUP"} {
		f := callback(et, "voice", `{"from":"+14155550100"}`)
		if et == "worker.activity.update" {
			f.Del("TaskSid")
			f.Del("TaskAttributes")
		}
		m, ok, err := EventFromTaskRouter(f, received)
		if ok || err != nil || m.MessageID != "" {
			t.Errorf("%q: ok=%v err=%v message=%+v; want ignored", et, ok, err, m)
		}
	}
	if _, ok, err := EventFromTaskRouter(nil, received); ok || err != nil {
		t.Errorf("nil form: ok=%v err=%v", ok, err)
	}
}

func TestEventFromTaskRouterJunk(t *testing.T) {
	cases := []struct {
		name, field, says string
		form              url.Values
	}{
		{"no TaskSid", "TaskSid", "no TaskSid", callback("task.completed", "voice", `{"from":"+14155550100"}`, "TaskSid", "")},
		{"blank TaskSid", "TaskSid", "no TaskSid", callback("task.completed", "voice", `{"from":"+14155550100"}`, "TaskSid", "  ")},
		{"attributes not JSON", "TaskAttributes", "not valid JSON", callback("reservation.wrapup", "voice", `{"from":`)},
		{"attributes trailing junk", "TaskAttributes", "not valid JSON", callback("reservation.wrapup", "voice", `{"from":"+14155550100"} x`)},
		{"attributes an array", "TaskAttributes", "JSON object", callback("reservation.wrapup", "voice", `["+14155550100"]`)},
		{"attributes a string", "TaskAttributes", "JSON object", callback("reservation.wrapup", "voice", `"+14155550100"`)},
		{"no customer address", "TaskAttributes", "no customer address", callback("reservation.wrapup", "voice", `{"direction":"inbound"}`)},
		{"no attributes at all", "TaskAttributes", "no customer address", callback("task.completed", "voice", "", "TaskAttributes", "")},
		{"outbound without to", "TaskAttributes", `"to"`, callback("reservation.wrapup", "voice", `{"direction":"outbound","from":"+18005550199"}`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, ok, err := EventFromTaskRouter(c.form, received)
			e := errcode.As(err)
			if ok || e == nil || e.Kind != errcode.Invalid || e.Code != "invalid_flex_event" || e.Field != c.field || !strings.Contains(e.Message, c.says) {
				t.Fatalf("ok=%v err=%#v; want invalid_flex_event on %s saying %q", ok, e, c.field, c.says)
			}
		})
	}
}

func TestChannelType(t *testing.T) {
	cases := []struct{ task, attr, addr, want string }{
		{"voice", "", "+14155550100", "voice"},
		{"Voice", "", "", "voice"},
		{"default", "voice", "", "voice"},
		{"chat", "whatsapp", "+14155550100", "whatsapp"},
		{"chat", "", "WhatsApp:+14155550100", "whatsapp"},
		{"sms", "", "+14155550100", "sms"},
		{"chat", "SMS", "+14155550100", "sms"},
		{"chat", "web", "Jane", "chat"},
		{"chat", "messenger", "messenger:123", "chat"},
		{"chat", "", "Jane", "chat"},
		{"email", "", "a@b.example", "email"},
		{"chat", "email", "a@b.example", "email"},
		{"default", "", "x", ""},
		{"", "", "", ""},
	}
	for _, c := range cases {
		if got := channelType(c.task, c.attr, c.addr); got != c.want {
			t.Errorf("channelType(%q, %q, %q) = %q, want %q", c.task, c.attr, c.addr, got, c.want)
		}
	}
}
