package salesforce

// Connecting a Salesforce source (issue 15, part 1): the OAuth 2.0 web-server flow with PKCE
// and a state bound to the workspace and source, the stored connection (the refresh token
// sealed), its status, and what the sync and its dispatcher read of it.
//
// Flow: Connect checks the request and keeps a single-use state (10 minutes) holding the
// sealed PKCE verifier, and answers the authorize URL; Salesforce sends the browser back to
// the callback with code and state; Callback consumes the state with a conditional delete,
// exchanges the code with the verifier, reads the username, stores the connection and makes
// the first sync due at once.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/secrets"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Environments a connection logs in to.
const (
	EnvProduction = "production" // https://login.salesforce.com
	EnvSandbox    = "sandbox"    // https://test.salesforce.com
)

// Limits and timings of connecting.
const (
	// StateTTL is how long an authorize URL stays usable.
	StateTTL = 10 * time.Minute
	// MaxObjects is the most objects one source syncs.
	MaxObjects = 20
	// SyncInterval is the time between two syncs of a source (the dispatcher's business;
	// RecordSync callers use it for the next run).
	SyncInterval = 3 * time.Hour
)

// Statuses a source's Salesforce connection shows.
const (
	StatusNotConnected = "not_connected"
	StatusConnected    = "connected"
	StatusReauthorize  = "reauthorize"
)

// ReauthorizeHint is what to do when a connection shows reauthorize.
const ReauthorizeHint = "Salesforce no longer accepts this connection's authorization (revoked, expired, or the user was deactivated): connect the source again (PUT …/salesforce, then follow the authorize_url) as a user with the \"View All Records\" permission."

// SourceType is the workspace source type a Salesforce connection belongs to.
const SourceType = "salesforce"

// WarehouseTypes are the source types a Salesforce source may sync into.
var WarehouseTypes = []string{"postgres", "redshift", "bigquery", "snowflake"}

// Secret is a credential held in memory: it prints, logs and marshals as "[redacted]", so a
// Connection or OAuthToken logged by mistake leaks nothing. Reveal gives the value.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts as String does (%#v).
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// LogValue redacts in log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON redacts in JSON: secrets are stored sealed, never as JSON.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// OAuthToken is what the token endpoint grants.
type OAuthToken struct {
	AccessToken  Secret
	RefreshToken Secret
	InstanceURL  string // the org's REST API host
	IdentityURL  string // the token's id: {login}/id/{orgId}/{userId}
}

// OAuth is the Salesforce login host, as Connect and Callback need it (salesforce/rest's
// OAuthApp implements it). env is EnvProduction or EnvSandbox.
type OAuth interface {
	// AuthorizeURL is where the user's browser goes to log in and consent (response_type=code,
	// with state and the S256 code challenge).
	AuthorizeURL(env, redirectURI, state, challenge string) string
	// Exchange trades an authorization code for tokens (authorization_code grant with the
	// PKCE verifier). Errors are *Error; invalid_grant is KindReauthorize.
	Exchange(ctx context.Context, env, redirectURI, code, verifier string) (OAuthToken, error)
	// Identity returns the connected user's username.
	Identity(ctx context.Context, tok OAuthToken) (string, error)
}

// Workspaces is what connecting needs of the workspace service.
type Workspaces interface {
	GetSource(ctx context.Context, p workspace.Principal, wsID, srcID string) (workspace.Source, error)
	MarkConnectedByTraffic(ctx context.Context, wsID, srcID string) (workspace.Source, error)
}

// LastSync summarizes a source's latest sync (written by the sync through RecordSync).
type LastSync struct {
	Status     string         `json:"status"` // e.g. running, succeeded, failed, rate_limited
	StartedAt  time.Time      `json:"started_at"`
	FinishedAt *time.Time     `json:"finished_at,omitempty"`
	Records    map[string]int `json:"records,omitempty"` // by object
	Error      string         `json:"error,omitempty"`
}

