package warehouse

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Credentials connect to a warehouse. The whole value is sealed at rest and never returned;
// which fields apply depends on Type.
type Credentials struct {
	Type string `json:"-"`
	// postgres, redshift (and snowflake's database and user)
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	Database string `json:"database,omitempty"`
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	SSLMode  string `json:"ssl_mode,omitempty"`
	// bigquery
	Project         string `json:"project,omitempty"`
	Dataset         string `json:"dataset,omitempty"`
	Location        string `json:"location,omitempty"`
	CredentialsJSON string `json:"credentials_json,omitempty"`
	// snowflake
	Account    string `json:"account,omitempty"`
	Warehouse  string `json:"warehouse,omitempty"`
	Schema     string `json:"schema,omitempty"`
	Role       string `json:"role,omitempty"`
	PrivateKey string `json:"private_key,omitempty"`
}

// SSL modes a Postgres or Redshift connection takes (libpq's).
var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// Limits on credential fields.
const (
	maxCredentialField = 1024
	maxCredentialsJSON = 16 << 10
)

// validate checks c for its type and fills defaults (port 5432 / 5439, ssl_mode require).
func (c *Credentials) validate() error {
	long := func(field, v string, max int) error {
		if len(v) > max {
			return errcode.InvalidField(field, "is longer than %d bytes", max)
		}
		return nil
	}
	required := func(field, v string) error {
		if strings.TrimSpace(v) == "" {
			return errcode.InvalidField(field, "is required for a %s connection", c.Type)
		}
		return long(field, v, maxCredentialField)
	}
	var errs []error
	errs = append(errs, c.onlyFieldsOf())
	switch c.Type {
	case "postgres", "redshift":
		if c.Port == 0 {
			c.Port = 5432
			if c.Type == "redshift" {
				c.Port = 5439
			}
		}
		if c.SSLMode == "" {
			c.SSLMode = "require"
		}
		errs = append(errs, required("host", c.Host), required("database", c.Database), required("user", c.User), required("password", c.Password))
		if c.Port < 1 || c.Port > 65535 {
			errs = append(errs, errcode.InvalidField("port", "must be between 1 and 65535"))
		}
		if !slices.Contains(sslModes, c.SSLMode) {
			errs = append(errs, errcode.InvalidField("ssl_mode", "must be one of %s", strings.Join(sslModes, ", ")))
		}
		// A host is a name or address; an absolute path is a Unix socket's folder (a warehouse
		// on the same machine, as the local stack's tests run it).
		if !strings.HasPrefix(c.Host, "/") && strings.ContainsAny(c.Host, " /?#@") {
			errs = append(errs, errcode.InvalidField("host", "must be a host name or address, without a scheme, path or credentials"))
		}
	case "bigquery":
		errs = append(errs, required("project", c.Project), required("dataset", c.Dataset), required("credentials_json", c.CredentialsJSON))
		if len(c.CredentialsJSON) > maxCredentialsJSON {
			errs = append(errs, errcode.InvalidField("credentials_json", "is longer than %d bytes", maxCredentialsJSON))
		} else if !json.Valid([]byte(c.CredentialsJSON)) {
			errs = append(errs, errcode.InvalidField("credentials_json", "is not JSON: paste the service account's key file as it was downloaded"))
		}
		errs = append(errs, long("location", c.Location, maxCredentialField))
	case "snowflake":
		errs = append(errs, required("account", c.Account), required("warehouse", c.Warehouse), required("database", c.Database), required("user", c.User))
		if (c.Password == "") == (c.PrivateKey == "") {
			errs = append(errs, errcode.InvalidField("password", "give either a password or a private_key, not both"))
		}
		errs = append(errs, long("schema", c.Schema, maxCredentialField), long("role", c.Role, maxCredentialField), long("private_key", c.PrivateKey, maxCredentialsJSON))
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// onlyFieldsOf refuses a field of another warehouse type (a "project" on a postgres
// connection): it would be sealed and kept for nothing, and usually means the wrong form.
func (c *Credentials) onlyFieldsOf() error {
	fields := []struct {
		name  string
		set   bool
		types string
	}{
		{"host", c.Host != "", "postgres redshift"}, {"port", c.Port != 0, "postgres redshift"},
		{"ssl_mode", c.SSLMode != "", "postgres redshift"},
		{"database", c.Database != "", "postgres redshift snowflake"}, {"user", c.User != "", "postgres redshift snowflake"},
		{"password", c.Password != "", "postgres redshift snowflake"},
		{"project", c.Project != "", "bigquery"}, {"dataset", c.Dataset != "", "bigquery"},
		{"location", c.Location != "", "bigquery"}, {"credentials_json", c.CredentialsJSON != "", "bigquery"},
		{"account", c.Account != "", "snowflake"}, {"warehouse", c.Warehouse != "", "snowflake"},
		{"schema", c.Schema != "", "snowflake"}, {"role", c.Role != "", "snowflake"}, {"private_key", c.PrivateKey != "", "snowflake"},
	}
	for _, f := range fields {
		if f.set && !slices.Contains(strings.Fields(f.types), c.Type) {
			return errcode.InvalidField(f.name, "does not apply to a %s connection (it is for %s)", c.Type, strings.ReplaceAll(f.types, " ", ", "))
		}
	}
	return nil
}

// Connection is what may be shown of a connection: never a password or key.
type Connection struct {
	Type      string    `json:"type"`
	Host      string    `json:"host,omitempty"`
	Port      int       `json:"port,omitempty"`
	Database  string    `json:"database,omitempty"`
	User      string    `json:"user,omitempty"`
	SSLMode   string    `json:"ssl_mode,omitempty"`
	Project   string    `json:"project,omitempty"`
	Dataset   string    `json:"dataset,omitempty"`
	Location  string    `json:"location,omitempty"`
	Account   string    `json:"account,omitempty"`
	Warehouse string    `json:"warehouse,omitempty"`
	Schema    string    `json:"schema,omitempty"`
	Role      string    `json:"role,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	LastTest  *Test     `json:"last_test,omitempty"`
}

// Test is a connection test's answer.
type Test struct {
	OK       bool      `json:"ok"`
	Reason   string    `json:"reason,omitempty"`
	Message  string    `json:"message,omitempty"`
	Hint     string    `json:"hint,omitempty"`
	TestedAt time.Time `json:"tested_at"`
}

// connRecord is the stored item: the public part and the sealed credentials.
type connRecord struct {
	Connection
	Sealed []byte `json:"sealed_credentials"`
}

func public(c Credentials, at time.Time) Connection {
	return Connection{Type: c.Type, Host: c.Host, Port: c.Port, Database: c.Database, User: c.User, SSLMode: c.SSLMode,
		Project: c.Project, Dataset: c.Dataset, Location: c.Location, Account: c.Account, Warehouse: c.Warehouse,
		Schema: c.Schema, Role: c.Role, UpdatedAt: at}
}

// aad binds sealed credentials to their workspace and source.
func aad(ws, src string) map[string]string {
	return map[string]string{"workspace_id": ws, "source_id": src}
}

// SetConnection stores a warehouse source's credentials, sealed, and tests them as it saves
// (the connection is saved even when the test fails, so the user can fix the warehouse side
// and test again). Caller: the workspace's token. Errors: forbidden, not_found,
// not_a_warehouse, invalid_field, secrets_not_configured.
func (s *Service) SetConnection(ctx context.Context, p workspace.Principal, wsID, srcID string, c Credentials) (Connection, error) {
	src, err := s.warehouseSource(ctx, p, wsID, srcID)
	if err != nil {
		return Connection{}, err
	}
	c.Type = src.Type
	if err := c.validate(); err != nil {
		return Connection{}, err
	}
	if s.sealer == nil {
		return Connection{}, errcode.New(errcode.Internal, "secrets_not_configured", "this deployment cannot store warehouse credentials: it has no encryption key configured")
	}
	plain, _ := json.Marshal(c)
	sealed, err := s.sealer.Seal(ctx, plain, aad(wsID, srcID))
	if err != nil {
		return Connection{}, fmt.Errorf("seal the credentials of %s: %w", srcID, err)
	}
	rec := connRecord{Connection: public(c, s.now()), Sealed: sealed}
	t := s.test(ctx, c)
	rec.LastTest = &t
	_, version, err := s.connRecord(ctx, wsID, srcID)
	if err != nil && !errcode.Is(err, "not_configured") {
		return Connection{}, err
	}
	if err := s.st.Transact(ctx, store.ReplaceOp(item(connKey(wsID, srcID), rec), version)); err != nil {
		if store.FailedOp(err) == 0 {
			return Connection{}, errcode.New(errcode.Conflict, "conflict", "the connection of %s was changed meanwhile: send it again", srcID)
		}
		return Connection{}, err
	}
	return rec.Connection, nil
}

// GetConnection returns what may be shown of a source's connection.
// Errors: forbidden, not_found, not_a_warehouse, not_configured (404).
func (s *Service) GetConnection(ctx context.Context, p workspace.Principal, wsID, srcID string) (Connection, error) {
	if _, err := s.warehouseSource(ctx, p, wsID, srcID); err != nil {
		return Connection{}, err
	}
	rec, _, err := s.connRecord(ctx, wsID, srcID)
	return rec.Connection, err
}

func notConfigured(srcID string) error {
	return errcode.New(errcode.NotFound, "not_configured", "source %s has no warehouse connection yet: PUT its credentials to /warehouse first", srcID)
}

func (s *Service) connRecord(ctx context.Context, wsID, srcID string) (connRecord, int64, error) {
	return store.LoadJSON[connRecord](ctx, s.st, connKey(wsID, srcID), notConfigured(srcID))
}

// TestConnection connects with the stored credentials and checks what a sync needs: the
// connection, and write access to the __unify_retl schema. The answer says why it failed and
// what to do. Caller: the workspace's token. Errors: forbidden, not_found, not_a_warehouse,
// not_configured.
func (s *Service) TestConnection(ctx context.Context, p workspace.Principal, wsID, srcID string) (Test, error) {
	if _, err := s.warehouseSource(ctx, p, wsID, srcID); err != nil {
		return Test{}, err
	}
	rec, version, err := s.connRecord(ctx, wsID, srcID)
	if err != nil {
		return Test{}, err
	}
	c, err := s.credentials(ctx, wsID, srcID, rec)
	if err != nil {
		return Test{}, err
	}
	t := s.test(ctx, c)
	rec.LastTest = &t
	// The test result is kept for step 4; a concurrent change of credentials wins.
	if err := s.st.Transact(ctx, store.ReplaceOp(item(connKey(wsID, srcID), rec), version)); err != nil && store.FailedOp(err) != 0 {
		return Test{}, err
	}
	return t, nil
}

func (s *Service) credentials(ctx context.Context, wsID, srcID string, rec connRecord) (Credentials, error) {
	if s.sealer == nil {
		return Credentials{}, errcode.New(errcode.Internal, "secrets_not_configured", "this deployment cannot open warehouse credentials: it has no encryption key configured")
	}
	plain, err := s.sealer.Open(ctx, rec.Sealed, aad(wsID, srcID))
	if err != nil {
		return Credentials{}, fmt.Errorf("open the credentials of %s: %w", srcID, err)
	}
	var c Credentials
	if err := json.Unmarshal(plain, &c); err != nil {
		return Credentials{}, fmt.Errorf("decode the credentials of %s: %w", srcID, err)
	}
	c.Type = rec.Type
	return c, nil
}

// testTimeout bounds a connection test.
const testTimeout = 15 * time.Second

// test opens the connection, runs a trivial query and proves write access to our schema by
// creating it (if missing) and a probe table in it.
func (s *Service) test(ctx context.Context, c Credentials) Test {
	ctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	t := Test{TestedAt: s.now()}
	fail := func(err error) Test {
		e := AsError(err)
		t.Reason, t.Message, t.Hint = e.Reason, e.Message, e.Hint
		return t
	}
	db, err := s.open(ctx, c)
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	d, _ := sqlgen.For(c.Type)
	if _, err := db.Query(ctx, "SELECT 1"); err != nil {
		return fail(err)
	}
	probe := sqlgen.WorkTable(s.ids.New("probe_"), "test")
	if err := db.Exec(ctx, d.CreateSchema()); err != nil {
		return fail(schemaDenied(err))
	}
	if err := db.Exec(ctx, d.CreateState(probe), d.DropTable(sqlgen.StateTable(probe))); err != nil {
		return fail(schemaDenied(err))
	}
	t.OK = true
	return t
}

// schemaDenied explains a failure to write our schema.
func schemaDenied(err error) error {
	e := AsError(err)
	if e.Reason == ReasonPermission { // the driver's hint says how, in its warehouse's terms
		e.Hint = "Reverse ETL keeps what it synced in the schema (BigQuery: dataset) " + sqlgen.Schema + ": the connection must be able to create it, or use it once created, and create tables in it. " + e.Hint
	}
	return e
}

func (s *Service) open(ctx context.Context, c Credentials) (DB, error) {
	open := s.openers[c.Type]
	if open == nil {
		return nil, &Error{Reason: ReasonUnknown, Message: "this deployment has no " + c.Type + " driver", Hint: "This deployment cannot connect to " + c.Type + " warehouses yet."}
	}
	return open(ctx, c)
}

// openSource opens the stored connection of a source.
func (s *Service) openSource(ctx context.Context, wsID, srcID string) (DB, sqlgen.Dialect, error) {
	rec, _, err := s.connRecord(ctx, wsID, srcID)
	if err != nil {
		return nil, sqlgen.Dialect{}, err
	}
	c, err := s.credentials(ctx, wsID, srcID, rec)
	if err != nil {
		return nil, sqlgen.Dialect{}, err
	}
	d, _ := sqlgen.For(c.Type)
	db, err := s.open(ctx, c)
	return db, d, err
}

// OpenSource opens the stored connection of a warehouse source and returns its dialect, for
// another sync writing into it (the Salesforce sync). Close the DB. Errors: not_configured,
// *Error (the warehouse refused).
func (s *Service) OpenSource(ctx context.Context, wsID, srcID string) (DB, sqlgen.Dialect, error) {
	return s.openSource(ctx, wsID, srcID)
}
