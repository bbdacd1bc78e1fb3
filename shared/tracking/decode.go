package tracking

import (
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/unifiedprofiles/up/shared/message"
)

// The decoder below reads a request body once, doing the work of encoding/json's
// json.Unmarshal into wireBatch and wireMessage and of jsoncheck.Check in the same pass. It
// is a fast path only: whenever a text holds anything it does not handle exactly as those do
// (a syntax error, a problem jsoncheck would report, a wrong type, a key that matches a field
// only case-insensitively or through an escape, a number out of range, very deep nesting), it
// says so, and the caller hands the text to the reference path (parseBatchReference,
// parseSingleReference, parseElement), which answers exactly as before. So what the fast path
// accepts, it must decode exactly as encoding/json does; what it cannot vouch for costs only
// speed.
//
// Two flags say how far it can vouch:
//   - bad: the text may not be valid JSON (or nests deeper than fastMaxDepth): the whole body
//     goes to the reference path, whose answer is the request's;
//   - slow: the text is valid JSON as far as read, but the value being read (one message of a
//     batch, or the body) must be judged by the reference path.
type decoder struct {
	data []byte
	pos  int
	bad  bool
	slow bool
	// validate: only the syntax matters (validJSON), not what jsoncheck refuses.
	validate bool
}

// fastMaxDepth bounds the nesting the decoder follows (encoding/json allows 10,000): deeper
// texts go to the reference path.
const fastMaxDepth = 500

// strPlain marks the bytes that a string may hold as they are, without any check: printable
// ASCII but the quote and the backslash.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (d *decoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// fail marks the text as possibly invalid and returns false, to unwind.
func (d *decoder) fail() bool {
	d.bad = true
	return false
}

// str reads the string literal at pos (data[pos] is '"'). It returns the literal's content
// (without the quotes) and whether it holds escapes. Invalid UTF-8, \u0000 and unpaired
// surrogates (which jsoncheck refuses) set slow; what is not a JSON string sets bad.
func (d *decoder) str() (content []byte, escaped, ok bool) {
	data := d.data
	start := d.pos + 1
	i := start
	for {
		for i < len(data) && strPlain[data[i]] {
			i++
		}
		if i >= len(data) {
			return nil, false, d.fail()
		}
		switch c := data[i]; {
		case c == '"':
			d.pos = i + 1
			return data[start:i], escaped, true
		case c == '\\':
			escaped = true
			if i+1 >= len(data) {
				return nil, false, d.fail()
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
				continue
			case 'u':
			default:
				return nil, false, d.fail()
			}
			r, ok := hex4(data, i+2)
			if !ok {
				return nil, false, d.fail()
			}
			i += 6
			switch {
			case r == 0:
				d.slow = true
			case utf16.IsSurrogate(r):
				if r >= 0xDC00 { // the second half of a pair, alone
					d.slow = true
					break
				}
				if i+1 < len(data) && data[i] == '\\' && data[i+1] == 'u' {
					if low, ok := hex4(data, i+2); ok && low >= 0xDC00 && low <= 0xDFFF {
						i += 6
						break
					}
				}
				d.slow = true // the first half, alone; what follows is read on its own
			}
		case c < 0x20:
			return nil, false, d.fail()
		default: // c >= utf8.RuneSelf
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				d.slow = true
			}
			i += size
		}
	}
}

// hex4 reads the 4 hex digits at data[i:].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescape appends the value of a string literal's content (as str returned it: valid, with
// escapes) to dst, as encoding/json decodes it (an unpaired surrogate is U+FFFD; str has set
// slow for it anyway).
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(s, i+2)
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2, _ = hex4(s, i+2)
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					i += 6
					r = dec
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // " \ /
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

// stringValue reads a string literal and returns its value.
func (d *decoder) stringValue() (string, bool) {
	content, escaped, ok := d.str()
	if !ok {
		return "", false
	}
	if !escaped {
		return string(content), true
	}
	var buf [64]byte
	return string(unescape(buf[:0], content)), true
}

// keyValue reads an object's key and returns its value, without allocating for the keys of
// the Segment spec (commonKey).
func (d *decoder) keyValue() (string, bool) {
	content, escaped, ok := d.str()
	if !ok {
		return "", false
	}
	if !escaped {
		if k, ok := commonKey(content); ok {
			return k, true
		}
		return string(content), true
	}
	var buf [64]byte
	return string(unescape(buf[:0], content)), true
}

// commonKey returns the keys of the Segment spec's objects (context, traits, properties) as
// constants, so that the most frequent keys cost no allocation.
func commonKey(b []byte) (string, bool) {
	k, ok := commonKeys[string(b)]
	return k, ok
}

