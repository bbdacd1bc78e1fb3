package bolt

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/unifiedprofiles/up/shared/store"
)

// decodeValue never panics on stored bytes, and encode → decode is the identity.
func FuzzDecodeValue(f *testing.F) {
	f.Add([]byte{}, int64(0), int64(0), int64(0))
	f.Add([]byte(`{"a":1}`), int64(3), int64(-1), int64(1<<40))
	f.Fuzz(func(t *testing.T, data []byte, version, count, expires int64) {
		k := store.Key{PK: "P", SK: "S"}
		decodeValue(k, data) // arbitrary bytes: an error or an item, never a panic
		in := store.Item{Key: k, Data: data, Version: version, Count: count, ExpiresAt: expires}
		out, err := decodeValue(k, encodeValue(in))
		if err != nil || out.Version != version || out.Count != count || out.ExpiresAt != expires || !bytes.Equal(out.Data, data) {
			t.Fatalf("round trip of %+v gave %+v, %v", in, out, err)
		}
	})
}

// A log is read back from disk after a crash: readRecord never panics on arbitrary bytes
// (it ends the log or decodes writes), and appendRecord → readRecord gives back the writes,
// in their log only.
func FuzzLogRecord(f *testing.F) {
	f.Add([]byte{}, "P", "S", []byte("v"), true)
	f.Add([]byte{0, 0, 0, 3, 1, 2, 3, 4, 1, 1, 'P'}, "WS#1", "", []byte(nil), false)
	f.Add(appendRecord(nil, 1, []entry{{key: store.Key{PK: "P", SK: "S"}, val: []byte("x")}}), "a\x00b", "\xff", []byte{0}, true)
	f.Fuzz(func(t *testing.T, raw []byte, pk, sk string, val []byte, put bool) {
		readRecord(bufio.NewReader(bytes.NewReader(raw)), 1) // an end, an error or writes: never a panic
		if put && val == nil {
			val = []byte{}
		}
		if !put {
			val = nil
		}
		in := []entry{{key: store.Key{PK: pk, SK: sk}, val: val}, {key: store.Key{PK: sk, SK: pk}}}
		rec := appendRecord(nil, 7, in)
		out, err := readRecord(bufio.NewReader(bytes.NewReader(rec)), 7)
		if err != nil || len(out) != 2 || out[0].key != in[0].key || out[1].key != in[1].key || out[1].val != nil ||
			(out[0].val == nil) != (in[0].val == nil) || !bytes.Equal(out[0].val, in[0].val) {
			t.Fatalf("round trip of %+v gave %+v, %v", in, out, err)
		}
		if _, err := readRecord(bufio.NewReader(bytes.NewReader(rec)), 8); !errors.Is(err, errLogEnd) {
			t.Fatalf("a record of log 7 read in log 8: %v", err)
		}
	})
}
