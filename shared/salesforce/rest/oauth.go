// Package rest is the Salesforce adapter: OAuth 2.0 web-server flow with PKCE and a
// salesforce.Client for REST API v58.0 (describe, queryAll, nextRecordsUrl), on plain net/http.
//
// Documented shapes followed (Salesforce REST API Developer Guide and Salesforce Help, "OAuth
// 2.0 Web Server Flow for Web App Integration", API v58.0):
//   - GET {login}/services/oauth2/authorize?response_type=code&client_id&redirect_uri&state
//     &scope&code_challenge&code_challenge_method=S256
//   - POST {login}/services/oauth2/token (application/x-www-form-urlencoded), grant_type
//     authorization_code (code, client_id, client_secret, redirect_uri, code_verifier) or
//     refresh_token (refresh_token, client_id, client_secret); success
//     {"access_token","refresh_token","signature","scope","instance_url","id","token_type",
//     "issued_at"}; failure 400 {"error","error_description"}
//   - signature = Base64(HMAC-SHA256(client_secret, id + issued_at))
//
// Tokens never appear in logs or error strings: Token's String and GoString redact them, and
// error messages are built from Salesforce's codes and messages only.
package rest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/salesforce"
)

// Login hosts.
const (
	ProductionLoginURL = "https://login.salesforce.com"
	SandboxLoginURL    = "https://test.salesforce.com"
)

// Scope asked for: the REST API and a refresh token (for syncs every 3 hours).
const Scope = "api refresh_token"

// Timeouts applied to each request when the http.Client given has none.
const (
	TokenTimeout = 30 * time.Second
	APITimeout   = 2 * time.Minute
)

// Size limits of response bodies read.
const (
	maxTokenBody = 64 << 10
	maxErrorBody = 64 << 10
	maxPageBody  = 256 << 20 // 2,000 records of a wide object stay well below
)

// Token is the token endpoint's answer. RefreshToken is empty in a refresh_token grant's answer
// (the caller keeps the one it has).
type Token struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	InstanceURL  string `json:"instance_url"`
	ID           string `json:"id"`        // identity URL: {login}/id/{orgId}/{userId}
	IssuedAt     string `json:"issued_at"` // milliseconds since the epoch, as a string
	Signature    string `json:"signature"`
	Scope        string `json:"scope,omitempty"`
	TokenType    string `json:"token_type,omitempty"`
}

// String redacts the tokens so a Token printed by mistake leaks nothing.
func (t Token) String() string {
	return fmt.Sprintf("rest.Token{InstanceURL:%q ID:%q IssuedAt:%q AccessToken:[redacted] RefreshToken:[redacted]}", t.InstanceURL, t.ID, t.IssuedAt)
}

// GoString redacts as String does (for %#v).
func (t Token) GoString() string { return t.String() }

