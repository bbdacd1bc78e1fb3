package workspace

import (
	"context"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/token"
)

// ListSpaces returns the workspace's Unify spaces in creation order.
// Caller: the workspace's token. Errors: forbidden.
func (s *Service) ListSpaces(ctx context.Context, p Principal, wsID string) ([]Space, error) {
	if err := p.Owns(wsID); err != nil {
		return nil, err
	}
	return list[Space](ctx, s.st, wsID, spacePrefix)
}

// CreateSpace adds a Unify space, within the entitlement of MaxSpaces.
// Caller: the workspace's token. Errors: forbidden, not_found, invalid_field, entitlement_exceeded (403).
func (s *Service) CreateSpace(ctx context.Context, p Principal, wsID, name string) (Space, error) {
	if err := p.Owns(wsID); err != nil {
		return Space{}, err
	}
	if err := validName("name", name); err != nil {
		return Space{}, err
	}
	sp := Space{ID: s.ids.New(spaceIDPrefix), WorkspaceID: wsID, Name: name, CreatedAt: s.now()}
	if err := s.createCounted(ctx, wsID, ResourceSpaces, " Unify spaces", item(spaceKey(wsID, sp.ID), sp)); err != nil {
		return Space{}, err
	}
	return sp, nil
}

// AccessToken is a Profile API credential for one space, shown once.
type AccessToken struct {
	Token string
	AccessTokenInfo
}

// CreateAccessToken issues a Profile API token for a space; only its hash is kept, in the
// index item Authenticate reads and in the space's list of tokens (ListAccessTokens), both
// written in one transaction.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) CreateAccessToken(ctx context.Context, p Principal, wsID, spaceID string) (AccessToken, error) {
	if err := p.Owns(wsID); err != nil {
		return AccessToken{}, err
	}
	notFound := errcode.NotFoundf("space %s was not found in workspace %s", spaceID, wsID)
	if len(spaceID) > maxPathID {
		return AccessToken{}, notFound
	}
	tok := token.New(token.AccessPrefix)
	info := AccessTokenInfo{ID: s.ids.New(accessTokenIDPrefix), SpaceID: spaceID, CreatedAt: s.now()}
	err := s.st.Transact(ctx,
		store.CheckOp(spaceKey(wsID, spaceID), store.MustExist),
		store.PutOp(item(tokenKey(token.Hash(tok)), tokenRecord{Kind: SpaceAccess, WorkspaceID: wsID, SpaceID: spaceID}), store.MustNotExist),
		store.PutOp(item(accessTokenKey(wsID, spaceID, info.ID), accessTokenRecord{AccessTokenInfo: info, TokenHash: token.Hash(tok)}), store.MustNotExist))
	if store.FailedOp(err) == 0 {
		return AccessToken{}, notFound
	}
	if err != nil {
		return AccessToken{}, err
	}
	return AccessToken{Token: tok, AccessTokenInfo: info}, nil
}

// GetSpace returns one space of the workspace.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) GetSpace(ctx context.Context, p Principal, wsID, spaceID string) (Space, error) {
	if err := p.Owns(wsID); err != nil {
		return Space{}, err
	}
	notFound := errcode.NotFoundf("space %s was not found in workspace %s", spaceID, wsID)
	if len(spaceID) > maxPathID {
		return Space{}, notFound
	}
	sp, _, err := load[Space](ctx, s.st, spaceKey(wsID, spaceID), notFound)
	return sp, err
}
