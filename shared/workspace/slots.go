package workspace

import (
	"context"

	"github.com/unifiedprofiles/up/shared/store"
)

// TakeSlot is the op that takes one slot of a workspace's entitlement for resource, for
// another domain to commit in the same transaction as the record it counts (computed traits
// live with the profiles of a space). When it is the op that fails, answer with Exceeded.
func TakeSlot(wsID, resource string) store.Op {
	return store.AddOp(usageKey(wsID, resource), 1, int64(Limit(resource)))
}

// FreeSlot is the op that gives a slot back, committed with the record's deletion.
func FreeSlot(wsID, resource string) store.Op {
	return store.AddOp(usageKey(wsID, resource), -1, 0)
}

// Exceeded is the entitlement_exceeded error (403) for resource, with the current usage.
func (s *Service) Exceeded(ctx context.Context, wsID, resource string) error {
	return s.exceeded(ctx, wsID, resource, "")
}
