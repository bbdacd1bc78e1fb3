// Package postgres is the warehouse driver for PostgreSQL and Amazon Redshift (which speaks
// PostgreSQL's wire protocol), on pgx. It turns the server's and the network's failures into
// warehouse.Error reasons with a hint a user can act on.
package postgres

import (
	"context"
	"crypto/x509"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/unifiedprofiles/up/shared/warehouse"
)

// connectTimeout bounds the TCP and TLS handshake.
const connectTimeout = 10 * time.Second

// Open connects to PostgreSQL.
func Open(ctx context.Context, c warehouse.Credentials) (warehouse.DB, error) {
	return open(ctx, c, false)
}

// OpenRedshift connects to Redshift: the simple query protocol, which Redshift serves fully.
func OpenRedshift(ctx context.Context, c warehouse.Credentials) (warehouse.DB, error) {
	return open(ctx, c, true)
}

func open(ctx context.Context, c warehouse.Credentials, simple bool) (warehouse.DB, error) {
	cfg, err := pgx.ParseConfig(dsn(c))
	if err != nil {
		return nil, &warehouse.Error{Reason: warehouse.ReasonNetwork, Message: "the connection settings do not parse: " + err.Error(), Hint: "Check the host, port and ssl_mode."}
	}
	cfg.ConnectTimeout = connectTimeout
	if simple {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	} else {
		// JIT compiling a diff's expressions costs PostgreSQL about 0.8 s a statement and
		// wins nothing back on a million rows (measured: 2.4 s with it, 1.5 s without).
		cfg.RuntimeParams["jit"] = "off"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, classify(err, c)
	}
	if !simple {
		if err := supported(conn.PgConn().ParameterStatus("server_version")); err != nil {
			conn.Close(ctx)
			return nil, err
		}
	}
	return &db{conn: conn, c: c}, nil
}

// minVersion is the oldest PostgreSQL the generated SQL runs on: hash_record_extended and
// INCLUDE in a primary key (sqlgen) came in 14 and 11.
const minVersion = 14

// supported refuses a server older than minVersion, given its server_version ("15.4",
// "14.10 (Debian 14.10-1)", "17beta1").
func supported(version string) error {
	major := version[:len(version)-len(strings.TrimLeft(version, "0123456789"))]
	if n, err := strconv.Atoi(major); err == nil && n >= minVersion {
		return nil
	}
	return &warehouse.Error{Reason: warehouse.ReasonDatabase, Message: "the server runs PostgreSQL " + version,
		Hint: fmt.Sprintf("Reverse ETL needs PostgreSQL %d or later.", minVersion)}
}

// dsn writes libpq keyword/value settings, each value quoted.
func dsn(c warehouse.Credentials) string {
	q := func(v string) string {
		return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", `\'`) + "'"
	}
	return fmt.Sprintf("host=%s port=%d dbname=%s user=%s password=%s sslmode=%s application_name=unified-profiles-retl",
		q(c.Host), c.Port, q(c.Database), q(c.User), q(c.Password), q(c.SSLMode))
}

type db struct {
	conn *pgx.Conn
	c    warehouse.Credentials
}

func (d *db) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.conn.Close(ctx)
}

// Exec runs the statements in one transaction: DDL is transactional in PostgreSQL, so a
// failed step leaves nothing half made. One statement runs on its own: it is atomic by
// itself, and VACUUM refuses a transaction block.
func (d *db) Exec(ctx context.Context, stmts ...string) error {
	if len(stmts) == 1 {
		if _, err := d.conn.Exec(ctx, stmts[0]); err != nil {
			return classify(err, d.c)
		}
		return nil
	}
	tx, err := d.conn.Begin(ctx)
	if err != nil {
		return classify(err, d.c)
	}
	defer tx.Rollback(context.Background())
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return classify(err, d.c)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return classify(err, d.c)
	}
	return nil
}

func (d *db) Query(ctx context.Context, sql string) (warehouse.Rows, error) {
	rows, err := d.conn.Query(ctx, sql)
	if err != nil {
		return warehouse.Rows{}, classify(err, d.c)
	}
	defer rows.Close()
	var out warehouse.Rows
	tm := d.conn.TypeMap()
	for _, f := range rows.FieldDescriptions() {
		typ := "oid " + strconv.FormatUint(uint64(f.DataTypeOID), 10)
		if t, ok := tm.TypeForOID(f.DataTypeOID); ok {
			typ = t.Name
		}
		out.Columns = append(out.Columns, warehouse.Column{Name: f.Name, Type: typ})
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return warehouse.Rows{}, classify(err, d.c)
		}
		for i, v := range vals {
			vals[i] = plain(v)
		}
		out.Rows = append(out.Rows, vals)
	}
	if err := rows.Err(); err != nil {
		return warehouse.Rows{}, classify(err, d.c)
	}
	return out, nil
}

