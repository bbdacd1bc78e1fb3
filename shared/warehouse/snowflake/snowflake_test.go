// These tests run the driver against a FAKE Snowflake: Snowflake is a service and cannot run
// here, so fakeSnowflake below is an HTTP server that answers the REST calls gosnowflake
// v1.19.1 makes (POST /session/v1/login-request, /queries/v1/query-request,
// /queries/v1/abort-request, /session?delete=true), in the shapes read from the driver's
// source (restful.go, auth.go, query.go, connection.go, converter.go). It checks what a
// client sends (password, or a JWT it verifies with the user's public key; the session
// token; the SQL, recorded in order) and answers with what each test scripts: result rows
// in Snowflake's JSON result format, or Snowflake's error codes and messages. What passes
// here shows the driver's own logic and its use of gosnowflake; it proves nothing about the
// real service beyond what the fake was told.
package snowflake_test

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
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snowflakedb/gosnowflake"

	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/snowflake"
	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
)

func TestMain(m *testing.M) {
	// gosnowflake probes cloud metadata servers (and AWS STS) before its first login to
	// report the platform; the tests stay on the loopback.
	os.Setenv("SNOWFLAKE_DISABLE_PLATFORM_DETECTION", "true")
	// One retry, not two: the unreachable-server tests wait out one backoff (0.5–2.5 s).
	*snowflake.MaxRetries = 1
	// Whatever gosnowflake would log, kept to check it for secrets.
	gosnowflake.GetLogger().SetOutput(&driverLog)
	code := m.Run()
	if logged := driverLog.String(); strings.Contains(logged, password) || strings.Contains(logged, "PRIVATE KEY") {
		fmt.Printf("FAIL: the driver logged a secret:\n%s\n", logged)
		code = 1
	} else if testing.Verbose() {
		fmt.Printf("the driver logged %d bytes\n", len(logged))
	}
	os.Exit(code)
}

// driverLog collects gosnowflake's log.
var driverLog lockedBuffer

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const (
	account    = "acme-retl"
	user       = "RETL_USER"
	password   = "s3cret-Pa55word!"
	database   = "ANALYTICS"
	wh         = "RETL_WH"
	jsonFormat = "ALTER SESSION SET GO_QUERY_RESULT_FORMAT = 'JSON'"
)

// column is one entry of a result's rowtype.
type column struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Precision int64  `json:"precision"`
	Scale     int64  `json:"scale"`
	Length    int64  `json:"length"`
	Nullable  bool   `json:"nullable"`
}

type result struct {
	cols []column
	rows [][]*string
}

// failure is a Snowflake error answer.
type failure struct{ code, state, message string }

// login is what a login request carried.
type login struct {
	Account, LoginName, Password, Authenticator, Token string
	Query                                              url.Values
	SessionParameters                                  map[string]any
	JWTUser                                            string // the user a verified JWT names
}

type fakeSnowflake struct {
	srv *httptest.Server

	mu         sync.Mutex
	passwords  map[string]string         // user → password
	keys       map[string]*rsa.PublicKey // user → public key
	databases  map[string]bool
	warehouses map[string]bool
	results    map[string]result  // SQL → rows
	failures   map[string]failure // SQL → error
	hang       map[string]bool    // SQL → answer only when the client gives up
	sqls       []string           // every SQL received, in order
	logins     []login
	tokens     map[string]bool
	deleted    int      // sessions deleted
	aborted    int      // abort-requests
	unexpected []string // requests the fake does not serve
}

func newFake(t *testing.T, tlsServer bool) *fakeSnowflake {
	t.Helper()
	f := &fakeSnowflake{
		passwords:  map[string]string{user: password},
		keys:       map[string]*rsa.PublicKey{},
		databases:  map[string]bool{database: true},
		warehouses: map[string]bool{wh: true},
		results:    map[string]result{},
		failures:   map[string]failure{},
		hang:       map[string]bool{},
		tokens:     map[string]bool{},
	}
	f.srv = httptest.NewUnstartedServer(f)
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused TLS handshakes
	if tlsServer {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	t.Cleanup(func() {
		f.srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.unexpected) > 0 {
			t.Errorf("the fake got requests it does not serve: %v", f.unexpected)
		}
	})
	return f
}

func (f *fakeSnowflake) addr() (string, int) {
	u, _ := url.Parse(f.srv.URL)
	port, _ := strconv.Atoi(u.Port())
	return u.Hostname(), port
}

