package sqlgen_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/unifiedprofiles/up/infra/pgtest"
	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
)

// dialects is every dialect, in the order the per-dialect tables below list them.
var dialects = []sqlgen.Dialect{sqlgen.Postgres, sqlgen.Redshift, sqlgen.BigQuery, sqlgen.Snowflake}

// perDialect pairs each dialect with the text expected of it.
type perDialect struct {
	d    sqlgen.Dialect
	want string
}

// byDialect zips dialects with one expectation each (postgres, redshift, bigquery, snowflake).
func byDialect(pg, rs, bq, sf string) []perDialect {
	return []perDialect{{sqlgen.Postgres, pg}, {sqlgen.Redshift, rs}, {sqlgen.BigQuery, bq}, {sqlgen.Snowflake, sf}}
}

// outcomes is a small page's outcomes: one synced, one deleted, one failed.
var outcomes = []sqlgen.Outcome{
	{RecordID: "r1", Op: sqlgen.OpAdd, Checksum: "c1", Identifiers: `{"email":"a"}`},
	{RecordID: "r2", Op: sqlgen.OpDelete},
	{RecordID: "r3", Op: sqlgen.OpUpdate, Checksum: "c3", Failed: true},
}

// every returns every statement a dialect writes for one small mapping, with columns cols.
func every(d sqlgen.Dialect, cols []string) []string {
	return append([]string{
		d.Preview("SELECT 1 AS id", 10),
		d.CreateSchema(),
		d.CreateState("m1"),
		d.DropTable("diff_s1"),
		d.Diff("diff_s1", "SELECT 1 AS id", "id", "state_m1", columns(cols...)),
		d.FillIdentifiers("diff_s1", "state_m1"), // "" but for Postgres
		d.IndexDiff("diff_s1"),                   // "" but for Postgres
		d.FirstBadID("diff_s1"),
		d.Counts("diff_s1"),
		d.Page("diff_s1", cols, 0, 100),
		d.CreateOutcomes("out_s1"),
		d.Maintain("state_m1"), // "" but for Postgres
	}, d.RecordOutcomes("state_m1", "out_s1", "s1", outcomes)...)
}

// columns names a model's columns, their types unknown.
func columns(names ...string) []sqlgen.Column {
	out := make([]sqlgen.Column, len(names))
	for i, n := range names {
		out[i] = sqlgen.Column{Name: n}
	}
	return out
}

func TestFor(t *testing.T) {
	t.Parallel()
	for _, want := range dialects {
		got, ok := sqlgen.For(want.Name)
		if !ok || got.Name != want.Name || got.CreateSchema() != want.CreateSchema() {
			t.Errorf("For(%q) = %q, %v", want.Name, got.Name, ok)
		}
	}
	for _, name := range []string{"", "mysql", "Postgres", "redshift "} {
		if _, ok := sqlgen.For(name); ok {
			t.Errorf("For(%q) found a dialect", name)
		}
	}
}

// Names that are ours: a model may not use them, and each statement refers to them unquoted.
func TestNames(t *testing.T) {
	t.Parallel()
	for _, c := range []string{sqlgen.ColID, sqlgen.ColChecksum, sqlgen.ColSeq, sqlgen.ColOp, sqlgen.ColIdentifiers, sqlgen.ColModel} {
		if !strings.HasPrefix(c, sqlgen.ReservedPrefix) {
			t.Errorf("%s does not start with %s", c, sqlgen.ReservedPrefix)
		}
	}
	if sqlgen.StateTable("m1") != "state_m1" || sqlgen.WorkTable("s1", "diff") != "diff_s1" || sqlgen.WorkTable("s1", "out") != "out_s1" {
		t.Errorf("StateTable, WorkTable = %s, %s, %s", sqlgen.StateTable("m1"), sqlgen.WorkTable("s1", "diff"), sqlgen.WorkTable("s1", "out"))
	}
	if sqlgen.Schema != "__unify_retl" {
		t.Errorf("Schema = %s", sqlgen.Schema)
	}
}

func TestPreview(t *testing.T) {
	t.Parallel()
	want := "WITH __unify_model AS (\nSELECT 1 AS id -- a comment to the end of the line\n)\nSELECT * FROM __unify_model LIMIT 10"
	for _, d := range dialects {
		if got := d.Preview("SELECT 1 AS id -- a comment to the end of the line", 10); got != want {
			t.Errorf("%s:\n got %q\nwant %q", d.Name, got, want)
		}
	}
}

// A position in Preview's text minus ModelOffset is the position in the model, for a model of
// one line or several.
func TestModelOffset(t *testing.T) {
	t.Parallel()
	if sqlgen.ModelOffset() != len("WITH __unify_model AS (\n") {
		t.Errorf("ModelOffset() = %d", sqlgen.ModelOffset())
	}
	for _, d := range dialects {
		for _, sql := range []string{"SELECT idd FROM t", "SELECT id\nFROM t\nWHERE nope = 1", ""} {
			got := d.Preview(sql, 5)
			if !strings.HasPrefix(got[sqlgen.ModelOffset():], sql+"\n)\n") {
				t.Errorf("%s: Preview(%q)[ModelOffset():] = %q", d.Name, sql, got[sqlgen.ModelOffset():])
			}
		}
	}
}

func TestCreateSchema(t *testing.T) {
	t.Parallel()
	for _, c := range byDialect(
		`CREATE SCHEMA IF NOT EXISTS "__unify_retl"`,
		`CREATE SCHEMA IF NOT EXISTS "__unify_retl"`,
		"CREATE SCHEMA IF NOT EXISTS `__unify_retl`",
		`CREATE SCHEMA IF NOT EXISTS "__unify_retl"`,
	) {
		if got := c.d.CreateSchema(); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.d.Name, got, c.want)
		}
	}
}

// The state table is a permanent table (never UNLOGGED or TRANSIENT: it is what was synced),
// keyed only where ON CONFLICT needs the key: on Postgres, with the columns the diff compares
// in the key's index and the ids in the C collation.
func TestCreateState(t *testing.T) {
	t.Parallel()
	for _, c := range byDialect(
		`CREATE TABLE IF NOT EXISTS "__unify_retl"."state_m1" (record_id TEXT COLLATE "C" NOT NULL, checksum TEXT, identifiers TEXT, failed_checksum TEXT, failed_sync TEXT, attempts INTEGER NOT NULL, `+
			`PRIMARY KEY (record_id) INCLUDE (checksum, failed_checksum, attempts))`,
		`CREATE TABLE IF NOT EXISTS "__unify_retl"."state_m1" (record_id VARCHAR(65535) NOT NULL, checksum VARCHAR(65535), identifiers VARCHAR(65535), failed_checksum VARCHAR(65535), failed_sync VARCHAR(65535), attempts INTEGER NOT NULL)`,
		"CREATE TABLE IF NOT EXISTS `__unify_retl`.`state_m1` (record_id STRING NOT NULL, checksum STRING, identifiers STRING, failed_checksum STRING, failed_sync STRING, attempts INT64 NOT NULL)",
		`CREATE TABLE IF NOT EXISTS "__unify_retl"."state_m1" (record_id VARCHAR NOT NULL, checksum VARCHAR, identifiers VARCHAR, failed_checksum VARCHAR, failed_sync VARCHAR, attempts INTEGER NOT NULL)`,
	) {
		if got := c.d.CreateState("m1"); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.d.Name, got, c.want)
		}
	}
}

func TestDropTable(t *testing.T) {
	t.Parallel()
	for _, c := range byDialect(
		`DROP TABLE IF EXISTS "__unify_retl"."diff_s1"`,
		`DROP TABLE IF EXISTS "__unify_retl"."diff_s1"`,
		"DROP TABLE IF EXISTS `__unify_retl`.`diff_s1`",
		`DROP TABLE IF EXISTS "__unify_retl"."diff_s1"`,
	) {
		if got := c.d.DropTable("diff_s1"); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.d.Name, got, c.want)
		}
	}
}

// FirstBadID reads the diff (not the model, which Diff runs once): among the rows to add or
// update, an id that is NULL or there more than once.
func TestFirstBadID(t *testing.T) {
	t.Parallel()
	const tail = " WHERE __unify_op <> 'd' GROUP BY __unify_id HAVING COUNT(*) > 1 OR __unify_id IS NULL LIMIT 1"
	for _, c := range byDialect(
		`SELECT __unify_id, COUNT(*) FROM "__unify_retl"."diff_s1"`+tail,
		`SELECT __unify_id, COUNT(*) FROM "__unify_retl"."diff_s1"`+tail,
		"SELECT __unify_id, COUNT(*) FROM `__unify_retl`.`diff_s1`"+tail,
		`SELECT __unify_id, COUNT(*) FROM "__unify_retl"."diff_s1"`+tail,
	) {
		if got := c.d.FirstBadID("diff_s1"); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.d.Name, got, c.want)
		}
	}
}

// Only PostgreSQL indexes the diff (by ColSeq, which each page reads); the others have nothing
// to run.
func TestIndexDiff(t *testing.T) {
	t.Parallel()
	for _, c := range byDialect(`CREATE INDEX ON "__unify_retl"."diff_s1" (__unify_seq)`, "", "", "") {
		if got := c.d.IndexDiff("diff_s1"); got != c.want {
			t.Errorf("%s: IndexDiff = %q, want %q", c.d.Name, got, c.want)
		}
	}
}

// diffModel is the model TestDiff builds its diff from.
const diffModel = "SELECT 1 AS id, 'x' AS email"

// diffSource is the line of each dialect's diff that defines the source CTE: the id cast to the
// dialect's text (Postgres: in the C collation), the checksum (Postgres: hash_record_extended
// of the row, a column of a type it cannot hash as text; the others: length-prefixed columns
// with the dialect's MD5, length and text type), how many rows share the id (Postgres: sorted
// by the checksum too), the columns, and (Postgres) the OFFSET 0 that keeps the CTE from
// being inlined.
var diffSource = map[string]string{
	"postgres": `), __unify_source AS (SELECT CAST(m."id" AS TEXT) COLLATE "C" AS __unify_id, ` +
		`CAST(hash_record_extended(ROW(m."id", CAST(m."email" AS TEXT)), 0) AS TEXT) AS __unify_checksum, ` +
		`COUNT(*) OVER (PARTITION BY CAST(m."id" AS TEXT) COLLATE "C" ORDER BY CAST(hash_record_extended(ROW(m."id", CAST(m."email" AS TEXT)), 0) AS TEXT) ` +
		`ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS __unify_count, m."id", m."email" FROM __unify_model m OFFSET 0)` + "\n",
	"redshift": `), __unify_source AS (SELECT CAST(m."id" AS VARCHAR(65535)) AS __unify_id, ` +
		`MD5(COALESCE(CAST(LEN(CAST(m."id" AS VARCHAR(65535))) AS VARCHAR(65535)) || ':' || CAST(m."id" AS VARCHAR(65535)), '-') || '|' || ` +
		`COALESCE(CAST(LEN(CAST(m."email" AS VARCHAR(65535))) AS VARCHAR(65535)) || ':' || CAST(m."email" AS VARCHAR(65535)), '-')) AS __unify_checksum, ` +
		`COUNT(*) OVER (PARTITION BY CAST(m."id" AS VARCHAR(65535))) AS __unify_count, m."id", m."email" FROM __unify_model m)` + "\n",
	"bigquery": "), __unify_source AS (SELECT CAST(m.`id` AS STRING) AS __unify_id, " +
		"TO_HEX(MD5(COALESCE(CAST(LENGTH(CAST(m.`id` AS STRING)) AS STRING) || ':' || CAST(m.`id` AS STRING), '-') || '|' || " +
		"COALESCE(CAST(LENGTH(CAST(m.`email` AS STRING)) AS STRING) || ':' || CAST(m.`email` AS STRING), '-'))) AS __unify_checksum, " +
		"COUNT(*) OVER (PARTITION BY CAST(m.`id` AS STRING)) AS __unify_count, m.`id`, m.`email` FROM __unify_model m)\n",
	"snowflake": `), __unify_source AS (SELECT CAST(m."id" AS VARCHAR) AS __unify_id, ` +
		`MD5(COALESCE(CAST(LENGTH(CAST(m."id" AS VARCHAR)) AS VARCHAR) || ':' || CAST(m."id" AS VARCHAR), '-') || '|' || ` +
		`COALESCE(CAST(LENGTH(CAST(m."email" AS VARCHAR)) AS VARCHAR) || ':' || CAST(m."email" AS VARCHAR), '-')) AS __unify_checksum, ` +
		`COUNT(*) OVER (PARTITION BY CAST(m."id" AS VARCHAR)) AS __unify_count, m."id", m."email" FROM __unify_model m)` + "\n",
}

