package kms_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/unifiedprofiles/up/shared/secrets"
	"github.com/unifiedprofiles/up/shared/secrets/kms"
	"github.com/unifiedprofiles/up/shared/secrets/kms/kmstest"
)

var ctx = context.Background()

// The adapter against moto_server's KMS, which (like KMS) authenticates the encryption
// context and refuses a ciphertext under another key.
func TestSealerOnMoto(t *testing.T) {
	t.Parallel()
	endpoint := kmstest.Endpoint(t)
	client := kmstest.Client(t, endpoint)
	s := kms.New(client, kmstest.CreateKey(t, client))
	aad := map[string]string{"workspace_id": "ws_1"}
	plain := []byte("0123456789abcdef0123456789abcdef")

	sealed, err := s.Seal(ctx, plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain) {
		t.Errorf("the ciphertext contains the plaintext")
	}
	if got, err := s.Open(ctx, sealed, aad); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}

	for _, tc := range []struct {
		name   string
		sealed []byte
		aad    map[string]string
	}{
		{"another workspace", sealed, map[string]string{"workspace_id": "ws_2"}},
		{"no context", sealed, nil},
		{"extra context", sealed, map[string]string{"workspace_id": "ws_1", "x": "y"}},
		{"altered", flipLast(sealed), aad},
	} {
		if _, err := s.Open(ctx, tc.sealed, tc.aad); !errors.Is(err, secrets.ErrOpen) {
			t.Errorf("%s: %v, want ErrOpen", tc.name, err)
		}
	}

	// A sealer on another key of the account does not open it (moto answers AccessDenied
	// where KMS answers IncorrectKeyException: either way, no plaintext).
	other := kms.New(client, kmstest.CreateKey(t, client))
	if got, err := other.Open(ctx, sealed, aad); err == nil {
		t.Errorf("another key opened it: %q", got)
	}
	// A key that does not exist is an error on Seal, not a silent success.
	if _, err := kms.New(client, "00000000-0000-0000-0000-000000000000").Seal(ctx, plain, aad); err == nil {
		t.Errorf("sealing under a missing key succeeded")
	}
}

// FromEnv reads the key and the endpoint from the environment (t.Setenv: not parallel).
func TestFromEnv(t *testing.T) {
	t.Setenv(kms.KeyIDEnv, "")
	if _, err := kms.FromEnv(ctx); !errors.Is(err, kms.ErrNoKeyID) {
		t.Fatalf("without %s: %v, want ErrNoKeyID", kms.KeyIDEnv, err)
	}
	endpoint := kmstest.Endpoint(t)
	client := kmstest.Client(t, endpoint)
	keyID := kmstest.CreateKey(t, client)
	t.Setenv(kms.KeyIDEnv, keyID)
	t.Setenv(kms.EndpointEnv, endpoint)
	t.Setenv("AWS_REGION", kmstest.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	s, err := kms.FromEnv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	aad := map[string]string{"workspace_id": "ws_env"}
	sealed, err := s.Seal(ctx, []byte("x"), aad)
	if err != nil {
		t.Fatal(err)
	}
	// What FromEnv's sealer sealed, a sealer built by hand on the same key opens.
	if got, err := kms.New(client, keyID).Open(ctx, sealed, aad); err != nil || string(got) != "x" {
		t.Fatalf("Open = %q, %v", got, err)
	}
}

func flipLast(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)-1] ^= 1
	return c
}
