package setupcheck_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/salesforce"
	"github.com/unifiedprofiles/up/shared/setupcheck"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/upload"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Small fakes of the services the check orchestrates: each answers from what the case set,
// and refuses a call the check must not make (a disabled source's connection test, a
// warehouse test without a driver).

const wsID = "ws_check"

var owner = workspace.Principal{Kind: workspace.WorkspaceOwner, WorkspaceID: wsID}

type fakeWorkspaces struct {
	view    workspace.View
	flex    workspace.FlexConfig
	getErr  error
	flexErr error
	markErr error
	marked  int
}

func (f *fakeWorkspaces) GetWorkspace(_ context.Context, p workspace.Principal, ws string) (workspace.View, error) {
	if err := p.Owns(ws); err != nil {
		return workspace.View{}, err
	}
	return f.view, f.getErr
}

func (f *fakeWorkspaces) FlexSettings(context.Context, workspace.Principal, string) (workspace.FlexConfig, error) {
	return f.flex, f.flexErr
}

func (f *fakeWorkspaces) MarkChecked(context.Context, workspace.Principal, string) error {
	f.marked++
	return f.markErr
}

type fakeTracking struct {
	conns map[string]tracking.Connection
	err   error
}

func (f *fakeTracking) TestConnection(_ context.Context, _ workspace.Principal, _, src string) (tracking.Connection, error) {
	if f.err != nil {
		return tracking.Connection{}, f.err
	}
	c, ok := f.conns[src]
	if !ok {
		return tracking.Connection{}, fmt.Errorf("unexpected connection test of %s", src)
	}
	return c, nil
}

type fakeUploads struct {
	list []upload.Upload
	err  error
}

func (f *fakeUploads) List(context.Context, workspace.Principal, string) ([]upload.Upload, error) {
	return f.list, f.err
}

type fakeWarehouse struct {
	drivers  map[string]bool
	types    map[string]string // source → type
	saved    map[string]bool   // sources with a saved connection
	connErr  error
	tests    map[string]warehouse.Test
	testErr  map[string]error
	mappings []warehouse.Mapping
	mapErr   error
	models   map[string]warehouse.Model
	modelErr error
}

func (f *fakeWarehouse) HasDriver(typ string) bool { return f.drivers[typ] }

func notConfigured(src string) error {
	return errcode.New(errcode.NotFound, "not_configured", "source %s has no warehouse connection yet", src)
}

func (f *fakeWarehouse) GetConnection(_ context.Context, _ workspace.Principal, _, src string) (warehouse.Connection, error) {
	if f.connErr != nil {
		return warehouse.Connection{}, f.connErr
	}
	if !f.saved[src] {
		return warehouse.Connection{}, notConfigured(src)
	}
	return warehouse.Connection{Type: f.types[src]}, nil
}

func (f *fakeWarehouse) TestConnection(_ context.Context, _ workspace.Principal, _, src string) (warehouse.Test, error) {
	if !f.drivers[f.types[src]] {
		return warehouse.Test{}, fmt.Errorf("connection test of %s without a driver", src)
	}
	if err := f.testErr[src]; err != nil {
		return warehouse.Test{}, err
	}
	if !f.saved[src] {
		return warehouse.Test{}, notConfigured(src)
	}
	return f.tests[src], nil
}

func (f *fakeWarehouse) WorkspaceMappings(context.Context, string) ([]warehouse.Mapping, error) {
	return f.mappings, f.mapErr
}

func (f *fakeWarehouse) GetModel(_ context.Context, _ workspace.Principal, _, _, id string) (warehouse.Model, error) {
	if f.modelErr != nil {
		return warehouse.Model{}, f.modelErr
	}
	m, ok := f.models[id]
	if !ok {
		return warehouse.Model{}, errcode.NotFoundf("model %s was not found", id)
	}
	return m, nil
}

// fakeSalesforce answers each source's connection (a source not listed never connected).
type fakeSalesforce struct {
	conns map[string]salesforce.Connection
}

func (f *fakeSalesforce) Get(_ context.Context, _ workspace.Principal, ws, src string) (salesforce.Connection, error) {
	if c, ok := f.conns[src]; ok {
		return c, nil
	}
	return salesforce.Connection{WorkspaceID: ws, SourceID: src}, nil
}

// fixture is a workspace that passes every check: the auto-created Flex source has sent an
// event, the Personas source (skipped), one http source of the user's that has sent one,
// Flex configured. A case changes it to put one item to the test.
type fixture struct {
	ws   *fakeWorkspaces
	tr   *fakeTracking
	up   *fakeUploads
	wh   *fakeWarehouse
	sf   *fakeSalesforce
	noWh bool // a deployment without Reverse ETL
	noSf bool // a deployment without Salesforce connections
}

