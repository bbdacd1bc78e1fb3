// These tests run the driver against a FAKE BigQuery, not the real service: no BigQuery
// emulator can be served here. The fake is a small HTTP server written below from Google's
// documented REST shapes: BigQuery v2's jobs.query (POST /bigquery/v2/projects/{p}/queries)
// and jobs.getQueryResults (GET /bigquery/v2/projects/{p}/queries/{jobId}) with schema, rows
// [{f:[{v:…}]}], jobComplete and pageToken paging, Google's JSON error body
// {error:{code,message,errors:[{reason,message}]}}, and the OAuth 2.0 token endpoint the
// service-account JWT flow posts to (the test key's token_uri names it; the key is an RSA key
// made for the test, and the fake checks the JWT's signature with it). The fake runs no SQL:
// each test says what it answers, and it records what the driver sent. So these tests prove
// the driver's side of the protocol (authentication, requests, paging, waiting, value
// conversion, error classification), not that BigQuery accepts sqlgen's SQL.
package bigquery

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/api/option"

	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
)

const (
	project     = "acme-data"
	dataset     = "analytics"
	location    = "EU"
	clientEmail = "retl@acme-data.iam.gserviceaccount.com"
	accessToken = "ya29.fake-access-token"
)

var (
	testKeyOnce sync.Once
	testKey     *rsa.PrivateKey
	testKeyPEM  string
)

// rsaKey is the service account's private key, made once per test run.
func rsaKey() (*rsa.PrivateKey, string) {
	testKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		testKey, testKeyPEM = k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	})
	return testKey, testKeyPEM
}

// keyFile is a service account key file as Google issues it, but for tokenURI.
func keyFile(t *testing.T, tokenURI string) string {
	_, p := rsaKey()
	b, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": project, "private_key_id": "0123456789abcdef",
		"private_key": p, "client_email": clientEmail, "client_id": "1234567890",
		"auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": tokenURI,
		"universe_domain": "googleapis.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// queryRequest is what the fake reads of a jobs.query body.
type queryRequest struct {
	Query          string `json:"query"`
	DefaultDataset *struct {
		ProjectID string `json:"projectId"`
		DatasetID string `json:"datasetId"`
	} `json:"defaultDataset"`
	Location      string            `json:"location"`
	UseLegacySQL  *bool             `json:"useLegacySql"`
	Labels        map[string]string `json:"labels"`
	FormatOptions *struct {
		UseInt64Timestamp bool `json:"useInt64Timestamp"`
	} `json:"formatOptions"`
}

// reply is an HTTP status and a JSON body.
type reply struct {
	status int
	body   any
}

// fake is BigQuery's REST API and Google's token endpoint, as far as the driver uses them.
type fake struct {
	t   *testing.T
	srv *httptest.Server

	mu          sync.Mutex
	sent        []queryRequest // jobs.query bodies, in order
	polls       []poll         // jobs.getQueryResults calls, in order
	tokens      int            // access tokens issued
	refuseToken bool
	// answer answers jobs.query; results answers jobs.getQueryResults (the n-th call for the
	// job, from 1). Unset: an empty, complete result.
	answer  func(q queryRequest) reply
	results func(jobID string, n int, q url.Values) reply
}

type poll struct {
	jobID string
	query url.Values
}

func newFake(t *testing.T) *fake {
	f := &fake{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/token" {
		f.token(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+accessToken {
		write(w, apiError(http.StatusUnauthorized, "unauthorized", "Request is missing required authentication credential."))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/bigquery/v2/projects/"+project+"/queries")
	switch {
	case ok && rest == "" && r.Method == http.MethodPost:
		var q queryRequest
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
			write(w, apiError(http.StatusBadRequest, "invalid", "bad body"))
			return
		}
		f.sent = append(f.sent, q)
		if f.answer == nil {
			write(w, done("job_"+strconv.Itoa(len(f.sent)), nil, nil, ""))
			return
		}
		write(w, f.answer(q))
	case ok && strings.HasPrefix(rest, "/") && r.Method == http.MethodGet:
		job := rest[1:]
		f.polls = append(f.polls, poll{job, r.URL.Query()})
		n := 0
		for _, p := range f.polls {
			if p.jobID == job {
				n++
			}
		}
		if f.results == nil {
			write(w, done(job, nil, nil, ""))
			return
		}
		write(w, f.results(job, n, r.URL.Query()))
	default:
		write(w, apiError(http.StatusNotFound, "notFound", "Not found: URL "+r.URL.Path))
	}
}

// token is the OAuth 2.0 token endpoint of the service-account flow (RFC 7523): it checks
// the JWT's signature against the key's public half and its claims, then issues a token.
func (f *fake) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		write(w, reply{http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"}})
		return
	}
	if f.refuseToken {
		write(w, reply{http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}})
		return
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	k, _ := rsaKey()
	var claims struct {
		Iss, Scope, Aud string
	}
	if len(parts) != 3 {
		f.t.Errorf("token: assertion is not a JWT")
	} else {
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
			f.t.Errorf("token: the JWT is not signed with the key: %v", err)
		}
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		_ = json.Unmarshal(payload, &claims)
	}
	if claims.Iss != clientEmail || claims.Aud != f.srv.URL+"/token" || !strings.Contains(claims.Scope, "https://www.googleapis.com/auth/bigquery") {
		f.t.Errorf("token: claims %+v", claims)
	}
	f.tokens++
	write(w, reply{http.StatusOK, map[string]any{"access_token": accessToken, "token_type": "Bearer", "expires_in": 3600}})
}

func write(w http.ResponseWriter, r reply) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(r.status)
	_ = json.NewEncoder(w).Encode(r.body)
}

// apiError is Google's error body.
func apiError(code int, reason, msg string) reply {
	return reply{code, map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"errors": []any{map[string]any{"message": msg, "domain": "global", "reason": reason}},
	}}}
}

