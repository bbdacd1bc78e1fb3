package localkey

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/unifiedprofiles/up/shared/secrets"
)

// FuzzOpen: stored bytes are parsed on every webhook; anything but a sealed value of this
// key and context is refused with ErrOpen, never a panic, and a value sealed here opens back.
func FuzzOpen(f *testing.F) {
	s, err := New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	aad := map[string]string{"workspace_id": "ws_1"}
	good, _ := s.Seal(ctx, []byte("0123456789abcdef0123456789abcdef"), aad)
	f.Add(good, []byte("x"))
	f.Add([]byte{1}, []byte(""))
	f.Add([]byte{}, []byte("token"))
	f.Fuzz(func(t *testing.T, sealed, plain []byte) {
		if out, err := s.Open(ctx, sealed, aad); err != nil {
			if !errors.Is(err, secrets.ErrOpen) {
				t.Fatalf("a refusal that is not ErrOpen: %v", err)
			}
		} else if len(sealed) < 1+12+16 { // version, nonce, tag
			t.Fatalf("opened %d bytes into %q", len(sealed), out)
		}
		box, err := s.Seal(ctx, plain, aad)
		if err != nil {
			t.Fatal(err)
		}
		back, err := s.Open(ctx, box, aad)
		if err != nil || !bytes.Equal(back, plain) {
			t.Fatalf("round trip of %q: %q, %v", plain, back, err)
		}
		if _, err := s.Open(ctx, box, map[string]string{"workspace_id": "ws_2"}); !errors.Is(err, secrets.ErrOpen) {
			t.Fatalf("opened under another workspace: %v", err)
		}
	})
}
