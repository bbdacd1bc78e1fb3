package tracking

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/profile"
)

// FuzzParse: whatever the body, Parse as a batch and as a track call either refuses it with a
// domain error or accounts for every message, and every accepted message is one the identity
// work can use: UTF-8 as received, no NUL in its ids and names, a timestamp that is kept.
func FuzzParse(f *testing.F) {
	fixtures, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(fixtures) == 0 {
		f.Fatalf("no fixtures in testdata: %v", err)
	}
	for _, name := range fixtures {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, seed := range []string{
		``, `null`, `[]`, `{}`, `{"batch":[]}`, `{"batch":{}}`, `{"batch":[null,1,"x",[],{}]}`,
		`{"batch":[{"type":"track","userId":1e999,"event":"e"}]}`,
		`{"batch":[{"type":"track","userId":"u","event":"e","properties":{"a":1e999}}]}`,
		`{"batch":[{"type":"alias","userId":"u","previousId":true}],"context":{"direct":true},"sentAt":"2026-01-01T00:00:00Z"}`,
		`{"batch":[{"type":"group","anonymousId":"\ud800","groupId":"g","messageId":"","traits":{"a":[{"b":null}]}}],"integrations":{"All":false}}`,
		`{"batch":[{"type":"page","userId":"u","originalTimestamp":"2026-01-01T00:00:00+0100","sentAt":"0001-01-01T00:00:00Z"}],"sentAt":"9999-12-31T23:59:59Z"}`,
		`{"userId":"u","event":"Signed Up","timestamp":"2026-01-01T00:00:00.123Z","context":{"direct":true}}`,
		`{"anonymousId":7,"event":"e","messageId":"` + string(bytes.Repeat([]byte("m"), MaxMessageIDLen)) + `"}`,
		`{"userId":"u","event":5}`, `{"userId":"u"`, "\xef\xbb\xbf{}", `{"batch":[{"type":"track"}]}{}`,
		"{\"userId\":\"\xfe\xff\",\"event\":\"e\"}", `{"userId":"u\u0000","event":"e"}`, `{"userId":"a","userid":"b","event":"e"}`,
		`{"batch":[{"type":"track","userId":"u","event":"e","properties":{"a":1,"a":2}}],"context":{"x":"\udc00"}}`,
		`{"batch":[{"type":"track","userId":"u","event":"e","timestamp":"2026-08-31T00:00:00Z"}]}`,
		`{"userId":"u","event":"e","originalTimestamp":"2027-01-01T00:00:00Z","sentAt":"2026-11-29T13:00:00Z"}`,
	} {
		f.Add([]byte(seed))
	}
	env := Env{ReceivedAt: time.Date(2026, 11, 29, 13, 0, 0, 0, time.UTC), IP: "203.0.113.7", NewID: func() string { return "assigned" }}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, call := range []string{"batch", "track"} {
			req, err := Parse(call, body, env)
			if err != nil {
				if e := errcode.As(err); e == nil || e.Code == "" || e.Message == "" || e.Kind != errcode.Invalid {
					t.Fatalf("Parse(%s, %q) error %#v is not an Invalid *errcode.Error", call, body, err)
				}
				continue
			}
			if call == "track" && (req.Total != 1 || len(req.Messages) != 1) {
				t.Fatalf("Parse(track, %q) = %+v: a single call is one message or an error", body, req)
			}
			if len(req.Messages)+len(req.Rejected) != req.Total {
				t.Fatalf("Parse(%s, %q): %d messages + %d rejected != total %d", call, body, len(req.Messages), len(req.Rejected), req.Total)
			}
			last := -1
			for _, p := range req.Messages {
				m := p.Message
				switch {
				case p.Index <= last || p.Index >= req.Total:
					t.Fatalf("Parse(%s, %q): message index %d after %d, total %d", call, body, p.Index, last, req.Total)
				case len(m.MessageID) == 0 || len(m.MessageID) > MaxMessageIDLen:
					t.Fatalf("Parse(%s, %q): messageId %q", call, body, m.MessageID)
				case !validType(m.Type):
					t.Fatalf("Parse(%s, %q): type %q", call, body, m.Type)
				case m.UserID == "" && m.AnonymousID == "":
					t.Fatalf("Parse(%s, %q): message %d has no id", call, body, p.Index)
				case len(m.Raw) == 0 || len(m.Raw) > MaxMessageBytes:
					t.Fatalf("Parse(%s, %q): message %d raw is %d bytes", call, body, p.Index, len(m.Raw))
				case !utf8.Valid(m.Raw) || strings.Contains(m.UserID+m.AnonymousID+m.MessageID+m.GroupID+m.PreviousID+m.Event+m.Name, "\x00"):
					t.Fatalf("Parse(%s, %q): message %d kept invalid UTF-8 or a NUL", call, body, p.Index)
				case m.Timestamp.Before(env.ReceivedAt.Add(-profile.EventRetention)) || m.Timestamp.After(env.ReceivedAt.Add(profile.FutureSkew)):
					t.Fatalf("Parse(%s, %q): message %d kept timestamp %v, out of the bounds around %v", call, body, p.Index, m.Timestamp, env.ReceivedAt)
				}
				last = p.Index
			}
			last = -1
			for _, rj := range req.Rejected {
				if rj.Index <= last || rj.Index >= req.Total || rj.Code == "" || rj.Message == "" || len(rj.Field) > 4*errcode.MaxEcho {
					t.Fatalf("Parse(%s, %q): rejection %+v after index %d", call, body, rj, last)
				}
				last = rj.Index
			}
		}
	})
}

// FuzzDecompress: Decompress never panics, never returns more than the limit, and fails only
// with a domain error.
func FuzzDecompress(f *testing.F) {
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return buf.Bytes()
	}
	for _, seed := range [][]byte{
		nil, []byte(`{"batch":[]}`), gz([]byte(`{"batch":[]}`)), gz(make([]byte, 1<<16)), {0x1f, 0x8b}, {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff},
		append(gz([]byte("a")), gz([]byte("b"))...), append(gz([]byte("a")), 0),
	} {
		f.Add(seed, "", uint32(1024))
		f.Add(seed, "gzip", uint32(10))
	}
	f.Fuzz(func(t *testing.T, body []byte, encoding string, limit uint32) {
		lim := int(limit % (2 << 20))
		out, err := Decompress(body, encoding, lim)
		if err != nil {
			if e := errcode.As(err); e == nil || e.Kind != errcode.Invalid || (e.Code != "invalid_gzip" && e.Code != "request_too_large") {
				t.Fatalf("Decompress error %#v", err)
			}
			if out != nil {
				t.Fatalf("Decompress returned %d bytes with an error", len(out))
			}
			return
		}
		if len(out) > lim {
			t.Fatalf("Decompress returned %d bytes; the limit is %d", len(out), lim)
		}
	})
}
