// Package bigquery is the warehouse driver for Google BigQuery, on cloud.google.com/go/bigquery
// (its REST API). It authenticates with a service account's JSON key, runs every statement as
// a GoogleSQL query job with the connection's project, dataset and location as defaults, and
// turns Google's and the network's failures into warehouse.Error reasons with a hint a user can
// act on. Neither the key nor its private key is ever put in an error; the client logs nothing.
package bigquery

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/auth"
	bq "cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
)

// Google's token endpoints: the one key files name today, and the one older files name.
var googleTokenURIs = []string{"https://oauth2.googleapis.com/token", "https://accounts.google.com/o/oauth2/token"}

// jobLabel marks the query jobs this driver runs, in the project's job history and billing.
var jobLabel = map[string]string{"app": "unified-profiles-retl"}

// Open connects to BigQuery with a service account key. The key must be one Google issued:
// its token_uri Google's token endpoint (or absent) and its universe googleapis.com, so a
// pasted key cannot send this service's requests to a host of its choosing. Nothing is sent
// until the first statement: errors about the key's validity come from Exec and Query.
func Open(ctx context.Context, c warehouse.Credentials) (warehouse.DB, error) {
	k, err := parseKey(c)
	if err != nil {
		return nil, err
	}
	if k.TokenURI != "" && !slices.Contains(googleTokenURIs, k.TokenURI) {
		return nil, keyError(c, "the key's token_uri is not Google's token endpoint")
	}
	if k.UniverseDomain != "" && k.UniverseDomain != "googleapis.com" {
		return nil, keyError(c, "the key is for another universe than googleapis.com")
	}
	return open(ctx, c, k)
}

// OpenWith is Open with client options after the driver's own, for tests and private
// endpoints: option.WithEndpoint("http://127.0.0.1:9050/bigquery/v2/") sends the BigQuery
// REST calls there (the URL ends with the API's /bigquery/v2/ path). Unlike Open it trusts the
// key's token_uri, which is how a test points the service-account token exchange at its own
// server.
func OpenWith(ctx context.Context, c warehouse.Credentials, opts ...option.ClientOption) (warehouse.DB, error) {
	k, err := parseKey(c)
	if err != nil {
		return nil, err
	}
	return open(ctx, c, k, opts...)
}

func open(ctx context.Context, c warehouse.Credentials, k key, opts ...option.ClientOption) (warehouse.DB, error) {
	base := []option.ClientOption{
		// Only a service account key: WithCredentialsJSON would also take an external-account
		// file, which makes the client read files or call URLs the file names.
		option.WithAuthCredentialsJSON(option.ServiceAccount, []byte(c.CredentialsJSON)),
		// The client's debug logs (GOOGLE_SDK_GO_LOGGING_LEVEL) show token exchanges.
		option.WithLogger(slog.New(slog.DiscardHandler)),
		option.WithTelemetryDisabled(),
	}
	client, err := bq.NewClient(ctx, c.Project, append(base, opts...)...)
	if err != nil {
		d := &db{c: c, email: k.ClientEmail}
		return nil, d.classify(err, "")
	}
	client.Location = c.Location
	return &db{client: client, c: c, email: k.ClientEmail}, nil
}

// key is what the driver reads of a service account key file.
type key struct {
	Type           string `json:"type"`
	ClientEmail    string `json:"client_email"`
	PrivateKey     string `json:"private_key"`
	TokenURI       string `json:"token_uri"`
	UniverseDomain string `json:"universe_domain"`
}

// parseKey checks the key file before the client library sees it, so a bad one is told in our
// words (the library's can quote parts of it).
func parseKey(c warehouse.Credentials) (key, error) {
	var k key
	if err := json.Unmarshal([]byte(c.CredentialsJSON), &k); err != nil {
		return k, keyError(c, "the key is not a JSON object")
	}
	if k.Type != "service_account" {
		return k, keyError(c, fmt.Sprintf("the key is of type %q, not service_account", clip(k.Type)))
	}
	if k.ClientEmail == "" || k.PrivateKey == "" {
		return k, keyError(c, "the key has no client_email or no private_key")
	}
	der := []byte(k.PrivateKey)
	if b, _ := pem.Decode(der); b != nil {
		der = b.Bytes
	}
	pk, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		pk, err = x509.ParsePKCS1PrivateKey(der)
	}
	if _, rsaKey := pk.(*rsa.PrivateKey); err != nil || !rsaKey {
		return k, keyError(c, "the key's private_key is not an RSA private key in PEM form")
	}
	return k, nil
}

