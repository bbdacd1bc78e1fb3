// Package sfake is a fake Salesforce for tests, written from the documented Salesforce REST API
// v58.0 and OAuth 2.0 web-server flow shapes, because Salesforce itself cannot run here. It is
// no emulator: it serves what the Salesforce source uses, with the documented request and
// response shapes and error bodies, and test controls to provoke the failures the sync handles.
//
// Two httptest servers, as Salesforce has two hosts:
//
//   - login (LoginURL): GET /services/oauth2/authorize (redirects at once to redirect_uri with
//     code and state, as if the user logged in and consented), POST /services/oauth2/token
//     (grant types authorization_code, with PKCE S256 verified, and refresh_token; the client id
//     and secret and the redirect_uri checked), GET /id/{orgId}/{userId} (identity).
//   - instance (InstanceURL): GET /services/data/v58.0/sobjects/{Object}/describe,
//     /services/data/v58.0/query?q= and /queryAll?q= (a SOQL subset: see query), and the
//     nextRecordsUrl locators /services/data/v58.0/query/{locator}-{offset}.
//
// Contact, Lead and Account exist from the start with plausible standard fields (MailingAddress
// and Address of type address with their component fields). Records carry Id (18 characters,
// with the object's key prefix and the case-safe suffix), IsDeleted, CreatedDate,
// LastModifiedDate and SystemModstamp, stamped from a fake clock that every change advances by
// one second.
package sfake

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/salesforce"
)

// Defaults of Options.
const (
	DefaultClientID     = "3MVG9sfakeClientId"
	DefaultClientSecret = "sfakeClientSecret0123456789"
	DefaultBatchSize    = 2000
	DefaultUsername     = "admin@acme.example.com"
)

// Start is the fake clock's first instant.
var Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Options configure a Fake.
type Options struct {
	ClientID, ClientSecret string // the connected app's; defaults above
	RedirectURI            string // the callback registered on the connected app; "" accepts any
	BatchSize              int    // records per page; default 2000, as Salesforce
	Username               string
}

// Counts are the calls the fake has served.
type Counts struct {
	Authorize    int
	TokenCode    int // grant_type=authorization_code
	TokenRefresh int // grant_type=refresh_token
	Identity     int
	Describe     int
	Query        int // query and queryAll with q=
	QueryMore    int // nextRecordsUrl
	API          int // every authenticated call on the instance (what limits count)
	Unauthorized int // instance calls refused with INVALID_SESSION_ID
}

// Fake is a fake Salesforce. Its methods are safe for concurrent use.
type Fake struct {
	login, instance *httptest.Server
	opts            Options
	orgID, userID   string

	mu       sync.Mutex
	now      time.Time
	objects  map[string]*object // by lower-case name
	codes    map[string]*authCode
	access   map[string]bool
	refresh  map[string]bool
	allBad   bool
	denied   map[string]bool
	inject   map[int]apiError // by API call number
	counts   Counts
	cursors  map[string]*cursor
	sequence int
}

type object struct {
	desc    salesforce.Object
	prefix  string
	records map[string]map[string]any // by Id; datetimes as time.Time
	order   []string                  // insertion order of Ids
}

// cursor is a query's result snapshot, paged by nextRecordsUrl.
type cursor struct {
	rows  []map[string]any
	batch int
}

type authCode struct {
	challenge, redirectURI string
	expires                time.Time
}

type apiError struct {
	status        int
	code, message string
}

// New starts a fake Salesforce, closed when tb's test ends.
func New(tb testing.TB, opts Options) *Fake {
	tb.Helper()
	f := NewServer(opts)
	tb.Cleanup(f.Close)
	return f
}

// NewServer starts a fake Salesforce; Close it.
func NewServer(opts Options) *Fake {
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.Username == "" {
		opts.Username = DefaultUsername
	}
	f := &Fake{opts: opts, orgID: "00D5g000000sfakeEAA", userID: "0055g000000sfakeAAA", now: Start,
		objects: map[string]*object{}, codes: map[string]*authCode{}, access: map[string]bool{},
		refresh: map[string]bool{}, denied: map[string]bool{}, inject: map[int]apiError{},
		cursors: map[string]*cursor{}}
	f.addStandardObjects()
	f.login = httptest.NewServer(http.HandlerFunc(f.serveLogin))
	f.instance = httptest.NewServer(http.HandlerFunc(f.serveInstance))
	return f
}

// Close stops both servers.
func (f *Fake) Close() { f.login.Close(); f.instance.Close() }

