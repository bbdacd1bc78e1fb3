package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
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
		owners, profiles, err := s.owners(ctx, spaceID, []identity.Identifier{id}, got, nil)
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
		l := profiles[pid]
		if err := l.decodeFull(); err != nil {
			return Profile{}, err
		}
		return l.p, nil
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
	// Counted: the message's daily counters were written as it was applied (its space had a
	// prediction, or it was imported); BackfillCounts folds in only the events without it.
	Counted bool `json:"counted,omitempty"`
}

// Events returns a profile's events between start and end (inclusive start, exclusive end),
// oldest first, including those of the profiles merged into it: every one of them (the
// computed-trait backfill's read). Readers of a page use EventsInOrder.
func (s *Service) Events(ctx context.Context, spaceID string, p Profile, start, end time.Time) ([]Event, error) {
	var out []Event
	for e, err := range s.EventsInOrder(ctx, spaceID, p, start, end, false) {
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// eventsPerRead is how many events one query of a profile's partition reads.
const eventsPerRead = 50

// EventsInOrder yields a profile's events between start and end (inclusive start, exclusive
// end), newest first when newestFirst, including those of the profiles merged into it. It
// reads each partition a page at a time as the caller pulls, so a page of n events costs
// O(n) per merged profile however many events the profile has.
func (s *Service) EventsInOrder(ctx context.Context, spaceID string, p Profile, start, end time.Time, newestFirst bool) iter.Seq2[Event, error] {
	lo := eventPrefix + start.UTC().Format(eventTimeLayout)
	hi := eventPrefix + end.UTC().Format(eventTimeLayout)
	return func(yield func(Event, error) bool) {
		if hi <= lo {
			return
		}
		type pager struct {
			pk    string
			after string
			buf   []store.Item
			done  bool
		}
		pids := append([]string{p.ID}, p.MergedIDs...)
		pagers := make([]*pager, len(pids))
		for i, pid := range pids {
			pagers[i] = &pager{pk: profilePK(spaceID, pid), after: lo}
			if newestFirst {
				pagers[i].after = hi // sort keys strictly below: events before end
			}
		}
		// fill reads the next page of pg when its buffer is empty; it reports false on error.
		fill := func(pg *pager) bool {
			if len(pg.buf) > 0 || pg.done {
				return true
			}
			items, err := s.st.Query(ctx, pg.pk, store.Page{Prefix: eventPrefix, After: pg.after, Limit: eventsPerRead, Desc: newestFirst})
			if err != nil {
				yield(Event{}, err)
				return false
			}
			if len(items) < eventsPerRead {
				pg.done = true
			}
			if len(items) > 0 {
				pg.after = items[len(items)-1].SK
			}
			for _, it := range items {
				if (newestFirst && it.SK < lo) || (!newestFirst && it.SK >= hi) {
					pg.done = true
					break
				}
				pg.buf = append(pg.buf, it)
			}
			return true
		}
		for {
			var next *pager
			for _, pg := range pagers {
				if !fill(pg) {
					return
				}
				if len(pg.buf) == 0 {
					continue
				}
				if next == nil || (newestFirst && pg.buf[0].SK > next.buf[0].SK) || (!newestFirst && pg.buf[0].SK < next.buf[0].SK) {
					next = pg
				}
			}
			if next == nil {
				return
			}
			it := next.buf[0]
			next.buf = next.buf[1:]
			var e Event
			if err := json.Unmarshal(it.Data, &e); err != nil {
				yield(Event{}, fmt.Errorf("decode event %s: %w", it.Key, err))
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
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

// EachProfile yields every live profile of a space (those merged away are left out: the
// survivor carries their ids), reading the space's sharded profile list a page at a time
// and each page's profiles in one GetMany. Profiles created meanwhile may or may not be
// yielded. The caller has checked that the space is the caller's.
func (s *Service) EachProfile(ctx context.Context, spaceID string) iter.Seq2[Profile, error] {
	return func(yield func(Profile, error) bool) {
		for page, err := range s.listedPages(ctx, spaceID, listCursor{}) {
			if err != nil {
				yield(Profile{}, err)
				return
			}
			keys := make([]store.Key, len(page.pids))
			for i, pid := range page.pids {
				keys[i] = profileKey(spaceID, pid)
			}
			got := make(map[store.Key]store.Item, len(keys))
			if err := s.getMany(ctx, got, keys); err != nil {
				yield(Profile{}, err)
				return
			}
			for _, k := range keys {
				it, ok := got[k]
				if !ok {
					continue // listed, not (or no longer) stored
				}
				var p Profile
				if err := json.Unmarshal(it.Data, &p); err != nil {
					yield(Profile{}, fmt.Errorf("decode profile %s: %w", k, err))
					return
				}
				if p.MergedInto != "" {
					continue
				}
				if !yield(p, nil) {
					return
				}
			}
		}
	}
}

// IsAnonymous reports whether a profile knows no one: its identifiers (if any) are all
// anonymous ids, so nothing ties it to a person (a user id, an email, a device).
func IsAnonymous(p Profile) bool {
	for _, id := range p.Identifiers {
		if id.Type != identity.TypeAnonymousID {
			return false
		}
	}
	return true
}