func keyError(c warehouse.Credentials, why string) error {
	return scrubbed(&warehouse.Error{Reason: warehouse.ReasonAuth, Message: why,
		Hint: "Paste the service account's JSON key file whole, as Google Cloud downloaded it (IAM & Admin → Service Accounts → Keys → Add key → JSON)."}, c)
}

type db struct {
	client *bq.Client
	c      warehouse.Credentials
	email  string // the service account's, named in hints
}

func (d *db) Close() error { return d.client.Close() }

// query is a GoogleSQL query job with the connection's defaults: unqualified tables read from
// its dataset, the job runs in its location (the dataset's, when set).
func (d *db) query(sql string) *bq.Query {
	q := d.client.Query(sql)
	q.DefaultProjectID, q.DefaultDatasetID = d.c.Project, d.c.Dataset
	q.Location = d.c.Location
	q.Labels = jobLabel
	return q
}

// run runs one query job to its end. Read waits: jobs.query answers when the job is done or
// after its own timeout, and then the client polls jobs.getQueryResults until it is; a job
// that failed answers with its error.
func (d *db) run(ctx context.Context, sql string) error {
	_, err := d.query(sql).Read(ctx)
	return err
}

// Exec runs the statements in order, each to its end, and stops at the first failure.
//
// Statements that are all DML (INSERT, UPDATE, DELETE, MERGE, TRUNCATE) go as one script,
// BEGIN TRANSACTION; …; COMMIT TRANSACTION;, so they apply together or not at all (BigQuery
// rolls a failed script's transaction back) in one job rather than one per statement, each
// of which costs a second or more: sqlgen's RecordOutcomes, once per page, is such a batch,
// written to be run in one transaction. BigQuery's transactions refuse DDL on tables and
// datasets (CREATE SCHEMA, CREATE TABLE, DROP TABLE), so any other batch runs as one query
// job per statement, in order; those batches (make our schema, build or drop a sync's tables)
// are written to be safe to run again after a failure part way.
func (d *db) Exec(ctx context.Context, stmts ...string) error {
	if len(stmts) > 1 && allDML(stmts) {
		s := newScript(stmts)
		if err := d.run(ctx, s.text); err != nil {
			e := d.classify(err, s.text)
			e.Position = s.statementPosition(e.Position)
			return e
		}
		return nil
	}
	for _, s := range stmts {
		if err := d.run(ctx, s); err != nil {
			return d.classify(err, s)
		}
	}
	return nil
}

// allDML reports whether every statement starts with a DML keyword (a leading comment makes
// a statement count as not DML, which only costs it the transaction).
func allDML(stmts []string) bool {
	for _, s := range stmts {
		s = strings.TrimLeft(s, " \t\r\n")
		end := strings.IndexFunc(s, func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') })
		if end < 0 {
			end = len(s)
		}
		switch strings.ToUpper(s[:end]) {
		case "INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE":
		default:
			return false
		}
	}
	return true
}

// script is statements wrapped in one transaction, with where each starts (in characters),
// to place an error BigQuery reports in the script back in its statement.
type script struct {
	text   string
	starts []int // 0-based character offset of each statement in text
	sizes  []int // its length in characters
}

const (
	scriptBegin  = "BEGIN TRANSACTION;\n"
	scriptSep    = "\n;\n" // on its own line: a statement ending in a -- comment still ends
	scriptCommit = "COMMIT TRANSACTION;"
)

func newScript(stmts []string) script {
	var b strings.Builder
	var s script
	b.WriteString(scriptBegin)
	n := utf8.RuneCountInString(scriptBegin)
	for _, st := range stmts {
		st = strings.TrimRight(st, " \t\r\n;")
		s.starts = append(s.starts, n)
		s.sizes = append(s.sizes, utf8.RuneCountInString(st))
		b.WriteString(st)
		b.WriteString(scriptSep)
		n += s.sizes[len(s.sizes)-1] + utf8.RuneCountInString(scriptSep)
	}
	b.WriteString(scriptCommit)
	s.text = b.String()
	return s
}

// statementPosition turns a 1-based character position in the script into one in the
// statement it falls in (or just after the end of: BigQuery places "unexpected end of
// statement" there), 0 when it falls in what the script adds.
func (s script) statementPosition(pos int) int {
	for i, start := range s.starts {
		if pos > start && pos <= start+s.sizes[i]+1 {
			return pos - start
		}
	}
	return 0
}

// Query runs one SELECT and returns its columns, named and typed as BigQuery's schema types
// them (INTEGER, FLOAT, NUMERIC, RECORD, …; a repeated field is ARRAY<…>), and all its rows
// (every page of the result) as plain values: see plain.
func (d *db) Query(ctx context.Context, sql string) (warehouse.Rows, error) {
	it, err := d.query(sql).Read(ctx)
	if err != nil {
		return warehouse.Rows{}, d.classify(err, sql)
	}
	var out warehouse.Rows
	for {
		var row []bq.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return warehouse.Rows{}, d.classify(err, sql)
		}
		vals := make([]any, len(row))
		for i, v := range row {
			var f *bq.FieldSchema
			if i < len(it.Schema) {
				f = it.Schema[i]
			}
			vals[i] = plain(v, f)
		}
		out.Rows = append(out.Rows, vals)
	}
	for _, f := range it.Schema {
		out.Columns = append(out.Columns, warehouse.Column{Name: f.Name, Type: typeName(f)})
	}
	return out, nil
}

