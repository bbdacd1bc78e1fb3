package sqlgen_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
)

// Every dialect has a ready model of Contact, Lead and Account (in any case) and none of
// another object; each reads its landing table, leaves deleted records out and names the
// columns its template maps.
func TestSalesforceModel(t *testing.T) {
	for _, d := range []sqlgen.Dialect{sqlgen.Postgres, sqlgen.Redshift, sqlgen.BigQuery, sqlgen.Snowflake} {
		for _, o := range []string{"Contact", "lead", "ACCOUNT"} {
			sql, ok := d.SalesforceModel(o)
			if !ok || !strings.Contains(sql, "FROM "+d.SalesforceTable(o)) || !strings.Contains(sql, "WHERE NOT "+d.Quote("is_deleted")) {
				t.Errorf("%s %s: %v\n%s", d.Name, o, ok, sql)
			}
			for _, c := range sqlgen.SalesforceModelColumns(o) {
				if !strings.Contains(sql, d.Quote(c)+",") && !strings.Contains(sql, "AS "+d.Quote(c)) {
					t.Errorf("%s %s: no column %s", d.Name, o, c)
				}
			}
			if strings.Contains(sql, "'g')") != (d.Name == sqlgen.Postgres.Name) {
				t.Errorf("%s: the global flag is Postgres's only:\n%s", d.Name, sql)
			}
		}
		if _, ok := d.SalesforceModel("Opportunity"); ok {
			t.Errorf("%s: a model of Opportunity", d.Name)
		}
		ts := d.SalesforceTemplates()
		if len(ts) != 3 || ts[0].Object != "Contact" || ts[1].Object != "Lead" || ts[2].Object != "Account" {
			t.Fatalf("%s templates: %+v", d.Name, ts)
		}
		for _, tm := range ts {
			cols := sqlgen.SalesforceModelColumns(tm.Object)
			if tm.IDColumn != "id" || tm.Identifiers[sqlgen.SalesforceIdentifier] != "salesforce_id" || tm.Name == "" {
				t.Errorf("%s %s: %+v", d.Name, tm.Object, tm)
			}
			for _, m := range []map[string]string{tm.Identifiers, tm.Traits} {
				for _, c := range m {
					if !slices.Contains(cols, c) {
						t.Errorf("%s %s: maps %s, not a column", d.Name, tm.Object, c)
					}
				}
			}
		}
		if ts[2].Identifiers["email"] != "" || ts[2].Identifiers["phone"] != "" || ts[2].Traits["phone"] != "phone" {
			t.Errorf("%s account: %+v", d.Name, ts[2])
		}
		if ts[0].Identifiers["email"] != "email" || ts[0].Identifiers["phone"] != "" || ts[0].Traits["phone"] != "phone" {
			t.Errorf("%s contact: %+v", d.Name, ts[0])
		}
	}
}