// done is a complete query result (jobs.query and getQueryResults share this shape).
func done(jobID string, fields []any, rows []any, pageToken string) reply {
	b := map[string]any{
		"kind": "bigquery#queryResponse", "jobComplete": true,
		"jobReference": map[string]any{"projectId": project, "jobId": jobID, "location": location},
		"totalRows":    strconv.Itoa(len(rows)),
	}
	if fields != nil {
		b["schema"] = map[string]any{"fields": fields}
	}
	if rows != nil {
		b["rows"] = rows
	}
	if pageToken != "" {
		b["pageToken"] = pageToken
	}
	return reply{http.StatusOK, b}
}

func pending(jobID string) reply {
	return reply{http.StatusOK, map[string]any{"kind": "bigquery#getQueryResultsResponse", "jobComplete": false,
		"jobReference": map[string]any{"projectId": project, "jobId": jobID, "location": location}}}
}

func (f *fake) creds() warehouse.Credentials {
	return warehouse.Credentials{Type: "bigquery", Project: project, Dataset: dataset, Location: location,
		CredentialsJSON: keyFile(f.t, f.srv.URL+"/token")}
}

func (f *fake) open(t *testing.T) warehouse.DB {
	return f.openWith(t, f.creds(), f.srv.URL+"/bigquery/v2/")
}