// LoginURL is {login}: what UP_SALESFORCE_LOGIN_URL points at in tests.
func (f *Fake) LoginURL() string { return f.login.URL }

// InstanceURL is the org's instance, returned as instance_url by the token endpoint.
func (f *Fake) InstanceURL() string { return f.instance.URL }

// HTTPClient returns a client for both servers.
func (f *Fake) HTTPClient() *http.Client { return f.login.Client() }

// ClientID and ClientSecret are the connected app's credentials.
func (f *Fake) ClientID() string     { return f.opts.ClientID }
func (f *Fake) ClientSecret() string { return f.opts.ClientSecret }

// Username is the connected user's.
func (f *Fake) Username() string { return f.opts.Username }

// Counts returns the calls served so far.
func (f *Fake) Counts() Counts { f.mu.Lock(); defer f.mu.Unlock(); return f.counts }

// Now is the fake clock (the SystemModstamp the next change gets, minus a second).
func (f *Fake) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

// Advance moves the fake clock on.
func (f *Fake) Advance(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

// ---- test controls: auth ----

// ExpireAccessTokens makes every access token issued so far invalid: API calls answer 401
// INVALID_SESSION_ID until the client refreshes.
func (f *Fake) ExpireAccessTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.access = map[string]bool{}
}

// SetSessionsInvalid makes every access token, even fresh ones, invalid (on) or not (off): the
// refresh succeeds but the retried call answers INVALID_SESSION_ID again.
func (f *Fake) SetSessionsInvalid(on bool) { f.mu.Lock(); f.allBad = on; f.mu.Unlock() }

// RevokeRefreshTokens revokes every grant, as a user or admin revoking the connected app does:
// the refresh token answers invalid_grant and the access tokens stop working.
func (f *Fake) RevokeRefreshTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refresh = map[string]bool{}
	f.access = map[string]bool{}
}

// ---- test controls: failures ----

// FailCall makes the nth API call from now (1: the next) answer status with the documented
// error body [{"message","errorCode"}].
func (f *Fake) FailCall(n, status int, errorCode, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject[f.counts.API+n] = apiError{status, errorCode, message}
}

// RateLimitCall makes the nth API call from now answer 403 REQUEST_LIMIT_EXCEEDED.
func (f *Fake) RateLimitCall(n int) {
	f.FailCall(n, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
}

// DenyQueries makes queries on object answer 403 INSUFFICIENT_ACCESS (describe still works).
// (Real Salesforce is subtler: without View All Records sharing rules silently hide records,
// and without read access to the object a query answers 400 INVALID_TYPE.)
func (f *Fake) DenyQueries(object string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.denied[strings.ToLower(object)] = true
}

// ExpireQueryLocators forgets every query cursor, as Salesforce does with a locator left
// unused for a while (about 15 minutes) or beyond the open-cursor limit: a nextRecordsUrl
// served before answers 400 INVALID_QUERY_LOCATOR, and the client must run its query again.
func (f *Fake) ExpireQueryLocators() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cursors = map[string]*cursor{}
}

// ---- test controls: data ----

// AddObject adds (or replaces) an object with keyPrefix (3 characters, e.g. "a01") and fields;
// Id, IsDeleted, CreatedDate, LastModifiedDate and SystemModstamp are added when missing.
func (f *Fake) AddObject(name, keyPrefix string, fields []salesforce.Field) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addObject(name, keyPrefix, fields)
}

func (f *Fake) addObject(name, keyPrefix string, fields []salesforce.Field) {
	o := &object{desc: salesforce.Object{Name: name, Label: name}, prefix: keyPrefix, records: map[string]map[string]any{}}
	o.desc.Fields = append(o.desc.Fields, fields...)
	for _, std := range []salesforce.Field{
		{Name: "Id", Type: "id", Label: name + " ID", Length: 18},
		{Name: "IsDeleted", Type: "boolean", Label: "Deleted"},
		{Name: "CreatedDate", Type: "datetime", Label: "Created Date"},
		{Name: "LastModifiedDate", Type: "datetime", Label: "Last Modified Date"},
		{Name: "SystemModstamp", Type: "datetime", Label: "System Modstamp"},
	} {
		if _, ok := o.desc.Field(std.Name); !ok {
			o.desc.Fields = append(o.desc.Fields, std)
		}
	}
	f.objects[strings.ToLower(name)] = o
}