// Issued returns IssuedAt as a time (zero when absent or malformed).
func (t Token) Issued() time.Time {
	var ms int64
	if _, err := fmt.Sscan(t.IssuedAt, &ms); err != nil || t.IssuedAt == "" {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// VerifySignature checks Signature = Base64(HMAC-SHA256(clientSecret, ID+IssuedAt)), which
// proves the identity URL came from Salesforce unaltered.
func (t Token) VerifySignature(clientSecret string) error {
	mac := hmac.New(sha256.New, []byte(clientSecret))
	mac.Write([]byte(t.ID + t.IssuedAt))
	want := mac.Sum(nil)
	got, err := base64.StdEncoding.DecodeString(t.Signature)
	if err != nil || !hmac.Equal(got, want) {
		return &salesforce.Error{Kind: salesforce.KindOther, Code: "invalid_signature", Message: "the token response's signature does not match: check the connected app's client secret"}
	}
	return nil
}

// Sign returns the signature of id+issuedAt as Salesforce computes it (for fakes and tests).
func Sign(clientSecret, id, issuedAt string) string {
	mac := hmac.New(sha256.New, []byte(clientSecret))
	mac.Write([]byte(id + issuedAt))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// NewVerifier returns a PKCE code verifier (RFC 7636 §4.1): 43 characters of the unreserved
// set, from 32 random bytes (base64url, no padding).
func NewVerifier() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("rest: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Challenge returns the S256 code challenge of verifier (RFC 7636 §4.2):
// BASE64URL(SHA256(ASCII(verifier))), no padding.
func Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// AuthorizeURL returns the URL to send the user's browser to:
// {login}/services/oauth2/authorize with response_type=code, client_id, redirect_uri, state,
// scope "api refresh_token", code_challenge and code_challenge_method=S256.
func AuthorizeURL(loginURL, clientID, redirectURI, state, codeChallenge string) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirectURI},
		"state":                 {state},
		"scope":                 {Scope},
		"code_challenge":        {codeChallenge},
		"code_challenge_method": {"S256"},
	}
	// Salesforce's examples use %20 in scope; url.Values encodes spaces as +, which the
	// authorize endpoint also accepts, but keep to the documented form.
	return strings.TrimRight(loginURL, "/") + "/services/oauth2/authorize?" + strings.ReplaceAll(q.Encode(), "+", "%20")
}

type httpClientKey struct{}

// WithHTTPClient returns ctx carrying c, which Exchange and Refresh use (as golang.org/x/oauth2
// does with its HTTPClient key). Tests pass the fake's client this way.
func WithHTTPClient(ctx context.Context, c *http.Client) context.Context {
	return context.WithValue(ctx, httpClientKey{}, c)
}

var defaultHTTP = &http.Client{Timeout: APITimeout}

func httpClientFrom(ctx context.Context) *http.Client {
	if c, ok := ctx.Value(httpClientKey{}).(*http.Client); ok && c != nil {
		return c
	}
	return defaultHTTP
}

// Exchange trades an authorization code for tokens (grant_type=authorization_code, with the
// PKCE code_verifier). The token's signature is verified with clientSecret. Errors are
// *salesforce.Error; invalid_grant (a used, expired or wrong code, a wrong verifier) is
// KindReauthorize: the user starts over.
func Exchange(ctx context.Context, loginURL, clientID, clientSecret, redirectURI, code, verifier string) (Token, error) {
	tok, err := tokenRequest(ctx, loginURL, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"client_id":     {clientID},
		"client_secret": {clientSecret},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	}, code, verifier, clientSecret)
	if err != nil {
		return Token{}, err
	}
	if tok.RefreshToken == "" {
		return Token{}, &salesforce.Error{Kind: salesforce.KindOther, Code: "no_refresh_token",
			Message: `Salesforce returned no refresh token: give the connected app the "refresh_token, offline_access" scope`}
	}
	return tok, nil
}

// Refresh gets a new access token with refreshToken (grant_type=refresh_token). A revoked or
// expired refresh token ({"error":"invalid_grant"}) is a KindReauthorize error.
func Refresh(ctx context.Context, loginURL, clientID, clientSecret, refreshToken string) (Token, error) {
	return tokenRequest(ctx, loginURL, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
		"client_id":     {clientID},
		"client_secret": {clientSecret},
	}, refreshToken, clientSecret)
}