func (f *fake) openWith(t *testing.T, c warehouse.Credentials, endpoint string) warehouse.DB {
	t.Helper()
	db, err := OpenWith(context.Background(), c, option.WithEndpoint(endpoint))
	if err != nil {
		t.Fatalf("OpenWith: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func (f *fake) sentSQL() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.sent))
	for i, q := range f.sent {
		out[i] = q.Query
	}
	return out
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// cell, row, field: the REST API's row and schema shapes.
func cell(v any) any { return map[string]any{"v": v} }
func row(vs ...any) any {
	cells := make([]any, len(vs))
	for i, v := range vs {
		cells[i] = cell(v)
	}
	return map[string]any{"f": cells}
}
func field(name, typ string, extra ...any) any {
	m := map[string]any{"name": name, "type": typ, "mode": "NULLABLE"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}
func list(vs ...any) []any {
	out := []any{}
	for _, v := range vs {
		out = append(out, cell(v))
	}
	return out
}
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// A query whose result comes in two pages (jobs.query, then getQueryResults with the page
// token), with a column of every BigQuery type, each turned into its plain Go value.
func TestQueryPagesAndTypes(t *testing.T) {
	f := newFake(t)
	fields := []any{
		field("s", "STRING"), field("b", "BYTES"), field("i", "INTEGER"), field("f", "FLOAT"),
		field("ok", "BOOLEAN"), field("ts", "TIMESTAMP"), field("d", "DATE"), field("t", "TIME"),
		field("dt", "DATETIME"), field("n", "NUMERIC"), field("bn", "BIGNUMERIC"), field("g", "GEOGRAPHY"),
		field("j", "JSON"), field("iv", "INTERVAL"), field("r", "RANGE", "rangeElementType", map[string]any{"type": "DATE"}),
		field("rec", "RECORD", "fields", []any{field("name", "STRING"), field("score", "FLOAT", "mode", "REPEATED"), field("at", "TIMESTAMP")}),
		field("ids", "INTEGER", "mode", "REPEATED"),
	}
	page1 := []any{
		row("héllo", b64("\x00\xffbin"), "42", "1.5", "true", "1700000000123456", "2024-02-29", "13:45:01.250000",
			"2024-02-29T13:45:01.5", "123.45", "0.1", "POINT(1 2)", `{"a":[1,"x"],"b":null}`, "1-2 3 4:5:6.789",
			"[2024-01-01, UNBOUNDED)",
			map[string]any{"f": []any{cell("ann"), cell(list("1.5", "NaN")), cell("1700000000000000")}},
			list("1", "2")),
		row("", b64(""), "-9223372036854775808", "-Infinity", "false", "0", "0001-01-01", "00:00:00",
			"9999-12-31T23:59:59.999999", "12345678901234567890.123456789", "3.14159265358979323846264338327950288",
			"POINT EMPTY", `"text"`, "0-0 0 0:0:0", "[UNBOUNDED, 2024-12-31)",
			map[string]any{"f": []any{cell(nil), cell(list()), cell(nil)}},
			list()),
	}
	page2 := []any{row(nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, list())}
	f.answer = func(q queryRequest) reply { return done("job_q", fields, page1, "page-2") }
	f.results = func(job string, n int, q url.Values) reply {
		if job != "job_q" || q.Get("pageToken") != "page-2" {
			t.Errorf("getQueryResults(%s, %v): want job_q at page-2", job, q)
		}
		r := done("job_q", nil, page2, "")
		r.body.(map[string]any)["totalRows"] = "3"
		return r
	}
	db := f.open(t)
	sql := "SELECT * FROM `analytics.people`"
	got, err := db.Query(ctxT(t, 10*time.Second), sql)
	if err != nil {
		t.Fatal(err)
	}

	var wantCols []warehouse.Column
	for _, nt := range []string{"s STRING", "b BYTES", "i INTEGER", "f FLOAT", "ok BOOLEAN", "ts TIMESTAMP", "d DATE",
		"t TIME", "dt DATETIME", "n NUMERIC", "bn BIGNUMERIC", "g GEOGRAPHY", "j JSON", "iv INTERVAL", "r RANGE<DATE>",
		"rec RECORD", "ids ARRAY<INTEGER>"} {
		n, typ, _ := strings.Cut(nt, " ")
		wantCols = append(wantCols, warehouse.Column{Name: n, Type: typ})
	}
	if !reflect.DeepEqual(got.Columns, wantCols) {
		t.Errorf("columns:\n got %v\nwant %v", got.Columns, wantCols)
	}
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	want := [][]any{
		{"héllo", []byte("\x00\xffbin"), int64(42), 1.5, true, time.UnixMicro(1700000000123456).UTC(), utc(2024, 2, 29, 0, 0, 0, 0),
			"13:45:01.250000000", utc(2024, 2, 29, 13, 45, 1, 500000000), 123.45, 0.1, "POINT(1 2)",
			map[string]any{"a": []any{1.0, "x"}, "b": nil}, "1-2 3 4:5:6.789",
			map[string]any{"start": utc(2024, 1, 1, 0, 0, 0, 0), "end": nil},
			map[string]any{"name": "ann", "score": []any{1.5, "NaN"}, "at": time.UnixMicro(1700000000000000).UTC()},
			[]any{int64(1), int64(2)}},
		{"", []byte{}, int64(math.MinInt64), math.Inf(-1), false, time.Unix(0, 0).UTC(), utc(1, 1, 1, 0, 0, 0, 0),
			"00:00:00", utc(9999, 12, 31, 23, 59, 59, 999999000), "12345678901234567890.123456789",
			"3.14159265358979323846264338327950288", "POINT EMPTY", "text", "0-0 0 0:0:0",
			map[string]any{"start": nil, "end": utc(2024, 12, 31, 0, 0, 0, 0)},
			map[string]any{"name": nil, "score": []any{}, "at": nil},
			[]any{}},
		{nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, []any{}},
	}
	if len(got.Rows) != len(want) {
		t.Fatalf("%d rows, want %d (both pages): %v", len(got.Rows), len(want), got.Rows)
	}
	for i := range want {
		for j := range want[i] {
			if !same(got.Rows[i][j], want[i][j]) {
				t.Errorf("row %d column %s: got %#v, want %#v", i+1, wantCols[j].Name, got.Rows[i][j], want[i][j])
			}
		}
	}
	// Every value is one the port names, or JSON-encodable inside records and arrays.
	for _, r := range got.Rows {
		for _, v := range r[12:] {
			if _, err := json.Marshal(v); err != nil {
				t.Errorf("%#v does not encode as JSON: %v", v, err)
			}
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sent) != 1 || f.sent[0].Query != sql {
		t.Fatalf("jobs.query calls: %+v", f.sent)
	}
	q := f.sent[0]
	if q.DefaultDataset == nil || q.DefaultDataset.ProjectID != project || q.DefaultDataset.DatasetID != dataset ||
		q.Location != location || q.UseLegacySQL == nil || *q.UseLegacySQL || q.Labels["app"] != "unified-profiles-retl" ||
		q.FormatOptions == nil || !q.FormatOptions.UseInt64Timestamp {
		t.Errorf("jobs.query request: %+v", q)
	}
	if len(f.polls) != 1 || f.polls[0].query.Get("location") != location {
		t.Errorf("getQueryResults calls: %+v (want one, for page 2, in %s)", f.polls, location)
	}
	if f.tokens != 1 {
		t.Errorf("%d tokens issued, want 1 (the service-account JWT flow, once)", f.tokens)
	}
}

// same compares plain values, times by instant and location name.
func same(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y) && x.Location().String() == y.Location().String()
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || !same(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !same(x[i], y[i]) {
				return false
			}
		}
		return true
	case []byte:
		y, ok := b.([]byte)
		return ok && string(x) == string(y)
	}
	return reflect.DeepEqual(a, b)
}

// Statements with DDL run as one query job each, in order, each waited for: the fake gets
// exactly the statements sent, and the second one's job is polled until it completes.
func TestExecRunsEachStatementInOrder(t *testing.T) {
	f := newFake(t)
	d := sqlgen.BigQuery
	stmts := []string{d.CreateSchema(), d.CreateState("map_1"), d.DropTable(sqlgen.WorkTable("sync_1", "diff"))}
	f.answer = func(q queryRequest) reply {
		if q.Query == stmts[1] {
			return pending("job_slow")
		}
		return done("job_"+strconv.Itoa(len(f.sent)), nil, nil, "")
	}
	f.results = func(job string, n int, q url.Values) reply {
		if job == "job_slow" && n < 3 {
			return pending(job)
		}
		return done(job, nil, nil, "")
	}
	db := f.open(t)
	if err := db.Exec(ctxT(t, 10*time.Second), stmts...); err != nil {
		t.Fatal(err)
	}
	if got := f.sentSQL(); !slices.Equal(got, stmts) {
		t.Errorf("sent:\n%q\nwant:\n%q", got, stmts)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	slow := 0
	for _, p := range f.polls {
		if p.jobID == "job_slow" {
			slow++
		}
	}
	if slow != 3 {
		t.Errorf("job_slow polled %d times, want 3 (until complete): %+v", slow, f.polls)
	}
	for _, q := range f.sent {
		if q.DefaultDataset == nil || q.DefaultDataset.DatasetID != dataset || q.Location != location {
			t.Errorf("%q ran without the connection's dataset and location: %+v", q.Query, q)
		}
	}
}

// DML statements (a page's outcomes) go as one script in one transaction: the fake gets
// exactly the statements, between BEGIN TRANSACTION and COMMIT TRANSACTION.
func TestExecDMLInOneTransaction(t *testing.T) {
	f := newFake(t)
	stmts := sqlgen.BigQuery.RecordOutcomes(sqlgen.StateTable("map_1"), sqlgen.WorkTable("sync_1", "out"), "sync_1", []sqlgen.Outcome{
		{RecordID: "u1", Op: sqlgen.OpAdd, Checksum: "c1", Identifiers: `{"email":"a@example.com"}`},
		{RecordID: "it's\nu2", Op: sqlgen.OpDelete, Identifiers: `{"user_id":"x\\y"}`},
		{RecordID: "u3", Op: sqlgen.OpUpdate, Checksum: "c3", Failed: true},
	})
	if !allDML(stmts) || len(stmts) < 4 {
		t.Fatalf("RecordOutcomes is not a DML batch: %q", stmts)
	}
	db := f.open(t)
	if err := db.Exec(ctxT(t, 10*time.Second), stmts...); err != nil {
		t.Fatal(err)
	}
	want := "BEGIN TRANSACTION;\n" + strings.Join(stmts, "\n;\n") + "\n;\nCOMMIT TRANSACTION;"
	if got := f.sentSQL(); len(got) != 1 || got[0] != want {
		t.Errorf("sent:\n%q\nwant one script:\n%q", got, want)
	}
}

// An error BigQuery places in the script is placed in the statement it falls in.
func TestExecScriptErrorPosition(t *testing.T) {
	f := newFake(t)
	stmts := []string{"DELETE FROM t WHERE TRUE", "INSERT INTO t (x) VALUES (1)", "UPDATE t SET x = 2 WHERE y"}
	f.answer = func(q queryRequest) reply {
		// Line 6 is the third statement (BEGIN, statement, ";", statement, ";", statement).
		if l, c := lineCol(q.Query, strings.Index(q.Query, "WHERE y")+len("WHERE ")); l != 6 || c != 26 {
			t.Errorf("the script's y is at [%d:%d], want [6:26]", l, c)
		}
		return apiError(http.StatusBadRequest, "invalidQuery", "Query error: Unrecognized name: y at [6:26]")
	}
	db := f.open(t)
	err := db.Exec(ctxT(t, 10*time.Second), stmts...)
	e := warehouse.AsError(err)
	if e.Reason != warehouse.ReasonSQL || e.Position != strings.Index(stmts[2], "y")+1 || e.Message != "Query error: Unrecognized name: y" {
		t.Errorf("got %+v, want sql at %d of the third statement", e, strings.Index(stmts[2], "y")+1)
	}
}

// Failures, each with its reason and a hint that says what to do.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(f *fake)
		sql      string
		reason   string
		position int
		message  string // in the message
		hint     string // in the hint
	}{
		{name: "token endpoint refuses the key", setup: func(f *fake) { f.refuseToken = true },
			reason: warehouse.ReasonAuth, message: "invalid_grant (Invalid JWT Signature.)", hint: "new JSON key"},
		{name: "401", setup: func(f *fake) {
			f.answer = func(queryRequest) reply {
				return apiError(http.StatusUnauthorized, "unauthorized", "Request had invalid authentication credentials.")
			}
		}, reason: warehouse.ReasonAuth, message: "invalid authentication credentials", hint: "service account"},
		{name: "403 accessDenied", setup: func(f *fake) {
			f.answer = func(queryRequest) reply {
				return apiError(http.StatusForbidden, "accessDenied", "Access Denied: Project acme-data: User does not have bigquery.jobs.create permission in project acme-data.")
			}
		}, reason: warehouse.ReasonPermission, message: "bigquery.jobs.create",
			hint: "Grant the service account " + clientEmail + " roles/bigquery.dataViewer on the datasets the model reads, roles/bigquery.jobUser on the project acme-data (to run queries), and roles/bigquery.dataEditor on the dataset __unify_retl"},
		{name: "404 dataset", setup: func(f *fake) {
			f.answer = func(queryRequest) reply {
				return apiError(http.StatusNotFound, "notFound", "Not found: Dataset acme-data:analytics was not found in location EU")
			}
		}, reason: warehouse.ReasonDatabase, message: "Dataset acme-data:analytics", hint: `Check the project ("acme-data") and dataset ("analytics")`},
		{name: "404 table is the SQL's", setup: func(f *fake) {
			f.answer = func(queryRequest) reply {
				return apiError(http.StatusNotFound, "notFound", "Not found: Table acme-data:analytics.peple was not found in location EU")
			}
		}, reason: warehouse.ReasonSQL, message: "analytics.peple", hint: "table names"},
		{name: "400 invalidQuery at [1:8]", sql: "SELECT nme FROM people", setup: func(f *fake) {
			f.answer = func(queryRequest) reply {
				return apiError(http.StatusBadRequest, "invalidQuery", "Unrecognized name: nme; Did you mean name? at [1:8]")
			}
		}, reason: warehouse.ReasonSQL, position: 8, message: "Unrecognized name: nme; Did you mean name?", hint: "GoogleSQL"},
		{name: "400 invalidQuery on line 2", sql: "SELECT\n\tnme FROM people", setup: func(f *fake) {
			f.answer = func(queryRequest) reply {
				return apiError(http.StatusBadRequest, "invalidQuery", "Unrecognized name: nme at [2:9]")
			}
		}, reason: warehouse.ReasonSQL, position: 9, message: "Unrecognized name: nme"},
		{name: "403 quotaExceeded", setup: func(f *fake) {
			f.answer = func(queryRequest) reply {
				return apiError(http.StatusForbidden, "quotaExceeded", "Quota exceeded: Your project exceeded quota for free query bytes scanned.")
			}
		}, reason: warehouse.ReasonNetwork, message: "Quota exceeded", hint: "quota"},
		{name: "API disabled", setup: func(f *fake) {
			f.answer = func(queryRequest) reply {
				return apiError(http.StatusForbidden, "accessNotConfigured", "BigQuery API has not been used in project 1234 before or it is disabled.")
			}
		}, reason: warehouse.ReasonPermission, hint: "Enable the BigQuery API in the project acme-data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			tc.setup(f)
			db := f.open(t)
			sql := tc.sql
			if sql == "" {
				sql = "SELECT 1"
			}
			_, err := db.Query(ctxT(t, 10*time.Second), sql)
			var e *warehouse.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v (%T), want a *warehouse.Error", err, err)
			}
			t.Logf("%s: %s (position %d)\nhint: %s", e.Reason, e.Message, e.Position, e.Hint)
			if e.Reason != tc.reason || e.Position != tc.position || !strings.Contains(e.Message, tc.message) || !strings.Contains(e.Hint, tc.hint) {
				t.Errorf("got %+v\nwant reason %s, position %d, message with %q, hint with %q", e, tc.reason, tc.position, tc.message, tc.hint)
			}
			if strings.Contains(e.Message, "at [") {
				t.Errorf("the message keeps BigQuery's location: %q", e.Message)
			}
			assertNoKey(t, err)
		})
	}
}

