package workspace

import (
	"context"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
)

// Me returns the workspace a workspace token belongs to: how the console, signed in with a
// token alone, learns which workspace it manages (GET /v1/me).
// Caller: a workspace token. Errors: forbidden (403) for any other token — the operator's,
// an invite or a space access token names no workspace to manage —, not_found.
func (s *Service) Me(ctx context.Context, p Principal) (Workspace, error) {
	if p.Kind != WorkspaceOwner || p.WorkspaceID == "" {
		return Workspace{}, errcode.New(errcode.Forbidden, "forbidden",
			"this token names no workspace (it is the %s token): sign in with a workspace token, as created with the workspace or by POST /v1/workspaces/{ws}/token/rotate", kindName(p.Kind))
	}
	ws, _, err := s.loadWorkspace(ctx, p.WorkspaceID)
	return ws, err
}

func kindName(k PrincipalKind) string {
	switch k {
	case Operator:
		return "operator"
	case Invite:
		return "invite"
	case SpaceAccess:
		return "space access"
	}
	return string(k)
}

// MarkChecked records that the configuration check of step 4 passed: the step turns
// complete. Only the first pass is recorded, and nothing undoes it: a later check that fails
// reports what broke without taking the completed setup back (as step 2 stays complete once
// a source connected). Callers record it after a check with no failed item.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) MarkChecked(ctx context.Context, p Principal, wsID string) error {
	if err := p.Owns(wsID); err != nil {
		return err
	}
	return retryOnRace(ctx, func() error {
		ws, version, err := s.loadWorkspace(ctx, wsID)
		if err != nil {
			return err
		}
		if _, done := ws.Setup.Completed[StepCheckConfiguration]; done {
			return nil
		}
		if ws.Setup.Completed == nil {
			ws.Setup.Completed = map[string]time.Time{}
		}
		ws.Setup.Completed[StepCheckConfiguration] = s.now()
		if err := s.st.Transact(ctx, store.ReplaceOp(item(workspaceKey(wsID), ws), version)); err != nil {
			if store.FailedOp(err) == 0 {
				return errRace
			}
			return err
		}
		return nil
	})
}
