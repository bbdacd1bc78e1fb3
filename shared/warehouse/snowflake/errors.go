package snowflake

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/snowflakedb/gosnowflake"

	"github.com/unifiedprofiles/up/shared/warehouse"
)

// Snowflake's error numbers (the server's, and gosnowflake's own from 260000) and SQL states
// this driver tells apart.
const (
	errIncorrectLogin     = 390100 // Incorrect username or password was specified.
	errJWTInvalid         = 390144 // JWT token is invalid.
	errRoleNotGranted     = 390189 // Role 'X' specified in the connect string is not granted to this user.
	errRequestedNotExist  = 390201 // The requested database/schema/warehouse does not exist or not authorized.
	errNoActiveWarehouse  = 606    // 000606 No active warehouse selected in the current session.
	errSyntax             = 1003   // 001003 SQL compilation error: syntax error line L at position P …
	errObjectNotExist     = 2003   // 002003 SQL compilation error: X 'Y' does not exist or not authorized.
	errAccessControl      = 3001   // 003001 SQL access control error: Insufficient privileges …
	errStatementTimeout   = 630    // 000630 Statement reached its statement or warehouse timeout …
	errNoCurrentDatabase  = 90105  // 090105 Cannot perform … This session does not have a current database.
	stateInsufficientPriv = "42501"
	stateQueryCanceled    = "57014"
)

// classify maps a gosnowflake, network or context error to a warehouse.Error; stmt is the
// statement that failed ("" when none did), for a SQL error's position. No secret of the
// credentials is left in its message.
func (d *db) classify(err error, stmt string) error {
	e := d.reason(err, stmt)
	e.Message = d.redact(e.Message)
	return e
}