func newFixture() *fixture {
	f := &fixture{
		ws: &fakeWorkspaces{view: workspace.View{Workspace: workspace.Workspace{ID: wsID, Name: "Acme"}}, flex: workspace.FlexConfig{Configured: true}},
		tr: &fakeTracking{conns: map[string]tracking.Connection{}},
		up: &fakeUploads{},
		sf: &fakeSalesforce{conns: map[string]salesforce.Connection{}},
		wh: &fakeWarehouse{drivers: map[string]bool{"postgres": true, "redshift": true}, types: map[string]string{}, saved: map[string]bool{},
			tests: map[string]warehouse.Test{}, testErr: map[string]error{}, models: map[string]warehouse.Model{}},
	}
	flex := f.source("src_flex", workspace.FlexSourceType, true)
	flex.Name, flex.AutoCreated = workspace.FlexSourceName, true
	f.ws.view.Sources[0] = flex
	f.tr.conns["src_flex"] = tracking.Connection{OK: true}
	personas := f.source("src_personas", workspace.PersonasSourceType, true)
	personas.AutoCreated = true
	f.ws.view.Sources[1] = personas
	f.source("src_base", "http", true)
	f.tr.conns["src_base"] = tracking.Connection{OK: true}
	return f
}

// source adds a source of the user's and returns it.
func (f *fixture) source(id, typ string, enabled bool) workspace.Source {
	src := workspace.Source{ID: id, WorkspaceID: wsID, Name: "Source " + id, Type: typ, Enabled: enabled}
	f.ws.view.Sources = append(f.ws.view.Sources, src)
	f.wh.types[id] = typ
	return src
}

// onlyAutoCreated removes the user's sources (the auto-created two stay).
func (f *fixture) onlyAutoCreated() { f.ws.view.Sources = f.ws.view.Sources[:2] }

func (f *fixture) choose(kind string) { f.ws.view.Workspace.Setup.DataSource = kind }

func (f *fixture) upload(status, filename string, mod func(*upload.Upload)) {
	u := upload.Upload{ID: fmt.Sprintf("upl_%d", len(f.up.list)), WorkspaceID: wsID, Filename: filename, Status: status}
	if mod != nil {
		mod(&u)
	}
	f.up.list = append(f.up.list, u) // newest first: callers add the newest first
}

// mapping adds a mapping of a postgres source (added when missing) and its model.
func (f *fixture) mapping(id string, mod func(*warehouse.Mapping)) {
	if _, ok := f.wh.types["src_pg"]; !ok {
		f.source("src_pg", "postgres", true)
		f.wh.saved["src_pg"] = true
		f.wh.tests["src_pg"] = warehouse.Test{OK: true}
	}
	m := warehouse.Mapping{ID: id, SourceID: "src_pg", ModelID: "mdl_" + id, Enabled: true}
	f.wh.models[m.ModelID] = warehouse.Model{ID: m.ModelID, SourceID: "src_pg", Name: "Customers " + id}
	if mod != nil {
		mod(&m)
	}
	f.wh.mappings = append(f.wh.mappings, m)
}

func (f *fixture) checker() *setupcheck.Checker {
	c := setupcheck.New(f.ws, f.tr, f.up, f.wh)
	if f.noWh {
		c = setupcheck.New(f.ws, f.tr, f.up, nil)
	}
	if !f.noSf {
		c.WithSalesforce(f.sf)
	}
	return c
}

// salesforce adds an enabled Salesforce source with conn (Connected unless reauthorize or
// never is set) and last as its last sync.
func (f *fixture) salesforce(conn salesforce.Connection, last *salesforce.LastSync) {
	f.source("src_sfdc", "salesforce", true)
	conn.WorkspaceID, conn.SourceID, conn.LastSync = wsID, "src_sfdc", last
	f.sf.conns["src_sfdc"] = conn
}

func sync(status string, mod func(*warehouse.Sync)) *warehouse.Sync {
	sy := &warehouse.Sync{ID: "sync_1", Status: status}
	if mod != nil {
		mod(sy)
	}
	return sy
}

// want is what a case expects of one item (found by ID): kind, name and status exactly,
// reason and hint as substrings. An empty reason or hint expects none at all.
type want struct {
	id, kind, name, status, reason, hint string
}

