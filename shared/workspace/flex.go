package workspace

import (
	"context"
	"fmt"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
)

// The Flex settings of a workspace: its Twilio auth token, which verifies the signature of
// the webhooks Twilio sends (PRODUCT.md section 7). The token is kept sealed by the Service's
// secrets.Sealer, bound to the workspace's id, and is never returned to a caller.

func flexKey(ws string) store.Key { return store.Key{PK: wsPK(ws), SK: "FLEX"} }

// FlexConfig is what may be shown of a workspace's Flex settings: never the token.
type FlexConfig struct {
	Configured bool
	UpdatedAt  time.Time
}

// flexRecord is the stored item. SealedToken is opaque ciphertext (base64 in JSON).
type flexRecord struct {
	SealedToken []byte    `json:"sealed_auth_token"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// authTokenLength: a Twilio auth token is 32 lowercase hex characters.
const authTokenLength = 32

// flexAAD is the encryption context of a workspace's token: a sealed token copied into
// another workspace's item does not open there.
func flexAAD(ws string) map[string]string { return map[string]string{"workspace_id": ws} }

// SetFlexAuthToken stores (or replaces) the workspace's Twilio auth token, sealed.
// Caller: the workspace's token. Errors: forbidden, not_found (the workspace), invalid_field
// on "auth_token" (the message never repeats the value), secrets_not_configured (500) when
// this deployment has no Sealer.
func (s *Service) SetFlexAuthToken(ctx context.Context, p Principal, wsID, authToken string) (FlexConfig, error) {
	if err := p.Owns(wsID); err != nil {
		return FlexConfig{}, err
	}
	if err := validAuthToken(authToken); err != nil {
		return FlexConfig{}, err
	}
	if s.secrets == nil {
		return FlexConfig{}, noSecrets()
	}
	sealed, err := s.secrets.Seal(ctx, []byte(authToken), flexAAD(wsID))
	if err != nil {
		return FlexConfig{}, fmt.Errorf("seal the auth token of %s: %w", wsID, err)
	}
	rec := flexRecord{SealedToken: sealed, UpdatedAt: s.now()}
	// Last write wins: the latest token is the one Twilio signs with.
	err = s.st.Transact(ctx,
		store.CheckOp(workspaceKey(wsID), store.MustExist),
		store.PutOp(item(flexKey(wsID), rec), store.Always))
	if store.FailedOp(err) == 0 {
		return FlexConfig{}, errcode.NotFoundf("workspace %s was not found", wsID)
	}
	if err != nil {
		return FlexConfig{}, err
	}
	return FlexConfig{Configured: true, UpdatedAt: rec.UpdatedAt}, nil
}

// FlexAuthToken returns the workspace's Twilio auth token, to verify a webhook's signature.
// There is no principal: the webhook's proof is the signature made with this token, so the
// caller must use it for nothing else and never show it.
// Errors: flex_not_configured (404) when no token was set, or no such workspace (the two are
// one answer, so a webhook caller cannot probe for workspaces).
func (s *Service) FlexAuthToken(ctx context.Context, wsID string) (string, error) {
	notConfigured := errcode.New(errcode.NotFound, "flex_not_configured",
		"workspace %s has no Twilio auth token; set it in the workspace's Flex settings first", wsID)
	rec, _, err := load[flexRecord](ctx, s.st, flexKey(wsID), notConfigured)
	if err != nil {
		return "", err
	}
	if s.secrets == nil {
		return "", noSecrets()
	}
	plain, err := s.secrets.Open(ctx, rec.SealedToken, flexAAD(wsID))
	if err != nil {
		return "", fmt.Errorf("open the auth token of %s: %w", wsID, err)
	}
	return string(plain), nil
}

// FlexSource returns the workspace's auto-created Flex source (FlexSourceName), through
// which Flex interactions are recorded.
// Caller: trusted code that has authenticated the request for wsID (a signed webhook, or the
// workspace's token). Errors: not_found.
func (s *Service) FlexSource(ctx context.Context, wsID string) (Source, error) {
	sources, err := list[Source](ctx, s.st, wsID, sourcePrefix)
	if err != nil {
		return Source{}, err
	}
	for _, src := range sources {
		// AutoCreated too: a user may name a source of their own the same.
		if src.AutoCreated && src.Name == FlexSourceName && src.Type == FlexSourceType {
			return src, nil
		}
	}
	return Source{}, errcode.NotFoundf("workspace %s was not found, or has no %s source", wsID, FlexSourceName)
}

func validAuthToken(tok string) error {
	const what = "must be the Twilio account's auth token: 32 lowercase hexadecimal characters (Twilio Console, Account info)"
	if tok == "" {
		return errcode.InvalidField("auth_token", "is required and %s", what)
	}
	if len(tok) != authTokenLength {
		return errcode.InvalidField("auth_token", "%s; this value has %d characters", what, len(tok))
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return errcode.InvalidField("auth_token", "%s; this value has other characters", what)
		}
	}
	return nil
}

func noSecrets() error {
	return errcode.New(errcode.Internal, "secrets_not_configured",
		"this deployment has no key to encrypt secrets with, so the Twilio auth token cannot be kept or used; contact the operator")
}
