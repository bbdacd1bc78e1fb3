package sqlgen_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/unifiedprofiles/up/infra/pgtest"
	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
)

// A small Contact: a compound field (no column), a field of each kind, and two records, the
// second deleted and with values that fit no column.
var (
	sfGoldenFields = []sqlgen.SalesforceField{{Name: "Id", Type: "id"}, {Name: "IsDeleted", Type: "boolean"}, {Name: "Name", Type: "string"},
		{Name: "MailingAddress", Type: "address"}, {Name: "NumberOfEmployees", Type: "int"}, {Name: "Score__c", Type: "double"},
		{Name: "Birthdate", Type: "date"}, {Name: "SystemModstamp", Type: "datetime"}}
	sfGoldenRecords = []map[string]any{
		{"attributes": map[string]any{"type": "Contact"}, "Id": "003A", "IsDeleted": false, "Name": "O'Brien\\\n", "MailingAddress": map[string]any{"city": "X"},
			"NumberOfEmployees": 12.0, "Score__c": 0.1, "Birthdate": "1990-05-17", "SystemModstamp": "2026-01-02T03:04:05.000+0000"},
		{"Id": "003B", "IsDeleted": true, "Name": nil, "NumberOfEmployees": "x", "Score__c": "nope", "Birthdate": "bad", "SystemModstamp": nil},
	}
	sfGoldenAt = time.Date(2026, 1, 2, 3, 0, 0, 0, time.FixedZone("CET", 3600)).Add(time.Hour) // 03:00 UTC
)

func TestSalesforceNames(t *testing.T) {
	t.Parallel()
	if sqlgen.SalesforceSchema != "salesforce" || sqlgen.SalesforceColID != "id" || sqlgen.SalesforceColDeleted != "is_deleted" || sqlgen.SalesforceColSyncedAt != "_synced_at" {
		t.Errorf("names: %s %s %s %s", sqlgen.SalesforceSchema, sqlgen.SalesforceColID, sqlgen.SalesforceColDeleted, sqlgen.SalesforceColSyncedAt)
	}
	for in, want := range map[string]string{"Contact": "contact", "My_Object__c": "my_object__c", "ns__Thing__c": "ns__thing__c"} {
		if got := sqlgen.SalesforceTableName(in); got != want {
			t.Errorf("SalesforceTableName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"Id": "id", "IsDeleted": "is_deleted", "isdeleted": "is_deleted", "My_Field__c": "my_field__c", "SystemModstamp": "systemmodstamp"} {
		if got := sqlgen.SalesforceColumnName(in); got != want {
			t.Errorf("SalesforceColumnName(%q) = %q, want %q", in, got, want)
		}
	}
	for _, c := range byDialect(`"salesforce"."my_object__c"`, `"salesforce"."my_object__c"`, "`salesforce`.`my_object__c`", `"salesforce"."my_object__c"`) {
		if got := c.d.SalesforceTable("My_Object__c"); got != c.want {
			t.Errorf("%s: SalesforceTable = %s, want %s", c.d.Name, got, c.want)
		}
	}
}

func TestCreateSalesforceSchema(t *testing.T) {
	t.Parallel()
	for _, c := range byDialect(`CREATE SCHEMA IF NOT EXISTS "salesforce"`, `CREATE SCHEMA IF NOT EXISTS "salesforce"`,
		"CREATE SCHEMA IF NOT EXISTS `salesforce`", `CREATE SCHEMA IF NOT EXISTS "salesforce"`) {
		if got := c.d.CreateSalesforceSchema(); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.d.Name, got, c.want)
		}
	}
}

// One typed column per field, lower-cased; the address gets none; id first (the key on
// Postgres), is_deleted and _synced_at last.
func TestCreateObjectTable(t *testing.T) {
	t.Parallel()
	for _, c := range byDialect(
		`CREATE TABLE IF NOT EXISTS "salesforce"."contact" ("id" TEXT NOT NULL, "name" TEXT, "numberofemployees" BIGINT, "score__c" DOUBLE PRECISION, "birthdate" DATE, "systemmodstamp" TIMESTAMPTZ, "is_deleted" BOOLEAN, "_synced_at" TIMESTAMPTZ, PRIMARY KEY ("id"))`,
		`CREATE TABLE IF NOT EXISTS "salesforce"."contact" ("id" VARCHAR(65535) NOT NULL, "name" VARCHAR(65535), "numberofemployees" BIGINT, "score__c" DOUBLE PRECISION, "birthdate" DATE, "systemmodstamp" TIMESTAMPTZ, "is_deleted" BOOLEAN, "_synced_at" TIMESTAMPTZ)`,
		"CREATE TABLE IF NOT EXISTS `salesforce`.`contact` (`id` STRING NOT NULL, `name` STRING, `numberofemployees` INT64, `score__c` FLOAT64, `birthdate` DATE, `systemmodstamp` TIMESTAMP, `is_deleted` BOOL, `_synced_at` TIMESTAMP)",
		`CREATE TABLE IF NOT EXISTS "salesforce"."contact" ("id" VARCHAR NOT NULL, "name" VARCHAR, "numberofemployees" BIGINT, "score__c" FLOAT, "birthdate" DATE, "systemmodstamp" TIMESTAMP_TZ, "is_deleted" BOOLEAN, "_synced_at" TIMESTAMP_TZ)`,
	) {
		if got := c.d.CreateObjectTable("Contact", sfGoldenFields); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.d.Name, got, c.want)
		}
	}
	// A describe without Id and IsDeleted still makes them; no fields at all, just ours.
	for _, c := range byDialect(
		`CREATE TABLE IF NOT EXISTS "salesforce"."x" ("id" TEXT NOT NULL, "is_deleted" BOOLEAN, "_synced_at" TIMESTAMPTZ, PRIMARY KEY ("id"))`,
		`CREATE TABLE IF NOT EXISTS "salesforce"."x" ("id" VARCHAR(65535) NOT NULL, "is_deleted" BOOLEAN, "_synced_at" TIMESTAMPTZ)`,
		"CREATE TABLE IF NOT EXISTS `salesforce`.`x` (`id` STRING NOT NULL, `is_deleted` BOOL, `_synced_at` TIMESTAMP)",
		`CREATE TABLE IF NOT EXISTS "salesforce"."x" ("id" VARCHAR NOT NULL, "is_deleted" BOOLEAN, "_synced_at" TIMESTAMP_TZ)`,
	) {
		if got := c.d.CreateObjectTable("X", []sqlgen.SalesforceField{{Name: "Loc", Type: "location"}}); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.d.Name, got, c.want)
		}
	}
}