// Every item kind in every outcome it has: pass, fail with each of its reasons, skipped.
// ok is the whole check's answer (a fail anywhere is not ok; skipped items do not count).
func TestCheckItems(t *testing.T) {
	t.Parallel()
	pgFailed := warehouse.Test{Reason: warehouse.ReasonAuth, Message: "password authentication failed for user \"unify\"", Hint: "Check the user name and password."}
	tests := []struct {
		name  string
		setup func(f *fixture)
		want  want
		ok    bool
	}{
		// tracking_source
		{"website that sent a page", func(f *fixture) {
			f.source("src_js", "javascript", true)
			f.tr.conns["src_js"] = tracking.Connection{OK: true}
		}, want{"src_js", setupcheck.KindTrackingSource, "Source src_js", "pass", "", ""}, true},
		{"website without a page", func(f *fixture) {
			f.source("src_js", "javascript", true)
			f.tr.conns["src_js"] = tracking.Connection{Reason: "no page call has arrived yet: open a page of the website with the snippet installed"}
		}, want{"src_js", setupcheck.KindTrackingSource, "Source src_js", "fail", "No page call has arrived yet: open a page of the website with the snippet installed.", "Install the source's snippet"}, false},
		{"iOS app without a screen", func(f *fixture) {
			f.source("src_ios", "swift", true)
			f.tr.conns["src_ios"] = tracking.Connection{Reason: "no screen call has arrived yet"}
		}, want{"src_ios", setupcheck.KindTrackingSource, "Source src_ios", "fail", "No screen call has arrived yet.", "Add the SDK to the app"}, false},
		{"Android app without a screen", func(f *fixture) {
			f.source("src_android", "kotlin", true)
			f.tr.conns["src_android"] = tracking.Connection{Reason: "no screen call has arrived yet"}
		}, want{"src_android", setupcheck.KindTrackingSource, "Source src_android", "fail", "No screen call", "open a screen"}, false},
		{"http source without a message", func(f *fixture) {
			f.source("src_http", "http", true)
			f.tr.conns["src_http"] = tracking.Connection{Reason: "no message has arrived yet from this source's write key"}
		}, want{"src_http", setupcheck.KindTrackingSource, "Source src_http", "fail", "No message has arrived yet", "curl call"}, false},
		{"Twilio Event Streams without a message", func(f *fixture) {
			f.source("src_tes", "twilio_event_streams", true)
			f.tr.conns["src_tes"] = tracking.Connection{Reason: "no message has arrived yet from this source's write key"}
		}, want{"src_tes", setupcheck.KindTrackingSource, "Source src_tes", "fail", "No message has arrived yet", "tracking API with the source's write key"}, false},
		{"java source of the user's without a message", func(f *fixture) {
			f.source("src_java", "java", true)
			f.tr.conns["src_java"] = tracking.Connection{Reason: "no message has arrived yet from this source's write key"}
		}, want{"src_java", setupcheck.KindTrackingSource, "Source src_java", "fail", "No message has arrived yet", "analytics-java"}, false},
		{"Flex source before any interaction", func(f *fixture) {
			f.tr.conns["src_flex"] = tracking.Connection{Reason: "no message has arrived yet from this source's write key"}
		}, want{"src_flex", setupcheck.KindTrackingSource, workspace.FlexSourceName, "fail", "No message has arrived yet", "webhook URL"}, false},
		{"disabled website: not tested", func(f *fixture) {
			f.source("src_js", "javascript", false) // the fake fails the check if it is tested
		}, want{"src_js", setupcheck.KindTrackingSource, "Source src_js", "skipped", "disabled", "Enable it"}, true},

		// warehouse_source
		{"postgres whose test passes", func(f *fixture) {
			f.source("src_pg", "postgres", true)
			f.wh.saved["src_pg"], f.wh.tests["src_pg"] = true, warehouse.Test{OK: true}
		}, want{"src_pg", setupcheck.KindWarehouseSource, "Source src_pg", "pass", "", ""}, true},
		{"postgres whose test fails", func(f *fixture) {
			f.source("src_pg", "postgres", true)
			f.wh.saved["src_pg"], f.wh.tests["src_pg"] = true, pgFailed
		}, want{"src_pg", setupcheck.KindWarehouseSource, "Source src_pg", "fail", "The connection test failed (auth): Password authentication failed for user \"unify\".", "Check the user name and password."}, false},
		{"redshift whose test fails without a hint", func(f *fixture) {
			f.source("src_rs", "redshift", true)
			f.wh.saved["src_rs"], f.wh.tests["src_rs"] = true, warehouse.Test{Reason: warehouse.ReasonNetwork, Message: "no route to host"}
		}, want{"src_rs", setupcheck.KindWarehouseSource, "Source src_rs", "fail", "(network): No route to host.", "Check the connection settings"}, false},
		{"postgres without a saved connection", func(f *fixture) {
			f.source("src_pg", "postgres", true)
		}, want{"src_pg", setupcheck.KindWarehouseSource, "Source src_pg", "fail", "No warehouse connection has been saved", "PUT …/sources/{src}/warehouse"}, false},
		{"bigquery saved, no driver here", func(f *fixture) {
			f.source("src_bq", "bigquery", true)
			f.wh.saved["src_bq"] = true
		}, want{"src_bq", setupcheck.KindWarehouseSource, "Source src_bq", "skipped", "cannot connect to bigquery warehouses yet", ""}, true},
		{"snowflake not saved, no driver here", func(f *fixture) {
			f.source("src_sf", "snowflake", true)
		}, want{"src_sf", setupcheck.KindWarehouseSource, "Source src_sf", "fail", "No warehouse connection has been saved", "Save the warehouse's credentials"}, false},
		{"deployment without Reverse ETL", func(f *fixture) {
			f.source("src_pg", "postgres", true)
			f.noWh = true
		}, want{"src_pg", setupcheck.KindWarehouseSource, "Source src_pg", "skipped", "does not serve warehouse connections", ""}, true},
		{"deployment without a secrets key", func(f *fixture) {
			f.source("src_pg", "postgres", true)
			f.wh.testErr["src_pg"] = errcode.New(errcode.Internal, "secrets_not_configured", "no key")
		}, want{"src_pg", setupcheck.KindWarehouseSource, "Source src_pg", "skipped", "no key to open warehouse credentials", ""}, true},
		{"disabled warehouse: not tested", func(f *fixture) {
			f.source("src_pg", "postgres", false)
			f.wh.testErr["src_pg"] = errors.New("tested a disabled source")
		}, want{"src_pg", setupcheck.KindWarehouseSource, "Source src_pg", "skipped", "disabled", "Enable it"}, true},

		// salesforce_source
		{"salesforce on a deployment without it", func(f *fixture) { f.noSf = true; f.source("src_sfdc", "salesforce", true) },
			want{"src_sfdc", setupcheck.KindSalesforceSource, "Source src_sfdc", "skipped", "does not serve Salesforce connections", ""}, true},
		{"salesforce connected, last sync succeeded", func(f *fixture) {
			f.salesforce(salesforce.Connection{Connected: true, Username: "a@acme.com"}, &salesforce.LastSync{Status: "succeeded"})
		}, want{"src_sfdc", setupcheck.KindSalesforceSource, "Source src_sfdc", "pass", "", ""}, true},
		{"salesforce never connected", func(f *fixture) { f.source("src_sfdc", "salesforce", true) },
			want{"src_sfdc", setupcheck.KindSalesforceSource, "Source src_sfdc", "fail", "not connected to Salesforce yet", "Connect Salesforce"}, false},
		{"salesforce reauthorize", func(f *fixture) {
			f.salesforce(salesforce.Connection{Connected: true, Reauthorize: true, ReauthorizeReason: "expired access/refresh token"}, &salesforce.LastSync{Status: "succeeded"})
		}, want{"src_sfdc", setupcheck.KindSalesforceSource, "Source src_sfdc", "fail", "no longer accepts this connection's authorization, so syncs stopped: Expired access/refresh token.", "connect the source again"}, false},
		{"salesforce connected, first sync pending", func(f *fixture) { f.salesforce(salesforce.Connection{Connected: true}, nil) },
			want{"src_sfdc", setupcheck.KindSalesforceSource, "Source src_sfdc", "fail", "first sync has not run yet", "Check again when the first sync ends"}, false},
		{"salesforce connected, sync running", func(f *fixture) {
			f.salesforce(salesforce.Connection{Connected: true}, &salesforce.LastSync{Status: "in_progress"})
		}, want{"src_sfdc", setupcheck.KindSalesforceSource, "Source src_sfdc", "fail", "A sync of the source is running.", "Check again when it ends"}, false},
		{"salesforce last sync failed", func(f *fixture) {
			f.salesforce(salesforce.Connection{Connected: true}, &salesforce.LastSync{Status: "failed", Error: "warehouse: connection refused"})
		}, want{"src_sfdc", setupcheck.KindSalesforceSource, "Source src_sfdc", "fail", "The last sync did not succeed (failed): Warehouse: connection refused.", "Fix the cause"}, false},
		{"salesforce last sync partial", func(f *fixture) {
			f.salesforce(salesforce.Connection{Connected: true}, &salesforce.LastSync{Status: "partial"})
		}, want{"src_sfdc", setupcheck.KindSalesforceSource, "Source src_sfdc", "fail", "The last sync did not succeed (partial).", "after the next sync"}, false},
		{"disabled salesforce", func(f *fixture) { f.source("src_sfdc", "salesforce", false) },
			want{"src_sfdc", setupcheck.KindSalesforceSource, "Source src_sfdc", "skipped", "disabled", "Enable it"}, true},

		// personas_source
		{"personas", func(*fixture) {},
			want{"src_personas", setupcheck.KindPersonasSource, "Source src_personas", "skipped", "fed by Unified Profiles itself", ""}, true},

		// csv
		{"csv chosen, nothing uploaded", func(f *fixture) { f.choose(workspace.DataSourceCSV) },
			want{"csv", setupcheck.KindCSV, "CSV upload", "fail", "No CSV file has been uploaded yet.", "Download the template"}, false},
		{"an older upload completed, the last failed", func(f *fixture) {
			f.choose(workspace.DataSourceCSV)
			f.upload(upload.StatusFailed, "new.csv", func(u *upload.Upload) { u.ErrorsTotal = 2 })
			f.upload(upload.StatusCompleted, "old.csv", nil)
		}, want{"csv", setupcheck.KindCSV, "CSV upload", "pass", "", ""}, true},
		{"completed longer ago than uploads are listed", func(f *fixture) {
			f.choose(workspace.DataSourceCSV)
			f.ws.view.Workspace.Setup.Completed = map[string]time.Time{workspace.StepAddConnections: time.Unix(1, 0)}
		}, want{"csv", setupcheck.KindCSV, "CSV upload", "pass", "", ""}, true},
		{"last upload failed, saying why", func(f *fixture) {
			f.choose(workspace.DataSourceCSV)
			f.upload(upload.StatusFailed, "people.csv", func(u *upload.Upload) { u.Failure = "the file is not a CSV file" })
		}, want{"csv", setupcheck.KindCSV, "CSV upload", "fail", "the last one, people.csv, failed: The file is not a CSV file.", "upload the file again"}, false},
		{"last upload failed with errors", func(f *fixture) {
			f.choose(workspace.DataSourceCSV)
			f.upload(upload.StatusFailed, "people.csv", func(u *upload.Upload) { u.ErrorsTotal = 3 })
		}, want{"csv", setupcheck.KindCSV, "CSV upload", "fail", "people.csv, failed: 3 problems were found in the file.", "row, column and character"}, false},
		{"last upload failed with one error", func(f *fixture) {
			f.choose(workspace.DataSourceCSV)
			f.upload(upload.StatusFailed, "people.csv", func(u *upload.Upload) { u.ErrorsTotal = 1 })
		}, want{"csv", setupcheck.KindCSV, "CSV upload", "fail", "failed: 1 problem was found in the file.", "upload the file again"}, false},
		{"upload pending", func(f *fixture) {
			f.choose(workspace.DataSourceCSV)
			f.upload(upload.StatusPending, "people.csv", nil)
		}, want{"csv", setupcheck.KindCSV, "CSV upload", "fail", "the file of the last one, people.csv, has not arrived", "presigned URL"}, false},
		{"upload validating", func(f *fixture) {
			f.choose(workspace.DataSourceCSV)
			f.upload(upload.StatusValidating, "people.csv", nil)
		}, want{"csv", setupcheck.KindCSV, "CSV upload", "fail", "people.csv is still validating", "Check again when it has completed"}, false},
		{"upload ingesting", func(f *fixture) {
			f.choose(workspace.DataSourceCSV)
			f.upload(upload.StatusIngesting, "people.csv", nil)
		}, want{"csv", setupcheck.KindCSV, "CSV upload", "fail", "people.csv is still ingesting", "Check again when it has completed"}, false},
		{"upload expired", func(f *fixture) {
			f.choose(workspace.DataSourceCSV)
			f.upload(upload.StatusExpired, "people.csv", nil)
		}, want{"csv", setupcheck.KindCSV, "CSV upload", "fail", "people.csv, was expired before its file was read", "Upload the file again"}, false},
		{"upload cancelled", func(f *fixture) {
			f.choose(workspace.DataSourceCSV)
			f.upload(upload.StatusCancelled, "people.csv", nil)
		}, want{"csv", setupcheck.KindCSV, "CSV upload", "fail", "people.csv, was cancelled", "Upload the file again"}, false},
		{"a failed upload in a website workspace is checked too", func(f *fixture) {
			f.choose(workspace.DataSourceWebsite)
			f.upload(upload.StatusFailed, "people.csv", func(u *upload.Upload) { u.ErrorsTotal = 2 })
		}, want{"csv", setupcheck.KindCSV, "CSV upload", "fail", "2 problems", "upload the file again"}, false},

		// mapping
		{"mapping whose last sync succeeded", func(f *fixture) {
			f.mapping("map_ok", func(m *warehouse.Mapping) { m.LastSync = sync(warehouse.StatusSucceeded, nil) })
		}, want{"map_ok", setupcheck.KindMapping, "Customers map_ok", "pass", "", ""}, true},
		{"mapping whose last sync failed", func(f *fixture) {
			f.mapping("map_failed", func(m *warehouse.Mapping) {
				m.LastSync = sync(warehouse.StatusFailed, func(s *warehouse.Sync) { s.Failure = "duplicate id 7 in the model's records" })
			})
		}, want{"map_failed", setupcheck.KindMapping, "Customers map_failed", "fail", "The last sync failed: Duplicate id 7 in the model's records.", "sync again"}, false},
		{"mapping whose every record failed", func(f *fixture) {
			f.mapping("map_none", func(m *warehouse.Mapping) {
				m.LastSync = sync(warehouse.StatusFailed, func(s *warehouse.Sync) { s.Loaded.Failed = 4 })
			})
		}, want{"map_none", setupcheck.KindMapping, "Customers map_none", "fail", "The last sync failed: all of its 4 records failed.", "sync's errors"}, false},
		{"mapping whose last sync was partial", func(f *fixture) {
			f.mapping("map_partial", func(m *warehouse.Mapping) {
				m.LastSync = sync(warehouse.StatusPartial, func(s *warehouse.Sync) { s.Loaded = warehouse.Loaded{Succeeded: 97, Failed: 3} })
			})
		}, want{"map_partial", setupcheck.KindMapping, "Customers map_partial", "fail", "The last sync was partial: 3 records failed (97 loaded).", "up to 5 times"}, false},
		{"mapping with one record failed", func(f *fixture) {
			f.mapping("map_one", func(m *warehouse.Mapping) {
				m.LastSync = sync(warehouse.StatusPartial, func(s *warehouse.Sync) { s.Loaded = warehouse.Loaded{Succeeded: 9, Failed: 1} })
			})
		}, want{"map_one", setupcheck.KindMapping, "Customers map_one", "fail", "1 record failed (9 loaded)", "sync's errors"}, false},
		{"mapping never synced", func(f *fixture) { f.mapping("map_new", nil) },
			want{"map_new", setupcheck.KindMapping, "Customers map_new", "fail", "The mapping has never synced.", "Start a sync"}, false},
		{"mapping's first sync running", func(f *fixture) {
			f.mapping("map_first", func(m *warehouse.Mapping) { m.Running = "sync_1" })
		}, want{"map_first", setupcheck.KindMapping, "Customers map_first", "fail", "first sync is running", "Check again when it ends"}, false},
		{"a sync running after a success: the success stands", func(f *fixture) {
			f.mapping("map_again", func(m *warehouse.Mapping) { m.Running, m.LastSync = "sync_2", sync(warehouse.StatusSucceeded, nil) })
		}, want{"map_again", setupcheck.KindMapping, "Customers map_again", "pass", "", ""}, true},
		{"a sync running after a failure: the failure stands", func(f *fixture) {
			f.mapping("map_retry", func(m *warehouse.Mapping) {
				m.Running = "sync_2"
				m.LastSync = sync(warehouse.StatusFailed, func(s *warehouse.Sync) { s.Failure = "the warehouse is down" })
			})
		}, want{"map_retry", setupcheck.KindMapping, "Customers map_retry", "fail", "The last sync failed: The warehouse is down.", "sync again"}, false},
		{"mapping whose last sync is recorded in progress", func(f *fixture) {
			f.mapping("map_odd", func(m *warehouse.Mapping) { m.LastSync = sync(warehouse.StatusInProgress, nil) })
		}, want{"map_odd", setupcheck.KindMapping, "Customers map_odd", "fail", "A sync is running.", "Check again when it ends"}, false},
		{"paused mapping", func(f *fixture) {
			f.mapping("map_paused", func(m *warehouse.Mapping) { m.Enabled = false })
		}, want{"map_paused", setupcheck.KindMapping, "Customers map_paused", "skipped", "paused", "Resume it"}, true},
		{"mapping of a disabled source", func(f *fixture) {
			f.source("src_pg", "postgres", false)
			f.mapping("map_off", nil)
		}, want{"map_off", setupcheck.KindMapping, "Customers map_off", "skipped", "source is disabled", "Enable the source"}, true},
		{"mapping of a deleted source", func(f *fixture) {
			f.mapping("map_orphan", nil)
			f.ws.view.Sources = f.ws.view.Sources[:3]
		}, want{"map_orphan", setupcheck.KindMapping, "Customers map_orphan", "skipped", "source was deleted", ""}, true},
		{"mapping whose model is gone: named by its id", func(f *fixture) {
			f.mapping("map_nomodel", func(m *warehouse.Mapping) { m.LastSync = sync(warehouse.StatusSucceeded, nil) })
			f.wh.models = nil
		}, want{"map_nomodel", setupcheck.KindMapping, "map_nomodel", "pass", "", ""}, true},

		// flex
		{"flex configured", func(*fixture) {}, want{"flex", setupcheck.KindFlex, "Twilio Flex", "pass", "", ""}, true},
		{"flex not configured", func(f *fixture) { f.ws.flex = workspace.FlexConfig{} },
			want{"flex", setupcheck.KindFlex, "Twilio Flex", "fail", "no Twilio auth token is set", "PUT …/flex"}, false},

		// data_source
		{"no data source, nothing chosen", func(f *fixture) { f.onlyAutoCreated() },
			want{"data_source", setupcheck.KindDataSource, "Data source", "fail", "No data source has been added yet", "Choose a data source in step 1"}, false},
		{"no data source, website chosen", func(f *fixture) { f.onlyAutoCreated(); f.choose(workspace.DataSourceWebsite) },
			want{"data_source", setupcheck.KindDataSource, "Data source", "fail", "step 2 (add connections) is not done", "javascript source"}, false},
		{"no data source, mobile chosen", func(f *fixture) { f.onlyAutoCreated(); f.choose(workspace.DataSourceMobile) },
			want{"data_source", setupcheck.KindDataSource, "Data source", "fail", "No data source", "swift (iOS) or kotlin (Android)"}, false},
		{"no data source, warehouse chosen", func(f *fixture) { f.onlyAutoCreated(); f.choose(workspace.DataSourceWarehouse) },
			want{"data_source", setupcheck.KindDataSource, "Data source", "fail", "No data source", "Add a warehouse source"}, false},
		{"no data source, salesforce and warehouse chosen", func(f *fixture) {
			f.onlyAutoCreated()
			f.choose(workspace.DataSourceSalesforceWarehouse)
		}, want{"data_source", setupcheck.KindDataSource, "Data source", "fail", "No data source", "Salesforce records land in"}, false},
		{"only a salesforce source, on a deployment without it: no data can arrive", func(f *fixture) {
			f.noSf = true
			f.onlyAutoCreated()
			f.choose(workspace.DataSourceSalesforceWarehouse)
			f.source("src_sfdc", "salesforce", true)
		}, want{"data_source", setupcheck.KindDataSource, "Data source", "fail", "No data source has been added yet", "Add the warehouse source"}, false},
		{"only a connected salesforce source: a data source", func(f *fixture) {
			f.onlyAutoCreated()
			f.choose(workspace.DataSourceSalesforceWarehouse)
			f.salesforce(salesforce.Connection{Connected: true}, &salesforce.LastSync{Status: "succeeded"})
		}, want{"src_sfdc", setupcheck.KindSalesforceSource, "Source src_sfdc", "pass", "", ""}, true},
		{"every data source disabled", func(f *fixture) {
			f.onlyAutoCreated()
			f.source("src_js", "javascript", false)
		}, want{"data_source", setupcheck.KindDataSource, "Data source", "fail", "is disabled", "Enable a source"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture()
			tc.setup(f)
			res, err := f.checker().Check(context.Background(), owner, wsID)
			if err != nil {
				t.Fatal(err)
			}
			var got *setupcheck.Item
			for i, it := range res.Items {
				if it.ID == tc.want.id {
					if got != nil {
						t.Fatalf("two items %s: %+v", it.ID, res.Items)
					}
					got = &res.Items[i]
				}
			}
			if got == nil {
				t.Fatalf("no item %s among %+v", tc.want.id, res.Items)
			}
			w := tc.want
			if got.Kind != w.kind || got.Name != w.name || got.Status != w.status {
				t.Fatalf("item %s: kind %s name %q status %s, want %s %q %s (%+v)", w.id, got.Kind, got.Name, got.Status, w.kind, w.name, w.status, *got)
			}
			for _, s := range []struct{ what, got, want string }{{"reason", got.Reason, w.reason}, {"hint", got.Hint, w.hint}} {
				if s.want == "" && s.got != "" || !strings.Contains(s.got, s.want) {
					t.Errorf("%s %q, want %q", s.what, s.got, s.want)
				}
			}
			if got.Status != setupcheck.StatusPass && got.Reason == "" {
				t.Errorf("a %s item without a reason", got.Status)
			}
			if got.Status == setupcheck.StatusFail && got.Hint == "" {
				t.Errorf("a failed item without a hint")
			}
			if res.OK != tc.ok {
				t.Errorf("ok %v, want %v: %+v", res.OK, tc.ok, res.Items)
			}
			// Step 4 completes exactly when the check is ok.
			if want := map[bool]int{true: 1, false: 0}[tc.ok]; f.ws.marked != want {
				t.Errorf("MarkChecked called %d times, want %d", f.ws.marked, want)
			}
		})
	}
}

