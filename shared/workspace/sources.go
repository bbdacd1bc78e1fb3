package workspace

import (
	"context"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/token"
)

// Write keys carry no "up" prefix of ours: SDKs treat them as opaque strings.
const writeKeyPrefix = "wk_"

func (s *Service) newSource(wsID, spaceID, name, typ string, now time.Time) Source {
	return Source{
		ID: s.ids.New(sourceIDPrefix), WorkspaceID: wsID, SpaceID: spaceID, Name: name, Type: typ,
		WriteKey: token.New(writeKeyPrefix), Enabled: true, CreatedAt: now, UpdatedAt: now,
	}
}

// sourceOps writes a new source and its write-key index.
func sourceOps(src Source) []store.Op {
	return []store.Op{
		store.ReplaceOp(item(sourceKey(src.WorkspaceID, src.ID), src), 0),
		store.PutOp(item(writeKeyKey(token.Hash(src.WriteKey)), writeKeyRecord{WorkspaceID: src.WorkspaceID, SourceID: src.ID}), store.MustNotExist),
	}
}

// NewSource is what a user asks for when adding a source.
type NewSource struct {
	Name    string
	Type    string
	SpaceID string // the workspace's first space when empty
	URL     string // a website's address (javascript sources)
}

// CreateSource adds a source, within the entitlement of MaxExtraSources beyond the two
// auto-created ones. Under a step-1 choice other than csv it locks that choice.
// Caller: the workspace's token. Errors: forbidden, not_found (workspace or space),
// invalid_field, entitlement_exceeded (403).
func (s *Service) CreateSource(ctx context.Context, p Principal, wsID string, in NewSource) (Source, error) {
	if err := p.Owns(wsID); err != nil {
		return Source{}, err
	}
	if err := validName("name", in.Name); err != nil {
		return Source{}, err
	}
	if err := oneOf("type", in.Type, SourceTypes); err != nil {
		return Source{}, err
	}
	if in.URL != "" && in.Type != "javascript" {
		return Source{}, errcode.InvalidField("url", "applies to javascript (website) sources only")
	}
	if err := validWebsiteURL("url", in.URL); err != nil {
		return Source{}, err
	}
	var out Source
	err := retryOnRace(ctx, func() error {
		ws, version, err := s.loadWorkspace(ctx, wsID)
		if err != nil {
			return err
		}
		spaceID := in.SpaceID
		if spaceID == "" {
			spaceID = ws.FirstSpaceID
		}
		src := s.newSource(wsID, spaceID, in.Name, in.Type, s.now())
		src.URL = in.URL
		ops := []store.Op{store.AddOp(usageKey(wsID, ResourceSources), 1, MaxExtraSources)}
		if spaceID == ws.FirstSpaceID {
			ops = append(ops, store.CheckVersionOp(workspaceKey(wsID), version))
		} else {
			// touchSpaceOp: a source is never added to a space being deleted.
			sp, spVersion, err := store.LoadJSON[Space](ctx, s.st, spaceKey(wsID, spaceID),
				errcode.InvalidField("space_id", "space %s does not exist in this workspace", errcode.Clip(spaceID)))
			if err != nil {
				return err
			}
			ops = append(ops, store.CheckVersionOp(workspaceKey(wsID), version), touchSpaceOp(wsID, sp, spVersion))
		}
		if ds := ws.Setup.DataSource; ds != "" && ds != DataSourceCSV && !ws.Setup.Locked {
			ws.Setup.Locked = true
			ops[1] = store.ReplaceOp(item(workspaceKey(wsID), ws), version)
		}
		ops = append(ops, sourceOps(src)...)
		err = s.st.Transact(ctx, ops...)
		switch store.FailedOp(err) {
		case -1:
		case 0:
			return s.exceeded(ctx, wsID, ResourceSources, " additional sources (plus the 2 auto-created)")
		case 1:
			return errRace
		case 2:
			if spaceID != ws.FirstSpaceID {
				return errRace // the space changed or went: look again
			}
			return err
		default:
			return err
		}
		if err != nil {
			return err
		}
		out = src
		return nil
	})
	return out, err
}