// Every Salesforce type's column type, per dialect.
func TestSalesforceTypes(t *testing.T) {
	t.Parallel()
	types := map[string][4]string{ // postgres, redshift, bigquery, snowflake
		"boolean":  {"BOOLEAN", "BOOLEAN", "BOOL", "BOOLEAN"},
		"int":      {"BIGINT", "BIGINT", "INT64", "BIGINT"},
		"long":     {"BIGINT", "BIGINT", "INT64", "BIGINT"},
		"double":   {"DOUBLE PRECISION", "DOUBLE PRECISION", "FLOAT64", "FLOAT"},
		"currency": {"DOUBLE PRECISION", "DOUBLE PRECISION", "FLOAT64", "FLOAT"},
		"percent":  {"DOUBLE PRECISION", "DOUBLE PRECISION", "FLOAT64", "FLOAT"},
		"date":     {"DATE", "DATE", "DATE", "DATE"},
		"datetime": {"TIMESTAMPTZ", "TIMESTAMPTZ", "TIMESTAMP", "TIMESTAMP_TZ"},
	}
	for _, text := range []string{"id", "string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox", "time", "reference", "base64", "encryptedstring", "anyType", "somethingNew"} {
		types[text] = [4]string{"TEXT", "VARCHAR(65535)", "STRING", "VARCHAR"}
	}
	for typ, want := range types {
		for i, d := range dialects {
			stmt := d.CreateObjectTable("o", []sqlgen.SalesforceField{{Name: "F__c", Type: typ}})
			if part := d.Quote("f__c") + " " + want[i] + ", "; !strings.Contains(stmt, part) {
				t.Errorf("%s: %s: %s lacks %q", d.Name, typ, stmt, part)
			}
		}
	}
}

func TestListColumns(t *testing.T) {
	t.Parallel()
	std := `SELECT column_name FROM information_schema.columns WHERE table_schema = 'salesforce' AND table_name = 'my_object__c' ORDER BY ordinal_position`
	for _, c := range byDialect(std, std, "SELECT column_name FROM `salesforce`.INFORMATION_SCHEMA.COLUMNS WHERE table_name = 'my_object__c' ORDER BY ordinal_position", std) {
		if got := c.d.ListColumns("My_Object__c"); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.d.Name, got, c.want)
		}
	}
}

// The columns the table lacks (compared in any case), IF NOT EXISTS but on Redshift.
func TestAddColumns(t *testing.T) {
	t.Parallel()
	existing := []string{"ID", "name", "Is_Deleted", "_synced_at", "birthdate"}
	for _, c := range []struct {
		d    sqlgen.Dialect
		want []string
	}{
		{sqlgen.Postgres, []string{`ALTER TABLE "salesforce"."contact" ADD COLUMN IF NOT EXISTS "numberofemployees" BIGINT`, `ALTER TABLE "salesforce"."contact" ADD COLUMN IF NOT EXISTS "score__c" DOUBLE PRECISION`, `ALTER TABLE "salesforce"."contact" ADD COLUMN IF NOT EXISTS "systemmodstamp" TIMESTAMPTZ`}},
		{sqlgen.Redshift, []string{`ALTER TABLE "salesforce"."contact" ADD COLUMN "numberofemployees" BIGINT`, `ALTER TABLE "salesforce"."contact" ADD COLUMN "score__c" DOUBLE PRECISION`, `ALTER TABLE "salesforce"."contact" ADD COLUMN "systemmodstamp" TIMESTAMPTZ`}},
		{sqlgen.BigQuery, []string{"ALTER TABLE `salesforce`.`contact` ADD COLUMN IF NOT EXISTS `numberofemployees` INT64", "ALTER TABLE `salesforce`.`contact` ADD COLUMN IF NOT EXISTS `score__c` FLOAT64", "ALTER TABLE `salesforce`.`contact` ADD COLUMN IF NOT EXISTS `systemmodstamp` TIMESTAMP"}},
		{sqlgen.Snowflake, []string{`ALTER TABLE "salesforce"."contact" ADD COLUMN IF NOT EXISTS "numberofemployees" BIGINT`, `ALTER TABLE "salesforce"."contact" ADD COLUMN IF NOT EXISTS "score__c" FLOAT`, `ALTER TABLE "salesforce"."contact" ADD COLUMN IF NOT EXISTS "systemmodstamp" TIMESTAMP_TZ`}},
	} {
		if got := c.d.AddColumns("Contact", existing, sfGoldenFields); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.d.Name, got, c.want)
		}
		// Nothing to add once every column is there.
		all := []string{"id", "name", "numberofemployees", "score__c", "birthdate", "systemmodstamp", "is_deleted", "_synced_at"}
		if got := c.d.AddColumns("Contact", all, sfGoldenFields); len(got) != 0 {
			t.Errorf("%s: with every column, AddColumns = %q", c.d.Name, got)
		}
		// A table missing even ours gets them.
		if got := c.d.AddColumns("Contact", nil, nil); len(got) != 3 {
			t.Errorf("%s: AddColumns to nothing = %q", c.d.Name, got)
		}
	}
}

