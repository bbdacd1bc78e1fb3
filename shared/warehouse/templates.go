package warehouse

import (
	"context"

	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// ModelTemplates are the ready models a warehouse source is offered (issue 15): the Salesforce
// Contacts, Leads and Accounts models, in the source's SQL dialect, reading the landing tables
// a Salesforce source syncs into (sqlgen.SalesforceModel). Nothing runs: the user previews
// and saves one like any model. Errors: forbidden, not_found, not_a_warehouse.
func (s *Service) ModelTemplates(ctx context.Context, p workspace.Principal, wsID, srcID string) ([]sqlgen.SalesforceTemplate, error) {
	src, err := s.warehouseSource(ctx, p, wsID, srcID)
	if err != nil {
		return nil, err
	}
	d, ok := sqlgen.For(src.Type)
	if !ok {
		return []sqlgen.SalesforceTemplate{}, nil
	}
	return d.SalesforceTemplates(), nil
}
