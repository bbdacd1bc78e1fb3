package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/secrets"
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
		return FlexConfig{}, noSecrets("the Twilio auth token")
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
//
// The sealed token is opened (a KMS call in AWS) at most once per stored ciphertext by this
// Service, that is per warm instance: the webhook is open to anyone who knows a workspace id,
// and each callback must not cost a decryption. The cache is keyed by the ciphertext itself,
// which every SetFlexAuthToken changes (sealing is randomised), so a new token is seen on the
// next call. A ciphertext that does not open (secrets.ErrOpen) is remembered too.
// Errors: flex_not_configured (404) when no token was set, or no such workspace (the two are
// one answer, so a webhook caller cannot probe for workspaces).
func (s *Service) FlexAuthToken(ctx context.Context, wsID string) (string, error) {
	rec, err := s.loadFlex(ctx, wsID)
	if err != nil {
		return "", err
	}
	if o, ok := s.opened.get(wsID, rec.SealedToken); ok {
		return o.token, o.err
	}
	if s.secrets == nil {
		return "", noSecrets("the Twilio auth token")
	}
	plain, err := s.secrets.Open(ctx, rec.SealedToken, flexAAD(wsID))
	if err != nil {
		err = fmt.Errorf("open the auth token of %s: %w", wsID, err)
		if errors.Is(err, secrets.ErrOpen) { // no retry can fix it; a transient failure may pass next time
			s.opened.put(wsID, rec.SealedToken, "", err)
		}
		return "", err
	}
	s.opened.put(wsID, rec.SealedToken, string(plain), nil)
	return string(plain), nil
}

// CachedFlexAuthToken is FlexAuthToken without opening anything: ok is false when this
// Service has not opened the workspace's current token yet. The webhook uses it while a
// workspace is over its limit of failed signatures, so a flood of forged callbacks costs no
// decryption while Twilio's genuine ones still pass on a warm instance.
// Errors: flex_not_configured (404), as FlexAuthToken.
func (s *Service) CachedFlexAuthToken(ctx context.Context, wsID string) (tok string, ok bool, err error) {
	rec, err := s.loadFlex(ctx, wsID)
	if err != nil {
		return "", false, err
	}
	o, ok := s.opened.get(wsID, rec.SealedToken)
	if !ok || o.err != nil {
		return "", false, nil
	}
	return o.token, true, nil
}

// FlexSettings returns what may be shown of the workspace's Flex settings (never the token):
// Configured false until an auth token is set.
// Caller: the workspace's token. Errors: forbidden, not_found (the workspace).
func (s *Service) FlexSettings(ctx context.Context, p Principal, wsID string) (FlexConfig, error) {
	if err := p.Owns(wsID); err != nil {
		return FlexConfig{}, err
	}
	if _, _, err := s.loadWorkspace(ctx, wsID); err != nil {
		return FlexConfig{}, err
	}
	rec, err := s.loadFlex(ctx, wsID)
	if errcode.Is(err, "flex_not_configured") {
		return FlexConfig{}, nil
	}
	if err != nil {
		return FlexConfig{}, err
	}
	return FlexConfig{Configured: true, UpdatedAt: rec.UpdatedAt}, nil
}

func (s *Service) loadFlex(ctx context.Context, wsID string) (flexRecord, error) {
	notConfigured := errcode.New(errcode.NotFound, "flex_not_configured",
		"workspace %s has no Twilio auth token; set it in the workspace's Flex settings first", wsID)
	rec, _, err := store.LoadJSON[flexRecord](ctx, s.st, flexKey(wsID), notConfigured)
	return rec, err
}

// maxOpened bounds the opened-token cache: a few MiB at most, however many workspaces call.
const maxOpened = 10000

// openedCache holds the Flex tokens this Service opened, per workspace, with the ciphertext
// they came from.
type openedCache struct {
	mu sync.Mutex
	m  map[string]openedToken
}

type openedToken struct {
	sealed []byte
	token  string
	err    error // secrets.ErrOpen: this ciphertext does not open
}

// get returns what opening sealed gave for ws, if sealed is what was opened last.
func (c *openedCache) get(ws string, sealed []byte) (openedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.m[ws]
	if !ok || !bytes.Equal(o.sealed, sealed) {
		return openedToken{}, false
	}
	return o, true
}

func (c *openedCache) put(ws string, sealed []byte, tok string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]openedToken{}
	}
	if _, ok := c.m[ws]; !ok && len(c.m) >= maxOpened {
		for k := range c.m { // drop any one: a miss costs one decryption, nothing more
			delete(c.m, k)
			break
		}
	}
	c.m[ws] = openedToken{sealed: bytes.Clone(sealed), token: tok, err: err}
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

// noSecrets is the answer when this deployment has no Sealer; what names the secret.
func noSecrets(what string) error {
	return errcode.New(errcode.Internal, "secrets_not_configured",
		"this deployment has no key to encrypt secrets with, so %s cannot be kept or used; contact the operator", what)
}
