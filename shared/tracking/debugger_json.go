package tracking

import (
	"encoding/json"
	"time"

	"github.com/unifiedprofiles/up/shared/jsonappend"
	"github.com/unifiedprofiles/up/shared/store"
)

// A debugger item is encoded by hand (with jsonappend): json.Marshal reflects over it and
// re-scans every entry's raw message with its general-purpose scanner. appendDebuggerItem writes the
// bytes json.Marshal writes for the same value (TestDebuggerItemJSON, FuzzDebuggerItemJSON
// compare them), HTML escaping included; for anything it does not write itself (a time
// json.Marshal refuses) it answers false, and json.Marshal does it all.

// debuggerItemData returns the stored item of it at k: what store.JSONItem returns.
func debuggerItemData(k store.Key, it debuggerItem, sizeHint int) store.Item {
	if b, ok := appendDebuggerItem(make([]byte, 0, sizeHint), it); ok {
		return store.Item{Key: k, Data: b}
	}
	return store.JSONItem(k, it)
}

// appendDebuggerItem appends json.Marshal(it) to dst.
func appendDebuggerItem(dst []byte, it debuggerItem) ([]byte, bool) {
	dst = append(dst, `{"entries":`...)
	if it.Entries == nil {
		return append(dst, "null}"...), true
	}
	dst = append(dst, '[')
	for i := range it.Entries {
		if i > 0 {
			dst = append(dst, ',')
		}
		var ok bool
		if dst, ok = appendEntry(dst, &it.Entries[i]); !ok {
			return dst, false
		}
	}
	return append(dst, "]}"...), true
}

func appendEntry(dst []byte, e *Entry) ([]byte, bool) {
	ok := true
	dst = append(dst, `{"cursor":`...)
	dst = jsonappend.String(dst, e.Cursor)
	dst = append(dst, `,"received_at":`...)
	dst, ok = appendJSONTime(dst, e.ReceivedAt, ok)
	dst = append(dst, `,"status":`...)
	dst = jsonappend.String(dst, e.Status)
	dst = append(dst, `,"raw":`...)
	if e.Raw == nil {
		dst = append(dst, "null"...)
	} else if len(e.Raw) == 0 {
		return dst, false // json.Marshal refuses it
	} else {
		var rawOK bool
		if dst, rawOK = jsonappend.Raw(dst, e.Raw); !rawOK {
			return dst, false
		}
	}
	if n := e.Normalised; n != nil {
		dst = append(dst, `,"normalised":{"type":`...)
		dst = jsonappend.String(dst, n.Type)
		dst = append(dst, `,"message_id":`...)
		dst = jsonappend.String(dst, n.MessageID)
		dst = appendOmitEmpty(dst, `,"user_id":`, n.UserID)
		dst = appendOmitEmpty(dst, `,"anonymous_id":`, n.AnonymousID)
		dst = appendOmitEmpty(dst, `,"group_id":`, n.GroupID)
		dst = appendOmitEmpty(dst, `,"previous_id":`, n.PreviousID)
		dst = appendOmitEmpty(dst, `,"event":`, n.Event)
		dst = appendOmitEmpty(dst, `,"name":`, n.Name)
		dst = append(dst, `,"timestamp":`...)
		dst, ok = appendJSONTime(dst, n.Timestamp, ok)
		dst = append(dst, `,"received_at":`...)
		dst, ok = appendJSONTime(dst, n.ReceivedAt, ok)
		dst = appendOmitEmpty(dst, `,"ip":`, n.IP)
		dst = append(dst, '}')
	}
	if o := e.Outcome; o != nil {
		dst = append(dst, `,"outcome":{"profile_id":`...)
		dst = jsonappend.String(dst, o.ProfileID)
		if o.Created {
			dst = append(dst, `,"created":true`...)
		} else {
			dst = append(dst, `,"created":false`...)
		}
		dst = appendStrings(dst, `,"added":`, o.Added)
		dst = appendStrings(dst, `,"merged":`, o.Merged)
		if len(o.Violations) > 0 { // rare: json.Marshal writes them, as it would within the item
			b, err := json.Marshal(o.Violations)
			if err != nil {
				return dst, false
			}
			dst = append(dst, `,"violations":`...)
			dst = append(dst, b...)
		}
		dst = append(dst, '}')
	}
	if r := e.Rejection; r != nil {
		dst = append(dst, `,"rejection":{"code":`...)
		dst = jsonappend.String(dst, r.Code)
		dst = append(dst, `,"message":`...)
		dst = jsonappend.String(dst, r.Message)
		dst = appendOmitEmpty(dst, `,"field":`, r.Field)
		dst = append(dst, '}')
	}
	return append(dst, '}'), ok
}

// appendOmitEmpty appends a string field tagged omitempty: name (with its comma and colon)
// and s, unless s is "".
func appendOmitEmpty(dst []byte, name, s string) []byte {
	if s == "" {
		return dst
	}
	return jsonappend.String(append(dst, name...), s)
}

// appendStrings appends a []string field tagged omitempty.
func appendStrings(dst []byte, name string, ss []string) []byte {
	if len(ss) == 0 {
		return dst
	}
	return jsonappend.Strings(append(dst, name...), ss)
}

// appendJSONTime appends t as time.Time.MarshalJSON does; ok becomes false (and stays so)
// when it refuses t.
func appendJSONTime(dst []byte, t time.Time, ok bool) ([]byte, bool) {
	dst, tok := jsonappend.Time(dst, t)
	return dst, ok && tok
}
