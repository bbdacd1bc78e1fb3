// Package secrets is the port through which domain packages keep secrets encrypted at rest
// (a workspace's Twilio auth token): they hand it plaintext and an encryption context and
// store only what it gives back. Two adapters implement it — secrets/localkey (AES-256-GCM
// with a key file, for the local stack) and secrets/kms (AWS KMS).
package secrets

import (
	"context"
	"errors"
)

// Sealer encrypts and decrypts small secrets.
//
// The aad (additional authenticated data, KMS's "encryption context") binds a ciphertext to
// what it protects, e.g. {"workspace_id": "ws_…"}: it is not secret and not stored in the
// ciphertext, and Open with any other aad fails. That stops a sealed value copied from one
// workspace's record into another's from opening there.
type Sealer interface {
	// Seal returns plaintext encrypted and authenticated together with aad.
	Seal(ctx context.Context, plaintext []byte, aad map[string]string) ([]byte, error)
	// Open returns the plaintext of sealed. Errors: ErrOpen (wrapped) when sealed was not
	// made by this key with this aad or was changed; other errors mean the key could not be
	// reached (retry).
	Open(ctx context.Context, sealed []byte, aad map[string]string) ([]byte, error)
}

// ErrOpen is wrapped by every Open failure that no retry can fix: another key, another aad,
// or altered bytes.
var ErrOpen = errors.New("secrets: cannot open: sealed by another key, for another context, or altered")
