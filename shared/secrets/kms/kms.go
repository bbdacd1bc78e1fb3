// Package kms implements secrets.Sealer with AWS KMS: Encrypt and Decrypt under one key, the
// aad passed as the encryption context (which KMS authenticates and CloudTrail records, so
// every decryption of a workspace's secret is logged with the workspace's id).
package kms

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/unifiedprofiles/up/shared/secrets"
)

// Environment variables FromEnv reads.
const (
	KeyIDEnv    = "UP_KMS_KEY_ID"   // key id, ARN or alias (required)
	EndpointEnv = "UP_KMS_ENDPOINT" // a KMS-compatible endpoint (moto_server in tests); optional
)

// ErrNoKeyID is returned by FromEnv when KeyIDEnv is not set.
var ErrNoKeyID = errors.New("kms: " + KeyIDEnv + " is not set: name the KMS key that encrypts workspace secrets")

// API is the part of the KMS client a Sealer uses.
type API interface {
	Encrypt(ctx context.Context, in *awskms.EncryptInput, optFns ...func(*awskms.Options)) (*awskms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *awskms.DecryptInput, optFns ...func(*awskms.Options)) (*awskms.DecryptOutput, error)
}

// Sealer seals with one KMS key.
type Sealer struct {
	client API
	keyID  string
}

var _ secrets.Sealer = (*Sealer)(nil)

// New returns a Sealer on the key keyID (id, ARN or alias) through client.
func New(client API, keyID string) *Sealer { return &Sealer{client: client, keyID: keyID} }

// FromEnv returns a Sealer on the key named by UP_KMS_KEY_ID with the standard AWS
// configuration, at UP_KMS_ENDPOINT when set. The SDK's default HTTP client is kept: it
// honours AWS_CA_BUNDLE. Errors: ErrNoKeyID when the variable is missing.
func FromEnv(ctx context.Context) (*Sealer, error) {
	keyID := os.Getenv(KeyIDEnv)
	if keyID == "" {
		return nil, ErrNoKeyID
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("kms: load AWS configuration: %w", err)
	}
	client := awskms.NewFromConfig(cfg, func(o *awskms.Options) {
		if ep := os.Getenv(EndpointEnv); ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
	})
	return New(client, keyID), nil
}

// Seal encrypts plaintext (at most 4 KiB, KMS's limit for direct encryption) with aad as the
// encryption context.
func (s *Sealer) Seal(ctx context.Context, plaintext []byte, aad map[string]string) ([]byte, error) {
	out, err := s.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(s.keyID), Plaintext: plaintext, EncryptionContext: aad})
	if err != nil {
		return nil, fmt.Errorf("kms: encrypt: %w", err)
	}
	return out.CiphertextBlob, nil
}

// Open decrypts sealed with aad as the encryption context. The key is named too, so a
// ciphertext of another key in the account is refused rather than opened. Errors:
// secrets.ErrOpen for a wrong context, altered bytes or another key.
func (s *Sealer) Open(ctx context.Context, sealed []byte, aad map[string]string) ([]byte, error) {
	out, err := s.client.Decrypt(ctx, &awskms.DecryptInput{KeyId: aws.String(s.keyID), CiphertextBlob: sealed, EncryptionContext: aad})
	var invalid *types.InvalidCiphertextException
	var incorrect *types.IncorrectKeyException
	switch {
	case errors.As(err, &invalid), errors.As(err, &incorrect):
		return nil, fmt.Errorf("kms: decrypt: %w (%w)", secrets.ErrOpen, err)
	case err != nil:
		return nil, fmt.Errorf("kms: decrypt: %w", err)
	}
	return out.Plaintext, nil
}