// Connection is a source's Salesforce connection. RefreshToken is set by Credentials only.
type Connection struct {
	WorkspaceID       string     `json:"workspace_id"`
	SourceID          string     `json:"source_id"`
	Connected         bool       `json:"connected"`
	Environment       string     `json:"environment,omitempty"`
	InstanceURL       string     `json:"instance_url,omitempty"`
	Username          string     `json:"username,omitempty"`
	Objects           []string   `json:"objects,omitempty"`
	WarehouseSourceID string     `json:"warehouse_source_id,omitempty"`
	ConnectedAt       *time.Time `json:"connected_at,omitempty"`
	// NextSyncAt is when the next sync is due (nil while the connection needs reauthorizing).
	NextSyncAt *time.Time `json:"next_sync_at,omitempty"`
	LastSync   *LastSync  `json:"last_sync,omitempty"`
	// Reauthorize is set by MarkReauthorize (the grant was refused) until the user connects again.
	Reauthorize       bool       `json:"reauthorize,omitempty"`
	ReauthorizeReason string     `json:"reauthorize_reason,omitempty"`
	ReauthorizeAt     *time.Time `json:"reauthorize_at,omitempty"`

	RefreshToken Secret `json:"-"`
}

// Status is StatusConnected, StatusReauthorize or StatusNotConnected.
func (c Connection) Status() string {
	switch {
	case !c.Connected:
		return StatusNotConnected
	case c.Reauthorize:
		return StatusReauthorize
	}
	return StatusConnected
}

// connRecord is the stored connection: the public part and the sealed refresh token.
type connRecord struct {
	Connection
	SealedRefreshToken []byte `json:"sealed_refresh_token"`
}

// stateRecord is a pending authorization, stored under the state's hash.
type stateRecord struct {
	WorkspaceID       string    `json:"workspace_id"`
	SourceID          string    `json:"source_id"`
	Environment       string    `json:"environment"`
	Objects           []string  `json:"objects"`
	WarehouseSourceID string    `json:"warehouse_source_id"`
	RedirectURI       string    `json:"redirect_uri"`
	SealedVerifier    []byte    `json:"sealed_verifier"`
	ExpiresAt         time.Time `json:"expires_at"`
}

// DueSource is a source whose sync is due (see Due).
type DueSource struct {
	WorkspaceID string    `json:"workspace_id"`
	SourceID    string    `json:"source_id"`
	At          time.Time `json:"at"`
}

// ConnectorOptions configure a Connector.
type ConnectorOptions struct {
	Now func() time.Time
	// NotConfigured says why OAuth is nil (rest.FromEnv's error); routes that need the login
	// host answer salesforce_not_configured with it.
	NotConfigured error
}

// Connector connects Salesforce sources and keeps their connections.
type Connector struct {
	st            store.Store
	ws            Workspaces
	sealer        secrets.Sealer
	oauth         OAuth
	now           func() time.Time
	notConfigured string
}

// NewConnector returns a Connector. oauth may be nil (the deployment has no connected app):
// Connect and Callback then answer salesforce_not_configured, the rest still works.
func NewConnector(st store.Store, ws Workspaces, sealer secrets.Sealer, oauth OAuth, o ConnectorOptions) *Connector {
	c := &Connector{st: st, ws: ws, sealer: sealer, oauth: oauth, now: o.Now,
		notConfigured: "Salesforce is not configured on this deployment: set UP_SALESFORCE_CLIENT_ID and UP_SALESFORCE_CLIENT_SECRET to a connected app's consumer key and secret"}
	if c.now == nil {
		c.now = time.Now
	}
	if o.NotConfigured != nil {
		c.notConfigured = o.NotConfigured.Error()
	}
	return c
}

// Keys (shared/store/dynamo/ACCESS_PATTERNS.md): a workspace's Salesforce connections sit
// in one partition beside it; a pending state under its hash (TTL); due syncs in one
// time-ordered partition the dispatcher reads.
const (
	duePK       = "SFDUE"
	dueStamp    = "2006-01-02T15:04:05Z"
	connPrefix  = "CONN#"
	statePrefix = "SFSTATE#"
)

func connKey(ws, src string) store.Key {
	return store.Key{PK: "WS#" + ws + "#SF", SK: connPrefix + src}
}
func stateKey(state string) store.Key {
	sum := sha256.Sum256([]byte(state))
	return store.Key{PK: statePrefix + hex.EncodeToString(sum[:]), SK: "STATE"}
}
func dueKey(ws, src string, at time.Time) store.Key {
	return store.Key{PK: duePK, SK: at.UTC().Format(dueStamp) + "#" + ws + "#" + src}
}

// sealContext binds a sealed value to its workspace, source and purpose.
func sealContext(ws, src, purpose string) map[string]string {
	return map[string]string{"workspace_id": ws, "source_id": src, "purpose": purpose}
}

