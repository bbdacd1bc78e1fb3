package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Warehouse connections and Reverse ETL (ARCHITECTURE.md section 5): a warehouse source's
// sealed credentials, its models, their mappings into spaces, and the mappings' syncs. The
// domain (shared/warehouse) checks ownership and the source's type on every call; these
// handlers decode, call it once, and write the contract's shapes.

// retlHandler is a Reverse ETL handler: an authed handler that also gets the service.
type retlHandler func(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error

// retl adapts h to the route table; without the service (a deployment assembled without
// Reverse ETL) every such route answers warehouse_not_configured.
func (a *admin) retl(h retlHandler) authed {
	return func(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
		if a.warehouse == nil {
			return errcode.New(errcode.Internal, "warehouse_not_configured", "this deployment does not serve warehouse connections and Reverse ETL")
		}
		return h(w, r, p, a.warehouse)
	}
}

// credentialsIn is every credential field of every warehouse type; which apply, and which
// are required, depends on the source's type (the domain checks).
type credentialsIn struct {
	// postgres, redshift (database and user also snowflake)
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Database string `json:"database"`
	User     string `json:"user"`
	Password string `json:"password"`
	SSLMode  string `json:"ssl_mode"`
	// bigquery
	Project         string `json:"project"`
	Dataset         string `json:"dataset"`
	Location        string `json:"location"`
	CredentialsJSON string `json:"credentials_json"`
	// snowflake
	Account    string `json:"account"`
	Warehouse  string `json:"warehouse"`
	Schema     string `json:"schema"`
	Role       string `json:"role"`
	PrivateKey string `json:"private_key"`
}

func (in credentialsIn) credentials() warehouse.Credentials {
	return warehouse.Credentials{Host: in.Host, Port: in.Port, Database: in.Database, User: in.User, Password: in.Password,
		SSLMode: in.SSLMode, Project: in.Project, Dataset: in.Dataset, Location: in.Location, CredentialsJSON: in.CredentialsJSON,
		Account: in.Account, Warehouse: in.Warehouse, Schema: in.Schema, Role: in.Role, PrivateKey: in.PrivateKey}
}

// connectionView is a connection as the API shows it: never a password, key or credentials
// file. Test is the latest connection test (the one PUT ran as it saved).
type connectionView struct {
	Configured bool      `json:"configured"`
	Type       string    `json:"type"`
	Host       string    `json:"host,omitempty"`
	Port       int       `json:"port,omitempty"`
	Database   string    `json:"database,omitempty"`
	User       string    `json:"user,omitempty"`
	SSLMode    string    `json:"ssl_mode,omitempty"`
	Project    string    `json:"project,omitempty"`
	Dataset    string    `json:"dataset,omitempty"`
	Location   string    `json:"location,omitempty"`
	Account    string    `json:"account,omitempty"`
	Warehouse  string    `json:"warehouse,omitempty"`
	Schema     string    `json:"schema,omitempty"`
	Role       string    `json:"role,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
	Test       *testView `json:"test,omitempty"`
}

func viewConnection(c warehouse.Connection) connectionView {
	v := connectionView{Configured: true, Type: c.Type, Host: c.Host, Port: c.Port, Database: c.Database, User: c.User,
		SSLMode: c.SSLMode, Project: c.Project, Dataset: c.Dataset, Location: c.Location, Account: c.Account,
		Warehouse: c.Warehouse, Schema: c.Schema, Role: c.Role, UpdatedAt: c.UpdatedAt}
	if c.LastTest != nil {
		t := viewTest(*c.LastTest)
		v.Test = &t
	}
	return v
}

// testView is a connection test's answer; reason, message and hint are empty when it passed
// (the same keys either way, so the console reads one shape).
type testView struct {
	OK       bool      `json:"ok"`
	Reason   string    `json:"reason"`
	Message  string    `json:"message"`
	Hint     string    `json:"hint"`
	TestedAt time.Time `json:"tested_at"`
}

func viewTest(t warehouse.Test) testView {
	return testView{OK: t.OK, Reason: t.Reason, Message: t.Message, Hint: t.Hint, TestedAt: t.TestedAt}
}

// putWarehouse stores a warehouse source's credentials, sealed, and tests them as it saves:
// a failed test still saves (the answer says why it failed and what to do).
func (a *admin) putWarehouse(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	var in credentialsIn
	if err := decode(w, r, &in); err != nil {
		return err
	}
	c, err := wh.SetConnection(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), in.credentials())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewConnection(c))
	return nil
}

func (a *admin) getWarehouse(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	c, err := wh.GetConnection(r.Context(), p, r.PathValue("ws"), r.PathValue("src"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewConnection(c))
	return nil
}

// testWarehouse tests the stored credentials again. It takes no body.
func (a *admin) testWarehouse(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	t, err := wh.TestConnection(r.Context(), p, r.PathValue("ws"), r.PathValue("src"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewTest(t))
	return nil
}

// previewView is a model's first records: columns in the model's order, each row an object
// keyed by column name.
type previewView struct {
	Columns []columnView     `json:"columns"`
	Rows    []map[string]any `json:"rows"`
}

type columnView struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func viewColumns(cols []warehouse.Column) []columnView {
	out := make([]columnView, len(cols))
	for i, c := range cols {
		out[i] = columnView{Name: c.Name, Type: c.Type}
	}
	return out
}

// jsonSafe keeps a preview answer encodable: JSON has no NaN or infinity (a float column can
// hold them), and the encoder would otherwise fail halfway through a 200.
func jsonSafe(v any) any {
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return v
}

func (a *admin) previewModel(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	var in struct {
		SQL string `json:"sql"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	pv, err := wh.PreviewModel(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), in.SQL)
	if err != nil {
		return err
	}
	v := previewView{Columns: viewColumns(pv.Columns), Rows: make([]map[string]any, len(pv.Rows))}
	for i, row := range pv.Rows {
		v.Rows[i] = make(map[string]any, len(row))
		for k, x := range row {
			v.Rows[i][k] = jsonSafe(x)
		}
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// modelIn is a model's fields; on PATCH an absent field is unchanged.
type modelIn struct {
	Name     *string `json:"name"`
	SQL      *string `json:"sql"`
	IDColumn *string `json:"id_column"`
}

func (in modelIn) model() warehouse.NewModel {
	return warehouse.NewModel{Name: in.Name, SQL: in.SQL, IDColumn: in.IDColumn}
}

type modelView struct {
	ID        string       `json:"id"`
	SourceID  string       `json:"source_id"`
	Name      string       `json:"name"`
	SQL       string       `json:"sql"`
	IDColumn  string       `json:"id_column"`
	Columns   []columnView `json:"columns"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
}

func viewModel(m warehouse.Model) modelView {
	return modelView{ID: m.ID, SourceID: m.SourceID, Name: m.Name, SQL: m.SQL, IDColumn: m.IDColumn,
		Columns: viewColumns(m.Columns), CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
}

func (a *admin) listModels(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	ms, err := wh.ListModels(r.Context(), p, r.PathValue("ws"), r.PathValue("src"))
	if err != nil {
		return err
	}
	out := make([]modelView, len(ms))
	for i, m := range ms {
		out[i] = viewModel(m)
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": out})
	return nil
}

// createModel saves a model after running it in the warehouse (the SQL must run and
// id_column must be one of its columns).
func (a *admin) createModel(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	var in modelIn
	if err := decode(w, r, &in); err != nil {
		return err
	}
	m, err := wh.CreateModel(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), in.model())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, viewModel(m))
	return nil
}

func (a *admin) getModel(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	m, err := wh.GetModel(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), r.PathValue("model"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewModel(m))
	return nil
}

func (a *admin) updateModel(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	var in modelIn
	if err := decode(w, r, &in); err != nil {
		return err
	}
	m, err := wh.UpdateModel(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), r.PathValue("model"), in.model())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewModel(m))
	return nil
}

func (a *admin) deleteModel(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	if err := wh.DeleteModel(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), r.PathValue("model")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// scheduleView is a schedule as it is posted: exactly one of its fields is set.
type scheduleView struct {
	Interval string `json:"interval,omitempty"`
	DailyAt  string `json:"daily_at,omitempty"`
	Manual   bool   `json:"manual,omitempty"`
}

// mappingIn is what POST takes; on PATCH an absent field is unchanged (nil maps included).
type mappingIn struct {
	SpaceID     *string           `json:"space_id"`
	Action      *string           `json:"action"`
	Records     *string           `json:"records"`
	Identifiers map[string]string `json:"identifiers"`
	Traits      map[string]string `json:"traits"`
	SyncNulls   *bool             `json:"sync_nulls"`
	Schedule    *scheduleView     `json:"schedule"`
}

// mappingPatch is what PATCH takes: a mapping's fields and enabled (false pauses it). A new
// mapping is always enabled: pausing is a change of an existing one.
type mappingPatch struct {
	mappingIn
	Enabled *bool `json:"enabled"`
}

func (in mappingIn) mapping() warehouse.NewMapping {
	m := warehouse.NewMapping{SpaceID: in.SpaceID, Action: in.Action, Records: in.Records, Identifiers: in.Identifiers,
		Traits: in.Traits, SyncNulls: in.SyncNulls}
	if in.Schedule != nil {
		m.Schedule = &warehouse.Schedule{Interval: in.Schedule.Interval, DailyAt: in.Schedule.DailyAt, Manual: in.Schedule.Manual}
	}
	return m
}

type mappingView struct {
	ID          string            `json:"id"`
	SourceID    string            `json:"source_id"`
	ModelID     string            `json:"model_id"`
	SpaceID     string            `json:"space_id"`
	Action      string            `json:"action"`
	Records     string            `json:"records"`
	Identifiers map[string]string `json:"identifiers"`
	Traits      map[string]string `json:"traits"`
	SyncNulls   bool              `json:"sync_nulls"`
	Schedule    scheduleView      `json:"schedule"`
	Enabled     bool              `json:"enabled"`
	NextSyncAt  *time.Time        `json:"next_sync_at"`
	// RunningSyncID is the sync in progress, if any.
	RunningSyncID string           `json:"running_sync_id,omitempty"`
	LastSync      *syncSummaryView `json:"last_sync"`
	CreatedAt     time.Time        `json:"created_at"`
	UpdatedAt     time.Time        `json:"updated_at"`
}

func viewMapping(m warehouse.Mapping) mappingView {
	v := mappingView{ID: m.ID, SourceID: m.SourceID, ModelID: m.ModelID, SpaceID: m.SpaceID, Action: m.Action, Records: m.Records,
		Identifiers: m.Identifiers, Traits: m.Traits, SyncNulls: m.SyncNulls,
		Schedule: scheduleView{Interval: m.Schedule.Interval, DailyAt: m.Schedule.DailyAt, Manual: m.Schedule.Manual},
		Enabled:  m.Enabled, NextSyncAt: m.NextSyncAt, RunningSyncID: m.Running, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
	if v.Identifiers == nil {
		v.Identifiers = map[string]string{}
	}
	if v.Traits == nil {
		v.Traits = map[string]string{}
	}
	if m.LastSync != nil {
		s := viewSyncSummary(*m.LastSync)
		v.LastSync = &s
	}
	return v
}

// syncSummaryView is a sync without its per-record errors: a mapping's last sync.
type syncSummaryView struct {
	ID         string              `json:"id"`
	MappingID  string              `json:"mapping_id"`
	Trigger    string              `json:"trigger"`
	Status     string              `json:"status"`
	Extracted  warehouse.Extracted `json:"extracted"`
	Loaded     warehouse.Loaded    `json:"loaded"`
	Failure    string              `json:"failure,omitempty"` // why the whole sync failed
	Pages      int                 `json:"pages"`
	PagesDone  int                 `json:"pages_done"`
	StartedAt  time.Time           `json:"started_at"`
	FinishedAt *time.Time          `json:"finished_at"`
}

func viewSyncSummary(s warehouse.Sync) syncSummaryView {
	return syncSummaryView{ID: s.ID, MappingID: s.MappingID, Trigger: s.Trigger, Status: s.Status, Extracted: s.Extracted,
		Loaded: s.Loaded, Failure: s.Failure, Pages: s.Pages, PagesDone: s.PagesDone, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt}
}

// syncView is one sync with its per-record errors; its checkpoint and lease stay inside.
type syncView struct {
	syncSummaryView
	Errors []warehouse.RecordError `json:"errors"`
}

func viewSync(s warehouse.Sync) syncView {
	v := syncView{syncSummaryView: viewSyncSummary(s), Errors: s.Errors}
	if v.Errors == nil {
		v.Errors = []warehouse.RecordError{}
	}
	return v
}

func (a *admin) listMappings(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	ms, err := wh.ListMappings(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), r.PathValue("model"))
	if err != nil {
		return err
	}
	out := make([]mappingView, len(ms))
	for i, m := range ms {
		out[i] = viewMapping(m)
	}
	writeJSON(w, http.StatusOK, map[string]any{"mappings": out})
	return nil
}

// createMapping maps a model's columns into a space; an interval schedule starts its first
// sync at once (see last_sync and running_sync_id in the answer).
func (a *admin) createMapping(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	var in mappingIn
	if err := decode(w, r, &in); err != nil {
		return err
	}
	m, err := wh.CreateMapping(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), r.PathValue("model"), in.mapping())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, viewMapping(m))
	return nil
}

func (a *admin) getMapping(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	m, err := wh.GetMapping(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), r.PathValue("model"), r.PathValue("mapping"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewMapping(m))
	return nil
}

func (a *admin) updateMapping(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	var in mappingPatch
	if err := decode(w, r, &in); err != nil {
		return err
	}
	change := in.mapping()
	change.Enabled = in.Enabled
	m, err := wh.UpdateMapping(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), r.PathValue("model"), r.PathValue("mapping"), change)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewMapping(m))
	return nil
}

func (a *admin) deleteMapping(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	if err := wh.DeleteMapping(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), r.PathValue("model"), r.PathValue("mapping")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// syncNow starts a sync of the mapping; it runs in the background (202), its progress at
// GET …/syncs/{id}. It takes no body.
func (a *admin) syncNow(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	s, err := wh.SyncNow(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), r.PathValue("model"), r.PathValue("mapping"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, viewSync(s))
	return nil
}

// listSyncs shows a mapping's latest syncs, newest first.
func (a *admin) listSyncs(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	ss, err := wh.ListSyncs(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), r.PathValue("model"), r.PathValue("mapping"))
	if err != nil {
		return err
	}
	out := make([]syncView, len(ss))
	for i, s := range ss {
		out[i] = viewSync(s)
	}
	writeJSON(w, http.StatusOK, map[string]any{"syncs": out})
	return nil
}

func (a *admin) getSync(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	s, err := wh.GetSync(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), r.PathValue("model"), r.PathValue("mapping"), r.PathValue("sync"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSync(s))
	return nil
}

// resetMapping forgets what the mapping synced: its next sync adds every record. It takes
// no body.
func (a *admin) resetMapping(w http.ResponseWriter, r *http.Request, p workspace.Principal, wh *warehouse.Service) error {
	if err := wh.ResetMapping(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), r.PathValue("model"), r.PathValue("mapping")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
