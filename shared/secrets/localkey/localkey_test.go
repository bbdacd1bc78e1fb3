package localkey_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/unifiedprofiles/up/shared/secrets"
	"github.com/unifiedprofiles/up/shared/secrets/localkey"
)

var ctx = context.Background()

func newSealer(t *testing.T) *localkey.Sealer {
	t.Helper()
	s, err := localkey.LoadOrCreate(filepath.Join(t.TempDir(), "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := newSealer(t)
	for _, tc := range []struct {
		name  string
		plain []byte
		aad   map[string]string
	}{
		{"token", []byte("0123456789abcdef0123456789abcdef"), map[string]string{"workspace_id": "ws_1"}},
		{"empty plaintext", nil, map[string]string{"workspace_id": "ws_1"}},
		{"one byte", []byte("x"), nil},
		{"no aad", []byte("a secret without context"), nil},
		{"several keys", []byte("a secret with three keys"), map[string]string{"b": "2", "a": "1", "c": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sealed, err := s.Seal(ctx, tc.plain, tc.aad)
			if err != nil {
				t.Fatal(err)
			}
			// Only a plaintext of 8 bytes or more says anything here: a short one turns up in
			// random ciphertext by chance (a 1-byte one in about a quarter of seals).
			if len(tc.plain) >= 8 && bytes.Contains(sealed, tc.plain) {
				t.Errorf("sealed value contains the plaintext")
			}
			got, err := s.Open(ctx, sealed, tc.aad)
			if err != nil || !bytes.Equal(got, tc.plain) {
				t.Fatalf("Open = %q, %v; want %q", got, err, tc.plain)
			}
			// A new nonce every time: sealing twice never gives the same bytes.
			again, _ := s.Seal(ctx, tc.plain, tc.aad)
			if bytes.Equal(again, sealed) {
				t.Errorf("two seals of the same value are identical")
			}
		})
	}
}

// Opening with any context other than the sealing one fails, including ones that would
// collide under a naive key+value concatenation.
func TestWrongAAD(t *testing.T) {
	t.Parallel()
	s := newSealer(t)
	aad := map[string]string{"a": "bc"}
	sealed, err := s.Seal(ctx, []byte("secret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []map[string]string{
		nil,
		{"a": "bd"},
		{"ab": "c"},
		{"a": "bc", "x": ""},
		{"workspace_id": "ws_2"},
	} {
		if _, err := s.Open(ctx, sealed, other); !errors.Is(err, secrets.ErrOpen) {
			t.Errorf("Open with aad %v: %v, want ErrOpen", other, err)
		}
	}
}

func TestTampered(t *testing.T) {
	t.Parallel()
	s := newSealer(t)
	aad := map[string]string{"workspace_id": "ws_1"}
	sealed, err := s.Seal(ctx, []byte("secret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		if _, err := s.Open(ctx, b, aad); !errors.Is(err, secrets.ErrOpen) {
			t.Errorf("byte %d flipped: %v, want ErrOpen", i, err)
		}
	}
	for _, b := range [][]byte{nil, sealed[:1], sealed[:len(sealed)-1], append(bytes.Clone(sealed), 0)} {
		if _, err := s.Open(ctx, b, aad); !errors.Is(err, secrets.ErrOpen) {
			t.Errorf("%d bytes: %v, want ErrOpen", len(b), err)
		}
	}
}

func TestWrongKey(t *testing.T) {
	t.Parallel()
	a, b := newSealer(t), newSealer(t)
	aad := map[string]string{"workspace_id": "ws_1"}
	sealed, err := a.Seal(ctx, []byte("secret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(ctx, sealed, aad); !errors.Is(err, secrets.ErrOpen) {
		t.Errorf("another key: %v, want ErrOpen", err)
	}
	if _, err := localkey.New(make([]byte, 16)); err == nil {
		t.Errorf("New accepted a 16-byte key")
	}
}

// The key file is created 0600 once and then reused: what one Sealer sealed, a Sealer loaded
// later from the same file opens.
func TestKeyFileCreatedAndReused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "secrets.key")
	first, err := localkey.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != localkey.KeySize {
		t.Errorf("key file mode %04o size %d, want 0600 and %d", fi.Mode().Perm(), fi.Size(), localkey.KeySize)
	}
	aad := map[string]string{"workspace_id": "ws_1"}
	sealed, _ := first.Seal(ctx, []byte("secret"), aad)
	second, err := localkey.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := second.Open(ctx, sealed, aad); err != nil || string(got) != "secret" {
		t.Errorf("reloaded key: %q, %v", got, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".secrets-key-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// Processes starting together (the local stack and a test) all end up with the same key.
func TestKeyFileConcurrentCreate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secrets.key")
	const n = 8
	sealers := make([]*localkey.Sealer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := localkey.LoadOrCreate(path)
			if err != nil {
				t.Error(err)
			}
			sealers[i] = s
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	sealed, _ := sealers[0].Seal(ctx, []byte("secret"), nil)
	for i, s := range sealers {
		if _, err := s.Open(ctx, sealed, nil); err != nil {
			t.Errorf("sealer %d has another key: %v", i, err)
		}
	}
}

func TestKeyFileRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		size int
		mode os.FileMode
		want string
	}{
		{"group readable", localkey.KeySize, 0o640, "chmod 600"},
		{"world readable", localkey.KeySize, 0o644, "chmod 600"},
		{"group writable", localkey.KeySize, 0o620, "chmod 600"},
		{"too short", 16, 0o600, "holds 16 bytes"},
		{"too long", 33, 0o600, "holds 33 bytes"},
		{"empty", 0, 0o600, "holds 0 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "secrets.key")
			if err := os.WriteFile(path, make([]byte, tc.size), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // WriteFile's mode is masked by umask
				t.Fatal(err)
			}
			_, err := localkey.LoadOrCreate(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadOrCreate: %v; want an error naming the file and saying %q", err, tc.want)
			}
			// The refused file is left as it was: never replaced by a new key.
			if fi, _ := os.Stat(path); fi.Size() != int64(tc.size) {
				t.Errorf("key file changed to %d bytes", fi.Size())
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "secrets.key")
		os.Mkdir(dir, 0o700)
		if _, err := localkey.LoadOrCreate(dir); err == nil {
			t.Fatal("a directory was accepted as the key file")
		}
	})
}
