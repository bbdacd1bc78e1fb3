package warehouse

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Record selections: which of a diff's changes a mapping sends.
const (
	RecordsAdded          = "added"
	RecordsUpdated        = "updated"
	RecordsAddedOrUpdated = "added_or_updated"
	RecordsDeleted        = "deleted"
	RecordsAll            = "all"
)

var recordSelections = []string{RecordsAdded, RecordsUpdated, RecordsAddedOrUpdated, RecordsDeleted, RecordsAll}

// Intervals a schedule may repeat at.
var intervals = map[string]time.Duration{
	"15m": 15 * time.Minute, "30m": 30 * time.Minute, "1h": time.Hour, "2h": 2 * time.Hour,
	"4h": 4 * time.Hour, "6h": 6 * time.Hour, "8h": 8 * time.Hour, "12h": 12 * time.Hour, "1d": 24 * time.Hour,
}

// Mapping limits.
const (
	maxMappingTraits = 200
	maxTraitName     = 255
	maxMappings      = 20 // per workspace
)

// Schedule says when a mapping syncs: every Interval, daily at DailyAt (HH:MM, UTC), or only
// when asked (Manual).
type Schedule struct {
	Interval string `json:"interval,omitempty"`
	DailyAt  string `json:"daily_at,omitempty"`
	Manual   bool   `json:"manual,omitempty"`
}

var dailyAt = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

func (sc Schedule) validate() error {
	set := 0
	if sc.Interval != "" {
		set++
		if _, ok := intervals[sc.Interval]; !ok {
			return errcode.InvalidField("schedule.interval", "must be one of 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d")
		}
	}
	if sc.DailyAt != "" {
		set++
		if !dailyAt.MatchString(sc.DailyAt) {
			return errcode.InvalidField("schedule.daily_at", "must be a time of day HH:MM (UTC), 00:00 to 23:59")
		}
	}
	if sc.Manual {
		set++
	}
	if set != 1 {
		return errcode.InvalidField("schedule", `give exactly one of {"interval":"15m|30m|1h|2h|4h|6h|8h|12h|1d"}, {"daily_at":"HH:MM"} or {"manual":true}`)
	}
	return nil
}

// next returns when a mapping on this schedule syncs next after a sync that started at
// last (zero: never synced), or zero when only asked.
func (sc Schedule) next(last, now time.Time) time.Time {
	switch {
	case sc.Interval != "":
		if last.IsZero() {
			return now
		}
		return last.Add(intervals[sc.Interval])
	case sc.DailyAt != "":
		t, _ := time.Parse("15:04", sc.DailyAt)
		day := now.UTC().Truncate(24 * time.Hour)
		at := day.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute)
		if !at.After(now) {
			at = at.Add(24 * time.Hour)
		}
		return at
	}
	return time.Time{}
}