const (
	purposeVerifier = "salesforce_pkce_verifier"
	purposeRefresh  = "salesforce_refresh_token"
)

func (c *Connector) notConfiguredErr() error {
	return errcode.New(errcode.Invalid, "salesforce_not_configured", "%s", c.notConfigured)
}

func noSecrets() error {
	return errcode.New(errcode.Internal, "secrets_not_configured", "this deployment cannot store Salesforce credentials: it has no encryption key configured")
}

func invalidState(why string) error {
	return errcode.New(errcode.Invalid, "invalid_state", "this Salesforce authorization %s: start connecting again from the console (PUT …/sources/{src}/salesforce)", why)
}

// salesforceSource returns the source if p owns it and it is of type salesforce.
// Errors: forbidden, not_found, not_salesforce (400, field source_id).
func (c *Connector) salesforceSource(ctx context.Context, p workspace.Principal, wsID, srcID string) (workspace.Source, error) {
	src, err := c.ws.GetSource(ctx, p, wsID, srcID)
	if err != nil {
		return src, err
	}
	if src.Type != SourceType {
		return src, &errcode.Error{Kind: errcode.Invalid, Code: "not_salesforce", Field: "source_id",
			Message: fmt.Sprintf("source %s is of type %s; Salesforce connections belong to sources of type salesforce", srcID, src.Type)}
	}
	return src, nil
}

// ConnectRequest starts connecting a source.
type ConnectRequest struct {
	Environment       string   // EnvProduction (default) or EnvSandbox
	Objects           []string // DefaultObjects when empty
	WarehouseSourceID string   // a warehouse source of the same workspace
	RedirectURI       string   // this deployment's {public URL}/v1/salesforce/callback
}

// Connect checks req, keeps a single-use state (StateTTL) with the sealed PKCE verifier, and
// returns the authorize URL to send the user's browser to. Nothing else changes until the
// callback: an existing connection keeps syncing meanwhile.
// Caller: the workspace's token. Errors: forbidden, not_found, not_salesforce, invalid_field
// (environment, objects, warehouse_source_id), salesforce_not_configured,
// secrets_not_configured.
func (c *Connector) Connect(ctx context.Context, p workspace.Principal, wsID, srcID string, req ConnectRequest) (string, error) {
	if _, err := c.salesforceSource(ctx, p, wsID, srcID); err != nil {
		return "", err
	}
	env, err := validEnvironment(req.Environment)
	if err != nil {
		return "", err
	}
	objects, err := validObjects(req.Objects)
	if err != nil {
		return "", err
	}
	if err := c.checkWarehouse(ctx, p, wsID, req.WarehouseSourceID); err != nil {
		return "", err
	}
	if c.oauth == nil {
		return "", c.notConfiguredErr()
	}
	if c.sealer == nil {
		return "", noSecrets()
	}
	if req.RedirectURI == "" {
		return "", errors.New("salesforce: Connect without a redirect URI")
	}
	state, verifier := randomToken(), randomToken()
	sealed, err := c.sealer.Seal(ctx, []byte(verifier), sealContext(wsID, srcID, purposeVerifier))
	if err != nil {
		return "", fmt.Errorf("seal the PKCE verifier of %s: %w", srcID, err)
	}
	exp := c.now().Add(StateTTL)
	rec := stateRecord{WorkspaceID: wsID, SourceID: srcID, Environment: env, Objects: objects,
		WarehouseSourceID: req.WarehouseSourceID, RedirectURI: req.RedirectURI, SealedVerifier: sealed, ExpiresAt: exp}
	it := store.JSONItem(stateKey(state), rec)
	it.ExpiresAt = exp.Unix()
	if err := c.st.Transact(ctx, store.PutOp(it, store.MustNotExist)); err != nil {
		return "", fmt.Errorf("store the authorization state of %s: %w", srcID, err)
	}
	return c.oauth.AuthorizeURL(env, req.RedirectURI, state, pkceChallenge(verifier)), nil
}

func validEnvironment(env string) (string, error) {
	switch env {
	case "":
		return EnvProduction, nil
	case EnvProduction, EnvSandbox:
		return env, nil
	}
	return "", errcode.InvalidField("environment", "must be %s or %s", EnvProduction, EnvSandbox)
}