func (f *fakeSnowflake) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.sqls...)
}

func (f *fakeSnowflake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/session/v1/login-request":
		f.login(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/queries/v1/query-request":
		f.query(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/queries/v1/abort-request" && f.authorized(r):
		f.mu.Lock()
		f.aborted++
		f.mu.Unlock()
		reply(w, map[string]any{"data": nil, "code": nil, "message": nil, "success": true})
	case r.Method == http.MethodPost && r.URL.Path == "/session" && r.URL.Query().Get("delete") == "true" && f.authorized(r):
		f.mu.Lock()
		f.deleted++
		f.mu.Unlock()
		reply(w, map[string]any{"data": nil, "code": nil, "message": nil, "success": true})
	default:
		f.mu.Lock()
		f.unexpected = append(f.unexpected, r.Method+" "+r.URL.Path)
		f.mu.Unlock()
		http.NotFound(w, r)
	}
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// fail answers as Snowflake does when a login or statement fails: HTTP 200, success false.
func fail(w http.ResponseWriter, f failure, queryID string) {
	reply(w, map[string]any{
		"data":    map[string]any{"sqlState": f.state, "queryId": queryID, "errorCode": f.code},
		"code":    f.code,
		"message": f.message,
		"success": false,
	})
}

func (f *fakeSnowflake) authorized(r *http.Request) bool {
	tok := strings.TrimSuffix(strings.TrimPrefix(r.Header.Get("Authorization"), `Snowflake Token="`), `"`)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens[tok]
}

func (f *fakeSnowflake) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Data struct {
			AccountName       string         `json:"ACCOUNT_NAME"`
			LoginName         string         `json:"LOGIN_NAME"`
			Password          string         `json:"PASSWORD"`
			Authenticator     string         `json:"AUTHENTICATOR"`
			Token             string         `json:"TOKEN"`
			SessionParameters map[string]any `json:"SESSION_PARAMETERS"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d := body.Data
	l := login{Account: d.AccountName, LoginName: d.LoginName, Password: d.Password, Authenticator: d.Authenticator,
		Token: d.Token, Query: r.URL.Query(), SessionParameters: d.SessionParameters}
	f.mu.Lock()
	defer f.mu.Unlock()
	var who string
	if d.Authenticator == "SNOWFLAKE_JWT" {
		u, err := verifyJWT(d.Token, strings.ToUpper(account), f.keys)
		if err != nil {
			f.logins = append(f.logins, l)
			fail(w, failure{"390144", "08004", "JWT token is invalid. [" + err.Error() + "]"}, "")
			return
		}
		who, l.JWTUser = u, u
	} else {
		if pw, ok := f.passwords[d.LoginName]; !ok || pw != d.Password {
			f.logins = append(f.logins, l)
			fail(w, failure{"390100", "08004", "Incorrect username or password was specified."}, "")
			return
		}
		who = d.LoginName
	}
	f.logins = append(f.logins, l)
	q := r.URL.Query()
	if !f.databases[q.Get("databaseName")] {
		fail(w, failure{"390201", "08004", "The requested database does not exist or not authorized."}, "")
		return
	}
	if !f.warehouses[q.Get("warehouse")] {
		fail(w, failure{"390201", "08004", "The requested warehouse does not exist or not authorized."}, "")
		return
	}
	n := len(f.tokens) + 1
	tok := fmt.Sprintf("session-token-%d", n)
	f.tokens[tok] = true
	reply(w, map[string]any{
		"data": map[string]any{
			"token": tok, "validityInSeconds": 3600, "masterToken": fmt.Sprintf("master-token-%d", n), "masterValidityInSeconds": 14400,
			"displayUserName": who, "serverVersion": "9.0.0", "sessionId": 1000 + n,
			"parameters":  []map[string]any{{"name": "TIMEZONE", "value": "America/Los_Angeles"}},
			"sessionInfo": map[string]any{"databaseName": q.Get("databaseName"), "schemaName": q.Get("schemaName"), "warehouseName": q.Get("warehouse"), "roleName": q.Get("roleName")},
		},
		"code": nil, "message": nil, "success": true,
	})
}

// verifyJWT checks a key-pair login's token as Snowflake does: RS256, signed by the key of
// the user it names, issuer ACCOUNT.USER.SHA256:<fingerprint of that key>, not expired.
func verifyJWT(token, acct string, keys map[string]*rsa.PublicKey) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("not a JWT")
	}
	var header struct{ Alg, Typ string }
	var claims struct {
		Iss, Sub string
		Iat, Exp int64
	}
	for i, v := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return "", err
		}
		if err := json.Unmarshal(b, v); err != nil {
			return "", err
		}
	}
	if header.Alg != "RS256" {
		return "", errors.New("alg " + header.Alg)
	}
	a, u, ok := strings.Cut(claims.Sub, ".")
	if !ok || a != acct {
		return "", errors.New("sub " + claims.Sub)
	}
	pub := keys[u]
	if pub == nil {
		return "", errors.New("no public key for " + u)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", err
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return "", errors.New("signature does not verify")
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	fp := sha256.Sum256(der)
	if want := claims.Sub + ".SHA256:" + base64.StdEncoding.EncodeToString(fp[:]); claims.Iss != want {
		return "", errors.New("iss " + claims.Iss)
	}
	if now := time.Now().Unix(); claims.Exp < now || claims.Iat > now+60 {
		return "", errors.New("expired")
	}
	return u, nil
}

func (f *fakeSnowflake) query(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(r) {
		fail(w, failure{"390104", "08001", "User must login again to access the service."}, "")
		return
	}
	var body struct {
		SQLText    string `json:"sqlText"`
		SequenceID uint64 `json:"sequenceId"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.sqls = append(f.sqls, body.SQLText)
	qid := fmt.Sprintf("01b2c3d4-0000-%04d-0000-000000000001", len(f.sqls))
	res, isResult := f.results[body.SQLText]
	fl, isFailure := f.failures[body.SQLText]
	hang := f.hang[body.SQLText]
	f.mu.Unlock()
	switch {
	case hang:
		<-r.Context().Done()
		return
	case isFailure:
		fail(w, fl, qid)
		return
	case !isResult:
		res = statementResult(body.SQLText)
	}
	typeID := int64(0x1000) // SELECT
	verb := strings.ToUpper(strings.Fields(body.SQLText + " x")[0])
	switch verb {
	case "INSERT", "UPDATE", "DELETE", "MERGE":
		typeID = map[string]int64{"INSERT": 0x3100, "UPDATE": 0x3200, "DELETE": 0x3300, "MERGE": 0x3400}[verb]
	case "SELECT", "WITH":
	case "BEGIN", "COMMIT", "ROLLBACK":
		typeID = 0x5000
	default:
		typeID = 0x6000 // DDL, ALTER SESSION
	}
	reply(w, map[string]any{
		"data": map[string]any{
			"parameters": []any{}, "rowtype": res.cols, "rowset": res.rows,
			"total": len(res.rows), "returned": len(res.rows), "queryId": qid,
			"queryResultFormat": "json", "statementTypeId": typeID,
			"finalDatabaseName": database, "finalWarehouseName": wh,
		},
		"code": nil, "message": nil, "success": true,
	})
}

// statementResult is Snowflake's answer to a statement that returns no rows of its own.
func statementResult(sql string) result {
	verb := strings.ToUpper(strings.Fields(sql + " x")[0])
	switch verb {
	case "INSERT", "UPDATE", "DELETE", "MERGE":
		return result{cols: []column{{Name: "number of rows affected", Type: "fixed", Precision: 19}}, rows: [][]*string{{s("1")}}}
	}
	return result{cols: []column{{Name: "status", Type: "text", Length: 16777216}}, rows: [][]*string{{s("Statement executed successfully.")}}}
}

func s(v string) *string { return &v }

func creds() warehouse.Credentials {
	return warehouse.Credentials{Type: "snowflake", Account: account, User: user, Password: password,
		Database: database, Warehouse: wh, Schema: "PUBLIC", Role: "RETL_ROLE"}
}

func open(t *testing.T, f *fakeSnowflake, c warehouse.Credentials) (warehouse.DB, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	host, port := f.addr()
	protocol := "http"
	if f.srv.TLS != nil {
		protocol = "https"
	}
	return snowflake.OpenWith(ctx, c, host, port, protocol)
}

func mustOpen(t *testing.T, f *fakeSnowflake, c warehouse.Credentials) warehouse.DB {
	t.Helper()
	db, err := open(t, f, c)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return db
}

// wantError checks err is a *warehouse.Error of reason, with a hint, and that no secret of c
// shows in it.
func wantError(t *testing.T, err error, reason string, c warehouse.Credentials) *warehouse.Error {
	t.Helper()
	var e *warehouse.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *warehouse.Error", err, err)
	}
	if e.Reason != reason {
		t.Errorf("reason %q (%s; hint %s), want %q", e.Reason, e.Message, e.Hint, reason)
	}
	if e.Hint == "" {
		t.Errorf("%s error %q has no hint", e.Reason, e.Message)
	}
	for _, secret := range secretsIn(c) {
		if strings.Contains(e.Message, secret) || strings.Contains(e.Hint, secret) || strings.Contains(err.Error(), secret) {
			t.Errorf("the %s error shows a secret: %q / %q", e.Reason, e.Message, e.Hint)
		}
	}
	return e
}

func secretsIn(c warehouse.Credentials) []string {
	var out []string
	if c.Password != "" {
		out = append(out, c.Password)
	}
	for _, line := range strings.Split(c.PrivateKey, "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			out = append(out, line)
		}
	}
	return out
}

