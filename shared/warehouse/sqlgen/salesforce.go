package sqlgen

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Salesforce records land in the warehouse source's schema SalesforceSchema: a table per object
// (the object's name lower-cased), a typed column per field (the field's name lower-cased;
// Salesforce names are case-insensitive), upserted on id. The statements below are written per
// dialect, like the Reverse ETL ones, and take every value as a literal of its column's type.
//
// Column types, by the field's Salesforce type:
//
//	Salesforce                  Postgres          Redshift          BigQuery   Snowflake
//	boolean                     BOOLEAN           BOOLEAN           BOOL       BOOLEAN
//	int, long                   BIGINT            BIGINT            INT64      BIGINT
//	double, currency, percent   DOUBLE PRECISION  DOUBLE PRECISION  FLOAT64    FLOAT
//	date                        DATE              DATE              DATE       DATE
//	datetime                    TIMESTAMPTZ       TIMESTAMPTZ       TIMESTAMP  TIMESTAMP_TZ
//	address, location           (no column: see below)
//	anything else               TEXT              VARCHAR(65535)    STRING     VARCHAR
//
// "Anything else" is id, reference, string, textarea, email, phone, url, picklist,
// multipicklist, combobox, time, base64, encryptedstring, anyType and any type Salesforce adds.
//
// Compound fields (address, location) get no column: the describe lists their components
// (MailingStreet, MailingCity, …, MailingLatitude) as fields of their own, which do.
//
// Every table has, whatever the describe says: id (from Id; the primary key on Postgres, NOT
// NULL everywhere), is_deleted (from IsDeleted, FALSE when a record does not say; a deleted
// record is kept with is_deleted true) and _synced_at (when the page was written).
//
// A value that does not fit its column becomes NULL rather than failing the page: a
// non-numeric string or a fraction for an int, a non-numeric string, NaN or an infinity for a
// double, a date or datetime that does not parse (or is outside the years 1 to 9999), a
// non-boolean for a boolean. A text value has its NUL characters removed and invalid UTF-8
// replaced (PostgreSQL and Redshift refuse both), and on Redshift is cut to the 65,535 bytes a
// VARCHAR holds, at a character boundary; a number, boolean, object or array in a text column
// is written as its JSON. Datetimes are written in UTC with microseconds.
//
// SalesforceSchema is the warehouse schema (BigQuery: dataset) Salesforce records land in.
const SalesforceSchema = "salesforce"

// Columns every Salesforce object table has besides its fields'.
const (
	SalesforceColID       = "id"
	SalesforceColDeleted  = "is_deleted"
	SalesforceColSyncedAt = "_synced_at"
)

// SalesforceField is a field of an object's describe: its name as Salesforce spells it (the
// key of the field in a record) and its Salesforce type ("string", "double", "datetime", …).
type SalesforceField struct{ Name, Type string }

// SalesforceRowsPerInsert and SalesforceBytesPerInsert bound one INSERT … VALUES statement of
// UpsertRecords: BigQuery and Snowflake refuse a statement over 1 MB; a row larger than the
// bound alone goes in a statement of its own.
const (
	SalesforceRowsPerInsert  = 1000
	SalesforceBytesPerInsert = 900_000
)

// redshiftVarcharBytes is what Redshift's VARCHAR(65535) holds.
const redshiftVarcharBytes = 65535

// sfKind is how a column's values are written.
type sfKind int

const (
	sfText sfKind = iota
	sfBool
	sfInt
	sfDouble
	sfDate
	sfDatetime
)

// sfColumn is a column of an object table and the record key it is read from ("" for
// _synced_at).
type sfColumn struct {
	name, key string
	kind      sfKind
}

// sfKindOf maps a Salesforce type to a kind; ok is false for the compound types.
func sfKindOf(sfType string) (sfKind, bool) {
	switch strings.ToLower(sfType) {
	case "address", "location":
		return 0, false
	case "boolean":
		return sfBool, true
	case "int", "long":
		return sfInt, true
	case "double", "currency", "percent":
		return sfDouble, true
	case "date":
		return sfDate, true
	case "datetime":
		return sfDatetime, true
	}
	return sfText, true
}

