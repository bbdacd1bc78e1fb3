package salesforce

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestIncrementalQuery(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		object string
		fields []string
		since  time.Time
		want   string
	}{
		{"zero since: no WHERE", "Contact", []string{"Email"}, time.Time{},
			"SELECT Id, SystemModstamp, IsDeleted, Email FROM Contact ORDER BY SystemModstamp, Id"},
		{"since", "Contact", []string{"Email", "Phone"}, since,
			"SELECT Id, SystemModstamp, IsDeleted, Email, Phone FROM Contact WHERE SystemModstamp > 2026-01-01T00:00:00Z ORDER BY SystemModstamp, Id"},
		{"required fields not repeated, case-insensitively", "Lead", []string{"id", "Email", "SYSTEMMODSTAMP", "isdeleted", "Email"}, since,
			"SELECT Id, SystemModstamp, IsDeleted, Email FROM Lead WHERE SystemModstamp > 2026-01-01T00:00:00Z ORDER BY SystemModstamp, Id"},
		{"no fields", "Account", nil, time.Time{},
			"SELECT Id, SystemModstamp, IsDeleted FROM Account ORDER BY SystemModstamp, Id"},
		{"other zone, fraction truncated down", "Contact", nil, time.Date(2026, 3, 4, 7, 8, 9, 999_000_000, time.FixedZone("x", 2*3600)),
			"SELECT Id, SystemModstamp, IsDeleted FROM Contact WHERE SystemModstamp > 2026-03-04T05:08:09Z ORDER BY SystemModstamp, Id"},
		{"invalid names dropped", "Custom__c", []string{"Name", "Bad Name", "x;DROP", "Amount__c", ""}, time.Time{},
			"SELECT Id, SystemModstamp, IsDeleted, Name, Amount__c FROM Custom__c ORDER BY SystemModstamp, Id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := IncrementalQuery(tc.object, tc.fields, tc.since); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestIncrementalQueryPanicsOnInvalidObject(t *testing.T) {
	t.Parallel()
	for _, obj := range []string{"", "Contact WHERE", "1Contact", "Con-tact"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%q: no panic", obj)
				}
			}()
			IncrementalQuery(obj, nil, time.Time{})
		}()
	}
}

func TestQueryableFieldsSkipsCompound(t *testing.T) {
	t.Parallel()
	o := Object{Name: "Contact", Fields: []Field{
		{Name: "Id", Type: "id"}, {Name: "MailingAddress", Type: "address"},
		{Name: "MailingCity", Type: "string", CompoundFieldName: "MailingAddress"},
		{Name: "Location__c", Type: "location"}, {Name: "Photo", Type: "base64"}, {Name: "Email", Type: "email"},
	}}
	got := strings.Join(o.QueryableFields(), ",")
	if got != "Id,MailingCity,Email" {
		t.Errorf("got %s", got)
	}
	if f, ok := o.Field("email"); !ok || f.Name != "Email" {
		t.Errorf("Field(email) = %v %v", f, ok)
	}
	if _, ok := o.Field("Nope"); ok {
		t.Error("Field(Nope) found")
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      *Error
		kind     Kind
		sentinel error
		contains string
	}{
		{"rate", APIError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), KindRateLimited, ErrRateLimited, "REQUEST_LIMIT_EXCEEDED"},
		{"session", APIError(401, "INVALID_SESSION_ID", "Session expired or invalid"), KindSessionExpired, ErrSessionExpired, "INVALID_SESSION_ID"},
		{"401 unknown code", APIError(401, "", ""), KindSessionExpired, ErrSessionExpired, "session"},
		{"insufficient access", APIError(403, "INSUFFICIENT_ACCESS", "insufficient access rights on object id"), KindPermission, ErrPermission, "View All Records"},
		{"403 other", APIError(403, "API_DISABLED_FOR_ORG", "The REST API is not enabled for this Organization."), KindPermission, ErrPermission, "View All Records"},
		{"malformed", APIError(400, "MALFORMED_QUERY", "unexpected token"), KindOther, nil, "MALFORMED_QUERY"},
		{"revoked", OAuthError(400, "invalid_grant", "expired access/refresh token"), KindReauthorize, ErrReauthorize, "reauthorize"},
		{"bad client", OAuthError(400, "invalid_client", "invalid client credentials"), KindOther, nil, "invalid_client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var err error = fmt.Errorf("wrapped: %w", tc.err)
			if KindOf(err) != tc.kind {
				t.Errorf("kind %v, want %v", KindOf(err), tc.kind)
			}
			for _, s := range []error{ErrRateLimited, ErrSessionExpired, ErrReauthorize, ErrPermission} {
				if errors.Is(err, s) != (s == tc.sentinel) {
					t.Errorf("errors.Is(%v) = %v", s, !(s == tc.sentinel))
				}
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("%q does not contain %q", err.Error(), tc.contains)
			}
		})
	}
	if KindOf(errors.New("x")) != KindOther {
		t.Error("plain error not KindOther")
	}
	e := &Error{Kind: KindOther, Object: "Contact", Err: errors.New("dial tcp: refused")}
	if !strings.Contains(e.Error(), "Contact") || !errors.Is(e, e.Err) {
		t.Errorf("cause lost: %v", e)
	}
}