// diffColumns are TestDiff's columns, typed as pgx names PostgreSQL's types: an id it hashes
// as it is and a json it cannot hash.
var diffColumns = []sqlgen.Column{{Name: "id", Type: "int4"}, {Name: "email", Type: "json"}}

// The diff, whole for Postgres and Redshift (TestOnPostgresSyncState runs them), and its
// dialect-specific parts for every dialect: the work table, the source CTE with its checksum,
// the quoted state table and columns; the rest is the same text in every dialect but Postgres,
// which reads only the state's covered columns and leaves the identifiers to FillIdentifiers.
func TestDiff(t *testing.T) {
	t.Parallel()
	const tail = `WHERE (s.__unify_checksum IS NULL AND st.checksum IS NOT NULL)` + "\n" +
		`   OR (s.__unify_checksum IS NOT NULL AND (st.checksum IS NULL OR st.checksum <> s.__unify_checksum)` + "\n" +
		`       AND NOT (st.failed_checksum IS NOT NULL AND st.failed_checksum = s.__unify_checksum AND st.attempts >= 5))` + "\n" +
		`   OR s.__unify_count > 1`
	const head = `SELECT ROW_NUMBER() OVER (ORDER BY COALESCE(s.__unify_id, st.record_id)) AS __unify_seq, COALESCE(s.__unify_id, st.record_id) AS __unify_id,` + "\n" +
		`CASE WHEN s.__unify_checksum IS NULL THEN 'd' WHEN st.record_id IS NULL OR st.checksum IS NULL THEN 'a' ELSE 'u' END AS __unify_op,` + "\n"
	pg := `CREATE UNLOGGED TABLE "__unify_retl"."diff_s1" AS` + "\n" +
		"WITH __unify_model AS (\n" + diffModel + "\n" + diffSource["postgres"] + head +
		`s.__unify_checksum AS __unify_checksum, CAST(NULL AS TEXT) AS __unify_identifiers, s."id", s."email"` + "\n" +
		`FROM __unify_source s FULL OUTER JOIN (SELECT record_id, checksum, failed_checksum, attempts FROM "__unify_retl"."state_m1") st ON st.record_id = s.__unify_id` + "\n" + tail
	if got := sqlgen.Postgres.Diff("diff_s1", diffModel, "id", "state_m1", diffColumns); got != pg {
		t.Errorf("postgres:\n got %s\nwant %s", got, pg)
	}
	want := `CREATE TABLE "__unify_retl"."diff_s1" AS` + "\n" +
		"WITH __unify_model AS (\n" + diffModel + "\n" + diffSource["redshift"] + head +
		`s.__unify_checksum AS __unify_checksum, st.identifiers AS __unify_identifiers, s."id", s."email"` + "\n" +
		`FROM __unify_source s FULL OUTER JOIN "__unify_retl"."state_m1" st ON st.record_id = s.__unify_id` + "\n" + tail
	if got := sqlgen.Redshift.Diff("diff_s1", diffModel, "id", "state_m1", diffColumns); got != want {
		t.Errorf("redshift:\n got %s\nwant %s", got, want)
	}
	for _, c := range []struct {
		d     sqlgen.Dialect
		parts []string
	}{
		{sqlgen.Redshift, []string{`CREATE TABLE "__unify_retl"."diff_s1" AS` + "\n", `s."id", s."email"` + "\n", `FROM __unify_source s FULL OUTER JOIN "__unify_retl"."state_m1" st ON`}},
		{sqlgen.BigQuery, []string{"CREATE TABLE `__unify_retl`.`diff_s1` AS\n", "s.`id`, s.`email`\n", "FROM __unify_source s FULL OUTER JOIN `__unify_retl`.`state_m1` st ON"}},
		{sqlgen.Snowflake, []string{`CREATE TRANSIENT TABLE "__unify_retl"."diff_s1" AS` + "\n", `s."id", s."email"` + "\n", `FROM __unify_source s FULL OUTER JOIN "__unify_retl"."state_m1" st ON`}},
	} {
		got := c.d.Diff("diff_s1", diffModel, "id", "state_m1", diffColumns)
		if !strings.HasPrefix(got, c.parts[0]+"WITH __unify_model AS (\n"+diffModel+"\n"+diffSource[c.d.Name]) {
			t.Errorf("%s: %q does not start with %q, the model, then %q", c.d.Name, got, c.parts[0], diffSource[c.d.Name])
		}
		for _, p := range c.parts[1:] {
			if !strings.Contains(got, p) {
				t.Errorf("%s: %q lacks %q", c.d.Name, got, p)
			}
		}
		// Apart from the names and the source CTE, the diff is the same text in these dialects.
		if strip(c.d, got) != strip(sqlgen.Redshift, want) {
			t.Errorf("%s: the diff differs from Redshift's beyond its names and source:\n%s", c.d.Name, got)
		}
	}
	// The model's text is given as it is, and the id column is the one named.
	got := sqlgen.Postgres.Diff("diff_s1", "SELECT e AS \"key\" FROM t -- to the end", "key", "state_m1", []sqlgen.Column{{Name: "key", Type: "text"}})
	if !strings.Contains(got, "WITH __unify_model AS (\nSELECT e AS \"key\" FROM t -- to the end\n), __unify_source AS (SELECT CAST(m.\"key\" AS TEXT) COLLATE \"C\" AS __unify_id, "+
		"CAST(hash_record_extended(ROW(m.\"key\"), 0) AS TEXT) AS __unify_checksum, COUNT(*) OVER (PARTITION BY CAST(m.\"key\" AS TEXT) COLLATE \"C\" ORDER BY "+
		"CAST(hash_record_extended(ROW(m.\"key\"), 0) AS TEXT) ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS __unify_count, m.\"key\" FROM __unify_model m OFFSET 0)\n") {
		t.Errorf("postgres, id column key: %s", got)
	}
	// No columns: the checksum of nothing, each dialect's hex MD5 (Postgres's too: a row of no
	// columns hashes nothing).
	for _, c := range byDialect(`MD5('') AS __unify_checksum`, `MD5('') AS __unify_checksum`, `TO_HEX(MD5('')) AS __unify_checksum`, `MD5('') AS __unify_checksum`) {
		if got := c.d.Diff("diff_s1", "SELECT 1 AS id", "id", "state_m1", nil); !strings.Contains(got, c.want) {
			t.Errorf("%s, no columns: %s lacks %s", c.d.Name, got, c.want)
		}
	}
}

// strip takes a dialect's own words out of a diff, to compare what is left.
func strip(d sqlgen.Dialect, s string) string {
	return strings.NewReplacer(
		diffSource[d.Name], "<source>\n",
		d.Table("diff_s1"), "<diff>", d.Table("state_m1"), "<state>",
		d.Quote("id"), "<id>", d.Quote("email"), "<email>",
		"CREATE UNLOGGED TABLE", "<create>", "CREATE TRANSIENT TABLE", "<create>", "CREATE TABLE", "<create>",
	).Replace(s)
}

func TestCounts(t *testing.T) {
	t.Parallel()
	const tail = " GROUP BY __unify_op"
	for _, c := range byDialect(
		`SELECT __unify_op, COUNT(*) FROM "__unify_retl"."diff_s1"`+tail,
		`SELECT __unify_op, COUNT(*) FROM "__unify_retl"."diff_s1"`+tail,
		"SELECT __unify_op, COUNT(*) FROM `__unify_retl`.`diff_s1`"+tail,
		`SELECT __unify_op, COUNT(*) FROM "__unify_retl"."diff_s1"`+tail,
	) {
		if got := c.d.Counts("diff_s1"); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.d.Name, got, c.want)
		}
	}
}

func TestPage(t *testing.T) {
	t.Parallel()
	const head = "SELECT __unify_seq, __unify_id, __unify_op, __unify_checksum, __unify_identifiers, "
	const tail = " WHERE __unify_seq > 200 AND __unify_seq <= 300 ORDER BY __unify_seq"
	for _, c := range byDialect(
		head+`"id", "email" FROM "__unify_retl"."diff_s1"`+tail,
		head+`"id", "email" FROM "__unify_retl"."diff_s1"`+tail,
		head+"`id`, `email` FROM `__unify_retl`.`diff_s1`"+tail,
		head+`"id", "email" FROM "__unify_retl"."diff_s1"`+tail,
	) {
		if got := c.d.Page("diff_s1", []string{"id", "email"}, 200, 100); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.d.Name, got, c.want)
		}
	}
}

// The outcomes table is a work table (rebuilt each sync, as the snapshot and diff are) of the
// dialect's text and integer types.
func TestCreateOutcomes(t *testing.T) {
	t.Parallel()
	for _, c := range byDialect(
		`CREATE UNLOGGED TABLE "__unify_retl"."out_s1" (record_id TEXT NOT NULL, op TEXT NOT NULL, checksum TEXT, identifiers TEXT, failed INTEGER NOT NULL)`,
		`CREATE TABLE "__unify_retl"."out_s1" (record_id VARCHAR(65535) NOT NULL, op VARCHAR(65535) NOT NULL, checksum VARCHAR(65535), identifiers VARCHAR(65535), failed INTEGER NOT NULL)`,
		"CREATE TABLE `__unify_retl`.`out_s1` (record_id STRING NOT NULL, op STRING NOT NULL, checksum STRING, identifiers STRING, failed INT64 NOT NULL)",
		`CREATE TRANSIENT TABLE "__unify_retl"."out_s1" (record_id VARCHAR NOT NULL, op VARCHAR NOT NULL, checksum VARCHAR, identifiers VARCHAR, failed INTEGER NOT NULL)`,
	) {
		if got := c.d.CreateOutcomes("out_s1"); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.d.Name, got, c.want)
		}
	}
}

