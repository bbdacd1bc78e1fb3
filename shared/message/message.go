// Package message is a Segment-spec message as every ingest path hands it to the identity and
// profile domain: tracking calls, CSV rows, warehouse records and Flex events all become one.
package message

import (
	"encoding/json"
	"time"
)

// Types of message (the Segment spec's calls).
const (
	Identify = "identify"
	Track    = "track"
	Page     = "page"
	Screen   = "screen"
	Group    = "group"
	Alias    = "alias"
)

// Message is a normalised message: IDs are strings (SDKs may send numbers), the timestamp is
// the corrected event time, and Raw keeps the bytes exactly as received.
type Message struct {
	Type        string
	MessageID   string
	UserID      string
	AnonymousID string
	GroupID     string
	PreviousID  string
	Event       string // track
	Name        string // page, screen

	Traits       map[string]any // identify, group
	Properties   map[string]any // track, page, screen
	Context      map[string]any // context.traits, context.device, context.externalIds, …
	Integrations map[string]any

	Timestamp  time.Time // event time after clock-skew correction
	ReceivedAt time.Time
	SourceID   string

	Raw json.RawMessage
}

// Object returns m[key] as an object, or nil.
func Object(m map[string]any, key string) map[string]any {
	v, _ := m[key].(map[string]any)
	return v
}