// AddField adds a field to object (existing records have it null).
func (f *Fake) AddField(objectName string, field salesforce.Field) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[strings.ToLower(objectName)]
	if !ok {
		return fmt.Errorf("sfake: no object %s", objectName)
	}
	if _, ok := o.desc.Field(field.Name); ok {
		return fmt.Errorf("sfake: %s.%s exists", objectName, field.Name)
	}
	o.desc.Fields = append(o.desc.Fields, field)
	return nil
}

// Insert creates a record of objectName with values (field name → value; datetimes as
// time.Time) and returns its Id. It panics on an unknown object or field (a test bug).
func (f *Fake) Insert(objectName string, values map[string]any) string {
	ids := f.InsertMany(objectName, []map[string]any{values})
	return ids[0]
}

// InsertMany creates records in one change (they share a SystemModstamp, as a data load's do).
func (f *Fake) InsertMany(objectName string, values []map[string]any) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.mustObject(objectName)
	now := f.tick()
	ids := make([]string, len(values))
	for i, v := range values {
		f.sequence++
		id := recordID(o.prefix, f.sequence)
		rec := map[string]any{"Id": id, "IsDeleted": false, "CreatedDate": now, "LastModifiedDate": now, "SystemModstamp": now}
		f.set(o, rec, v)
		o.records[id] = rec
		o.order = append(o.order, id)
		ids[i] = id
	}
	return ids
}

// Update sets values on a record, bumping LastModifiedDate and SystemModstamp.
func (f *Fake) Update(objectName, id string, values map[string]any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.mustObject(objectName)
	rec, ok := o.records[id]
	if !ok || rec["IsDeleted"] == true {
		return fmt.Errorf("sfake: no %s %s", objectName, id)
	}
	now := f.tick()
	f.set(o, rec, values)
	rec["LastModifiedDate"], rec["SystemModstamp"] = now, now
	return nil
}

// Delete moves a record to the recycle bin: IsDeleted true, SystemModstamp bumped; queryAll
// still returns it, query does not.
func (f *Fake) Delete(objectName, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.mustObject(objectName)
	rec, ok := o.records[id]
	if !ok || rec["IsDeleted"] == true {
		return fmt.Errorf("sfake: no %s %s", objectName, id)
	}
	now := f.tick()
	rec["IsDeleted"], rec["LastModifiedDate"], rec["SystemModstamp"] = true, now, now
	return nil
}

// Record returns a copy of a record as a query returns it (datetimes formatted, no attributes).
func (f *Fake) Record(objectName, id string) (salesforce.Record, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.mustObject(objectName)
	rec, ok := o.records[id]
	if !ok {
		return nil, false
	}
	out := salesforce.Record{}
	for _, fl := range o.desc.Fields {
		if !fl.Compound() {
			out[fl.Name] = render(fl, rec[fl.Name])
		}
	}
	return out, true
}

// IDs returns objectName's record Ids in insertion order (deleted ones included).
func (f *Fake) IDs(objectName string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.mustObject(objectName).order...)
}

// SeedContacts inserts n generated contacts in one change and returns their Ids.
func (f *Fake) SeedContacts(n int) []string {
	vals := make([]map[string]any, n)
	for i := range vals {
		vals[i] = Contact(i)
	}
	return f.InsertMany("Contact", vals)
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Edsger", "Radia", "Donald"}
	lastNames  = []string{"Lovelace", "Hopper", "Turing", "Torvalds", "Liskov", "Thompson", "Hamilton", "Ritchie", "Allen", "Dijkstra", "Perlman", "Knuth"}
	cities     = []string{"San Francisco", "London", "Berlin", "Paris", "Lisbon", "Toronto"}
)

// Contact returns the values of the i-th generated contact (deterministic; emails unique).
func Contact(i int) map[string]any {
	first, last := firstNames[i%len(firstNames)], lastNames[(i/len(firstNames))%len(lastNames)]
	return map[string]any{
		"FirstName":   first,
		"LastName":    last,
		"Email":       fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(first), strings.ToLower(last), i),
		"Phone":       fmt.Sprintf("(415) 555-%04d", i%10000),
		"MailingCity": cities[i%len(cities)],
		"Title":       "Engineer",
		"LeadSource":  "Web",
	}
}

func (f *Fake) mustObject(name string) *object {
	o, ok := f.objects[strings.ToLower(name)]
	if !ok {
		panic("sfake: no object " + name)
	}
	return o
}