var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		// context
		"active", "app", "build", "namespace", "version", "campaign", "source", "medium", "term", "content",
		"device", "advertisingId", "adTrackingEnabled", "manufacturer", "model", "type", "token", "ip",
		"library", "locale", "location", "city", "country", "region", "latitude", "longitude", "speed",
		"network", "bluetooth", "carrier", "cellular", "wifi", "os", "page", "path", "referrer", "search",
		"title", "url", "screen", "density", "height", "width", "timezone", "groupId", "traits", "userAgent",
		"userAgentData", "channel", "direct", "instanceId", "externalIds", "encoding", "collection",
		"brands", "brand", "mobile", "platform", "initial", "sessionId", "sessionStart", "protocols",
		// traits
		"email", "firstName", "lastName", "name", "phone", "plan", "address", "street", "state", "postalCode",
		"age", "avatar", "birthday", "company", "createdAt", "description", "gender", "id", "logins", "username",
		"website", "industry", "employees",
		// properties, integrations
		"revenue", "currency", "value", "price", "quantity", "product_id", "sku", "category", "order_id",
		"total", "tax", "shipping", "discount", "coupon", "products", "label", "All",
	} {
		m[k] = k
	}
	return m
}()

// number reads the number at pos and returns its text. What follows it is the caller's to
// check (a delimiter).
func (d *decoder) number() ([]byte, bool) {
	data, i := d.data, d.pos
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return nil, d.fail()
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i++
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	default:
		return nil, d.fail()
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			return nil, d.fail()
		}
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			return nil, d.fail()
		}
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	}
	lit := data[d.pos:i]
	d.pos = i
	return lit, true
}

// literal reads true, false or null (whose first letter is at pos).
func (d *decoder) literal() bool {
	var want string
	switch d.data[d.pos] {
	case 't':
		want = "true"
	case 'f':
		want = "false"
	default:
		want = "null"
	}
	if len(d.data)-d.pos < len(want) || string(d.data[d.pos:d.pos+len(want)]) != want {
		return d.fail()
	}
	d.pos += len(want)
	return true
}

// value reads the value at pos (after any space) as encoding/json decodes it into an any:
// map[string]any, []any, string, float64, bool or nil. Without build it only reads it,
// checking it as jsoncheck does, and returns nil.
func (d *decoder) value(build bool, depth int) any {
	if d.pos >= len(d.data) {
		d.fail()
		return nil
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		if !build {
			d.skipObject(depth)
			return nil
		}
		m := d.object(depth)
		if m == nil {
			return nil
		}
		return m
	case c == '[':
		return d.array(build, depth)
	case c == '"':
		if !build {
			d.str()
			return nil
		}
		s, _ := d.stringValue()
		return s
	case c == 't':
		d.literal()
		return true
	case c == 'f':
		d.literal()
		return false
	case c == 'n':
		d.literal()
		return nil
	}
	lit, ok := d.number()
	if !ok || !build {
		return nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		d.slow = true // out of range: encoding/json reports it as a type error
		return nil
	}
	return f
}

// next reads what follows a member of an object or an element of an array: a comma (true) or
// the closing byte (false).
func (d *decoder) next(closing byte) (more, ok bool) {
	d.space()
	if d.pos >= len(d.data) {
		return false, d.fail()
	}
	switch d.data[d.pos] {
	case ',':
		d.pos++
		d.space()
		return true, true
	case closing:
		d.pos++
		return false, true
	}
	return false, d.fail()
}

// colon reads the colon after a key, and the space around it.
func (d *decoder) colon() bool {
	d.space()
	if d.pos >= len(d.data) || d.data[d.pos] != ':' {
		return d.fail()
	}
	d.pos++
	d.space()
	return true
}

// open reads the opening byte of an object or array at pos and the space after it; empty
// says the closing byte followed, and was read too.
func (d *decoder) open(depth int, closing byte) (empty, ok bool) {
	if depth > fastMaxDepth {
		return false, d.fail()
	}
	d.pos++
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == closing {
		d.pos++
		return true, true
	}
	return false, true
}

// object reads an object into a map[string]any (nil when the text is bad). A key given twice
// sets slow.
func (d *decoder) object(depth int) map[string]any {
	m := make(map[string]any)
	empty, ok := d.open(depth, '}')
	if !ok {
		return nil
	}
	for more := !empty; more; {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			d.fail()
			return nil
		}
		key, ok := d.keyValue()
		if !ok || !d.colon() {
			return nil
		}
		v := d.value(true, depth+1)
		if d.bad {
			return nil
		}
		n := len(m)
		m[key] = v
		if len(m) == n {
			d.slow = true // a key given twice
		}
		if more, ok = d.next('}'); !ok {
			return nil
		}
	}
	return m
}

