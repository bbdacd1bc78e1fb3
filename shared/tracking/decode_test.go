package tracking

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/jsoncheck"
)

// parseReference is Parse by the reference path alone: encoding/json and jsoncheck, as
// before the decoder.
func parseReference(call string, body []byte, env Env) (Request, error) {
	if call == "batch" || call == "import" {
		if err := checkJSONObject(body); err != nil {
			return Request{}, err
		}
		return parseBatchReference(body, env)
	}
	if len(body) > MaxMessageBytes {
		return Request{}, messageTooLarge(singleSubject, len(body))
	}
	if err := checkJSONObject(body); err != nil {
		return Request{}, err
	}
	return parseSingleReference(call, body, env)
}

// sameParse reports how Parse's answer for body differs from the reference path's, or "".
func sameParse(call string, body []byte) string {
	envFor := func() Env {
		var n atomic.Int64
		return Env{ReceivedAt: time.Date(2026, 11, 29, 13, 0, 0, 0, time.UTC), IP: "203.0.113.7",
			NewID: func() string { return fmt.Sprintf("assigned-%d", n.Add(1)) }}
	}
	if len(body) > MaxRequestBytes {
		return ""
	}
	got, gotErr := Parse(call, body, envFor())
	want, wantErr := parseReference(call, body, envFor())
	if !reflect.DeepEqual(gotErr, wantErr) {
		return fmt.Sprintf("error %#v, want %#v", gotErr, wantErr)
	}
	// Raw is compared as bytes: the fast path's share one buffer (cap differs).
	if len(got.Messages) != len(want.Messages) || len(got.Rejected) != len(want.Rejected) {
		return fmt.Sprintf("%d messages, %d rejected; want %d and %d", len(got.Messages), len(got.Rejected), len(want.Messages), len(want.Rejected))
	}
	for i := range got.Messages {
		g, w := got.Messages[i], want.Messages[i]
		if !bytes.Equal(g.Message.Raw, w.Message.Raw) {
			return fmt.Sprintf("message %d: Raw %q, want %q", i, g.Message.Raw, w.Message.Raw)
		}
		g.Message.Raw, w.Message.Raw = nil, nil
		if !reflect.DeepEqual(g, w) {
			return fmt.Sprintf("message %d:\n got %#v\nwant %#v", i, g, w)
		}
	}
	for i := range got.Rejected {
		g, w := got.Rejected[i], want.Rejected[i]
		if !bytes.Equal(g.Raw, w.Raw) {
			return fmt.Sprintf("rejection %d: Raw %q, want %q", i, g.Raw, w.Raw)
		}
		g.Raw, w.Raw = nil, nil
		if !reflect.DeepEqual(g, w) {
			return fmt.Sprintf("rejection %d: %+v, want %+v", i, g, w)
		}
	}
	got.Messages, got.Rejected, want.Messages, want.Rejected = nil, nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		return fmt.Sprintf("request %+v, want %+v", got, want)
	}
	return ""
}

