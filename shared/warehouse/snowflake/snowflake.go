// Package snowflake is the warehouse driver for Snowflake, on gosnowflake through database/sql.
// It logs in with a password or a key pair (SNOWFLAKE_JWT), holds one session per DB, turns
// result values into plain Go values and Snowflake's and the network's failures into
// warehouse.Error reasons with a hint a user can act on.
//
// Snowflake is a service, not a program that can run beside the tests: the tests run this
// driver against a fake of Snowflake's REST API (snowflake_test.go), never the real service.
package snowflake

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"strings"
	"time"

	"github.com/snowflakedb/gosnowflake"

	"github.com/unifiedprofiles/up/shared/warehouse"
)

// loginTimeout bounds the login's retries (gosnowflake's default is 5 minutes).
const loginTimeout = 60 * time.Second

// maxRetries is how often gosnowflake retries a request that failed on the network or with an
// HTTP 5xx or 429, backing off between tries (its default is 7, with waits up to 16 s each): a
// connection test answers within seconds, and a failed sync step is retried by its queue.
var maxRetries = 2

// resultFormat asks for results as JSON text rather than Arrow (gosnowflake's default): numbers
// come as Snowflake writes them (a NUMBER with a scale as its exact decimal text, which the
// driver's Arrow conversion can round through a float64), and the values are those the tests'
// fake serves. It is one more round trip per Open.
const resultFormat = "ALTER SESSION SET GO_QUERY_RESULT_FORMAT = 'JSON'"

// Open connects to the account's Snowflake endpoint (<account>.snowflakecomputing.com, HTTPS).
func Open(ctx context.Context, c warehouse.Credentials) (warehouse.DB, error) {
	return OpenWith(ctx, c, "", 0, "")
}

// OpenWith connects as Open does, to host and port over protocol ("https" or "http") instead
// of the account's endpoint; an empty host, zero port or empty protocol keeps the default.
// It serves tests, which point it at a fake server (Snowflake itself cannot run here).
func OpenWith(ctx context.Context, c warehouse.Credentials, host string, port int, protocol string) (warehouse.DB, error) {
	d := &db{c: c, secrets: secretsOf(c)}
	account, accountHost := accountAndHost(c.Account)
	if host == "" {
		host = accountHost
	}
	d.host = host
	cfg := gosnowflake.Config{
		Account:   account,
		Host:      host,
		Port:      port,
		Protocol:  protocol,
		User:      c.User,
		Database:  c.Database,
		Schema:    c.Schema,
		Warehouse: c.Warehouse,
		Role:      c.Role,
		// Login fails when the database, schema, warehouse or role does not exist or is not
		// the user's, instead of the first query.
		ValidateDefaultParameters: gosnowflake.ConfigBoolTrue,
		LoginTimeout:              loginTimeout,
		MaxRetryCount:             maxRetries,
		// Our errors are not Snowflake's business (the driver would post them with stacks).
		DisableTelemetry: true,
		// gosnowflake logs each failure to stderr (level error by default), in Snowflake's words,
		// which can quote the statement and whatever a user put in it; our errors carry the same,
		// redacted, to whoever asked. "fatal", not "OFF": OFF leaves the driver's many
		// logger.WithContext(…) calls logging. (The level is the driver's, process-wide: this
		// package is its only user.)
		Tracing: "fatal",
	}
	if c.PrivateKey != "" {
		key, err := parseKey(c.PrivateKey)
		if err != nil {
			return nil, err
		}
		cfg.Authenticator, cfg.PrivateKey = gosnowflake.AuthTypeJwt, key
	} else {
		cfg.Authenticator, cfg.Password = gosnowflake.AuthTypeSnowflake, c.Password
	}
	// One database/sql pool per DB, holding its one connection: a Snowflake session, whose
	// transaction and session settings hold across our calls.
	d.pool = sql.OpenDB(gosnowflake.NewConnector(gosnowflake.SnowflakeDriver{}, cfg))
	d.pool.SetMaxOpenConns(1)
	conn, err := d.pool.Conn(ctx)
	if err != nil {
		d.pool.Close()
		return nil, d.classify(err, "")
	}
	d.conn = conn
	if _, err := conn.ExecContext(ctx, resultFormat); err != nil {
		d.Close()
		return nil, d.classify(err, "")
	}
	return d, nil
}

// accountAndHost reads an account identifier as users paste it (orgname-accountname, a locator
// with its region and cloud, or the whole host name, with or without https://) into the
// account name the login names and the host to call.
func accountAndHost(s string) (account, host string) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s = strings.TrimSuffix(s, "/")
	const domain = ".snowflakecomputing.com"
	if strings.HasSuffix(strings.ToLower(s), domain) {
		s = s[:len(s)-len(domain)]
	}
	account, region, _ := strings.Cut(s, ".")
	host = s + domain
	if strings.EqualFold(region, "us-west-2") { // the first region's locators have no region in their host
		host = account + domain
	}
	return account, host
}

