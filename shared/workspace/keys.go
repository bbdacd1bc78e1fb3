package workspace

import (
	"context"
	"errors"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
)

// The item layout in the one table; shared/store/dynamo/ACCESS_PATTERNS.md lists the
// patterns. Lookups by credential go through index items written in the same transaction
// as their owner, so they are strongly consistent (a GSI would not be).
func accountKey(sid string) store.Key   { return store.Key{PK: "ACCOUNT#" + sid, SK: "ACCOUNT"} }
func tokenKey(hash string) store.Key    { return store.Key{PK: "TOKEN#" + hash, SK: "TOKEN"} }
func writeKeyKey(hash string) store.Key { return store.Key{PK: "WRITEKEY#" + hash, SK: "WRITEKEY"} }
func wsPK(ws string) string             { return "WS#" + ws }
func workspaceKey(ws string) store.Key  { return store.Key{PK: wsPK(ws), SK: "WS"} }
func spaceKey(ws, sp string) store.Key  { return store.Key{PK: wsPK(ws), SK: spacePrefix + sp} }
func sourceKey(ws, src string) store.Key {
	return store.Key{PK: wsPK(ws), SK: sourcePrefix + src}
}
func destinationKey(ws, id string) store.Key {
	return store.Key{PK: wsPK(ws), SK: destinationPrefix + id}
}
func usageKey(ws, resource string) store.Key {
	return store.Key{PK: wsPK(ws), SK: usagePrefix + resource}
}

const (
	spacePrefix       = "SPACE#"
	sourcePrefix      = "SOURCE#"
	destinationPrefix = "DEST#"
	usagePrefix       = "USAGE#"
)

// ID prefixes.
const (
	workspaceIDPrefix   = "ws_"
	spaceIDPrefix       = "sp_"
	sourceIDPrefix      = "src_"
	destinationIDPrefix = "dst_"
)

// tokenRecord is what a credential's index item says about its holder.
type tokenRecord struct {
	Kind        PrincipalKind `json:"kind"`
	WorkspaceID string        `json:"workspace_id,omitempty"`
	SpaceID     string        `json:"space_id,omitempty"`
	AccountSID  string        `json:"account_sid,omitempty"`
}

// writeKeyRecord points a write key at its source.
type writeKeyRecord struct {
	WorkspaceID string `json:"workspace_id"`
	SourceID    string `json:"source_id"`
}

func item(k store.Key, v any) store.Item { return store.JSONItem(k, v) }

// list reads and decodes every item of a workspace partition with the given prefix.
func list[T any](ctx context.Context, st store.Store, ws, prefix string) ([]T, error) {
	return store.ListJSON[T](ctx, st, wsPK(ws), prefix)
}

// maxAttempts bounds optimistic retries when a version check loses a race.
const maxAttempts = 10

// retryOnRace runs fn again while it reports errRace (a lost version check), at most
// maxAttempts times; the caller re-reads state in fn, so every attempt decides afresh.
func retryOnRace(ctx context.Context, fn func() error) error {
	for range maxAttempts {
		err := fn()
		if !errors.Is(err, errRace) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return errcode.New(errcode.Conflict, "concurrent_update", "the workspace changed concurrently %d times in a row; retry the request", maxAttempts)
}

var errRace = errors.New("workspace: lost a race, retry")