// RecordOutcomes of each dialect, whole: the page's outcomes replace what the sync's outcomes
// table held (one INSERT … VALUES, the dialect's literals, failed as 0 or 1, a missing checksum
// or identifiers as ”), then set-based statements read that table into the state: Postgres
// INSERT … SELECT … ON CONFLICT on the state's key; Redshift, whose MERGE takes no subquery as
// its source, UPDATE … FROM then INSERT … NOT IN; BigQuery and Snowflake MERGE from a SELECT.
func TestRecordOutcomes(t *testing.T) {
	t.Parallel()
	// The fixture's rows, the same text in every dialect (no quote, backslash or line break).
	const rows = ` (record_id, op, checksum, identifiers, failed) VALUES ('r1', 'a', 'c1', '{"email":"a"}', 0), ('r2', 'd', '', '', 0), ('r3', 'u', 'c3', '', 1)`
	for _, c := range []struct {
		d    sqlgen.Dialect
		want []string
	}{
		{sqlgen.Postgres, []string{
			`DELETE FROM "__unify_retl"."out_s1" WHERE TRUE`,
			`INSERT INTO "__unify_retl"."out_s1"` + rows,
			`DELETE FROM "__unify_retl"."state_m1" WHERE record_id IN (SELECT record_id FROM "__unify_retl"."out_s1" WHERE failed = 0 AND op = 'd')`,
			`INSERT INTO "__unify_retl"."state_m1" AS st (record_id, checksum, identifiers, attempts) SELECT v.record_id, v.checksum, v.identifiers, 0 ` +
				`FROM "__unify_retl"."out_s1" v WHERE v.failed = 0 AND v.op <> 'd' ` +
				`ON CONFLICT (record_id) DO UPDATE SET checksum = EXCLUDED.checksum, identifiers = EXCLUDED.identifiers, failed_checksum = NULL, failed_sync = NULL, attempts = 0`,
			`INSERT INTO "__unify_retl"."state_m1" AS st (record_id, failed_checksum, failed_sync, attempts) SELECT v.record_id, v.checksum, 's1', 1 ` +
				`FROM "__unify_retl"."out_s1" v WHERE v.failed = 1 ` +
				`ON CONFLICT (record_id) DO UPDATE SET attempts = CASE WHEN st.failed_sync = 's1' THEN st.attempts WHEN st.failed_checksum = EXCLUDED.failed_checksum THEN st.attempts + 1 ELSE 1 END, ` +
				`failed_checksum = EXCLUDED.failed_checksum, failed_sync = EXCLUDED.failed_sync`,
		}},
		{sqlgen.Redshift, []string{
			`DELETE FROM "__unify_retl"."out_s1" WHERE TRUE`,
			`INSERT INTO "__unify_retl"."out_s1"` + rows,
			`DELETE FROM "__unify_retl"."state_m1" WHERE record_id IN (SELECT record_id FROM "__unify_retl"."out_s1" WHERE failed = 0 AND op = 'd')`,
			`UPDATE "__unify_retl"."state_m1" AS st SET checksum = v.checksum, identifiers = v.identifiers, failed_checksum = NULL, failed_sync = NULL, attempts = 0 ` +
				`FROM "__unify_retl"."out_s1" v WHERE v.failed = 0 AND v.op <> 'd' AND st.record_id = v.record_id`,
			`INSERT INTO "__unify_retl"."state_m1" (record_id, checksum, identifiers, attempts) SELECT v.record_id, v.checksum, v.identifiers, 0 ` +
				`FROM "__unify_retl"."out_s1" v WHERE v.failed = 0 AND v.op <> 'd' AND v.record_id NOT IN (SELECT record_id FROM "__unify_retl"."state_m1")`,
			`UPDATE "__unify_retl"."state_m1" AS st SET attempts = CASE WHEN st.failed_sync = 's1' THEN st.attempts WHEN st.failed_checksum = v.checksum THEN st.attempts + 1 ELSE 1 END, ` +
				`failed_checksum = v.checksum, failed_sync = 's1' FROM "__unify_retl"."out_s1" v WHERE v.failed = 1 AND st.record_id = v.record_id`,
			`INSERT INTO "__unify_retl"."state_m1" (record_id, failed_checksum, failed_sync, attempts) SELECT v.record_id, v.checksum, 's1', 1 ` +
				`FROM "__unify_retl"."out_s1" v WHERE v.failed = 1 AND v.record_id NOT IN (SELECT record_id FROM "__unify_retl"."state_m1")`,
		}},
		{sqlgen.BigQuery, []string{
			"DELETE FROM `__unify_retl`.`out_s1` WHERE TRUE",
			"INSERT INTO `__unify_retl`.`out_s1`" + rows,
			"DELETE FROM `__unify_retl`.`state_m1` WHERE record_id IN (SELECT record_id FROM `__unify_retl`.`out_s1` WHERE failed = 0 AND op = 'd')",
			"MERGE INTO `__unify_retl`.`state_m1` st USING (SELECT v.record_id, v.checksum, v.identifiers FROM `__unify_retl`.`out_s1` v WHERE v.failed = 0 AND v.op <> 'd') v " +
				`ON st.record_id = v.record_id WHEN MATCHED THEN UPDATE SET checksum = v.checksum, identifiers = v.identifiers, failed_checksum = NULL, failed_sync = NULL, attempts = 0 ` +
				`WHEN NOT MATCHED THEN INSERT (record_id, checksum, identifiers, attempts) VALUES (v.record_id, v.checksum, v.identifiers, 0)`,
			"MERGE INTO `__unify_retl`.`state_m1` st USING (SELECT v.record_id, v.checksum FROM `__unify_retl`.`out_s1` v WHERE v.failed = 1) v " +
				`ON st.record_id = v.record_id WHEN MATCHED THEN UPDATE SET attempts = CASE WHEN st.failed_sync = 's1' THEN st.attempts WHEN st.failed_checksum = v.checksum THEN st.attempts + 1 ELSE 1 END, ` +
				`failed_checksum = v.checksum, failed_sync = 's1' ` +
				`WHEN NOT MATCHED THEN INSERT (record_id, failed_checksum, failed_sync, attempts) VALUES (v.record_id, v.checksum, 's1', 1)`,
		}},
		{sqlgen.Snowflake, []string{
			`DELETE FROM "__unify_retl"."out_s1" WHERE TRUE`,
			`INSERT INTO "__unify_retl"."out_s1"` + rows,
			`DELETE FROM "__unify_retl"."state_m1" WHERE record_id IN (SELECT record_id FROM "__unify_retl"."out_s1" WHERE failed = 0 AND op = 'd')`,
			`MERGE INTO "__unify_retl"."state_m1" st USING (SELECT v.record_id, v.checksum, v.identifiers FROM "__unify_retl"."out_s1" v WHERE v.failed = 0 AND v.op <> 'd') v ` +
				`ON st.record_id = v.record_id WHEN MATCHED THEN UPDATE SET checksum = v.checksum, identifiers = v.identifiers, failed_checksum = NULL, failed_sync = NULL, attempts = 0 ` +
				`WHEN NOT MATCHED THEN INSERT (record_id, checksum, identifiers, attempts) VALUES (v.record_id, v.checksum, v.identifiers, 0)`,
			`MERGE INTO "__unify_retl"."state_m1" st USING (SELECT v.record_id, v.checksum FROM "__unify_retl"."out_s1" v WHERE v.failed = 1) v ` +
				`ON st.record_id = v.record_id WHEN MATCHED THEN UPDATE SET attempts = CASE WHEN st.failed_sync = 's1' THEN st.attempts WHEN st.failed_checksum = v.checksum THEN st.attempts + 1 ELSE 1 END, ` +
				`failed_checksum = v.checksum, failed_sync = 's1' ` +
				`WHEN NOT MATCHED THEN INSERT (record_id, failed_checksum, failed_sync, attempts) VALUES (v.record_id, v.checksum, 's1', 1)`,
		}},
	} {
		got := c.d.RecordOutcomes("state_m1", "out_s1", "s1", outcomes)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.d.Name, got, c.want)
		}
	}
}

// No outcomes, no statements. Otherwise the page's outcomes go into the outcomes table in order,
// in INSERTs of at most 1000 rows, and what follows reads only that table: the same statements
// whatever the page holds.
func TestRecordOutcomesKinds(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		for _, outs := range [][]sqlgen.Outcome{nil, {}} {
			if got := d.RecordOutcomes("state_m1", "out_s1", "s1", outs); got != nil {
				t.Errorf("%s, no outcomes (%#v): %q", d.Name, outs, got)
			}
		}
		out := d.Table("out_s1")
		insert := "INSERT INTO " + out + " (record_id, op, checksum, identifiers, failed) VALUES "
		fixture := d.RecordOutcomes("state_m1", "out_s1", "s1", outcomes)
		tail := fixture[2:] // after the DELETE and the one INSERT (TestRecordOutcomes has them whole)
		for _, n := range []int{1, 999, 1000, 1001, 2500} {
			outs := make([]sqlgen.Outcome, n)
			rows := make([]string, n)
			for i := range outs {
				// Every op, synced and failed (a failed delete too), in no particular order.
				op := []string{sqlgen.OpAdd, sqlgen.OpUpdate, sqlgen.OpDelete}[i%3]
				failed := 0
				if i%4 == 0 {
					failed = 1
				}
				id := n*7 - i
				outs[i] = sqlgen.Outcome{RecordID: fmt.Sprintf("r%d", id), Op: op, Checksum: fmt.Sprintf("c%d", id), Identifiers: fmt.Sprintf(`{"n":%d}`, id), Failed: failed == 1}
				rows[i] = fmt.Sprintf(`('r%d', '%s', 'c%d', '{"n":%d}', %d)`, id, op, id, id, failed)
			}
			want := []string{"DELETE FROM " + out + " WHERE TRUE"}
			for start := 0; start < n; start += 1000 {
				want = append(want, insert+strings.Join(rows[start:min(start+1000, n)], ", "))
			}
			want = append(want, tail...)
			got := d.RecordOutcomes("state_m1", "out_s1", "s1", outs)
			if !slices.Equal(got, want) {
				t.Errorf("%s, %d outcomes:\n got %.2000q\nwant %.2000q", d.Name, n, got, want)
			}
			if inserts := (n + 999) / 1000; len(got) != 1+inserts+len(tail) {
				t.Errorf("%s, %d outcomes: %d statements, want %d INSERTs of the outcomes and %d more", d.Name, n, len(got), inserts, 1+len(tail))
			}
		}
		// The outcomes table and the sync id are the ones given.
		other := strings.Join(d.RecordOutcomes("state_m2", "out_s2", "s2", outcomes), "\n")
		if strings.Contains(other, "_s1") || strings.Contains(other, "_m1") || !strings.Contains(other, d.Table("out_s2")) || !strings.Contains(other, "failed_sync = 's2'") {
			t.Errorf("%s, out_s2, s2: %s", d.Name, other)
		}
	}
}

// castTo finds the type of each CAST (of the form CAST(… AS TYPE) or CAST(… AS TYPE(n))).
var castTo = regexp.MustCompile(`CAST\(.*? AS ([A-Z0-9]+(?:\(\d+\))?)\)`)

