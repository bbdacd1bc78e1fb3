package warehouse

import (
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
)

// recordMessage turns a change into the identify the README describes: phone columns made
// E.164, NULLs sent or left by sync_nulls, a custom identifier under its first key, a delete
// addressed by the identifiers last sent with the mapped traits null.
func TestRecordMessage(t *testing.T) {
	t.Parallel()
	set := identity.Settings{Identifiers: []identity.Rule{{Type: "user_id"}, {Type: "email"}, {Type: "phone", Custom: true, Keys: []string{"phone_number"}}}}
	base := Mapping{SourceID: "src_1", Identifiers: map[string]string{"user_id": "ID", "phone": "PHONE"}, Traits: map[string]string{"plan": "PLAN", "mobile": "PHONE"}, SyncNulls: true}
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		nulls    bool
		op       string
		values   map[string]any
		last     map[string]string
		userID   string
		traits   map[string]any
		ids      string
		errorHas string
	}{
		{name: "national phone to E.164, custom identifier under its key", nulls: true, op: sqlgen.OpAdd,
			values: map[string]any{"ID": int64(7), "PHONE": "(415) 555-0100", "PLAN": "pro"},
			userID: "7", traits: map[string]any{"phone_number": "+14155550100", "plan": "pro", "mobile": "(415) 555-0100"},
			ids: `{"phone":"+14155550100","user_id":"7"}`},
		{name: "a NULL is sent with sync_nulls", nulls: true, op: sqlgen.OpUpdate,
			values: map[string]any{"ID": "u1", "PHONE": nil, "PLAN": nil},
			userID: "u1", traits: map[string]any{"plan": nil, "mobile": nil}, ids: `{"user_id":"u1"}`},
		{name: "a NULL is left without sync_nulls", op: sqlgen.OpUpdate,
			values: map[string]any{"ID": "u1", "PHONE": nil, "PLAN": nil},
			userID: "u1", traits: map[string]any{}, ids: `{"user_id":"u1"}`},
		{name: "a phone identifier that is not one fails, naming the column", nulls: true, op: sqlgen.OpAdd,
			values: map[string]any{"ID": "u2", "PHONE": "call me", "PLAN": "free"}, errorHas: "column PHONE (phone)"},
		{name: "no identifier fails", nulls: true, op: sqlgen.OpAdd,
			values: map[string]any{"ID": nil, "PHONE": "", "PLAN": "free"}, errorHas: "no identifier"},
		{name: "a delete is addressed by the identifiers last sent", nulls: true, op: sqlgen.OpDelete,
			last: map[string]string{"user_id": "u3"}, userID: "u3", traits: map[string]any{"plan": nil, "mobile": nil}, ids: `{"user_id":"u3"}`},
	} {
		m := base
		m.SyncNulls = tc.nulls
		msg, ids, err := recordMessage(m, set, Sync{ID: "sync_1"}, sqlgen.Outcome{RecordID: "r1", Op: tc.op}, tc.values, tc.last, now)
		if tc.errorHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errorHas) {
				t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.errorHas)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if msg.UserID != tc.userID || ids != tc.ids || msg.MessageID != "retl-sync_1-r1" || msg.Type != "identify" || len(msg.Traits) != len(tc.traits) {
			t.Errorf("%s: user %q ids %s id %s traits %v", tc.name, msg.UserID, ids, msg.MessageID, msg.Traits)
			continue
		}
		for k, v := range tc.traits {
			if got, ok := msg.Traits[k]; !ok || got != v {
				t.Errorf("%s: trait %s = %v, want %v", tc.name, k, got, v)
			}
		}
	}
}