// typeName is a column's type as BigQuery's schema names it.
func typeName(f *bq.FieldSchema) string {
	t := string(f.Type)
	if f.Type == bq.RangeFieldType && f.RangeElementType != nil {
		t += "<" + string(f.RangeElementType.Type) + ">"
	}
	if f.Repeated {
		t = "ARRAY<" + t + ">"
	}
	return t
}

// plain turns the client's values into the plain ones the warehouse port carries, as the
// Postgres driver gives them: INTEGER int64, FLOAT float64, BOOLEAN bool, STRING and GEOGRAPHY
// (its WKT) string, BYTES []byte, TIMESTAMP time.Time (UTC), DATE and DATETIME time.Time at
// UTC (Postgres's date and timestamp), TIME and INTERVAL their text, NUMERIC and BIGNUMERIC
// float64 when a float64 writes the same decimal (the Postgres driver's rule) and their exact
// decimal text otherwise, JSON its decoded value, RANGE {"start","end"}, RECORD a map of its
// fields and a repeated field a []any, NULL nil. Values inside a RECORD or an array are
// JSON-encodable: a non-finite float there becomes its text, as a trait would hold it.
func plain(v bq.Value, f *bq.FieldSchema) any {
	if f != nil && f.Repeated {
		list, _ := v.([]bq.Value)
		out := make([]any, 0, len(list)) // never NULL in BigQuery: an empty array
		elem := *f
		elem.Repeated = false
		for _, x := range list {
			out = append(out, nested(plain(x, &elem)))
		}
		return out
	}
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		if f != nil && f.Type == bq.JSONFieldType {
			var j any
			if json.Unmarshal([]byte(x), &j) == nil {
				return j
			}
		}
		return x
	case int64, float64, bool, []byte:
		return x
	case time.Time:
		return x.UTC()
	case civil.Date:
		return time.Date(x.Year, x.Month, x.Day, 0, 0, 0, 0, time.UTC)
	case civil.DateTime:
		return x.In(time.UTC)
	case civil.Time:
		return x.String()
	case *big.Rat:
		return decimal(x)
	case *bq.IntervalValue:
		return x.String()
	case *bq.RangeValue:
		var elem *bq.FieldSchema
		if f != nil && f.RangeElementType != nil {
			elem = &bq.FieldSchema{Type: f.RangeElementType.Type}
		}
		return map[string]any{"start": nested(plain(x.Start, elem)), "end": nested(plain(x.End, elem))}
	case []bq.Value: // a RECORD: its fields in schema order
		m := make(map[string]any, len(x))
		for i, fv := range x {
			name := "f" + strconv.Itoa(i)
			var fs *bq.FieldSchema
			if f != nil && i < len(f.Schema) {
				fs = f.Schema[i]
				name = fs.Name
			}
			m[name] = nested(plain(fv, fs))
		}
		return m
	}
	return fmt.Sprint(v)
}

// nested makes a value inside a RECORD or an array JSON-encodable.
func nested(v any) any {
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return v
}