// Which items appear, and in what order: the data_source item first (only without a data
// source), then the sources as listed, the CSV item (only when csv is the step-1 choice or an
// upload was made), the mappings, Flex.
func TestCheckItemList(t *testing.T) {
	t.Parallel()
	ids := func(res setupcheck.Result) string {
		var out []string
		for _, it := range res.Items {
			out = append(out, it.ID)
		}
		return strings.Join(out, " ")
	}
	tests := []struct {
		name  string
		setup func(f *fixture)
		want  string
	}{
		{"the passing fixture", func(*fixture) {}, "src_flex src_personas src_base flex"},
		{"no data source", func(f *fixture) { f.onlyAutoCreated() }, "data_source src_flex src_personas flex"},
		{"csv chosen: the CSV item stands for the data", func(f *fixture) { f.onlyAutoCreated(); f.choose(workspace.DataSourceCSV) }, "src_flex src_personas csv flex"},
		{"website chosen, no upload: no CSV item", func(f *fixture) { f.choose(workspace.DataSourceWebsite) }, "src_flex src_personas src_base flex"},
		{"an upload without the csv choice", func(f *fixture) {
			f.onlyAutoCreated()
			f.upload(upload.StatusCompleted, "people.csv", nil)
		}, "src_flex src_personas csv flex"},
		{"mappings after the sources and uploads", func(f *fixture) {
			f.choose(workspace.DataSourceCSV)
			f.mapping("map_a", nil)
			f.mapping("map_b", nil)
		}, "src_flex src_personas src_base src_pg csv map_a map_b flex"},
		{"no Reverse ETL: no mappings", func(f *fixture) {
			f.mapping("map_a", nil)
			f.noWh = true
		}, "src_flex src_personas src_base src_pg flex"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture()
			tc.setup(f)
			res, err := f.checker().Check(context.Background(), owner, wsID)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(res); got != tc.want {
				t.Fatalf("items %q, want %q", got, tc.want)
			}
		})
	}
}