// Each dialect's rules, over every statement it writes.
func TestDialectRules(t *testing.T) {
	t.Parallel()
	cols := []string{"id", "email"}
	all := func(d sqlgen.Dialect) string { return strings.Join(every(d, cols), "\n;\n") }
	stmts := map[string]string{}
	for _, d := range dialects {
		stmts[d.Name] = all(d)
	}
	has := func(dialect string, must bool, parts ...string) {
		t.Helper()
		for _, p := range parts {
			if strings.Contains(strings.ToUpper(stmts[dialect]), strings.ToUpper(p)) != must {
				t.Errorf("%s: contains %q is %v, want %v", dialect, p, !must, must)
			}
		}
	}
	// casts lists the types a dialect casts to.
	casts := func(dialect string) map[string]bool {
		out := map[string]bool{}
		for _, m := range castTo.FindAllStringSubmatch(stmts[dialect], -1) {
			out[m[1]] = true
		}
		return out
	}
	for _, d := range dialects { // nobody relies on row_to_json, which Redshift lacks
		has(d.Name, false, "row_to_json", "to_json", "json_")
		// No derived table of literal rows (a 5,000-branch UNION ALL took PostgreSQL 20 s to plan).
		has(d.Name, false, "UNION ALL", "(VALUES", "(SELECT CAST('")
		// The model runs once, inside the diff: no snapshot table.
		has(d.Name, false, "snap")
		if n := strings.Count(stmts[d.Name], "WITH __unify_model AS ("); n != 2 { // Preview's and Diff's
			t.Errorf("%s: the model runs %d times, want 2 (Preview, Diff)", d.Name, n)
		}
	}
	for _, d := range dialects {
		out, state := d.Table("out_s1"), d.Table("state_m1")
		for _, s := range every(d, cols) {
			// BigQuery's DELETE and UPDATE must have a WHERE; everyone's do.
			if (strings.HasPrefix(s, "DELETE ") || strings.HasPrefix(s, "UPDATE ")) && !strings.Contains(s, " WHERE ") {
				t.Errorf("%s: no WHERE in %s", d.Name, s)
			}
			// What is written into the state is read from the outcomes table, never written out.
			for _, w := range []string{"INSERT INTO ", "UPDATE ", "MERGE INTO ", "DELETE FROM "} {
				if strings.HasPrefix(s, w+state) && (!strings.Contains(s, " FROM "+out+" ") || strings.Contains(s, "'r1'") || strings.Contains(s, "'r2'") || strings.Contains(s, "'r3'")) {
					t.Errorf("%s: %s does not read the page's outcomes from %s alone", d.Name, s, out)
				}
			}
		}
		// The outcomes are written with INSERT … VALUES, at most 1000 rows a statement: 2,500 in 3.
		outs := make([]sqlgen.Outcome, 2500)
		for i := range outs {
			outs[i] = sqlgen.Outcome{RecordID: fmt.Sprintf("r%d", i), Op: sqlgen.OpAdd, Checksum: "c", Identifiers: "{}"}
		}
		insert := "INSERT INTO " + out + " (record_id, op, checksum, identifiers, failed) VALUES ("
		var inserts, rows int
		for _, s := range d.RecordOutcomes("state_m1", "out_s1", "s1", outs) {
			if !strings.HasPrefix(s, "INSERT INTO "+out) {
				continue
			}
			n := strings.Count(s, "), (") + 1
			if !strings.HasPrefix(s, insert) || n > 1000 {
				t.Errorf("%s: an INSERT of %d outcomes: %.200s", d.Name, n, s)
			}
			inserts, rows = inserts+1, rows+n
		}
		if inserts != 3 || rows != 2500 {
			t.Errorf("%s: 2,500 outcomes in %d INSERTs of %d rows, want 3 of 2500", d.Name, inserts, rows)
		}
	}

	// Postgres hashes the row (no MD5, no lengths), fences the source CTE with OFFSET 0 so it
	// is not inlined, fills in the identifiers, indexes the diff and vacuums the state.
	has("postgres", true, `CREATE UNLOGGED TABLE "__unify_retl"."diff_s1" AS`+"\nWITH __unify_model AS (",
		"CAST(hash_record_extended(ROW(CAST(m.\"id\" AS TEXT), CAST(m.\"email\" AS TEXT)), 0) AS TEXT) AS __unify_checksum", " FROM __unify_model m OFFSET 0)\n",
		`UPDATE "__unify_retl"."diff_s1" AS d SET __unify_identifiers = st.identifiers FROM "__unify_retl"."state_m1" st WHERE st.record_id = d.__unify_id AND d.__unify_op <> 'a'`,
		`CREATE INDEX ON "__unify_retl"."diff_s1" (__unify_seq)`, `VACUUM "__unify_retl"."state_m1"`,
		`CREATE TABLE IF NOT EXISTS "__unify_retl"."state_m1"`, "PRIMARY KEY (record_id)", "ON CONFLICT (record_id) DO UPDATE",
		`CREATE UNLOGGED TABLE "__unify_retl"."out_s1"`, `INSERT INTO "__unify_retl"."state_m1" AS st (record_id, checksum, identifiers, attempts) SELECT`,
		`INSERT INTO "__unify_retl"."state_m1" AS st (record_id, failed_checksum, failed_sync, attempts) SELECT`)
	has("postgres", false, "MERGE", "TRANSIENT", "`", "TO_HEX", "VARCHAR", "STRING", "INT64", `UPDATE "__unify_retl"."state`, "NOT IN (",
		"MD5(", "LENGTH(", "LEN(", "':'")
	if c := casts("postgres"); len(c) != 1 || !c["TEXT"] {
		t.Errorf("postgres casts to %v, want TEXT only", c)
	}

	// Redshift's MERGE takes no subquery as its source: outcomes update, then insert.
	// The others checksum length-prefixed columns with MD5, and neither fence nor index.
	for _, d := range dialects[1:] {
		has(d.Name, true, "MD5(COALESCE(CAST(", " || ':' || ", " || '|' || ", " FROM __unify_model m)\n")
		has(d.Name, false, "hash_record_extended", "ROW(", "OFFSET", "CREATE INDEX", " INDEX ", "COLLATE", "VACUUM", "INCLUDE", "UPDATE "+d.Table("diff_s1"))
	}
	has("redshift", true, `CREATE TABLE "__unify_retl"."diff_s1" AS`+"\nWITH __unify_model AS (", "LEN(", "MD5(",
		`CREATE TABLE "__unify_retl"."out_s1"`, `UPDATE "__unify_retl"."state_m1" AS st SET`, ` FROM "__unify_retl"."out_s1" v WHERE`,
		`INSERT INTO "__unify_retl"."state_m1" (record_id, checksum, identifiers, attempts) SELECT`,
		`INSERT INTO "__unify_retl"."state_m1" (record_id, failed_checksum, failed_sync, attempts) SELECT`,
		`NOT IN (SELECT record_id FROM "__unify_retl"."state_m1")`)
	has("redshift", false, "UNLOGGED", "TRANSIENT", "ON CONFLICT", "MERGE", "PRIMARY KEY", "LENGTH(", "TEXT", "TO_HEX", "`", "(VALUES")
	if c := casts("redshift"); len(c) != 1 || !c["VARCHAR(65535)"] { // a bare VARCHAR is 256 bytes
		t.Errorf("redshift casts to %v, want VARCHAR(65535) only", c)
	}
	if strings.Contains(strings.ReplaceAll(stmts["redshift"], "VARCHAR(65535)", ""), "VARCHAR") {
		t.Errorf("redshift: a VARCHAR without its length:\n%s", stmts["redshift"])
	}

	has("bigquery", true, "CREATE TABLE `__unify_retl`.`diff_s1` AS\nWITH __unify_model AS (", "TO_HEX(MD5(", "LENGTH(",
		"INT64 NOT NULL", "MERGE INTO `__unify_retl`.`state_m1` st USING (SELECT ", "m.`email`", "s.`email`", ", `email` FROM",
		"CREATE TABLE `__unify_retl`.`out_s1`", "FROM `__unify_retl`.`out_s1` v WHERE")
	has("bigquery", false, "UNLOGGED", "TRANSIENT", "ON CONFLICT", "PRIMARY KEY", "TEXT", "VARCHAR", "INTEGER", `"__unify_retl"`, `m."email"`, `s."email"`, `, "email" FROM`,
		"(VALUES", "USING (VALUES", "FROM (VALUES", "UPDATE `", "NOT IN (")
	if c := casts("bigquery"); len(c) != 1 || !c["STRING"] {
		t.Errorf("bigquery casts to %v, want STRING only", c)
	}

	has("snowflake", true, `CREATE TRANSIENT TABLE "__unify_retl"."diff_s1" AS`+"\nWITH __unify_model AS (", "LENGTH(",
		`CREATE TABLE IF NOT EXISTS "__unify_retl"."state_m1"`, `MERGE INTO "__unify_retl"."state_m1" st USING (SELECT `, "MD5(", `m."email"`,
		`CREATE TRANSIENT TABLE "__unify_retl"."out_s1"`, `FROM "__unify_retl"."out_s1" v WHERE`)
	has("snowflake", false, "UNLOGGED", "ON CONFLICT", "PRIMARY KEY", "TO_HEX", "`", "TEXT", "(VALUES", `UPDATE "__unify_retl"`, "NOT IN (")
	if c := casts("snowflake"); len(c) != 1 || !c["VARCHAR"] {
		t.Errorf("snowflake casts to %v, want VARCHAR only", c)
	}
}

// A column with a double quote, a backtick or a backslash in its name stays one identifier.
func TestQuote(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		want []perDialect
	}{
		{`we"ird`, byDialect(`"we""ird"`, `"we""ird"`, "`we\"ird`", `"we""ird"`)},
		{"back`tick", byDialect("\"back`tick\"", "\"back`tick\"", "`back\\`tick`", "\"back`tick\"")},
		{`back\slash`, byDialect(`"back\slash"`, `"back\slash"`, "`back\\\\slash`", `"back\slash"`)},
		{"end\\`", byDialect("\"end\\`\"", "\"end\\`\"", "`end\\\\\\``", "\"end\\`\"")},
		{"new\nline", byDialect("\"new\nline\"", "\"new\nline\"", "`new\\nline`", "\"new\nline\"")},
		{`""`, byDialect(`""""""`, `""""""`, "`\"\"`", `""""""`)},
	} {
		for _, w := range c.want {
			d := w.d
			if got := d.Quote(c.name); got != w.want {
				t.Errorf("%s: Quote(%q) = %s, want %s", d.Name, c.name, got, w.want)
			}
			cols := []string{c.name}
			for stmt, part := range map[string]string{
				d.Diff("diff_s1", "SELECT 1", "id", "state_m1", columns(cols...)): ", m." + w.want + " FROM __unify_model m",
				d.Diff("diff_s1", "SELECT 1", c.name, "state_m1", nil):            "SELECT CAST(m." + w.want + " AS ",
				d.Diff("diff_s1", "SELECT 3", c.name, "state_m1", nil):            "OVER (PARTITION BY CAST(m." + w.want + " AS ",
				d.Diff("diff_s1", "SELECT 2", "id", "state_m1", columns(cols...)): ", s." + w.want + "\nFROM ",
				d.Page("diff_s1", cols, 0, 10):                                    ", " + w.want + " FROM ",
			} {
				if !strings.Contains(stmt, part) {
					t.Errorf("%s: %q lacks %q", d.Name, stmt, part)
				}
			}
		}
	}
}

// A record id with a quote, a backslash and a newline is one literal in each dialect: Postgres's
// standard strings double the quote only; Redshift reads backslashes as escapes, so it doubles
// them too; BigQuery and Snowflake escape with backslashes, and BigQuery's quoted strings cannot
// hold a newline.
func TestLiteral(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		s    string
		want []perDialect
	}{
		{"it's \\ a\nb", byDialect("'it''s \\ a\nb'", "'it''s \\\\ a\nb'", `'it\'s \\ a\nb'`, `'it\'s \\ a\nb'`)},
		{`\'; DROP TABLE x; --`, byDialect(`'\''; DROP TABLE x; --'`, `'\\''; DROP TABLE x; --'`, `'\\\'; DROP TABLE x; --'`, `'\\\'; DROP TABLE x; --'`)},
		{"", byDialect(`''`, `''`, `''`, `''`)},
		{"cr\r\n", byDialect("'cr\r\n'", "'cr\r\n'", `'cr\r\n'`, `'cr\r\n'`)},
		{`ends\`, byDialect(`'ends\'`, `'ends\\'`, `'ends\\'`, `'ends\\'`)},
	} {
		for _, w := range c.want {
			if got := w.d.Literal(c.s); got != w.want {
				t.Errorf("%s: Literal(%q) = %s, want %s", w.d.Name, c.s, got, w.want)
			}
			// Record ids, checksums, identifiers and the sync id reach the statements as these literals.
			stmts := strings.Join(w.d.RecordOutcomes("state_m1", "out_s1", c.s, []sqlgen.Outcome{
				{RecordID: c.s, Op: sqlgen.OpAdd, Checksum: c.s, Identifiers: c.s}, {RecordID: c.s, Op: sqlgen.OpDelete, Failed: true},
			}), "\n")
			rows := "VALUES (" + w.want + ", 'a', " + w.want + ", " + w.want + ", 0), (" + w.want + ", 'd', '', '', 1)"
			for _, part := range []string{rows, "failed_sync = " + w.want} {
				if !strings.Contains(stmts, part) {
					t.Errorf("%s: %q lacks %q", w.d.Name, stmts, part)
				}
			}
		}
	}
}