func (f *Fake) set(o *object, rec, values map[string]any) {
	for k, v := range values {
		fl, ok := o.desc.Field(k)
		if !ok || fl.Compound() {
			panic(fmt.Sprintf("sfake: %s has no settable field %s", o.desc.Name, k))
		}
		switch fl.Name {
		case "Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp":
			panic("sfake: " + fl.Name + " is set by the fake")
		}
		if fl.Name == "Name" && o.hasPersonName() {
			panic("sfake: " + o.desc.Name + ".Name is computed from FirstName and LastName")
		}
		rec[fl.Name] = v
	}
	if o.hasPersonName() {
		// Contact and Lead: Name is the full name (a person name compound, type string).
		first, _ := rec["FirstName"].(string)
		last, _ := rec["LastName"].(string)
		rec["Name"] = strings.TrimSpace(first + " " + last)
	}
}

func (o *object) hasPersonName() bool {
	_, n := o.desc.Field("Name")
	_, fn := o.desc.Field("FirstName")
	_, ln := o.desc.Field("LastName")
	return n && fn && ln
}

// tick advances the clock by a second and returns it; callers hold mu.
func (f *Fake) tick() time.Time {
	f.now = f.now.Add(time.Second)
	return f.now
}

// recordID returns an 18-character Salesforce Id: prefix, then n in base 62 padded to 12
// characters, then the 3-character case-safe suffix.
func recordID(prefix string, n int) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := []byte(strings.Repeat("0", 12))
	for i := 11; i >= 0 && n > 0; i-- {
		b[i] = digits[n%62]
		n /= 62
	}
	id15 := (prefix + "000")[:3] + string(b)
	return id15 + idSuffix(id15)
}

// idSuffix is the documented 15→18 character conversion: for each 5-character chunk, a bit per
// upper-case letter, mapped into A–Z0–5.
func idSuffix(id15 string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	out := make([]byte, 3)
	for chunk := 0; chunk < 3; chunk++ {
		bits := 0
		for i := 0; i < 5; i++ {
			c := id15[chunk*5+i]
			if c >= 'A' && c <= 'Z' {
				bits |= 1 << i
			}
		}
		out[chunk] = alphabet[bits]
	}
	return string(out)
}

