// Package sqlgen writes every statement Reverse ETL runs in a warehouse, for each dialect, in
// one place: the model run inside a CTE, the snapshot with each record's checksum, the diff
// against what the mapping last synced (kept in the warehouse's __unify_retl schema, as
// Segment does), the pages of changes and the state updates after each page.
//
// The diff is computed in the warehouse so a sync moves only added, updated and deleted records
// and nothing per record is stored on our side. The checksum is an MD5 over each column's
// text with its length in front (so "a","bc" and "ab","c" differ, and NULL differs from an
// empty string), written with functions every dialect has: Redshift has no row_to_json, and
// BigQuery's MD5 returns bytes.
package sqlgen

import (
	"fmt"
	"strings"
)

// Schema is the warehouse schema (BigQuery: dataset) Reverse ETL owns; the connection needs
// write access to it.
const Schema = "__unify_retl"

// Columns of the snapshot and diff tables that are ours, not the model's. Models may not use
// names starting with ReservedPrefix.
const (
	ReservedPrefix = "__unify_"
	ColID          = "__unify_id"
	ColChecksum    = "__unify_checksum"
	ColSeq         = "__unify_seq"
	ColOp          = "__unify_op"
	ColIdentifiers = "__unify_identifiers" // the identifier values last synced, to address a deleted record
)

// Diff operations, as stored in ColOp.
const (
	OpAdd    = "a"
	OpUpdate = "u"
	OpDelete = "d"
)

// MaxAttempts is how many syncs in a row a failing record is tried before it is left until it
// changes.
const MaxAttempts = 5

// Dialect is one warehouse's SQL.
type Dialect struct {
	Name string
	// quote returns an identifier quoted.
	quote func(string) string
	// text is the type a value is cast to for the checksum and ids.
	text string
	// integer is the type of a counter column.
	integer string
	// md5Hex wraps a text expression into its MD5 as 32 lowercase hex digits.
	md5Hex func(string) string
	// length is the text length function.
	length string
	// createWork starts a CREATE for tables we rebuild each sync (no crash recovery needed).
	createWork string
	// literal quotes a string literal.
	literal func(string) string
	// upsertOnConflict: Postgres's INSERT … ON CONFLICT; every other dialect uses MERGE.
	upsertOnConflict bool
}

// Dialects by source type.
var (
	Postgres = Dialect{
		Name: "postgres", quote: doubleQuote, text: "TEXT", integer: "INTEGER",
		md5Hex: func(e string) string { return "MD5(" + e + ")" }, length: "LENGTH",
		createWork: "CREATE UNLOGGED TABLE", literal: standardLiteral, upsertOnConflict: true,
	}
	// Redshift speaks Postgres's wire protocol but has no row_to_json, no UNLOGGED tables and
	// a VARCHAR of 256 bytes unless told otherwise.
	Redshift = Dialect{
		Name: "redshift", quote: doubleQuote, text: "VARCHAR(65535)", integer: "INTEGER",
		md5Hex: func(e string) string { return "MD5(" + e + ")" }, length: "LEN",
		createWork: "CREATE TABLE", literal: standardLiteral,
	}
	BigQuery = Dialect{
		Name: "bigquery", quote: backQuote, text: "STRING", integer: "INT64",
		md5Hex: func(e string) string { return "TO_HEX(MD5(" + e + "))" }, length: "LENGTH",
		createWork: "CREATE TABLE", literal: backslashLiteral,
	}
	// Snowflake folds unquoted names to upper case; every name here is quoted, so the case
	// written is the case kept. Transient tables skip Fail-safe storage for work tables.
	Snowflake = Dialect{
		Name: "snowflake", quote: doubleQuote, text: "VARCHAR", integer: "INTEGER",
		md5Hex: func(e string) string { return "MD5(" + e + ")" }, length: "LENGTH",
		createWork: "CREATE TRANSIENT TABLE", literal: backslashLiteral,
	}
)

