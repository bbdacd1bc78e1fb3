package tracking

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// The debugger keeps what each source sent, newest first, for troubleshooting.
const (
	DebuggerSize      = 500 // entries a debugger shows at most
	DefaultDebugLimit = 100
	debuggerRetention = 7 * 24 * time.Hour
)

// Entry is one message in a source's debugger.
type Entry struct {
	Cursor     string          `json:"cursor"` // identifies the entry; a tail resumes after it
	ReceivedAt time.Time       `json:"received_at"`
	Status     string          `json:"status"` // accepted, duplicate or rejected
	Raw        json.RawMessage `json:"raw"`    // as received (a JSON string when it was not JSON)
	Normalised *Normalised     `json:"normalised,omitempty"`
	Outcome    *EntryOutcome   `json:"outcome,omitempty"`
	Rejection  *EntryRejection `json:"rejection,omitempty"`
}

// Normalised is what normalisation decided for a message.
type Normalised struct {
	Type        string    `json:"type"`
	MessageID   string    `json:"message_id"`
	UserID      string    `json:"user_id,omitempty"`
	AnonymousID string    `json:"anonymous_id,omitempty"`
	GroupID     string    `json:"group_id,omitempty"`
	PreviousID  string    `json:"previous_id,omitempty"`
	Event       string    `json:"event,omitempty"`
	Name        string    `json:"name,omitempty"`
	Timestamp   time.Time `json:"timestamp"`
	ReceivedAt  time.Time `json:"received_at"`
	IP          string    `json:"ip,omitempty"`
}

// EntryOutcome is what identity resolution did with an accepted message.
type EntryOutcome struct {
	ProfileID  string               `json:"profile_id"`
	Created    bool                 `json:"created"`
	Added      []string             `json:"added,omitempty"`
	Merged     []string             `json:"merged,omitempty"`
	Violations []identity.Violation `json:"violations,omitempty"`
}

// EntryRejection says why a message was refused.
type EntryRejection struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Entry statuses.
const (
	StatusAccepted  = "accepted"
	StatusDuplicate = "duplicate"
	StatusRejected  = "rejected"
)

func debuggerPK(srcID string) string { return "DBG#" + srcID }

// debuggerSK sorts newest first (ascending keys, inverted time), and within one request the
// last message first, so that a query from the start of the partition reads the latest.
func debuggerSK(at time.Time, index int) string {
	return fmt.Sprintf("%019d#%05d", math.MaxInt64-at.UnixNano(), 99999-min(index, 99999))
}

