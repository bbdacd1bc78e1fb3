package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/unifiedprofiles/up/shared/salesforce"
)

// APIPath is the prefix of every REST API v58.0 resource.
const APIPath = "/services/data/" + salesforce.APIVersion

// Config configures a Client.
type Config struct {
	InstanceURL string // the token's instance_url, e.g. https://acme.my.salesforce.com
	AccessToken string // may be empty when Refresh is set: the first request refreshes
	// HTTP is the client requests go through (tests pass the fake's); nil: a client with
	// APITimeout. When it has no Timeout, each request gets APITimeout.
	HTTP *http.Client
	// Refresh returns a new token after Salesforce answered INVALID_SESSION_ID; the Client
	// calls it at most once per request, with a ctx carrying HTTP (see WithHTTPClient), and
	// uses its AccessToken (and InstanceURL when set). The caller persists what it needs
	// (RefreshFunc does it through a save func). nil: an expired session is an error at once.
	Refresh func(ctx context.Context) (Token, error)
	// BatchSize, when between 200 and 2000, asks for pages of that many records
	// (Sforce-Query-Options: batchSize=N; Salesforce may return more or fewer).
	BatchSize int
}

// Client is a salesforce.Client for REST API v58.0. It is safe for concurrent use.
type Client struct {
	http      *http.Client
	refresh   func(ctx context.Context) (Token, error)
	batchSize int

	mu       sync.Mutex
	instance string
	access   string
}

var _ salesforce.Client = (*Client)(nil)