// For returns the dialect of a warehouse source type.
func For(sourceType string) (Dialect, bool) {
	switch sourceType {
	case "postgres":
		return Postgres, true
	case "redshift":
		return Redshift, true
	case "bigquery":
		return BigQuery, true
	case "snowflake":
		return Snowflake, true
	}
	return Dialect{}, false
}

func doubleQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func backQuote(s string) string   { return "`" + strings.ReplaceAll(s, "`", "\\`") + "`" }

// standardLiteral: standard SQL strings, where only the quote is doubled (Postgres with
// standard_conforming_strings, its default since 9.1; Redshift).
func standardLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// backslashLiteral: BigQuery and Snowflake treat a backslash in a string as an escape.
func backslashLiteral(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// Table names a table in our schema.
func (d Dialect) Table(name string) string { return d.quote(Schema) + "." + d.quote(name) }

// StateTable holds a mapping's synced records; WorkTable a sync's snapshot or diff.
func StateTable(mappingID string) string    { return "state_" + mappingID }
func WorkTable(syncID, kind string) string  { return kind + "_" + syncID }
func (d Dialect) Quote(ident string) string { return d.quote(ident) }
func (d Dialect) Literal(s string) string   { return d.literal(s) }

// model wraps a model's SELECT as the CTE every statement reads.
func model(sql string) string { return "WITH " + ColModel + " AS (\n" + sql + "\n)\n" }

// ModelOffset is how many characters come before a model's text in every statement that
// runs it: a position the warehouse reports, minus this, is a position in the model.
func ModelOffset() int { return len(model("")) - len("\n)\n") }

// ColModel is the CTE's name.
const ColModel = "__unify_model"

// Preview selects the first limit records of a model.
func (d Dialect) Preview(sql string, limit int) string {
	return model(sql) + fmt.Sprintf("SELECT * FROM %s LIMIT %d", ColModel, limit)
}

// CreateSchema makes our schema when it is missing.
func (d Dialect) CreateSchema() string {
	return "CREATE SCHEMA IF NOT EXISTS " + d.quote(Schema)
}

// CreateState makes a mapping's state table when it is missing: per record its id, the
// checksum last synced (NULL while it never synced), the identifier values sent (to address
// it once deleted), and its failures: the checksum that failed, in which sync, how often.
func (d Dialect) CreateState(mappingID string) string {
	key := ""
	if d.upsertOnConflict { // ON CONFLICT needs the unique index; the others do not enforce keys
		key = ", PRIMARY KEY (record_id)"
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (record_id %s NOT NULL, checksum %s, identifiers %s, failed_checksum %s, failed_sync %s, attempts %s NOT NULL%s)",
		d.Table(StateTable(mappingID)), d.text, d.text, d.text, d.text, d.text, d.integer, key)
}

// DropTable drops one of our tables if it exists.
func (d Dialect) DropTable(name string) string {
	return "DROP TABLE IF EXISTS " + d.Table(name)
}

// checksum is the expression of a record's checksum over columns (of alias m).
func (d Dialect) checksum(columns []string) string {
	parts := make([]string, len(columns))
	for i, c := range columns {
		v := "CAST(m." + d.quote(c) + " AS " + d.text + ")"
		// NULL → "-"; otherwise "<length>:<text>", so no two different rows join to one text.
		parts[i] = "COALESCE(CAST(" + d.length + "(" + v + ") AS " + d.text + ") || ':' || " + v + ", '-')"
	}
	if len(parts) == 0 {
		return d.md5Hex("''")
	}
	return d.md5Hex(strings.Join(parts, " || '|' || "))
}

// Snapshot materialises the model: every record's id as text, its checksum, and its columns.
func (d Dialect) Snapshot(table, sql, idColumn string, columns []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s AS\n%sSELECT CAST(m.%s AS %s) AS %s, %s AS %s",
		d.createWork, d.Table(table), model(sql), d.quote(idColumn), d.text, ColID, d.checksum(columns), ColChecksum)
	for _, c := range columns {
		b.WriteString(", m." + d.quote(c))
	}
	b.WriteString(" FROM " + ColModel + " m")
	return b.String()
}

