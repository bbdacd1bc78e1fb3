package workspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/token"
)

// invalidWriteKey is the one answer for an unknown, deleted or disabled key: which of them it
// was is not the caller's business.
func invalidWriteKey() error {
	return errcode.New(errcode.Unauthorized, "invalid_write_key",
		"the write key is unknown or its source is disabled; copy it from the source's settings (HTTP Basic user, empty password, or \"writeKey\" in the body)")
}

// SourceByWriteKey returns the enabled source a tracking-API write key belongs to, as read at
// most writeKeyTTL ago by this instance (a change made here applies at once).
// Caller: anyone holding the key. Errors: invalid_write_key (401).
func (s *Service) SourceByWriteKey(ctx context.Context, key string) (Source, error) {
	if key == "" {
		return Source{}, invalidWriteKey()
	}
	hash := token.Hash(key)
	read := s.now()
	src, gen, ok := s.writeKeys.get(hash, read)
	if ok {
		return src, nil
	}
	it, err := s.st.Get(ctx, writeKeyKey(hash))
	if errors.Is(err, store.ErrNotFound) {
		return Source{}, invalidWriteKey()
	}
	if err != nil {
		return Source{}, fmt.Errorf("read write key: %w", err)
	}
	var rec writeKeyRecord
	if err := json.Unmarshal(it.Data, &rec); err != nil {
		return Source{}, fmt.Errorf("decode write key record: %w", err)
	}
	src, _, err = s.loadSource(ctx, rec.WorkspaceID, rec.SourceID)
	if errcode.Is(err, "not_found") || err == nil && !src.Enabled {
		return Source{}, invalidWriteKey()
	}
	if err != nil {
		return Source{}, err
	}
	s.writeKeys.put(hash, src, read, gen)
	return src, nil
}

// MarkConnected records that a source passed its connection test: its step-2 tile turns
// complete, and so does step 2 when the source is of a type the step-1 choice connects.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) MarkConnected(ctx context.Context, p Principal, wsID, srcID string) (Source, error) {
	if err := p.Owns(wsID); err != nil {
		return Source{}, err
	}
	return s.markConnected(ctx, wsID, srcID)
}

// MarkConnectedByTraffic is MarkConnected for a source whose traffic proved itself: the Flex
// webhook calls it once a Twilio-signed callback for the workspace was recorded.
// Caller: a handler that verified the request for wsID. Errors: not_found.
func (s *Service) MarkConnectedByTraffic(ctx context.Context, wsID, srcID string) (Source, error) {
	return s.markConnected(ctx, wsID, srcID)
}

func (s *Service) markConnected(ctx context.Context, wsID, srcID string) (Source, error) {
	var out Source
	err := retryOnRace(ctx, func() error {
		src, srcVersion, err := s.loadSource(ctx, wsID, srcID)
		if err != nil {
			return err
		}
		ws, wsVersion, err := s.loadWorkspace(ctx, wsID)
		if err != nil {
			return err
		}
		out = src
		now := s.now()
		var ops []store.Op
		if src.ConnectedAt == nil {
			src.ConnectedAt, src.UpdatedAt = &now, now
			ops = append(ops, store.ReplaceOp(item(sourceKey(wsID, srcID), src), srcVersion))
		}
		if _, done := ws.Setup.Completed[StepAddConnections]; !done && slices.Contains(connectionTypes[ws.Setup.DataSource], src.Type) {
			if ws.Setup.Completed == nil {
				ws.Setup.Completed = map[string]time.Time{}
			}
			ws.Setup.Completed[StepAddConnections] = now
			ops = append(ops, store.ReplaceOp(item(workspaceKey(wsID), ws), wsVersion))
		}
		if len(ops) == 0 {
			return nil
		}
		if err := s.st.Transact(ctx, ops...); err != nil {
			if store.FailedOp(err) >= 0 {
				return errRace
			}
			return err
		}
		out = src
		return nil
	})
	return out, err
}

// MarkUploadCompleted records that a CSV upload of the workspace completed: when the step-1
// choice is csv, that completes step 2 (a CSV workspace connects by uploading). Idempotent.
// Caller: the upload service, for the upload's workspace (no principal: it is the system
// acting on an upload the workspace's token made).
func (s *Service) MarkUploadCompleted(ctx context.Context, wsID string) error {
	return retryOnRace(ctx, func() error {
		ws, version, err := s.loadWorkspace(ctx, wsID)
		if err != nil {
			return err
		}
		if _, done := ws.Setup.Completed[StepAddConnections]; done || ws.Setup.DataSource != DataSourceCSV {
			return nil
		}
		if ws.Setup.Completed == nil {
			ws.Setup.Completed = map[string]time.Time{}
		}
		ws.Setup.Completed[StepAddConnections] = s.now()
		err = s.st.Transact(ctx, store.ReplaceOp(item(workspaceKey(wsID), ws), version))
		if store.FailedOp(err) >= 0 {
			return errRace
		}
		return err
	})
}
