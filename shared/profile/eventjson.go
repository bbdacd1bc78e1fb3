package profile

import (
	"strconv"

	"github.com/unifiedprofiles/up/shared/jsonappend"
)

// Every event Apply stores is encoded here (with jsonappend) rather than by json.Marshal,
// which spends most of an event's encoding on reflection and on re-scanning Raw. The bytes
// are exactly json.Marshal's (TestEventJSONMatchesMarshal and the fuzz tests hold them to
// it); a time, number or Raw json.Marshal refuses, or nesting past jsonappend.MaxDepth, makes
// appendEventJSON give up, and json.Marshal writes the whole event (or refuses it) as before.

// appendEventJSON appends json.Marshal(e) to b; ok is false when it gave up (b is then
// unusable).
func appendEventJSON(b []byte, e *Event) (_ []byte, ok bool) {
	b = append(b, `{"message_id":`...)
	b = jsonappend.String(b, e.MessageID)
	b = append(b, `,"type":`...)
	b = jsonappend.String(b, e.Type)
	if e.Event != "" {
		b = append(b, `,"event":`...)
		b = jsonappend.String(b, e.Event)
	}
	if e.Name != "" {
		b = append(b, `,"name":`...)
		b = jsonappend.String(b, e.Name)
	}
	b = append(b, `,"timestamp":`...)
	if b, ok = jsonappend.Time(b, e.Timestamp); !ok {
		return b, false
	}
	b = append(b, `,"received_at":`...)
	if b, ok = jsonappend.Time(b, e.ReceivedAt); !ok {
		return b, false
	}
	if e.SourceID != "" {
		b = append(b, `,"source_id":`...)
		b = jsonappend.String(b, e.SourceID)
	}
	if len(e.Properties) > 0 {
		b = append(b, `,"properties":`...)
		if b, ok = jsonappend.Value(b, e.Properties); !ok {
			return b, false
		}
	}
	if len(e.Identifiers) > 0 {
		b = append(b, `,"identifiers":[`...)
		for i, id := range e.Identifiers {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendIdentifierFields(append(b, '{'), id), '}')
		}
		b = append(b, ']')
	}
	if len(e.Raw) > 0 {
		b = append(b, `,"raw":`...)
		if b, ok = jsonappend.Raw(b, e.Raw); !ok {
			return b, false
		}
	}
	if e.TraitsVersion != 0 {
		b = append(b, `,"traits_version":`...)
		b = strconv.AppendInt(b, e.TraitsVersion, 10)
	}
	if e.Counted {
		b = append(b, `,"counted":true`...)
	}
	return append(b, '}'), true
}
