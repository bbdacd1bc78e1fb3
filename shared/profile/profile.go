// Package profile keeps unified profiles: it applies every resolved message to exactly one
// profile (identifiers, traits with newest-wins precedence, events, metadata) through one
// entry point, Apply, that every ingest path calls.
package profile

import (
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/store"
)

// Limits.
const (
	// MaxTraitsPerIdentify: identify calls with this many traits or more are rejected.
	MaxTraitsPerIdentify = 300
	// MaxViolationsKept: the most recent violations a profile keeps for people to read.
	MaxViolationsKept = 100
	// MaxGroups: the most groups (accounts) a profile belongs to; a group call past it is
	// refused. Every list a profile holds is bounded (identifiers by identity.MaxIdentifiers,
	// merged ids by identity.MaxMerges, traits by MaxProfileBytes).
	MaxGroups = 100
	// EventRetention: events are stored this long. An older message (an import) is applied
	// and counted (DailyCounts) but its event is not stored: no reader would show it.
	EventRetention = 30 * 24 * time.Hour
	// EventQueryWindow: how far back events can be queried.
	EventQueryWindow = 14 * 24 * time.Hour
	// FutureSkew: how far past its arrival an event's timestamp may be (a sender's clock
	// running fast). Readers look this far ahead of now, so such events show at once; the
	// tracking API sets a later timestamp to the time the message arrived.
	FutureSkew = time.Minute
	// DedupeWindow: a messageId seen within it is acknowledged and not applied again.
	DedupeWindow = 48 * time.Hour
	// maxAttempts bounds optimistic retries of one Apply under contention.
	maxAttempts = 25
)

// Identifier is an identifier of a profile with where and when it was first seen.
type Identifier struct {
	identity.Seen
	SourceID string `json:"source_id,omitempty"`
}

// Trait is one trait value with the event time that set it. A removed trait (set to null)
// stays as a tombstone so that a late, older event cannot bring it back.
type Trait struct {
	Value   any       `json:"v,omitempty"`
	At      time.Time `json:"at"`
	Removed bool      `json:"removed,omitempty"`
}

// MessageRef names a message for metadata.
type MessageRef struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	At       time.Time `json:"at"`
	SourceID string    `json:"source_id,omitempty"`
}

// Profile is a unified profile as stored.
type Profile struct {
	ID      string `json:"id"`
	SpaceID string `json:"space_id"`
	// MergedInto is set when this profile was merged into another: it then only forwards.
	MergedInto  string               `json:"merged_into,omitempty"`
	CreatedAt   time.Time            `json:"created_at"`
	UpdatedAt   time.Time            `json:"updated_at"`
	Identifiers []Identifier         `json:"identifiers"`
	Traits      map[string]Trait     `json:"traits,omitempty"`
	Merges      int                  `json:"merges"`               // profiles merged in, transitively
	MergedIDs   []string             `json:"merged_ids,omitempty"` // their ids: events stay under them
	Violations  []identity.Violation `json:"violations,omitempty"`
	First       MessageRef           `json:"first_message"`
	Groups      []string             `json:"groups,omitempty"` // group_ids this user belongs to
}

// EventKept reports whether Apply stores m's event: unless its time is more than
// EventRetention before it arrived (now when m does not say), the bound the tracking API
// refuses older events by, except on /v1/import.
func EventKept(m message.Message, now time.Time) bool {
	received := m.ReceivedAt
	if received.IsZero() {
		received = now
	}
	return !m.Timestamp.Before(received.Add(-EventRetention))
}

func (p *Profile) candidate() identity.Candidate {
	c := identity.Candidate{ID: p.ID, CreatedAt: p.CreatedAt, Merges: p.Merges, Identifiers: make([]identity.Seen, len(p.Identifiers))}
	for i, id := range p.Identifiers {
		c.Identifiers[i] = id.Seen
	}
	return c
}

// Keys. Space IDs are unique across workspaces, so a space's items need no workspace prefix;
// every read goes through a space the caller was authorised for.
func spacePK(sp string) string { return "SP#" + sp }
func settingsKey(sp string) store.Key {
	return store.Key{PK: spacePK(sp), SK: "IDENTITY"}
}
func claimKey(sp string, id identity.Identifier) store.Key {
	return store.Key{PK: spacePK(sp) + "#ID#" + id.String(), SK: "C"}
}
func profilePK(sp, pid string) string     { return spacePK(sp) + "#P#" + pid }
func profileKey(sp, pid string) store.Key { return store.Key{PK: profilePK(sp, pid), SK: "P"} }
func dedupeKey(sp, msgID string) store.Key {
	return store.Key{PK: spacePK(sp) + "#M#" + msgID, SK: "M"}
}

const (
	eventPrefix     = "E#"
	eventTimeLayout = "20060102T150405.000000000Z" // fixed width: keys sort by time
)

// eventKey orders a profile's events by event time; the message ID makes it unique.
func eventKey(sp, pid string, at time.Time, msgID string) store.Key {
	return store.Key{PK: profilePK(sp, pid), SK: eventPrefix + at.UTC().Format(eventTimeLayout) + "#" + msgID}
}
