// Package flextest builds TaskRouter event callbacks as Twilio posts them, for the tests and
// benchmarks of everything that receives them.
package flextest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

var seq atomic.Int64

// Callback is a TaskRouter event callback form with a fresh TaskSid (and, for a reservation
// event, ReservationSid and WorkerSid), attrs as its TaskAttributes JSON, at time at.
func Callback(eventType, taskChannel, attrs string, at time.Time) url.Values {
	n := seq.Add(1)
	f := url.Values{
		"AccountSid":            {"AC00000000000000000000000000000001"},
		"WorkspaceSid":          {"WS00000000000000000000000000000001"},
		"EventType":             {eventType},
		"TaskSid":               {fmt.Sprintf("WT%032d", n)},
		"TaskChannelUniqueName": {taskChannel},
		"TaskQueueName":         {"Everyone"},
		"TaskAge":               {"95"},
		"TaskAttributes":        {attrs},
		"TimestampMs":           {strconv.FormatInt(at.UnixMilli(), 10)},
	}
	if eventType == "reservation.wrapup" {
		f.Set("ReservationSid", fmt.Sprintf("WR%032d", n))
		f.Set("WorkerSid", "WK00000000000000000000000000000001")
	}
	return f
}

// Engagement is the wrap-up of an interaction with customer (a phone number or an address
// such as "whatsapp:+1…") over channel — voice, sms or whatsapp (a chat task whose
// attributes say whatsapp, as Flex Conversations sends it) — inbound (from the customer) or
// outbound (to them).
func Engagement(direction, channel, customer string, at time.Time) url.Values {
	attrs := map[string]string{"direction": direction}
	if direction == "inbound" {
		attrs["from"] = customer
	} else {
		attrs["to"] = customer
	}
	taskChannel := channel
	if channel == "whatsapp" {
		taskChannel, attrs["channelType"] = "chat", "whatsapp"
	}
	b, _ := json.Marshal(attrs) // strings only: cannot fail
	return Callback("reservation.wrapup", taskChannel, string(b), at)
}