func (f *Fake) addStandardObjects() {
	str := func(name, label string, length int) salesforce.Field {
		return salesforce.Field{Name: name, Type: "string", Label: label, Length: length, Nillable: true}
	}
	addr := func(prefix, label string) []salesforce.Field {
		c := prefix + "Address"
		return []salesforce.Field{
			{Name: c, Type: "address", Label: label, Nillable: true},
			{Name: prefix + "Street", Type: "textarea", Label: label + " Street", Length: 255, Nillable: true, CompoundFieldName: c},
			{Name: prefix + "City", Type: "string", Label: label + " City", Length: 40, Nillable: true, CompoundFieldName: c},
			{Name: prefix + "State", Type: "string", Label: label + " State", Length: 80, Nillable: true, CompoundFieldName: c},
			{Name: prefix + "PostalCode", Type: "string", Label: label + " Zip", Length: 20, Nillable: true, CompoundFieldName: c},
			{Name: prefix + "Country", Type: "string", Label: label + " Country", Length: 80, Nillable: true, CompoundFieldName: c},
		}
	}
	contact := []salesforce.Field{
		{Name: "Id", Type: "id", Label: "Contact ID", Length: 18},
		{Name: "IsDeleted", Type: "boolean", Label: "Deleted"},
		{Name: "AccountId", Type: "reference", Label: "Account ID", Length: 18, Nillable: true, ReferenceTo: []string{"Account"}},
		str("FirstName", "First Name", 40), {Name: "LastName", Type: "string", Label: "Last Name", Length: 80},
		{Name: "Name", Type: "string", Label: "Full Name", Length: 121},
		{Name: "Salutation", Type: "picklist", Label: "Salutation", Length: 40, Nillable: true},
		{Name: "Email", Type: "email", Label: "Email", Length: 80, Nillable: true},
		{Name: "Phone", Type: "phone", Label: "Business Phone", Length: 40, Nillable: true},
		{Name: "MobilePhone", Type: "phone", Label: "Mobile Phone", Length: 40, Nillable: true},
		str("Title", "Title", 128),
		str("Department", "Department", 80),
		{Name: "LeadSource", Type: "picklist", Label: "Lead Source", Length: 255, Nillable: true},
		{Name: "Birthdate", Type: "date", Label: "Birthdate", Nillable: true},
		{Name: "HasOptedOutOfEmail", Type: "boolean", Label: "Email Opt Out"},
		{Name: "OwnerId", Type: "reference", Label: "Owner ID", Length: 18, ReferenceTo: []string{"User"}},
	}
	contact = append(contact, addr("Mailing", "Mailing")...)
	f.addObject("Contact", "003", contact)

	lead := []salesforce.Field{
		{Name: "Id", Type: "id", Label: "Lead ID", Length: 18},
		{Name: "IsDeleted", Type: "boolean", Label: "Deleted"},
		str("FirstName", "First Name", 40), {Name: "LastName", Type: "string", Label: "Last Name", Length: 80},
		{Name: "Name", Type: "string", Label: "Full Name", Length: 121},
		{Name: "Company", Type: "string", Label: "Company", Length: 255},
		{Name: "Email", Type: "email", Label: "Email", Length: 80, Nillable: true},
		{Name: "Phone", Type: "phone", Label: "Phone", Length: 40, Nillable: true},
		{Name: "MobilePhone", Type: "phone", Label: "Mobile Phone", Length: 40, Nillable: true},
		str("Title", "Title", 128),
		{Name: "LeadSource", Type: "picklist", Label: "Lead Source", Length: 255, Nillable: true},
		{Name: "Status", Type: "picklist", Label: "Status", Length: 255},
		{Name: "IsConverted", Type: "boolean", Label: "Converted"},
		{Name: "AnnualRevenue", Type: "currency", Label: "Annual Revenue", Precision: 18, Scale: 0, Nillable: true},
		{Name: "NumberOfEmployees", Type: "int", Label: "Employees", Nillable: true},
		{Name: "Website", Type: "url", Label: "Website", Length: 255, Nillable: true},
	}
	lead = append(lead, addr("", "Address")...)
	f.addObject("Lead", "00Q", lead)

	account := []salesforce.Field{
		{Name: "Id", Type: "id", Label: "Account ID", Length: 18},
		{Name: "IsDeleted", Type: "boolean", Label: "Deleted"},
		{Name: "Name", Type: "string", Label: "Account Name", Length: 255},
		{Name: "Type", Type: "picklist", Label: "Account Type", Length: 255, Nillable: true},
		{Name: "Industry", Type: "picklist", Label: "Industry", Length: 255, Nillable: true},
		{Name: "Phone", Type: "phone", Label: "Account Phone", Length: 40, Nillable: true},
		{Name: "Website", Type: "url", Label: "Website", Length: 255, Nillable: true},
		{Name: "AnnualRevenue", Type: "currency", Label: "Annual Revenue", Precision: 18, Nillable: true},
		{Name: "NumberOfEmployees", Type: "int", Label: "Employees", Nillable: true},
		{Name: "Description", Type: "textarea", Label: "Account Description", Length: 32000, Nillable: true},
	}
	account = append(account, addr("Billing", "Billing")...)
	account = append(account, addr("Shipping", "Shipping")...)
	f.addObject("Account", "001", account)
}

// ---- HTTP: login host ----

func (f *Fake) serveLogin(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/services/oauth2/authorize" && r.Method == http.MethodGet:
		f.authorize(w, r)
	case r.URL.Path == "/services/oauth2/token" && r.Method == http.MethodPost:
		f.token(w, r)
	case strings.HasPrefix(r.URL.Path, "/id/") && r.Method == http.MethodGet:
		f.identity(w, r)
	default:
		http.NotFound(w, r)
	}
}

// authorize follows GET /services/oauth2/authorize: response_type=code, client_id,
// redirect_uri, state, scope, code_challenge, code_challenge_method. Errors the user cannot be
// redirected for (unknown client, wrong redirect_uri) are a 400 page; others redirect with
// error and error_description, as Salesforce does.
func (f *Fake) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.counts.Authorize++
	f.mu.Unlock()
	if q.Get("client_id") != f.opts.ClientID {
		http.Error(w, "error=invalid_client_id: client identifier invalid", http.StatusBadRequest)
		return
	}
	redirect := q.Get("redirect_uri")
	ru, err := url.Parse(redirect)
	if err != nil || !ru.IsAbs() || (f.opts.RedirectURI != "" && redirect != f.opts.RedirectURI) {
		http.Error(w, "error=redirect_uri_mismatch: redirect_uri must match configuration", http.StatusBadRequest)
		return
	}
	back := func(v url.Values) {
		if s := q.Get("state"); s != "" {
			v.Set("state", s)
		}
		qq := ru.Query()
		for k, vs := range v {
			qq[k] = vs
		}
		ru.RawQuery = qq.Encode()
		http.Redirect(w, r, ru.String(), http.StatusFound)
	}
	switch {
	case q.Get("response_type") != "code":
		back(url.Values{"error": {"unsupported_response_type"}, "error_description": {"response type not supported"}})
		return
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		back(url.Values{"error": {"invalid_request"}, "error_description": {"missing or unsupported code_challenge"}})
		return
	}
	code := "aPrx" + randomString(48) + "=="
	f.mu.Lock()
	f.codes[code] = &authCode{challenge: q.Get("code_challenge"), redirectURI: redirect, expires: time.Now().Add(15 * time.Minute)}
	f.mu.Unlock()
	back(url.Values{"code": {code}})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// token follows POST /services/oauth2/token (form-encoded; client credentials in the body or
