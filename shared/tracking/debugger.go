package tracking

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
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

// The debugger is spread over debuggerShards partitions per source, each request's entries
// going to one picked at random: a partition takes about 1,000 writes a second on DynamoDB,
// and one item holds the entries of a whole request (up to debuggerItemBytes), so a source
// can send ≥ 10,000 messages a second (ACCESS_PATTERNS.md, "Partition arithmetic").
const (
	debuggerShards    = 16
	debuggerItemBytes = 256 << 10
)

func debuggerPK(srcID string, shard int) string { return fmt.Sprintf("DBG#%s#%02d", srcID, shard) }

// debuggerItem is what one stored debugger item holds: entries of one request, newest first.
type debuggerItem struct {
	Entries []Entry `json:"entries"`
}

// debuggerSK sorts newest first (ascending keys, inverted time, then the inverted sequence of
// the request in this process, for requests of one instant); the random tail keeps two
// instances apart. An entry's cursor is its item's key and its inverted index in the request,
// so cursors order entries newest first across items and shards.
func (s *Service) debuggerSK(at time.Time) string {
	return fmt.Sprintf("%019d#%016x#%08x", math.MaxInt64-at.UnixNano(), math.MaxUint64-s.debugSeq.Add(1), rand.Uint32())
}

func entryCursor(itemSK string, index int) string {
	n := 99999 - min(index, 99999)
	if n < 0 || n > 99999 {
		return fmt.Sprintf("%s#%05d", itemSK, n)
	}
	tail := [6]byte{'#', byte('0' + n/10000), byte('0' + n/1000%10), byte('0' + n/100%10), byte('0' + n/10%10), byte('0' + n%10)}
	return itemSK + string(tail[:])
}

// record writes the debugger entries of one request, and the source's "seen" records: each
// item a single write of its own, outside any transaction.
func (s *Service) record(ctx context.Context, src workspace.Source, applied []*Parsed, res Result) error {
	ops, mark := s.debuggerOps(src, res, applied)
	if len(ops) == 0 {
		return nil
	}
	txs := make([]store.Tx, len(ops))
	for i, op := range ops {
		txs[i] = store.Tx{Ops: []store.Op{op}}
	}
	errs, err := store.TransactBatch(ctx, s.st, txs)
	if err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	mark()
	return nil
}

// debuggerOps returns the puts of one request's debugger items and "seen" records, and what
// marks the "seen" records written once they are.
func (s *Service) debuggerOps(src workspace.Source, res Result, applied []*Parsed) ([]store.Op, func()) {
	now := s.now()
	exp := now.Add(debuggerRetention).Unix()
	type indexed struct {
		index int
		e     Entry
	}
	entries := make([]indexed, 0, len(applied)+len(res.Rejected))
	add := func(index int, e Entry) {
		e.ReceivedAt = now
		entries = append(entries, indexed{index, e})
	}
	outcomes := make(map[int]Outcome, len(res.Outcomes))
	for _, o := range res.Outcomes {
		outcomes[o.Index] = o
	}
	rejected := make(map[int]Rejection, len(res.Rejected))
	for _, r := range res.Rejected {
		rejected[r.Index] = r
	}
	for _, pm := range applied {
		m := &pm.Message
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
	slices.SortFunc(entries, func(a, b indexed) int { return b.index - a.index }) // newest (last sent) first
	var ops []store.Op
	pk := debuggerPK(src.ID, rand.IntN(debuggerShards))
	for len(entries) > 0 {
		sk := s.debuggerSK(now)
		it := debuggerItem{Entries: make([]Entry, 0, len(entries))}
		size, encoded := 0, 0
		for len(entries) > 0 && (len(it.Entries) == 0 || size+len(entries[0].e.Raw)+1024 <= debuggerItemBytes) {
			e := entries[0].e
			e.Cursor = entryCursor(sk, entries[0].index)
			size += len(e.Raw) + 1024 // the raw message and a generous allowance for the rest
			encoded += len(e.Raw) + len(e.Cursor) + 320
			if e.Rejection != nil {
				encoded += len(e.Rejection.Message)
			}
			it.Entries = append(it.Entries, e)
			entries = entries[1:]
		}
		item := debuggerItemData(store.Key{PK: pk, SK: sk}, it, encoded)
		item.Data = packDebuggerItem(item.Data)
		item.ExpiresAt = exp
		ops = append(ops, store.PutOp(item, store.Always))
	}
	seen, mark := s.seenOps(src.ID, applied)
	return append(ops, seen...), mark
}

// rawJSON keeps raw as it came when it is JSON, and as a JSON string otherwise. Bytes that
// are not UTF-8 (a message refused for them) are shown as U+FFFD: the entry is for people
// to read, and every answer is valid UTF-8.
func rawJSON(raw []byte) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage(`null`)
	}
	if validJSON(raw) {
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
	all, err := s.entries(ctx, srcID, cursor)
	if err != nil {
		return nil, err
	}
	if search == "" {
		return all, nil
	}
	needle := []byte(strings.ToLower(search))
	entries := make([]Entry, 0, len(all))
	for _, e := range all {
		if bytes.Contains(bytes.ToLower(e.Raw), needle) {
			entries = append(entries, e)
		}
	}
	return entries, nil
}

// entriesPerRead is how many items each shard's query reads at a time.
const entriesPerRead = 8

// entries returns a source's latest DebuggerSize entries newer than cursor ("" for all),
// newest first: from every shard the newest items until they hold DebuggerSize entries.
func (s *Service) entries(ctx context.Context, srcID, cursor string) ([]Entry, error) {
	var all []Entry
	for shard := range debuggerShards {
		pk, after, n := debuggerPK(srcID, shard), "", 0
		for n < DebuggerSize {
			items, err := s.st.Query(ctx, pk, store.Page{After: after, Limit: entriesPerRead})
			if err != nil {
				return nil, err
			}
			for _, it := range items {
				if cursor != "" && it.SK > cursor { // an item's key is a prefix of its entries' cursors
					n = DebuggerSize // older than the cursor from here on
					break
				}
				var d debuggerItem
				data, err := unpackDebuggerItem(it.Data)
				if err == nil {
					err = json.Unmarshal(data, &d)
				}
				if err != nil {
					return nil, fmt.Errorf("decode debugger item %s: %w", it.Key, err)
				}
				for _, e := range d.Entries {
					if cursor != "" && e.Cursor >= cursor {
						break
					}
					all = append(all, e)
					n++
				}
			}
			if len(items) < entriesPerRead {
				break
			}
			after = items[len(items)-1].SK
		}
	}
	slices.SortFunc(all, func(a, b Entry) int { return strings.Compare(a.Cursor, b.Cursor) })
	return all[:min(len(all), DebuggerSize)], nil
}
