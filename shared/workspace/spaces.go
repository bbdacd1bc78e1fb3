package workspace

import (
	"context"
	"strings"

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
	err := retryOnRace(ctx, func() error {
		// The space's version moves with each token (see DeleteSpace).
		sp, spVersion, err := store.LoadJSON[Space](ctx, s.st, spaceKey(wsID, spaceID), notFound)
		if err != nil {
			return err
		}
		info.CreatedAt = s.now()
		err = s.st.Transact(ctx,
			touchSpaceOp(wsID, sp, spVersion),
			store.PutOp(item(tokenKey(token.Hash(tok)), tokenRecord{Kind: SpaceAccess, WorkspaceID: wsID, SpaceID: spaceID}), store.MustNotExist),
			store.PutOp(item(accessTokenKey(wsID, spaceID, info.ID), accessTokenRecord{AccessTokenInfo: info, TokenHash: token.Hash(tok)}), store.MustNotExist))
		if store.FailedOp(err) == 0 {
			return errRace // the space changed (another token or source) or went: look again
		}
		return err
	})
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
	sp, _, err := store.LoadJSON[Space](ctx, s.st, spaceKey(wsID, spaceID), notFound)
	return sp, err
}

// DeleteSpace deletes a space that no source feeds, with its Profile API tokens, and frees
// its entitlement slot. The first space (where sources go by default) cannot be deleted.
// The space's profiles become unreachable (no route reads a space that does not exist, and
// its tokens are revoked); their events expire with the event retention.
// Caller: the workspace's token. Errors: forbidden, not_found, space_in_use (409).
func (s *Service) DeleteSpace(ctx context.Context, p Principal, wsID, spaceID string) error {
	if err := p.Owns(wsID); err != nil {
		return err
	}
	notFound := errcode.NotFoundf("space %s was not found in workspace %s", spaceID, wsID)
	if len(spaceID) > maxPathID {
		return notFound
	}
	return retryOnRace(ctx, func() error {
		ws, _, err := s.loadWorkspace(ctx, wsID)
		if err != nil {
			return err
		}
		if spaceID == ws.FirstSpaceID {
			return errcode.New(errcode.Conflict, "space_in_use",
				"space %s is the workspace's first space, where sources go by default; it cannot be deleted", spaceID)
		}
		_, spVersion, err := store.LoadJSON[Space](ctx, s.st, spaceKey(wsID, spaceID), notFound)
		if err != nil {
			return err
		}
		sources, err := list[Source](ctx, s.st, wsID, sourcePrefix)
		if err != nil {
			return err
		}
		var feeding []string
		for _, src := range sources {
			if src.SpaceID == spaceID {
				feeding = append(feeding, src.Name)
			}
		}
		if len(feeding) > 0 {
			return errcode.New(errcode.Conflict, "space_in_use",
				"space %s is fed by %d source(s) (%s); delete them first", spaceID, len(feeding), errcode.Clip(strings.Join(feeding, ", ")))
		}
		tokens, err := list[accessTokenRecord](ctx, s.st, wsID, accessTokenPrefix+spaceID+"#")
		if err != nil {
			return err
		}
		for _, rec := range tokens { // revoked first: a token left over would name a deleted space
			if err := s.st.Transact(ctx, store.DeleteOp(accessTokenKey(wsID, spaceID, rec.ID), store.Always),
				store.DeleteOp(tokenKey(rec.TokenHash), store.Always)); err != nil {
				return err
			}
		}
		// At the version its sources and tokens were read at: a source or token added
		// meanwhile moved it, and the deletion starts over.
		err = s.st.Transact(ctx,
			store.Op{Kind: store.Delete, Item: store.Item{Key: spaceKey(wsID, spaceID)}, Cond: store.VersionIs, Version: spVersion},
			store.AddOp(usageKey(wsID, ResourceSpaces), -1, 0))
		if store.FailedOp(err) == 0 {
			return errRace
		}
		return err
	})
}

// touchSpaceOp checks that a space still exists and moves its version, for a write that adds
// something to the space (a source, a token): DeleteSpace deletes a space at the version it
// read its sources and tokens at, so nothing is ever added to a space being deleted. The first
// space (written once, at version 0, and never deleted) is only checked.
func touchSpaceOp(wsID string, sp Space, version int64) store.Op {
	if version == 0 {
		return store.CheckOp(spaceKey(wsID, sp.ID), store.MustExist)
	}
	return store.ReplaceOp(item(spaceKey(wsID, sp.ID), sp), version)
}
