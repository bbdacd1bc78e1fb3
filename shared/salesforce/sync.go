package salesforce

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
)

// The sync engine of one object (issue 15, "Sync"): describe the object, make its table in the
// warehouse's schema salesforce (sqlgen) or add the columns of new fields, then run queryAll
// incrementally on SystemModstamp and land each page with an idempotent upsert on id,
// checkpointing after every page. The caller iterates the source's objects, stores each
// object's Checkpoint (save is called after every page) and its sync history (Result).
//
// What a checkpoint guarantees: everything before Checkpoint.NextURL of the in-flight query,
// and every record with a SystemModstamp up to Checkpoint.Since once a query is done, is in the
// warehouse. A run that stops for any reason (a rate limit, a crash between writing a page and
// saving its checkpoint, a function's time limit) resumes from the last saved checkpoint; a
// page written twice changes nothing more, as upserts are idempotent.

// SafetyMargin is how far before Checkpoint.Since an incremental query starts. Salesforce sets
// SystemModstamp when a transaction starts, so a record committed after a query ran can carry a
// stamp older than the newest one that query returned; re-reading the last minute picks such
// records up, and the records read again are upserted to the same values.
const SafetyMargin = time.Minute

// CodeInvalidQueryLocator is the errorCode of a nextRecordsUrl Salesforce no longer knows (a
// query cursor expires about 15 minutes after its last use, or when the user opens too many).
// The sync then runs its query again from Checkpoint.Since.
const CodeInvalidQueryLocator = "INVALID_QUERY_LOCATOR"

// Checkpoint is how far an object's sync got. It is JSON: the caller stores it after every page
// (SyncObject's save) and passes the last stored one to the next run.
type Checkpoint struct {
	Object string `json:"object"`
	// Since is the high-water mark of what landed: the newest SystemModstamp of the last query
	// that completed. Zero: no query completed yet (the next one reads every record).
	Since time.Time `json:"since,omitzero"`
	// NextURL is the nextRecordsUrl of the page to fetch next while a query is in flight; ""
	// when none is (the next run starts a query from Since).
	NextURL string `json:"next_url,omitempty"`
	// QueryStarted is when the in-flight (or last) query started, by the caller's clock.
	QueryStarted time.Time `json:"query_started,omitzero"`
	// Seen is the newest SystemModstamp of the in-flight query's pages landed so far; it becomes
	// Since when the query completes.
	Seen time.Time `json:"seen,omitzero"`
	// Pages, Records and Deleted count the in-flight (or last) query's pages landed, records
	// upserted and, of those, deleted ones (IsDeleted), across runs. They restart with each
	// query.
	Pages   int `json:"pages"`
	Records int `json:"records"`
	Deleted int `json:"deleted"`
}

// InFlight reports whether a query is in flight (the next run continues it).
func (cp Checkpoint) InFlight() bool { return cp.NextURL != "" }

// Result is what one SyncObject call did.
type Result struct {
	Object  string `json:"object"`
	Pages   int    `json:"pages"`   // pages landed
	Records int    `json:"records"` // records upserted (deleted ones included; a record read twice counts twice)
	Deleted int    `json:"deleted"` // of Records, those with IsDeleted
	// Done is true when the query completed (the checkpoint is no longer in flight).
	Done bool `json:"done"`
	// Resumed is true when the call continued a query from the checkpoint's NextURL.
	Resumed bool `json:"resumed,omitempty"`
	// Restarted is true when the query locator had expired and the query ran again from Since.
	Restarted bool `json:"restarted,omitempty"`
	// TableCreated and ColumnsAdded tell what the call changed in the warehouse's schema.
	TableCreated bool `json:"table_created,omitempty"`
	ColumnsAdded int  `json:"columns_added,omitempty"`
}

