package workspace

import (
	"context"
	"fmt"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/token"
)

// Created is a new workspace with what came with it.
type Created struct {
	Workspace Workspace
	Token     string // the workspace token, shown once
	Spaces    []Space
	Sources   []Source
}

// CreateWorkspace creates the workspace of a beta account with its first Unify space and the
// two auto-created sources, and returns the workspace token (shown once). The account's
// invite token is spent.
// Caller: the operator, or the account's own invite token. Errors: forbidden, invalid_field,
// not_in_beta (403), workspace_exists (409).
func (s *Service) CreateWorkspace(ctx context.Context, p Principal, name, accountSID string) (Created, error) {
	switch {
	case p.Kind == Operator:
	case p.Kind == Invite && p.AccountSID == accountSID:
	case p.Kind == Invite:
		return Created{}, errcode.New(errcode.Forbidden, "forbidden", "this invite token is for another account")
	default:
		return Created{}, errcode.New(errcode.Forbidden, "forbidden", "creating a workspace needs the operator token or the account's invite token")
	}
	if err := validName("name", name); err != nil {
		return Created{}, err
	}
	if err := validAccountSID(accountSID); err != nil {
		return Created{}, err
	}
	var out Created
	err := retryOnRace(ctx, func() error {
		notInBeta := errcode.New(errcode.Forbidden, "not_in_beta", "account %s has not been accepted into the Unified Profiles beta program; request access from the CustomerAI page of the Flex Console", accountSID)
		acct, version, err := store.LoadJSON[BetaAccount](ctx, s.st, accountKey(accountSID), notInBeta)
		if err != nil {
			return err
		}
		if acct.WorkspaceID != "" {
			return errcode.New(errcode.Conflict, "workspace_exists", "account %s already has workspace %s; an account may have one", accountSID, acct.WorkspaceID)
		}
		now := s.now()
		ws := Workspace{ID: s.ids.New(workspaceIDPrefix), Name: name, AccountSID: accountSID, CreatedAt: now}
		space := Space{ID: s.ids.New(spaceIDPrefix), WorkspaceID: ws.ID, Name: FirstSpaceName, CreatedAt: now}
		ws.FirstSpaceID = space.ID
		sources := []Source{
			s.newSource(ws.ID, space.ID, FlexSourceName, FlexSourceType, now),
			s.newSource(ws.ID, space.ID, "Personas "+name, PersonasSourceType, now),
		}
		// The Personas source's name follows the workspace's, which may be 100 characters.
		for i := range sources {
			sources[i].AutoCreated = true
		}
		wsToken := token.New(token.WorkspacePrefix)

		next := acct
		next.WorkspaceID = ws.ID
		next.InviteHash = ""
		ops := []store.Op{store.ReplaceOp(item(accountKey(accountSID), next), version)}
		if acct.InviteHash != "" {
			// The invite is spent whoever created the workspace. Used by this caller, it must
			// still exist: that makes the invite single-use even under concurrent requests.
			cond := store.Always
			if p.Kind == Invite {
				cond = store.MustExist
			}
			ops = append(ops, store.DeleteOp(tokenKey(acct.InviteHash), cond))
		} else if p.Kind == Invite {
			return errcode.New(errcode.Unauthorized, "unauthorized", "the invite token was revoked")
		}
		ops = append(ops,
			store.ReplaceOp(item(workspaceKey(ws.ID), ws), 0),
			store.PutOp(item(spaceKey(ws.ID, space.ID), space), store.MustNotExist),
			store.AddOp(usageKey(ws.ID, ResourceSpaces), 1, MaxSpaces),
			store.PutOp(item(tokenKey(token.Hash(wsToken)), tokenRecord{Kind: WorkspaceOwner, WorkspaceID: ws.ID}), store.MustNotExist),
		)
		for _, src := range sources {
			ops = append(ops, sourceOps(src)...)
		}
		if err := s.st.Transact(ctx, ops...); err != nil {
			if store.FailedOp(err) >= 0 {
				return errRace // someone else changed the account: decide again from fresh state
			}
			return err
		}
		out = Created{Workspace: ws, Token: wsToken, Spaces: []Space{space}, Sources: sources}
		return nil
	})
	return out, err
}

// GetWorkspace returns the workspace with its setup steps and usage.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) GetWorkspace(ctx context.Context, p Principal, wsID string) (View, error) {
	if err := p.Owns(wsID); err != nil {
		return View{}, err
	}
	ws, _, err := s.loadWorkspace(ctx, wsID)
	if err != nil {
		return View{}, err
	}
	return s.view(ctx, ws)
}

