package workspace

import (
	"time"

	"github.com/unifiedprofiles/up/shared/secrets"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/token"
)

// Service is the workspace domain's entry point.
type Service struct {
	st           store.Store
	now          func() time.Time
	ids          token.IDs
	operatorHash string
	secrets      secrets.Sealer
	// opened caches the Flex tokens opened by this Service (see FlexAuthToken).
	opened *openedCache
	// writeKeys caches the sources write keys name (SourceByWriteKey).
	writeKeys *writeKeyCache
}

// Options configure a Service.
type Options struct {
	// OperatorTokenHash is the hex SHA-256 of the operator's bearer token; empty disables it.
	OperatorTokenHash string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Secrets seals the secrets a workspace keeps (its Twilio auth token); without it they
	// cannot be set or read.
	Secrets secrets.Sealer
}

// New returns a Service on st.
func New(st store.Store, opts Options) *Service {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, now: func() time.Time { return now().UTC() }, ids: token.IDs{Now: now}, operatorHash: opts.OperatorTokenHash, secrets: opts.Secrets, opened: &openedCache{}, writeKeys: &writeKeyCache{}}
}
