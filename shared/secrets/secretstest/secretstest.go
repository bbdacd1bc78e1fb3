// Package secretstest holds test helpers for the secrets port.
package secretstest

import (
	"context"
	"sync/atomic"

	"github.com/unifiedprofiles/up/shared/secrets"
)

// Counting wraps a Sealer and counts its Opens: each is a KMS Decrypt call in AWS.
type Counting struct {
	secrets.Sealer
	Opens atomic.Int64
}

// Open counts the call and opens with the wrapped Sealer.
func (c *Counting) Open(ctx context.Context, sealed []byte, aad map[string]string) ([]byte, error) {
	c.Opens.Add(1)
	return c.Sealer.Open(ctx, sealed, aad)
}
