// Package localkey implements secrets.Sealer with AES-256-GCM and a key kept in a file: the
// local stack's stand-in for KMS. Whoever can read the key file can open every secret, so the
// file must be the owner's alone (mode 0600), next to the data it protects.
package localkey

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/unifiedprofiles/up/shared/secrets"
)

// KeySize is the key length: AES-256.
const KeySize = 32

// version is the first byte of every sealed value, so the format can change without
// misreading old values. It is authenticated too (part of the GCM additional data).
const version byte = 1

// Sealer seals with one AES-256-GCM key.
type Sealer struct {
	aead cipher.AEAD
}

var _ secrets.Sealer = (*Sealer)(nil)

// New returns a Sealer on a 32-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("localkey: the key is %d bytes; AES-256 needs %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("localkey: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("localkey: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// LoadOrCreate reads the key at path, or creates it (32 random bytes, mode 0600) when there is
// no file. It refuses a file that group or others may read or write, and one that is not
// exactly 32 bytes: a wrong key would fail every Open later with a far less clear error, and a
// fresh key in its place could open none of the secrets sealed before.
func LoadOrCreate(path string) (*Sealer, error) {
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createKey(path); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		// Read back what is on disk: another process may have created it first.
		key, err = readKey(path)
	}
	if err != nil {
		return nil, err
	}
	return New(key)
}

func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("localkey: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("localkey: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("localkey: key file %s has mode %04o, so group or others may read it; make it the owner's alone: chmod 600 %s", path, perm, path)
	}
	if fi.Size() != KeySize {
		return nil, fmt.Errorf("localkey: key file %s holds %d bytes, not the %d of an AES-256 key; restore the original (a new key cannot open secrets sealed with the old one)", path, fi.Size(), KeySize)
	}
	key := make([]byte, KeySize)
	if _, err := f.ReadAt(key, 0); err != nil {
		return nil, fmt.Errorf("localkey: read key file %s: %w", path, err)
	}
	return key, nil
}

// createKey writes a new key to a temporary file and links it into place, so no reader ever
// sees a partial key and an existing key is never replaced (the link fails with ErrExist).
func createKey(path string) error {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("localkey: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("localkey: key folder: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".secrets-key-*") // CreateTemp makes it 0600
	if err != nil {
		return fmt.Errorf("localkey: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(key)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("localkey: write key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("localkey: create key file %s: %w", path, err)
	}
	return nil
}

// Seal returns version ‖ nonce ‖ AES-GCM(plaintext), with the version and the canonical aad
// as additional data.
func (s *Sealer) Seal(_ context.Context, plaintext []byte, aad map[string]string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("localkey: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+s.aead.Overhead())
	out = append(out, version)
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, plaintext, additionalData(aad)), nil
}

// Open reverses Seal. Errors: secrets.ErrOpen for another key or aad, altered bytes, or an
// unknown version.
func (s *Sealer) Open(_ context.Context, sealed []byte, aad map[string]string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() {
		return nil, fmt.Errorf("localkey: sealed value too short (%d bytes): %w", len(sealed), secrets.ErrOpen)
	}
	if sealed[0] != version {
		return nil, fmt.Errorf("localkey: unknown format version %d: %w", sealed[0], secrets.ErrOpen)
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], additionalData(aad))
	if err != nil {
		return nil, fmt.Errorf("localkey: %w", secrets.ErrOpen)
	}
	return plain, nil
}

// additionalData encodes the version and aad canonically: keys sorted, every key and value
// length-prefixed, so no two different maps (e.g. {"a":"bc"} and {"ab":"c"}) encode alike.
func additionalData(aad map[string]string) []byte {
	keys := make([]string, 0, len(aad))
	for k := range aad {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := []byte{version}
	for _, k := range keys {
		out = binary.AppendUvarint(out, uint64(len(k)))
		out = append(out, k...)
		out = binary.AppendUvarint(out, uint64(len(aad[k])))
		out = append(out, aad[k]...)
	}
	return out
}