// sfType is a kind's column type in the dialect.
func (d Dialect) sfType(k sfKind) string {
	bq, sf := d.Name == BigQuery.Name, d.Name == Snowflake.Name
	switch k {
	case sfBool:
		if bq {
			return "BOOL"
		}
		return "BOOLEAN"
	case sfInt:
		if bq {
			return "INT64"
		}
		return "BIGINT"
	case sfDouble:
		switch {
		case bq:
			return "FLOAT64"
		case sf:
			return "FLOAT"
		}
		return "DOUBLE PRECISION"
	case sfDate:
		return "DATE"
	case sfDatetime:
		switch {
		case bq:
			return "TIMESTAMP"
		case sf:
			return "TIMESTAMP_TZ"
		}
		return "TIMESTAMPTZ"
	}
	return d.text
}

// SalesforceTableName is the table of an object: its name lower-cased.
func SalesforceTableName(object string) string { return strings.ToLower(object) }

// SalesforceColumnName is the column of a field: its name lower-cased, but for Id and IsDeleted,
// which are SalesforceColID and SalesforceColDeleted.
func SalesforceColumnName(field string) string {
	if strings.EqualFold(field, "IsDeleted") {
		return SalesforceColDeleted
	}
	return strings.ToLower(field)
}

// sfColumns are an object table's columns, in order: id, the fields' (compound fields
// skipped, a name seen before skipped), is_deleted, _synced_at.
func sfColumns(fields []SalesforceField) []sfColumn {
	cols := []sfColumn{{name: SalesforceColID, key: "Id", kind: sfText}}
	seen := map[string]bool{SalesforceColID: true, SalesforceColDeleted: true, SalesforceColSyncedAt: true}
	deletedKey := "IsDeleted"
	for _, f := range fields {
		name := SalesforceColumnName(f.Name)
		switch name {
		case SalesforceColID:
			cols[0].key = f.Name
			continue
		case SalesforceColDeleted:
			deletedKey = f.Name
			continue
		}
		k, ok := sfKindOf(f.Type)
		if !ok || seen[name] || name == "" {
			continue
		}
		seen[name] = true
		cols = append(cols, sfColumn{name: name, key: f.Name, kind: k})
	}
	return append(cols, sfColumn{name: SalesforceColDeleted, key: deletedKey, kind: sfBool}, sfColumn{name: SalesforceColSyncedAt, kind: sfDatetime})
}

// SalesforceTable names an object's table, schema-qualified and quoted.
func (d Dialect) SalesforceTable(object string) string {
	return d.quote(SalesforceSchema) + "." + d.quote(SalesforceTableName(object))
}

// salesforceWork is the table a page goes through before it is merged (not on Postgres),
// dropped once merged.
func (d Dialect) salesforceWork(object string) string {
	return d.quote(SalesforceSchema) + "." + d.quote(ReservedPrefix+"page_"+SalesforceTableName(object))
}

// CreateSalesforceSchema makes SalesforceSchema when it is missing.
func (d Dialect) CreateSalesforceSchema() string {
	return "CREATE SCHEMA IF NOT EXISTS " + d.quote(SalesforceSchema)
}

// CreateObjectTable makes an object's table when it is missing (see the package's Salesforce
// notes for the columns and their types).
func (d Dialect) CreateObjectTable(object string, fields []SalesforceField) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + d.SalesforceTable(object) + " (")
	for i, c := range sfColumns(fields) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.quote(c.name) + " " + d.sfType(c.kind))
		if c.name == SalesforceColID {
			b.WriteString(" NOT NULL")
		}
	}
	if d.upsertOnConflict { // the others do not enforce keys
		b.WriteString(", PRIMARY KEY (" + d.quote(SalesforceColID) + ")")
	}
	b.WriteString(")")
	return b.String()
}

// ListColumns selects the names of an object table's columns (one column, in table order).
func (d Dialect) ListColumns(object string) string {
	table := d.literal(SalesforceTableName(object))
	if d.Name == BigQuery.Name { // INFORMATION_SCHEMA is per dataset
		return "SELECT column_name FROM " + d.quote(SalesforceSchema) + ".INFORMATION_SCHEMA.COLUMNS WHERE table_name = " + table + " ORDER BY ordinal_position"
	}
	return "SELECT column_name FROM information_schema.columns WHERE table_schema = " + d.literal(SalesforceSchema) +
		" AND table_name = " + table + " ORDER BY ordinal_position"
}