// decoderSeeds are bodies that take every way through the decoder: what it decodes itself,
// and each thing it hands to the reference path.
var decoderSeeds = []string{
	`{"batch":[{"type":"identify","userId":"u","traits":{"a":1,"b":[true,false,null,"x",1.5e3,-0,{}],"c":{"d":[]}}}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"e","properties":{"a":1e999}}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"e","properties":{"a":1e-999,"b":123456789012345678901234567890}}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"e","properties":{"a":1,"a":2}}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"e","_metadata":{"a":1,"a":2}}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"e","_m":1,"_m":2}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"e","Event":"f"}]}`,
	`{"batch":[{"type":"track","userId":"u","\u0065vent":"e"}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"e","\u212aey":1,"ſentAt":"x"}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"e","properties":{"caf\u00e9":"\ud83d\ude00\n\t\"\\\/\b\f\r","k":"\u00e9t\u00e9"}}]}`,
	`{"batch":[{"type":"track","userId":"\ud800","event":"e"},{"type":"track","userId":"\udc00x","event":"e"},{"type":"track","userId":"\ud800\u0041","event":"e"}]}`,
	`{"batch":[{"type":"track","userId":"a\u0000","event":"e"},{"type":"track","userId":"u","event":"e","context":{"\u0000":1}}]}`,
	"{\"batch\":[{\"type\":\"track\",\"userId\":\"\xff\",\"event\":\"e\"},{\"type\":\"track\",\"userId\":\"\xed\xa0\x80\",\"event\":\"e\"},{\"type\":\"track\",\"userId\":\"\xef\xbf\xbd\",\"event\":\"e\"}]}",
	`{"batch":[{"type":"track","userId":"u","event":"e","traits":"gold","properties":[1],"context":3,"integrations":true}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"e","traits":null,"properties":null,"context":null,"integrations":null}]}`,
	`{"batch":[{"type":"track","userId":{"a":1},"anonymousId":[1,{"b":2}],"event":true,"name":null,"messageId":-1.5E+3}]}`,
	`{"batch":[{"type":"track","userId":{"a":1,"a":2},"event":"e"}]}`,
	`{"batch":[1,"x",null,true,[],[{"a":1}],{}]}`,
	`{"batch":[],"batch":[{"type":"identify","userId":"u"}]}`,
	`{"batch":[{"type":"identify","userId":"u"}],"Batch":[]}`,
	`{"batch":[{"type":"identify","userId":"u"}],"context":{"a":1,"a":2}}`,
	`{"batch":[{"type":"identify","userId":"u"}],"context":[],"integrations":{}}`,
	`{"batch":[{"type":"identify","userId":"u"}],"writeKey":12,"sentAt":"x"}`,
	`{"batch":[{"type":"identify","userId":"u"}],"writeKey":"wk","sentAt":"2026-11-29T12:00:00Z","x":[1,2,{"y":null}],"x2":"\u00e9"}`,
	`{"batch":[{"type":"identify","userId":"u"}],"_x":1,"_x":2}`,
	`{"batch":[{"type":"identify","userId":"u"}],"\u0063ontext":{}}`,
	`{"batch":null}`, `{"batch":{}}`, `{"batch":"x"}`, `{}`, `{"batch":[]}`,
	` {"batch" : [ {"type" : "identify" , "userId" : "u" } ] , "sentAt" : "" } ` + "\n",
	`{"batch":[{"type":"identify","userId":"u"}]} x`, `{"batch":[{"type":"identify","userId":"u"},]}`,
	`{"batch":[{"type":"identify","userId":"u",}]}`, `{"batch":[{"type":"identify","userId":"u"}],}`,
	`{"batch":[{"type":"identify","userId":01}]}`, `{"batch":[{"type":"identify","userId":1.}]}`,
	`{"batch":[{"type":"identify","userId":.5}]}`, `{"batch":[{"type":"identify","userId":+1}]}`,
	`{"batch":[{"type":"identify","userId":1e}]}`, `{"batch":[{"type":"identify","userId":-}]}`,
	`{"batch":[{"type":"identify","userId":tru}]}`, `{"batch":[{"type":"identify","userId":nul}]}`,
	`{"batch":[{"type":"identify","userId":"\x"}]}`, `{"batch":[{"type":"identify","userId":"\u12"}]}`,
	"{\"batch\":[{\"type\":\"identify\",\"userId\":\"a\tb\"}]}", `{"batch":[{"type":"identify","userId":"u"`,
	`{"batch":[{"type":"identify" "userId":"u"}]}`, `{"batch":[{"type":"identify",:"u"}]}`,
	`{"batch":[{"type":"identify","userId":"u"}]]}`, `{"batch":[{"type":"identify","userId":"u"}}`,
	`{"batch":[{"type":"identify","userId":"u","traits":{"a":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}}]}`,
	`{"batch":[{"type":"identify","userId":"u","traits":{"a":` + strings.Repeat("[", 600) + strings.Repeat("]", 599) + `}}]}`,
	`{"userId":"u","event":"e","writeKey":{}}`, `{"userId":"u","event":"e","writeKey":"k"}`,
	`{"userId":"u","event":"e"} {}`, `{"userId":"u","event":"e"}` + "\n\t ",
	`{"userId":"u","event":"e","context":{"direct":true,"ip":"1.2.3.4"}}`,
	`{"userId":"u","event":"e","type":"identify","traits":{"a":1},"properties":{"p":"<&>\u2028"}}`,
}