// record writes the debugger entries of one request, and the source's "seen" records.
func (s *Service) record(ctx context.Context, src workspace.Source, applied []Parsed, res Result) error {
	now := s.now()
	exp := now.Add(debuggerRetention).Unix()
	var ops []store.Op
	add := func(index int, e Entry) {
		e.Cursor = debuggerSK(now, index)
		e.ReceivedAt = now
		it := store.JSONItem(store.Key{PK: debuggerPK(src.ID), SK: e.Cursor}, e)
		it.ExpiresAt = exp
		ops = append(ops, store.PutOp(it, store.Always))
	}
	outcomes := map[int]Outcome{}
	for _, o := range res.Outcomes {
		outcomes[o.Index] = o
	}
	rejected := map[int]Rejection{}
	for _, r := range res.Rejected {
		rejected[r.Index] = r
	}
	for _, pm := range applied {
		m := pm.Message
		e := Entry{Raw: rawJSON(m.Raw), Normalised: &Normalised{Type: m.Type, MessageID: m.MessageID, UserID: m.UserID,
			AnonymousID: m.AnonymousID, GroupID: m.GroupID, PreviousID: m.PreviousID, Event: m.Event, Name: m.Name,
			Timestamp: m.Timestamp, ReceivedAt: m.ReceivedAt}}
		if ctxMap, ok := m.Context["ip"].(string); ok {
			e.Normalised.IP = ctxMap
		}
		if r, ok := rejected[pm.Index]; ok {
			e.Status, e.Rejection = StatusRejected, &EntryRejection{Code: r.Code, Message: r.Message, Field: r.Field}
			delete(rejected, pm.Index)
		} else if o, ok := outcomes[pm.Index]; ok {
			e.Status = StatusAccepted
			if o.Duplicate {
				e.Status = StatusDuplicate
			}
			eo := &EntryOutcome{ProfileID: o.ProfileID, Created: o.Created && !o.Duplicate, Merged: o.Merged, Violations: o.Violations}
			for _, id := range o.Added {
				eo.Added = append(eo.Added, id.String())
			}
			e.Outcome = eo
		} else {
			continue
		}
		add(pm.Index, e)
	}
	for _, r := range rejected { // the parser's rejections
		add(r.Index, Entry{Status: StatusRejected, Raw: rawJSON(r.Raw), Rejection: &EntryRejection{Code: r.Code, Message: r.Message, Field: r.Field}})
	}
	ops = append(ops, s.seenOps(src.ID, applied)...)
	for len(ops) > 0 {
		n := min(len(ops), store.MaxOps)
		if err := s.st.Transact(ctx, ops[:n]...); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// rawJSON keeps raw as it came when it is JSON, and as a JSON string otherwise. Bytes that
// are not UTF-8 (a message refused for them) are shown as U+FFFD: the entry is for people
// to read, and every answer is valid UTF-8.
func rawJSON(raw []byte) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage(`null`)
	}
	if json.Valid(raw) {
		if !utf8.Valid(raw) {
			// Outside strings such bytes are not JSON, so this replaces only inside strings.
			return bytes.ToValidUTF8(raw, []byte("\uFFFD"))
		}
		return raw
	}
	b, _ := json.Marshal(string(raw))
	return b
}

// Debugger returns a source's latest entries, newest first: at most limit (1 to
// DebuggerSize; DefaultDebugLimit when 0), and only those whose payload as received contains
// search (case-insensitive) when it is set. Only the latest DebuggerSize are searched.
// Caller: the workspace's token. Errors: forbidden, not_found, invalid_field (limit).
func (s *Service) Debugger(ctx context.Context, p workspace.Principal, wsID, srcID, search string, limit int) ([]Entry, error) {
	if limit == 0 {
		limit = DefaultDebugLimit
	}
	if limit < 1 || limit > DebuggerSize {
		return nil, errcode.InvalidField("limit", "must be between 1 and %d", DebuggerSize)
	}
	entries, err := s.latest(ctx, p, wsID, srcID, "", search)
	if err != nil {
		return nil, err
	}
	return entries[:min(limit, len(entries))], nil
}

// DebuggerSince returns the entries newer than the one at cursor (the latest DebuggerSize
// when cursor is ""), oldest first: what a live tail sends next.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) DebuggerSince(ctx context.Context, p workspace.Principal, wsID, srcID, cursor, search string) ([]Entry, error) {
	entries, err := s.latest(ctx, p, wsID, srcID, cursor, search)
	if err != nil {
		return nil, err
	}
	slices.Reverse(entries)
	return entries, nil
}

// latest reads up to DebuggerSize entries, newest first, stopping at cursor.
func (s *Service) latest(ctx context.Context, p workspace.Principal, wsID, srcID, cursor, search string) ([]Entry, error) {
	if _, err := s.ws.GetSource(ctx, p, wsID, srcID); err != nil {
		return nil, err
	}
	items, err := s.st.Query(ctx, debuggerPK(srcID), store.Page{Limit: DebuggerSize})
	if err != nil {
		return nil, err
	}
	needle := []byte(strings.ToLower(search))
	entries := make([]Entry, 0, len(items))
	for _, it := range items {
		if cursor != "" && it.SK >= cursor {
			break
		}
		var e Entry
		if err := json.Unmarshal(it.Data, &e); err != nil {
			return nil, fmt.Errorf("decode debugger entry %s: %w", it.Key, err)
		}
		if search != "" && !bytes.Contains(bytes.ToLower(e.Raw), needle) {
			continue
		}
		entries = append(entries, e)
	}
	return entries, nil
}