// skipObject reads an object without decoding it, checking it as jsoncheck does (its keys
// exactly).
func (d *decoder) skipObject(depth int) {
	if d.validate {
		d.validateObject(depth)
		return
	}
	empty, ok := d.open(depth, '}')
	if !ok {
		return
	}
	var keys keySet
	for more := !empty; more; {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			d.fail()
			return
		}
		key, escaped, ok := d.str()
		if !ok || !d.colon() {
			return
		}
		if escaped || keys.addSeen(key) {
			d.slow = true // an escaped key is compared by the reference path
		}
		d.value(false, depth+1)
		if d.bad {
			return
		}
		if more, ok = d.next('}'); !ok {
			return
		}
	}
}

// validateObject reads an object for its syntax only.
func (d *decoder) validateObject(depth int) {
	empty, ok := d.open(depth, '}')
	if !ok {
		return
	}
	for more := !empty; more; {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			d.fail()
			return
		}
		if _, _, ok := d.str(); !ok || !d.colon() {
			return
		}
		if d.value(false, depth+1); d.bad {
			return
		}
		if more, ok = d.next('}'); !ok {
			return
		}
	}
}

// array reads an array; with build, into a []any (empty, not nil, when the array is).
func (d *decoder) array(build bool, depth int) any {
	var a []any
	if build {
		a = make([]any, 0)
	}
	empty, ok := d.open(depth, ']')
	if !ok {
		return nil
	}
	for more := !empty; more; {
		v := d.value(build, depth+1)
		if d.bad {
			return nil
		}
		if build {
			a = append(a, v)
		}
		if more, ok = d.next(']'); !ok {
			return nil
		}
	}
	if !build {
		return nil
	}
	return a
}

// keySet holds the keys of an object read so far, as their bytes, for those whose keys are
// compared exactly; a few inline, the rest in a map.
type keySet struct {
	inline [16][]byte
	n      int
	more   map[string]bool
}

// addSeen adds key and reports whether it was there already.
func (k *keySet) addSeen(key []byte) bool {
	for _, s := range k.inline[:k.n] {
		if string(s) == string(key) {
			return true
		}
	}
	if k.more != nil && k.more[string(key)] {
		return true
	}
	if k.n < len(k.inline) {
		k.inline[k.n] = key
		k.n++
		return false
	}
	if k.more == nil {
		k.more = map[string]bool{}
	}
	k.more[string(key)] = true
	return false
}

// scalar reads a jsonValue field as jsonValue.UnmarshalJSON does.
func (d *decoder) scalar(v *jsonValue, depth int) {
	if d.pos >= len(d.data) {
		d.fail()
		return
	}
	switch c := d.data[d.pos]; c {
	case '"':
		content, escaped, _ := d.str()
		var s string
		switch {
		case escaped:
			var buf [64]byte
			s = string(unescape(buf[:0], content))
		case isType(content):
			s = typeName(content)
		default:
			s = string(content)
		}
		*v = jsonValue{s: s, kind: 's'}
	case 'n':
		d.literal()
		*v = jsonValue{}
	case 't', 'f':
		d.literal()
		*v = jsonValue{kind: 'b'}
	case '{':
		d.skipObject(depth)
		*v = jsonValue{kind: 'o'}
	case '[':
		d.array(false, depth)
		*v = jsonValue{kind: 'a'}
	default:
		lit, _ := d.number()
		*v = jsonValue{s: string(lit), kind: 'n'}
	}
}

// objectField reads a map[string]any field: an object, or null. Any other value is a type
// error, for the reference path to report.
func (d *decoder) objectField(m *map[string]any, depth int) {
	if d.pos < len(d.data) {
		switch d.data[d.pos] {
		case '{':
			*m = d.object(depth)
			return
		case 'n':
			d.literal()
			*m = nil
			return
		}
	}
	d.slow = true
	d.value(false, depth)
}

// member reads the key of an object's member at pos, and the colon after it. A key of a
// struct is returned only when it has no escape and no byte outside ASCII (any other is for
// the reference path, which matches keys to fields as encoding/json does).
func (d *decoder) member() (key []byte, plain, ok bool) {
	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		return nil, false, d.fail()
	}
	key, escaped, ok := d.str()
	if !ok || !d.colon() {
		return nil, false, false
	}
	if escaped {
		return key, false, true
	}
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return key, false, true
		}
	}
	return key, true, true
}

