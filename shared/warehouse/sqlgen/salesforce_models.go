package sqlgen

import "strings"

// Ready models of Salesforce records (issue 15, "To profiles"): a model per standard object,
// read from the object's landing table (see SalesforceTable), that the guided setup offers and
// the user previews, edits and maps like any model. Each selects the records that are not
// deleted (is_deleted) and names its columns as the mapping's identifiers and traits:
//
//   - id and salesforce_id: the record's Salesforce Id (salesforce_id is the custom identifier
//     the mapping sends it as; id is the model's id column).
//   - email (Contact, Lead): trimmed and lower-cased, NULL when empty.
//   - phone: the Phone field (Contact, Lead: MobilePhone when Phone is empty), normalised
//     toward E.164 in SQL as Segment's sample SQL does:
//     1. whatever follows the first letter is dropped (an extension: "x12", "ext. 12");
//     2. every character but the digits is dropped;
//     3. no digits left → NULL;
//     4. the number written with a leading + → "+" and its digits;
//     5. digits starting 00 (the international prefix), at least 10 → "+" and the digits after it;
//     6. 10 digits not starting 0 or 1 (a North-American number) → "+1" and the digits;
//     7. 11 or more digits not starting 0 → "+" and the digits (a country code is there);
//     8. anything else (a national number, e.g. 0612345678) → the digits alone.
//     The mapping's own E.164 pass still runs on the phone identifier, with the space's
//     region, so a number left national here is completed or refused there.
//   - Contact's traits: first_name, last_name, title, department, account_id, lead_source,
//     city, country (MailingCity, MailingCountry).
//   - Lead's traits: first_name, last_name, title, company, lead_status, lead_source, city,
//     country. A converted lead (IsConverted) is left out: its person is the contact it became.
//   - Account: no email; the account's phone is a switchboard shared by its people, so it is a
//     trait (normalised as above), not an identifier: the only identifier is salesforce_id. Its
//     traits: name, website, phone, industry, account_type, city, country (BillingCity,
//     BillingCountry), employees (NumberOfEmployees).
//
// The landing tables have a column per field the sync's describe listed: the fields above are
// standard ones every org has.

// SalesforceTemplate is a ready model: its SQL in one dialect and how to map it.
type SalesforceTemplate struct {
	Object   string // the Salesforce object: Contact, Lead, Account
	Name     string // the model's suggested name
	SQL      string
	IDColumn string
	// Identifiers: identifier type → column; Traits: trait name → column (as a mapping's).
	Identifiers map[string]string
	Traits      map[string]string
}

// SalesforceIdentifier is the custom identifier the ready models send the Salesforce Id as.
const SalesforceIdentifier = "salesforce_id"

// SalesforceModelObjects are the objects with a ready model, in the order they are offered.
var SalesforceModelObjects = []string{"Contact", "Lead", "Account"}

// sfOut is a column of a ready model: expr is read from the landing table (quoted names
// already), trait its trait name ("" for an identifier).
type sfOut struct{ alias, expr, trait string }

type sfModelDef struct {
	name      string
	phone     []string // the fields tried in turn for the phone
	email     bool
	traits    [][2]string
	condition string // besides NOT is_deleted, a column that must not be TRUE
}

var sfModelDefs = map[string]sfModelDef{
	"contact": {name: "Salesforce contacts", phone: []string{"phone", "mobilephone"}, email: true,
		traits: [][2]string{{"first_name", "firstname"}, {"last_name", "lastname"}, {"title", "title"}, {"department", "department"},
			{"account_id", "accountid"}, {"lead_source", "leadsource"}, {"city", "mailingcity"}, {"country", "mailingcountry"}}},
	"lead": {name: "Salesforce leads", phone: []string{"phone", "mobilephone"}, email: true, condition: "isconverted",
		traits: [][2]string{{"first_name", "firstname"}, {"last_name", "lastname"}, {"title", "title"}, {"company", "company"},
			{"lead_status", "status"}, {"lead_source", "leadsource"}, {"city", "city"}, {"country", "country"}}},
	"account": {name: "Salesforce accounts", phone: []string{"phone"},
		traits: [][2]string{{"name", "name"}, {"website", "website"}, {"industry", "industry"}, {"account_type", "type"},
			{"city", "billingcity"}, {"country", "billingcountry"}, {"employees", "numberofemployees"}}},
}