func TestParseDatetime(t *testing.T) {
	t.Parallel()
	want := time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-01-02T03:04:05.678+0000", want, true},
		{"2026-01-02T04:04:05.678+0100", want, true},
		{"2026-01-02T03:04:05.678Z", want, true},
		{"2026-01-02T03:04:05Z", want.Truncate(time.Second), true},
		{"2026-01-02T03:04:05+0000", want.Truncate(time.Second), true},
		{"2026-01-02", time.Time{}, false},
		{"", time.Time{}, false},
		{"garbage", time.Time{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDatetime(tc.in)
			if (err == nil) != tc.ok || !got.Equal(tc.want) {
				t.Errorf("got %v %v, want %v ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
	if s := FormatDatetime(want); s != "2026-01-02T03:04:05.678+0000" {
		t.Errorf("FormatDatetime = %s", s)
	}
	r := Record{"Id": "003", "IsDeleted": true, "SystemModstamp": "2026-01-02T03:04:05.678+0000"}
	if r.ID() != "003" || !r.IsDeleted() || !r.SystemModstamp().Equal(want) {
		t.Errorf("record accessors: %v %v %v", r.ID(), r.IsDeleted(), r.SystemModstamp())
	}
}

func FuzzParseDatetime(f *testing.F) {
	for _, s := range []string{"2026-01-02T03:04:05.678+0000", "2026-01-02T03:04:05Z", "x", "2026-13-40T99:99:99Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseDatetime(s)
		if err != nil {
			if len(err.Error()) > 200 {
				t.Errorf("error too long: %d", len(err.Error()))
			}
			return
		}
		if got.Location() != time.UTC {
			t.Errorf("not UTC: %v", got)
		}
		// What we format, we parse back to the same instant (to the millisecond).
		back, err := ParseDatetime(FormatDatetime(got))
		if err != nil || !back.Equal(got.Truncate(time.Millisecond)) {
			t.Errorf("round trip %v → %v %v", got, back, err)
		}
	})
}

func FuzzIncrementalQuery(f *testing.F) {
	f.Add("Contact", "Email", int64(0))
	f.Add("Lead", "x y", int64(1767225600))
	f.Fuzz(func(t *testing.T, object, field string, sec int64) {
		if !ValidName(object) {
			return
		}
		var since time.Time
		if sec > 0 && sec < 1<<36 {
			since = time.Unix(sec, 0)
		}
		q := IncrementalQuery(object, []string{field}, since)
		if !strings.HasPrefix(q, "SELECT Id, SystemModstamp, IsDeleted") || !strings.HasSuffix(q, " ORDER BY SystemModstamp, Id") {
			t.Errorf("shape: %s", q)
		}
		if strings.ContainsAny(q, "';\"\n") {
			t.Errorf("unexpected characters: %q", q)
		}
	})
}