// decimal is a NUMERIC or BIGNUMERIC: a float64 when it writes the same decimal, else the
// exact decimal text.
func decimal(r *big.Rat) any {
	prec, exact := r.FloatPrec()
	if !exact {
		prec = 38 // BIGNUMERIC's scale; BigQuery's decimals always end
	}
	s := r.FloatString(prec)
	if f, err := strconv.ParseFloat(s, 64); err == nil && strconv.FormatFloat(f, 'f', -1, 64) == s {
		return f
	}
	return s
}

// Hints.
const (
	hintKey = "Google refused the service account key: check that the key has not been deleted or disabled and that its service account still exists and is enabled, or create a new JSON key for it (IAM & Admin → Service Accounts → Keys) and paste the whole file."
	hintSQL = "BigQuery could not run the SQL: check it in the BigQuery console (GoogleSQL; legacy SQL is not supported)."
	hintNet = "Could not reach BigQuery or Google's token endpoint: check this service's outbound access to *.googleapis.com (NAT, proxy, firewall) and try again."
)

func (d *db) hintPermission() string {
	who := "the service account"
	if d.email != "" {
		who += " " + d.email
	}
	return fmt.Sprintf("Grant %s roles/bigquery.dataViewer on the datasets the model reads, roles/bigquery.jobUser on the project %s (to run queries), and roles/bigquery.dataEditor on the dataset %s (create that dataset first, in the model's location, or grant roles/bigquery.user on the project so it can create it).",
		who, d.c.Project, sqlgen.Schema)
}

func (d *db) hintDatabase() string {
	h := fmt.Sprintf("Check the project (%q) and dataset (%q): both must exist and the service account must be able to see them.", d.c.Project, d.c.Dataset)
	if d.c.Location != "" {
		h += fmt.Sprintf(" The location (%q) must be the dataset's.", d.c.Location)
	}
	return h
}

// classify maps a client error to a warehouse.Error; stmt is the text sent, to turn an error's
// "at [line:column]" into a character position in it.
func (d *db) classify(err error, stmt string) *warehouse.Error {
	return scrubbed(d.reason(err, stmt), d.c)
}

func (d *db) reason(err error, stmt string) *warehouse.Error {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		reason, msg := "", ge.Message
		if len(ge.Errors) > 0 {
			reason = ge.Errors[0].Reason
			if msg == "" {
				msg = ge.Errors[0].Message
			}
		}
		if msg == "" {
			msg = http.StatusText(ge.Code)
		}
		return d.byReason(ge.Code, reason, msg, stmt)
	}
	var je *bq.Error // a job's status
	if errors.As(err, &je) {
		return d.byReason(0, je.Reason, je.Message, stmt)
	}
	var ae *auth.Error // the token endpoint refused
	if errors.As(err, &ae) {
		return tokenRefused(ae.Response, ae.Body)
	}
	var re *oauth2.RetrieveError // the same, on the older auth path
	if errors.As(err, &re) {
		return tokenRefused(re.Response, re.Body)
	}
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ce x509.CertificateInvalidError
	if errors.As(err, &ue) || errors.As(err, &he) || errors.As(err, &ce) || strings.Contains(err.Error(), "tls:") {
		return &warehouse.Error{Reason: warehouse.ReasonTLS, Message: cause(err),
			Hint: "The TLS connection to Google failed: if a proxy inspects HTTPS, this service must trust its certificate authority."}
	}
	// A network failure the client retried until the deadline is still a network failure.
	if ne := netCause(err); ne != nil {
		msg := ne.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			msg += " (retried until the deadline)"
		}
		return &warehouse.Error{Reason: warehouse.ReasonNetwork, Message: msg, Hint: hintNet}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &warehouse.Error{Reason: warehouse.ReasonTimeout, Message: "BigQuery did not answer in time",
			Hint: "The statement may be slow (see its job in the BigQuery console's job history) or the network to Google slow: try again."}
	}
	return &warehouse.Error{Reason: warehouse.ReasonUnknown, Message: cause(err),
		Hint: "Check the connection settings and that the service account can use BigQuery, then test again."}
}