func tokenRequest(ctx context.Context, loginURL string, form url.Values, secrets ...string) (Token, error) {
	if err := checkBaseURL(loginURL); err != nil {
		return Token{}, err
	}
	hc := httpClientFrom(ctx)
	if hc.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, TokenTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(loginURL, "/")+"/services/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, &salesforce.Error{Kind: salesforce.KindOther, Message: "bad login URL"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return Token{}, &salesforce.Error{Kind: salesforce.KindOther, Message: "token request failed", Err: scrubErr(err, secrets...)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil {
		return Token{}, &salesforce.Error{Kind: salesforce.KindOther, Status: resp.StatusCode, Message: "reading the token response failed", Err: scrubErr(err, secrets...)}
	}
	if resp.StatusCode != http.StatusOK {
		return Token{}, decodeOAuthError(resp.StatusCode, body, secrets...)
	}
	var tok Token
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return Token{}, &salesforce.Error{Kind: salesforce.KindOther, Status: resp.StatusCode, Code: "invalid_token_response", Message: "the token endpoint's answer has no access token"}
	}
	if err := checkBaseURL(tok.InstanceURL); err != nil {
		return Token{}, err
	}
	clientSecret := form.Get("client_secret")
	if tok.Signature != "" {
		if err := tok.VerifySignature(clientSecret); err != nil {
			return Token{}, err
		}
	}
	return tok, nil
}

// decodeOAuthError turns a token endpoint's error body into a *salesforce.Error.
func decodeOAuthError(status int, body []byte, secrets ...string) *salesforce.Error {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return &salesforce.Error{Kind: salesforce.KindOther, Status: status, Message: "the token endpoint answered " + http.StatusText(status)}
	}
	return salesforce.OAuthError(status, scrub(clip(e.Error, 100), secrets...), scrub(clip(e.Description, 500), secrets...))
}

// checkBaseURL accepts https URLs, and http ones on loopback hosts only (tests, the local
// stack): a bearer token never travels in the clear.
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return &salesforce.Error{Kind: salesforce.KindOther, Code: "invalid_url", Message: "not an absolute http(s) URL: " + clip(raw, 200)}
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return &salesforce.Error{Kind: salesforce.KindOther, Code: "invalid_url", Message: "Salesforce URLs must use https: " + clip(raw, 200)}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// scrub removes every secret from s.
func scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

type scrubbed struct {
	msg   string
	cause error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.cause }

// scrubErr returns err with every secret removed from its message (the cause stays reachable
// for errors.Is, e.g. context.DeadlineExceeded).
func scrubErr(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := scrub(err.Error(), secrets...)
	if msg == err.Error() {
		return err
	}
	return &scrubbed{msg: msg, cause: errors.Unwrap(err)}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Identity is the connected user, from the identity URL (the token's id).
type Identity struct {
	UserID         string `json:"user_id"`
	OrganizationID string `json:"organization_id"`
	Username       string `json:"username"`
	DisplayName    string `json:"display_name"`
	Email          string `json:"email"`
}

// UserIdentity reads the connected user from tok.ID with tok.AccessToken (GET {login}/id/{orgId}/{userId},
// "Identity URLs" in Salesforce Help); the source shows its username. Call it with a token from
// Exchange or Refresh (whose signature, covering the id URL, was verified).
func UserIdentity(ctx context.Context, tok Token) (Identity, error) {
	if err := checkBaseURL(tok.ID); err != nil {
		return Identity{}, err
	}
	hc := httpClientFrom(ctx)
	if hc.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, TokenTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, tok.ID, nil)
	if err != nil {
		return Identity{}, &salesforce.Error{Kind: salesforce.KindOther, Message: "bad identity URL"}
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return Identity{}, &salesforce.Error{Kind: salesforce.KindOther, Message: "identity request failed", Err: scrubErr(err, tok.AccessToken)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil || resp.StatusCode != http.StatusOK {
		e := decodeAPIError(resp.StatusCode, body, "", tok.AccessToken)
		if resp.StatusCode == http.StatusForbidden && e.Code == "Bad_OAuth_Token" {
			e.Kind = salesforce.KindSessionExpired // the identity service says 403 Bad_OAuth_Token for an expired token
		}
		return Identity{}, e
	}
	var id Identity
	if err := json.Unmarshal(body, &id); err != nil || id.Username == "" {
		return Identity{}, &salesforce.Error{Kind: salesforce.KindOther, Code: "invalid_response", Message: "the identity URL answered no username"}
	}
	return id, nil
}
