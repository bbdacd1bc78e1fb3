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
	// upsertOnConflict: Postgres's INSERT … ON CONFLICT (which also serves PostgreSQL before
	// 15, which has no MERGE). noMerge: Redshift, whose MERGE takes no subquery as its
	// source, updates then inserts. The others MERGE.
	upsertOnConflict bool
	noMerge          bool
	// recordHash: the checksum is PostgreSQL's hash_record_extended of the row (14+), sorted
	// under the duplicate count so parallel workers compute it (see checksum and Diff).
	recordHash bool
	// idCollation follows the id's text cast and the state's record_id: "C" on PostgreSQL
	// compares bytes, so the merge join sorts without the database's locale rules.
	idCollation string
	// coveringState: the state's primary key index carries what the diff compares, so the diff
	// reads the state index-only and fills in the identifiers of its few rows afterwards
	// (FillIdentifiers) instead of reading every state row's.
	coveringState bool
	// fence ends a subquery the planner must not inline ("" where none is needed).
	fence string
}

// Dialects by source type.
var (
	Postgres = Dialect{
		Name: "postgres", quote: doubleQuote, text: "TEXT", integer: "INTEGER",
		md5Hex: func(e string) string { return "MD5(" + e + ")" }, length: "LENGTH",
		createWork: "CREATE UNLOGGED TABLE", literal: standardLiteral, upsertOnConflict: true,
		recordHash: true, idCollation: ` COLLATE "C"`, coveringState: true, fence: " OFFSET 0",
	}
	// Redshift speaks Postgres's wire protocol but has no row_to_json, no UNLOGGED tables and
	// a VARCHAR of 256 bytes unless told otherwise.
	Redshift = Dialect{
		Name: "redshift", quote: doubleQuote, text: "VARCHAR(65535)", integer: "INTEGER",
		md5Hex: func(e string) string { return "MD5(" + e + ")" }, length: "LEN",
		createWork: "CREATE TABLE", literal: redshiftLiteral, noMerge: true,
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

// backQuote: BigQuery's quoted identifiers take the escape sequences of its strings, so a
// backslash is escaped as well as the backtick (and a newline, as in backslashLiteral).
func backQuote(s string) string { return "`" + backQuoteEscaper.Replace(s) + "`" }

var backQuoteEscaper = strings.NewReplacer(`\`, `\\`, "`", "\\`", "\n", `\n`, "\r", `\r`)

// standardLiteral: standard SQL strings, where only the quote is doubled (Postgres with
// standard_conforming_strings, its default since 9.1).
func standardLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// redshiftLiteral: Redshift, on PostgreSQL 8.0's grammar, reads a backslash in a plain string
// as an escape (its QUOTE_LITERAL doubles backslashes as well as quotes), so both are doubled.
func redshiftLiteral(s string) string { return "'" + redshiftEscaper.Replace(s) + "'" }

var redshiftEscaper = strings.NewReplacer(`'`, `''`, `\`, `\\`)

// backslashLiteral: BigQuery and Snowflake treat a backslash in a string as an escape, and
// BigQuery's quoted strings cannot hold a newline, so line breaks are written as escapes.
func backslashLiteral(s string) string { return "'" + backslashEscaper.Replace(s) + "'" }

var backslashEscaper = strings.NewReplacer(`\`, `\\`, "'", `\'`, "\n", `\n`, "\r", `\r`)

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
	switch {
	case d.coveringState: // the diff reads the index alone (see Diff)
		key = ", PRIMARY KEY (record_id) INCLUDE (" + strings.Join(stateCompared, ", ") + ")"
	case d.upsertOnConflict: // ON CONFLICT needs the unique index; the others do not enforce keys
		key = ", PRIMARY KEY (record_id)"
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (record_id %s%s NOT NULL, checksum %s, identifiers %s, failed_checksum %s, failed_sync %s, attempts %s NOT NULL%s)",
		d.Table(StateTable(mappingID)), d.text, d.idCollation, d.text, d.text, d.text, d.text, d.integer, key)
}

// stateCompared are the state's columns the diff compares with the model's rows.
var stateCompared = []string{"checksum", "failed_checksum", "attempts"}

// DropTable drops one of our tables if it exists.
func (d Dialect) DropTable(name string) string {
	return "DROP TABLE IF EXISTS " + d.Table(name)
}

// Column is a model's column, its type named as the warehouse's driver names it ("" when
// unknown).
type Column struct{ Name, Type string }

// hashable are the PostgreSQL types (as pgx names them) that have an extended hash function,
// so hash_record_extended takes them as they are; any other column is hashed as its text.
var hashable = map[string]bool{
	"bool": true, "int2": true, "int4": true, "int8": true, "float4": true, "float8": true, "numeric": true,
	"text": true, "varchar": true, "bpchar": true, "name": true, "bytea": true, "uuid": true, "jsonb": true,
	"date": true, "time": true, "timestamp": true, "timestamptz": true, "interval": true, "oid": true,
}

// checksum is the expression of a record's checksum over columns (of alias m).
func (d Dialect) checksum(columns []Column) string {
	if d.recordHash && len(columns) > 0 {
		// hash_record_extended (PostgreSQL 14+) hashes each column with its type's own hash
		// function to 64 bits: a million rows of seven columns in 0.5 s of CPU, where hashing
		// the row's text took 0.9 s and MD5 1.7 s. Values the type calls equal hash alike
		// (numeric 1.0 and 1.00), which is no change to a profile either. A change goes unseen
		// only if the new row's hash equals the old one's: 1 in 2^64.
		cols := make([]string, len(columns))
		for i, c := range columns {
			cols[i] = "m." + d.quote(c.Name)
			if !hashable[c.Type] {
				cols[i] = "CAST(" + cols[i] + " AS " + d.text + ")"
			}
		}
		return "CAST(hash_record_extended(ROW(" + strings.Join(cols, ", ") + "), 0) AS " + d.text + ")"
	}
	parts := make([]string, len(columns))
	for i, c := range columns {
		v := "CAST(m." + d.quote(c.Name) + " AS " + d.text + ")"
		// NULL → "-"; otherwise "<length>:<text>", so no two different rows join to one text.
		parts[i] = "COALESCE(CAST(" + d.length + "(" + v + ") AS " + d.text + ") || ':' || " + v + ", '-')"
	}
	if len(parts) == 0 {
		return d.md5Hex("''")
	}
	return d.md5Hex(strings.Join(parts, " || '|' || "))
}

// Diff runs the model and builds the sync's diff table against the mapping's state in one
// pass (no snapshot of the whole model is written): one row per record added, updated or
// deleted since the last successful sync, numbered (ColSeq, from 1) in id order for paging,
// with its id as text, its checksum and its columns. A record whose last MaxAttempts tries of
// this same checksum failed is left out until it changes; a failed record is otherwise tried
// again. A model row with a NULL id comes out as added with a NULL id (see FirstBadID). Where
// the state is covering, the identifiers last sent come with FillIdentifiers.
func (d Dialect) Diff(diff, sql, idColumn, state string, columns []Column) string {
	var b strings.Builder
	id := "CAST(m." + d.quote(idColumn) + " AS " + d.text + ")" + d.idCollation
	checksum := d.checksum(columns)
	fmt.Fprintf(&b, "%s %s AS\n%s, %s AS (SELECT %s AS %s, %s AS %s",
		d.createWork, d.Table(diff), strings.TrimSuffix(model(sql), "\n"), colSource, id, ColID, checksum, ColChecksum)
	// How many model rows share the id: a duplicate goes into the diff even where one of its
	// rows is the record as synced, so FirstBadID sees it.
	order := ""
	if d.recordHash {
		// Sorting by the checksum too makes PostgreSQL compute it below the sort, in its
		// parallel workers, instead of after it in one process (1.5 s instead of 2 s on a
		// million rows); the whole partition still counts.
		order = " ORDER BY " + checksum + " ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
	}
	fmt.Fprintf(&b, ", COUNT(*) OVER (PARTITION BY %s%s) AS %s", id, order, colCount)
	for _, c := range columns {
		b.WriteString(", m." + d.quote(c.Name))
	}
	// OFFSET 0 keeps PostgreSQL from inlining the CTE into the join, which would compute the
	// checksum once for every mention of it below.
	fmt.Fprintf(&b, " FROM %s m%s)\n", ColModel, d.fence)
	// A model row is present when its checksum is (never NULL: see checksum); its id may be.
	fmt.Fprintf(&b, "SELECT ROW_NUMBER() OVER (ORDER BY COALESCE(s.%s, st.record_id)) AS %s, COALESCE(s.%s, st.record_id) AS %s,\n",
		ColID, ColSeq, ColID, ColID)
	fmt.Fprintf(&b, "CASE WHEN s.%s IS NULL THEN '%s' WHEN st.record_id IS NULL OR st.checksum IS NULL THEN '%s' ELSE '%s' END AS %s,\n",
		ColChecksum, OpDelete, OpAdd, OpUpdate, ColOp)
	identifiers, from := "st.identifiers", d.Table(state)
	if d.coveringState {
		identifiers = "CAST(NULL AS " + d.text + ")"
		from = "(SELECT record_id, " + strings.Join(stateCompared, ", ") + " FROM " + from + ")"
	}
	fmt.Fprintf(&b, "s.%s AS %s, %s AS %s", ColChecksum, ColChecksum, identifiers, ColIdentifiers)
	for _, c := range columns {
		b.WriteString(", s." + d.quote(c.Name))
	}
	fmt.Fprintf(&b, "\nFROM %s s FULL OUTER JOIN %s st ON st.record_id = s.%s\n", colSource, from, ColID)
	// Deleted: only a record that was synced (or tried) is deleted. Changed: the checksum differs
	// from the one synced, unless that checksum already failed MaxAttempts times.
	fmt.Fprintf(&b, "WHERE (s.%s IS NULL AND st.checksum IS NOT NULL)\n   OR (s.%s IS NOT NULL AND (st.checksum IS NULL OR st.checksum <> s.%s)\n       AND NOT (st.failed_checksum IS NOT NULL AND st.failed_checksum = s.%s AND st.attempts >= %d))\n   OR s.%s > 1",
		ColChecksum, ColChecksum, ColChecksum, ColChecksum, MaxAttempts, colCount)
	return b.String()
}

// FillIdentifiers returns the statement that copies into a diff the identifiers last sent of
// each record it updates or deletes, where the state is covering (see Diff); "" elsewhere. They
// are kept in the diff, not read per page, so a page done again after a crash addresses a
// deleted record as the first try did.
func (d Dialect) FillIdentifiers(diff, state string) string {
	if !d.coveringState {
		return ""
	}
	return fmt.Sprintf("UPDATE %s AS d SET %s = st.identifiers FROM %s st WHERE st.record_id = d.%s AND d.%s <> '%s'",
		d.Table(diff), ColIdentifiers, d.Table(state), ColID, ColOp, OpAdd)
}

// Maintain returns the statement to run on a mapping's state after a sync that wrote it, on
// its own (outside a transaction); "" where none is needed. PostgreSQL's VACUUM marks the
// rewritten pages all-visible again, so the next diff reads the state's index alone.
func (d Dialect) Maintain(state string) string {
	if !d.coveringState {
		return ""
	}
	return "VACUUM " + d.Table(state)
}

// colSource names the CTE of the model's rows with their ids and checksums; colCount its
// column of how many rows share each id.
const (
	colSource = "__unify_source"
	colCount  = "__unify_count"
)

// FirstBadID returns, of a diff, a record id that is NULL or appears more than once among the
// records to add or update (at most one row: the id, and how many times it appears). Every
// row of an id the model has more than once is in the diff (as added or updated), even one
// the same as the record already synced, so a duplicate always shows here.
func (d Dialect) FirstBadID(diff string) string {
	return fmt.Sprintf("SELECT %s, COUNT(*) FROM %s WHERE %s <> '%s' GROUP BY %s HAVING COUNT(*) > 1 OR %s IS NULL LIMIT 1",
		ColID, d.Table(diff), ColOp, OpDelete, ColID, ColID)
}

// IndexDiff returns the statement that indexes a diff by ColSeq, so each page reads its rows
// instead of the whole diff; "" where the warehouse has no indexes (the columnar ones scan by
// zone maps or partitions instead).
func (d Dialect) IndexDiff(diff string) string {
	if !d.upsertOnConflict { // only PostgreSQL has B-tree indexes here
		return ""
	}
	return fmt.Sprintf("CREATE INDEX ON %s (%s)", d.Table(diff), ColSeq)
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

// CreateOutcomes makes a sync's outcomes table: each page's outcomes are inserted there, then
// written into the state with set-based statements (a 5,000-branch UNION ALL or MERGE source
// list takes PostgreSQL seconds to plan; Redshift's MERGE reads no subquery).
func (d Dialect) CreateOutcomes(table string) string {
	return fmt.Sprintf("%s %s (record_id %s NOT NULL, op %s NOT NULL, checksum %s, identifiers %s, failed %s NOT NULL)",
		d.createWork, d.Table(table), d.text, d.text, d.text, d.text, d.integer)
}

// outcomeRowsPerInsert bounds one INSERT … VALUES statement.
const outcomeRowsPerInsert = 1000

// RecordOutcomes returns the statements that write a page's outcomes into the mapping's
// state, through the sync's outcomes table: a synced record keeps its checksum and
// identifiers, a deleted one leaves, a failed one counts the attempt (once per sync, so a page
// done again after a crash counts once). The statements are idempotent; run them in one
// transaction where the warehouse has them.
func (d Dialect) RecordOutcomes(state, outcomes, syncID string, outs []Outcome) []string {
	if len(outs) == 0 {
		return nil
	}
	t, o := d.Table(state), d.Table(outcomes)
	sync := d.literal(syncID)
	stmts := []string{"DELETE FROM " + o + " WHERE TRUE"} // BigQuery's DELETE must have a WHERE
	for start := 0; start < len(outs); start += outcomeRowsPerInsert {
		var b strings.Builder
		b.WriteString("INSERT INTO " + o + " (record_id, op, checksum, identifiers, failed) VALUES ")
		for i, out := range outs[start:min(start+outcomeRowsPerInsert, len(outs))] {
			if i > 0 {
				b.WriteString(", ")
			}
			failed := "0"
			if out.Failed {
				failed = "1"
			}
			fmt.Fprintf(&b, "(%s, %s, %s, %s, %s)", d.literal(out.RecordID), d.literal(out.Op), d.literal(out.Checksum), d.literal(out.Identifiers), failed)
		}
		stmts = append(stmts, b.String())
	}
	ok := " FROM " + o + " v WHERE v.failed = 0 AND v.op <> '" + OpDelete + "'"
	bad := " FROM " + o + " v WHERE v.failed = 1"
	stmts = append(stmts, "DELETE FROM "+t+" WHERE record_id IN (SELECT record_id FROM "+o+" WHERE failed = 0 AND op = '"+OpDelete+"')")
	// The same checksum failing in another sync counts one more attempt; a new checksum
	// starts again at 1; the same sync (a page done again) counts nothing.
	attempts := func(st, checksum string) string {
		return "CASE WHEN " + st + ".failed_sync = " + sync + " THEN " + st + ".attempts WHEN " + st + ".failed_checksum = " + checksum + " THEN " + st + ".attempts + 1 ELSE 1 END"
	}
	switch {
	case d.upsertOnConflict:
		stmts = append(stmts,
			"INSERT INTO "+t+" AS st (record_id, checksum, identifiers, attempts) SELECT v.record_id, v.checksum, v.identifiers, 0"+ok+
				" ON CONFLICT (record_id) DO UPDATE SET checksum = EXCLUDED.checksum, identifiers = EXCLUDED.identifiers, failed_checksum = NULL, failed_sync = NULL, attempts = 0",
			"INSERT INTO "+t+" AS st (record_id, failed_checksum, failed_sync, attempts) SELECT v.record_id, v.checksum, "+sync+", 1"+bad+
				" ON CONFLICT (record_id) DO UPDATE SET attempts = "+attempts("st", "EXCLUDED.failed_checksum")+", failed_checksum = EXCLUDED.failed_checksum, failed_sync = EXCLUDED.failed_sync")
	case d.noMerge:
		stmts = append(stmts,
			"UPDATE "+t+" AS st SET checksum = v.checksum, identifiers = v.identifiers, failed_checksum = NULL, failed_sync = NULL, attempts = 0"+ok+" AND st.record_id = v.record_id",
			"INSERT INTO "+t+" (record_id, checksum, identifiers, attempts) SELECT v.record_id, v.checksum, v.identifiers, 0"+ok+
				" AND v.record_id NOT IN (SELECT record_id FROM "+t+")",
			"UPDATE "+t+" AS st SET attempts = "+attempts("st", "v.checksum")+", failed_checksum = v.checksum, failed_sync = "+sync+bad+" AND st.record_id = v.record_id",
			"INSERT INTO "+t+" (record_id, failed_checksum, failed_sync, attempts) SELECT v.record_id, v.checksum, "+sync+", 1"+bad+
				" AND v.record_id NOT IN (SELECT record_id FROM "+t+")")
	default:
		stmts = append(stmts,
			"MERGE INTO "+t+" st USING (SELECT v.record_id, v.checksum, v.identifiers"+ok+") v ON st.record_id = v.record_id"+
				" WHEN MATCHED THEN UPDATE SET checksum = v.checksum, identifiers = v.identifiers, failed_checksum = NULL, failed_sync = NULL, attempts = 0"+
				" WHEN NOT MATCHED THEN INSERT (record_id, checksum, identifiers, attempts) VALUES (v.record_id, v.checksum, v.identifiers, 0)",
			"MERGE INTO "+t+" st USING (SELECT v.record_id, v.checksum"+bad+") v ON st.record_id = v.record_id"+
				" WHEN MATCHED THEN UPDATE SET attempts = "+attempts("st", "v.checksum")+", failed_checksum = v.checksum, failed_sync = "+sync+
				" WHEN NOT MATCHED THEN INSERT (record_id, failed_checksum, failed_sync, attempts) VALUES (v.record_id, v.checksum, "+sync+", 1)")
	}
	return stmts
}