// validObjects checks object API names, drops duplicates (case-insensitively, as Salesforce
// compares them) and defaults to DefaultObjects.
func validObjects(in []string) ([]string, error) {
	if len(in) == 0 {
		return append([]string(nil), DefaultObjects...), nil
	}
	if len(in) > MaxObjects {
		return nil, errcode.InvalidField("objects", "names %d objects; at most %d", len(in), MaxObjects)
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(in))
	for _, o := range in {
		if !ValidName(o) {
			return nil, errcode.InvalidField("objects", "%q is not an object API name (letters, digits and underscores, starting with a letter, e.g. Contact or Invoice__c)", errcode.Clip(o))
		}
		if k := strings.ToLower(o); !seen[k] {
			seen[k] = true
			out = append(out, o)
		}
	}
	return out, nil
}

// checkWarehouse checks that id is a warehouse source of the workspace.
func (c *Connector) checkWarehouse(ctx context.Context, p workspace.Principal, wsID, id string) error {
	if strings.TrimSpace(id) == "" {
		return errcode.InvalidField("warehouse_source_id", "is required: the warehouse source (%s) Salesforce records are synced into", strings.Join(WarehouseTypes, ", "))
	}
	src, err := c.ws.GetSource(ctx, p, wsID, id)
	if errcode.Is(err, "not_found") {
		return errcode.InvalidField("warehouse_source_id", "source %s was not found in workspace %s", errcode.Clip(id), wsID)
	}
	if err != nil {
		return err
	}
	for _, t := range WarehouseTypes {
		if src.Type == t {
			return nil
		}
	}
	return errcode.InvalidField("warehouse_source_id", "source %s is of type %s; Salesforce records are synced into a warehouse source (%s)", id, src.Type, strings.Join(WarehouseTypes, ", "))
}

// Callback completes an authorization: it consumes state (single use: a replayed, expired or
// unknown one changes nothing), exchanges code with the kept verifier, reads the username,
// stores the connection (the refresh token sealed), marks the source connected and makes its
// first sync due now. A reconnection replaces the grant and clears reauthorize; the last sync
// is kept.
// Caller: anyone holding state (the callback has no token: the state is the proof, bound to
// its workspace and source). Errors: invalid_state, invalid_field (code),
// authorization_failed, salesforce_not_configured, secrets_not_configured.
func (c *Connector) Callback(ctx context.Context, state, code string) (Connection, error) {
	if c.oauth == nil {
		return Connection{}, c.notConfiguredErr()
	}
	if c.sealer == nil {
		return Connection{}, noSecrets()
	}
	if state == "" || len(state) > 256 {
		return Connection{}, invalidState("has no valid state")
	}
	k := stateKey(state)
	rec, _, err := store.LoadJSON[stateRecord](ctx, c.st, k, invalidState("link is unknown, expired or already used"))
	if err != nil {
		return Connection{}, err
	}
	if !c.now().Before(rec.ExpiresAt) {
		_ = c.st.Transact(ctx, store.DeleteOp(k, store.Always))
		return Connection{}, invalidState("link expired (it is valid for 10 minutes)")
	}
	// Consume first: of two callbacks with one state, one alone gets past here.
	if err := c.st.Transact(ctx, store.DeleteOp(k, store.MustExist)); err != nil {
		if store.FailedOp(err) == 0 {
			return Connection{}, invalidState("link was already used")
		}
		return Connection{}, err
	}
	if code == "" || len(code) > 1024 {
		return Connection{}, errcode.InvalidField("code", "is missing: Salesforce sends it back with the state")
	}
	// The source may have gone since: the state proves the workspace, so ask as its owner.
	owner := workspace.Principal{Kind: workspace.WorkspaceOwner, WorkspaceID: rec.WorkspaceID}
	if _, err := c.salesforceSource(ctx, owner, rec.WorkspaceID, rec.SourceID); err != nil {
		return Connection{}, err
	}
	verifier, err := c.sealer.Open(ctx, rec.SealedVerifier, sealContext(rec.WorkspaceID, rec.SourceID, purposeVerifier))
	if err != nil {
		return Connection{}, fmt.Errorf("open the PKCE verifier of %s: %w", rec.SourceID, err)
	}
	tok, err := c.oauth.Exchange(ctx, rec.Environment, rec.RedirectURI, code, string(verifier))
	if err != nil {
		return Connection{}, authFailed(err)
	}
	username, err := c.oauth.Identity(ctx, tok)
	if err != nil {
		return Connection{}, authFailed(err)
	}
	sealed, err := c.sealer.Seal(ctx, []byte(tok.RefreshToken), sealContext(rec.WorkspaceID, rec.SourceID, purposeRefresh))
	if err != nil {
		return Connection{}, fmt.Errorf("seal the refresh token of %s: %w", rec.SourceID, err)
	}
	now := c.now()
	prev, version, err := c.load(ctx, rec.WorkspaceID, rec.SourceID)
	if err != nil && !errcode.Is(err, "not_connected") {
		return Connection{}, err
	}
	next := now
	conn := Connection{WorkspaceID: rec.WorkspaceID, SourceID: rec.SourceID, Connected: true, Environment: rec.Environment,
		InstanceURL: tok.InstanceURL, Username: username, Objects: rec.Objects, WarehouseSourceID: rec.WarehouseSourceID,
		ConnectedAt: &now, NextSyncAt: &next, LastSync: prev.LastSync}
	ops := []store.Op{
		store.ReplaceOp(store.JSONItem(connKey(rec.WorkspaceID, rec.SourceID), connRecord{Connection: conn, SealedRefreshToken: sealed}), version),
		store.PutOp(store.JSONItem(dueKey(rec.WorkspaceID, rec.SourceID, next), DueSource{WorkspaceID: rec.WorkspaceID, SourceID: rec.SourceID, At: next}), store.Always),
	}
	if prev.NextSyncAt != nil && !prev.NextSyncAt.Equal(next) {
		ops = append(ops, store.DeleteOp(dueKey(rec.WorkspaceID, rec.SourceID, *prev.NextSyncAt), store.Always))
	}
	if err := c.st.Transact(ctx, ops...); err != nil {
		if store.FailedOp(err) == 0 {
			return Connection{}, errcode.New(errcode.Conflict, "conflict", "the Salesforce connection of %s changed meanwhile: connect again", rec.SourceID)
		}
		return Connection{}, err
	}
	// Step 2 counts the source as connected, as a warehouse's first sync does.
	if _, err := c.ws.MarkConnectedByTraffic(ctx, rec.WorkspaceID, rec.SourceID); err != nil && !errcode.Is(err, "not_found") {
		return Connection{}, err
	}
	return conn, nil
}

