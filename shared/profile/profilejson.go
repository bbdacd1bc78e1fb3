package profile

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/jsonappend"
	"github.com/unifiedprofiles/up/shared/store"
)

// Every profile a message changes is stored again whole, so its encoding is on the ingest
// path (8 % of a CSV upload's CPU with json.Marshal). appendProfileJSON writes exactly
// json.Marshal's bytes (TestProfileJSONMatchesMarshal and FuzzProfileJSONMatchesMarshal hold
// it to them) and gives up, leaving it to json.Marshal, where appendEventJSON would.

// profileItem is the stored item of p at k: what item(k, p) returns.
func profileItem(k store.Key, p *Profile) store.Item {
	if b, ok := appendProfileJSON(make([]byte, 0, 512+160*len(p.Identifiers)+96*len(p.Traits)), p); ok {
		return store.Item{Key: k, Data: b}
	}
	return item(k, p)
}

// appendProfileJSON appends json.Marshal(p) to b; ok is false when it gave up.
func appendProfileJSON(b []byte, p *Profile) (_ []byte, ok bool) {
	b = append(b, `{"id":`...)
	b = jsonappend.String(b, p.ID)
	b = append(b, `,"space_id":`...)
	b = jsonappend.String(b, p.SpaceID)
	if p.MergedInto != "" {
		b = append(b, `,"merged_into":`...)
		b = jsonappend.String(b, p.MergedInto)
	}
	if b, ok = field(b, `,"created_at":`, p.CreatedAt); !ok {
		return b, false
	}
	if b, ok = field(b, `,"updated_at":`, p.UpdatedAt); !ok {
		return b, false
	}
	b = append(b, `,"identifiers":`...)
	if p.Identifiers == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, id := range p.Identifiers {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendIdentifierFields(append(b, '{'), id.Identifier)
			if b, ok = field(b, `,"first_seen":`, id.FirstSeen); !ok {
				return b, false
			}
			if id.SourceID != "" {
				b = append(b, `,"source_id":`...)
				b = jsonappend.String(b, id.SourceID)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(p.Traits) > 0 {
		b = append(b, `,"traits":{`...)
		for i, name := range slices.Sorted(maps.Keys(p.Traits)) { // json.Marshal sorts map keys
			if i > 0 {
				b = append(b, ',')
			}
			b = append(jsonappend.String(b, name), ':', '{')
			t := p.Traits[name]
			sep := ""
			if t.Value != nil {
				b = append(b, `"v":`...)
				if b, ok = jsonappend.Value(b, t.Value); !ok {
					return b, false
				}
				sep = ","
			}
			if b, ok = field(b, sep+`"at":`, t.At); !ok {
				return b, false
			}
			if t.Removed {
				b = append(b, `,"removed":true`...)
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	b = append(b, `,"merges":`...)
	b = strconv.AppendInt(b, int64(p.Merges), 10)
	if len(p.MergedIDs) > 0 {
		b = jsonappend.Strings(append(b, `,"merged_ids":`...), p.MergedIDs)
	}
	if len(p.Violations) > 0 {
		b = append(b, `,"violations":[`...)
		for i, v := range p.Violations {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"kind":`...)
			b = jsonappend.String(b, v.Kind)
			b = appendIdentifierFields(append(b, `,"identifier":{`...), v.Identifier)
			b = append(b, `},"detail":`...)
			b = jsonappend.String(b, v.Detail)
			if b, ok = field(b, `,"at":`, v.At); !ok {
				return b, false
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"first_message":{"id":`...)
	b = jsonappend.String(b, p.First.ID)
	b = append(b, `,"type":`...)
	b = jsonappend.String(b, p.First.Type)
	if b, ok = field(b, `,"at":`, p.First.At); !ok {
		return b, false
	}
	if p.First.SourceID != "" {
		b = append(b, `,"source_id":`...)
		b = jsonappend.String(b, p.First.SourceID)
	}
	b = append(b, '}')
	if len(p.Groups) > 0 {
		b = jsonappend.Strings(append(b, `,"groups":`...), p.Groups)
	}
	return append(b, '}'), true
}

// field appends name (with its separator and colon) and the time t.
func field(b []byte, name string, t time.Time) ([]byte, bool) {
	return jsonappend.Time(append(b, name...), t)
}

// appendIdentifierFields appends an identity.Identifier's two fields, without braces.
func appendIdentifierFields(b []byte, id identity.Identifier) []byte {
	b = append(b, `"type":`...)
	b = jsonappend.String(b, id.Type)
	b = append(b, `,"value":`...)
	return jsonappend.String(b, id.Value)
}