func decoderCorpus(tb testing.TB) [][]byte {
	var out [][]byte
	fixtures, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(fixtures) == 0 {
		tb.Fatalf("no fixtures in testdata: %v", err)
	}
	for _, name := range fixtures {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	for _, s := range decoderSeeds {
		out = append(out, []byte(s))
	}
	return out
}

// TestDecoderMatchesReference: on every seed (and every batch seed's messages sent as single
// calls), Parse answers exactly what the reference path answers: the same messages, the same
// rejections and errors, word for word.
func TestDecoderMatchesReference(t *testing.T) {
	t.Parallel()
	for _, body := range decoderCorpus(t) {
		for _, call := range []string{"batch", "track", "identify"} {
			if diff := sameParse(call, body); diff != "" {
				t.Errorf("Parse(%s, %.200q): %s", call, body, diff)
			}
		}
		var wb struct{ Batch []json.RawMessage }
		if json.Unmarshal(body, &wb) == nil {
			for _, raw := range wb.Batch {
				for _, call := range []string{"track", "page"} {
					if diff := sameParse(call, raw); diff != "" {
						t.Errorf("Parse(%s, %.200q): %s", call, raw, diff)
					}
				}
			}
		}
	}
}

// TestDecoderDecodesItself guards the speed of the common case: the SDKs' batches are read by
// the decoder alone, not handed to the reference path.
func TestDecoderDecodesItself(t *testing.T) {
	t.Parallel()
	fixtures, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range fixtures {
		body, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		d := decoder{data: body}
		d.space()
		fb := newFastBatch()
		d.batch(&fb)
		d.space()
		if d.bad || d.slow || d.pos != len(body) {
			t.Errorf("%s: the decoder hands the body to the reference path (bad %v, slow %v, at %d of %d)", name, d.bad, d.slow, d.pos, len(body))
		}
		for i, e := range fb.elems {
			if e.slow {
				t.Errorf("%s: message %d is handed to the reference path", name, i)
			}
		}
	}
}

// FuzzDecoderMatchesReference: whatever the body, Parse answers exactly what the reference
// path answers, as a batch and as a single call; and what the decoder vouches for, it decodes
// as json.Unmarshal does, and jsoncheck finds nothing wrong with it.
func FuzzDecoderMatchesReference(f *testing.F) {
	for _, b := range decoderCorpus(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, call := range []string{"batch", "track"} {
			if diff := sameParse(call, body); diff != "" {
				t.Fatalf("Parse(%s, %q): %s", call, body, diff)
			}
		}
		if diff := sameDecoding(body); diff != "" {
			t.Fatalf("%q: %s", body, diff)
		}
	})
}