// Bits of the fields of wireMessage and wireBatch a text has set, to find one given twice.
const (
	fType uint32 = 1 << iota
	fMessageID
	fUserID
	fAnonymousID
	fGroupID
	fPreviousID
	fEvent
	fName
	fTimestamp
	fOriginalTimestamp
	fSentAt
	fWriteKey
	fTraits
	fProperties
	fContext
	fIntegrations
	fBatch
)

// messageFields are wireMessage's JSON names, batchFields wireBatch's.
var (
	messageFields = []string{"type", "messageId", "userId", "anonymousId", "groupId", "previousId", "event", "name",
		"timestamp", "originalTimestamp", "sentAt", "writeKey", "traits", "properties", "context", "integrations"}
	batchFields = []string{"batch", "context", "integrations", "sentAt", "writeKey"}
)

// foldsToField reports whether key (ASCII, not any field's exact name) would fill one of
// fields as encoding/json matches them, case-insensitively.
func foldsToField(key []byte, fields []string) bool {
	for _, f := range fields {
		if len(f) == len(key) && asciiEqualFold(f, key) {
			return true
		}
	}
	return false
}

func asciiEqualFold(s string, b []byte) bool {
	for i := range len(b) {
		x, y := s[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// decodeWhole reads body in one pass as one object, into fb when it is not nil (a batch),
// else into w (a message), and reports whether the fast path vouches for it: read without
// fault or anything it leaves to the reference parser, with nothing after it. A body of
// whitespace alone is vouched for as an empty object; what it lacks is normalise's to say.
// (Not a callback: the decoder would escape to the heap.)
func decodeWhole(body []byte, w *wireMessage, fb *fastBatch) bool {
	d := decoder{data: body}
	d.space()
	if d.pos < len(body) && body[d.pos] == '{' {
		if fb != nil {
			d.batch(fb)
		} else {
			d.message(w, 0)
		}
		d.space()
	}
	return !d.bad && !d.slow && d.pos == len(body)
}

// message reads the object at pos into w (which is zero), as json.Unmarshal into a
// wireMessage does, checking it as jsoncheck.Check with wireMessageType does.
func (d *decoder) message(w *wireMessage, depth int) {
	empty, ok := d.open(depth, '}')
	if !ok {
		return
	}
	var set uint32
	var others keySet // the keys that fill no field
	for more := !empty; more; {
		key, plain, ok := d.member()
		if !ok {
			return
		}
		var bit uint32
		if plain {
			switch string(key) {
			case "type":
				bit = fType
				d.scalar(&w.Type, depth+1)
			case "messageId":
				bit = fMessageID
				d.scalar(&w.MessageID, depth+1)
			case "userId":
				bit = fUserID
				d.scalar(&w.UserID, depth+1)
			case "anonymousId":
				bit = fAnonymousID
				d.scalar(&w.AnonymousID, depth+1)
			case "groupId":
				bit = fGroupID
				d.scalar(&w.GroupID, depth+1)
			case "previousId":
				bit = fPreviousID
				d.scalar(&w.PreviousID, depth+1)
			case "event":
				bit = fEvent
				d.scalar(&w.Event, depth+1)
			case "name":
				bit = fName
				d.scalar(&w.Name, depth+1)
			case "timestamp":
				bit = fTimestamp
				d.scalar(&w.Timestamp, depth+1)
			case "originalTimestamp":
				bit = fOriginalTimestamp
				d.scalar(&w.OriginalTimestamp, depth+1)
			case "sentAt":
				bit = fSentAt
				d.scalar(&w.SentAt, depth+1)
			case "writeKey":
				bit = fWriteKey
				d.scalar(&w.WriteKey, depth+1)
			case "traits":
				bit = fTraits
				d.objectField(&w.Traits, depth+1)
			case "properties":
				bit = fProperties
				d.objectField(&w.Properties, depth+1)
			case "context":
				bit = fContext
				d.objectField(&w.Context, depth+1)
			case "integrations":
				bit = fIntegrations
				d.objectField(&w.Integrations, depth+1)
			}
		}
		if bit != 0 {
			if set&bit != 0 {
				d.slow = true // given twice
			}
			set |= bit
		} else {
			if !plain || foldsToField(key, messageFields) || others.addSeen(key) {
				d.slow = true
			}
			d.value(false, depth+1)
		}
		if d.bad {
			return
		}
		if more, ok = d.next('}'); !ok {
			return
		}
	}
}

// element is a message of a batch as the fast path read it.
type element struct {
	start, end int // its bytes in the body
	w          wireMessage
	slow       bool // for parseElement: not an object, or something the reference path judges
}

// fastBatch is a batch body as the fast path read it.
type fastBatch struct {
	wb                   wireBatch // Batch is left nil: the messages are in elems
	elems                []element
	arrayStart, arrayEnd int // the bytes of the batch's array
	pooled               *[]element
}

// elementPool keeps the elements' room from one batch to the next (up to maxPooledElements).
var elementPool = sync.Pool{New: func() any { return new([]element) }}

const maxPooledElements = 512

func newFastBatch() fastBatch {
	p := elementPool.Get().(*[]element)
	return fastBatch{elems: (*p)[:0], pooled: p}
}

// release gives the elements' room back, holding nothing the request returned.
func (fb *fastBatch) release() {
	if cap(fb.elems) > maxPooledElements {
		return
	}
	clear(fb.elems)
	*fb.pooled = fb.elems[:0]
	fb.elems = nil
	elementPool.Put(fb.pooled)
}

// batch reads a whole batch body (data[pos] is '{', after any space). It sets slow for
// anything the reference path must judge at the batch's level, and for a batch that is not
// an array of 1 to MaxBatchMessages values.
func (d *decoder) batch(fb *fastBatch) {
	empty, ok := d.open(0, '}')
	if !ok {
		return
	}
	var set uint32
	var others keySet
	for more := !empty; more; {
		key, plain, ok := d.member()
		if !ok {
			return
		}
		var bit uint32
		if plain {
			switch string(key) {
			case "batch":
				bit = fBatch
				d.elements(fb)
			case "context":
				bit = fContext
				d.objectField(&fb.wb.Context, 1)
			case "integrations":
				bit = fIntegrations
				d.objectField(&fb.wb.Integrations, 1)
			case "sentAt":
				bit = fSentAt
				d.scalar(&fb.wb.SentAt, 1)
			case "writeKey":
				bit = fWriteKey
				d.scalar(&fb.wb.WriteKey, 1)
			}
		}
		if bit != 0 {
			if set&bit != 0 {
				d.slow = true
			}
			set |= bit
		} else {
			if !plain || foldsToField(key, batchFields) || others.addSeen(key) {
				d.slow = true
			}
			d.value(false, 1)
		}
		if d.bad || d.slow {
			return // the reference path reads it again anyway
		}
		if more, ok = d.next('}'); !ok {
			return
		}
	}
	if len(fb.elems) == 0 {
		d.slow = true // no batch, or an empty one
	}
}

// elements reads the batch's array, each message into fb.elems.
func (d *decoder) elements(fb *fastBatch) {
	if d.pos >= len(d.data) || d.data[d.pos] != '[' {
		d.slow = true // null or another type: an error the reference path words
		return
	}
	fb.arrayStart = d.pos
	empty, ok := d.open(1, ']')
	if !ok {
		return
	}
	for more := !empty; more; {
		if len(fb.elems) == MaxBatchMessages {
			d.slow = true // too many: an error the reference path words
			return
		}
		fb.elems = append(fb.elems, element{start: d.pos})
		e := &fb.elems[len(fb.elems)-1]
		if d.pos < len(d.data) && d.data[d.pos] == '{' {
			d.message(&e.w, 2)
		} else {
			e.slow = true
			d.value(false, 2)
		}
		if d.bad {
			return
		}
		e.end = d.pos
		e.slow = e.slow || d.slow
		d.slow = false
		if more, ok = d.next(']'); !ok {
			return
		}
	}
	fb.arrayEnd = d.pos
}

// validJSON is json.Valid(b), mostly by the decoder: faster, and it allocates nothing.
func validJSON(b []byte) bool {
	return decoderValid(b) || json.Valid(b) // the decoder says bad also for what nests deeper than it follows
}

// decoderValid reports whether the decoder finds b valid JSON.
func decoderValid(b []byte) bool {
	d := decoder{data: b, validate: true}
	d.space()
	d.value(false, 0)
	d.space()
	return !d.bad && d.pos == len(b)
}

// isType reports whether b is the name of a type of message, for typeName.
func isType(b []byte) bool {
	return len(b) >= 4 && len(b) <= 8 && validType(string(b))
}

// typeName returns the type of message b names as a constant (no allocation).
func typeName(b []byte) string {
	switch string(b) {
	case message.Identify:
		return message.Identify
	case message.Track:
		return message.Track
	case message.Page:
		return message.Page
	case message.Screen:
		return message.Screen
	case message.Group:
		return message.Group
	}
	return message.Alias
}