// plain turns pgx's richer values (numeric, uuid, intervals…) into Go's plain ones: numbers
// stay numbers where they fit, the rest becomes the server's text.
func plain(v any) any {
	switch x := v.(type) {
	case nil, string, bool, int64, float64, time.Time, []byte, map[string]any, []any:
		return x
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case float32:
		return float64(x)
	case [16]byte: // uuid
		return fmt.Sprintf("%x-%x-%x-%x-%x", x[0:4], x[4:6], x[6:8], x[8:10], x[10:16])
	case driver.Valuer:
		dv, err := x.Value()
		if err != nil || dv == nil {
			return nil
		}
		if s, ok := dv.(string); ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil && strconv.FormatFloat(f, 'f', -1, 64) == s {
				return f // a numeric that a float64 holds exactly
			}
		}
		return plain(dv)
	}
	return fmt.Sprint(v)
}

// SQLSTATE classes and codes (PostgreSQL Appendix A).
const (
	invalidPassword      = "28P01"
	invalidAuthorization = "28000"
	invalidCatalogName   = "3D000"
	insufficientPriv     = "42501"
	tooManyConnections   = "53300"
)

// classify maps a pgx error to a warehouse.Error.
func classify(err error, c warehouse.Credentials) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		msg := pg.Message
		if pg.Detail != "" {
			msg += " (" + pg.Detail + ")"
		}
		switch {
		case pg.Code == invalidPassword || pg.Code == invalidAuthorization:
			return &warehouse.Error{Reason: warehouse.ReasonAuth, Message: msg,
				Hint: "Check the user and password; the server must also let this user connect from this service's address (pg_hba.conf, or the cluster's allow-list)."}
		case pg.Code == invalidCatalogName:
			return &warehouse.Error{Reason: warehouse.ReasonDatabase, Message: msg,
				Hint: fmt.Sprintf("Check the database name (%q): it must exist and the user must be allowed to connect to it (GRANT CONNECT ON DATABASE).", c.Database)}
		case pg.Code == insufficientPriv:
			return &warehouse.Error{Reason: warehouse.ReasonPermission, Message: msg,
				Hint: "Grant the user read access to the model's tables (GRANT USAGE ON SCHEMA … ; GRANT SELECT ON ALL TABLES IN SCHEMA … TO …) and the right to create the schema __unify_retl (GRANT CREATE ON DATABASE … TO …)."}
		case pg.Code == tooManyConnections:
			return &warehouse.Error{Reason: warehouse.ReasonNetwork, Message: msg, Hint: "The server has no free connection: try again later, or raise max_connections."}
		case strings.HasPrefix(pg.Code, "08"):
			return &warehouse.Error{Reason: warehouse.ReasonNetwork, Message: msg, Hint: "The connection broke: check the network and try again."}
		}
		return &warehouse.Error{Reason: warehouse.ReasonSQL, Message: msg, Hint: pg.Hint, Position: int(pg.Position)}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &warehouse.Error{Reason: warehouse.ReasonTimeout, Message: "the warehouse did not answer in time",
			Hint: "Check that the host and port are right and that the warehouse accepts connections from this service (firewall, security group, allow-list)."}
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	text := err.Error()
	if errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || strings.Contains(text, "tls:") ||
		strings.Contains(text, "server refused TLS connection") || strings.Contains(text, "x509:") {
		return &warehouse.Error{Reason: warehouse.ReasonTLS, Message: lastPart(text),
			Hint: "The TLS settings do not match the server: use ssl_mode require (or verify-full with a certificate the server's CA signed) for a server with TLS; disable only on a private network."}
	}
	var ne net.Error
	var dns *net.DNSError
	var op *net.OpError
	if errors.As(err, &dns) || errors.As(err, &op) || errors.As(err, &ne) {
		return &warehouse.Error{Reason: warehouse.ReasonNetwork, Message: lastPart(text),
			Hint: fmt.Sprintf("Could not reach %s port %d: check the host and port, and that the warehouse accepts connections from this service (firewall, security group, allow-list).", c.Host, c.Port)}
	}
	return &warehouse.Error{Reason: warehouse.ReasonUnknown, Message: lastPart(text), Hint: "Check the connection settings and that the warehouse is up, then test again."}
}

// lastPart drops pgx's "failed to connect to `user=… database=…`:" preamble, which repeats
// settings the user typed, keeping the cause.
func lastPart(s string) string {
	if !strings.HasPrefix(s, "failed to connect to `") {
		return s
	}
	if i := strings.Index(s, "`: "); i >= 0 {
		s = s[i+3:]
	}
	// pgx names the attempt's address in parentheses before the cause ("…(/tmp/.s.PGSQL.5432)): …").
	if i := strings.LastIndex(s, "): "); i >= 0 {
		s = s[i+3:]
	}
	return s
}