func (d *db) reason(err error, stmt string) *warehouse.Error {
	c := d.c
	var se *gosnowflake.SnowflakeError
	if errors.As(err, &se) {
		msg := se.Message
		if len(se.MessageArgs) > 0 {
			msg = fmt.Sprintf(se.Message, se.MessageArgs...)
		}
		msg = strings.TrimSpace(msg)
		lower := strings.ToLower(msg)
		role := c.Role
		if role == "" {
			role = "<the user's role>"
		}
		switch {
		case se.Number == errIncorrectLogin:
			return &warehouse.Error{Reason: warehouse.ReasonAuth, Message: msg,
				Hint: "Check the user and password (and the account: " + c.Account + "). A user with MFA, or TYPE = SERVICE, cannot log in with a password: use key-pair authentication."}
		case se.Number == errJWTInvalid:
			return &warehouse.Error{Reason: warehouse.ReasonAuth, Message: msg,
				Hint: "The key-pair login was refused: set this private key's public key on the user (ALTER USER " + c.User + " SET RSA_PUBLIC_KEY = '…'; DESC USER shows RSA_PUBLIC_KEY_FP to compare), and check the user and account names."}
		case se.Number == errRoleNotGranted || strings.Contains(lower, "not granted to this user"):
			return &warehouse.Error{Reason: warehouse.ReasonPermission, Message: msg,
				Hint: fmt.Sprintf("Grant the role to the user (GRANT ROLE %s TO USER %s), or leave role empty to use the user's default role.", role, c.User)}
		case se.Number == errRequestedNotExist || (strings.Contains(lower, "requested") && strings.Contains(lower, "does not exist or not authorized")):
			return &warehouse.Error{Reason: warehouse.ReasonDatabase, Message: msg,
				Hint: fmt.Sprintf("Check the names of the database (%s), schema and warehouse (%s): each must exist and the role must have USAGE on it (GRANT USAGE ON DATABASE %s TO ROLE %s; GRANT USAGE ON WAREHOUSE %s TO ROLE %s).",
					c.Database, c.Warehouse, c.Database, role, c.Warehouse, role)}
		case strings.Contains(lower, "is not allowed to access snowflake"):
			return &warehouse.Error{Reason: warehouse.ReasonNetwork, Message: msg,
				Hint: "A network policy of the Snowflake account blocks this service's address: allow it (ALTER NETWORK POLICY … SET ALLOWED_IP_LIST), or give the user a policy that does."}
		case se.Number >= 390000 && se.Number < 391000: // other login and session failures
			return &warehouse.Error{Reason: warehouse.ReasonAuth, Message: msg,
				Hint: "Snowflake refused the login: check the account identifier, user and credentials, and that the user is neither locked nor disabled."}
		case se.Number == gosnowflake.ErrCodeFailedToConnect:
			return &warehouse.Error{Reason: warehouse.ReasonAuth, Message: msg,
				Hint: "Snowflake refused the connection: check the account identifier (orgname-accountname, or the account locator with its region, as in the account's URL)."}
		case se.Number == gosnowflake.ErrCodeServiceUnavailable || se.Number == gosnowflake.ErrFailedToPostQuery || se.Number == gosnowflake.ErrFailedToAuth:
			return &warehouse.Error{Reason: warehouse.ReasonNetwork, Message: msg,
				Hint: "Snowflake did not answer as expected (see the HTTP status): check status.snowflake.com and try again."}
		case se.Number == gosnowflake.ErrFailedToGetChunk:
			return &warehouse.Error{Reason: warehouse.ReasonNetwork, Message: msg,
				Hint: "A large result is downloaded in parts from Snowflake's cloud storage: let this service reach it (egress to the account's stage hosts, *.s3.amazonaws.com for an AWS account), then try again."}
		case se.Number >= 269000 && se.Number < 270000: // OCSP: certificate revocation checks
			return &warehouse.Error{Reason: warehouse.ReasonTLS, Message: msg,
				Hint: "Snowflake's certificate could not be checked: a proxy that intercepts TLS, or a firewall that blocks Snowflake's OCSP responders, is in the way."}
		case se.Number >= 260000 && se.Number < 261000: // the driver's own settings checks
			return &warehouse.Error{Reason: warehouse.ReasonAuth, Message: msg,
				Hint: "Check the account identifier, user and credentials."}
		case se.Number == errAccessControl || se.SQLState == stateInsufficientPriv:
			return &warehouse.Error{Reason: warehouse.ReasonPermission, Message: msg,
				Hint: fmt.Sprintf("Grant the role what Reverse ETL needs: USAGE on the warehouse, the database and the model's schemas, SELECT on the model's tables, and CREATE SCHEMA on the database for the schema __unify_retl (GRANT USAGE ON WAREHOUSE %s TO ROLE %s; GRANT USAGE ON DATABASE %s TO ROLE %s; GRANT USAGE ON SCHEMA %s.<schema> TO ROLE %s; GRANT SELECT ON ALL TABLES IN SCHEMA %s.<schema> TO ROLE %s; GRANT CREATE SCHEMA ON DATABASE %s TO ROLE %s).",
					c.Warehouse, role, c.Database, role, c.Database, role, c.Database, role, c.Database, role)}
		case se.Number == errNoActiveWarehouse:
			return &warehouse.Error{Reason: warehouse.ReasonDatabase, Message: msg,
				Hint: fmt.Sprintf("Check the warehouse name (%s): it must exist and the role must have USAGE on it (GRANT USAGE ON WAREHOUSE %s TO ROLE %s).", c.Warehouse, c.Warehouse, role)}
		case se.Number == errNoCurrentDatabase || (se.Number == errObjectNotExist && names(lower, "database", c.Database)):
			return &warehouse.Error{Reason: warehouse.ReasonDatabase, Message: msg,
				Hint: fmt.Sprintf("Check the database name (%s): it must exist and the role must have USAGE on it (GRANT USAGE ON DATABASE %s TO ROLE %s).", c.Database, c.Database, role)}
		case se.Number == errStatementTimeout || se.SQLState == stateQueryCanceled:
			return &warehouse.Error{Reason: warehouse.ReasonTimeout, Message: msg,
				Hint: "The statement ran out of time in Snowflake: use a larger warehouse, simplify the model, or raise STATEMENT_TIMEOUT_IN_SECONDS for the user or warehouse."}
		case strings.HasPrefix(se.SQLState, "08"):
			return &warehouse.Error{Reason: warehouse.ReasonNetwork, Message: msg,
				Hint: "The connection to Snowflake broke: check the network and try again."}
		case se.Number == errObjectNotExist:
			return &warehouse.Error{Reason: warehouse.ReasonSQL, Message: msg, Position: position(msg, stmt),
				Hint: fmt.Sprintf("Check the name, qualified as database.schema.table. Snowflake says the same of an object the role cannot see: grant USAGE on its database and schema and SELECT on it (GRANT SELECT ON … TO ROLE %s).", role)}
		case se.Number == errSyntax || strings.HasPrefix(se.SQLState, "42") || se.QueryID != "" || strings.Contains(lower, "sql compilation error"):
			return &warehouse.Error{Reason: warehouse.ReasonSQL, Message: msg, Position: position(msg, stmt),
				Hint: "Fix the SQL: Snowflake's message says what it could not run, and where."}
		}
		return &warehouse.Error{Reason: warehouse.ReasonUnknown, Message: se.Error(),
			Hint: "Check the connection settings and that the warehouse is up, then test again."}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &warehouse.Error{Reason: warehouse.ReasonTimeout, Message: "Snowflake did not answer in time",
			Hint: "Check that this service can reach " + d.host + " (the account identifier, egress rules, proxy); a statement that runs long needs a larger warehouse or a simpler model."}
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	text := err.Error()
	if errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &cv) || errors.As(err, &rh) ||
		strings.Contains(text, "tls:") || strings.Contains(text, "x509:") {
		return &warehouse.Error{Reason: warehouse.ReasonTLS, Message: innermost(err),
			Hint: "Snowflake's certificate did not verify: a proxy or firewall that intercepts TLS is in the way, or the host is not Snowflake's (check the account identifier)."}
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return &warehouse.Error{Reason: warehouse.ReasonNetwork, Message: dns.Error(),
			Hint: fmt.Sprintf("%s does not resolve: check the account identifier (orgname-accountname, or the account locator with its region, as in the account's URL).", d.host)}
	}
	var op *net.OpError
	var ne net.Error
	if errors.As(err, &op) || errors.As(err, &ne) {
		return &warehouse.Error{Reason: warehouse.ReasonNetwork, Message: innermost(err),
			Hint: fmt.Sprintf("Could not reach %s: check the account identifier, and that this service can reach Snowflake (egress rules, proxy, the account's network policy).", d.host)}
	}
	return &warehouse.Error{Reason: warehouse.ReasonUnknown, Message: innermost(err),
		Hint: "Check the connection settings and that the warehouse is up, then test again."}
}