// HTTP Basic).
func (f *Fake) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", "bad request")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	grant := r.PostForm.Get("grant_type")
	switch grant {
	case "authorization_code":
		f.counts.TokenCode++
	case "refresh_token":
		f.counts.TokenRefresh++
	default:
		oauthError(w, 400, "unsupported_grant_type", "grant type not supported")
		return
	}
	if id != f.opts.ClientID {
		oauthError(w, 400, "invalid_client_id", "client identifier invalid")
		return
	}
	if !hmac.Equal([]byte(secret), []byte(f.opts.ClientSecret)) {
		oauthError(w, 400, "invalid_client", "invalid client credentials")
		return
	}
	issue := func(withRefresh bool) {
		tok := map[string]string{
			"access_token": f.orgID[:15] + "!AR" + randomString(40),
			"instance_url": f.instance.URL,
			"id":           f.login.URL + "/id/" + f.orgID + "/" + f.userID,
			"token_type":   "Bearer",
			"issued_at":    strconv.FormatInt(time.Now().UnixMilli(), 10),
			"scope":        "api refresh_token",
		}
		mac := hmac.New(sha256.New, []byte(f.opts.ClientSecret))
		mac.Write([]byte(tok["id"] + tok["issued_at"]))
		tok["signature"] = base64.StdEncoding.EncodeToString(mac.Sum(nil))
		f.access[tok["access_token"]] = true
		if withRefresh {
			tok["refresh_token"] = "5Aep" + randomString(60)
			f.refresh[tok["refresh_token"]] = true
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(tok)
	}
	if grant == "refresh_token" {
		if !f.refresh[r.PostForm.Get("refresh_token")] {
			oauthError(w, 400, "invalid_grant", "expired access/refresh token")
			return
		}
		issue(false)
		return
	}
	code := r.PostForm.Get("code")
	c, ok := f.codes[code]
	delete(f.codes, code) // single use, whatever happens next
	switch {
	case !ok:
		oauthError(w, 400, "invalid_grant", "authentication failure")
	case time.Now().After(c.expires):
		oauthError(w, 400, "invalid_grant", "expired authorization code")
	case r.PostForm.Get("redirect_uri") != c.redirectURI:
		oauthError(w, 400, "redirect_uri_mismatch", "redirect_uri must match configuration")
	case !pkceOK(c.challenge, r.PostForm.Get("code_verifier")):
		oauthError(w, 400, "invalid_grant", "invalid code verifier")
	default:
		issue(true)
	}
}

