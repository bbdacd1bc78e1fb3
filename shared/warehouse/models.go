package warehouse

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Model limits.
const (
	MaxModelSQL   = 65535 // characters
	PreviewRows   = 10
	maxModelName  = 100
	maxModels     = 50 // per source
	maxColumnName = 128
)

// Model is one SELECT whose records a mapping syncs.
type Model struct {
	ID        string    `json:"id"`
	SourceID  string    `json:"source_id"`
	Name      string    `json:"name"`
	SQL       string    `json:"sql"`
	IDColumn  string    `json:"id_column"`
	Columns   []Column  `json:"columns"` // as the warehouse described them when saved
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// NewModel is what a user sends to create or change a model.
type NewModel struct {
	Name     *string
	SQL      *string
	IDColumn *string
}

// validSQL checks a model's text: one SELECT (or WITH … SELECT), no ';', at most MaxModelSQL
// characters. The warehouse checks the rest when the model runs.
func validSQL(sql string) error {
	if strings.TrimSpace(sql) == "" {
		return errcode.InvalidField("sql", "is required: one SELECT statement")
	}
	if n := len([]rune(sql)); n > MaxModelSQL {
		return errcode.InvalidField("sql", "has %d characters; a model is at most %d", n, MaxModelSQL)
	}
	if i := strings.IndexByte(sql, ';'); i >= 0 {
		return errcode.InvalidField("sql", "contains ';' at character %d: a model is one SELECT, run inside a CTE, without a statement separator", len([]rune(sql[:i]))+1)
	}
	first := firstWord(sql)
	if !strings.EqualFold(first, "select") && !strings.EqualFold(first, "with") {
		return errcode.InvalidField("sql", "starts with %q: a model is one SELECT (or WITH … SELECT)", errcode.Clip(first))
	}
	return nil
}

// firstWord returns the first word of sql after blanks and comments.
func firstWord(sql string) string {
	for {
		sql = strings.TrimLeftFunc(sql, unicode.IsSpace)
		switch {
		case strings.HasPrefix(sql, "--"):
			i := strings.IndexByte(sql, '\n')
			if i < 0 {
				return ""
			}
			sql = sql[i+1:]
		case strings.HasPrefix(sql, "/*"):
			i := strings.Index(sql, "*/")
			if i < 0 {
				return ""
			}
			sql = sql[i+2:]
		default:
			end := strings.IndexFunc(sql, func(r rune) bool { return !unicode.IsLetter(r) && r != '_' })
			if end < 0 {
				return sql
			}
			return sql[:end]
		}
	}
}

// Preview is the first records of a model.
type Preview struct {
	Columns []Column         `json:"columns"`
	Rows    []map[string]any `json:"rows"`
}

// sqlError is the 400 answer for SQL the warehouse refused, with its words and position.
func sqlError(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err // ours (not_configured, …) or internal: not the warehouse's answer
	}
	if e.Reason != ReasonSQL && e.Reason != ReasonPermission {
		return warehouseError(e)
	}
	msg := "the warehouse refused the model: " + e.Message
	if e.Position > 0 {
		msg += " (at character " + strconv.Itoa(e.Position) + " of the model)"
	}
	if e.Reason == ReasonPermission {
		msg += ". " + e.Hint
	}
	return &errcode.Error{Kind: errcode.Invalid, Code: "sql_error", Field: "sql", Message: msg}
}

// PreviewModel runs sql as a model and returns its first PreviewRows records with their
// columns. Caller: the workspace's token. Errors: forbidden, not_found, not_a_warehouse,
// not_configured, invalid_field (sql), sql_error (the warehouse's message and position),
// warehouse_<reason> when the connection fails.
func (s *Service) PreviewModel(ctx context.Context, p workspace.Principal, wsID, srcID, sql string) (Preview, error) {
	if _, err := s.warehouseSource(ctx, p, wsID, srcID); err != nil {
		return Preview{}, err
	}
	if err := validSQL(sql); err != nil {
		return Preview{}, err
	}
	return s.preview(ctx, wsID, srcID, sql)
}