// An endpoint nothing listens on: a network failure, even once the client's retries run
// into the deadline.
func TestUnreachable(t *testing.T) {
	f := newFake(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	db := f.openWith(t, f.creds(), "http://"+addr+"/bigquery/v2/")
	_, err = db.Query(ctxT(t, 1500*time.Millisecond), "SELECT 1")
	e := warehouse.AsError(err)
	t.Logf("%s: %s\nhint: %s", e.Reason, e.Message, e.Hint)
	if e.Reason != warehouse.ReasonNetwork || !strings.Contains(e.Message, "connection refused") || !strings.Contains(e.Hint, "googleapis.com") {
		t.Errorf("got %+v, want network (connection refused)", e)
	}

	// The token endpoint unreachable too.
	c := f.creds()
	c.CredentialsJSON = keyFile(t, "http://"+addr+"/token")
	db = f.openWith(t, c, f.srv.URL+"/bigquery/v2/")
	_, err = db.Query(ctxT(t, 1500*time.Millisecond), "SELECT 1")
	e = warehouse.AsError(err)
	t.Logf("%s: %s", e.Reason, e.Message)
	if e.Reason != warehouse.ReasonNetwork {
		t.Errorf("token endpoint unreachable: got %+v, want network", e)
	}
}

// A deadline with nothing else wrong (the job still running) is a timeout.
func TestTimeout(t *testing.T) {
	f := newFake(t)
	f.answer = func(q queryRequest) reply { return pending("job_long") }
	f.results = func(job string, n int, q url.Values) reply { return pending(job) }
	db := f.open(t)
	_, err := db.Query(ctxT(t, 700*time.Millisecond), "SELECT 1")
	e := warehouse.AsError(err)
	t.Logf("%s: %s\nhint: %s", e.Reason, e.Message, e.Hint)
	if e.Reason != warehouse.ReasonTimeout {
		t.Errorf("got %+v, want timeout", e)
	}
}

// The key file's private key appears in no error: not from a bad key, not from a server that
// echoes it back.
func TestKeyNeverInErrors(t *testing.T) {
	f := newFake(t)
	good := f.creds()
	_, p := rsaKey()
	var errs []error
	for _, mutate := range []func(m map[string]any){
		func(m map[string]any) { m["type"] = "authorized_user" },
		func(m map[string]any) { m["private_key"] = strings.Replace(p, "MII", "XXX", 1) },
		func(m map[string]any) { m["private_key"] = p[:len(p)/2] },
		func(m map[string]any) { delete(m, "client_email") },
	} {
		var m map[string]any
		_ = json.Unmarshal([]byte(good.CredentialsJSON), &m)
		mutate(m)
		b, _ := json.Marshal(m)
		c := good
		c.CredentialsJSON = string(b)
		_, err := OpenWith(context.Background(), c, option.WithEndpoint(f.srv.URL+"/bigquery/v2/"))
		if err != nil {
			t.Logf("%v", err)
		}
		if e := warehouse.AsError(err); err == nil || e.Reason != warehouse.ReasonAuth {
			t.Errorf("bad key %s: got %v, want auth", b[:40], err)
		}
		errs = append(errs, err)
	}
	c := good
	c.CredentialsJSON = good.CredentialsJSON[:len(good.CredentialsJSON)-1] // not JSON
	_, err := OpenWith(context.Background(), c)
	errs = append(errs, err)

	// A server that echoes the key (the file and the PEM) in its errors.
	f.answer = func(q queryRequest) reply {
		return apiError(http.StatusBadRequest, "invalidQuery", "echo: "+good.CredentialsJSON+" "+p)
	}
	db := f.open(t)
	_, err = db.Query(ctxT(t, 10*time.Second), "SELECT 1")
	errs = append(errs, err)
	if e := warehouse.AsError(err); !strings.Contains(e.Message, "[redacted]") {
		t.Errorf("echoed key not redacted: %q", e.Message)
	}
	for _, err := range errs {
		assertNoKey(t, err)
	}
}

// assertNoKey fails if err's texts hold any line of the test key's PEM body.
func assertNoKey(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	_, p := rsaKey()
	e := warehouse.AsError(err)
	for _, line := range strings.Split(p, "\n") {
		if len(line) < 16 || strings.HasPrefix(line, "-----") {
			continue
		}
		for _, s := range []string{err.Error(), e.Message, e.Hint} {
			if strings.Contains(s, line) || strings.Contains(s, line[:16]) {
				t.Fatalf("the private key is in an error: %q", s)
			}
		}
	}
}

// Open takes only keys that talk to Google: a key naming another token endpoint or universe
// would send this service's requests where the key says.
func TestOpenRefusesForeignEndpoints(t *testing.T) {
	f := newFake(t)
	c := f.creds()
	if _, err := Open(context.Background(), c); warehouse.AsError(err).Reason != warehouse.ReasonAuth || !strings.Contains(err.Error(), "token_uri") {
		t.Errorf("token_uri %s: got %v, want auth", f.srv.URL, err)
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(c.CredentialsJSON), &m)
	m["token_uri"] = "https://oauth2.googleapis.com/token"
	m["universe_domain"] = "example.com"
	b, _ := json.Marshal(m)
	c.CredentialsJSON = string(b)
	if _, err := Open(context.Background(), c); warehouse.AsError(err).Reason != warehouse.ReasonAuth || !strings.Contains(err.Error(), "universe") {
		t.Errorf("universe example.com: got %v, want auth", err)
	}
	delete(m, "universe_domain")
	b, _ = json.Marshal(m)
	c.CredentialsJSON = string(b)
	db, err := Open(context.Background(), c) // sends nothing yet
	if err != nil {
		t.Fatalf("a Google key: %v", err)
	}
	db.Close()
}

// lineCol is BigQuery's (GoogleSQL's ParseLocationTranslator) line and column of the
// character at 0-based character index k of text: the reference position inverts.
func lineCol(text string, k int) (line, col int) {
	line, col = 1, 1
	chars := 0
	for i := 0; i < len(text) && chars < k; {
		r, w := utf8.DecodeRuneInString(text[i:])
		switch {
		case r == '\r' && i+1 < len(text) && text[i+1] == '\n':
			// "\r\n": one break of two characters
			i += 2
			chars += 2
			line, col = line+1, 1
			continue
		case r == '\n' || r == '\r':
			line, col = line+1, 1
		case r == '\t':
			col = (col+tabWidth-1)/tabWidth*tabWidth + 1
		default:
			col++
		}
		i += w
		chars++
	}
	return line, col
}

func TestPosition(t *testing.T) {
	for _, tc := range []struct {
		text      string
		line, col int
		want      int
	}{
		{"SELECT nme", 1, 8, 8},
		{"SELECT nme", 1, 11, 11}, // the end of the statement
		{"SELECT nme", 1, 12, 0},
		{"SELECT nme", 2, 1, 0},
		{"SELECT\nnme", 2, 1, 8},
		{"SELECT\r\nnme", 2, 1, 9},
		{"SELECT\rnme", 2, 1, 8},
		{"a\tb", 1, 9, 3}, // the tab spans columns 2–8
		{"a\tb", 1, 5, 2}, // inside the tab: the tab
		{"\tb", 1, 9, 2},  // a tab at column 1 ends at 8
		{"é\tb", 1, 9, 3}, // é is one column
		{"日本 x", 1, 4, 4}, // characters, not bytes
		{"x", 0, 1, 0},
		{"x", 1, 0, 0},
		{"", 1, 1, 1},
	} {
		if got := position(tc.text, tc.line, tc.col); got != tc.want {
			t.Errorf("position(%q, %d, %d) = %d, want %d", tc.text, tc.line, tc.col, got, tc.want)
		}
	}
}

func TestErrorLocation(t *testing.T) {
	for _, tc := range []struct {
		msg       string
		line, col int
		rest      string
		ok        bool
	}{
		{"Syntax error: Unexpected identifier \"x\" at [1:8]", 1, 8, "Syntax error: Unexpected identifier \"x\"", true},
		{"Unrecognized name: a at [3:5]; Did you mean b? at [12:40]", 12, 40, "Unrecognized name: a at [3:5]; Did you mean b?", true},
		{"Table not found at [2:1] in script", 2, 1, "Table not found in script", true},
		{"at [4:2]", 4, 2, "", true},
		{"no location", 0, 0, "no location", false},
		{"flat [1:2]", 0, 0, "flat [1:2]", false},
		{"at [0:2]", 0, 0, "at [0:2]", false},
		{"at [1:x]", 0, 0, "at [1:x]", false},
		{"at [1:2", 0, 0, "at [1:2", false},
		{"at [1234567890:1]", 0, 0, "at [1234567890:1]", false},
	} {
		line, col, rest, ok := errorLocation(tc.msg)
		if line != tc.line || col != tc.col || rest != tc.rest || ok != tc.ok {
			t.Errorf("errorLocation(%q) = %d, %d, %q, %v; want %d, %d, %q, %v", tc.msg, line, col, rest, ok, tc.line, tc.col, tc.rest, tc.ok)
		}
	}
}

// FuzzPosition: every character's line and column, as BigQuery counts them, give back its
// position; any line and column give 0 or a position within the text (or just after it).
func FuzzPosition(f *testing.F) {
	for _, s := range []string{"SELECT 1", "SELECT\n\tx\r\nFROM t\r", "é\t日本\n\n", "\xff\t\xe2\x82\n"} {
		f.Add(s, 3, 2, 5)
	}
	f.Fuzz(func(t *testing.T, text string, k, line, col int) {
		n := utf8.RuneCountInString(text)
		if p := position(text, line, col); p < 0 || p > n+1 {
			t.Fatalf("position(%q, %d, %d) = %d, outside 0..%d", text, line, col, p, n+1)
		}
		if n == 0 {
			return
		}
		k = ((k % n) + n) % n
		// The "\n" of a "\r\n" has no place of its own (BigQuery never reports one there).
		runes := []rune(text)
		if k > 0 && runes[k] == '\n' && runes[k-1] == '\r' {
			return
		}
		l, c := lineCol(text, k)
		if p := position(text, l, c); p != k+1 {
			t.Fatalf("character %d of %q is at [%d:%d], which gives position %d", k+1, text, l, c, p)
		}
	})
}

// FuzzErrorLocation: a location found is one the message holds, and the rest is the message
// without it.
func FuzzErrorLocation(f *testing.F) {
	for _, s := range []string{"Syntax error at [1:8]", "x at [3:5]; y at [12:40]", "at [", "at [1:", "a at [9:9] b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		line, col, rest, ok := errorLocation(msg)
		if !ok {
			if rest != msg || line != 0 || col != 0 {
				t.Fatalf("not found, yet %d, %d, %q", line, col, rest)
			}
			return
		}
		if line < 1 || col < 1 {
			t.Fatalf("%q: line %d, column %d", msg, line, col)
		}
		loc := "at [" + strconv.Itoa(line) + ":" + strconv.Itoa(col) + "]"
		if !strings.Contains(msg, loc) {
			t.Fatalf("%q: %s is not in it", msg, loc)
		}
		if n := len(msg) - len(rest); n != len(loc) && n != len(loc)+1 {
			t.Fatalf("%q: rest %q is not the message without %s", msg, rest, loc)
		}
	})
}
