package workspace

import (
	"context"
	"strings"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/token"
)

// PrincipalKind says what a bearer token stands for.
type PrincipalKind string

const (
	Operator       PrincipalKind = "operator"     // runs the beta program
	Invite         PrincipalKind = "invite"       // may create one workspace for one account, once
	WorkspaceOwner PrincipalKind = "workspace"    // manages one workspace
	SpaceAccess    PrincipalKind = "space_access" // reads one space's profiles (Profile API)
)

// Principal is an authenticated caller.
type Principal struct {
	Kind        PrincipalKind
	WorkspaceID string
	SpaceID     string
	AccountSID  string
	tokenHash   string
}

// Authenticate turns a bearer token into a principal.
// Errors: unauthorized (401) when the token is missing or unknown.
func (s *Service) Authenticate(ctx context.Context, bearer string) (Principal, error) {
	if bearer == "" {
		return Principal{}, errcode.New(errcode.Unauthorized, "unauthorized", "missing bearer token: send Authorization: Bearer <token>")
	}
	if s.operatorHash != "" && token.Matches(bearer, s.operatorHash) {
		return Principal{Kind: Operator}, nil
	}
	h := token.Hash(bearer)
	unknown := errcode.New(errcode.Unauthorized, "unauthorized", "the bearer token is not valid (unknown, revoked or already used)")
	if !strings.HasPrefix(bearer, "up") {
		return Principal{}, unknown
	}
	rec, _, err := store.LoadJSON[tokenRecord](ctx, s.st, tokenKey(h), unknown)
	if err != nil {
		return Principal{}, err
	}
	return Principal{Kind: rec.Kind, WorkspaceID: rec.WorkspaceID, SpaceID: rec.SpaceID, AccountSID: rec.AccountSID, tokenHash: h}, nil
}

// Owns checks that p may manage workspace ws. Only that workspace's own token may: the
// operator runs the beta program, not tenants' data.
// Errors: forbidden (403).
func (p Principal) Owns(ws string) error {
	if p.Kind == WorkspaceOwner && p.WorkspaceID == ws {
		return nil
	}
	return errcode.New(errcode.Forbidden, "forbidden", "this token may not access workspace %s", ws)
}

// IsOperator checks that p is the operator.
// Errors: forbidden (403).
func (p Principal) IsOperator() error {
	if p.Kind == Operator {
		return nil
	}
	return errcode.New(errcode.Forbidden, "forbidden", "only the operator token may do this")
}