func (s *Service) preview(ctx context.Context, wsID, srcID, sql string) (Preview, error) {
	db, d, err := s.openSource(ctx, wsID, srcID)
	if err != nil {
		return Preview{}, sqlError(err)
	}
	defer db.Close()
	rows, err := db.Query(ctx, d.Preview(sql, PreviewRows))
	if err != nil {
		return Preview{}, sqlError(modelPosition(err))
	}
	out := Preview{Columns: rows.Columns, Rows: make([]map[string]any, len(rows.Rows))}
	for i, r := range rows.Rows {
		m := make(map[string]any, len(r))
		for j, v := range r {
			m[rows.Columns[j].Name] = jsonValue(v)
		}
		out.Rows[i] = m
	}
	return out, nil
}

// warehouseError is the 400 answer for a warehouse that could not run what we asked, with its
// reason, words and what to do.
func warehouseError(e *Error) error {
	return &errcode.Error{Kind: errcode.Invalid, Code: "warehouse_" + e.Reason, Message: e.Message + ". " + e.Hint}
}

// modelPosition turns a position in the statement sent into one in the model's text (the
// model follows the CTE's first line).
func modelPosition(err error) error {
	e := AsError(err)
	if e.Position > 0 {
		if e.Position -= sqlgen.ModelOffset(); e.Position < 1 {
			e.Position = 0
		}
	}
	return e
}

// checkModel previews sql and checks its columns: idColumn is one of them, no name is ours.
func (s *Service) checkModel(ctx context.Context, wsID, srcID, sql, idColumn string) ([]Column, error) {
	pv, err := s.preview(ctx, wsID, srcID, sql)
	if err != nil {
		return nil, err
	}
	found := false
	seen := map[string]bool{}
	for _, c := range pv.Columns {
		if strings.HasPrefix(strings.ToLower(c.Name), sqlgen.ReservedPrefix) {
			return nil, errcode.InvalidField("sql", "column %q: names starting with %s are reserved", errcode.Clip(c.Name), sqlgen.ReservedPrefix)
		}
		if seen[c.Name] {
			return nil, errcode.InvalidField("sql", "column %q appears twice: give each column its own name (AS …)", errcode.Clip(c.Name))
		}
		seen[c.Name] = true
		found = found || c.Name == idColumn
	}
	if !found {
		names := make([]string, len(pv.Columns))
		for i, c := range pv.Columns {
			names[i] = c.Name
		}
		return nil, errcode.InvalidField("id_column", "%q is not a column of the model (its columns: %s)", errcode.Clip(idColumn), errcode.Clip(strings.Join(names, ", ")))
	}
	return pv.Columns, nil
}

// CreateModel saves a model after running it: the SQL must run and id_column must be one of
// its columns. Caller: the workspace's token. Errors: as PreviewModel, and invalid_field
// (name, id_column), limit_exceeded (409) past maxModels.
func (s *Service) CreateModel(ctx context.Context, p workspace.Principal, wsID, srcID string, in NewModel) (Model, error) {
	if _, err := s.warehouseSource(ctx, p, wsID, srcID); err != nil {
		return Model{}, err
	}
	m := Model{SourceID: srcID}
	if err := applyModel(&m, in, true); err != nil {
		return Model{}, err
	}
	existing, err := s.st.Query(ctx, retlPK(wsID), store.Page{Prefix: modelPrefix(srcID), Limit: maxModels})
	if err != nil {
		return Model{}, err
	}
	if len(existing) >= maxModels {
		return Model{}, errcode.New(errcode.Conflict, "limit_exceeded", "source %s has %d models, the most it may have; delete one first", srcID, len(existing))
	}
	if m.Columns, err = s.checkModel(ctx, wsID, srcID, m.SQL, m.IDColumn); err != nil {
		return Model{}, err
	}
	now := s.now()
	m.ID, m.CreatedAt, m.UpdatedAt = s.ids.New("mdl_"), now, now
	if err := s.st.Transact(ctx, store.ReplaceOp(item(modelKey(wsID, srcID, m.ID), m), 0)); err != nil {
		return Model{}, err
	}
	return m, nil
}