// byReason maps BigQuery's HTTP status and error reason
// (https://cloud.google.com/bigquery/docs/error-messages) to a warehouse.Error.
func (d *db) byReason(code int, reason, msg, stmt string) *warehouse.Error {
	switch {
	case code == http.StatusUnauthorized || reason == "unauthorized" || reason == "authError":
		return &warehouse.Error{Reason: warehouse.ReasonAuth, Message: msg, Hint: hintKey}
	case reason == "accessNotConfigured" || strings.Contains(msg, "API has not been used"):
		return &warehouse.Error{Reason: warehouse.ReasonPermission, Message: msg,
			Hint: fmt.Sprintf("Enable the BigQuery API in the project %s (APIs & Services → Library → BigQuery API), then test again.", d.c.Project)}
	case reason == "billingNotEnabled":
		return &warehouse.Error{Reason: warehouse.ReasonPermission, Message: msg,
			Hint: fmt.Sprintf("Enable billing on the project %s: Reverse ETL writes tables, which BigQuery's sandbox does not allow.", d.c.Project)}
	case reason == "quotaExceeded" || reason == "rateLimitExceeded" || reason == "jobRateLimitExceeded":
		return &warehouse.Error{Reason: warehouse.ReasonNetwork, Message: msg,
			Hint: "A BigQuery quota or rate limit was reached: try again later, or raise the project's quota."}
	case reason == "responseTooLarge":
		return &warehouse.Error{Reason: warehouse.ReasonSQL, Message: msg, Hint: "The result is too large to return: select fewer rows or columns."}
	case code == http.StatusForbidden || reason == "accessDenied":
		return &warehouse.Error{Reason: warehouse.ReasonPermission, Message: msg, Hint: d.hintPermission()}
	case code == http.StatusNotFound || reason == "notFound":
		// "Not found: Dataset p:d" / "Project p" / "Job p:US.id" (a job run in one location and
		// looked for in another) are the connection's; a missing table or function is the SQL's.
		if strings.Contains(msg, "Not found: Table") || strings.Contains(msg, "Not found: Function") || strings.Contains(msg, "Not found: View") {
			return d.sqlError(msg, stmt, "Check the table names in the SQL: unqualified names read from the connection's dataset; others are written dataset.table or `project.dataset.table`, in the connection's location.")
		}
		return &warehouse.Error{Reason: warehouse.ReasonDatabase, Message: msg, Hint: d.hintDatabase()}
	case reason == "invalidQuery":
		return d.sqlError(msg, stmt, hintSQL)
	case code == http.StatusBadRequest && strings.Contains(strings.ToLower(msg), "project"):
		return &warehouse.Error{Reason: warehouse.ReasonDatabase, Message: msg, Hint: d.hintDatabase()}
	case code >= 500 || reason == "backendError" || reason == "internalError":
		return &warehouse.Error{Reason: warehouse.ReasonNetwork, Message: msg, Hint: "BigQuery failed for a moment: try again."}
	case code == http.StatusBadRequest || reason == "invalid" || reason == "resourcesExceeded":
		return d.sqlError(msg, stmt, hintSQL)
	}
	return &warehouse.Error{Reason: warehouse.ReasonUnknown, Message: msg,
		Hint: "Check the connection settings and that the service account can use BigQuery, then test again."}
}

// sqlError is a statement's error, placed where BigQuery says ("at [line:column]", which then
// leaves the message: the position is in the statement as sent, not as the user wrote it).
func (d *db) sqlError(msg, stmt, hint string) *warehouse.Error {
	e := &warehouse.Error{Reason: warehouse.ReasonSQL, Message: msg, Hint: hint}
	if line, col, rest, ok := errorLocation(msg); ok && stmt != "" {
		if p := position(stmt, line, col); p > 0 {
			e.Message, e.Position = rest, p
		}
	}
	return e
}

// tokenRefused is the token endpoint's refusal of the key (invalid_grant: a deleted key, a
// disabled account, a clock far off). Its body is OAuth's {"error","error_description"}.
func tokenRefused(resp *http.Response, body []byte) *warehouse.Error {
	var b struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	msg := "Google's token endpoint refused the service account key"
	if json.Unmarshal(body, &b) == nil && b.Error != "" {
		msg += ": " + clip(b.Error)
		if b.Description != "" {
			msg += " (" + clip(b.Description) + ")"
		}
	} else if resp != nil {
		msg += ": HTTP " + strconv.Itoa(resp.StatusCode)
	}
	if resp != nil && (resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout) {
		return &warehouse.Error{Reason: warehouse.ReasonNetwork, Message: msg, Hint: "Google's token endpoint failed for a moment: try again."}
	}
	return &warehouse.Error{Reason: warehouse.ReasonAuth, Message: msg, Hint: hintKey}
}

