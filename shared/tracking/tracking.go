// Package tracking is the Segment-compatible tracking API's domain: parsing, validating and
// normalising the requests Segment and RudderStack SDKs send (parse.go), and ingesting them
// into a source's space through the identity entry point, with the event debugger and the
// test-connection record (service.go, debugger.go).
package tracking

import (
	"encoding/json"
	"time"

	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
)

// Limits of the tracking API (PRODUCT.md section 5).
const (
	MaxMessageBytes  = 32 * 1024  // one message, as received
	MaxRequestBytes  = 500 * 1024 // one request body, after gunzip
	MaxBatchMessages = 2500
	MaxMessageIDLen  = 100
	MaxFields        = 300 // traits or properties per message
	// ImportWindow is how old a message /v1/import takes (every other call takes
	// profile.EventRetention): a backfill of history for predictions. A message older than
	// the retention is applied and counted (profile.DailyCounts, kept
	// profile.CountsRetention) but its event is not kept (profile.EventKept).
	ImportWindow = 360 * 24 * time.Hour
)

// An imported message's counters must outlive it: this fails to compile (a negative
// constant converted to uint64) if ImportWindow ever passes profile.CountsRetention.
const _ = uint64(profile.CountsRetention - ImportWindow)

// Calls are the endpoints: /v1/<call>. "import" is parsed as "batch".
var Calls = []string{message.Identify, message.Track, message.Page, message.Screen, message.Group, message.Alias, "batch", "import"}

// Request is a parsed request body.
type Request struct {
	WriteKey string      // "writeKey" from the body; "" when absent
	Messages []Parsed    // the valid messages, normalised, in request order
	Rejected []Rejection // the invalid ones (a batch only: a single call answers its error)
	Total    int         // messages in the request
	// Hops counts how many times these messages were forwarded into this source by a Segment
	// Connections destination (0 from a client); see Outbox.
	Hops int
	// Import: the request came to /v1/import (set by Parse). Its track calls are counted for
	// predictions even in a space that has none yet (profile.ImportManyWith).
	Import bool
}

// Parsed is one valid message and its position in the request.
type Parsed struct {
	Index   int
	Message message.Message // Raw holds the message's bytes exactly as received
}

// Rejection says why the message at Index was refused.
type Rejection struct {
	Index   int             `json:"index"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Field   string          `json:"field,omitempty"` // the field at fault, when there is one
	Raw     json.RawMessage `json:"-"`               // the message as received (nil when it could not be cut out)
}

// Env is what the request itself contributes to normalisation.
type Env struct {
	ReceivedAt time.Time
	IP         string        // the caller's address: context.ip when the message says context.direct
	NewID      func() string // assigns a messageId to a message without one

	imported bool // /v1/import: messages up to ImportWindow old (set by Parse)
}