// authFailed explains a refused exchange or identity call. Error messages of salesforce/rest
// never carry a token or code.
func authFailed(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return errcode.New(errcode.Invalid, "authorization_failed", "Salesforce refused the authorization (%s): start connecting again", e.Error())
	}
	return fmt.Errorf("salesforce authorization: %w", err)
}

func notConnected(srcID string) error {
	return errcode.New(errcode.NotFound, "not_connected", "source %s has no Salesforce connection yet: PUT …/salesforce and follow the authorize_url", srcID)
}

func (c *Connector) load(ctx context.Context, wsID, srcID string) (connRecord, int64, error) {
	return store.LoadJSON[connRecord](ctx, c.st, connKey(wsID, srcID), notConnected(srcID))
}

// Get returns a source's connection; one never connected has Connected false (Status
// not_connected). Caller: the workspace's token. Errors: forbidden, not_found, not_salesforce.
func (c *Connector) Get(ctx context.Context, p workspace.Principal, wsID, srcID string) (Connection, error) {
	if _, err := c.salesforceSource(ctx, p, wsID, srcID); err != nil {
		return Connection{}, err
	}
	rec, _, err := c.load(ctx, wsID, srcID)
	if errcode.Is(err, "not_connected") {
		return Connection{WorkspaceID: wsID, SourceID: srcID}, nil
	}
	return rec.Connection, err
}

// MarkReauthorize records that Salesforce refused the connection's grant (invalid_grant on
// the refresh token): the source shows reauthorize with reason until the user connects again,
// and no sync is due meanwhile.
// Caller: the sync (internal; no principal). Errors: not_connected.
func (c *Connector) MarkReauthorize(ctx context.Context, wsID, srcID, reason string) error {
	return c.update(ctx, wsID, srcID, func(rec *connRecord) []store.Op {
		now := c.now()
		var ops []store.Op
		if rec.NextSyncAt != nil {
			ops = append(ops, store.DeleteOp(dueKey(wsID, srcID, *rec.NextSyncAt), store.Always))
		}
		rec.Reauthorize, rec.ReauthorizeReason, rec.ReauthorizeAt, rec.NextSyncAt = true, errcode.Cut(reason, 500), &now, nil
		return ops
	})
}