// netCause is the network failure in err's chain (DNS, refused, reset, unreachable), nil
// when the only failure is the context's deadline.
func netCause(err error) error {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns
	}
	var op *net.OpError
	if errors.As(err, &op) {
		if errors.Is(op.Err, context.DeadlineExceeded) || errors.Is(op.Err, context.Canceled) {
			return nil
		}
		return op
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		if errors.Is(err, e) {
			return e
		}
	}
	return nil
}

// cause is err's text: the client's wrapping of its retries ("retry failed with context
// deadline exceeded; last error: …") is dropped, keeping the last error.
func cause(err error) string {
	msg := err.Error()
	if _, last, ok := strings.Cut(msg, "; last error: "); ok && strings.HasPrefix(msg, "retry failed with ") {
		return last
	}
	return msg
}

// scrubbed removes the key from e's texts, whatever put it there: the whole key file, and
// every line of its private key long enough to mean anything.
func scrubbed(e *warehouse.Error, c warehouse.Credentials) *warehouse.Error {
	secrets := []string{c.CredentialsJSON}
	var k key
	if json.Unmarshal([]byte(c.CredentialsJSON), &k) == nil && k.PrivateKey != "" {
		secrets = append(secrets, k.PrivateKey)
		for _, line := range strings.FieldsFunc(k.PrivateKey, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if line = strings.TrimSpace(line); len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				secrets = append(secrets, line)
			}
		}
	}
	for _, s := range secrets {
		if len(s) >= 16 {
			e.Message = strings.ReplaceAll(e.Message, s, "[redacted]")
			e.Hint = strings.ReplaceAll(e.Hint, s, "[redacted]")
		}
	}
	return e
}

// clip bounds a text taken from a reply.
func clip(s string) string {
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// errorLocation finds BigQuery's "at [line:column]" (the last one) in an error message, and
// returns the message without it.
func errorLocation(msg string) (line, col int, rest string, ok bool) {
	for end := len(msg); end > 0; {
		i := strings.LastIndex(msg[:end], "at [")
		if i < 0 {
			return 0, 0, msg, false
		}
		end = i
		if i > 0 && msg[i-1] != ' ' {
			continue
		}
		body := msg[i+len("at ["):]
		j := strings.IndexByte(body, ']')
		if j < 0 {
			continue
		}
		l, c, found := strings.Cut(body[:j], ":")
		line, err1 := digits(l)
		col, err2 := digits(c)
		if !found || err1 != nil || err2 != nil || line < 1 || col < 1 {
			continue
		}
		start := i
		if start > 0 {
			start-- // the space before
		}
		return line, col, msg[:start] + msg[i+len("at [")+j+1:], true
	}
	return 0, 0, msg, false
}

// digits parses 1 to 9 ASCII digits, without leading zeros.
func digits(s string) (int, error) {
	if len(s) == 0 || len(s) > 9 || s[0] == '0' {
		return 0, errors.New("not a line or column")
	}
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, errors.New("not a line or column")
		}
		n = n*10 + int(r-'0')
	}
	return n, nil
}

// tabWidth is how far BigQuery's columns jump at a tab (GoogleSQL's ParseLocationTranslator).
const tabWidth = 8

// position turns BigQuery's 1-based line and column in text into a 1-based character
// position, 0 when text has no such place. BigQuery (GoogleSQL) ends a line at "\n", "\r\n"
// or "\r", counts one column per character (a UTF-8 sequence; an invalid byte counts as one)
// and moves a tab to the next multiple of 8 columns, plus one. The column just after a line's
// last character is its end (where "unexpected end of statement" points).
func position(text string, line, col int) int {
	if line < 1 || col < 1 {
		return 0
	}
	i, chars := 0, 0 // byte offset in text, characters before it
	for l := 1; l < line; l++ {
		for i < len(text) && text[i] != '\n' && text[i] != '\r' {
			_, w := utf8.DecodeRuneInString(text[i:])
			i += w
			chars++
		}
		if i >= len(text) {
			return 0
		}
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
			chars++
		}
		i++
		chars++
	}
	for c := 1; c < col; {
		if i >= len(text) || text[i] == '\n' || text[i] == '\r' {
			return 0
		}
		next := c + 1
		if text[i] == '\t' {
			next = (c+tabWidth-1)/tabWidth*tabWidth + 1
			if next > col {
				break // inside the tab's columns: the tab
			}
		}
		_, w := utf8.DecodeRuneInString(text[i:])
		i += w
		chars++
		c = next
	}
	return chars + 1
}
