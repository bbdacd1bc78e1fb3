package workspace

import (
	"context"
	"errors"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/token"
)

// Acceptance is the result of accepting an account into the beta.
type Acceptance struct {
	Account     BetaAccount
	InviteToken string // shown once
	New         bool   // first acceptance (false: the invite was re-issued)
}

// AcceptBeta records that a Flex account was accepted into the beta and issues a single-use
// invite token with which that account may create its workspace. Accepting again re-issues
// the invite and revokes the previous one.
// Caller: the operator. Errors: forbidden, invalid_field, workspace_exists (409: the account
// already has its workspace).
func (s *Service) AcceptBeta(ctx context.Context, p Principal, accountSID string) (Acceptance, error) {
	if err := p.IsOperator(); err != nil {
		return Acceptance{}, err
	}
	if err := validAccountSID(accountSID); err != nil {
		return Acceptance{}, err
	}
	var out Acceptance
	err := retryOnRace(ctx, func() error {
		acct, version, err := store.LoadJSON[BetaAccount](ctx, s.st, accountKey(accountSID), errNoAccount)
		if err != nil && !errors.Is(err, errNoAccount) {
			return err
		}
		if acct.WorkspaceID != "" {
			return errcode.New(errcode.Conflict, "workspace_exists", "account %s already has workspace %s", accountSID, acct.WorkspaceID)
		}
		invite := token.New(token.InvitePrefix)
		next := acct
		next.AccountSID = accountSID
		if version == 0 {
			next.AcceptedAt = s.now()
		}
		next.InviteHash = token.Hash(invite)
		ops := []store.Op{
			store.ReplaceOp(item(accountKey(accountSID), next), version),
			store.PutOp(item(tokenKey(next.InviteHash), tokenRecord{Kind: Invite, AccountSID: accountSID}), store.MustNotExist),
		}
		if acct.InviteHash != "" {
			ops = append(ops, store.DeleteOp(tokenKey(acct.InviteHash), store.Always))
		}
		if err := s.st.Transact(ctx, ops...); err != nil {
			if store.FailedOp(err) == 0 {
				return errRace
			}
			return err
		}
		out = Acceptance{Account: next, InviteToken: invite, New: version == 0}
		return nil
	})
	return out, err
}

var errNoAccount = errors.New("workspace: account not in beta")
