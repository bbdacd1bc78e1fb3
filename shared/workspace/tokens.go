package workspace

import (
	"context"
	"slices"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/token"
)

// Token rotation and revocation (ARCHITECTURE.md section 5, "Tokens"). Every token is kept
// only as its SHA-256 (the TOKEN#<hash> index item that Authenticate reads), so deleting
// that item is what makes a token stop working, at once and on every instance: nothing
// caches a principal.

// accessTokenKey is a space access token's entry in its workspace's partition: it lets the
// tokens of a space be listed and revoked by id, which the hash-keyed index item cannot.
func accessTokenKey(ws, sp, id string) store.Key {
	return store.Key{PK: wsPK(ws), SK: accessTokenPrefix + sp + "#" + id}
}

const (
	accessTokenPrefix   = "ATOKEN#"
	accessTokenIDPrefix = "at_"
)

// maxPathID bounds the ids taken from a path: longer ones name nothing, and must not reach
// the store (DynamoDB refuses sort keys over 1 KiB).
const maxPathID = 100

// AccessTokenInfo is what may be shown of a space access token: never the token.
type AccessTokenInfo struct {
	ID        string    `json:"id"`
	SpaceID   string    `json:"space_id"`
	CreatedAt time.Time `json:"created_at"`
}

// accessTokenRecord is the stored entry: the info and the token's hash, to delete its index
// item on revocation.
type accessTokenRecord struct {
	AccessTokenInfo
	TokenHash string `json:"token_hash"`
}

// RotateWorkspaceToken replaces the workspace token the caller authenticated with by a new
// one (shown once) in one transaction: the old token stops working at once. Of two rotations
// with the same token at once, exactly one succeeds; the other finds its token gone and is
// refused, so exactly one valid token remains.
// Caller: the workspace's token itself. Errors: forbidden, unauthorized (401) when the
// token was rotated meanwhile.
func (s *Service) RotateWorkspaceToken(ctx context.Context, p Principal, wsID string) (string, error) {
	if err := p.Owns(wsID); err != nil {
		return "", err
	}
	if p.tokenHash == "" { // a principal made in code, not by Authenticate: no token to replace
		return "", errcode.New(errcode.Forbidden, "forbidden", "rotating needs the workspace token itself")
	}
	next := token.New(token.WorkspacePrefix)
	err := s.st.Transact(ctx,
		store.DeleteOp(tokenKey(p.tokenHash), store.MustExist),
		store.PutOp(item(tokenKey(token.Hash(next)), tokenRecord{Kind: WorkspaceOwner, WorkspaceID: wsID}), store.MustNotExist))
	if store.FailedOp(err) == 0 {
		return "", errcode.New(errcode.Unauthorized, "unauthorized", "this workspace token was rotated meanwhile and no longer works; use the new one")
	}
	if err != nil {
		return "", err
	}
	return next, nil
}

// ListAccessTokens returns the Profile API tokens of a space (ids and creation times, never
// the tokens), oldest first. Tokens issued before tokens were listed have no entry and are not
// shown.
// Caller: the workspace's token. Errors: forbidden, not_found (the space).
func (s *Service) ListAccessTokens(ctx context.Context, p Principal, wsID, spaceID string) ([]AccessTokenInfo, error) {
	if _, err := s.GetSpace(ctx, p, wsID, spaceID); err != nil {
		return nil, err
	}
	recs, err := list[accessTokenRecord](ctx, s.st, wsID, accessTokenPrefix+spaceID+"#")
	if err != nil {
		return nil, err
	}
	out := make([]AccessTokenInfo, len(recs))
	for i, rec := range recs {
		out[i] = rec.AccessTokenInfo
	}
	// Ids order by the millisecond only (random within it): the creation time decides.
	slices.SortStableFunc(out, func(a, b AccessTokenInfo) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// RevokeAccessToken deletes a space access token: the Profile API refuses it from then on.
// Caller: the workspace's token. Errors: forbidden, not_found (the space or the token; a
// token revoked concurrently is not found by the second revocation).
func (s *Service) RevokeAccessToken(ctx context.Context, p Principal, wsID, spaceID, id string) error {
	if err := p.Owns(wsID); err != nil {
		return err
	}
	notFound := errcode.NotFoundf("access token %s was not found in space %s of workspace %s", id, spaceID, wsID)
	if len(id) > maxPathID || len(spaceID) > maxPathID {
		return notFound
	}
	// The entry is never changed once written, so the hash read here is still its hash when
	// the transaction deletes the entry under MustExist.
	rec, _, err := store.LoadJSON[accessTokenRecord](ctx, s.st, accessTokenKey(wsID, spaceID, id), notFound)
	if err != nil {
		return err
	}
	err = s.st.Transact(ctx,
		store.DeleteOp(accessTokenKey(wsID, spaceID, id), store.MustExist),
		store.DeleteOp(tokenKey(rec.TokenHash), store.Always))
	if store.FailedOp(err) == 0 {
		return notFound
	}
	return err
}