// TestPasswordLoginAndQuery logs in with a password and reads a row of every type Snowflake's
// JSON results carry, and one of NULLs.
func TestPasswordLoginAndQuery(t *testing.T) {
	f := newFake(t, false)
	const q = "SELECT * FROM typed"
	cols := []column{
		{Name: "ID", Type: "fixed", Precision: 38, Scale: 0},
		{Name: "BIG", Type: "fixed", Precision: 38, Scale: 0},
		{Name: "PRICE", Type: "fixed", Precision: 10, Scale: 2},
		{Name: "EXACT", Type: "fixed", Precision: 38, Scale: 20},
		{Name: "RATIO", Type: "real"},
		{Name: "NAME", Type: "text", Length: 16777216},
		{Name: "ACTIVE", Type: "boolean"},
		{Name: "BIRTHDAY", Type: "date"},
		{Name: "WAKE", Type: "time", Scale: 9},
		{Name: "CREATED", Type: "timestamp_ntz", Scale: 9},
		{Name: "UPDATED", Type: "timestamp_ltz", Scale: 9},
		{Name: "SEEN", Type: "timestamp_tz", Scale: 9},
		{Name: "PROPS", Type: "object"},
		{Name: "TAGS", Type: "array"},
		{Name: "EXTRA", Type: "variant"},
		{Name: "RAW", Type: "binary"},
	}
	for i := range cols {
		cols[i].Nullable = true
	}
	row := []*string{s("42"), s("123456789012345678901234567890"), s("12.50"), s("0.10000000000000000001"), s("0.25"),
		s("Ada"), s("1"), s("19000"), s("28800.500000000"), s("1700000000.123456789"), s("1700000000.000000000"),
		s("1700000000.000000000 1500"), s(`{"plan": "pro", "seats": 3}`), s(`["a", "b"]`), s(`"x"`), s("616263")}
	nulls := make([]*string, len(cols))
	f.results[q] = result{cols: cols, rows: [][]*string{row, nulls, {s("-7"), s("-9223372036854775808"), s("-0.10"), s("3.00000000000000000000"),
		s("-1.5e10"), s(""), s("0"), s("0"), s("0"), s("0"), s("0"), s("0 1440"), s("{}"), s("[]"), s("12"), s("")}}}

	c := creds()
	db := mustOpen(t, f, c)
	rows, err := db.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("query: %v", err)
	}

	var wantCols []warehouse.Column
	for _, nt := range [][2]string{{"ID", "NUMBER(38,0)"}, {"BIG", "NUMBER(38,0)"}, {"PRICE", "NUMBER(10,2)"}, {"EXACT", "NUMBER(38,20)"}, {"RATIO", "FLOAT"}, {"NAME", "VARCHAR"}, {"ACTIVE", "BOOLEAN"}, {"BIRTHDAY", "DATE"}, {"WAKE", "TIME"}, {"CREATED", "TIMESTAMP_NTZ"}, {"UPDATED", "TIMESTAMP_LTZ"}, {"SEEN", "TIMESTAMP_TZ"}, {"PROPS", "OBJECT"}, {"TAGS", "ARRAY"}, {"EXTRA", "VARIANT"}, {"RAW", "BINARY"}} {
		wantCols = append(wantCols, warehouse.Column{Name: nt[0], Type: nt[1]})
	}
	if !reflect.DeepEqual(rows.Columns, wantCols) {
		t.Errorf("columns:\n got %v\nwant %v", rows.Columns, wantCols)
	}
	if len(rows.Rows) != 3 {
		t.Fatalf("%d rows, want 3", len(rows.Rows))
	}
	plus1 := time.FixedZone("", 60*60)
	want := []any{int64(42), "123456789012345678901234567890", 12.5, "0.10000000000000000001", 0.25,
		"Ada", true, time.Date(2022, 1, 8, 0, 0, 0, 0, time.UTC), "08:00:00.5",
		time.Unix(1700000000, 123456789).UTC(), time.Unix(1700000000, 0), time.Unix(1700000000, 0).In(plus1),
		map[string]any{"plan": "pro", "seats": float64(3)}, []any{"a", "b"}, "x", []byte("abc")}
	checkRow(t, rows.Rows[0], want)
	checkRow(t, rows.Rows[1], make([]any, len(cols)))
	checkRow(t, rows.Rows[2], []any{int64(-7), int64(math.MinInt64), -0.1, 3.0, -1.5e10, "", false,
		time.Unix(0, 0).UTC(), "00:00:00", time.Unix(0, 0).UTC(), time.Unix(0, 0), time.Unix(0, 0).UTC(),
		map[string]any{}, []any{}, float64(12), []byte{}})
	if _, off := rows.Rows[0][11].(time.Time).Zone(); off != 3600 {
		t.Errorf("TIMESTAMP_TZ offset %d s, want 3600 (the value's own offset)", off)
	}

	if err := db.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.logins) != 1 {
		t.Fatalf("%d logins, want 1", len(f.logins))
	}
	l := f.logins[0]
	if l.Account != account || l.LoginName != user || l.Password != password || l.Authenticator != "" {
		t.Errorf("login account %q user %q password set %v authenticator %q", l.Account, l.LoginName, l.Password != "", l.Authenticator)
	}
	if l.Query.Get("databaseName") != database || l.Query.Get("warehouse") != wh || l.Query.Get("schemaName") != "PUBLIC" || l.Query.Get("roleName") != "RETL_ROLE" {
		t.Errorf("login names %v", l.Query)
	}
	if l.SessionParameters["CLIENT_VALIDATE_DEFAULT_PARAMETERS"] != true {
		t.Errorf("login does not ask Snowflake to check the database and warehouse: %v", l.SessionParameters)
	}
	if want := []string{jsonFormat, q}; !reflect.DeepEqual(f.sqls, want) {
		t.Errorf("SQL received %q, want %q", f.sqls, want)
	}
	if f.deleted != 1 {
		t.Errorf("%d sessions deleted on Close, want 1", f.deleted)
	}
}