// FirstBadID returns, of a snapshot, a record id that is NULL or appears more than once (at
// most one row: the id, and how many times it appears).
func (d Dialect) FirstBadID(snapshot string) string {
	return fmt.Sprintf("SELECT %s, COUNT(*) FROM %s GROUP BY %s HAVING COUNT(*) > 1 OR %s IS NULL LIMIT 1",
		ColID, d.Table(snapshot), ColID, ColID)
}

// Diff builds a sync's diff table from its snapshot and the mapping's state: one row per
// record added, updated or deleted since the last successful sync, numbered (ColSeq, from 1)
// in id order for paging. A record whose last MaxAttempts tries of this same checksum failed
// is left out until it changes; a failed record is otherwise tried again.
func (d Dialect) Diff(diff, snapshot, state string, columns []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s AS\nSELECT ROW_NUMBER() OVER (ORDER BY COALESCE(s.%s, st.record_id)) AS %s, COALESCE(s.%s, st.record_id) AS %s,\n",
		d.createWork, d.Table(diff), ColID, ColSeq, ColID, ColID)
	fmt.Fprintf(&b, "CASE WHEN s.%s IS NULL THEN '%s' WHEN st.record_id IS NULL OR st.checksum IS NULL THEN '%s' ELSE '%s' END AS %s,\n",
		ColID, OpDelete, OpAdd, OpUpdate, ColOp)
	fmt.Fprintf(&b, "s.%s AS %s, st.identifiers AS %s", ColChecksum, ColChecksum, ColIdentifiers)
	for _, c := range columns {
		b.WriteString(", s." + d.quote(c))
	}
	fmt.Fprintf(&b, "\nFROM %s s FULL OUTER JOIN %s st ON st.record_id = s.%s\n", d.Table(snapshot), d.Table(state), ColID)
	// Deleted: only a record that was synced (or tried) is deleted. Changed: the checksum differs
	// from the one synced, unless that checksum already failed MaxAttempts times.
	fmt.Fprintf(&b, "WHERE (s.%s IS NULL AND st.checksum IS NOT NULL)\n   OR (s.%s IS NOT NULL AND (st.checksum IS NULL OR st.checksum <> s.%s)\n       AND NOT (st.failed_checksum IS NOT NULL AND st.failed_checksum = s.%s AND st.attempts >= %d))",
		ColID, ColID, ColChecksum, ColChecksum, MaxAttempts)
	return b.String()
}

// Counts counts a diff's rows per operation (two columns: op, count).
func (d Dialect) Counts(diff string) string {
	return fmt.Sprintf("SELECT %s, COUNT(*) FROM %s GROUP BY %s", ColOp, d.Table(diff), ColOp)
}

// Page selects the diff rows with ColSeq in (after, after+size], in order: ColSeq, ColID,
// ColOp, ColChecksum, ColIdentifiers, then the model's columns.
func (d Dialect) Page(diff string, columns []string, after, size int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s, %s, %s, %s, %s", ColSeq, ColID, ColOp, ColChecksum, ColIdentifiers)
	for _, c := range columns {
		b.WriteString(", " + d.quote(c))
	}
	fmt.Fprintf(&b, " FROM %s WHERE %s > %d AND %s <= %d ORDER BY %s", d.Table(diff), ColSeq, after, ColSeq, after+size, ColSeq)
	return b.String()
}

// Outcome is what became of one record of a page.
type Outcome struct {
	RecordID    string
	Op          string // OpAdd, OpUpdate, OpDelete
	Checksum    string // the record's checksum in this sync (empty for a delete)
	Identifiers string // the identifier values sent, as JSON
	Failed      bool
}