// Mapping sends a model's records into a space as identify calls.
type Mapping struct {
	ID          string            `json:"id"`
	SourceID    string            `json:"source_id"`
	ModelID     string            `json:"model_id"`
	SpaceID     string            `json:"space_id"`
	Action      string            `json:"action"`
	Records     string            `json:"records"`
	Identifiers map[string]string `json:"identifiers"` // identifier type → column
	Traits      map[string]string `json:"traits"`      // trait name → column
	SyncNulls   bool              `json:"sync_nulls"`
	Schedule    Schedule          `json:"schedule"`
	Enabled     bool              `json:"enabled"`
	NextSyncAt  *time.Time        `json:"next_sync_at"`
	LastSync    *Sync             `json:"last_sync,omitempty"`
	// Running is the sync in progress, if any.
	Running   string    `json:"running_sync_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// NewMapping is what a user sends to create or change a mapping (nil: unchanged).
type NewMapping struct {
	SpaceID     *string
	Action      *string
	Records     *string
	Identifiers map[string]string
	Traits      map[string]string
	SyncNulls   *bool
	Schedule    *Schedule
	Enabled     *bool
}

// Due and running syncs are found without a scan: the dispatcher reads one partition of due
// mappings, ordered by time, and one of running syncs.
const (
	duePK     = "RETLDUE"
	runningPK = "RETLRUN"
)

func dueKey(ws, mapping string, at time.Time) store.Key {
	return store.Key{PK: duePK, SK: at.UTC().Format("2006-01-02T15:04:05Z") + "#" + ws + "#" + mapping}
}

func runningKey(ws, mapping string) store.Key {
	return store.Key{PK: runningPK, SK: ws + "#" + mapping}
}

func mappingNotFound(id string) error { return errcode.NotFoundf("mapping %s was not found", id) }

// checkMapping validates a mapping against its model's columns and its space's identifiers.
func (s *Service) checkMapping(ctx context.Context, m *Mapping, model Model) error {
	if m.Action != "identify" {
		return errcode.InvalidField("action", `must be "identify"`)
	}
	if !slices.Contains(recordSelections, m.Records) {
		return errcode.InvalidField("records", "must be one of %s", strings.Join(recordSelections, ", "))
	}
	if err := m.Schedule.validate(); err != nil {
		return err
	}
	cols := map[string]bool{}
	for _, c := range model.Columns {
		cols[c.Name] = true
	}
	column := func(field, col string) error {
		if !cols[col] {
			return errcode.InvalidField(field, "%q is not a column of model %s", errcode.Clip(col), model.ID)
		}
		return nil
	}
	if len(m.Identifiers) == 0 {
		return errcode.InvalidField("identifiers", "map at least one identifier to a column, for example {\"user_id\":\"ID\"} or {\"email\":\"EMAIL\"}")
	}
	set, err := s.profiles.Settings(ctx, m.SpaceID)
	if err != nil {
		return err
	}
	for _, typ := range slices.Sorted(maps.Keys(m.Identifiers)) {
		if _, ok := ruleOf(set, typ); !ok {
			return errcode.InvalidField("identifiers."+typ, "is not an identifier of space %s: use one of its identifiers (GET …/spaces/%s/identity) or add a custom one first", m.SpaceID, m.SpaceID)
		}
		if err := column("identifiers."+typ, m.Identifiers[typ]); err != nil {
			return err
		}
	}
	if len(m.Traits) > maxMappingTraits {
		return errcode.InvalidField("traits", "maps %d traits; at most %d", len(m.Traits), maxMappingTraits)
	}
	for _, name := range slices.Sorted(maps.Keys(m.Traits)) {
		if name == "" || len(name) > maxTraitName {
			return errcode.InvalidField("traits", "a trait name is 1 to %d characters", maxTraitName)
		}
		if err := column("traits."+name, m.Traits[name]); err != nil {
			return err
		}
	}
	return nil
}

// ruleOf returns the space's rule for an identifier type.
func ruleOf(set identity.Settings, typ string) (identity.Rule, bool) {
	for _, r := range set.Identifiers {
		if r.Type == typ {
			return r, true
		}
	}
	return identity.Rule{}, false
}

func applyMapping(m *Mapping, in NewMapping) {
	if in.SpaceID != nil {
		m.SpaceID = *in.SpaceID
	}
	if in.Action != nil {
		m.Action = *in.Action
	}
	if in.Records != nil {
		m.Records = *in.Records
	}
	if in.Identifiers != nil {
		m.Identifiers = in.Identifiers
	}
	if in.Traits != nil {
		m.Traits = in.Traits
	}
	if in.SyncNulls != nil {
		m.SyncNulls = *in.SyncNulls
	}
	if in.Schedule != nil {
		m.Schedule = *in.Schedule
	}
	if in.Enabled != nil {
		m.Enabled = *in.Enabled
	}
}

// CreateMapping maps a model's columns to a space's identifiers and traits. An interval
// schedule starts the first sync at once. Caller: the workspace's token. Errors: forbidden,
// not_found (source, model, space), not_a_warehouse, invalid_field, limit_exceeded (409).
func (s *Service) CreateMapping(ctx context.Context, p workspace.Principal, wsID, srcID, modelID string, in NewMapping) (Mapping, error) {
	src, err := s.warehouseSource(ctx, p, wsID, srcID)
	if err != nil {
		return Mapping{}, err
	}
	model, _, err := store.LoadJSON[Model](ctx, s.st, modelKey(wsID, srcID, modelID), modelNotFound(modelID))
	if err != nil {
		return Mapping{}, err
	}
	m := Mapping{SourceID: srcID, ModelID: modelID, SpaceID: src.SpaceID, Action: "identify", Records: RecordsAddedOrUpdated, SyncNulls: true, Enabled: true}
	applyMapping(&m, in)
	if m.SpaceID != src.SpaceID {
		if _, err := s.ws.GetSpace(ctx, p, wsID, m.SpaceID); err != nil {
			return Mapping{}, err
		}
	}
	if err := s.checkMapping(ctx, &m, model); err != nil {
		return Mapping{}, err
	}
	existing, err := s.st.Query(ctx, retlPK(wsID), store.Page{Prefix: "MAP#", Limit: maxMappings})
	if err != nil {
		return Mapping{}, err
	}
	if len(existing) >= maxMappings {
		return Mapping{}, errcode.New(errcode.Conflict, "limit_exceeded", "workspace %s has %d mappings, the most it may have; delete one first", wsID, len(existing))
	}
	now := s.now()
	m.ID, m.CreatedAt, m.UpdatedAt = s.ids.New("map_"), now, now
	ops := []store.Op{}
	if next := m.Schedule.next(time.Time{}, now); !next.IsZero() && m.Enabled {
		m.NextSyncAt = &next
		ops = append(ops, store.PutOp(item(dueKey(wsID, m.ID, next), dueRef{WorkspaceID: wsID, MappingID: m.ID}), store.Always))
	}
	ops = append(ops, store.ReplaceOp(item(mappingKey(wsID, m.ID), m), 0))
	if err := s.st.Transact(ctx, ops...); err != nil {
		return Mapping{}, err
	}
	if m.Schedule.Interval != "" && m.Enabled { // the first sync at once, not at the dispatcher's next tick
		if _, err := s.startSync(ctx, wsID, m.ID, TriggerFirst); err != nil && !errcode.Is(err, "sync_in_progress") {
			return Mapping{}, fmt.Errorf("start the first sync of %s: %w", m.ID, err)
		}
		m, _, err = s.loadMapping(ctx, wsID, m.ID)
	}
	return m, err
}

// dueRef is a due item: which mapping to look at.
type dueRef struct {
	WorkspaceID string `json:"workspace_id"`
	MappingID   string `json:"mapping_id"`
}

func (s *Service) loadMapping(ctx context.Context, wsID, id string) (Mapping, int64, error) {
	return store.LoadJSON[Mapping](ctx, s.st, mappingKey(wsID, id), mappingNotFound(id))
}

// mappingOf returns a mapping of the source, if p owns it.
func (s *Service) mappingOf(ctx context.Context, p workspace.Principal, wsID, srcID, modelID, id string) (Mapping, int64, error) {
	if _, err := s.warehouseSource(ctx, p, wsID, srcID); err != nil {
		return Mapping{}, 0, err
	}
	m, version, err := s.loadMapping(ctx, wsID, id)
	if err == nil && (m.SourceID != srcID || m.ModelID != modelID) {
		return Mapping{}, 0, mappingNotFound(id)
	}
	return m, version, err
}

// GetMapping returns one mapping with its last sync and next run. Errors: forbidden,
// not_found, not_a_warehouse.
func (s *Service) GetMapping(ctx context.Context, p workspace.Principal, wsID, srcID, modelID, id string) (Mapping, error) {
	m, _, err := s.mappingOf(ctx, p, wsID, srcID, modelID, id)
	return m, err
}

// ListMappings returns a model's mappings. Errors: forbidden, not_found, not_a_warehouse.
func (s *Service) ListMappings(ctx context.Context, p workspace.Principal, wsID, srcID, modelID string) ([]Mapping, error) {
	if _, err := s.warehouseSource(ctx, p, wsID, srcID); err != nil {
		return nil, err
	}
	if _, _, err := store.LoadJSON[Model](ctx, s.st, modelKey(wsID, srcID, modelID), modelNotFound(modelID)); err != nil {
		return nil, err
	}
	all, err := store.ListJSON[Mapping](ctx, s.st, retlPK(wsID), "MAP#")
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(m Mapping) bool { return m.SourceID != srcID || m.ModelID != modelID }), nil
}

// WorkspaceMappings returns every mapping of a workspace (the workspace view, step 4).
func (s *Service) WorkspaceMappings(ctx context.Context, wsID string) ([]Mapping, error) {
	return store.ListJSON[Mapping](ctx, s.st, retlPK(wsID), "MAP#")
}

// UpdateMapping changes a mapping; {"enabled":false} pauses it (no scheduled syncs) and true
// resumes it. Errors: as CreateMapping, and conflict (changed meanwhile: retry).
func (s *Service) UpdateMapping(ctx context.Context, p workspace.Principal, wsID, srcID, modelID, id string, in NewMapping) (Mapping, error) {
	m, version, err := s.mappingOf(ctx, p, wsID, srcID, modelID, id)
	if err != nil {
		return Mapping{}, err
	}
	model, _, err := store.LoadJSON[Model](ctx, s.st, modelKey(wsID, srcID, modelID), modelNotFound(modelID))
	if err != nil {
		return Mapping{}, err
	}
	oldNext := m.NextSyncAt
	applyMapping(&m, in)
	if in.SpaceID != nil {
		if _, err := s.ws.GetSpace(ctx, p, wsID, m.SpaceID); err != nil {
			return Mapping{}, err
		}
	}
	if err := s.checkMapping(ctx, &m, model); err != nil {
		return Mapping{}, err
	}
	now := s.now()
	m.UpdatedAt = now
	var ops []store.Op
	if oldNext != nil {
		ops = append(ops, store.DeleteOp(dueKey(wsID, id, *oldNext), store.Always))
	}
	m.NextSyncAt = nil
	if m.Enabled && m.Running == "" {
		var last time.Time
		if m.LastSync != nil {
			last = m.LastSync.StartedAt
		}
		if next := m.Schedule.next(last, now); !next.IsZero() {
			m.NextSyncAt = &next
			ops = append(ops, store.PutOp(item(dueKey(wsID, id, next), dueRef{WorkspaceID: wsID, MappingID: id}), store.Always))
		}
	}
	ops = append(ops, store.ReplaceOp(item(mappingKey(wsID, id), m), version))
	if err := s.st.Transact(ctx, ops...); err != nil {
		if store.FailedOp(err) == len(ops)-1 {
			return Mapping{}, errcode.New(errcode.Conflict, "conflict", "mapping %s changed meanwhile (a sync started or ended): read it again and retry", id)
		}
		return Mapping{}, err
	}
	return m, nil
}

// DeleteMapping removes a mapping and its schedule; what it synced stays in the profiles.
// Its state table in the warehouse is dropped on a best-effort basis. Errors: forbidden,
// not_found, not_a_warehouse, sync_in_progress (409).
func (s *Service) DeleteMapping(ctx context.Context, p workspace.Principal, wsID, srcID, modelID, id string) error {
	m, version, err := s.mappingOf(ctx, p, wsID, srcID, modelID, id)
	if err != nil {
		return err
	}
	if m.Running != "" {
		return errcode.New(errcode.Conflict, "sync_in_progress", "mapping %s is syncing (sync %s): wait for it to end, then delete", id, m.Running)
	}
	ops := []store.Op{store.DeleteOp(mappingKey(wsID, id), store.VersionIs)}
	ops[0].Version = version
	if m.NextSyncAt != nil {
		ops = append(ops, store.DeleteOp(dueKey(wsID, id, *m.NextSyncAt), store.Always))
	}
	if err := s.st.Transact(ctx, ops...); err != nil {
		if store.FailedOp(err) == 0 {
			return errcode.New(errcode.Conflict, "conflict", "mapping %s changed meanwhile: read it again and retry", id)
		}
		return err
	}
	s.dropState(ctx, wsID, srcID, id)
	return nil
}