func checkRow(t *testing.T, got, want []any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("row has %d values, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if wt, ok := w.(time.Time); ok {
			gt, ok := g.(time.Time)
			if !ok || !gt.Equal(wt) {
				t.Errorf("value %d: %#v, want %v", i, g, wt)
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("value %d: %#v (%T), want %#v (%T)", i, g, g, w, w)
		}
	}
}

// TestExec runs several statements in one transaction, one alone, and a batch that fails.
func TestExec(t *testing.T) {
	f := newFake(t, false)
	db := mustOpen(t, f, creds())
	defer db.Close()
	d := sqlgen.Snowflake
	ctx := context.Background()

	batch := d.RecordOutcomes(sqlgen.StateTable("m1"), sqlgen.WorkTable("s1", "out"), "s1", []sqlgen.Outcome{
		{RecordID: "r1", Op: sqlgen.OpAdd, Checksum: "c1", Identifiers: `{"user_id":"r1"}`},
		{RecordID: "r2", Op: sqlgen.OpDelete, Identifiers: `{"user_id":"r2"}`},
	})
	if err := db.Exec(ctx, batch...); err != nil {
		t.Fatalf("exec: %v", err)
	}
	want := append(append([]string{jsonFormat, "BEGIN"}, batch...), "COMMIT")
	if got := f.received(); !reflect.DeepEqual(got, want) {
		t.Errorf("SQL received:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// One statement runs alone: Snowflake commits it by itself.
	if err := db.Exec(ctx, d.CreateSchema()); err != nil {
		t.Fatalf("exec: %v", err)
	}
	if got := f.received(); got[len(got)-1] != d.CreateSchema() || got[len(got)-2] != "COMMIT" {
		t.Errorf("a single statement ran as %q", got[len(want):])
	}

	// A failing statement ends the batch and rolls it back.
	n := len(f.received())
	create, bad, never := d.CreateState("m2"), "INSERT INTO nowhere VALUES (1)", d.DropTable("x")
	f.mu.Lock()
	f.failures[bad] = failure{"002003", "42S02", "SQL compilation error:\nTable 'NOWHERE' does not exist or not authorized."}
	f.mu.Unlock()
	err := db.Exec(ctx, create, bad, never)
	e := wantError(t, err, warehouse.ReasonSQL, creds())
	if !strings.Contains(e.Message, "NOWHERE") {
		t.Errorf("message %q", e.Message)
	}
	if got, want := f.received()[n:], []string{"BEGIN", create, bad, "ROLLBACK"}; !reflect.DeepEqual(got, want) {
		t.Errorf("failing batch sent %q, want %q", got, want)
	}
	if err := db.Exec(ctx); err != nil {
		t.Errorf("no statements: %v", err)
	}
}

// pkcs8 returns a new RSA key and its unencrypted PKCS#8 PEM.
func pkcs8(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// TestKeyPairLogin logs in with a JWT the fake verifies with the user's public key.
func TestKeyPairLogin(t *testing.T) {
	f := newFake(t, false)
	key, keyPEM := pkcs8(t)
	f.keys[user] = &key.PublicKey
	c := creds()
	c.Password, c.PrivateKey = "", keyPEM

	db := mustOpen(t, f, c)
	if _, err := db.Query(context.Background(), "SELECT 1"); err != nil {
		t.Errorf("query after a key-pair login: %v", err)
	}
	db.Close()
	f.mu.Lock()
	l := f.logins[0]
	f.mu.Unlock()
	if l.Authenticator != "SNOWFLAKE_JWT" || l.JWTUser != user || l.Password != "" || l.Token == "" {
		t.Errorf("login authenticator %q, JWT user %q, password set %v", l.Authenticator, l.JWTUser, l.Password != "")
	}

	// The same PEM with its line breaks escaped, as a one-line form field holds it.
	c1 := c
	c1.PrivateKey = strings.ReplaceAll(keyPEM, "\n", `\n`)
	if db, err := open(t, f, c1); err != nil {
		t.Errorf("escaped PEM: %v", err)
	} else {
		db.Close()
	}

	// Another key: Snowflake refuses the JWT.
	_, otherPEM := pkcs8(t)
	c2 := c
	c2.PrivateKey = otherPEM
	_, err := open(t, f, c2)
	wantError(t, err, warehouse.ReasonAuth, c2)

	// Keys that do not parse fail before any request, without quoting the key.
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	for name, bad := range map[string]string{
		"not PEM":   "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
		"encrypted": string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})),
		"garbled":   string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der[:200]})),
		"public":    string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	} {
		c3 := c
		c3.PrivateKey = bad
		_, err := open(t, f, c3)
		e := wantError(t, err, warehouse.ReasonAuth, c3)
		t.Logf("%s: %s (%s)", name, e.Message, e.Hint)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.logins) != 3 {
		t.Errorf("%d logins, want 3 (keys that do not parse never reach Snowflake)", len(f.logins))
	}
}

