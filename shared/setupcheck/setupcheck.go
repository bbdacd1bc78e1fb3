// Package setupcheck is step 4 of the guided setup, "Check configuration": it checks every
// source of a workspace, its CSV uploads, every Reverse ETL mapping's last sync and the Flex
// settings, and reports per item pass, fail (with the reason and what to do) or skipped
// (with why nothing was checked). It orchestrates the services that already know each answer
// (the connection test, the warehouse connection test, the uploads, the syncs) through the
// small interfaces below; a check with no failed item completes step 4.
package setupcheck

import (
	"context"
	"fmt"
	"slices"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/salesforce"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/upload"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Item kinds: what an item is about. Stable: the console keys its rendering on them.
const (
	// KindDataSource is the one item that says the workspace has no data source at all
	// (step 2 not done); it appears only then, and always fails.
	KindDataSource = "data_source"
	// KindTrackingSource: a source that sends through the tracking API (javascript, swift,
	// kotlin, http, java — the auto-created Flex source too —, twilio_event_streams).
	KindTrackingSource = "tracking_source"
	// KindWarehouseSource: postgres, redshift, bigquery, snowflake.
	KindWarehouseSource = "warehouse_source"
	// KindSalesforceSource: salesforce (skipped where the deployment serves no Salesforce
	// connections: see WithSalesforce).
	KindSalesforceSource = "salesforce_source"
	// KindPersonasSource: the auto-created Personas source (always skipped: nothing to install).
	KindPersonasSource = "personas_source"
	// KindCSV: the workspace's CSV uploads, one item (id "csv").
	KindCSV = "csv"
	// KindMapping: one Reverse ETL mapping's last sync.
	KindMapping = "mapping"
	// KindFlex: the workspace's Twilio Flex settings, one item (id "flex").
	KindFlex = "flex"
)

// Item statuses. Skipped items do not fail the check.
const (
	StatusPass    = "pass"
	StatusFail    = "fail"
	StatusSkipped = "skipped"
)

// IDs of the items that stand for the workspace rather than one of its records.
const (
	IDDataSource = "data_source"
	IDCSV        = "csv"
	IDFlex       = "flex"
)

// Item is one checked thing. Reason is empty when it passed; Hint, what to do, is set on
// failures (and on some skips).
type Item struct {
	Kind   string
	ID     string
	Name   string
	Status string
	Reason string
	Hint   string
}

// Result is a whole check: OK when no item failed.
type Result struct {
	OK    bool
	Items []Item
}

// Workspaces is what the check needs of the workspace service.
type Workspaces interface {
	// GetWorkspace: the setup state and the sources. Errors: forbidden, not_found.
	GetWorkspace(ctx context.Context, p workspace.Principal, wsID string) (workspace.View, error)
	FlexSettings(ctx context.Context, p workspace.Principal, wsID string) (workspace.FlexConfig, error)
	// MarkChecked completes step 4.
	MarkChecked(ctx context.Context, p workspace.Principal, wsID string) error
}

// Tracking is the connection test of tracking sources (POST …/sources/{src}/test-connection).
type Tracking interface {
	TestConnection(ctx context.Context, p workspace.Principal, wsID, srcID string) (tracking.Connection, error)
}

// Uploads lists a workspace's CSV uploads, newest first.
type Uploads interface {
	List(ctx context.Context, p workspace.Principal, wsID string) ([]upload.Upload, error)
}

// Warehouse is what the check needs of Reverse ETL.
type Warehouse interface {
	HasDriver(typ string) bool
	// GetConnection and TestConnection answer not_configured before a connection is saved.
	GetConnection(ctx context.Context, p workspace.Principal, wsID, srcID string) (warehouse.Connection, error)
	TestConnection(ctx context.Context, p workspace.Principal, wsID, srcID string) (warehouse.Test, error)
	WorkspaceMappings(ctx context.Context, wsID string) ([]warehouse.Mapping, error)
	GetModel(ctx context.Context, p workspace.Principal, wsID, srcID, id string) (warehouse.Model, error)
}

// Salesforce is what the check needs of the Salesforce connections (salesforce.Connector).
type Salesforce interface {
	// Get: a source's connection, Connected false when it never connected. Errors:
	// forbidden, not_found, not_salesforce.
	Get(ctx context.Context, p workspace.Principal, wsID, srcID string) (salesforce.Connection, error)
}

// Checker runs the check.
type Checker struct {
	ws         Workspaces
	tracking   Tracking
	uploads    Uploads
	warehouse  Warehouse
	salesforce Salesforce
}

// WithSalesforce has the check judge Salesforce sources by their connection and last sync
// (without it, they are skipped and bring no data). It returns c.
func (c *Checker) WithSalesforce(sf Salesforce) *Checker {
	c.salesforce = sf
	return c
}

// New returns a Checker. wh may be nil: a deployment without Reverse ETL skips warehouse
// sources and has no mappings to check.
func New(ws Workspaces, tr Tracking, up Uploads, wh Warehouse) *Checker {
	return &Checker{ws: ws, tracking: tr, uploads: up, warehouse: wh}
}

// trackingTypes are the source types checked by the tracking connection test.
var trackingTypes = []string{"javascript", "swift", "kotlin", "http", "java", "twilio_event_streams"}

// Check checks the workspace's configuration, in this order: the data_source item when
// there is no data source, every source (as listed), the CSV uploads (when the step-1
// choice is csv or an upload was made), every mapping, Flex. With no failed item it
// completes step 4 (once; a later failing check does not take that back). The tests it runs
// keep their own effects: a tracking source that passes is marked connected, a warehouse
// test's result is kept with the connection.
// Caller: the workspace's token. Errors: forbidden, not_found (the workspace), and
// whatever a service fails with other than an answer the check reports.
func (c *Checker) Check(ctx context.Context, p workspace.Principal, wsID string) (Result, error) {
	v, err := c.ws.GetWorkspace(ctx, p, wsID)
	if err != nil {
		return Result{}, err
	}
	var items []Item
	sources := map[string]workspace.Source{}
	dataSources, disabledData := 0, 0
	for _, src := range v.Sources {
		it, err := c.source(ctx, p, wsID, src)
		if err != nil {
			return Result{}, err
		}
		items = append(items, it)
		sources[src.ID] = src
		// A Salesforce source brings data only where the deployment connects it.
		if !src.AutoCreated && (it.Kind != KindSalesforceSource || c.salesforce != nil) {
			if src.Enabled {
				dataSources++
			} else {
				disabledData++
			}
		}
	}
	uploads, err := c.uploads.List(ctx, p, wsID)
	if err != nil {
		return Result{}, err
	}
	setup := v.Workspace.Setup
	if setup.DataSource == workspace.DataSourceCSV || len(uploads) > 0 {
		items = append(items, csvItem(setup, uploads))
		dataSources++
	}
	if dataSources == 0 {
		items = append([]Item{noDataSource(setup.DataSource, disabledData)}, items...)
	}
	if c.warehouse != nil {
		maps, err := c.warehouse.WorkspaceMappings(ctx, wsID)
		if err != nil {
			return Result{}, err
		}
		for _, m := range maps {
			it, err := c.mapping(ctx, p, wsID, m, sources)
			if err != nil {
				return Result{}, err
			}
			items = append(items, it)
		}
	}
	flex, err := c.ws.FlexSettings(ctx, p, wsID)
	if err != nil {
		return Result{}, err
	}
	items = append(items, flexItem(flex))

	ok := !slices.ContainsFunc(items, func(it Item) bool { return it.Status == StatusFail })
	if ok {
		if err := c.ws.MarkChecked(ctx, p, wsID); err != nil {
			return Result{}, err
		}
	}
	return Result{OK: ok, Items: items}, nil
}

// noDataSource is the failing item of a workspace with no enabled source of its own (a
// Salesforce source counts only where the deployment connects it) and no CSV item: step 2 is not
// done, whatever else passes.
func noDataSource(choice string, disabled int) Item {
	it := Item{Kind: KindDataSource, ID: IDDataSource, Name: "Data source", Status: StatusFail,
		Reason: "No data source has been added yet, so no customer data can reach the profiles: step 2 (add connections) is not done."}
	if disabled > 0 {
		it.Reason = "Every data source added to this workspace is disabled, so no customer data can reach the profiles."
		it.Hint = "Enable a source (PATCH …/sources/{src} {\"enabled\":true}), or add another one."
		return it
	}
	switch choice {
	case "":
		it.Hint = "Choose a data source in step 1, then add its connection in step 2."
	case workspace.DataSourceWebsite:
		it.Hint = "Add a javascript source with the website's URL and install its snippet on the website."
	case workspace.DataSourceMobile:
		it.Hint = "Add a swift (iOS) or kotlin (Android) source and add its SDK to the app."
	case workspace.DataSourceWarehouse:
		it.Hint = "Add a warehouse source (postgres, redshift, bigquery or snowflake) and save its connection."
	case workspace.DataSourceSalesforceWarehouse:
		it.Hint = "Add the warehouse source Salesforce records land in (postgres, redshift, bigquery or snowflake) and save its connection."
	}
	return it
}

func (c *Checker) source(ctx context.Context, p workspace.Principal, wsID string, src workspace.Source) (Item, error) {
	it := Item{ID: src.ID, Name: src.Name}
	switch {
	case src.Type == workspace.PersonasSourceType:
		it.Kind = KindPersonasSource
	case src.Type == "salesforce":
		it.Kind = KindSalesforceSource
	case slices.Contains(warehouse.SourceTypes, src.Type):
		it.Kind = KindWarehouseSource
	default:
		it.Kind = KindTrackingSource
	}
	if !src.Enabled {
		it.Status = StatusSkipped
		it.Reason = "The source is disabled, so it was not checked."
		it.Hint = "Enable it (PATCH …/sources/{src} {\"enabled\":true}) if it should send data."
		return it, nil
	}
	switch it.Kind {
	case KindPersonasSource:
		it.Status = StatusSkipped
		it.Reason = "The Personas source is created and fed by Unified Profiles itself: there is nothing to install or test."
		return it, nil
	case KindSalesforceSource:
		return c.salesforceSource(ctx, p, wsID, src, it)
	case KindWarehouseSource:
		return c.warehouseSource(ctx, p, wsID, src, it)
	}
	if !slices.Contains(trackingTypes, src.Type) {
		it.Status = StatusSkipped
		it.Reason = fmt.Sprintf("This version cannot check sources of type %s.", src.Type)
		return it, nil
	}
	conn, err := c.tracking.TestConnection(ctx, p, wsID, src.ID)
	if err != nil {
		return Item{}, err
	}
	if conn.OK {
		it.Status = StatusPass
		return it, nil
	}
	it.Status = StatusFail
	it.Reason = sentence(conn.Reason)
	it.Hint = trackingHint(src)
	return it, nil
}

// trackingHint says how to make a tracking source send what its connection test waits for.
func trackingHint(src workspace.Source) string {
	switch {
	case src.Type == "javascript":
		return "Install the source's snippet (GET …/sources/{src}/snippet) on the website, open a page, then check again (or use Test connection)."
	case src.Type == "swift" || src.Type == "kotlin":
		return "Add the SDK to the app with the source's snippet (GET …/sources/{src}/snippet), open a screen, then check again (or use Test connection)."
	case src.AutoCreated && src.Name == workspace.FlexSourceName:
		return "Flex interactions arrive through this source: set the Flex auth token, give Twilio the webhook URL GET …/flex shows, handle a task in Flex, then check again."
	case src.Type == "java":
		return "Send an event with analytics-java and the source's write key (its snippet shows how), then check again (or use Test connection)."
	}
	return "Send an event to the tracking API with the source's write key (its snippet shows a curl call), then check again (or use Test connection)."
}

func (c *Checker) warehouseSource(ctx context.Context, p workspace.Principal, wsID string, src workspace.Source, it Item) (Item, error) {
	if c.warehouse == nil {
		it.Status = StatusSkipped
		it.Reason = "This deployment does not serve warehouse connections and Reverse ETL, so the connection was not tested."
		return it, nil
	}
	noConnection := func() Item {
		it.Status = StatusFail
		it.Reason = "No warehouse connection has been saved for this source yet."
		it.Hint = "Save the warehouse's credentials (PUT …/sources/{src}/warehouse); they are tested as they are saved."
		return it
	}
	if !c.warehouse.HasDriver(src.Type) {
		_, err := c.warehouse.GetConnection(ctx, p, wsID, src.ID)
		switch {
		case errcode.Is(err, "not_configured"):
			return noConnection(), nil
		case err != nil:
			return Item{}, err
		}
		it.Status = StatusSkipped
		it.Reason = fmt.Sprintf("This deployment cannot connect to %s warehouses yet (the sync worker can), so the saved connection was not tested here.", src.Type)
		return it, nil
	}
	t, err := c.warehouse.TestConnection(ctx, p, wsID, src.ID)
	switch {
	case errcode.Is(err, "not_configured"):
		return noConnection(), nil
	case errcode.Is(err, "secrets_not_configured"):
		it.Status = StatusSkipped
		it.Reason = "This deployment has no key to open warehouse credentials with, so the connection was not tested."
		return it, nil
	case err != nil:
		return Item{}, err
	}
	if t.OK {
		it.Status = StatusPass
		return it, nil
	}
	it.Status = StatusFail
	it.Reason = fmt.Sprintf("The connection test failed (%s): %s", t.Reason, sentence(t.Message))
	it.Hint = t.Hint
	if it.Hint == "" {
		it.Hint = "Check the connection settings and that the warehouse is up, then test again."
	}
	return it, nil
}

// Last sync statuses of a Salesforce source (salesforce.LastSync.Status).
const (
	sfSucceeded  = "succeeded"
	sfInProgress = "in_progress"
	sfRunning    = "running"
)

// salesforceSource passes a source connected whose last sync succeeded; it fails one whose
// grant Salesforce refused (reauthorize), one never connected, one connected whose first sync
// has not ended (nothing to judge yet: check again when it ends) and one whose last sync did
// not succeed. The connection keeps only its latest sync, so a sync running now fails the item
// too ("check again when it ends").
func (c *Checker) salesforceSource(ctx context.Context, p workspace.Principal, wsID string, src workspace.Source, it Item) (Item, error) {
	if c.salesforce == nil {
		it.Status = StatusSkipped
		it.Reason = "This deployment does not serve Salesforce connections, so this source cannot be connected or checked."
		return it, nil
	}
	conn, err := c.salesforce.Get(ctx, p, wsID, src.ID)
	if err != nil {
		return Item{}, err
	}
	it.Status = StatusFail
	switch conn.Status() {
	case salesforce.StatusNotConnected:
		it.Reason = "The source is not connected to Salesforce yet, so no record can be synced."
		it.Hint = "Connect it: choose the objects and the warehouse source records land in, then Connect Salesforce (PUT …/sources/{src}/salesforce and follow the authorize_url) and allow access."
		return it, nil
	case salesforce.StatusReauthorize:
		it.Reason = "Salesforce no longer accepts this connection's authorization, so syncs stopped."
		if conn.ReauthorizeReason != "" {
			it.Reason = "Salesforce no longer accepts this connection's authorization, so syncs stopped: " + sentence(conn.ReauthorizeReason)
		}
		it.Hint = salesforce.ReauthorizeHint
		return it, nil
	}
	last := conn.LastSync
	switch {
	case last == nil:
		it.Reason = "The source is connected to Salesforce, but its first sync has not run yet."
		it.Hint = "Check again when the first sync ends; GET …/sources/{src}/salesforce shows its progress."
	case last.Status == sfInProgress || last.Status == sfRunning:
		it.Reason = "A sync of the source is running."
		it.Hint = "Check again when it ends; GET …/sources/{src}/salesforce shows its progress."
	case last.Status == sfSucceeded:
		it.Status = StatusPass
	case last.Error != "":
		it.Reason = fmt.Sprintf("The last sync did not succeed (%s): %s", last.Status, sentence(last.Error))
		it.Hint = "Fix the cause (the warehouse connection, the Salesforce user's permissions), then check again after the next sync."
	default:
		it.Reason = fmt.Sprintf("The last sync did not succeed (%s).", last.Status)
		it.Hint = "Check again after the next sync; GET …/sources/{src}/salesforce shows how it went."
	}
	return it, nil
}

// csvItem passes once an upload of the workspace completed (one listed, or one that
// completed step 2 of a csv workspace longer ago than uploads are listed); otherwise it says
// what became of the latest upload.
func csvItem(setup workspace.Setup, uploads []upload.Upload) Item {
	it := Item{Kind: KindCSV, ID: IDCSV, Name: "CSV upload", Status: StatusFail}
	_, stepDone := setup.Completed[workspace.StepAddConnections]
	if slices.ContainsFunc(uploads, func(u upload.Upload) bool { return u.Status == upload.StatusCompleted }) ||
		stepDone && setup.DataSource == workspace.DataSourceCSV {
		it.Status = StatusPass
		return it
	}
	if len(uploads) == 0 {
		it.Reason = "No CSV file has been uploaded yet."
		it.Hint = "Download the template (GET …/csv/template), fill it in and upload it (POST …/csv/uploads)."
		return it
	}
	last := uploads[0]
	switch last.Status {
	case upload.StatusFailed:
		why := last.Failure
		if why == "" {
			why = fmt.Sprintf("%d problems were found in the file", last.ErrorsTotal)
			if last.ErrorsTotal == 1 {
				why = "1 problem was found in the file"
			}
		}
		it.Reason = fmt.Sprintf("No upload has completed: the last one, %s, failed: %s", last.Filename, sentence(why))
		it.Hint = "Fix what the upload's errors name (row, column and character), then upload the file again; nothing of a failed upload was written."
	case upload.StatusPending:
		it.Reason = fmt.Sprintf("No upload has completed: the file of the last one, %s, has not arrived.", last.Filename)
		it.Hint = "Send the file to the upload's presigned URL before it expires, then check again when it has completed."
	case upload.StatusValidating, upload.StatusIngesting:
		it.Reason = fmt.Sprintf("No upload has completed yet: %s is still %s.", last.Filename, last.Status)
		it.Hint = "Check again when it has completed; GET …/csv/uploads/{id} shows its progress."
	default: // expired, cancelled
		it.Reason = fmt.Sprintf("No upload has completed: the last one, %s, was %s before its file was read.", last.Filename, last.Status)
		it.Hint = "Upload the file again (POST …/csv/uploads), then check again when it has completed."
	}
	return it
}

// mapping judges a mapping by its last finished sync. A sync running now does not change
// that judgement (the last one stands until it ends); only a mapping that has never
// finished a sync fails for one running, since there is nothing to judge yet.
func (c *Checker) mapping(ctx context.Context, p workspace.Principal, wsID string, m warehouse.Mapping, sources map[string]workspace.Source) (Item, error) {
	it := Item{Kind: KindMapping, ID: m.ID, Name: m.ID}
	model, err := c.warehouse.GetModel(ctx, p, wsID, m.SourceID, m.ModelID)
	switch {
	case err == nil:
		it.Name = model.Name
	case !errcode.Is(err, "not_found"):
		return Item{}, err
	}
	switch src, ok := sources[m.SourceID]; {
	case !ok:
		it.Status = StatusSkipped
		it.Reason = "Its warehouse source was deleted, so the mapping was not checked."
		return it, nil
	case !src.Enabled:
		it.Status = StatusSkipped
		it.Reason = "Its warehouse source is disabled, so the mapping was not checked."
		it.Hint = "Enable the source if the mapping should sync."
		return it, nil
	}
	if !m.Enabled {
		it.Status = StatusSkipped
		it.Reason = "The mapping is paused, so it was not checked."
		it.Hint = "Resume it (PATCH …/mappings/{mapping} {\"enabled\":true}) if it should sync."
		return it, nil
	}
	last := m.LastSync
	switch {
	case last == nil && m.Running != "":
		it.Status = StatusFail
		it.Reason = "The mapping's first sync is running."
		it.Hint = "Check again when it ends; GET …/mappings/{mapping}/syncs shows its progress."
	case last == nil:
		it.Status = StatusFail
		it.Reason = "The mapping has never synced."
		it.Hint = "Start a sync (POST …/mappings/{mapping}/syncs) or wait for its schedule, then check again when it ends."
	case last.Status == warehouse.StatusSucceeded:
		it.Status = StatusPass
	case last.Status == warehouse.StatusPartial:
		it.Status = StatusFail
		it.Reason = fmt.Sprintf("The last sync was partial: %s failed (%d loaded).", records(last.Loaded.Failed), last.Loaded.Succeeded)
		it.Hint = "The sync's errors say why each record failed: fix the data or the mapping; failed records are tried again on the next syncs (up to 5 times)."
	case last.Status == warehouse.StatusFailed && last.Failure != "":
		it.Status = StatusFail
		it.Reason = "The last sync failed: " + sentence(last.Failure)
		it.Hint = "Fix the cause (test the warehouse connection, check the model's SQL), then sync again."
	case last.Status == warehouse.StatusFailed:
		it.Status = StatusFail
		it.Reason = fmt.Sprintf("The last sync failed: all of its %s failed.", records(last.Loaded.Failed))
		it.Hint = "The sync's errors say why each record failed: fix the data or the mapping, then sync again."
	default: // a last sync still in progress: not expected (it is recorded when it ends)
		it.Status = StatusFail
		it.Reason = "A sync is running."
		it.Hint = "Check again when it ends; GET …/mappings/{mapping}/syncs shows its progress."
	}
	return it, nil
}

func records(n int) string {
	if n == 1 {
		return "1 record"
	}
	return fmt.Sprintf("%d records", n)
}

func flexItem(f workspace.FlexConfig) Item {
	it := Item{Kind: KindFlex, ID: IDFlex, Name: "Twilio Flex", Status: StatusPass}
	if !f.Configured {
		it.Status = StatusFail
		it.Reason = "Flex is not configured: no Twilio auth token is set, so Flex webhooks cannot be verified and no interaction reaches the profiles."
		it.Hint = "Set the Twilio account's auth token (PUT …/flex {\"auth_token\"}), then give Twilio the webhook URL it answers."
	}
	return it
}

// sentence makes a message from another service a sentence: capitalised, with a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	if c := s[0]; 'a' <= c && c <= 'z' {
		s = string(c-'a'+'A') + s[1:]
	}
	switch s[len(s)-1] {
	case '.', '!', '?':
		return s
	}
	return s + "."
}
