package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/jsoncheck"
	"github.com/unifiedprofiles/up/shared/store"
)

func profileNotFound() error {
	return errcode.New(errcode.NotFound, "not_found", "Profile was not found.")
}

// ParseIdentifier reads "type:value" (the type never holds a colon).
// Errors: invalid_field, invalid_utf8, nul_character (400).
func ParseIdentifier(field, s string) (identity.Identifier, error) {
	typ, val, ok := strings.Cut(s, ":")
	if !ok || typ == "" || val == "" {
		return identity.Identifier{}, errcode.InvalidField(field, "must be type:value, e.g. email:jane@example.com")
	}
	// Bytes that are not UTF-8 would match the U+FFFD of another customer's stored value.
	if e := jsoncheck.CheckString(field, s); e != nil {
		return identity.Identifier{}, e
	}
	return identity.Identifier{Type: typ, Value: val}, nil
}

// Lookup returns the live profile that owns id. Errors: not_found (404).
func (s *Service) Lookup(ctx context.Context, spaceID string, id identity.Identifier) (Profile, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		got := map[store.Key]store.Item{}
		if err := s.getMany(ctx, got, []store.Key{claimKey(spaceID, id)}); err != nil {
			return Profile{}, err
		}
		owners, profiles, err := s.owners(ctx, spaceID, []identity.Identifier{id}, got)
		if errors.Is(err, errContended) {
			continue
		}
		if err != nil {
			return Profile{}, err
		}
		pid, ok := owners[id]
		if !ok {
			return Profile{}, profileNotFound()
		}
		return profiles[pid].p, nil
	}
	return Profile{}, contention(spaceID)
}

// Get returns a profile by id; a merged-away id answers with its survivor.
// Errors: not_found (404).
func (s *Service) Get(ctx context.Context, spaceID, pid string) (Profile, error) {
	l, err := s.live(ctx, spaceID, pid)
	if errors.Is(err, errNoProfile) {
		return Profile{}, profileNotFound()
	}
	return l.p, err
}

// Event is an event of a profile, as stored (the raw message kept as received).
type Event struct {
	MessageID  string         `json:"message_id"`
	Type       string         `json:"type"`
	Event      string         `json:"event,omitempty"`
	Name       string         `json:"name,omitempty"`
	Timestamp  time.Time      `json:"timestamp"`
	ReceivedAt time.Time      `json:"received_at"`
	SourceID   string         `json:"source_id,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
	// Identifiers are those the message carried under the space's rules when it arrived
	// (blocked values left out), so a read shows them without parsing Raw again.
	Identifiers []identity.Identifier `json:"identifiers,omitempty"`
	Raw         json.RawMessage       `json:"raw,omitempty"`
	// TraitsVersion is the version of the space's computed-trait definitions the event was
	// applied under: a trait created later backfills it, earlier ones counted it live.
	TraitsVersion int64 `json:"traits_version,omitempty"`
}

// Events returns a profile's events between start and end (inclusive start, exclusive end),
// oldest first, including those of the profiles merged into it.
func (s *Service) Events(ctx context.Context, spaceID string, p Profile, start, end time.Time) ([]Event, error) {
	lo := eventPrefix + start.UTC().Format("20060102T150405.000000000Z")
	hi := eventPrefix + end.UTC().Format("20060102T150405.000000000Z")
	var out []Event
	for _, pid := range append([]string{p.ID}, p.MergedIDs...) {
		items, err := s.st.Query(ctx, profilePK(spaceID, pid), store.Page{Prefix: eventPrefix})
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if it.SK < lo || it.SK >= hi {
				continue
			}
			var e Event
			if err := json.Unmarshal(it.Data, &e); err != nil {
				return nil, fmt.Errorf("decode event %s: %w", it.Key, err)
			}
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Event) int {
		if c := a.Timestamp.Compare(b.Timestamp); c != 0 {
			return c
		}
		return strings.Compare(a.MessageID, b.MessageID)
	})
	return out, nil
}

// TraitValues returns the live traits of a profile (removed ones left out).
func (p Profile) TraitValues() map[string]any {
	out := make(map[string]any, len(p.Traits))
	for k, t := range p.Traits {
		if !t.Removed {
			out[k] = t.Value
		}
	}
	return out
}
