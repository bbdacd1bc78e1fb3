package workspace

import (
	"context"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
)

// NewDestination is what a user asks for when adding a destination.
type NewDestination struct {
	Name     string
	Category string
	Settings map[string]any
}

// CreateDestination stores a destination's configuration, within the entitlement of
// MaxDestinations. Delivery comes with the destinations feature.
// Caller: the workspace's token. Errors: forbidden, not_found, invalid_field, entitlement_exceeded (403).
func (s *Service) CreateDestination(ctx context.Context, p Principal, wsID string, in NewDestination) (Destination, error) {
	if err := p.Owns(wsID); err != nil {
		return Destination{}, err
	}
	if err := validName("name", in.Name); err != nil {
		return Destination{}, err
	}
	if err := oneOf("category", in.Category, DestinationCategories); err != nil {
		return Destination{}, err
	}
	if err := validSettings(in.Settings); err != nil {
		return Destination{}, err
	}
	d := Destination{ID: s.ids.New(destinationIDPrefix), WorkspaceID: wsID, Name: in.Name, Category: in.Category, Settings: in.Settings, CreatedAt: s.now()}
	if err := s.createCounted(ctx, wsID, ResourceDestinations, " destinations", item(destinationKey(wsID, d.ID), d)); err != nil {
		return Destination{}, err
	}
	return d, nil
}

// ListDestinations returns the workspace's destinations in creation order.
// Caller: the workspace's token. Errors: forbidden.
func (s *Service) ListDestinations(ctx context.Context, p Principal, wsID string) ([]Destination, error) {
	if err := p.Owns(wsID); err != nil {
		return nil, err
	}
	return list[Destination](ctx, s.st, wsID, destinationPrefix)
}

// GetDestination returns one destination.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) GetDestination(ctx context.Context, p Principal, wsID, id string) (Destination, error) {
	if err := p.Owns(wsID); err != nil {
		return Destination{}, err
	}
	d, _, err := load[Destination](ctx, s.st, destinationKey(wsID, id), destinationNotFound(wsID, id))
	return d, err
}

func destinationNotFound(wsID, id string) error {
	return errcode.NotFoundf("destination %s was not found in workspace %s", id, wsID)
}

// DeleteDestination deletes a destination, freeing its slot.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) DeleteDestination(ctx context.Context, p Principal, wsID, id string) error {
	if err := p.Owns(wsID); err != nil {
		return err
	}
	err := s.st.Transact(ctx,
		store.DeleteOp(destinationKey(wsID, id), store.MustExist),
		store.AddOp(usageKey(wsID, ResourceDestinations), -1, 0))
	if store.FailedOp(err) == 0 {
		return destinationNotFound(wsID, id)
	}
	return err
}