// TestErrors checks each failure's reason, hint and position, and that the password shows in
// none of them.
func TestErrors(t *testing.T) {
	ctx := context.Background()

	t.Run("wrong password", func(t *testing.T) {
		f := newFake(t, false)
		c := creds()
		c.Password = "Wrong-Pa55word-123"
		_, err := open(t, f, c)
		e := wantError(t, err, warehouse.ReasonAuth, c)
		if !strings.Contains(e.Message, "Incorrect username or password") {
			t.Errorf("message %q", e.Message)
		}
	})

	t.Run("unknown database", func(t *testing.T) {
		f := newFake(t, false)
		c := creds()
		c.Database = "NO_SUCH_DB"
		_, err := open(t, f, c)
		e := wantError(t, err, warehouse.ReasonDatabase, c)
		if !strings.Contains(e.Hint, "NO_SUCH_DB") {
			t.Errorf("hint %q does not name the database", e.Hint)
		}
	})

	t.Run("unknown warehouse", func(t *testing.T) {
		f := newFake(t, false)
		c := creds()
		c.Warehouse = "NO_SUCH_WH"
		_, err := open(t, f, c)
		wantError(t, err, warehouse.ReasonDatabase, c)
	})

	f := newFake(t, false)
	c := creds()
	db := mustOpen(t, f, c)
	defer db.Close()
	script := func(sql string, fl failure) {
		f.mu.Lock()
		f.failures[sql] = fl
		f.mu.Unlock()
	}

	t.Run("insufficient privileges", func(t *testing.T) {
		q := sqlgen.Snowflake.CreateSchema()
		script(q, failure{"003001", "42501", "SQL access control error:\nInsufficient privileges to operate on database 'ANALYTICS'"})
		e := wantError(t, db.Exec(ctx, q), warehouse.ReasonPermission, c)
		for _, w := range []string{"GRANT USAGE ON WAREHOUSE RETL_WH", "GRANT USAGE ON DATABASE ANALYTICS", "GRANT SELECT", "GRANT CREATE SCHEMA ON DATABASE ANALYTICS", "__unify_retl"} {
			if !strings.Contains(e.Hint, w) {
				t.Errorf("hint %q lacks %q", e.Hint, w)
			}
		}
	})

	t.Run("syntax error", func(t *testing.T) {
		q := "SELECT FROM users"
		script(q, failure{"001003", "42000", "SQL compilation error:\nsyntax error line 1 at position 7 unexpected 'FROM'."})
		_, err := db.Query(ctx, q)
		e := wantError(t, err, warehouse.ReasonSQL, c)
		if e.Position != 8 {
			t.Errorf("position %d, want 8 (1-based, of FROM)", e.Position)
		} else if q[e.Position-1:e.Position+3] != "FROM" {
			t.Errorf("position 8 is not FROM's in %q", q)
		}
	})

	t.Run("syntax error in a model", func(t *testing.T) {
		model := "SELECT id,\n       email\nFORM users"
		q := sqlgen.Snowflake.Preview(model, 10)
		// The statement is "WITH __unify_model AS (\n" + model + …: FORM is on line 4.
		script(q, failure{"001003", "42000", "SQL compilation error:\nsyntax error line 4 at position 0 unexpected 'FORM'."})
		_, err := db.Query(ctx, q)
		e := wantError(t, err, warehouse.ReasonSQL, c)
		if got, want := e.Position-sqlgen.ModelOffset(), strings.Index(model, "FORM")+1; got != want {
			t.Errorf("position %d in the model, want %d", got, want)
		}
	})

	t.Run("missing table", func(t *testing.T) {
		q := "SELECT * FROM nowhere"
		script(q, failure{"002003", "42S02", "SQL compilation error:\nObject 'NOWHERE' does not exist or not authorized."})
		_, err := db.Query(ctx, q)
		wantError(t, err, warehouse.ReasonSQL, c)
	})

	t.Run("database gone", func(t *testing.T) {
		q := "SELECT * FROM t2"
		script(q, failure{"002003", "02000", "SQL compilation error:\nDatabase 'ANALYTICS' does not exist or not authorized."})
		_, err := db.Query(ctx, q)
		wantError(t, err, warehouse.ReasonDatabase, c)
	})

	t.Run("the password in Snowflake's words", func(t *testing.T) {
		q := "SELECT '" + password + "' FORM t"
		script(q, failure{"001003", "42000", "SQL compilation error:\nsyntax error line 1 at position 26 unexpected 'FORM'. near '" + password + "'"})
		_, err := db.Query(ctx, q)
		e := wantError(t, err, warehouse.ReasonSQL, c)
		if !strings.Contains(e.Message, "[redacted]") {
			t.Errorf("message %q", e.Message)
		}
	})

	t.Run("statement timeout", func(t *testing.T) {
		q := "SELECT SYSTEM$WAIT(3600)"
		script(q, failure{"000630", "57014", "Statement reached its statement or warehouse timeout of 10 second(s) and was canceled."})
		_, err := db.Query(ctx, q)
		wantError(t, err, warehouse.ReasonTimeout, c)
	})

	t.Run("deadline", func(t *testing.T) {
		q := "SELECT * FROM slow"
		f.mu.Lock()
		f.hang[q] = true
		f.mu.Unlock()
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := db.Query(ctx, q)
		wantError(t, err, warehouse.ReasonTimeout, c)
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.aborted != 1 {
			t.Errorf("%d abort-requests, want 1 (gosnowflake cancels the query in Snowflake)", f.aborted)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		_, err = snowflake.OpenWith(ctx, c, "127.0.0.1", port, "http")
		e := wantError(t, err, warehouse.ReasonNetwork, c)
		if !strings.Contains(e.Message, "connection refused") || strings.Contains(e.Message, "login-request") {
			t.Errorf("message %q: want the network's words, without the request's URL", e.Message)
		}
	})

	t.Run("untrusted certificate", func(t *testing.T) {
		tf := newFake(t, true)
		_, err := open(t, tf, c)
		e := wantError(t, err, warehouse.ReasonTLS, c)
		if !strings.Contains(e.Message, "certificate") || strings.Contains(e.Message, "login-request") {
			t.Errorf("message %q: want the TLS error's words, without the request's URL", e.Message)
		}
	})
}

func TestAccountAndHost(t *testing.T) {
	for in, want := range map[string][2]string{
		"myorg-myaccount":                                 {"myorg-myaccount", "myorg-myaccount.snowflakecomputing.com"},
		" xy12345.eu-central-1 ":                          {"xy12345", "xy12345.eu-central-1.snowflakecomputing.com"},
		"xy12345.us-east-2.aws":                           {"xy12345", "xy12345.us-east-2.aws.snowflakecomputing.com"},
		"XY12345.us-west-2":                               {"XY12345", "XY12345.snowflakecomputing.com"},
		"https://myorg-myaccount.snowflakecomputing.com/": {"myorg-myaccount", "myorg-myaccount.snowflakecomputing.com"},
		"xy12345.eu-west-1.SnowflakeComputing.com":        {"xy12345", "xy12345.eu-west-1.snowflakecomputing.com"},
	} {
		a, h := snowflake.AccountAndHost(in)
		if a != want[0] || h != want[1] {
			t.Errorf("AccountAndHost(%q) = %q, %q; want %q, %q", in, a, h, want[0], want[1])
		}
	}
}

func TestPosition(t *testing.T) {
	for _, c := range []struct {
		msg, stmt string
		want      int
	}{
		{"syntax error line 1 at position 7 unexpected 'FROM'.", "SELECT FROM t", 8},
		{"syntax error line 1 at position 0 unexpected 'SELEC'.", "SELEC 1", 1},
		{"syntax error line 2 at position 2 unexpected 'x'.", "SELECT\n  x y", 10},
		{"line 1 at position 4 unexpected 'é'.\nsyntax error line 2 at position 0", "SELECTé", 5},
		{"syntax error line 1 at position 3 unexpected 'x'.", "éééx", 4}, // characters, not bytes
		{"syntax error line 1 at position 13 unexpected '<EOF>'.", "SELECT 1 FROM", 14},
		{"syntax error line 1 at position 14 unexpected '<EOF>'.", "SELECT 1 FROM", 0},
		{"syntax error line 3 at position 0", "SELECT 1", 0},
		{"syntax error line 0 at position 0", "SELECT 1", 0},
		{"Object 'T' does not exist or not authorized.", "SELECT * FROM t", 0},
		{"line 99999999999 at position 1", "x", 0},
	} {
		if got := snowflake.Position(c.msg, c.stmt); got != c.want {
			t.Errorf("Position(%q, %q) = %d, want %d", c.msg, c.stmt, got, c.want)
		}
	}
}

func TestNumber(t *testing.T) {
	for _, c := range []struct {
		in    string
		scale int64
		want  any
	}{
		{"0", 0, int64(0)},
		{"9223372036854775807", 0, int64(math.MaxInt64)},
		{"9223372036854775808", 0, "9223372036854775808"},
		{"12.50", 2, 12.5},
		{"12.00", 2, 12.0},
		{"-0.00", 2, math.Copysign(0, -1)},
		{"0.1", 1, 0.1},
		{"12345678901234567.89", 2, "12345678901234567.89"},
		{"9007199254740993.0", 1, "9007199254740993.0"},
		{"1e5", 1, "1e5"},
		{"NaN", 1, "NaN"},
	} {
		if got := snowflake.Number(c.in, c.scale); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Number(%q, %d) = %#v, want %#v", c.in, c.scale, got, c.want)
		}
	}
}