// parseKey reads an unencrypted RSA private key in PEM: PKCS#8 ("BEGIN PRIVATE KEY", what
// Snowflake's key-pair guide makes) or PKCS#1 ("BEGIN RSA PRIVATE KEY"). Its errors never
// quote the key.
func parseKey(text string) (*rsa.PrivateKey, error) {
	const hint = "Paste the whole unencrypted private key file, from -----BEGIN PRIVATE KEY----- to -----END PRIVATE KEY----- (openssl genrsa 2048 | openssl pkcs8 -topk8 -inform PEM -nocrypt makes one), and set its public key on the user (ALTER USER … SET RSA_PUBLIC_KEY = '…')."
	fail := func(msg string) error {
		return &warehouse.Error{Reason: warehouse.ReasonAuth, Message: msg, Hint: hint}
	}
	text = strings.TrimSpace(text)
	if !strings.Contains(text, "\n") { // pasted into a one-line field with its line breaks escaped
		text = strings.ReplaceAll(text, `\n`, "\n")
	}
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, fail("the private key is not in PEM form")
	}
	switch block.Type {
	case "ENCRYPTED PRIVATE KEY":
		return nil, &warehouse.Error{Reason: warehouse.ReasonAuth, Message: "the private key is encrypted",
			Hint: "Give the key unencrypted (openssl pkcs8 -in rsa_key.p8 -out rsa_key_plain.p8 decrypts it): it is sealed at rest here."}
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fail("the private key does not parse as PKCS#8")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fail("the private key is not an RSA key: Snowflake's key-pair login takes RSA keys")
		}
		return rk, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fail("the private key does not parse as PKCS#1")
		}
		return k, nil
	}
	return nil, fail("the PEM block is a " + block.Type + ", not a private key")
}

type db struct {
	pool    *sql.DB
	conn    *sql.Conn
	c       warehouse.Credentials
	host    string
	secrets []string
}

// Close ends the session (gosnowflake deletes it on the server).
func (d *db) Close() error {
	if d.conn != nil {
		d.conn.Close()
	}
	return d.pool.Close()
}

// Exec runs the statements in one transaction (BEGIN … COMMIT), or one statement alone, which
// Snowflake commits by itself.
//
// Snowflake's DDL is not transactional: a CREATE, DROP or ALTER commits the open transaction,
// then runs and commits on its own, and the statements after it run in autocommit until the
// COMMIT, which then has nothing left to do. So a batch that mixes DDL with DML is not atomic.
// Ours are safe to run again whole after a failure part way: the DDL is idempotent
// (CREATE SCHEMA/TABLE IF NOT EXISTS, DROP TABLE IF EXISTS before each CREATE of a work table),
// and the batches of DML (a page's outcomes: DELETE, INSERT, MERGE) hold no DDL, so they do
// commit or roll back together.
func (d *db) Exec(ctx context.Context, stmts ...string) error {
	switch len(stmts) {
	case 0:
		return nil
	case 1:
		if _, err := d.conn.ExecContext(ctx, stmts[0]); err != nil {
			return d.classify(err, stmts[0])
		}
		return nil
	}
	tx, err := d.conn.BeginTx(ctx, nil)
	if err != nil {
		return d.classify(err, "")
	}
	defer tx.Rollback() // after Commit, ErrTxDone and nothing sent
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return d.classify(err, s)
		}
	}
	if err := tx.Commit(); err != nil {
		return d.classify(err, "")
	}
	return nil
}

// Query runs one statement and returns its columns, named and typed as Snowflake types them
// (NUMBER(p,s), FLOAT, VARCHAR, BOOLEAN, DATE, TIME, TIMESTAMP_NTZ/LTZ/TZ, VARIANT, OBJECT,
// ARRAY, BINARY, …), and its rows as plain Go values (see plain).
func (d *db) Query(ctx context.Context, query string) (warehouse.Rows, error) {
	rows, err := d.conn.QueryContext(ctx, query)
	if err != nil {
		return warehouse.Rows{}, d.classify(err, query)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return warehouse.Rows{}, d.classify(err, query)
	}
	out := warehouse.Rows{Columns: make([]warehouse.Column, len(cts))}
	kinds := make([]string, len(cts))
	scales := make([]int64, len(cts))
	for i, ct := range cts {
		kinds[i] = ct.DatabaseTypeName()
		if _, s, ok := ct.DecimalSize(); ok && kinds[i] == "FIXED" {
			scales[i] = s
		}
		out.Columns[i] = warehouse.Column{Name: ct.Name(), Type: typeName(ct)}
	}
	for rows.Next() {
		vals := make([]any, len(cts))
		ptrs := make([]any, len(cts))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return warehouse.Rows{}, d.classify(err, query)
		}
		for i, v := range vals {
			vals[i] = plain(v, kinds[i], scales[i])
		}
		out.Rows = append(out.Rows, vals)
	}
	if err := rows.Err(); err != nil {
		return warehouse.Rows{}, d.classify(err, query)
	}
	return out, nil
}

// secretsOf lists what must never appear in an error: the password and the private key's
// lines (a password shorter than Snowflake's minimum of 8 is still hidden from 4 characters;
// below that, replacing it would garble the message rather than hide anything).
func secretsOf(c warehouse.Credentials) []string {
	var s []string
	if len(c.Password) >= 4 {
		s = append(s, c.Password)
	}
	if c.PrivateKey != "" {
		s = append(s, strings.TrimSpace(c.PrivateKey))
		for _, line := range strings.FieldsFunc(strings.ReplaceAll(c.PrivateKey, `\n`, "\n"), func(r rune) bool { return r == '\n' || r == '\r' }) {
			if line = strings.TrimSpace(line); len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				s = append(s, line)
			}
		}
	}
	return s
}

// redact hides the credentials' secrets in msg.
func (d *db) redact(msg string) string {
	for _, s := range d.secrets {
		msg = strings.ReplaceAll(msg, s, "[redacted]")
	}
	return msg
}