// innermost is err's message without the request URL that net/http puts in front
// ("Post \"https://…/session/v1/login-request?…\": dial tcp …: connection refused").
func innermost(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// names reports whether msg (lower case) is about the object of that kind and name, as
// Snowflake words it: "Database 'NAME' does not exist or not authorized."
func names(msg, kind, name string) bool {
	return name != "" && strings.Contains(msg, kind+" '"+strings.ToLower(name)+"'")
}

// linePosition finds Snowflake's "line L at position P" in a compilation error.
var linePosition = regexp.MustCompile(`line (\d{1,9}) at position (\d{1,9})`)

// position turns the first "line L at position P" in msg (lines counted from 1, P the
// character's 0-based place in its line) into the 1-based character position in stmt that
// warehouse.Error.Position is: "line 1 at position 7" is character 8. Characters are counted
// as Unicode code points. 0 when msg has none or it falls outside stmt.
func position(msg, stmt string) int {
	m := linePosition.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	line, err1 := strconv.Atoi(m[1])
	col, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil || line < 1 {
		return 0
	}
	chars := 0 // characters before the current line
	for l := 1; ; l++ {
		text, rest, more := strings.Cut(stmt, "\n")
		n := len([]rune(text))
		if l == line {
			if col > n { // the end of the line is a place (an unexpected end of input)
				return 0
			}
			return chars + col + 1
		}
		if !more {
			return 0
		}
		chars += n + 1
		stmt = rest
	}
}
