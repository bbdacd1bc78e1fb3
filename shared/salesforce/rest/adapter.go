package rest

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"

	"github.com/unifiedprofiles/up/shared/salesforce"
)

// Environment variables FromEnv reads.
const (
	EnvLoginURL     = "UP_SALESFORCE_LOGIN_URL"     // overrides both login hosts (tests, a My Domain, a sandbox)
	EnvClientID     = "UP_SALESFORCE_CLIENT_ID"     // the connected app's consumer key
	EnvClientSecret = "UP_SALESFORCE_CLIENT_SECRET" // the connected app's consumer secret
)

// ErrNotConfigured is FromEnv's error when the connected app's credentials are missing.
var ErrNotConfigured = errors.New("Salesforce is not configured on this deployment: set " + EnvClientID + " and " + EnvClientSecret + " to a connected app's consumer key and secret (its callback URL is {public URL}/v1/salesforce/callback)")

// OAuthApp is a connected app: salesforce.OAuth over this package's OAuth functions.
type OAuthApp struct {
	// LoginURL, when set, is the login host of every environment; else production uses
	// ProductionLoginURL and sandbox SandboxLoginURL.
	LoginURL     string
	ClientID     string
	ClientSecret string
	// HTTP carries the token and identity requests (nil: a client with APITimeout).
	HTTP *http.Client
}

var _ salesforce.OAuth = (*OAuthApp)(nil)

// FromEnv returns the connected app from UP_SALESFORCE_LOGIN_URL, UP_SALESFORCE_CLIENT_ID
// and UP_SALESFORCE_CLIENT_SECRET, or ErrNotConfigured when the id or secret is missing.
func FromEnv() (*OAuthApp, error) {
	return fromLookup(os.Getenv)
}

func fromLookup(get func(string) string) (*OAuthApp, error) {
	app := &OAuthApp{LoginURL: strings.TrimSpace(get(EnvLoginURL)), ClientID: strings.TrimSpace(get(EnvClientID)), ClientSecret: strings.TrimSpace(get(EnvClientSecret))}
	if app.ClientID == "" || app.ClientSecret == "" {
		return nil, ErrNotConfigured
	}
	if app.LoginURL != "" {
		if err := checkBaseURL(app.LoginURL); err != nil {
			return nil, errors.New(EnvLoginURL + ": " + err.Error())
		}
	}
	return app, nil
}

// Login returns the login host of env.
func (a *OAuthApp) Login(env string) string {
	switch {
	case a.LoginURL != "":
		return strings.TrimRight(a.LoginURL, "/")
	case env == salesforce.EnvSandbox:
		return SandboxLoginURL
	}
	return ProductionLoginURL
}

func (a *OAuthApp) ctx(ctx context.Context) context.Context {
	if a.HTTP != nil {
		return WithHTTPClient(ctx, a.HTTP)
	}
	return ctx
}

// AuthorizeURL implements salesforce.OAuth.
func (a *OAuthApp) AuthorizeURL(env, redirectURI, state, challenge string) string {
	return AuthorizeURL(a.Login(env), a.ClientID, redirectURI, state, challenge)
}

// Exchange implements salesforce.OAuth (the token's signature is verified).
func (a *OAuthApp) Exchange(ctx context.Context, env, redirectURI, code, verifier string) (salesforce.OAuthToken, error) {
	tok, err := Exchange(a.ctx(ctx), a.Login(env), a.ClientID, a.ClientSecret, redirectURI, code, verifier)
	if err != nil {
		return salesforce.OAuthToken{}, err
	}
	return salesforce.OAuthToken{AccessToken: salesforce.Secret(tok.AccessToken), RefreshToken: salesforce.Secret(tok.RefreshToken),
		InstanceURL: tok.InstanceURL, IdentityURL: tok.ID}, nil
}

// Identity implements salesforce.OAuth.
func (a *OAuthApp) Identity(ctx context.Context, tok salesforce.OAuthToken) (string, error) {
	id, err := UserIdentity(a.ctx(ctx), Token{AccessToken: tok.AccessToken.Reveal(), InstanceURL: tok.InstanceURL, ID: tok.IdentityURL})
	if err != nil {
		return "", err
	}
	return id.Username, nil
}

// Client returns a salesforce.Client for conn (from salesforce.Connector.Credentials): it
// starts without an access token and refreshes with conn's refresh token on first use and on
// INVALID_SESSION_ID (a revoked grant is a KindReauthorize error: call MarkReauthorize).
func (a *OAuthApp) Client(conn salesforce.Connection) (*Client, error) {
	return New(Config{InstanceURL: conn.InstanceURL, HTTP: a.HTTP,
		Refresh: RefreshFunc(a.Login(conn.Environment), a.ClientID, a.ClientSecret, conn.RefreshToken.Reveal(), nil)})
}

// SyncClient is Client as a salesforce.ClientFunc (the Runner's wiring).
func (a *OAuthApp) SyncClient(_ context.Context, conn salesforce.Connection) (salesforce.Client, error) {
	c, err := a.Client(conn)
	if err != nil {
		return nil, err
	}
	return c, nil
}

var _ salesforce.ClientFunc = (*OAuthApp)(nil).SyncClient