// The page's rows as typed literals (a value that fits no column is NULL; the deleted record
// is kept with is_deleted TRUE); Postgres upserts with ON CONFLICT; the others through a work
// table, merged (Redshift: UPDATE then INSERT), then dropped.
func TestUpsertRecords(t *testing.T) {
	t.Parallel()
	const cols = `("id", "name", "numberofemployees", "score__c", "birthdate", "systemmodstamp", "is_deleted", "_synced_at")`
	const bqCols = "(`id`, `name`, `numberofemployees`, `score__c`, `birthdate`, `systemmodstamp`, `is_deleted`, `_synced_at`)"
	rows := func(name, ts string) string {
		return "('003A', " + name + ", 12, 0.1, CAST('1990-05-17' AS DATE), CAST('2026-01-02 03:04:05.000000+00:00' AS " + ts + "), FALSE, CAST('2026-01-02 03:00:00.000000+00:00' AS " + ts + ")), " +
			"('003B', NULL, NULL, NULL, NULL, NULL, TRUE, CAST('2026-01-02 03:00:00.000000+00:00' AS " + ts + "))"
	}
	const set = `"name" = v."name", "numberofemployees" = v."numberofemployees", "score__c" = v."score__c", "birthdate" = v."birthdate", "systemmodstamp" = v."systemmodstamp", "is_deleted" = v."is_deleted", "_synced_at" = v."_synced_at"`
	const values = `v."id", v."name", v."numberofemployees", v."score__c", v."birthdate", v."systemmodstamp", v."is_deleted", v."_synced_at"`
	bq := func(s string) string { return strings.ReplaceAll(s, `"`, "`") } // for names only
	for _, c := range []struct {
		d    sqlgen.Dialect
		want []string
	}{
		{sqlgen.Postgres, []string{`INSERT INTO "salesforce"."contact" ` + cols + ` VALUES ` + rows("'O''Brien\\\n'", "TIMESTAMPTZ") +
			` ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name", "numberofemployees" = EXCLUDED."numberofemployees", "score__c" = EXCLUDED."score__c", "birthdate" = EXCLUDED."birthdate", "systemmodstamp" = EXCLUDED."systemmodstamp", "is_deleted" = EXCLUDED."is_deleted", "_synced_at" = EXCLUDED."_synced_at"`}},
		{sqlgen.Redshift, []string{
			`DROP TABLE IF EXISTS "salesforce"."__unify_page_contact"`,
			`CREATE TABLE "salesforce"."__unify_page_contact" ("id" VARCHAR(65535), "name" VARCHAR(65535), "numberofemployees" BIGINT, "score__c" DOUBLE PRECISION, "birthdate" DATE, "systemmodstamp" TIMESTAMPTZ, "is_deleted" BOOLEAN, "_synced_at" TIMESTAMPTZ)`,
			`INSERT INTO "salesforce"."__unify_page_contact" ` + cols + ` VALUES ` + rows("'O''Brien\\\\\n'", "TIMESTAMPTZ"),
			`UPDATE "salesforce"."contact" AS st SET ` + set + ` FROM "salesforce"."__unify_page_contact" v WHERE st."id" = v."id"`,
			`INSERT INTO "salesforce"."contact" ` + cols + ` SELECT ` + values + ` FROM "salesforce"."__unify_page_contact" v WHERE v."id" NOT IN (SELECT "id" FROM "salesforce"."contact")`,
			`DROP TABLE IF EXISTS "salesforce"."__unify_page_contact"`,
		}},
		{sqlgen.BigQuery, []string{
			"DROP TABLE IF EXISTS `salesforce`.`__unify_page_contact`",
			"CREATE TABLE `salesforce`.`__unify_page_contact` (`id` STRING, `name` STRING, `numberofemployees` INT64, `score__c` FLOAT64, `birthdate` DATE, `systemmodstamp` TIMESTAMP, `is_deleted` BOOL, `_synced_at` TIMESTAMP)",
			"INSERT INTO `salesforce`.`__unify_page_contact` " + bqCols + " VALUES " + rows(`'O\'Brien\\\n'`, "TIMESTAMP"),
			"MERGE INTO `salesforce`.`contact` st USING `salesforce`.`__unify_page_contact` v ON st.`id` = v.`id` WHEN MATCHED THEN UPDATE SET " + bq(set) +
				" WHEN NOT MATCHED THEN INSERT " + bqCols + " VALUES (" + bq(values) + ")",
			"DROP TABLE IF EXISTS `salesforce`.`__unify_page_contact`",
		}},
		{sqlgen.Snowflake, []string{
			`DROP TABLE IF EXISTS "salesforce"."__unify_page_contact"`,
			`CREATE TRANSIENT TABLE "salesforce"."__unify_page_contact" ("id" VARCHAR, "name" VARCHAR, "numberofemployees" BIGINT, "score__c" FLOAT, "birthdate" DATE, "systemmodstamp" TIMESTAMP_TZ, "is_deleted" BOOLEAN, "_synced_at" TIMESTAMP_TZ)`,
			`INSERT INTO "salesforce"."__unify_page_contact" ` + cols + ` VALUES ` + rows(`'O\'Brien\\\n'`, "TIMESTAMP_TZ"),
			`MERGE INTO "salesforce"."contact" st USING "salesforce"."__unify_page_contact" v ON st."id" = v."id" WHEN MATCHED THEN UPDATE SET ` + set +
				` WHEN NOT MATCHED THEN INSERT ` + cols + ` VALUES (` + values + `)`,
			`DROP TABLE IF EXISTS "salesforce"."__unify_page_contact"`,
		}},
	} {
		if got := c.d.UpsertRecords("Contact", sfGoldenFields, sfGoldenRecords, sfGoldenAt); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.d.Name, got, c.want)
		}
		if got := c.d.UpsertRecords("Contact", sfGoldenFields, nil, sfGoldenAt); got != nil {
			t.Errorf("%s: an empty page: %q", c.d.Name, got)
		}
	}
}

// sfRow is the literals of one record's row "(…)" in the INSERT of a page (id first).
func sfRow(t *testing.T, d sqlgen.Dialect, fields []sqlgen.SalesforceField, rec map[string]any) string {
	t.Helper()
	for _, s := range d.UpsertRecords("o", fields, []map[string]any{rec}, sfGoldenAt) {
		if _, after, ok := strings.Cut(s, ") VALUES ("); ok && strings.HasPrefix(s, "INSERT INTO ") {
			if row, _, ok := strings.Cut(after, ") ON CONFLICT"); ok {
				return row
			}
			return strings.TrimSuffix(after, ")")
		}
	}
	t.Fatalf("%s: no INSERT … VALUES for %v", d.Name, rec)
	return ""
}