// unquote reads a quoted token the way a dialect's lexer does and reports whether q is all one
// token: it starts and ends with quote, a doubled quote (where double is true) is one quote, a
// backslash (where escapes is not nil) takes one of escapes' keys, and no byte of raw is left
// bare.
func unquote(q string, quote byte, double bool, escapes map[byte]byte, raw string) (string, bool) {
	if len(q) < 2 || q[0] != quote {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(q); i++ {
		switch ch := q[i]; {
		case ch == quote && double && i+1 < len(q) && q[i+1] == quote:
			b.WriteByte(quote)
			i++
		case ch == quote:
			return b.String(), i == len(q)-1
		case ch == '\\' && escapes != nil:
			if i+1 == len(q) {
				return "", false
			}
			v, ok := escapes[q[i+1]]
			if !ok {
				return "", false
			}
			b.WriteByte(v)
			i++
		case strings.IndexByte(raw, ch) >= 0:
			return "", false
		default:
			b.WriteByte(ch)
		}
	}
	return "", false // never closed
}

// The lexers: Postgres's standard strings and double-quoted identifiers (Snowflake's and
// Redshift's identifiers too); Redshift's strings, where a backslash escapes; BigQuery's and
// Snowflake's strings and BigQuery's identifiers, with C-like escapes and no raw newline.
var (
	readStandard = func(q string) (string, bool) { return unquote(q, '\'', true, nil, "") }
	readRedshift = func(q string) (string, bool) {
		return unquote(q, '\'', true, map[byte]byte{'\\': '\\', '\'': '\''}, "")
	}
	readBackslash = func(q string) (string, bool) {
		return unquote(q, '\'', false, map[byte]byte{'\\': '\\', '\'': '\'', '"': '"', 'n': '\n', 'r': '\r', 't': '\t'}, "\n\r")
	}
	readDoubleQuoted = func(q string) (string, bool) { return unquote(q, '"', true, nil, "") }
	readBackQuoted   = func(q string) (string, bool) {
		return unquote(q, '`', false, map[byte]byte{'\\': '\\', '`': '`', '\'': '\'', '"': '"', 'n': '\n', 'r': '\r', 't': '\t'}, "\n\r")
	}
)

// The reference readers read what they should, and refuse a token that ends early.
func TestReaders(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		read func(string) (string, bool)
		q    string
		want string
		ok   bool
	}{
		{readStandard, `'it''s'`, "it's", true},
		{readStandard, `'a\'`, `a\`, true},
		{readStandard, `'a'b'`, "", false},
		{readStandard, `'a`, "", false},
		{readRedshift, `'a\\b''c'`, `a\b'c`, true},
		{readRedshift, `'a\'`, "", false},
		{readRedshift, `'a\''''`, `a''`, true},
		{readRedshift, `'a\'''`, "", false}, // \' then '' leaves it open
		{readBackslash, `'it\'s\n'`, "it's\n", true},
		{readBackslash, `'it''s'`, "", false},
		{readBackslash, "'a\nb'", "", false},
		{readBackslash, `'a\'`, "", false},
		{readDoubleQuoted, `"we""ird"`, `we"ird`, true},
		{readDoubleQuoted, `"we"ird"`, "", false},
		{readBackQuoted, "`a\\`b`", "a`b", true},
		{readBackQuoted, "`a\\`", "", false},
	} {
		got, ok := c.read(c.q)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("read %s = %q, %v; want %q, %v", c.q, got, ok, c.want, c.ok)
		}
	}
}

// For any string, each dialect's literal and quoted identifier is one token that reads back as
// the string (by the reference readers above, written from each warehouse's lexical rules).
func FuzzLiteral(f *testing.F) {
	for _, s := range []string{"", "plain", "it's", `a\`, `\'`, "''", `\\'`, "line\nbreak\r\n", "`", "\"", "é✓", "\x00\xff", `'; DROP TABLE x; --`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range []struct {
			what string
			got  string
			read func(string) (string, bool)
		}{
			{"postgres literal", sqlgen.Postgres.Literal(s), readStandard},
			{"redshift literal", sqlgen.Redshift.Literal(s), readRedshift},
			{"bigquery literal", sqlgen.BigQuery.Literal(s), readBackslash},
			{"snowflake literal", sqlgen.Snowflake.Literal(s), readBackslash},
			{"postgres identifier", sqlgen.Postgres.Quote(s), readDoubleQuoted},
			{"redshift identifier", sqlgen.Redshift.Quote(s), readDoubleQuoted},
			{"bigquery identifier", sqlgen.BigQuery.Quote(s), readBackQuoted},
			{"snowflake identifier", sqlgen.Snowflake.Quote(s), readDoubleQuoted},
		} {
			if back, ok := c.read(c.got); !ok || back != s {
				t.Fatalf("%s of %q is %s, which reads as %q (one token: %v)", c.what, s, c.got, back, ok)
			}
		}
	})
}