// A service failing (not an answer the check reports) fails the check, and completes nothing.
func TestCheckErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("store unavailable")
	tests := []struct {
		name  string
		setup func(f *fixture)
		p     workspace.Principal
		code  string // the errcode, or "" for boom
	}{
		{"another workspace's token", func(*fixture) {}, workspace.Principal{Kind: workspace.WorkspaceOwner, WorkspaceID: "ws_other"}, "forbidden"},
		{"the operator", func(*fixture) {}, workspace.Principal{Kind: workspace.Operator}, "forbidden"},
		{"unknown workspace", func(f *fixture) { f.ws.getErr = errcode.NotFoundf("workspace %s was not found", wsID) }, owner, "not_found"},
		{"connection test", func(f *fixture) { f.tr.err = boom }, owner, ""},
		{"uploads", func(f *fixture) { f.up.err = boom }, owner, ""},
		{"warehouse test", func(f *fixture) {
			f.source("src_pg", "postgres", true)
			f.wh.testErr["src_pg"] = boom
		}, owner, ""},
		{"warehouse connection without a driver", func(f *fixture) {
			f.source("src_bq", "bigquery", true)
			f.wh.connErr = boom
		}, owner, ""},
		{"mappings", func(f *fixture) { f.wh.mapErr = boom }, owner, ""},
		{"models", func(f *fixture) { f.mapping("map_a", nil); f.wh.modelErr = boom }, owner, ""},
		{"flex", func(f *fixture) { f.ws.flexErr = boom }, owner, ""},
		{"completing step 4", func(f *fixture) { f.ws.markErr = boom }, owner, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture()
			tc.setup(f)
			_, err := f.checker().Check(context.Background(), tc.p, wsID)
			if tc.code == "" {
				if !errors.Is(err, boom) {
					t.Fatalf("err %v, want %v", err, boom)
				}
				return
			}
			if !errcode.Is(err, tc.code) {
				t.Fatalf("err %v, want %s", err, tc.code)
			}
			if f.ws.marked != 0 {
				t.Fatal("step 4 marked on an error")
			}
		})
	}
}