// Each value as its column's literal; one that does not fit is NULL.
func TestSalesforceValues(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		typ  string
		v    any
		want string // on Postgres
	}{
		{"int", 12.0, "12"},
		{"int", -9223372036854775808.0, "-9223372036854775808"},
		{"int", 9223372036854775808.0, "NULL"},
		{"int", 3.5, "NULL"},
		{"int", "42", "42"},
		{"int", json.Number("7"), "7"},
		{"int", "x", "NULL"},
		{"int", true, "NULL"},
		{"long", 1e15, "1000000000000000"},
		{"double", 0.1, "0.1"},
		{"double", 12.0, "12"},
		{"double", 1e21, "1e+21"},
		{"double", -1.2345678901234568e-300, "-1.2345678901234568e-300"},
		{"double", 123456789.123456789, "1.2345678912345679e+08"},
		{"double", "2.5", "2.5"},
		{"double", "nope", "NULL"},
		{"double", "1; DROP TABLE x", "NULL"},
		{"double", math.Inf(1), "NULL"},
		{"double", math.NaN(), "NULL"},
		{"currency", 19.99, "19.99"},
		{"percent", 50.0, "50"},
		{"boolean", true, "TRUE"},
		{"boolean", false, "FALSE"},
		{"boolean", "true", "TRUE"},
		{"boolean", "yes", "NULL"},
		{"boolean", 1.0, "NULL"},
		{"date", "2026-01-02", "CAST('2026-01-02' AS DATE)"},
		{"date", "2026-02-30", "NULL"},
		{"date", "2026-01-02T03:04:05.000+0000", "NULL"},
		{"date", "0000-01-01", "NULL"},
		{"date", 5.0, "NULL"},
		{"datetime", "2026-01-02T03:04:05.000+0000", "CAST('2026-01-02 03:04:05.000000+00:00' AS TIMESTAMPTZ)"},
		{"datetime", "2026-01-02T03:04:05.123+0200", "CAST('2026-01-02 01:04:05.123000+00:00' AS TIMESTAMPTZ)"},
		{"datetime", "2026-01-02T03:04:05Z", "CAST('2026-01-02 03:04:05.000000+00:00' AS TIMESTAMPTZ)"},
		{"datetime", "2026-01-02T03:04:05.1234567-05:30", "CAST('2026-01-02 08:34:05.123456+00:00' AS TIMESTAMPTZ)"},
		{"datetime", "9999-12-31T23:00:00.000-0500", "NULL"}, // year 10000 in UTC
		{"datetime", "2026-01-02", "NULL"},
		{"datetime", "yesterday'", "NULL"},
		{"string", "a", "'a'"},
		{"string", "it's", "'it''s'"},
		{"string", "nul\x00byte", "'nulbyte'"},
		{"string", "bad\xffutf8", "'bad\uFFFDutf8'"},
		{"string", 5.0, "'5'"},
		{"string", true, "'true'"},
		{"anyType", map[string]any{"a": 1.0}, `'{"a":1}'`},
		{"multipicklist", "A;B", "'A;B'"},
		{"time", "03:04:05.000Z", "'03:04:05.000Z'"},
		{"textarea", nil, "NULL"},
	} {
		fields := []sqlgen.SalesforceField{{Name: "Id", Type: "id"}, {Name: "F__c", Type: c.typ}}
		got := sfRow(t, sqlgen.Postgres, fields, map[string]any{"Id": "r1", "F__c": c.v})
		want := "'r1', " + c.want + ", FALSE, CAST('2026-01-02 03:00:00.000000+00:00' AS TIMESTAMPTZ)"
		if got != want {
			t.Errorf("%s %#v:\n got %s\nwant %s", c.typ, c.v, got, want)
		}
	}
	// Booleans, numbers, NULL and casts are the same everywhere but for the type's name.
	fields := []sqlgen.SalesforceField{{Name: "Id", Type: "id"}, {Name: "B", Type: "boolean"}, {Name: "I", Type: "int"}, {Name: "D", Type: "double"}, {Name: "Dt", Type: "date"}, {Name: "Ts", Type: "datetime"}}
	rec := map[string]any{"Id": "r1", "B": true, "I": 3.0, "D": 0.5, "Dt": "2026-01-02", "Ts": "2026-01-02T03:04:05.000+0000", "IsDeleted": "not a bool"}
	for _, c := range byDialect("TIMESTAMPTZ", "TIMESTAMPTZ", "TIMESTAMP", "TIMESTAMP_TZ") {
		ts := func(s string) string { return "CAST('" + s + "+00:00' AS " + c.want + ")" }
		want := "'r1', TRUE, 3, 0.5, CAST('2026-01-02' AS DATE), " + ts("2026-01-02 03:04:05.000000") + ", NULL, " + ts("2026-01-02 03:00:00.000000")
		if got := sfRow(t, c.d, fields, rec); got != want {
			t.Errorf("%s:\n got %s\nwant %s", c.d.Name, got, want)
		}
	}
}

// Redshift's VARCHAR(65535) holds 65,535 bytes: a longer text is cut there, at a character
// boundary; elsewhere it is whole.
func TestSalesforceLongText(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 40000) // 80,000 bytes
	fields := []sqlgen.SalesforceField{{Name: "Id", Type: "id"}, {Name: "Description", Type: "textarea"}}
	for _, d := range dialects {
		row := sfRow(t, d, fields, map[string]any{"Id": "r1", "Description": long})
		want := long
		if d.Name == sqlgen.Redshift.Name {
			want = strings.Repeat("é", 32767) // 65,534 bytes
		}
		if !strings.HasPrefix(row, "'r1', '"+want+"', ") {
			t.Errorf("%s: a text of %d bytes is written as %.40s… (%d bytes)", d.Name, len(long), row, len(row))
		}
	}
}