// pkceOK checks RFC 7636 §4.6 for S256: BASE64URL(SHA256(verifier)) == challenge, verifier
// 43–128 characters of [A-Za-z0-9-._~].
func pkceOK(challenge, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		c := verifier[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	return hmac.Equal([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge))
}

// identity follows GET {login}/id/{orgId}/{userId} (the token's id URL) with the bearer token.
func (f *Fake) identity(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.counts.Identity++
	ok := f.authorized(r)
	f.mu.Unlock()
	if !ok {
		apiErrors(w, http.StatusForbidden, "Bad_OAuth_Token", "Bad_OAuth_Token")
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	json.NewEncoder(w).Encode(map[string]any{
		"id": f.login.URL + r.URL.Path, "organization_id": f.orgID, "user_id": f.userID,
		"username": f.opts.Username, "display_name": "Admin User", "email": f.opts.Username,
		"active": true, "user_type": "STANDARD",
	})
}

// ---- HTTP: instance ----

// apiErrors writes the documented REST error body: [{"message","errorCode"}].
func apiErrors(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode([]map[string]any{{"message": message, "errorCode": code}})
}

// authorized checks the bearer token (Authorization: Bearer or the legacy OAuth scheme); callers
// hold mu.
func (f *Fake) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	var tok string
	switch {
	case strings.HasPrefix(h, "Bearer "):
		tok = strings.TrimPrefix(h, "Bearer ")
	case strings.HasPrefix(h, "OAuth "):
		tok = strings.TrimPrefix(h, "OAuth ")
	}
	return tok != "" && f.access[tok] && !f.allBad
}

func (f *Fake) serveInstance(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.authorized(r) {
		f.counts.Unauthorized++
		apiErrors(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
		return
	}
	f.counts.API++
	if e, ok := f.inject[f.counts.API]; ok {
		delete(f.inject, f.counts.API)
		apiErrors(w, e.status, e.code, e.message)
		return
	}
	if r.Method != http.MethodGet {
		apiErrors(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method '"+r.Method+"' not allowed. Allowed are GET")
		return
	}
	prefix := "/services/data/" + salesforce.APIVersion + "/"
	if !strings.HasPrefix(r.URL.Path, prefix) {
		apiErrors(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, prefix)
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 3 && parts[0] == "sobjects" && parts[2] == "describe":
		f.counts.Describe++
		f.describe(w, parts[1])
	case len(parts) == 1 && (parts[0] == "query" || parts[0] == "queryAll"):
		f.counts.Query++
		f.query(w, r, r.URL.Query().Get("q"), parts[0] == "queryAll")
	case len(parts) == 2 && (parts[0] == "query" || parts[0] == "queryAll"):
		f.counts.QueryMore++
		f.queryMore(w, parts[1])
	default:
		apiErrors(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
	}
}

// describe follows GET /services/data/v58.0/sobjects/{Object}/describe (DescribeSObjectResult,
// the fields the sync reads plus a few).
func (f *Fake) describe(w http.ResponseWriter, name string) {
	o, ok := f.objects[strings.ToLower(name)]
	if !ok {
		apiErrors(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	fields := make([]map[string]any, len(o.desc.Fields))
	for i, fl := range o.desc.Fields {
		ref := fl.ReferenceTo
		if ref == nil {
			ref = []string{}
		}
		var compound any
		if fl.CompoundFieldName != "" {
			compound = fl.CompoundFieldName
		}
		fields[i] = map[string]any{"name": fl.Name, "type": fl.Type, "label": fl.Label, "length": fl.Length,
			"precision": fl.Precision, "scale": fl.Scale, "nillable": fl.Nillable, "custom": fl.Custom,
			"referenceTo": ref, "compoundFieldName": compound, "updateable": fl.Name != "Id",
			"soapType": soapType(fl.Type)}
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	json.NewEncoder(w).Encode(map[string]any{
		"name": o.desc.Name, "label": o.desc.Label, "keyPrefix": o.prefix, "queryable": true,
		"custom": strings.HasSuffix(o.desc.Name, "__c"), "fields": fields,
		"urls": map[string]string{"describe": "/services/data/" + salesforce.APIVersion + "/sobjects/" + o.desc.Name + "/describe"},
	})
}

func soapType(t string) string {
	switch t {
	case "id", "reference":
		return "tns:ID"
	case "boolean":
		return "xsd:boolean"
	case "int":
		return "xsd:int"
	case "double", "currency", "percent":
		return "xsd:double"
	case "date":
		return "xsd:date"
	case "datetime":
		return "xsd:dateTime"
	case "address":
		return "urn:address"
	case "location":
		return "urn:location"
	}
	return "xsd:string"
}

// query follows GET /services/data/v58.0/query?q= and /queryAll?q= (QueryResult: totalSize,
// done, nextRecordsUrl, records[] with attributes{type,url}). Errors: 400 MALFORMED_QUERY,
// INVALID_TYPE, INVALID_FIELD.
func (f *Fake) query(w http.ResponseWriter, r *http.Request, soql string, all bool) {
	q, err := parseSOQL(soql)
	if err != nil {
		apiErrors(w, http.StatusBadRequest, "MALFORMED_QUERY", err.Error())
		return
	}
	o, ok := f.objects[strings.ToLower(q.Object)]
	if !ok {
		apiErrors(w, http.StatusBadRequest, "INVALID_TYPE", fmt.Sprintf("sObject type '%s' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", q.Object))
		return
	}
	if f.denied[strings.ToLower(o.desc.Name)] {
		apiErrors(w, http.StatusForbidden, "INSUFFICIENT_ACCESS", "insufficient access rights on object id")
		return
	}
	resolve := func(name string) (salesforce.Field, bool) {
		fl, ok := o.desc.Field(name)
		if !ok {
			apiErrors(w, http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", name, o.desc.Name))
			return fl, false
		}
		if fl.Compound() {
			// Real REST queries return a compound field as a structured value; the sync selects
			// its components instead, so the fake refuses it to catch a builder that forgets to.
			apiErrors(w, http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("compound field '%s' on entity '%s' is not selectable in this fake: select its components", name, o.desc.Name))
			return fl, false
		}
		return fl, true
	}
	sel := make([]salesforce.Field, 0, len(q.Fields))
	for _, name := range q.Fields {
		fl, ok := resolve(name)
		if !ok {
			return
		}
		sel = append(sel, fl)
	}
	var where []salesforce.Field
	for _, c := range q.Where {
		fl, ok := resolve(c.Field)
		if !ok {
			return
		}
		if _, isTime := c.Value.(time.Time); isTime != (fl.Type == "datetime") && c.Value != nil {
			apiErrors(w, http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("value of filter criterion for field '%s' must be of type %s and should not be enclosed in quotes", fl.Name, fl.Type))
			return
		}
		where = append(where, fl)
	}
	var order []salesforce.Field
	for _, ob := range q.Order {
		fl, ok := resolve(ob.Field)
		if !ok {
			return
		}
		order = append(order, fl)
	}
	var rows []map[string]any
	for _, id := range o.order {
		rec := o.records[id]
		if !all && rec["IsDeleted"] == true {
			continue
		}
		match := true
		for i, c := range q.Where {
			if !c.match(rec[where[i].Name]) {
				match = false
				break
			}
		}
		if match {
			rows = append(rows, rec)
		}
	}
	if len(order) > 0 {
		sort.SliceStable(rows, func(i, j int) bool {
			for k, fl := range order {
				n, _ := compare(rows[i][fl.Name], rows[j][fl.Name])
				if q.Order[k].Desc {
					n = -n
				}
				if n != 0 {
					return n < 0
				}
			}
			return false
		})
	}
	if q.Limit > 0 && len(rows) > q.Limit {
		rows = rows[:q.Limit]
	}
	out := make([]map[string]any, len(rows))
	for i, rec := range rows {
		m := make(map[string]any, len(sel)+1)
		m["attributes"] = map[string]string{"type": o.desc.Name, "url": "/services/data/" + salesforce.APIVersion + "/sobjects/" + o.desc.Name + "/" + rec["Id"].(string)}
		for _, fl := range sel {
			m[fl.Name] = render(fl, rec[fl.Name])
		}
		out[i] = m
	}
	batch := f.opts.BatchSize
	if v := r.Header.Get("Sforce-Query-Options"); strings.HasPrefix(v, "batchSize=") {
		if n, err := strconv.Atoi(strings.TrimPrefix(v, "batchSize=")); err == nil && n >= 200 && n <= 2000 && n < batch {
			batch = n
		}
	}
	locator := "01g" + randomString(15)
	f.cursors[locator] = &cursor{rows: out, batch: batch}
	f.writePage(w, locator, 0)
}

// queryMore serves a nextRecordsUrl: /services/data/v58.0/query/{locator}-{offset}.
func (f *Fake) queryMore(w http.ResponseWriter, loc string) {
	i := strings.LastIndexByte(loc, '-')
	if i < 0 {
		apiErrors(w, http.StatusBadRequest, "MALFORMED_QUERY", "invalid query locator")
		return
	}
	offset, err := strconv.Atoi(loc[i+1:])
	c, ok := f.cursors[loc[:i]]
	if err != nil || !ok || offset < 0 || offset > len(c.rows) {
		apiErrors(w, http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
		return
	}
	f.writePage(w, loc[:i], offset)
}

// writePage writes the page of the cursor at offset. Cursors are kept (a client may retry a
// page); Salesforce keeps them for a while too.
func (f *Fake) writePage(w http.ResponseWriter, locator string, offset int) {
	c := f.cursors[locator]
	end := min(offset+c.batch, len(c.rows))
	resp := map[string]any{"totalSize": len(c.rows), "done": end == len(c.rows), "records": c.rows[offset:end]}
	if end < len(c.rows) {
		resp["nextRecordsUrl"] = fmt.Sprintf("/services/data/%s/query/%s-%d", salesforce.APIVersion, locator, end)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	json.NewEncoder(w).Encode(resp)
}

// render returns v as the REST API returns a value of fl's type.
func render(fl salesforce.Field, v any) any {
	t, ok := v.(time.Time)
	if !ok {
		return v
	}
	if fl.Type == "date" {
		return t.UTC().Format("2006-01-02")
	}
	return salesforce.FormatDatetime(t)
}

func randomString(n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