// RecordOutcomes returns the statements that write a page's outcomes into the mapping's
// state: a synced record keeps its checksum and identifiers, a deleted one leaves, a failed
// one counts the attempt (once per sync, so a page done again after a crash counts once).
// The statements are idempotent; run them in one transaction where the warehouse has them.
func (d Dialect) RecordOutcomes(state, syncID string, outs []Outcome) []string {
	var synced, failed [][]string
	var deleted []string
	for _, o := range outs {
		switch {
		case o.Failed:
			failed = append(failed, []string{o.RecordID, o.Checksum})
		case o.Op == OpDelete:
			deleted = append(deleted, d.literal(o.RecordID))
		default:
			synced = append(synced, []string{o.RecordID, o.Checksum, o.Identifiers})
		}
	}
	t := d.Table(state)
	sync := d.literal(syncID)
	var stmts []string
	if len(deleted) > 0 {
		stmts = append(stmts, "DELETE FROM "+t+" WHERE record_id IN ("+strings.Join(deleted, ", ")+")")
	}
	if len(synced) > 0 {
		v := d.rows([]string{"record_id", "checksum", "identifiers"}, synced)
		if d.upsertOnConflict {
			stmts = append(stmts, "INSERT INTO "+t+" AS st (record_id, checksum, identifiers, attempts) SELECT record_id, checksum, identifiers, 0 FROM "+v+
				" ON CONFLICT (record_id) DO UPDATE SET checksum = EXCLUDED.checksum, identifiers = EXCLUDED.identifiers, failed_checksum = NULL, failed_sync = NULL, attempts = 0")
		} else {
			stmts = append(stmts, "MERGE INTO "+t+" st USING "+v+" ON st.record_id = v.record_id"+
				" WHEN MATCHED THEN UPDATE SET checksum = v.checksum, identifiers = v.identifiers, failed_checksum = NULL, failed_sync = NULL, attempts = 0"+
				" WHEN NOT MATCHED THEN INSERT (record_id, checksum, identifiers, attempts) VALUES (v.record_id, v.checksum, v.identifiers, 0)")
		}
	}
	if len(failed) > 0 {
		v := d.rows([]string{"record_id", "checksum"}, failed)
		// The same checksum failing in another sync counts one more attempt; a new checksum
		// starts again at 1; the same sync (a page done again) counts nothing.
		attempts := func(st, checksum string) string {
			return "CASE WHEN " + st + ".failed_sync = " + sync + " THEN " + st + ".attempts WHEN " + st + ".failed_checksum = " + checksum + " THEN " + st + ".attempts + 1 ELSE 1 END"
		}
		if d.upsertOnConflict {
			stmts = append(stmts, "INSERT INTO "+t+" AS st (record_id, failed_checksum, failed_sync, attempts) SELECT record_id, checksum, "+sync+", 1 FROM "+v+
				" ON CONFLICT (record_id) DO UPDATE SET attempts = "+attempts("st", "EXCLUDED.failed_checksum")+", failed_checksum = EXCLUDED.failed_checksum, failed_sync = EXCLUDED.failed_sync")
		} else {
			stmts = append(stmts, "MERGE INTO "+t+" st USING "+v+" ON st.record_id = v.record_id"+
				" WHEN MATCHED THEN UPDATE SET attempts = "+attempts("st", "v.checksum")+", failed_checksum = v.checksum, failed_sync = "+sync+
				" WHEN NOT MATCHED THEN INSERT (record_id, failed_checksum, failed_sync, attempts) VALUES (v.record_id, v.checksum, "+sync+", 1)")
		}
	}
	return stmts
}

// rows is a derived table v of string rows: a SELECT per row joined with UNION ALL, which
// every dialect reads (BigQuery has no VALUES list).
func (d Dialect) rows(names []string, vals [][]string) string {
	sel := make([]string, len(vals))
	for i, row := range vals {
		cols := make([]string, len(row))
		for j, v := range row {
			cols[j] = "CAST(" + d.literal(v) + " AS " + d.text + ") AS " + names[j]
		}
		sel[i] = "SELECT " + strings.Join(cols, ", ")
	}
	return "(" + strings.Join(sel, " UNION ALL ") + ") v"
}