// A record without an Id is left out; of two with one Id, the last counts, in the first one's
// place; a page of nothing to write writes nothing.
func TestSalesforceRecordRules(t *testing.T) {
	t.Parallel()
	fields := []sqlgen.SalesforceField{{Name: "Id", Type: "id"}, {Name: "Name", Type: "string"}}
	recs := []map[string]any{{"Id": "a", "Name": "first"}, {"Name": "no id"}, {"Id": "", "Name": "empty id"}, {"Id": 5.0, "Name": "number id"},
		{"Id": "b", "Name": "b"}, {"Id": "a", "Name": "second"}}
	for _, d := range dialects {
		stmts := strings.Join(d.UpsertRecords("o", fields, recs, sfGoldenAt), "\n")
		if !strings.Contains(stmts, "VALUES ('a', 'second', FALSE, ") || !strings.Contains(stmts, "), ('b', 'b', FALSE, ") {
			t.Errorf("%s: %s", d.Name, stmts)
		}
		for _, no := range []string{"first", "no id", "empty id", "number id"} {
			if strings.Contains(stmts, no) {
				t.Errorf("%s: %q written: %s", d.Name, no, stmts)
			}
		}
		if got := d.UpsertRecords("o", fields, recs[1:4], sfGoldenAt); got != nil {
			t.Errorf("%s: records without ids: %q", d.Name, got)
		}
	}
}

// A page goes in INSERTs of at most 1,000 rows and, but for one row alone, 900 KB (BigQuery
// and Snowflake refuse statements over 1 MB).
func TestSalesforceChunks(t *testing.T) {
	t.Parallel()
	fields := []sqlgen.SalesforceField{{Name: "Id", Type: "id"}, {Name: "Description", Type: "textarea"}}
	page := func(n, size int) []map[string]any {
		recs := make([]map[string]any, n)
		for i := range recs {
			recs[i] = map[string]any{"Id": fmt.Sprintf("r%05d", i), "Description": strings.Repeat("x", size)}
		}
		return recs
	}
	for _, d := range dialects {
		for _, c := range []struct {
			n, size int
			want    []int // rows per INSERT
		}{
			{2000, 10, []int{1000, 1000}},
			{2500, 10, []int{1000, 1000, 500}},
			{1, 10, []int{1}},
			{10, 300_000, []int{2, 2, 2, 2, 2}},
			{3, 1_200_000, []int{1, 1, 1}},
		} {
			var got []int
			for _, s := range d.UpsertRecords("o", fields, page(c.n, c.size), sfGoldenAt) {
				if !strings.HasPrefix(s, "INSERT INTO ") || !strings.Contains(s, " VALUES (") {
					continue
				}
				got = append(got, strings.Count(s, "), ('r")+1)
				if n := strings.Count(s, "), ('r") + 1; n > 1 && len(s) > sqlgen.SalesforceBytesPerInsert {
					t.Errorf("%s: an INSERT of %d rows is %d bytes", d.Name, n, len(s))
				}
			}
			if c.size > 65535 && d.Name == sqlgen.Redshift.Name {
				continue // cut to 65,535 bytes: more rows a statement
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("%s: %d records of %d bytes in INSERTs of %v rows, want %v", d.Name, c.n, c.size, got, c.want)
			}
		}
	}
}

// Each dialect's rules over its Salesforce statements.
func TestSalesforceDialectRules(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		stmts := append([]string{d.CreateSalesforceSchema(), d.CreateObjectTable("Contact", sfGoldenFields), d.ListColumns("Contact")},
			d.AddColumns("Contact", nil, sfGoldenFields)...)
		stmts = append(stmts, d.UpsertRecords("Contact", sfGoldenFields, sfGoldenRecords, sfGoldenAt)...)
		all := strings.Join(stmts, "\n")
		for _, no := range []string{"UNION ALL", "(VALUES", "(SELECT CAST('"} {
			if strings.Contains(all, no) {
				t.Errorf("%s: %q in %s", d.Name, no, all)
			}
		}
		for _, s := range stmts {
			if (strings.HasPrefix(s, "DELETE ") || strings.HasPrefix(s, "UPDATE ")) && !strings.Contains(s, " WHERE ") {
				t.Errorf("%s: no WHERE in %s", d.Name, s)
			}
		}
		switch d.Name {
		case "postgres":
			if strings.Contains(all, "MERGE") || strings.Contains(all, "__unify_page") {
				t.Errorf("postgres: a work table or MERGE: %s", all)
			}
		case "redshift":
			if strings.Contains(all, "MERGE") || strings.Contains(all, "ADD COLUMN IF") || strings.Contains(all, "ON CONFLICT") || strings.Contains(all, "PRIMARY KEY") ||
				strings.Contains(strings.ReplaceAll(all, "VARCHAR(65535)", ""), "VARCHAR") || strings.Contains(all, "TEXT") {
				t.Errorf("redshift: %s", all)
			}
		case "bigquery":
			if strings.Contains(all, `"`) || strings.Contains(all, "ON CONFLICT") || strings.Contains(all, "PRIMARY KEY") || strings.Contains(all, "TIMESTAMPTZ") {
				t.Errorf("bigquery: %s", all)
			}
		case "snowflake":
			if strings.Contains(all, "`") || strings.Contains(all, "ON CONFLICT") || strings.Contains(all, "PRIMARY KEY") || strings.Contains(all, "TIMESTAMPTZ") {
				t.Errorf("snowflake: %s", all)
			}
		}
	}
}

// ---- On PostgreSQL ----