// AddColumns returns the statements that add to an object's table the columns of fields it
// lacks (existing: its columns now, as ListColumns reads them, in any case), one a column:
// ADD COLUMN IF NOT EXISTS where the dialect has it, so a stale list adds nothing twice;
// Redshift, which has not, relies on existing. Rows already there have NULL in a new column.
func (d Dialect) AddColumns(object string, existing []string, fields []SalesforceField) []string {
	have := map[string]bool{}
	for _, c := range existing {
		have[strings.ToLower(c)] = true
	}
	ifNotExists := " IF NOT EXISTS"
	if d.noMerge {
		ifNotExists = ""
	}
	var stmts []string
	for _, c := range sfColumns(fields) {
		if have[c.name] {
			continue
		}
		stmts = append(stmts, "ALTER TABLE "+d.SalesforceTable(object)+" ADD COLUMN"+ifNotExists+" "+d.quote(c.name)+" "+d.sfType(c.kind))
	}
	return stmts
}

// UpsertRecords returns the statements that upsert a page of an object's records on id, each
// as of syncedAt: Postgres INSERT … ON CONFLICT; the others insert the page into a work table,
// then MERGE it (Redshift: UPDATE, then INSERT what is new), then drop the work table. The
// statements are idempotent (a page written again changes nothing more, even from the middle:
// the work table is dropped and made again first); run them in one transaction where the
// warehouse has them (Snowflake's DDL commits on its own). The work table is per object, so
// one object's pages are written one at a time. Each record's fields are read by the describe's
// names (a missing field is NULL); a record without an Id is left out, and of records with the
// same Id the last one counts. Fields must be the table's (see AddColumns).
func (d Dialect) UpsertRecords(object string, fields []SalesforceField, records []map[string]any, syncedAt time.Time) []string {
	cols := sfColumns(fields)
	rows := d.sfRows(cols, records, syncedAt)
	if len(rows) == 0 {
		return nil
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = d.quote(c.name)
	}
	list := strings.Join(names, ", ")
	id := d.quote(SalesforceColID)
	t := d.SalesforceTable(object)
	if d.upsertOnConflict {
		set := make([]string, 0, len(names)-1)
		for _, n := range names[1:] {
			set = append(set, n+" = EXCLUDED."+n)
		}
		tail := " ON CONFLICT (" + id + ") DO UPDATE SET " + strings.Join(set, ", ")
		return inserts("INSERT INTO "+t+" ("+list+") VALUES ", rows, tail)
	}
	w := d.salesforceWork(object)
	defs := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = names[i] + " " + d.sfType(c.kind)
	}
	stmts := []string{"DROP TABLE IF EXISTS " + w, d.createWork + " " + w + " (" + strings.Join(defs, ", ") + ")"}
	stmts = append(stmts, inserts("INSERT INTO "+w+" ("+list+") VALUES ", rows, "")...)
	set := make([]string, 0, len(names)-1)
	for _, n := range names[1:] {
		set = append(set, n+" = v."+n)
	}
	values := make([]string, len(names))
	for i, n := range names {
		values[i] = "v." + n
	}
	if d.noMerge {
		stmts = append(stmts,
			"UPDATE "+t+" AS st SET "+strings.Join(set, ", ")+" FROM "+w+" v WHERE st."+id+" = v."+id,
			"INSERT INTO "+t+" ("+list+") SELECT "+strings.Join(values, ", ")+" FROM "+w+" v WHERE v."+id+" NOT IN (SELECT "+id+" FROM "+t+")")
	} else {
		stmts = append(stmts, "MERGE INTO "+t+" st USING "+w+" v ON st."+id+" = v."+id+
			" WHEN MATCHED THEN UPDATE SET "+strings.Join(set, ", ")+
			" WHEN NOT MATCHED THEN INSERT ("+list+") VALUES ("+strings.Join(values, ", ")+")")
	}
	return append(stmts, "DROP TABLE IF EXISTS "+w)
}

// inserts writes rows into INSERT statements of at most SalesforceRowsPerInsert rows and, but
// for a single row, SalesforceBytesPerInsert bytes.
func inserts(head string, rows []string, tail string) []string {
	var stmts []string
	var b strings.Builder
	n := 0
	flush := func() {
		if n > 0 {
			b.WriteString(tail)
			stmts = append(stmts, b.String())
			b.Reset()
			n = 0
		}
	}
	for _, r := range rows {
		if n == SalesforceRowsPerInsert || (n > 0 && b.Len()+len(", ")+len(r)+len(tail) > SalesforceBytesPerInsert) {
			flush()
		}
		if n == 0 {
			b.WriteString(head)
		} else {
			b.WriteString(", ")
		}
		b.WriteString(r)
		n++
	}
	flush()
	return stmts
}