// digitsOnly removes every character but the digits of a text expression.
func (d Dialect) digitsOnly(e string) string {
	if d.Name == Postgres.Name {
		return "REGEXP_REPLACE(" + e + ", '[^0-9]', '', 'g')"
	}
	return "REGEXP_REPLACE(" + e + ", '[^0-9]', '')" // the others replace every match
}

// SalesforceModel is the ready model of an object (Contact, Lead or Account, in any case) in
// the dialect; ok is false for another object.
func (d Dialect) SalesforceModel(object string) (string, bool) {
	def, ok := sfModelDefs[SalesforceTableName(object)]
	if !ok {
		return "", false
	}
	q := d.quote
	// The inner query reads the table; the outer one finishes the phone.
	inner := []string{q(SalesforceColID) + " AS " + q("id")}
	outer := []string{q("id"), q("id") + " AS " + q(SalesforceIdentifier)}
	if def.email {
		inner = append(inner, "NULLIF(LOWER(TRIM("+q("email")+")), '') AS "+q("email"))
		outer = append(outer, q("email"))
	}
	phone := "NULLIF(TRIM(" + q(def.phone[0]) + "), '')"
	if len(def.phone) > 1 {
		parts := make([]string, len(def.phone))
		for i, f := range def.phone {
			parts[i] = "NULLIF(TRIM(" + q(f) + "), '')"
		}
		phone = "COALESCE(" + strings.Join(parts, ", ") + ")"
	}
	raw, digits := q("phone_raw"), q("phone_digits")
	inner = append(inner, phone+" AS "+raw,
		d.digitsOnly("REGEXP_REPLACE("+phone+", '[A-Za-z].*$', '')")+" AS "+digits)
	outer = append(outer, "CASE"+
		"\n    WHEN "+digits+" = '' THEN NULL"+
		"\n    WHEN "+raw+" LIKE '+%' THEN '+' || "+digits+
		"\n    WHEN "+digits+" LIKE '00%' AND LENGTH("+digits+") >= 10 THEN '+' || SUBSTR("+digits+", 3)"+
		"\n    WHEN LENGTH("+digits+") = 10 AND SUBSTR("+digits+", 1, 1) NOT IN ('0', '1') THEN '+1' || "+digits+
		"\n    WHEN LENGTH("+digits+") >= 11 AND SUBSTR("+digits+", 1, 1) <> '0' THEN '+' || "+digits+
		"\n    ELSE "+digits+
		"\n  END AS "+q("phone"))
	for _, t := range def.traits {
		inner = append(inner, q(t[1])+" AS "+q(t[0]))
		outer = append(outer, q(t[0]))
	}
	where := "NOT " + q(SalesforceColDeleted)
	if def.condition != "" {
		where += " AND NOT COALESCE(" + q(def.condition) + ", FALSE)"
	}
	return "SELECT\n  " + strings.Join(outer, ",\n  ") +
		"\nFROM (\n  SELECT\n    " + strings.Join(inner, ",\n    ") +
		"\n  FROM " + d.SalesforceTable(object) +
		"\n  WHERE " + where + "\n) AS " + q("r"), true
}

// SalesforceTemplates are the ready models of SalesforceModelObjects in the dialect.
func (d Dialect) SalesforceTemplates() []SalesforceTemplate {
	out := make([]SalesforceTemplate, 0, len(SalesforceModelObjects))
	for _, o := range SalesforceModelObjects {
		def := sfModelDefs[SalesforceTableName(o)]
		sql, _ := d.SalesforceModel(o)
		t := SalesforceTemplate{Object: o, Name: def.name, SQL: sql, IDColumn: "id",
			Identifiers: map[string]string{SalesforceIdentifier: SalesforceIdentifier}, Traits: map[string]string{}}
		if def.email {
			t.Identifiers["email"] = "email"
		}
		// A trait, not an identifier: phone is none of a space's 11 default identifiers (a
		// space that adds a custom one maps it there), and a shared line would merge people.
		t.Traits["phone"] = "phone"
		for _, tr := range def.traits {
			t.Traits[tr[0]] = tr[0]
		}
		out = append(out, t)
	}
	return out
}

// SalesforceModelColumns are a ready model's columns, in order (for tests and the console).
func SalesforceModelColumns(object string) []string {
	def, ok := sfModelDefs[SalesforceTableName(object)]
	if !ok {
		return nil
	}
	cols := []string{"id", SalesforceIdentifier}
	if def.email {
		cols = append(cols, "email")
	}
	cols = append(cols, "phone")
	for _, t := range def.traits {
		cols = append(cols, t[0])
	}
	return cols
}
