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
	Token   string
	SpaceID string
}

// CreateAccessToken issues a Profile API token for a space; only its hash is kept.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) CreateAccessToken(ctx context.Context, p Principal, wsID, spaceID string) (AccessToken, error) {
	if err := p.Owns(wsID); err != nil {
		return AccessToken{}, err
	}
	tok := token.New(token.AccessPrefix)
	err := s.st.Transact(ctx,
		store.CheckOp(spaceKey(wsID, spaceID), store.MustExist),
		store.PutOp(item(tokenKey(token.Hash(tok)), tokenRecord{Kind: SpaceAccess, WorkspaceID: wsID, SpaceID: spaceID}), store.MustNotExist))
	if store.FailedOp(err) == 0 {
		return AccessToken{}, errcode.NotFoundf("space %s was not found in workspace %s", spaceID, wsID)
	}
	if err != nil {
		return AccessToken{}, err
	}
	return AccessToken{Token: tok, SpaceID: spaceID}, nil
}

// GetSpace returns one space of the workspace.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) GetSpace(ctx context.Context, p Principal, wsID, spaceID string) (Space, error) {
	if err := p.Owns(wsID); err != nil {
		return Space{}, err
	}
	sp, _, err := load[Space](ctx, s.st, spaceKey(wsID, spaceID), errcode.NotFoundf("space %s was not found in workspace %s", spaceID, wsID))
	return sp, err
}