// sameDecoding reports how the decoder's reading of body, as a message and as a batch,
// differs from json.Unmarshal's and jsoncheck's, when the decoder vouches for it.
func sameDecoding(body []byte) string {
	object := bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) // not whitespace alone
	var w wireMessage
	if object && decodeWhole(body, &w, nil) {
		var want wireMessage
		if err := json.Unmarshal(body, &want); err != nil {
			return fmt.Sprintf("the decoder reads a message json.Unmarshal refuses: %v", err)
		}
		if e := jsoncheck.Check(body, jsoncheck.Options{Type: wireMessageType}); e != nil {
			return fmt.Sprintf("the decoder reads a message jsoncheck refuses: %v", e)
		}
		if !reflect.DeepEqual(w, want) {
			return fmt.Sprintf("the decoder reads the message as\n%#v\njson.Unmarshal as\n%#v", w, want)
		}
	}
	fb := newFastBatch()
	defer fb.release()
	if object && decodeWhole(body, nil, &fb) {
		var want wireBatch
		if err := json.Unmarshal(body, &want); err != nil {
			return fmt.Sprintf("the decoder reads a batch json.Unmarshal refuses: %v", err)
		}
		if e := jsoncheck.Check(body, jsoncheck.Options{Type: wireBatchType, Skip: "batch"}); e != nil {
			return fmt.Sprintf("the decoder reads a batch jsoncheck refuses: %v", e)
		}
		if len(want.Batch) != len(fb.elems) {
			return fmt.Sprintf("the decoder reads %d messages, json.Unmarshal %d", len(fb.elems), len(want.Batch))
		}
		for i, el := range fb.elems {
			if raw := body[el.start:el.end]; !bytes.Equal(raw, want.Batch[i]) {
				return fmt.Sprintf("message %d is %q, json.Unmarshal's %q", i, raw, want.Batch[i])
			}
			if !el.slow {
				if diff := sameDecoding(want.Batch[i]); diff != "" {
					return fmt.Sprintf("message %d: %s", i, diff)
				}
			}
		}
		want.Batch = nil
		if !reflect.DeepEqual(fb.wb, want) {
			return fmt.Sprintf("the decoder reads the batch as\n%#v\njson.Unmarshal as\n%#v", fb.wb, want)
		}
	}
	return ""
}

// The decoder knows every field of wireMessage and wireBatch, by the JSON names
// encoding/json gives them.
func TestDecoderKnowsEveryField(t *testing.T) {
	t.Parallel()
	names := func(typ reflect.Type) []string {
		var out []string
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			out = append(out, name)
		}
		return out
	}
	if got, want := messageFields, names(wireMessageType); !reflect.DeepEqual(got, want) {
		t.Errorf("messageFields = %q, want wireMessage's %q", got, want)
	}
	if got, want := batchFields, names(wireBatchType); !reflect.DeepEqual(got, want) {
		t.Errorf("batchFields = %q, want wireBatch's %q", got, want)
	}
	// Each is decoded into its own field: one body setting them all, read both ways.
	var b strings.Builder
	for i, name := range messageFields {
		if i > 0 {
			b.WriteByte(',')
		}
		v := fmt.Sprintf(`"v-%s"`, name)
		switch name {
		case "traits", "properties", "context", "integrations":
			v = fmt.Sprintf(`{"k-%s":[1,"x",{"y":null}]}`, name)
		}
		fmt.Fprintf(&b, `"%s":%s`, name, v)
	}
	body := "{" + b.String() + "}"
	if diff := sameDecoding([]byte(body)); diff != "" {
		t.Error(diff)
	}
	batch := `{"batch":[` + body + `],"context":{"a":1},"integrations":{"b":true},"sentAt":"s","writeKey":"w"}`
	if diff := sameDecoding([]byte(batch)); diff != "" {
		t.Error(diff)
	}
}

// TestDecoderDecodesSeedsAsEncodingJSON: sameDecoding on every seed.
func TestDecoderDecodesSeedsAsEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, body := range decoderCorpus(t) {
		if diff := sameDecoding(body); diff != "" {
			t.Errorf("%.200q: %s", body, diff)
		}
	}
}

// BenchmarkParseIdentify parses a small identify call, the single-call path's common case.
func BenchmarkParseIdentify(b *testing.B) {
	body := []byte(`{"userId":"user-1","messageId":"identify-1","traits":{"plan":"pro","visits":1}}`)
	env := parseTestEnv()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Parse("identify", body, env); err != nil {
			b.Fatal(err)
		}
	}
}