// New returns a Client. The instance URL must be https (http only on a loopback host).
func New(cfg Config) (*Client, error) {
	if err := checkBaseURL(cfg.InstanceURL); err != nil {
		return nil, err
	}
	if cfg.AccessToken == "" && cfg.Refresh == nil {
		return nil, &salesforce.Error{Kind: salesforce.KindOther, Code: "no_token", Message: "no access token and no way to refresh one"}
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	return &Client{http: hc, refresh: cfg.Refresh, batchSize: cfg.BatchSize,
		instance: strings.TrimRight(cfg.InstanceURL, "/"), access: cfg.AccessToken}, nil
}

// RefreshFunc returns a Config.Refresh that runs the refresh_token grant and then calls save
// (when not nil) with the new token, so the caller can persist the access token. A revoked
// grant is a KindReauthorize error.
func RefreshFunc(loginURL, clientID, clientSecret, refreshToken string, save func(context.Context, Token) error) func(context.Context) (Token, error) {
	return func(ctx context.Context) (Token, error) {
		tok, err := Refresh(ctx, loginURL, clientID, clientSecret, refreshToken)
		if err != nil {
			return Token{}, err
		}
		if save != nil {
			if err := save(ctx, tok); err != nil {
				return Token{}, &salesforce.Error{Kind: salesforce.KindOther, Message: "saving the refreshed token failed", Err: scrubErr(err, tok.AccessToken, refreshToken)}
			}
		}
		return tok, nil
	}
}

// Describe returns object's fields: GET {instance}/services/data/v58.0/sobjects/{Object}/describe
// (DescribeSObjectResult: name, label, fields[name, type, label, length, precision, scale,
// nillable, custom, referenceTo, compoundFieldName]).
func (c *Client) Describe(ctx context.Context, object string) (salesforce.Object, error) {
	if !salesforce.ValidName(object) {
		return salesforce.Object{}, &salesforce.Error{Kind: salesforce.KindOther, Code: "invalid_object", Message: fmt.Sprintf("%q is not an object name", clip(object, 80))}
	}
	body, err := c.get(ctx, APIPath+"/sobjects/"+object+"/describe", object, maxPageBody)
	if err != nil {
		return salesforce.Object{}, err
	}
	var o salesforce.Object
	if err := json.Unmarshal(body, &o); err != nil || o.Name == "" {
		return salesforce.Object{}, &salesforce.Error{Kind: salesforce.KindOther, Object: object, Code: "invalid_response", Message: "describe answered something that is not a DescribeSObjectResult"}
	}
	return o, nil
}

// QueryAll runs soql including deleted and archived records: GET
// {instance}/services/data/v58.0/queryAll?q=… (QueryResult: totalSize, done, nextRecordsUrl,
// records[] each with "attributes").
func (c *Client) QueryAll(ctx context.Context, soql string) (salesforce.Page, error) {
	return c.page(ctx, APIPath+"/queryAll?"+url.Values{"q": {soql}}.Encode(), fromObject(soql))
}

// QueryMore returns the next page: GET {instance}{nextRecordsUrl}. nextURL must be a path under
// /services/data/ (as Salesforce gives it) or an absolute URL on the instance itself: the bearer
// token is never sent elsewhere.
func (c *Client) QueryMore(ctx context.Context, nextURL string) (salesforce.Page, error) {
	path, err := c.relative(nextURL)
	if err != nil {
		return salesforce.Page{}, err
	}
	return c.page(ctx, path, "")
}

func (c *Client) relative(next string) (string, error) {
	bad := &salesforce.Error{Kind: salesforce.KindOther, Code: "invalid_next_url", Message: "nextRecordsUrl is not a query locator on the instance: " + clip(next, 200)}
	if u, err := url.Parse(next); err == nil && u.IsAbs() {
		c.mu.Lock()
		inst, _ := url.Parse(c.instance)
		c.mu.Unlock()
		if inst == nil || u.Scheme != inst.Scheme || u.Host != inst.Host {
			return "", bad
		}
		next = u.RequestURI()
	}
	if !strings.HasPrefix(next, "/services/data/") || strings.Contains(next, "..") || strings.ContainsAny(next, "\\@ \r\n") {
		return "", bad
	}
	return next, nil
}

func (c *Client) page(ctx context.Context, path, object string) (salesforce.Page, error) {
	body, err := c.get(ctx, path, object, maxPageBody)
	if err != nil {
		return salesforce.Page{}, err
	}
	p, err := decodePage(body)
	if err != nil {
		return salesforce.Page{}, &salesforce.Error{Kind: salesforce.KindOther, Object: object, Code: "invalid_response", Message: "the query answered something that is not a QueryResult", Err: err}
	}
	return p, nil
}

// decodePage decodes a QueryResult, numbers as json.Number, "attributes" removed at every level.
func decodePage(body []byte) (salesforce.Page, error) {
	var r struct {
		TotalSize      int              `json:"totalSize"`
		Done           *bool            `json:"done"`
		NextRecordsURL string           `json:"nextRecordsUrl"`
		Records        []map[string]any `json:"records"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return salesforce.Page{}, err
	}
	if r.Done == nil {
		return salesforce.Page{}, fmt.Errorf("no done field")
	}
	if !*r.Done && r.NextRecordsURL == "" {
		return salesforce.Page{}, fmt.Errorf("not done and no nextRecordsUrl")
	}
	p := salesforce.Page{Done: *r.Done, NextURL: r.NextRecordsURL, TotalSize: r.TotalSize, Records: make([]salesforce.Record, len(r.Records))}
	if p.Done {
		p.NextURL = ""
	}
	for i, rec := range r.Records {
		stripAttributes(rec)
		p.Records[i] = salesforce.Record(rec)
	}
	return p, nil
}

func stripAttributes(v any) {
	switch v := v.(type) {
	case map[string]any:
		delete(v, "attributes")
		for _, x := range v {
			stripAttributes(x)
		}
	case []any:
		for _, x := range v {
			stripAttributes(x)
		}
	}
}

// get sends GET path with the bearer token; on INVALID_SESSION_ID (or with no access token
// yet) it refreshes once (unless another request already did) and retries once.
func (c *Client) get(ctx context.Context, path, object string, limit int64) ([]byte, error) {
	c.mu.Lock()
	base, tok := c.instance, c.access
	c.mu.Unlock()
	if tok != "" {
		status, body, err := c.send(ctx, base+path, tok, object, limit)
		if err == nil || salesforce.KindOf(err) != salesforce.KindSessionExpired || status != http.StatusUnauthorized {
			return body, err
		}
	}
	base, tok, rerr := c.renew(ctx, tok, object)
	if rerr != nil {
		return nil, rerr
	}
	_, body, err := c.send(ctx, base+path, tok, object, limit)
	return body, err
}

// renew returns a fresh token: the current one if another request refreshed since stale was
// used, else the Refresh func's.
func (c *Client) renew(ctx context.Context, stale, object string) (base, tok string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.access != stale && c.access != "" {
		return c.instance, c.access, nil
	}
	if c.refresh == nil {
		return "", "", &salesforce.Error{Kind: salesforce.KindSessionExpired, Status: http.StatusUnauthorized, Code: "INVALID_SESSION_ID", Object: object, Message: "the session expired and no refresh token is configured"}
	}
	t, err := c.refresh(WithHTTPClient(ctx, c.http))
	if err != nil {
		if e, ok := err.(*salesforce.Error); ok && e.Object == "" {
			cp := *e
			cp.Object = object
			return "", "", &cp
		}
		return "", "", err
	}
	if t.AccessToken == "" {
		return "", "", &salesforce.Error{Kind: salesforce.KindSessionExpired, Object: object, Message: "refreshing the session returned no access token"}
	}
	if t.InstanceURL != "" {
		if err := checkBaseURL(t.InstanceURL); err != nil {
			return "", "", err
		}
		c.instance = strings.TrimRight(t.InstanceURL, "/")
	}
	c.access = t.AccessToken
	return c.instance, c.access, nil
}

func (c *Client) send(ctx context.Context, u, tok, object string, limit int64) (int, []byte, error) {
	if c.http.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, APITimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, &salesforce.Error{Kind: salesforce.KindOther, Object: object, Message: "bad request URL"}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if c.batchSize >= 200 && c.batchSize <= 2000 {
		req.Header.Set("Sforce-Query-Options", fmt.Sprintf("batchSize=%d", c.batchSize))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, &salesforce.Error{Kind: salesforce.KindOther, Object: object, Message: "request failed", Err: scrubErr(err, tok)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return resp.StatusCode, nil, decodeAPIError(resp.StatusCode, body, object, tok)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return resp.StatusCode, nil, &salesforce.Error{Kind: salesforce.KindOther, Object: object, Status: resp.StatusCode, Message: "reading the response failed", Err: scrubErr(err, tok)}
	}
	if int64(len(body)) > limit {
		return resp.StatusCode, nil, &salesforce.Error{Kind: salesforce.KindOther, Object: object, Status: resp.StatusCode, Message: fmt.Sprintf("the response is larger than %d bytes", limit)}
	}
	return resp.StatusCode, body, nil
}

// decodeAPIError turns a REST API error into a *salesforce.Error. Salesforce's body is a JSON
// array [{"message":"…","errorCode":"…","fields":[…]}] (REST API Developer Guide, "Status Codes
// and Error Responses"); a single such object and the OAuth shape {"error","error_description"}
// are accepted too, anything else keeps the status only. Secrets are scrubbed from messages.
func decodeAPIError(status int, body []byte, object string, secrets ...string) *salesforce.Error {
	type apiErr struct {
		Message   string `json:"message"`
		ErrorCode string `json:"errorCode"`
		Error     string `json:"error"`
		Desc      string `json:"error_description"`
	}
	var list []apiErr
	if err := json.Unmarshal(body, &list); err != nil || len(list) == 0 {
		var one apiErr
		if json.Unmarshal(body, &one) == nil {
			list = []apiErr{one}
		} else {
			list = nil
		}
	}
	var e *salesforce.Error
	switch {
	case len(list) > 0 && list[0].ErrorCode != "":
		e = salesforce.APIError(status, clip(list[0].ErrorCode, 100), strings.TrimSpace(clip(list[0].Message, 1000)))
	case len(list) > 0 && list[0].Error != "":
		e = salesforce.APIError(status, "", "")
		e.Code, e.Message = clip(list[0].Error, 100), clip(list[0].Desc, 1000)
	default:
		e = salesforce.APIError(status, "", "")
		e.Message = http.StatusText(status)
	}
	e.Code = scrub(e.Code, secrets...)
	e.Message = scrub(e.Message, secrets...)
	e.Object = object
	return e
}

// fromObject returns the object after FROM in soql (for error messages), or "".
func fromObject(soql string) string {
	f := strings.Fields(soql)
	for i := 0; i+1 < len(f); i++ {
		if strings.EqualFold(f[i], "FROM") && salesforce.ValidName(f[i+1]) {
			return f[i+1]
		}
	}
	return ""
}