// sfRows writes each record with an Id as a row of literals "(…)", the last of an Id
// replacing an earlier one in its place.
func (d Dialect) sfRows(cols []sfColumn, records []map[string]any, syncedAt time.Time) []string {
	synced := d.sfDatetime(syncedAt)
	var rows []string
	at := map[string]int{}
	for _, rec := range records {
		id, ok := rec[cols[0].key].(string)
		if id = storable(id); !ok || id == "" {
			continue
		}
		var b strings.Builder
		b.WriteString("(")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			switch {
			case i == 0:
				b.WriteString(d.sfTextLiteral(id))
			case c.name == SalesforceColSyncedAt:
				b.WriteString(synced)
			case c.name == SalesforceColDeleted && rec[c.key] == nil:
				b.WriteString("FALSE")
			default:
				b.WriteString(d.sfValue(c.kind, rec[c.key]))
			}
		}
		b.WriteString(")")
		if i, ok := at[id]; ok {
			rows[i] = b.String()
			continue
		}
		at[id] = len(rows)
		rows = append(rows, b.String())
	}
	return rows
}

// storable makes a string storable: NUL characters removed, invalid UTF-8 replaced.
func storable(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "")
}

// sfTextLiteral is a text value's literal, cut to what Redshift's VARCHAR holds there.
func (d Dialect) sfTextLiteral(s string) string {
	if d.noMerge && len(s) > redshiftVarcharBytes {
		cut := redshiftVarcharBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return d.literal(s)
}

// sfValue is a record's value as a literal of its column's kind, NULL when it does not fit.
func (d Dialect) sfValue(k sfKind, v any) string {
	if v == nil {
		return "NULL"
	}
	switch k {
	case sfText:
		switch x := v.(type) {
		case string:
			return d.sfTextLiteral(storable(x))
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return "NULL"
			}
			return d.sfTextLiteral(strconv.FormatFloat(x, 'g', -1, 64))
		}
		j, err := json.Marshal(v)
		if err != nil {
			return "NULL"
		}
		return d.sfTextLiteral(storable(string(j)))
	case sfBool:
		b, ok := v.(bool)
		if s, isString := v.(string); isString {
			var err error
			b, err = strconv.ParseBool(s)
			ok = err == nil
		}
		switch {
		case !ok:
			return "NULL"
		case b:
			return "TRUE"
		}
		return "FALSE"
	case sfInt:
		if n, ok := sfInteger(v); ok {
			return strconv.FormatInt(n, 10)
		}
		return "NULL"
	case sfDouble:
		if f, ok := sfFloat(v); ok {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return "NULL"
	case sfDate:
		s, _ := v.(string)
		t, err := time.Parse(time.DateOnly, s)
		if err != nil || t.Year() < 1 || t.Year() > 9999 {
			return "NULL"
		}
		return "CAST(" + d.literal(t.Format(time.DateOnly)) + " AS DATE)"
	case sfDatetime:
		s, _ := v.(string)
		for _, layout := range []string{"2006-01-02T15:04:05Z0700", time.RFC3339} {
			if t, err := time.Parse(layout, s); err == nil {
				return d.sfDatetime(t)
			}
		}
	}
	return "NULL"
}

// sfDatetime is a time as a literal of the datetime column type, in UTC to the microsecond;
// NULL outside the years 1 to 9999.
func (d Dialect) sfDatetime(t time.Time) string {
	t = t.UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		return "NULL"
	}
	return "CAST(" + d.literal(t.Format("2006-01-02 15:04:05.000000")+"+00:00") + " AS " + d.sfType(sfDatetime) + ")"
}

// sfFloat reads a number (or a number's text) as a finite float64.
func sfFloat(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(x), 64); err != nil {
			return 0, false
		}
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(x), 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

// sfInteger reads a whole number (or its text) that fits in 64 bits.
func sfInteger(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return n, true
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return n, true
		}
	}
	f, ok := sfFloat(v)
	// -2^63 is a float64 and an int64; 2^63 is the first float64 above the int64s.
	if !ok || f != math.Trunc(f) || f < -9223372036854775808 || f >= 9223372036854775808 {
		return 0, false
	}
	return int64(f), true
}
