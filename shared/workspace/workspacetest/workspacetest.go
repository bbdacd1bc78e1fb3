// Package workspacetest makes tenants for tests: a beta account and its workspace, created
// through the workspace service as an operator would (README walkthrough).
package workspacetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/unifiedprofiles/up/shared/workspace"
)

// Tenant is a workspace made for a test: its first space, its two auto-created sources and
// the workspace token, with the token's principal.
type Tenant struct {
	workspace.Created
	Owner workspace.Principal
	svc   *workspace.Service
}

// New accepts a fresh beta account and creates its workspace. operatorToken must be the
// operator token the service was configured with.
func New(t testing.TB, svc *workspace.Service, operatorToken string) Tenant {
	t.Helper()
	ctx := context.Background()
	op, err := svc.Authenticate(ctx, operatorToken)
	must(t, "authenticate the operator", err)
	var b [16]byte
	rand.Read(b[:])
	sid := "AC" + hex.EncodeToString(b[:])
	_, err = svc.AcceptBeta(ctx, op, sid)
	must(t, "accept the beta account", err)
	created, err := svc.CreateWorkspace(ctx, op, "Test workspace", sid)
	must(t, "create the workspace", err)
	owner, err := svc.Authenticate(ctx, created.Token)
	must(t, "authenticate the workspace token", err)
	return Tenant{Created: created, Owner: owner, svc: svc}
}

// ID is the workspace id.
func (tn Tenant) ID() string { return tn.Workspace.ID }

// SpaceID is the id of the workspace's first space.
func (tn Tenant) SpaceID() string { return tn.Spaces[0].ID }

// Source creates a source of type typ feeding the first space.
func (tn Tenant) Source(t testing.TB, typ string) workspace.Source {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	src, err := tn.svc.CreateSource(context.Background(), tn.Owner, tn.ID(), workspace.NewSource{Name: typ + " " + hex.EncodeToString(b[:]), Type: typ})
	must(t, "create a "+typ+" source", err)
	return src
}

// AccessToken returns a new Profile API token of the first space.
func (tn Tenant) AccessToken(t testing.TB) string {
	t.Helper()
	at, err := tn.svc.CreateAccessToken(context.Background(), tn.Owner, tn.ID(), tn.SpaceID())
	must(t, "create a space access token", err)
	return at.Token
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("workspacetest: %s: %v", what, err)
	}
}