// update applies change to the stored connection with the ops it returns, in one transaction
// version-checked on the connection; a concurrent change (a sync recording, a reconnection)
// makes it read and apply again, a few times.
func (c *Connector) update(ctx context.Context, wsID, srcID string, change func(rec *connRecord) []store.Op) error {
	for attempt := 0; ; attempt++ {
		rec, version, err := c.load(ctx, wsID, srcID)
		if err != nil {
			return err
		}
		ops := change(&rec)
		ops = append(ops, store.ReplaceOp(store.JSONItem(connKey(wsID, srcID), rec), version))
		err = c.st.Transact(ctx, ops...)
		if err == nil || store.FailedOp(err) != len(ops)-1 {
			return err
		}
		if attempt == 4 {
			return errcode.New(errcode.Conflict, "conflict", "the Salesforce connection of %s keeps changing: try again", srcID)
		}
	}
}

// Credentials returns the connection with its refresh token opened, for the sync.
// Caller: the sync (internal; no principal). Errors: not_connected, reauthorize_required
// (409: MarkReauthorize was called and the user has not connected again),
// secrets_not_configured.
func (c *Connector) Credentials(ctx context.Context, wsID, srcID string) (Connection, error) {
	rec, _, err := c.load(ctx, wsID, srcID)
	if err != nil {
		return Connection{}, err
	}
	if rec.Reauthorize {
		return Connection{}, errcode.New(errcode.Conflict, "reauthorize_required", "source %s: %s", srcID, ReauthorizeHint)
	}
	if c.sealer == nil {
		return Connection{}, noSecrets()
	}
	plain, err := c.sealer.Open(ctx, rec.SealedRefreshToken, sealContext(wsID, srcID, purposeRefresh))
	if err != nil {
		return Connection{}, fmt.Errorf("open the refresh token of %s: %w", srcID, err)
	}
	conn := rec.Connection
	conn.RefreshToken = Secret(plain)
	return conn, nil
}

// RecordSync keeps a sync's summary on the connection and makes the next sync due at next
// (zero: none due). Caller: the sync (internal). Errors: not_connected.
func (c *Connector) RecordSync(ctx context.Context, wsID, srcID string, last LastSync, next time.Time) error {
	return c.update(ctx, wsID, srcID, func(rec *connRecord) []store.Op {
		old := rec.NextSyncAt
		var n *time.Time
		if !next.IsZero() && !rec.Reauthorize {
			t := next.UTC()
			n = &t
		}
		var ops []store.Op
		if old != nil && (n == nil || !old.Equal(*n)) {
			ops = append(ops, store.DeleteOp(dueKey(wsID, srcID, *old), store.Always))
		}
		if n != nil && (old == nil || !old.Equal(*n)) {
			ops = append(ops, store.PutOp(store.JSONItem(dueKey(wsID, srcID, *n), DueSource{WorkspaceID: wsID, SourceID: srcID, At: *n}), store.Always))
		}
		l := last
		rec.LastSync, rec.NextSyncAt = &l, n
		return ops
	})
}

// Due returns the sources whose sync is due at now, oldest first, at most limit (100 when
// ≤ 0): one Query of the SFDUE partition, which the dispatcher runs each minute. An entry
// stays until RecordSync or MarkReauthorize moves or deletes it, so the dispatcher claims
// each with its own lease.
func (c *Connector) Due(ctx context.Context, now time.Time, limit int) ([]DueSource, error) {
	if limit <= 0 {
		limit = 100
	}
	items, err := c.st.Query(ctx, duePK, store.Page{Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("list due Salesforce syncs: %w", err)
	}
	cut := now.UTC().Format(dueStamp)
	var out []DueSource
	for _, it := range items {
		if it.SK > cut+"#~" { // in the future: the rest are later still
			break
		}
		var d DueSource
		if err := json.Unmarshal(it.Data, &d); err != nil {
			return out, fmt.Errorf("decode due item %s: %w", it.SK, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// randomToken returns 256 random bits, base64url without padding (43 characters: also a valid
// PKCE verifier, RFC 7636 §4.1).
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("salesforce: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// pkceChallenge is the S256 code challenge of verifier (RFC 7636 §4.2).
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