// sfOnPostgres returns a dialect's Salesforce statement as PostgreSQL runs it: Snowflake's
// transient tables as plain ones, its TIMESTAMP_TZ as TIMESTAMPTZ, and its strings as
// E-strings, whose backslash escapes are Snowflake's (names here hold no quote and no
// "TIMESTAMP_TZ"). Redshift's runs as it is, in a session (see session) that reads strings as
// Redshift does; PostgreSQL 15 runs Snowflake's MERGE.
func sfOnPostgres(d sqlgen.Dialect, stmt string) string {
	if d.Name != sqlgen.Snowflake.Name {
		return stmt
	}
	stmt = strings.ReplaceAll(stmt, "CREATE TRANSIENT TABLE ", "CREATE TABLE ")
	var b strings.Builder
	for i := 0; i < len(stmt); i++ {
		switch ch := stmt[i]; ch {
		case '"': // a name, copied whole
			j := strings.IndexByte(stmt[i+1:], '"')
			b.WriteString(stmt[i : i+j+2])
			i += j + 1
		case '\'': // a string, copied whole, escapes and all
			b.WriteString("E'")
			for i++; stmt[i] != '\''; i++ {
				if stmt[i] == '\\' {
					b.WriteByte('\\')
					i++
				}
				b.WriteByte(stmt[i])
			}
			b.WriteByte('\'')
		default:
			if strings.HasPrefix(stmt[i:], "TIMESTAMP_TZ") {
				b.WriteString("TIMESTAMPTZ")
				i += len("TIMESTAMP_TZ") - 1
				continue
			}
			b.WriteByte(ch)
		}
	}
	return b.String()
}

func sfExec(t *testing.T, ctx context.Context, conn *pgx.Conn, d sqlgen.Dialect, stmts ...string) {
	t.Helper()
	on := make([]string, len(stmts))
	for i, s := range stmts {
		on[i] = sfOnPostgres(d, s)
	}
	exec(t, ctx, conn, on...)
}

// sfFields has a field of every Salesforce type, the compound ones included, and names that
// need quoting or lower-casing.
var sfFields = []sqlgen.SalesforceField{
	{Name: "Id", Type: "id"}, {Name: "IsDeleted", Type: "boolean"}, {Name: "Name", Type: "string"}, {Name: "Email", Type: "email"},
	{Name: "Phone", Type: "phone"}, {Name: "Description", Type: "textarea"}, {Name: "Website", Type: "url"}, {Name: "Status", Type: "picklist"},
	{Name: "Tags__c", Type: "multipicklist"}, {Name: "Kind__c", Type: "combobox"}, {Name: "Active__c", Type: "boolean"}, {Name: "Count__c", Type: "int"},
	{Name: "Big__c", Type: "long"}, {Name: "Score__c", Type: "double"}, {Name: "Amount__c", Type: "currency"}, {Name: "Ratio__c", Type: "percent"},
	{Name: "Birthdate", Type: "date"}, {Name: "SystemModstamp", Type: "datetime"}, {Name: "CallTime__c", Type: "time"}, {Name: "OwnerId", Type: "reference"},
	{Name: "Photo__c", Type: "base64"}, {Name: "Secret__c", Type: "encryptedstring"}, {Name: "MailingAddress", Type: "address"},
	{Name: "Geo__c", Type: "location"}, {Name: "My_Field__c", Type: "string"}, {Name: "Other", Type: "anyType"},
}