func applyModel(m *Model, in NewModel, create bool) error {
	if in.Name != nil || create {
		name := ""
		if in.Name != nil {
			name = strings.TrimSpace(*in.Name)
		}
		if name == "" || len(name) > maxModelName {
			return errcode.InvalidField("name", "is required, 1 to %d characters", maxModelName)
		}
		m.Name = name
	}
	if in.SQL != nil || create {
		sql := ""
		if in.SQL != nil {
			sql = *in.SQL
		}
		if err := validSQL(sql); err != nil {
			return err
		}
		m.SQL = sql
	}
	if in.IDColumn != nil || create {
		col := ""
		if in.IDColumn != nil {
			col = *in.IDColumn
		}
		if col == "" || len(col) > maxColumnName {
			return errcode.InvalidField("id_column", "is required: the column that identifies a record (unique per record), 1 to %d characters", maxColumnName)
		}
		m.IDColumn = col
	}
	return nil
}

func modelNotFound(id string) error { return errcode.NotFoundf("model %s was not found", id) }

// GetModel returns one model. Errors: forbidden, not_found, not_a_warehouse.
func (s *Service) GetModel(ctx context.Context, p workspace.Principal, wsID, srcID, id string) (Model, error) {
	if _, err := s.warehouseSource(ctx, p, wsID, srcID); err != nil {
		return Model{}, err
	}
	m, _, err := store.LoadJSON[Model](ctx, s.st, modelKey(wsID, srcID, id), modelNotFound(id))
	return m, err
}

// ListModels returns a source's models in creation order. Errors: forbidden, not_found,
// not_a_warehouse.
func (s *Service) ListModels(ctx context.Context, p workspace.Principal, wsID, srcID string) ([]Model, error) {
	if _, err := s.warehouseSource(ctx, p, wsID, srcID); err != nil {
		return nil, err
	}
	return store.ListJSON[Model](ctx, s.st, retlPK(wsID), modelPrefix(srcID))
}

// UpdateModel changes a model's name, SQL or id column (a changed SQL or id column runs
// again). Errors: as CreateModel, and not_found, conflict (changed meanwhile: retry).
func (s *Service) UpdateModel(ctx context.Context, p workspace.Principal, wsID, srcID, id string, in NewModel) (Model, error) {
	if _, err := s.warehouseSource(ctx, p, wsID, srcID); err != nil {
		return Model{}, err
	}
	m, version, err := store.LoadJSON[Model](ctx, s.st, modelKey(wsID, srcID, id), modelNotFound(id))
	if err != nil {
		return Model{}, err
	}
	if err := applyModel(&m, in, false); err != nil {
		return Model{}, err
	}
	if in.SQL != nil || in.IDColumn != nil {
		if m.Columns, err = s.checkModel(ctx, wsID, srcID, m.SQL, m.IDColumn); err != nil {
			return Model{}, err
		}
	}
	m.UpdatedAt = s.now()
	if err := s.st.Transact(ctx, store.ReplaceOp(item(modelKey(wsID, srcID, id), m), version)); err != nil {
		if store.FailedOp(err) == 0 {
			return Model{}, errcode.New(errcode.Conflict, "conflict", "model %s changed meanwhile: read it again and retry", id)
		}
		return Model{}, err
	}
	return m, nil
}

// DeleteModel removes a model that no mapping uses. Errors: forbidden, not_found,
// not_a_warehouse, in_use (409).
func (s *Service) DeleteModel(ctx context.Context, p workspace.Principal, wsID, srcID, id string) error {
	if _, err := s.warehouseSource(ctx, p, wsID, srcID); err != nil {
		return err
	}
	if _, _, err := store.LoadJSON[Model](ctx, s.st, modelKey(wsID, srcID, id), modelNotFound(id)); err != nil {
		return err
	}
	maps, err := store.ListJSON[Mapping](ctx, s.st, retlPK(wsID), "MAP#")
	if err != nil {
		return err
	}
	for _, mp := range maps {
		if mp.ModelID == id {
			return errcode.New(errcode.Conflict, "in_use", "model %s is synced by mapping %s: delete the mapping first", id, mp.ID)
		}
	}
	return s.st.Transact(ctx, store.DeleteOp(modelKey(wsID, srcID, id), store.Always))
}