func (s *Service) view(ctx context.Context, ws Workspace) (View, error) {
	sources, err := list[Source](ctx, s.st, ws.ID, sourcePrefix)
	if err != nil {
		return View{}, err
	}
	usage, err := s.usage(ctx, ws.ID)
	if err != nil {
		return View{}, err
	}
	return View{Workspace: ws, Steps: ws.Setup.StepStatuses(sources), Usage: usage, Sources: sources}, nil
}

func (s *Service) loadWorkspace(ctx context.Context, wsID string) (Workspace, int64, error) {
	return store.LoadJSON[Workspace](ctx, s.st, workspaceKey(wsID), errcode.NotFoundf("workspace %s was not found", wsID))
}

// usage reads every entitlement counter of a workspace in one query.
func (s *Service) usage(ctx context.Context, wsID string) (Usage, error) {
	items, err := s.st.Query(ctx, wsPK(wsID), store.Page{Prefix: usagePrefix})
	if err != nil {
		return nil, fmt.Errorf("read usage of %s: %w", wsID, err)
	}
	u := make(Usage, len(Resources))
	for _, r := range Resources {
		u[r] = Quota{Limit: Limit(r)}
	}
	for _, it := range items {
		r := it.SK[len(usagePrefix):]
		if q, ok := u[r]; ok {
			q.Used = int(it.Count)
			u[r] = q
		}
	}
	return u, nil
}

// createCounted writes a new record that takes one slot of resource's entitlement, in one
// transaction with the counter, so the limit holds under concurrent requests.
// Errors: entitlement_exceeded (403), not_found (the workspace).
func (s *Service) createCounted(ctx context.Context, wsID, resource, what string, rec store.Item) error {
	err := s.st.Transact(ctx,
		store.AddOp(usageKey(wsID, resource), 1, int64(Limit(resource))),
		store.CheckOp(workspaceKey(wsID), store.MustExist),
		store.ReplaceOp(rec, 0))
	switch store.FailedOp(err) {
	case 0:
		return s.exceeded(ctx, wsID, resource, what)
	case 1:
		return errcode.NotFoundf("workspace %s was not found", wsID)
	}
	return err
}

// exceeded builds the entitlement error with the current usage.
func (s *Service) exceeded(ctx context.Context, wsID, resource, extra string) error {
	used := Limit(resource)
	if it, err := s.st.Get(ctx, usageKey(wsID, resource)); err == nil {
		used = int(it.Count)
	}
	return errcode.New(errcode.Forbidden, "entitlement_exceeded",
		"%s: the limit is %d%s and %d are in use; delete one to free a slot", resource, Limit(resource), extra, used)
}

// ChooseDataSource records the step-1 choice. Once the user has created a source under a
// choice other than csv, the choice is locked (PRODUCT.md section 2).
// Caller: the workspace's token. Errors: forbidden, not_found, invalid_field, data_source_locked (409).
func (s *Service) ChooseDataSource(ctx context.Context, p Principal, wsID, kind string) (View, error) {
	if err := p.Owns(wsID); err != nil {
		return View{}, err
	}
	if err := oneOf("kind", kind, DataSources); err != nil {
		return View{}, err
	}
	var ws Workspace
	err := retryOnRace(ctx, func() error {
		cur, version, err := s.loadWorkspace(ctx, wsID)
		if err != nil {
			return err
		}
		ws = cur
		if cur.Setup.DataSource == kind {
			return nil
		}
		if cur.Setup.Locked {
			return errcode.New(errcode.Conflict, "data_source_locked",
				"the data source %q is locked: a connection was already created for it in step 2; add other sources from the sources page instead", cur.Setup.DataSource)
		}
		ws.Setup.DataSource = kind
		// The lock itself is set by CreateSource, which checks this item's version: a source
		// created concurrently with this change either sees the new choice or makes this
		// write lose its version check and decide again.
		ops := []store.Op{store.ReplaceOp(item(workspaceKey(wsID), ws), version)}
		if err := s.st.Transact(ctx, ops...); err != nil {
			if store.FailedOp(err) == 0 {
				return errRace
			}
			return err
		}
		return nil
	})
	if err != nil {
		return View{}, err
	}
	return s.view(ctx, ws)
}