// sfStrings are text values that must survive as they are.
var sfStrings = []string{"plain", "it's", `back\slash`, `\'; DROP TABLE x; --`, "new\nline\r\n", "tab\there", "é✓ 日本語 🙂", "", `ends\`, "''", `"quoted"`, "TIMESTAMP_TZ"}

// sfRecord is record i of version v.
func sfRecord(i, v int) map[string]any {
	s := func(k int) string { return sfStrings[(i+k+v)%len(sfStrings)] }
	r := map[string]any{
		"attributes": map[string]any{"type": "Contact", "url": "/services/data/v58.0/sobjects/Contact/x"},
		"Id":         fmt.Sprintf("003%015d", i), "IsDeleted": false, "Name": fmt.Sprintf("Name %d v%d", i, v), "Email": s(1), "Phone": "+1 555 " + fmt.Sprint(i),
		"Description": s(2), "Website": "https://x.example/" + s(3), "Status": s(4), "Tags__c": "A;B", "Kind__c": s(5), "Active__c": (i+v)%2 == 0,
		"Count__c": float64(i*v - 1000), "Big__c": float64(int64(1)<<53 - int64(i)), "Score__c": float64(i)/3 + float64(v), "Amount__c": 19.99 * float64(v),
		"Ratio__c": 0.1 * float64(i%10), "Birthdate": time.Date(1950+i%70, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC).Format(time.DateOnly),
		"SystemModstamp": time.Date(2026, 1, 2, 3, 4, 5, (i%1000)*1e6, time.UTC).Add(time.Duration(v) * time.Hour).Format("2006-01-02T15:04:05.000-0700"),
		"CallTime__c":    "03:04:05.000Z", "OwnerId": "005000000000001", "Photo__c": "/services/data/v58.0/sobjects/Contact/x/Photo__c", "Secret__c": "****" + s(6),
		"MailingAddress": map[string]any{"city": "Paris"}, "Geo__c": map[string]any{"latitude": 1.5}, "My_Field__c": s(7), "Other": nil,
	}
	switch i % 50 { // some NULLs
	case 7:
		r["Score__c"], r["Birthdate"], r["SystemModstamp"], r["Active__c"], r["Email"] = nil, nil, nil, nil, nil
	case 8:
		r["Score__c"], r["Count__c"], r["Birthdate"] = "not a number", 1.5, "not a date" // NULL, not a failed page
	}
	return r
}

// sfExpected is what a record's row holds, normalised as sfNormal does, by column.
func sfExpected(fields []sqlgen.SalesforceField, rec map[string]any, syncedAt time.Time) map[string]any {
	out := map[string]any{"id": rec["Id"], "is_deleted": rec["IsDeleted"] == true, "_synced_at": syncedAt.UTC().Format(time.RFC3339Nano)}
	for _, f := range fields {
		col := strings.ToLower(f.Name)
		v := rec[f.Name]
		switch f.Type {
		case "id", "boolean":
			if f.Name == "IsDeleted" {
				continue
			}
		case "address", "location":
			continue
		}
		if v == nil {
			out[col] = nil
			continue
		}
		switch f.Type {
		case "int", "long":
			x := v.(float64)
			if x != math.Trunc(x) {
				out[col] = nil
			} else {
				out[col] = int64(x)
			}
		case "double", "currency", "percent":
			x, ok := v.(float64)
			if ok {
				out[col] = x
			} else {
				out[col] = nil
			}
		case "date":
			d, err := time.Parse(time.DateOnly, v.(string))
			if err != nil {
				out[col] = nil
			} else {
				out[col] = d.Format(time.RFC3339Nano)
			}
		case "datetime":
			d, _ := time.Parse("2006-01-02T15:04:05.000-0700", v.(string))
			out[col] = d.UTC().Format(time.RFC3339Nano)
		default:
			out[col] = v
		}
	}
	return out
}

// sfNormal is a value as pgx reads it, times as RFC 3339 in UTC.
func sfNormal(v any) any {
	if t, ok := v.(time.Time); ok {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// sfRead reads an object table, by id then column.
func sfRead(t *testing.T, ctx context.Context, conn *pgx.Conn, d sqlgen.Dialect, object string) map[string]map[string]any {
	t.Helper()
	rows := query(t, ctx, conn, sfOnPostgres(d, "SELECT * FROM "+d.SalesforceTable(object)))
	defer rows.Close()
	out := map[string]map[string]any{}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		row := map[string]any{}
		for i, f := range rows.FieldDescriptions() {
			row[f.Name] = sfNormal(vals[i])
		}
		id := row["id"].(string)
		if _, ok := out[id]; ok {
			t.Fatalf("%s: id %s twice", d.Name, id)
		}
		out[id] = row
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sfColumnsOf reads a table's columns with ListColumns.
func sfColumnsOf(t *testing.T, ctx context.Context, conn *pgx.Conn, d sqlgen.Dialect, object string) []string {
	t.Helper()
	rows := query(t, ctx, conn, sfOnPostgres(d, d.ListColumns(object)))
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

// sfUpsertPages upserts records in pages of 2,000, each page in one transaction.
func sfUpsertPages(t *testing.T, ctx context.Context, conn *pgx.Conn, d sqlgen.Dialect, object string, fields []sqlgen.SalesforceField, recs []map[string]any, at time.Time) {
	t.Helper()
	for start := 0; start < len(recs); start += 2000 {
		sfExec(t, ctx, conn, d, d.UpsertRecords(object, fields, recs[start:min(start+2000, len(recs))], at)...)
	}
}

func sfCheck(t *testing.T, when string, got map[string]map[string]any, want map[string]map[string]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", when, len(got), len(want))
	}
	bad := 0
	for id, w := range want {
		if g := got[id]; !reflect.DeepEqual(g, w) && bad < 5 {
			bad++
			for k := range w {
				if !reflect.DeepEqual(g[k], w[k]) {
					t.Errorf("%s: %s.%s = %#v, want %#v", when, id, k, g[k], w[k])
				}
			}
			for k := range g {
				if _, ok := w[k]; !ok {
					t.Errorf("%s: %s has column %s", when, id, k)
				}
			}
		}
	}
}

// The whole life of an object table, for real on PostgreSQL with Postgres's, Redshift's and
// Snowflake's statements: created (twice), 2,500 records upserted in pages of 2,000 and 500
// with every type read back as written, the same pages again (a crash redone: nothing
// changes), a second version (updated in place), a new field (a column; old rows NULL), a
// deleted record (kept, is_deleted true).
func TestOnPostgresSalesforce(t *testing.T) {
	t.Parallel()
	for _, d := range onPostgresDialects {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			ctx, conn := session(t, d)
			const object = "Contact"
			sfExec(t, ctx, conn, d, d.CreateSalesforceSchema(), d.CreateSalesforceSchema(), d.CreateObjectTable(object, sfFields), d.CreateObjectTable(object, sfFields))
			cols := sfColumnsOf(t, ctx, conn, d, object) // the fields but the two compound ones, and _synced_at
			if len(cols) != len(sfFields)-2+1 || cols[0] != "id" || cols[len(cols)-2] != "is_deleted" || cols[len(cols)-1] != "_synced_at" || !slices.Contains(cols, "my_field__c") {
				t.Errorf("columns: %q", cols)
			}
			if add := d.AddColumns(object, cols, sfFields); len(add) != 0 {
				t.Errorf("AddColumns on a new table: %q", add)
			}

			want := map[string]map[string]any{}
			recs := make([]map[string]any, 2500)
			at1 := time.Date(2026, 1, 2, 3, 0, 0, 123456000, time.UTC)
			for i := range recs {
				recs[i] = sfRecord(i, 1)
				want[recs[i]["Id"].(string)] = sfExpected(sfFields, recs[i], at1)
			}
			start := time.Now()
			sfUpsertPages(t, ctx, conn, d, object, sfFields, recs, at1)
			t.Logf("2,500 records upserted in %v", time.Since(start))
			first := sfRead(t, ctx, conn, d, object)
			sfCheck(t, "first", first, want)

			// Done again, as after a crash: nothing changes.
			sfUpsertPages(t, ctx, conn, d, object, sfFields, recs, at1)
			if again := sfRead(t, ctx, conn, d, object); !reflect.DeepEqual(again, first) {
				sfCheck(t, "again", again, first)
			}

			// Version 2 of every record, in other pages: updated in place.
			at2 := at1.Add(3 * time.Hour)
			for i := range recs {
				recs[i] = sfRecord(i, 2)
				want[recs[i]["Id"].(string)] = sfExpected(sfFields, recs[i], at2)
			}
			slices.Reverse(recs)
			sfUpsertPages(t, ctx, conn, d, object, sfFields, recs, at2)
			sfCheck(t, "version 2", sfRead(t, ctx, conn, d, object), want)

			// A new field: a column, NULL in the rows already there; then a page with it.
			fields := append(slices.Clone(sfFields), sqlgen.SalesforceField{Name: "New_Field__c", Type: "double"}, sqlgen.SalesforceField{Name: "Renewal__c", Type: "date"})
			add := d.AddColumns(object, sfColumnsOf(t, ctx, conn, d, object), fields)
			if len(add) != 2 {
				t.Errorf("AddColumns: %q", add)
			}
			sfExec(t, ctx, conn, d, add...)
			if d.Name != sqlgen.Redshift.Name { // IF NOT EXISTS: a stale list adds nothing twice
				sfExec(t, ctx, conn, d, add...)
			}
			if again := d.AddColumns(object, sfColumnsOf(t, ctx, conn, d, object), fields); len(again) != 0 {
				t.Errorf("AddColumns once added: %q", again)
			}
			for _, w := range want {
				w["new_field__c"], w["renewal__c"] = nil, nil
			}
			sfCheck(t, "new field", sfRead(t, ctx, conn, d, object), want)
			page := []map[string]any{sfRecord(1, 3), sfRecord(2, 3)}
			page[0]["New_Field__c"], page[0]["Renewal__c"] = 2.5, "2027-03-04"
			at3 := at2.Add(3 * time.Hour)
			for _, r := range page {
				want[r["Id"].(string)] = sfExpected(fields, r, at3)
			}
			// The deleted record is kept, with is_deleted true.
			deleted := sfRecord(3, 3)
			deleted["IsDeleted"] = true
			page = append(page, deleted)
			want[deleted["Id"].(string)] = sfExpected(fields, deleted, at3)
			sfUpsertPages(t, ctx, conn, d, object, fields, page, at3)
			sfUpsertPages(t, ctx, conn, d, object, fields, page, at3)
			got := sfRead(t, ctx, conn, d, object)
			sfCheck(t, "new field, deleted", got, want)
			if r := got[deleted["Id"].(string)]; r["is_deleted"] != true || r["name"] != deleted["Name"] {
				t.Errorf("deleted record: %v", r)
			}
			if r := got[page[0]["Id"].(string)]; r["new_field__c"] != 2.5 || r["renewal__c"] != "2027-03-04T00:00:00Z" {
				t.Errorf("new field: %v", r)
			}
		})
	}
}

// Names that need quoting or are not lower case: a custom object and fields with capitals
// and underscores, a field named like an SQL keyword.
func TestOnPostgresSalesforceNames(t *testing.T) {
	t.Parallel()
	for _, d := range onPostgresDialects {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			ctx, conn := session(t, d)
			fields := []sqlgen.SalesforceField{{Name: "Id", Type: "id"}, {Name: "My_Field__c", Type: "string"}, {Name: "Select", Type: "string"}, {Name: "Order__c", Type: "int"}}
			recs := []map[string]any{{"Id": "a01", "My_Field__c": "v", "Select": "s", "Order__c": 3.0}}
			sfExec(t, ctx, conn, d, d.CreateSalesforceSchema(), d.CreateObjectTable("Group__c", fields))
			sfExec(t, ctx, conn, d, d.UpsertRecords("Group__c", fields, recs, sfGoldenAt)...)
			got := sfRead(t, ctx, conn, d, "Group__c")
			sfCheck(t, "names", got, map[string]map[string]any{"a01": {"id": "a01", "my_field__c": "v", "select": "s", "order__c": int64(3), "is_deleted": false, "_synced_at": "2026-01-02T03:00:00Z"}})
		})
	}
}

// sfStorable is what a text value is stored as: NUL removed, invalid UTF-8 replaced.
func sfStorable(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// Any string, as a text field's value and in an id, is upserted on PostgreSQL and read back as
// it was (but for NUL and invalid UTF-8, see sfStorable), by Postgres's, Redshift's and
// Snowflake's statements.
func FuzzSalesforceLiteral(f *testing.F) {
	for _, s := range append(slices.Clone(sfStrings), "\x00", "\xff\xfe", "a\x00\xffb", `\`, `\\'`, "'\\''", "E'x'", "$$", "$1", "?", "--", "/*", "\u2028") {
		f.Add(s)
	}
	c := pgtest.Start(f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	f.Cleanup(cancel)
	conns := map[string]*pgx.Conn{}
	fields := []sqlgen.SalesforceField{{Name: "Id", Type: "id"}, {Name: "Value__c", Type: "textarea"}}
	for _, d := range onPostgresDialects {
		conn, err := pgx.Connect(ctx, c.DSN)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { conn.Close(context.Background()) })
		if d.Name == sqlgen.Redshift.Name {
			if _, err := conn.Exec(ctx, "SET standard_conforming_strings = off; SET escape_string_warning = off"); err != nil {
				f.Fatal(err)
			}
		}
		object := "Fuzz_" + d.Name
		for _, s := range []string{d.CreateSalesforceSchema(), d.CreateObjectTable(object, fields)} {
			if _, err := conn.Exec(ctx, sfOnPostgres(d, s)); err != nil && !strings.Contains(err.Error(), "already exists") && !strings.Contains(err.Error(), "duplicate key") {
				f.Fatal(err)
			}
		}
		conns[d.Name] = conn
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := sfStorable(s)
		for _, d := range onPostgresDialects {
			conn, object := conns[d.Name], "Fuzz_"+d.Name
			id := "id-" + s
			stmts := d.UpsertRecords(object, fields, []map[string]any{{"Id": id, "Value__c": s}}, sfGoldenAt)
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range stmts {
				if _, err := tx.Exec(ctx, sfOnPostgres(d, st)); err != nil {
					tx.Rollback(ctx)
					t.Fatalf("%s: %v\nin: %s", d.Name, err, sfOnPostgres(d, st))
				}
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			var got string
			var n int
			err = conn.QueryRow(ctx, "SELECT MIN(value__c), COUNT(*) FROM "+d.SalesforceTable(object)+" WHERE id = $1", pgx.QueryExecModeExec, "id-"+want).Scan(&got, &n)
			if err != nil || got != want || n != 1 || !utf8.ValidString(got) {
				t.Fatalf("%s: %q reads back as %q (%d rows, %v), want %q", d.Name, s, got, n, err, want)
			}
		}
	})
}