// ListSources returns the workspace's sources in creation order.
// Caller: the workspace's token. Errors: forbidden.
func (s *Service) ListSources(ctx context.Context, p Principal, wsID string) ([]Source, error) {
	if err := p.Owns(wsID); err != nil {
		return nil, err
	}
	return list[Source](ctx, s.st, wsID, sourcePrefix)
}

// GetSource returns one source.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) GetSource(ctx context.Context, p Principal, wsID, srcID string) (Source, error) {
	if err := p.Owns(wsID); err != nil {
		return Source{}, err
	}
	src, _, err := s.loadSource(ctx, wsID, srcID)
	return src, err
}

func (s *Service) loadSource(ctx context.Context, wsID, srcID string) (Source, int64, error) {
	return store.LoadJSON[Source](ctx, s.st, sourceKey(wsID, srcID), errcode.NotFoundf("source %s was not found in workspace %s", srcID, wsID))
}

// SourceChange is a partial update; nil fields are left as they are.
type SourceChange struct {
	Name    *string
	Enabled *bool
	URL     *string
}

func protected(src Source, action string) error {
	return errcode.New(errcode.Conflict, "protected_source",
		"%s was created automatically and cannot be %s: Flex events and profile activation depend on it, and changing it would lose data", src.Name, action)
}

// UpdateSource renames, enables or disables a source.
// Caller: the workspace's token. Errors: forbidden, not_found, invalid_field,
// protected_source (409: auto-created sources cannot change).
func (s *Service) UpdateSource(ctx context.Context, p Principal, wsID, srcID string, ch SourceChange) (Source, error) {
	if err := p.Owns(wsID); err != nil {
		return Source{}, err
	}
	if ch.Name != nil {
		if err := validName("name", *ch.Name); err != nil {
			return Source{}, err
		}
	}
	if ch.URL != nil {
		if err := validWebsiteURL("url", *ch.URL); err != nil {
			return Source{}, err
		}
	}
	var out Source
	defer s.writeKeys.forget() // a disabled source's write key stops here at once
	err := retryOnRace(ctx, func() error {
		src, version, err := s.loadSource(ctx, wsID, srcID)
		if err != nil {
			return err
		}
		if src.AutoCreated {
			return protected(src, "edited")
		}
		if ch.URL != nil && src.Type != "javascript" {
			return errcode.InvalidField("url", "applies to javascript (website) sources only")
		}
		if ch.Name != nil {
			src.Name = *ch.Name
		}
		if ch.Enabled != nil {
			src.Enabled = *ch.Enabled
		}
		if ch.URL != nil {
			src.URL = *ch.URL
		}
		src.UpdatedAt = s.now()
		if err := s.st.Transact(ctx, store.ReplaceOp(item(sourceKey(wsID, srcID), src), version)); err != nil {
			if store.FailedOp(err) == 0 {
				return errRace
			}
			return err
		}
		out = src
		return nil
	})
	return out, err
}

// DeleteSource deletes a source and its write key, freeing its entitlement slot.
// Caller: the workspace's token. Errors: forbidden, not_found, protected_source (409).
func (s *Service) DeleteSource(ctx context.Context, p Principal, wsID, srcID string) error {
	if err := p.Owns(wsID); err != nil {
		return err
	}
	defer s.writeKeys.forget() // its write key stops here at once
	return retryOnRace(ctx, func() error {
		src, version, err := s.loadSource(ctx, wsID, srcID)
		if err != nil {
			return err
		}
		if src.AutoCreated {
			return protected(src, "deleted")
		}
		err = s.st.Transact(ctx,
			store.Op{Kind: store.Delete, Item: store.Item{Key: sourceKey(wsID, srcID)}, Cond: store.VersionIs, Version: version},
			store.AddOp(usageKey(wsID, ResourceSources), -1, 0),
			store.DeleteOp(writeKeyKey(token.Hash(src.WriteKey)), store.Always))
		if store.FailedOp(err) == 0 {
			return errRace // changed or deleted meanwhile: look again
		}
		return err
	})
}