// SyncObject syncs object from c into db (dialect d), starting from cp (the zero Checkpoint
// for a first sync), and returns the new checkpoint. After every page it calls save with the
// checkpoint that page reached; the next run must start from the last one saved.
//
// On an error the returned checkpoint is the last one saved (cp when none was), and the error
// tells what happened (errors.Is with the sentinels):
//
//   - ErrRateLimited: the org's API limit is spent; a later run resumes from the checkpoint.
//   - ErrReauthorize: the grant was revoked or expired (the client refreshes an expired session
//     once itself); nothing more was written. The caller marks the source reauthorize.
//   - ErrPermission: the connected user may not query the object; the message says the user
//     needs the "View All Records" permission.
//   - ErrSessionExpired: the session stayed invalid after one refresh.
//   - anything else: a warehouse error, a save error, a malformed answer.
//
// now is the caller's clock (the rows' _synced_at, QueryStarted); nil is time.Now.
func SyncObject(ctx context.Context, c Client, db warehouse.DB, d sqlgen.Dialect, object string, cp Checkpoint,
	save func(context.Context, Checkpoint) error, now func() time.Time) (Checkpoint, Result, error) {
	res := Result{Object: object}
	if now == nil {
		now = time.Now
	}
	if !ValidName(object) {
		return cp, res, &Error{Kind: KindOther, Code: "invalid_object", Message: fmt.Sprintf("%q is not an object name", truncate(object, 80))}
	}
	if cp.Object != "" && !strings.EqualFold(cp.Object, object) {
		return cp, res, fmt.Errorf("salesforce %s: the checkpoint is %s's", object, truncate(cp.Object, 80))
	}
	if save == nil {
		save = func(context.Context, Checkpoint) error { return nil }
	}
	cp.Object = object
	saved := cp

	desc, err := c.Describe(ctx, object)
	if err != nil {
		return saved, res, objectError(object, err)
	}
	selected := desc.QueryableFields()
	fields := make([]sqlgen.SalesforceField, 0, len(selected))
	for _, name := range selected {
		f, _ := desc.Field(name)
		fields = append(fields, sqlgen.SalesforceField{Name: f.Name, Type: f.Type})
	}
	if err := ensureTable(ctx, db, d, object, fields, &res); err != nil {
		return saved, res, err
	}

	start := func() (Page, error) {
		cp.NextURL, cp.Seen, cp.Pages, cp.Records, cp.Deleted = "", time.Time{}, 0, 0, 0
		cp.QueryStarted = now().UTC()
		var since time.Time
		if !cp.Since.IsZero() {
			since = cp.Since.Add(-SafetyMargin)
		}
		return c.QueryAll(ctx, IncrementalQuery(object, selected, since))
	}
	fetch := func() (Page, error) {
		if cp.NextURL == "" {
			return start()
		}
		p, err := c.QueryMore(ctx, cp.NextURL)
		if err != nil && !res.Restarted && locatorExpired(err) {
			// Pages already landed stay; the query runs again from Since, and what it reads
			// again is upserted to the same values.
			res.Restarted = true
			return start()
		}
		return p, err
	}

	res.Resumed = cp.NextURL != ""
	for {
		if err := ctx.Err(); err != nil {
			return saved, res, err
		}
		page, err := fetch()
		if err != nil {
			return saved, res, objectError(object, err)
		}
		if stmts := d.UpsertRecords(object, pageFields(fields, page.Records), records(page.Records), now()); len(stmts) > 0 {
			if err := db.Exec(ctx, stmts...); err != nil {
				return saved, res, fmt.Errorf("salesforce %s: writing a page to the warehouse: %w", object, err)
			}
		}
		deleted := 0
		for _, r := range page.Records {
			if r.IsDeleted() {
				deleted++
			}
			if t := r.SystemModstamp(); t.After(cp.Seen) {
				cp.Seen = t
			}
		}
		cp.Pages++
		cp.Records += len(page.Records)
		cp.Deleted += deleted
		res.Pages++
		res.Records += len(page.Records)
		res.Deleted += deleted
		if page.Done {
			if cp.Seen.After(cp.Since) {
				cp.Since = cp.Seen
			}
			cp.NextURL, cp.Seen = "", time.Time{}
		} else {
			cp.NextURL = page.NextURL
		}
		if err := save(ctx, cp); err != nil {
			return saved, res, fmt.Errorf("salesforce %s: saving the checkpoint: %w", object, err)
		}
		saved = cp
		if page.Done {
			res.Done = true
			return cp, res, nil
		}
	}
}

// ensureTable makes object's table when it is missing and adds the columns of fields it lacks.
func ensureTable(ctx context.Context, db warehouse.DB, d sqlgen.Dialect, object string, fields []sqlgen.SalesforceField, res *Result) error {
	rows, err := db.Query(ctx, d.ListColumns(object))
	if err != nil {
		return fmt.Errorf("salesforce %s: reading the table's columns: %w", object, err)
	}
	existing := make([]string, 0, len(rows.Rows))
	for _, r := range rows.Rows {
		if len(r) == 0 {
			continue
		}
		switch v := r[0].(type) {
		case string:
			existing = append(existing, v)
		case []byte:
			existing = append(existing, string(v))
		default:
			existing = append(existing, fmt.Sprint(v))
		}
	}
	if len(existing) == 0 {
		// CREATE … IF NOT EXISTS both: a concurrent first sync of another object is harmless.
		if err := db.Exec(ctx, d.CreateSalesforceSchema(), d.CreateObjectTable(object, fields)); err != nil {
			return fmt.Errorf("salesforce %s: creating the table: %w", object, err)
		}
		res.TableCreated = true
		return nil
	}
	if stmts := d.AddColumns(object, existing, fields); len(stmts) > 0 {
		if err := db.Exec(ctx, stmts...); err != nil {
			return fmt.Errorf("salesforce %s: adding columns for new fields: %w", object, err)
		}
		res.ColumnsAdded = len(stmts)
	}
	return nil
}

// pageFields are the fields of the table a page's records carry: a query started before a
// field was added (and resumed after) does not select it, and its pages must leave that
// column alone rather than set it to NULL.
func pageFields(fields []sqlgen.SalesforceField, recs []Record) []sqlgen.SalesforceField {
	if len(recs) == 0 {
		return fields
	}
	out := make([]sqlgen.SalesforceField, 0, len(fields))
	for _, f := range fields {
		if _, ok := recs[0][f.Name]; ok || strings.EqualFold(f.Name, "Id") || strings.EqualFold(f.Name, "IsDeleted") {
			out = append(out, f)
		}
	}
	return out
}

func records(recs []Record) []map[string]any {
	out := make([]map[string]any, len(recs))
	for i, r := range recs {
		out[i] = r
	}
	return out
}

// locatorExpired reports whether err is Salesforce's answer to a nextRecordsUrl it no longer
// knows.
func locatorExpired(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeInvalidQueryLocator
}

// objectError names object in a Salesforce error that does not (QueryMore's do not).
func objectError(object string, err error) error {
	if e, ok := err.(*Error); ok && e.Object == "" {
		cp := *e
		cp.Object = object
		return &cp
	}
	return err
}