// connect starts a throwaway PostgreSQL and connects to it.
func connect(t *testing.T) (context.Context, *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	c := pgtest.Start(t)
	conn, err := pgx.Connect(ctx, c.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return ctx, conn
}

// exec runs statements in one transaction, as the Postgres driver does.
func exec(t *testing.T, ctx context.Context, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			t.Fatalf("%v\nin: %s", err, s)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func md5Hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// recordHash is PostgreSQL's hash of a row of text values (string or *string, nil for NULL),
// computed by the server apart from any statement of sqlgen's.
func recordHash(t *testing.T, ctx context.Context, conn *pgx.Conn, x, y any) string {
	t.Helper()
	var h string
	if err := conn.QueryRow(ctx, "SELECT CAST(hash_record_extended(ROW(CAST($1 AS TEXT), CAST($2 AS TEXT)), 0) AS TEXT)", pgx.QueryExecModeExec, x, y).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// onPostgres returns a dialect's statement as PostgreSQL runs it: Snowflake's transient tables
// as plain ones; nothing else of its diff is foreign to PostgreSQL. Redshift's runs as it is,
// once lenShim has given PostgreSQL Redshift's LEN.
func onPostgres(d sqlgen.Dialect, stmt string) string {
	if d.Name == sqlgen.Snowflake.Name {
		return strings.ReplaceAll(stmt, "CREATE TRANSIENT TABLE ", "CREATE TABLE ")
	}
	return stmt
}

// lenShim is Redshift's LEN on PostgreSQL: of a VARCHAR, its length in characters (trailing
// spaces included), which is PostgreSQL's LENGTH.
const lenShim = `CREATE FUNCTION len(text) RETURNS integer LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT length($1) $$`

// onPostgresDialects are the dialects whose diff runs on PostgreSQL (BigQuery's backquotes do not).
var onPostgresDialects = []sqlgen.Dialect{sqlgen.Postgres, sqlgen.Redshift, sqlgen.Snowflake}

// The diffs of Postgres, Redshift and Snowflake run for real against an empty state: every row
// is added with its columns and its checksum. Postgres's is PostgreSQL's 64-bit hash of the
// row, column by column (here as text: their types are not given); the others' the MD5 of the
// columns as "<length>:<text>" joined by "|", NULL as "-". Either way ("a","bc") and
// ("ab","c") differ, as do (NULL, empty) and (empty, NULL).
func TestOnPostgresChecksum(t *testing.T) {
	t.Parallel()
	ctx, conn := connect(t)
	model := `SELECT * FROM (VALUES (1,'a','bc'),(2,'ab','c'),(3,NULL,''),(4,'',NULL)) t(id,x,y)`
	exec(t, ctx, conn, sqlgen.Postgres.CreateSchema(), sqlgen.Postgres.CreateSchema(), lenShim)
	hash := func(x, y *string) string { return recordHash(t, ctx, conn, x, y) }
	md5s := []string{md5Hex("1:a|2:bc"), md5Hex("2:ab|1:c"), md5Hex("-|0:"), md5Hex("0:|-")}
	for _, c := range []struct {
		d    sqlgen.Dialect
		want []string
	}{
		{sqlgen.Postgres, []string{hash(ptr("a"), ptr("bc")), hash(ptr("ab"), ptr("c")), hash(nil, ptr("")), hash(ptr(""), nil)}},
		{sqlgen.Redshift, md5s},
		{sqlgen.Snowflake, md5s},
	} {
		d := c.d
		state, diff := sqlgen.StateTable("ck_"+d.Name), "diff_ck_"+d.Name
		exec(t, ctx, conn, d.CreateState("ck_"+d.Name), onPostgres(d, d.Diff(diff, model, "id", state, columns("x", "y"))))
		type row struct {
			Seq         int64
			ID, Op      string
			Checksum    string
			Identifiers *string
			X, Y        *string
		}
		got, err := pgx.CollectRows(query(t, ctx, conn, d.Page(diff, []string{"x", "y"}, 0, 10)), pgx.RowToStructByPos[row])
		if err != nil {
			t.Fatal(err)
		}
		want := []row{
			{1, "1", sqlgen.OpAdd, c.want[0], nil, ptr("a"), ptr("bc")},
			{2, "2", sqlgen.OpAdd, c.want[1], nil, ptr("ab"), ptr("c")},
			{3, "3", sqlgen.OpAdd, c.want[2], nil, nil, ptr("")},
			{4, "4", sqlgen.OpAdd, c.want[3], nil, ptr(""), nil},
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, want %d: %+v", d.Name, len(got), len(want), got)
		}
		seen := map[string]bool{}
		for i, g := range got {
			w := want[i]
			if g.Seq != w.Seq || g.ID != w.ID || g.Op != w.Op || g.Checksum != w.Checksum || g.Identifiers != nil || !equalPtr(g.X, w.X) || !equalPtr(g.Y, w.Y) {
				t.Errorf("%s: row %d = {%d %s %s %s %s %s}, want {%d %s %s %s NULL %s %s}", d.Name, i, g.Seq, g.ID, g.Op, g.Checksum, deref(g.X), deref(g.Y),
					w.Seq, w.ID, w.Op, w.Checksum, deref(w.X), deref(w.Y))
			}
			if seen[g.Checksum] {
				t.Errorf("%s: two records share the checksum %s", d.Name, g.Checksum)
			}
			seen[g.Checksum] = true
		}
		var id *string
		var n int64
		if err := conn.QueryRow(ctx, d.FirstBadID(diff), pgx.QueryExecModeExec).Scan(&id, &n); !errors.Is(err, pgx.ErrNoRows) {
			t.Errorf("%s: FirstBadID of distinct ids: %s %d %v", d.Name, deref(id), n, err)
		}
	}
}

// Postgres's checksum over columns of many types, typed as the driver reports them (pgx's
// names): the types hash_record_extended cannot hash (json, point, arrays…) go in as text, so
// the diff runs, and a change in any one column is seen as exactly one update.
func TestOnPostgresTypedChecksum(t *testing.T) {
	t.Parallel()
	ctx, conn := connect(t)
	d := sqlgen.Postgres
	exec(t, ctx, conn, d.CreateSchema(), d.CreateState("typed"))
	state := sqlgen.StateTable("typed")
	cols := []struct{ name, was, now string }{
		{"id", "CAST(1 AS BIGINT)", ""},
		{"n", "CAST(2.5 AS NUMERIC)", "CAST(2.6 AS NUMERIC)"},
		{"f", "CAST(0.5 AS DOUBLE PRECISION)", "CAST(0.25 AS DOUBLE PRECISION)"},
		{"j", `CAST('{"a":1}' AS JSON)`, `CAST('{"a":2}' AS JSON)`},
		{"jb", `CAST('{"b":1}' AS JSONB)`, `CAST('{"b":[1]}' AS JSONB)`},
		{"p", "point(1, 2)", "point(2, 1)"},
		{"ts", "CAST('2026-01-01 10:00+00' AS TIMESTAMPTZ)", "CAST('2026-01-01 10:00:01+00' AS TIMESTAMPTZ)"},
		{"arr", "ARRAY[1, 2]", "ARRAY[2, 1]"},
		{"t", "'x'", "'X'"},
		{"b", "TRUE", "FALSE"},
		{"u", "CAST('6a1f0a7e-2b5c-4d3e-9f8a-1b2c3d4e5f60' AS UUID)", "CAST('6a1f0a7e-2b5c-4d3e-9f8a-1b2c3d4e5f61' AS UUID)"},
		{"nothing", "CAST(NULL AS TEXT)", "''"},
	}
	model := func(change int) string {
		parts := make([]string, len(cols))
		for i, c := range cols {
			v := c.was
			if i == change {
				v = c.now
			}
			parts[i] = v + " AS " + d.Quote(c.name)
		}
		return "SELECT " + strings.Join(parts, ", ")
	}
	// The columns' types, named as the driver names them (shared/warehouse/postgres).
	rows := query(t, ctx, conn, model(-1)+" LIMIT 0")
	var typed []sqlgen.Column
	for _, f := range rows.FieldDescriptions() {
		typ := fmt.Sprintf("oid %d", f.DataTypeOID)
		if pt, ok := conn.TypeMap().TypeForOID(f.DataTypeOID); ok {
			typ = pt.Name
		}
		typed = append(typed, sqlgen.Column{Name: f.Name, Type: typ})
	}
	rows.Close()
	diff := d.Diff("diff_t0", model(-1), "id", state, typed)
	for _, want := range []string{`m."id", m."n", m."f", CAST(m."j" AS TEXT), m."jb", CAST(m."p" AS TEXT), m."ts", CAST(m."arr" AS TEXT), m."t", m."b", m."u", m."nothing"`} {
		if !strings.Contains(diff, want) {
			t.Fatalf("the checksum's row lacks %s:\n%s (types %v)", want, diff, typed)
		}
	}
	exec(t, ctx, conn, diff, "INSERT INTO "+d.Table(state)+" (record_id, checksum, identifiers, attempts) SELECT __unify_id, __unify_checksum, '{}', 0 FROM "+d.Table("diff_t0"))
	count := func(table string) int64 {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM "+d.Table(table), pgx.QueryExecModeExec).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	exec(t, ctx, conn, d.Diff("diff_same", model(-1), "id", state, typed))
	if n := count("diff_same"); n != 0 {
		t.Errorf("the same row again: %d rows in the diff, want 0", n)
	}
	for i, c := range cols[1:] {
		diff := fmt.Sprintf("diff_t%d", i+1)
		exec(t, ctx, conn, d.Diff(diff, model(i+1), "id", state, typed))
		var op string
		if err := conn.QueryRow(ctx, "SELECT __unify_op FROM "+d.Table(diff), pgx.QueryExecModeExec).Scan(&op); err != nil || op != sqlgen.OpUpdate || count(diff) != 1 {
			t.Errorf("%s changed from %s to %s: %d rows, op %q, %v; want one update", c.name, c.was, c.now, count(diff), op, err)
		}
	}
}

// FirstBadID, run on the diff for real, finds an id that is NULL or there more than once
// among the records the diff would send, whether the state is empty or already holds the id.
func TestOnPostgresFirstBadID(t *testing.T) {
	t.Parallel()
	ctx, conn := connect(t)
	exec(t, ctx, conn, sqlgen.Postgres.CreateSchema(), lenShim)
	model := func(rows ...string) string {
		return "SELECT * FROM (VALUES " + strings.Join(rows, ", ") + ") t(id, x)"
	}
	for _, d := range onPostgresDialects {
		for i, c := range []struct {
			synced string // a model whose rows the state holds as synced first ("": an empty state)
			model  string
			id     *string // the id FirstBadID finds, with n; none where n is 0
			n      int64
		}{
			{"", model("('k',1)", "('j',2)"), nil, 0},
			{"", model("('k',1)", "('j',2)", "('k',3)"), ptr("k"), 2},
			{"", model("('k',1)", "(NULL,2)"), nil, 1},
			{"", model("(NULL,1)", "('k',1)", "(NULL,2)"), nil, 2},
			{"", model("('k',1)", "('k',1)"), ptr("k"), 2},
			// The state holds k (and j) as synced.
			{model("('k',1)", "('j',2)"), model("('k',1)", "('j',2)"), nil, 0},
			{model("('k',1)", "('j',2)"), model("('k',2)", "('j',2)", "('k',3)"), ptr("k"), 2}, // both rows changed
			{model("('k',1)", "('j',2)"), model("('k',1)", "('j',2)", "('k',3)"), ptr("k"), 2}, // one row as synced
			{model("('k',1)", "('j',2)"), model("('k',3)", "('j',2)", "('k',1)"), ptr("k"), 2},
			{model("('k',1)"), model("('k',1)", "(NULL,2)"), nil, 1},
			{model("('k',1)"), model("('k',5)", "(NULL,2)"), nil, 1},
			{model("('k',1)", "('j',2)"), model("('j',2)"), nil, 0}, // k deleted: a delete is no record to send
		} {
			name := fmt.Sprintf("%s_%d", d.Name, i)
			state, diff := sqlgen.StateTable(name), "diff_"+name
			exec(t, ctx, conn, d.CreateState(name))
			if c.synced != "" {
				exec(t, ctx, conn, onPostgres(d, d.Diff("synced_"+name, c.synced, "id", state, columns("x"))),
					"INSERT INTO "+d.Table(state)+" (record_id, checksum, identifiers, attempts) SELECT __unify_id, __unify_checksum, '{}', 0 FROM "+d.Table("synced_"+name))
			}
			exec(t, ctx, conn, onPostgres(d, d.Diff(diff, c.model, "id", state, columns("x"))))
			var id *string
			var n int64
			err := conn.QueryRow(ctx, d.FirstBadID(diff), pgx.QueryExecModeExec).Scan(&id, &n)
			if c.n == 0 {
				if !errors.Is(err, pgx.ErrNoRows) {
					t.Errorf("%s: FirstBadID over %s (synced: %s) = %s, %d, %v; want none", d.Name, c.model, c.synced, deref(id), n, err)
				}
			} else if err != nil || !equalPtr(id, c.id) || n != c.n {
				t.Errorf("%s: FirstBadID over %s (synced: %s) = %s, %d, %v; want %s, %d", d.Name, c.model, c.synced, deref(id), n, err, deref(c.id), c.n)
			}
		}
	}
}

func ptr(s string) *string { return &s }
func equalPtr(a, b *string) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}
func deref(p *string) string {
	if p == nil {
		return "NULL"
	}
	return *p
}

// Columns named with a double quote, a backtick, a backslash and a capital run through the
// diff (and its index) and page for real on Postgres.
func TestOnPostgresQuotedNames(t *testing.T) {
	t.Parallel()
	ctx, conn := connect(t)
	d := sqlgen.Postgres
	cols := []string{`we"ird`, "back`tick", `back\slash`, "Mixed Case"}
	model := `SELECT 'r1' AS id, 'v1' AS "we""ird", 'v2' AS "back` + "`" + `tick", 'v3' AS "back\slash", 'v4' AS "Mixed Case"`
	exec(t, ctx, conn, d.CreateSchema(), d.CreateState("mq"), d.Diff("diff_q", model, "id", sqlgen.StateTable("mq"), columns(cols...)), d.IndexDiff("diff_q"))
	var seq int64
	var id, op string
	var checksum, identifiers *string
	vals := make([]string, len(cols))
	dest := []any{&seq, &id, &op, &checksum, &identifiers}
	for i := range vals {
		dest = append(dest, &vals[i])
	}
	if err := conn.QueryRow(ctx, d.Page("diff_q", cols, 0, 10)).Scan(dest...); err != nil {
		t.Fatal(err)
	}
	if seq != 1 || id != "r1" || op != sqlgen.OpAdd || checksum == nil || identifiers != nil || !slices.Equal(vals, []string{"v1", "v2", "v3", "v4"}) {
		t.Errorf("page row: %d %s %s %v %v %q", seq, id, op, deref(checksum), deref(identifiers), vals)
	}
}

// Each dialect's literal, read by PostgreSQL: Postgres's as a standard string; Redshift's
// with standard_conforming_strings off, where PostgreSQL reads backslashes as Redshift does
// (and misreads a standard string holding one); BigQuery's and Snowflake's as an E-string,
// whose escapes are theirs.
func TestOnPostgresLiterals(t *testing.T) {
	t.Parallel()
	ctx, conn := connect(t)
	values := []string{"it's \\ a\nb", `\'; SELECT 'x`, `ends\`, "''\\\\''", "cr\r\ttab", "é✓", ""}
	read := func(lit string) (string, error) {
		var got string
		// An unnamed statement is parsed anew each time: one prepared (and cached) before the SET
		// below would keep the way it was read.
		err := conn.QueryRow(ctx, "SELECT "+lit, pgx.QueryExecModeExec).Scan(&got)
		return got, err
	}
	for _, s := range values {
		if got, err := read(sqlgen.Postgres.Literal(s)); err != nil || got != s {
			t.Errorf("postgres: %s reads as %q, %v; want %q", sqlgen.Postgres.Literal(s), got, err, s)
		}
		for _, d := range []sqlgen.Dialect{sqlgen.BigQuery, sqlgen.Snowflake} {
			if got, err := read("E" + d.Literal(s)); err != nil || got != s {
				t.Errorf("%s: E%s reads as %q, %v; want %q", d.Name, d.Literal(s), got, err, s)
			}
		}
	}
	if _, err := conn.Exec(ctx, "SET standard_conforming_strings = off; SET escape_string_warning = off"); err != nil {
		t.Fatal(err)
	}
	for _, s := range values {
		if got, err := read(sqlgen.Redshift.Literal(s)); err != nil || got != s {
			t.Errorf("redshift: %s reads as %q, %v; want %q", sqlgen.Redshift.Literal(s), got, err, s)
		}
		if strings.Contains(s, `\`) { // the reason Redshift has a literal of its own
			if got, err := read(sqlgen.Postgres.Literal(s)); err == nil && got == s {
				t.Errorf("with backslash escapes, the standard %s still reads as %q", sqlgen.Postgres.Literal(s), got)
			}
		}
	}
}

// A position PostgreSQL reports in a previewed model, minus ModelOffset, is the position in
// the model.
func TestOnPostgresModelOffset(t *testing.T) {
	t.Parallel()
	ctx, conn := connect(t)
	exec(t, ctx, conn, "CREATE TABLE t (id INTEGER)")
	for _, c := range []struct {
		sql  string
		want int
	}{
		{"SELECT idd FROM t", 8},
		{"SELECT id\nFROM t\nWHERE nope = 1", 24},
		{"SELECT 'é✓', id FROM t WHERE missing > 0", 30}, // positions count characters, not bytes
	} {
		_, err := conn.Exec(ctx, sqlgen.Postgres.Preview(c.sql, 10))
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			t.Fatalf("Preview(%q): %v", c.sql, err)
		}
		if got := int(pe.Position) - sqlgen.ModelOffset(); got != c.want {
			t.Errorf("Preview(%q): %q at %d, minus ModelOffset %d = %d, want %d", c.sql, pe.Message, pe.Position, sqlgen.ModelOffset(), got, c.want)
		}
	}
}

// stateRow is a record's row in a mapping's state table.
type stateRow struct {
	Checksum, Identifiers, FailedChecksum, FailedSync *string
	Attempts                                          int32
}

// pageRow is a row of a diff's page (with the model's columns id and email).
type pageRow struct {
	Seq                   int64
	ID, Op                string
	Checksum, Identifiers *string
	ModelID, Email        *string
}

// The whole round of statements, run for real on PostgreSQL over several syncs of one mapping:
// the diff (running the model), the id check, counts, pages, and the outcomes recorded (twice,
// as after a crash) into the state the next diff reads. Once with Postgres's statements, and
// once with Redshift's (its LEN given by lenShim) in a session that reads strings as Redshift
// does: its MD5 checksum, and its UPDATE … FROM and INSERT … NOT IN, on a state table with no
// key, do what ON CONFLICT does.
func TestOnPostgresSyncState(t *testing.T) {
	t.Parallel()
	for _, d := range []sqlgen.Dialect{sqlgen.Postgres, sqlgen.Redshift} {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			syncState(t, d)
		})
	}
}

// session connects to a throwaway PostgreSQL for dialect d's statements: for Redshift's, with
// standard_conforming_strings off, so that a backslash in a string is an escape there as it
// is in Redshift. Queries go with QueryExecModeExec, parsed anew each time; an Exec without
// arguments is sent as it is (the simple protocol, with nothing to interpolate).
func session(t *testing.T, d sqlgen.Dialect) (context.Context, *pgx.Conn) {
	t.Helper()
	ctx, conn := connect(t)
	want := "on"
	if d.Name == sqlgen.Redshift.Name {
		if _, err := conn.Exec(ctx, "SET standard_conforming_strings = off; SET escape_string_warning = off"); err != nil {
			t.Fatal(err)
		}
		want = "off"
	}
	var got string
	if err := conn.QueryRow(ctx, "SHOW standard_conforming_strings", pgx.QueryExecModeExec).Scan(&got); err != nil || got != want {
		t.Fatalf("standard_conforming_strings = %q, %v; want %q", got, err, want)
	}
	return ctx, conn
}

// query runs a query parsed anew (see session).
func query(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string) pgx.Rows {
	t.Helper()
	rows, err := conn.Query(ctx, sql, pgx.QueryExecModeExec)
	if err != nil {
		t.Fatalf("%v\nin: %s", err, sql)
	}
	return rows
}

// readState reads a mapping's state table, and fails on a record that is there twice (the
// state tables of Redshift, BigQuery and Snowflake have no key to refuse one).
func readState(t *testing.T, ctx context.Context, conn *pgx.Conn, d sqlgen.Dialect, state string) map[string]stateRow {
	t.Helper()
	rows := query(t, ctx, conn, "SELECT record_id, checksum, identifiers, failed_checksum, failed_sync, attempts FROM "+d.Table(state))
	out := map[string]stateRow{}
	var id string
	var r stateRow
	if _, err := pgx.ForEachRow(rows, []any{&id, &r.Checksum, &r.Identifiers, &r.FailedChecksum, &r.FailedSync, &r.Attempts}, func() error {
		if _, dup := out[id]; dup {
			t.Errorf("%s is in the state twice", id)
		}
		out[id] = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkState compares a state read with the one wanted.
func checkState(t *testing.T, when string, got, want map[string]stateRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: state has %d records, want %d", when, len(got), len(want))
	}
	for id, w := range want {
		if g, ok := got[id]; !ok || !sameRow(g, w) {
			t.Errorf("%s: %s = {%s %s %s %s %d} (there: %v), want {%s %s %s %s %d}", when, id,
				deref(g.Checksum), deref(g.Identifiers), deref(g.FailedChecksum), deref(g.FailedSync), g.Attempts, ok,
				deref(w.Checksum), deref(w.Identifiers), deref(w.FailedChecksum), deref(w.FailedSync), w.Attempts)
		}
	}
}

func sameRow(a, b stateRow) bool {
	return equalPtr(a.Checksum, b.Checksum) && equalPtr(a.Identifiers, b.Identifiers) && equalPtr(a.FailedChecksum, b.FailedChecksum) &&
		equalPtr(a.FailedSync, b.FailedSync) && a.Attempts == b.Attempts
}

// outRow is a row of a sync's outcomes table.
type outRow struct {
	RecordID, Op, Checksum, Identifiers string
	Failed                              int32
}

// recordTwice runs a page's RecordOutcomes twice, as a page done again after a crash, and checks
// that the outcomes table then holds that page once, as given.
func recordTwice(t *testing.T, ctx context.Context, conn *pgx.Conn, d sqlgen.Dialect, state, syncID string, outs []sqlgen.Outcome) {
	t.Helper()
	out := sqlgen.WorkTable(syncID, "out")
	exec(t, ctx, conn, d.RecordOutcomes(state, out, syncID, outs)...)
	exec(t, ctx, conn, d.RecordOutcomes(state, out, syncID, outs)...)
	got, err := pgx.CollectRows(query(t, ctx, conn, "SELECT record_id, op, checksum, identifiers, failed FROM "+d.Table(out)), pgx.RowToStructByPos[outRow])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]outRow{}
	for _, o := range outs {
		r := outRow{o.RecordID, o.Op, o.Checksum, o.Identifiers, 0}
		if o.Failed {
			r.Failed = 1
		}
		want[o.RecordID] = r
	}
	if len(got) != len(outs) {
		t.Errorf("%s: the outcomes table holds %d rows, want the page's %d", syncID, len(got), len(outs))
	}
	for _, r := range got {
		if want[r.RecordID] != r {
			t.Errorf("%s: outcomes row %+v, want %+v", syncID, r, want[r.RecordID])
		}
	}
}

// syncState runs TestOnPostgresSyncState with dialect d's statements.
func syncState(t *testing.T, d sqlgen.Dialect) {
	ctx, conn := session(t, d)
	const mapping = "m1"
	state := sqlgen.StateTable(mapping)
	cols := []string{"id", "email"}
	exec(t, ctx, conn, d.CreateSchema(), d.CreateState(mapping), d.CreateState(mapping), lenShim) // twice: IF NOT EXISTS

	// newOutcomes makes a sync's outcomes table, as a sync does once its diff is built.
	newOutcomes := func(syncID string) {
		t.Helper()
		out := sqlgen.WorkTable(syncID, "out")
		exec(t, ctx, conn, d.DropTable(out), d.CreateOutcomes(out))
	}
	// plan diffs model for syncID, as a sync does, and returns its diff's counts and rows, read
	// in pages of 2.
	plan := func(syncID, model string) (map[string]int64, []pageRow) {
		t.Helper()
		diff := sqlgen.WorkTable(syncID, "diff")
		stmts := []string{d.DropTable(diff), d.Diff(diff, model, "id", state, columns(cols...))}
		for _, s := range []string{d.FillIdentifiers(diff, state), d.IndexDiff(diff)} {
			if s != "" {
				stmts = append(stmts, s)
			}
		}
		exec(t, ctx, conn, stmts...)
		if err := conn.QueryRow(ctx, d.FirstBadID(diff), pgx.QueryExecModeExec).Scan(new(*string), new(int64)); !errors.Is(err, pgx.ErrNoRows) {
			t.Fatalf("%s: FirstBadID: %v", syncID, err)
		}
		newOutcomes(syncID)
		counts := map[string]int64{}
		var op string
		var n int64
		if _, err := pgx.ForEachRow(query(t, ctx, conn, d.Counts(diff)), []any{&op, &n}, func() error { counts[op] = n; return nil }); err != nil {
			t.Fatal(err)
		}
		var all []pageRow
		for after := int64(0); ; after += 2 {
			page, err := pgx.CollectRows(query(t, ctx, conn, d.Page(diff, cols, after, 2)), pgx.RowToStructByPos[pageRow])
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
		}
		for i, r := range all {
			if r.Seq != int64(i+1) || (i > 0 && all[i-1].ID >= r.ID) {
				t.Fatalf("%s: rows out of order: %+v", syncID, all)
			}
		}
		return counts, all
	}
	record := func(syncID string, outs ...sqlgen.Outcome) {
		t.Helper()
		recordTwice(t, ctx, conn, d, state, syncID, outs)
	}
	readState := func() map[string]stateRow { t.Helper(); return readState(t, ctx, conn, d, state) }
	checkState := func(when string, want map[string]stateRow) { t.Helper(); checkState(t, when, readState(), want) }
	model := func(rows ...string) string {
		return "SELECT * FROM (VALUES " + strings.Join(rows, ", ") + ") t(id, email)"
	}
	// sum is a record's checksum: Postgres's, PostgreSQL's hash of the row of its columns as
	// text (their types unknown here); Redshift's, the MD5 of its length-prefixed columns.
	sum := func(id, email string) string {
		if d.Name != sqlgen.Postgres.Name {
			return md5Hex(fmt.Sprintf("%d:%s|%d:%s", len(id), id, len(email), email))
		}
		return recordHash(t, ctx, conn, id, email)
	}
	ids := func(email string) string { return `{"email":"` + email + `"}` }

	// Sync 1: every record is added; r2 fails, the others are synced.
	counts, rows := plan("s1", model("('r1','a@x')", "('r2','b@x')", "('r3','c@x')"))
	if !maps.Equal(counts, map[string]int64{sqlgen.OpAdd: 3}) || len(rows) != 3 {
		t.Fatalf("s1: %v %+v", counts, rows)
	}
	for i, r := range rows {
		id := fmt.Sprintf("r%d", i+1)
		email := string(rune('a'+i)) + "@x"
		if r.ID != id || r.Op != sqlgen.OpAdd || deref(r.Checksum) != sum(id, email) || r.Identifiers != nil || deref(r.Email) != email {
			t.Errorf("s1 row %d: %+v", i, r)
		}
	}
	record("s1",
		sqlgen.Outcome{RecordID: "r1", Op: sqlgen.OpAdd, Checksum: sum("r1", "a@x"), Identifiers: ids("a@x")},
		sqlgen.Outcome{RecordID: "r2", Op: sqlgen.OpAdd, Checksum: sum("r2", "b@x"), Failed: true})
	synced := func(id, email string) stateRow {
		return stateRow{Checksum: ptr(sum(id, email)), Identifiers: ptr(ids(email))}
	}
	failed := func(id, email, sync string, attempts int32) stateRow {
		return stateRow{FailedChecksum: ptr(sum(id, email)), FailedSync: ptr(sync), Attempts: attempts}
	}
	checkState("after s1's first page (recorded twice)", map[string]stateRow{"r1": synced("r1", "a@x"), "r2": failed("r2", "b@x", "s1", 1)})
	// Its second page: the first page's outcomes, left in the outcomes table, are not read again.
	record("s1", sqlgen.Outcome{RecordID: "r3", Op: sqlgen.OpAdd, Checksum: sum("r3", "c@x"), Identifiers: ids("c@x")})
	checkState("after s1 (recorded twice)", map[string]stateRow{"r1": synced("r1", "a@x"), "r2": failed("r2", "b@x", "s1", 1), "r3": synced("r3", "c@x")})

	// Sync 2, nothing changed: only the failed r2 is tried again (still an add), and fails: 2.
	counts, rows = plan("s2", model("('r1','a@x')", "('r2','b@x')", "('r3','c@x')"))
	if !maps.Equal(counts, map[string]int64{sqlgen.OpAdd: 1}) || len(rows) != 1 || rows[0].ID != "r2" || rows[0].Op != sqlgen.OpAdd {
		t.Fatalf("s2: %v %+v", counts, rows)
	}
	record("s2", sqlgen.Outcome{RecordID: "r2", Op: sqlgen.OpAdd, Checksum: sum("r2", "b@x"), Failed: true})
	checkState("after s2", map[string]stateRow{"r1": synced("r1", "a@x"), "r2": failed("r2", "b@x", "s2", 2), "r3": synced("r3", "c@x")})

	// Sync 3: r1 changed (update), r2 changed (a new checksum: attempts start again at 1), r3 left
	// (a delete, addressed by the identifiers last synced).
	m3 := model("('r1','a2@x')", "('r2','b2@x')")
	counts, rows = plan("s3", m3)
	if !maps.Equal(counts, map[string]int64{sqlgen.OpUpdate: 1, sqlgen.OpAdd: 1, sqlgen.OpDelete: 1}) || len(rows) != 3 {
		t.Fatalf("s3: %v %+v", counts, rows)
	}
	if r := rows[0]; r.ID != "r1" || r.Op != sqlgen.OpUpdate || deref(r.Checksum) != sum("r1", "a2@x") || deref(r.Identifiers) != ids("a@x") || deref(r.Email) != "a2@x" {
		t.Errorf("s3 r1: %+v", r)
	}
	if r := rows[1]; r.ID != "r2" || r.Op != sqlgen.OpAdd || deref(r.Checksum) != sum("r2", "b2@x") {
		t.Errorf("s3 r2: %+v", r)
	}
	if r := rows[2]; r.ID != "r3" || r.Op != sqlgen.OpDelete || r.Checksum != nil || deref(r.Identifiers) != ids("c@x") || r.Email != nil {
		t.Errorf("s3 r3: %+v", r)
	}
	record("s3",
		sqlgen.Outcome{RecordID: "r1", Op: sqlgen.OpUpdate, Checksum: sum("r1", "a2@x"), Identifiers: ids("a2@x")},
		sqlgen.Outcome{RecordID: "r2", Op: sqlgen.OpAdd, Checksum: sum("r2", "b2@x"), Failed: true},
		sqlgen.Outcome{RecordID: "r3", Op: sqlgen.OpDelete, Identifiers: ids("c@x")})
	checkState("after s3", map[string]stateRow{"r1": synced("r1", "a2@x"), "r2": failed("r2", "b2@x", "s3", 1)})

	// r2 keeps failing with that checksum until it has MaxAttempts; then it is left out.
	for i := 2; i <= sqlgen.MaxAttempts; i++ {
		sy := fmt.Sprintf("s3.%d", i)
		if _, rows := plan(sy, m3); len(rows) != 1 || rows[0].ID != "r2" {
			t.Fatalf("%s: %+v", sy, rows)
		}
		record(sy, sqlgen.Outcome{RecordID: "r2", Op: sqlgen.OpAdd, Checksum: sum("r2", "b2@x"), Failed: true})
	}
	last := fmt.Sprintf("s3.%d", sqlgen.MaxAttempts)
	checkState("after MaxAttempts", map[string]stateRow{"r1": synced("r1", "a2@x"), "r2": failed("r2", "b2@x", last, sqlgen.MaxAttempts)})
	if counts, rows := plan("s4", m3); len(counts) != 0 || len(rows) != 0 {
		t.Fatalf("s4, r2 failed %d times: %v %+v", sqlgen.MaxAttempts, counts, rows)
	}

	// Once r2 changes it is tried again, and synced: its failure is forgotten.
	counts, rows = plan("s5", model("('r1','a2@x')", "('r2','b3@x')"))
	if !maps.Equal(counts, map[string]int64{sqlgen.OpAdd: 1}) || len(rows) != 1 || rows[0].ID != "r2" {
		t.Fatalf("s5: %v %+v", counts, rows)
	}
	record("s5", sqlgen.Outcome{RecordID: "r2", Op: sqlgen.OpAdd, Checksum: sum("r2", "b3@x"), Identifiers: ids("b3@x")})
	checkState("after s5", map[string]stateRow{"r1": synced("r1", "a2@x"), "r2": synced("r2", "b3@x")})

	// A synced record that then fails keeps what was synced, and counts from 1.
	counts, _ = plan("s6", model("('r1','a4@x')", "('r2','b3@x')"))
	if !maps.Equal(counts, map[string]int64{sqlgen.OpUpdate: 1}) {
		t.Fatalf("s6: %v", counts)
	}
	record("s6", sqlgen.Outcome{RecordID: "r1", Op: sqlgen.OpUpdate, Checksum: sum("r1", "a4@x"), Failed: true})
	r1 := synced("r1", "a2@x")
	r1.FailedChecksum, r1.FailedSync, r1.Attempts = ptr(sum("r1", "a4@x")), ptr("s6"), 1
	checkState("after s6", map[string]stateRow{"r1": r1, "r2": synced("r2", "b3@x")})

	// A failed delete is a failure, not a delete: the record stays as synced, and its delete is
	// tried again. r1, tried again, is synced.
	m7 := model("('r1','a4@x')")
	counts, rows = plan("s7", m7)
	if !maps.Equal(counts, map[string]int64{sqlgen.OpUpdate: 1, sqlgen.OpDelete: 1}) || len(rows) != 2 || rows[1].ID != "r2" || rows[1].Op != sqlgen.OpDelete {
		t.Fatalf("s7: %v %+v", counts, rows)
	}
	record("s7",
		sqlgen.Outcome{RecordID: "r1", Op: sqlgen.OpUpdate, Checksum: sum("r1", "a4@x"), Identifiers: ids("a4@x")},
		sqlgen.Outcome{RecordID: "r2", Op: sqlgen.OpDelete, Identifiers: ids("b3@x"), Failed: true})
	r2 := synced("r2", "b3@x")
	r2.FailedChecksum, r2.FailedSync, r2.Attempts = ptr(""), ptr("s7"), 1
	checkState("after s7", map[string]stateRow{"r1": synced("r1", "a4@x"), "r2": r2})
	counts, rows = plan("s8", m7)
	if !maps.Equal(counts, map[string]int64{sqlgen.OpDelete: 1}) || len(rows) != 1 || rows[0].ID != "r2" || deref(rows[0].Identifiers) != ids("b3@x") {
		t.Fatalf("s8: %v %+v", counts, rows)
	}
	record("s8", sqlgen.Outcome{RecordID: "r2", Op: sqlgen.OpDelete, Identifiers: ids("b3@x")})
	checkState("after s8", map[string]stateRow{"r1": synced("r1", "a4@x")})

	// Record ids, checksums, identifiers and sync ids with a quote, a backslash and a newline go
	// through the literals intact.
	odd := "it's \\ a\nb"
	newOutcomes(odd)
	record(odd, sqlgen.Outcome{RecordID: odd, Op: sqlgen.OpAdd, Checksum: odd, Identifiers: odd})
	if got := readState()[odd]; deref(got.Checksum) != odd || deref(got.Identifiers) != odd {
		t.Errorf("record %q: %+v", odd, got)
	}
	record(odd, sqlgen.Outcome{RecordID: odd, Op: sqlgen.OpAdd, Checksum: odd + "2", Failed: true})
	record(odd, sqlgen.Outcome{RecordID: odd, Op: sqlgen.OpAdd, Checksum: odd + "2", Failed: true}) // the same sync: counts once
	if got := readState()[odd]; deref(got.Checksum) != odd || deref(got.FailedChecksum) != odd+"2" || deref(got.FailedSync) != odd || got.Attempts != 1 {
		t.Errorf("record %q, failed in sync %q: %+v", odd, odd, got)
	}
	newOutcomes("s10")
	record("s10", sqlgen.Outcome{RecordID: odd, Op: sqlgen.OpDelete})
	if _, ok := readState()[odd]; ok {
		t.Errorf("record %q not deleted", odd)
	}
}

// applyOutcomes is what RecordOutcomes does, in Go: the state a page's outcomes leave.
func applyOutcomes(state map[string]stateRow, syncID string, outs []sqlgen.Outcome) {
	for _, o := range outs {
		r, ok := state[o.RecordID]
		switch {
		case o.Failed:
			n := int32(1)
			if ok && r.FailedSync != nil && *r.FailedSync == syncID {
				n = r.Attempts
			} else if ok && r.FailedChecksum != nil && *r.FailedChecksum == o.Checksum {
				n = r.Attempts + 1
			}
			r.FailedChecksum, r.FailedSync, r.Attempts = ptr(o.Checksum), ptr(syncID), n
			state[o.RecordID] = r
		case o.Op == sqlgen.OpDelete:
			delete(state, o.RecordID)
		default:
			state[o.RecordID] = stateRow{Checksum: ptr(o.Checksum), Identifiers: ptr(o.Identifiers)}
		}
	}
}

// Pages of 3,000 and 5,000 outcomes (5,000 as one UNION ALL took PostgreSQL over 20 s to plan),
// each recorded twice by Postgres's and by Redshift's statements on PostgreSQL, in several
// INSERTs and quickly, leave the state applyOutcomes does.
func TestOnPostgresLargePages(t *testing.T) {
	t.Parallel()
	for _, d := range []sqlgen.Dialect{sqlgen.Postgres, sqlgen.Redshift} {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			ctx, conn := session(t, d)
			state := sqlgen.StateTable("big")
			exec(t, ctx, conn, d.CreateSchema(), d.CreateState("big"))
			want := map[string]stateRow{}
			// Sync b1 adds r0000–r2999; every third fails.
			b1 := make([]sqlgen.Outcome, 3000)
			for i := range b1 {
				id := fmt.Sprintf("r%04d", i)
				b1[i] = sqlgen.Outcome{RecordID: id, Op: sqlgen.OpAdd, Checksum: "c1-" + id, Identifiers: `{"id":"` + id + `"}`, Failed: i%3 == 0}
			}
			// Sync b2, one page: of those, deletes (some failing), updates synced, updates failing
			// with the checksum that failed before or with a new one; and r3000–r4999 added.
			b2 := make([]sqlgen.Outcome, 5000)
			for i := range b2 {
				id := fmt.Sprintf("r%04d", i)
				o := sqlgen.Outcome{RecordID: id, Op: sqlgen.OpAdd, Checksum: "c2-" + id, Identifiers: `{"id":"` + id + `","v":2}`, Failed: i%7 == 0}
				if i < 3000 {
					switch i % 4 {
					case 0:
						o = sqlgen.Outcome{RecordID: id, Op: sqlgen.OpDelete, Identifiers: `{"id":"` + id + `"}`, Failed: i%8 == 0}
					case 1:
						o.Op, o.Failed = sqlgen.OpUpdate, false
					case 2:
						o.Op, o.Checksum, o.Failed = sqlgen.OpUpdate, "c1-"+id, true
					case 3:
						o.Op, o.Failed = sqlgen.OpUpdate, true
					}
				}
				b2[i] = o
			}
			for _, page := range []struct {
				sync string
				outs []sqlgen.Outcome
			}{{"b1", b1}, {"b2", b2}} {
				exec(t, ctx, conn, d.CreateOutcomes(sqlgen.WorkTable(page.sync, "out")))
				inserts := 0
				for _, s := range d.RecordOutcomes(state, sqlgen.WorkTable(page.sync, "out"), page.sync, page.outs) {
					if strings.HasPrefix(s, "INSERT INTO "+d.Table(sqlgen.WorkTable(page.sync, "out"))+" ") {
						inserts++
					}
				}
				if inserts != len(page.outs)/1000 {
					t.Errorf("%s: %d outcomes in %d INSERTs", page.sync, len(page.outs), inserts)
				}
				start := time.Now()
				recordTwice(t, ctx, conn, d, state, page.sync, page.outs)
				if took := time.Since(start); took > 10*time.Second {
					t.Errorf("%s: %d outcomes took %v to record twice", page.sync, len(page.outs), took)
				} else {
					t.Logf("%s: %d outcomes recorded twice in %v", page.sync, len(page.outs), took)
				}
				applyOutcomes(want, page.sync, page.outs)
				checkState(t, "after "+page.sync, readState(t, ctx, conn, d, state), want)
			}
			// applyOutcomes itself, by hand, for a few records of b2.
			for id, w := range map[string]stateRow{
				"r0000": {FailedChecksum: ptr(""), FailedSync: ptr("b2"), Attempts: 1},                                                                        // failed in b1; its delete fails
				"r0001": {Checksum: ptr("c2-r0001"), Identifiers: ptr(`{"id":"r0001","v":2}`)},                                                                // synced in b1, updated
				"r0003": {FailedChecksum: ptr("c2-r0003"), FailedSync: ptr("b2"), Attempts: 1},                                                                // failed in b1, then with a new checksum
				"r0006": {FailedChecksum: ptr("c1-r0006"), FailedSync: ptr("b2"), Attempts: 2},                                                                // failed in b1, again with that checksum
				"r0010": {Checksum: ptr("c1-r0010"), Identifiers: ptr(`{"id":"r0010"}`), FailedChecksum: ptr("c1-r0010"), FailedSync: ptr("b2"), Attempts: 1}, // synced in b1, then failed
				"r3001": {Checksum: ptr("c2-r3001"), Identifiers: ptr(`{"id":"r3001","v":2}`)},                                                                // added
				"r3003": {FailedChecksum: ptr("c2-r3003"), FailedSync: ptr("b2"), Attempts: 1},                                                                // added, failed
			} {
				if g, ok := want[id]; !ok || !sameRow(g, w) {
					t.Errorf("applyOutcomes: %s = %+v (there: %v), want %+v", id, g, ok, w)
				}
			}
			if _, ok := want["r0004"]; ok || len(want) != 5000-375 { // r0004 deleted, as every i%4 == 0 but i%8 == 0
				t.Errorf("applyOutcomes: %d records, r0004 there: %v", len(want), ok)
			}
		})
	}
}