// The Postgres ready models run on landing tables made and filled as the sync does.
func TestOnPostgresSalesforceModels(t *testing.T) {
	t.Parallel()
	d := sqlgen.Postgres
	ctx, conn := session(t, d)
	at := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	str := func(names ...string) []sqlgen.SalesforceField {
		fs := []sqlgen.SalesforceField{{Name: "Id", Type: "id"}, {Name: "IsDeleted", Type: "boolean"}}
		for _, n := range names {
			typ := "string"
			switch n {
			case "IsConverted":
				typ = "boolean"
			case "NumberOfEmployees":
				typ = "int"
			case "MailingAddress", "BillingAddress":
				typ = "address"
			}
			fs = append(fs, sqlgen.SalesforceField{Name: n, Type: typ})
		}
		return fs
	}
	objects := map[string]struct {
		fields []sqlgen.SalesforceField
		recs   []map[string]any
	}{
		"Contact": {str("FirstName", "LastName", "Email", "Phone", "MobilePhone", "Title", "Department", "AccountId", "LeadSource", "MailingAddress", "MailingCity", "MailingCountry"), []map[string]any{
			{"Id": "003A", "FirstName": "Ada", "LastName": "Lovelace", "Email": "  Ada@Example.COM ", "Phone": "(415) 555-0100 ext. 12", "Title": "CTO", "AccountId": "001A", "MailingCity": "London", "MailingCountry": "UK"},
			{"Id": "003B", "LastName": "Hopper", "Email": "", "Phone": " ", "MobilePhone": "+44 20 7946 0958"},
			{"Id": "003C", "LastName": "Gone", "Email": "gone@example.com", "IsDeleted": true},
			{"Id": "003D", "LastName": "Intl", "Phone": "0033 1 23 45 67 89"},
			{"Id": "003E", "LastName": "National", "Phone": "06 12 34 56 78"},
			{"Id": "003F", "LastName": "Eleven", "Phone": "1-800-555-0199"},
			{"Id": "003G", "LastName": "Short", "Phone": "555-0199"},
		}},
		"Lead": {str("FirstName", "LastName", "Email", "Phone", "MobilePhone", "Title", "Company", "Status", "LeadSource", "City", "Country", "IsConverted"), []map[string]any{
			{"Id": "00QA", "FirstName": "Grace", "LastName": "H", "Email": "GRACE@x.io", "Phone": "212.555.0123", "Company": "Navy", "Status": "Open", "LeadSource": "Web"},
			{"Id": "00QB", "LastName": "Converted", "Email": "c@x.io", "IsConverted": true},
		}},
		"Account": {str("Name", "Website", "Phone", "Industry", "Type", "BillingAddress", "BillingCity", "BillingCountry", "NumberOfEmployees"), []map[string]any{
			{"Id": "001A", "Name": "Analytical Engines", "Website": "https://ae.example", "Phone": "+1 (650) 555-0000", "Industry": "Tech", "Type": "Customer", "NumberOfEmployees": 12.0},
		}},
	}
	sfExec(t, ctx, conn, d, d.CreateSalesforceSchema())
	for o, x := range objects {
		sfExec(t, ctx, conn, d, d.CreateObjectTable(o, x.fields))
		sfExec(t, ctx, conn, d, d.UpsertRecords(o, x.fields, x.recs, at)...)
	}
	read := func(object string) map[string]map[string]any {
		t.Helper()
		sql, _ := d.SalesforceModel(object)
		rows, err := conn.Query(ctx, d.Preview(sql, 100))
		if err != nil {
			t.Fatalf("%s: %v\n%s", object, err, sql)
		}
		defer rows.Close()
		out := map[string]map[string]any{}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			row := map[string]any{}
			var cols []string
			for i, f := range rows.FieldDescriptions() {
				row[f.Name] = vals[i]
				cols = append(cols, f.Name)
			}
			if !reflect.DeepEqual(cols, sqlgen.SalesforceModelColumns(object)) {
				t.Errorf("%s columns: %q", object, cols)
			}
			out[row["id"].(string)] = row
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	contacts := read("Contact")
	phones := map[string]any{"003A": "+14155550100", "003B": "+442079460958", "003D": "+33123456789", "003E": "0612345678", "003F": "+18005550199", "003G": "5550199"}
	if len(contacts) != 6 || contacts["003C"] != nil {
		t.Errorf("contacts: %v", contacts)
	}
	for id, p := range phones {
		if got := contacts[id]["phone"]; got != p {
			t.Errorf("contact %s phone = %v, want %v", id, got, p)
		}
	}
	if c := contacts["003A"]; c["email"] != "ada@example.com" || c["salesforce_id"] != "003A" || c["first_name"] != "Ada" || c["title"] != "CTO" || c["city"] != "London" || c["account_id"] != "001A" {
		t.Errorf("contact 003A: %v", c)
	}
	if c := contacts["003B"]; c["email"] != nil {
		t.Errorf("contact 003B email: %v", c["email"])
	}
	leads := read("Lead")
	if l := leads["00QA"]; len(leads) != 1 || l["email"] != "grace@x.io" || l["phone"] != "+12125550123" || l["company"] != "Navy" || l["lead_status"] != "Open" || l["lead_source"] != "Web" {
		t.Errorf("leads: %v", leads)
	}
	accounts := read("Account")
	if a := accounts["001A"]; len(accounts) != 1 || a["phone"] != "+16505550000" || a["name"] != "Analytical Engines" || a["employees"] != int64(12) || a["account_type"] != "Customer" {
		t.Errorf("accounts: %v", accounts)
	}
}
