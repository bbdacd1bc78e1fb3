package bolt

import (
	"bytes"
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
