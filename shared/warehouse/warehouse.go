// Package warehouse is Reverse ETL, as Segment's works: a workspace's warehouse sources
// (Postgres, Redshift, BigQuery, Snowflake) hold sealed connection credentials; a model is one
// SELECT; a mapping sends a model's records into a space as identify calls on a schedule; a
// sync diffs the model against what the mapping last synced, in the warehouse itself (sqlgen),
// and applies the changes a page at a time through the profile entry point CSV uses.
//
// A sync is a chain of tasks on a queue (SQS in AWS, in-process on the local stack): the first
// plans it (snapshot, duplicate check, diff), each next one loads one page and checkpoints it,
// so a sync of any size survives a function's time limit, crashes and redelivery. A dispatcher
// (an EventBridge schedule in AWS, a ticker on the local stack) starts due syncs and restarts
// a chain whose worker died.
package warehouse

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/secrets"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Column is one result column, named and typed as the warehouse names its type.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Rows is a query's result: values are Go values as the driver gives them (string, int64,
// float64, bool, time.Time, []byte, nil, …).
type Rows struct {
	Columns []Column
	Rows    [][]any
}

// DB is an open warehouse connection: the port every driver implements.
type DB interface {
	// Exec runs statements in order, in one transaction where the warehouse has them (one
	// statement alone runs outside any: it is atomic by itself).
	Exec(ctx context.Context, stmts ...string) error
	// Query runs one SELECT and returns all its rows (callers bound them with LIMIT).
	Query(ctx context.Context, sql string) (Rows, error)
	Close() error
}

// Opener connects to one kind of warehouse. Errors are *Error where the cause is known.
type Opener func(ctx context.Context, c Credentials) (DB, error)

// Reasons a warehouse call fails, each with a hint for people (Error.Hint).
const (
	ReasonAuth       = "auth"
	ReasonNetwork    = "network"
	ReasonTLS        = "tls"
	ReasonDatabase   = "database"
	ReasonPermission = "permission"
	ReasonSQL        = "sql"
	ReasonTimeout    = "timeout"
	ReasonUnknown    = "unknown"
)

// Error is a warehouse failure the user can act on: why (Reason), the warehouse's own words
// (Message), what to do (Hint) and, for SQL errors, the 1-based character position in the
// statement the model was sent as (0 when unknown).
type Error struct {
	Reason   string
	Message  string
	Hint     string
	Position int
}

func (e *Error) Error() string { return e.Reason + ": " + e.Message }

// AsError returns the *Error in err's chain, or one of reason unknown.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Reason: ReasonUnknown, Message: err.Error(), Hint: "Check the connection settings and that the warehouse is up, then test again."}
}

// Source types this package serves.
var SourceTypes = []string{"postgres", "redshift", "bigquery", "snowflake"}

// Applier is the profile entry point records go through (profile.Service.ApplyMany).
type Applier interface {
	ApplyMany(ctx context.Context, spaceID string, msgs []message.Message) ([]profile.Outcome, error)
	Settings(ctx context.Context, spaceID string) (identity.Settings, error)
}

// Workspaces is what this package needs of the workspace service.
type Workspaces interface {
	GetSource(ctx context.Context, p workspace.Principal, wsID, srcID string) (workspace.Source, error)
	GetSpace(ctx context.Context, p workspace.Principal, wsID, spaceID string) (workspace.Space, error)
	MarkConnectedByTraffic(ctx context.Context, wsID, srcID string) (workspace.Source, error)
}

// Queue carries a sync's tasks to a worker (SQS in AWS). Delivery is at least once.
type Queue interface {
	Send(ctx context.Context, t Task) error
}

// Options configure a Service.
type Options struct {
	Now func() time.Time
	// PageSize is how many changed records one task loads (DefaultPageSize when 0).
	PageSize int
	// Lease is how long a task holds its sync before another worker may take over
	// (DefaultLease when 0).
	Lease time.Duration
	// AfterPage, when set, runs after a page's records are applied and recorded in the
	// warehouse, before its checkpoint; an error ends the task there, as a crash would (tests).
	AfterPage func(syncID string, page int) error
	// Outbox, when set, gets each page's committed identifies for the warehouse source's
	// destinations (delivery.Outbox), before the page's checkpoint.
	Outbox Outbox
}

// Outbox queues committed messages for their source's destinations (delivery.Outbox).
type Outbox interface {
	Enqueue(ctx context.Context, src workspace.Source, msgs []message.Message, hops int) error
}

// Defaults.
const (
	DefaultPageSize = 5000
	DefaultLease    = 5 * time.Minute
)

// Service is Reverse ETL.
type Service struct {
	st        store.Store
	ws        Workspaces
	profiles  Applier
	sealer    secrets.Sealer
	openers   map[string]Opener
	queue     Queue
	outbox    Outbox
	now       func() time.Time
	ids       token.IDs
	pageSize  int
	lease     time.Duration
	afterPage func(string, int) error
}

// New returns a Service. openers maps a source type to its driver; a type without one
// answers warehouse_unsupported.
func New(st store.Store, ws Workspaces, profiles Applier, sealer secrets.Sealer, openers map[string]Opener, q Queue, o Options) *Service {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	s := &Service{st: st, ws: ws, profiles: profiles, sealer: sealer, openers: openers, queue: q, now: now,
		ids: token.IDs{Now: now}, pageSize: o.PageSize, lease: o.Lease, afterPage: o.AfterPage, outbox: o.Outbox}
	if s.pageSize <= 0 {
		s.pageSize = DefaultPageSize
	}
	if s.lease <= 0 {
		s.lease = DefaultLease
	}
	return s
}

// SetQueue sets the queue after construction (the local stack's worker needs the Service).
func (s *Service) SetQueue(q Queue) { s.queue = q }

// Keys. A workspace's Reverse ETL configuration sits in one partition beside it; a mapping's
// sync history in its own, newest last (sync IDs sort by time).
func retlPK(ws string) string          { return "WS#" + ws + "#RETL" }
func connKey(ws, src string) store.Key { return store.Key{PK: retlPK(ws), SK: "CONN#" + src} }
func modelKey(ws, src, id string) store.Key {
	return store.Key{PK: retlPK(ws), SK: "MODEL#" + src + "#" + id}
}
func mappingKey(ws, id string) store.Key   { return store.Key{PK: retlPK(ws), SK: "MAP#" + id} }
func syncPK(mapping string) string         { return "RETLSYNC#" + mapping }
func syncKey(mapping, id string) store.Key { return store.Key{PK: syncPK(mapping), SK: id} }
func item(k store.Key, v any) store.Item   { return store.JSONItem(k, v) }
func modelPrefix(src string) string        { return "MODEL#" + src + "#" }

// warehouseSource returns the source if p owns it and it is a warehouse.
// Errors: forbidden, not_found, not_a_warehouse (400).
func (s *Service) warehouseSource(ctx context.Context, p workspace.Principal, wsID, srcID string) (workspace.Source, error) {
	src, err := s.ws.GetSource(ctx, p, wsID, srcID)
	if err != nil {
		return src, err
	}
	for _, t := range SourceTypes {
		if src.Type == t {
			return src, nil
		}
	}
	return src, errcode.New(errcode.Invalid, "not_a_warehouse",
		"source %s is of type %s; warehouse connections, models and mappings belong to sources of type %s",
		srcID, src.Type, strings.Join(SourceTypes, ", "))
}
