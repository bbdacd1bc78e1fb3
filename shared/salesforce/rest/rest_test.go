package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/salesforce"
	"github.com/unifiedprofiles/up/shared/salesforce/sfake"
)

const redirectURI = "http://127.0.0.1:9999/v1/salesforce/callback"

// secretsSeen collects every secret a test handles, to check that no error string holds one.
type secretsSeen struct {
	mu   sync.Mutex
	list []string
}

func (s *secretsSeen) add(v ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, v...)
}

func (s *secretsSeen) check(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.list {
		if v != "" && strings.Contains(err.Error(), v) {
			t.Errorf("error string holds a secret: %v", err)
		}
		if v != "" && strings.Contains(fmt.Sprintf("%+v %#v", err, err), v) {
			t.Errorf("formatted error holds a secret")
		}
	}
}

// authorize runs the authorize step against the fake and returns the code and state it
// redirected with.
func authorize(t *testing.T, f *sfake.Fake, state, challenge string) (code, gotState string) {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(AuthorizeURL(f.LoginURL(), f.ClientID(), redirectURI, state, challenge))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc.String(), redirectURI+"?") {
		t.Fatalf("redirected to %s", loc)
	}
	if e := loc.Query().Get("error"); e != "" {
		t.Fatalf("authorize error %s: %s", e, loc.Query().Get("error_description"))
	}
	return loc.Query().Get("code"), loc.Query().Get("state")
}

// connect runs the whole web-server flow and returns the token.
func connect(t *testing.T, f *sfake.Fake, s *secretsSeen) Token {
	t.Helper()
	verifier := NewVerifier()
	code, _ := authorize(t, f, "st", Challenge(verifier))
	s.add(verifier, code, f.ClientSecret())
	ctx := WithHTTPClient(context.Background(), f.HTTPClient())
	tok, err := Exchange(ctx, f.LoginURL(), f.ClientID(), f.ClientSecret(), redirectURI, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	s.add(tok.AccessToken, tok.RefreshToken)
	return tok
}

// newClient returns a Client on tok whose refreshes go through the fake; saved receives each
// refreshed token.
func newClient(t *testing.T, f *sfake.Fake, tok Token, s *secretsSeen, saved chan<- Token) *Client {
	t.Helper()
	c, err := New(Config{InstanceURL: tok.InstanceURL, AccessToken: tok.AccessToken, HTTP: f.HTTPClient(),
		Refresh: RefreshFunc(f.LoginURL(), f.ClientID(), f.ClientSecret(), tok.RefreshToken, func(_ context.Context, nt Token) error {
			s.add(nt.AccessToken)
			if saved != nil {
				saved <- nt
			}
			return nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPKCE(t *testing.T) {
	t.Parallel()
	// RFC 7636 Appendix B.
	if got := Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Errorf("Challenge = %s", got)
	}
	seen := map[string]bool{}
	for range 100 {
		v := NewVerifier()
		if len(v) < 43 || len(v) > 128 || strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") != "" || seen[v] {
			t.Fatalf("bad verifier %q", v)
		}
		seen[v] = true
	}
}

func TestAuthorizeURL(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(AuthorizeURL("https://login.salesforce.com/", "cid", "https://up.example/v1/salesforce/callback", "s t&x", "chal"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "login.salesforce.com" || u.Path != "/services/oauth2/authorize" {
		t.Errorf("URL %s", u)
	}
	if strings.Contains(u.RawQuery, "+") {
		t.Errorf("spaces not %%20: %s", u.RawQuery)
	}
	want := map[string]string{"response_type": "code", "client_id": "cid", "redirect_uri": "https://up.example/v1/salesforce/callback",
		"state": "s t&x", "code_challenge": "chal", "code_challenge_method": "S256", "scope": "api refresh_token"}
	for k, v := range want {
		if got := u.Query().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestOAuth(t *testing.T) {
	t.Parallel()
	f := sfake.New(t, sfake.Options{RedirectURI: redirectURI})
	s := &secretsSeen{}
	ctx := WithHTTPClient(context.Background(), f.HTTPClient())

	t.Run("round trip with PKCE", func(t *testing.T) {
		t.Parallel()
		verifier := NewVerifier()
		code, state := authorize(t, f, "state-123", Challenge(verifier))
		if state != "state-123" || code == "" {
			t.Fatalf("code %q state %q", code, state)
		}
		tok, err := Exchange(ctx, f.LoginURL(), f.ClientID(), f.ClientSecret(), redirectURI, code, verifier)
		if err != nil {
			t.Fatal(err)
		}
		s.add(tok.AccessToken, tok.RefreshToken, code, verifier)
		if tok.InstanceURL != f.InstanceURL() || tok.AccessToken == "" || tok.RefreshToken == "" || tok.ID == "" || tok.Signature == "" {
			t.Errorf("token %v", tok)
		}
		if tok.VerifySignature(f.ClientSecret()) != nil || tok.VerifySignature("other") == nil {
			t.Error("signature check")
		}
		if d := time.Since(tok.Issued()); d < 0 || d > time.Minute {
			t.Errorf("issued %v", tok.Issued())
		}
		for _, out := range []string{tok.String(), fmt.Sprintf("%v %+v %#v", tok, tok, tok)} {
			if strings.Contains(out, tok.AccessToken) || strings.Contains(out, tok.RefreshToken) {
				t.Errorf("Token formatting leaks: %s", out)
			}
		}
		id, err := UserIdentity(ctx, tok)
		if err != nil || id.Username != f.Username() || id.OrganizationID == "" {
			t.Errorf("identity %+v %v", id, err)
		}
		// The code is single use.
		_, err = Exchange(ctx, f.LoginURL(), f.ClientID(), f.ClientSecret(), redirectURI, code, verifier)
		if !errors.Is(err, salesforce.ErrReauthorize) {
			t.Errorf("reused code: %v", err)
		}
		s.check(t, err)
	})

	tests := []struct {
		name     string
		mutate   func(secret, redirect, verifier *string)
		kind     salesforce.Kind
		contains string
	}{
		{"wrong verifier", func(_, _, v *string) { *v = NewVerifier() }, salesforce.KindReauthorize, "invalid code verifier"},
		{"short verifier", func(_, _, v *string) { *v = "abc" }, salesforce.KindReauthorize, "invalid code verifier"},
		{"no verifier", func(_, _, v *string) { *v = "" }, salesforce.KindReauthorize, "invalid code verifier"},
		{"wrong secret", func(s, _, _ *string) { *s = "nope" }, salesforce.KindOther, "invalid_client"},
		{"wrong redirect_uri", func(_, r, _ *string) { *r = "http://127.0.0.1:9999/other" }, salesforce.KindOther, "redirect_uri_mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			verifier := NewVerifier()
			code, _ := authorize(t, f, "x", Challenge(verifier))
			secret, redirect := f.ClientSecret(), redirectURI
			tc.mutate(&secret, &redirect, &verifier)
			s.add(code, verifier, secret)
			_, err := Exchange(ctx, f.LoginURL(), f.ClientID(), secret, redirect, code, verifier)
			if err == nil || salesforce.KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("got %v (kind %v), want kind %v containing %q", err, salesforce.KindOf(err), tc.kind, tc.contains)
			}
			s.check(t, err)
		})
	}

	t.Run("authorize refuses a wrong redirect_uri", func(t *testing.T) {
		t.Parallel()
		hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := hc.Get(AuthorizeURL(f.LoginURL(), f.ClientID(), "https://evil.example/cb", "x", Challenge(NewVerifier())))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d", resp.StatusCode)
		}
	})

	t.Run("insecure login URL refused", func(t *testing.T) {
		t.Parallel()
		_, err := Refresh(ctx, "http://login.example.com", "id", "secret", "rt")
		if err == nil || !strings.Contains(err.Error(), "https") {
			t.Errorf("got %v", err)
		}
	})
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	f := sfake.New(t, sfake.Options{})
	s := &secretsSeen{}
	tok := connect(t, f, s)
	ctx := WithHTTPClient(context.Background(), f.HTTPClient())

	nt, err := Refresh(ctx, f.LoginURL(), f.ClientID(), f.ClientSecret(), tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	s.add(nt.AccessToken)
	if nt.AccessToken == "" || nt.AccessToken == tok.AccessToken || nt.RefreshToken != "" || nt.InstanceURL != f.InstanceURL() {
		t.Errorf("refreshed token %v (access changed %v, refresh token returned %v)", nt, nt.AccessToken != tok.AccessToken, nt.RefreshToken != "")
	}

	f.RevokeRefreshTokens()
	_, err = UserIdentity(ctx, nt)
	if !errors.Is(err, salesforce.ErrSessionExpired) {
		t.Errorf("identity after revoke: %v", err)
	}
	s.check(t, err)
	_, err = Refresh(ctx, f.LoginURL(), f.ClientID(), f.ClientSecret(), tok.RefreshToken)
	if !errors.Is(err, salesforce.ErrReauthorize) || !strings.Contains(err.Error(), "reauthorize") || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("revoked: %v", err)
	}
	s.check(t, err)

	// Through the client: the session fails, the refresh answers invalid_grant.
	c := newClient(t, f, tok, s, nil)
	_, err = c.Describe(context.Background(), "Contact")
	if !errors.Is(err, salesforce.ErrReauthorize) {
		t.Errorf("client after revoke: %v", err)
	}
	s.check(t, err)
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	f := sfake.New(t, sfake.Options{})
	s := &secretsSeen{}
	c := newClient(t, f, connect(t, f, s), s, nil)
	ctx := context.Background()
	tests := []struct {
		object string
		has    []string
		types  map[string]string
	}{
		{"Contact", []string{"Id", "IsDeleted", "SystemModstamp", "Email", "Phone", "FirstName", "LastName", "MailingCity"},
			map[string]string{"MailingAddress": "address", "Email": "email", "Phone": "phone", "SystemModstamp": "datetime", "AccountId": "reference"}},
		{"Lead", []string{"Id", "Email", "Company"}, map[string]string{"Address": "address", "AnnualRevenue": "currency"}},
		{"Account", []string{"Id", "Name", "Industry"}, map[string]string{"BillingAddress": "address", "NumberOfEmployees": "int"}},
	}
	for _, tc := range tests {
		t.Run(tc.object, func(t *testing.T) {
			t.Parallel()
			o, err := c.Describe(ctx, tc.object)
			if err != nil {
				t.Fatal(err)
			}
			if o.Name != tc.object {
				t.Errorf("name %q", o.Name)
			}
			for _, n := range tc.has {
				if _, ok := o.Field(n); !ok {
					t.Errorf("no field %s", n)
				}
			}
			for n, typ := range tc.types {
				if fl, ok := o.Field(n); !ok || fl.Type != typ {
					t.Errorf("%s: %v %v, want type %s", n, fl, ok, typ)
				}
			}
			for _, n := range o.QueryableFields() {
				if fl, _ := o.Field(n); fl.Compound() {
					t.Errorf("compound %s queryable", n)
				}
			}
			// Every queryable field can be selected.
			if _, err := c.QueryAll(ctx, salesforce.IncrementalQuery(o.Name, o.QueryableFields(), time.Time{})); err != nil {
				t.Errorf("select all queryable: %v", err)
			}
		})
	}

	t.Run("added field", func(t *testing.T) {
		t.Parallel()
		if err := f.AddField("Account", salesforce.Field{Name: "Tier__c", Type: "picklist", Custom: true}); err != nil {
			t.Fatal(err)
		}
		o, err := c.Describe(ctx, "Account")
		if err != nil {
			t.Fatal(err)
		}
		if fl, ok := o.Field("Tier__c"); !ok || !fl.Custom {
			t.Errorf("Tier__c: %v %v", fl, ok)
		}
	})

	t.Run("added object", func(t *testing.T) {
		t.Parallel()
		f.AddObject("Invoice__c", "a01", []salesforce.Field{{Name: "Amount__c", Type: "currency", Custom: true}})
		id := f.Insert("Invoice__c", map[string]any{"Amount__c": 12.5})
		o, err := c.Describe(ctx, "Invoice__c")
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.QueryAll(ctx, salesforce.IncrementalQuery(o.Name, o.QueryableFields(), time.Time{}))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) != 1 || p.Records[0].ID() != id || fmt.Sprint(p.Records[0]["Amount__c"]) != "12.5" {
			t.Errorf("records %v", p.Records)
		}
	})

	t.Run("unknown object", func(t *testing.T) {
		t.Parallel()
		_, err := c.Describe(ctx, "Nope")
		var e *salesforce.Error
		if !errors.As(err, &e) || e.Status != 404 || e.Code != "NOT_FOUND" {
			t.Errorf("got %v", err)
		}
		if _, err := c.Describe(ctx, "../x"); err == nil {
			t.Error("invalid name accepted")
		}
	})
}

// pageAll reads every page of soql and returns the records.
func pageAll(t *testing.T, c *Client, soql string) ([]salesforce.Record, int) {
	t.Helper()
	ctx := context.Background()
	p, err := c.QueryAll(ctx, soql)
	if err != nil {
		t.Fatal(err)
	}
	recs, pages := p.Records, 1
	for !p.Done {
		if p, err = c.QueryMore(ctx, p.NextURL); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, p.Records...)
		pages++
	}
	return recs, pages
}

func TestQueryAllPaging(t *testing.T) {
	t.Parallel()
	f := sfake.New(t, sfake.Options{})
	s := &secretsSeen{}
	c := newClient(t, f, connect(t, f, s), s, nil)
	ids := f.SeedContacts(25_000)
	o, err := c.Describe(context.Background(), "Contact")
	if err != nil {
		t.Fatal(err)
	}
	recs, pages := pageAll(t, c, salesforce.IncrementalQuery("Contact", o.QueryableFields(), time.Time{}))
	if pages != 13 {
		t.Errorf("%d pages, want 13 of at most 2000", pages)
	}
	distinct := map[string]bool{}
	for _, r := range recs {
		distinct[r.ID()] = true
		if _, ok := r["attributes"]; ok {
			t.Fatal("attributes kept")
		}
		if r.IsDeleted() || r.SystemModstamp().IsZero() || r["Email"] == nil || r["Name"] != r["FirstName"].(string)+" "+r["LastName"].(string) {
			t.Fatalf("record %v", r)
		}
	}
	if len(recs) != 25_000 || len(distinct) != 25_000 {
		t.Errorf("%d records, %d distinct, want 25000", len(recs), len(distinct))
	}
	for _, id := range ids {
		if !distinct[id] {
			t.Fatalf("missing %s", id)
		}
	}
	if n := f.Counts(); n.Query != 1 || n.QueryMore != 12 {
		t.Errorf("counts %+v", n)
	}
}

func TestBatchSizeHeader(t *testing.T) {
	t.Parallel()
	f := sfake.New(t, sfake.Options{})
	s := &secretsSeen{}
	tok := connect(t, f, s)
	c, err := New(Config{InstanceURL: tok.InstanceURL, AccessToken: tok.AccessToken, HTTP: f.HTTPClient(), BatchSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	f.SeedContacts(450)
	recs, pages := pageAll(t, c, salesforce.IncrementalQuery("Contact", []string{"Email"}, time.Time{}))
	if len(recs) != 450 || pages != 3 {
		t.Errorf("%d records in %d pages", len(recs), pages)
	}
}

func TestIncremental(t *testing.T) {
	t.Parallel()
	f := sfake.New(t, sfake.Options{})
	s := &secretsSeen{}
	c := newClient(t, f, connect(t, f, s), s, nil)
	ids := f.SeedContacts(50)
	fields := []string{"Email", "FirstName", "LastName", "Name", "Phone"}

	first, _ := pageAll(t, c, salesforce.IncrementalQuery("Contact", fields, time.Time{}))
	var checkpoint time.Time
	for _, r := range first {
		if m := r.SystemModstamp(); m.After(checkpoint) {
			checkpoint = m
		}
	}
	if len(first) != 50 || checkpoint.IsZero() {
		t.Fatalf("first sync: %d, checkpoint %v", len(first), checkpoint)
	}

	if err := f.Update("Contact", ids[3], map[string]any{"Email": "new@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Update("Contact", ids[7], map[string]any{"Phone": nil}); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete("Contact", ids[9]); err != nil {
		t.Fatal(err)
	}
	added := f.Insert("Contact", map[string]any{"LastName": "New", "Email": "added@example.com"})

	second, _ := pageAll(t, c, salesforce.IncrementalQuery("Contact", fields, checkpoint))
	got := map[string]salesforce.Record{}
	var order []string
	for _, r := range second {
		got[r.ID()] = r
		order = append(order, r.ID())
	}
	want := []string{ids[3], ids[7], ids[9], added} // ORDER BY SystemModstamp, Id
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("second sync %v, want %v", order, want)
	}
	if got[ids[3]]["Email"] != "new@example.com" || got[ids[7]]["Phone"] != nil || got[added]["LastName"] != "New" {
		t.Errorf("updates: %v %v", got[ids[3]], got[ids[7]])
	}
	if del := got[ids[9]]; del == nil || !del.IsDeleted() {
		t.Errorf("deleted record: %v", del)
	}
	if got[added].IsDeleted() {
		t.Error("added record deleted")
	}
	// Nothing changed since: an empty, done page.
	var last time.Time
	for _, r := range second {
		if m := r.SystemModstamp(); m.After(last) {
			last = m
		}
	}
	if third, pages := pageAll(t, c, salesforce.IncrementalQuery("Contact", fields, last)); len(third) != 0 || pages != 1 {
		t.Errorf("third sync %d records", len(third))
	}
}

func TestErrorsTyped(t *testing.T) {
	t.Parallel()
	f := sfake.New(t, sfake.Options{BatchSize: 10})
	s := &secretsSeen{}
	saved := make(chan Token, 10)
	tok := connect(t, f, s)
	c := newClient(t, f, tok, s, saved)
	f.SeedContacts(30)
	ctx := context.Background()
	soql := salesforce.IncrementalQuery("Contact", []string{"Email"}, time.Time{})

	// Rate limit on the second page; the same nextRecordsUrl works afterwards (the checkpoint).
	p, err := c.QueryAll(ctx, soql)
	if err != nil {
		t.Fatal(err)
	}
	f.RateLimitCall(1)
	_, err = c.QueryMore(ctx, p.NextURL)
	if !errors.Is(err, salesforce.ErrRateLimited) || !strings.Contains(err.Error(), "REQUEST_LIMIT_EXCEEDED") {
		t.Errorf("rate limit: %v", err)
	}
	s.check(t, err)
	if p2, err := c.QueryMore(ctx, p.NextURL); err != nil || len(p2.Records) != 10 {
		t.Errorf("resume: %v %d", err, len(p2.Records))
	}

	// Expired session: one refresh, retried, the new token handed to save.
	before := f.Counts().TokenRefresh
	f.ExpireAccessTokens()
	if _, err := c.Describe(ctx, "Contact"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := f.Counts().TokenRefresh - before; n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	select {
	case nt := <-saved:
		if nt.AccessToken == tok.AccessToken {
			t.Error("same access token saved")
		}
	default:
		t.Error("refreshed token not saved")
	}
	// A working session does not refresh.
	if _, err := c.QueryAll(ctx, soql); err != nil || f.Counts().TokenRefresh-before != 1 {
		t.Errorf("extra refresh: %v", err)
	}

	// Expired again after the refresh: one refresh, then the session error.
	f.SetSessionsInvalid(true)
	before = f.Counts().TokenRefresh
	_, err = c.QueryAll(ctx, soql)
	if !errors.Is(err, salesforce.ErrSessionExpired) || !strings.Contains(err.Error(), "INVALID_SESSION_ID") {
		t.Errorf("second expiry: %v", err)
	}
	if n := f.Counts().TokenRefresh - before; n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	s.check(t, err)
	f.SetSessionsInvalid(false)
	for len(saved) > 0 {
		<-saved
	}

	// Permission.
	f.DenyQueries("Contact")
	_, err = c.QueryAll(ctx, soql)
	if !errors.Is(err, salesforce.ErrPermission) || !strings.Contains(err.Error(), "View All Records") || !strings.Contains(err.Error(), "Contact") {
		t.Errorf("permission: %v", err)
	}
	s.check(t, err)

	// Other errors keep Salesforce's code.
	for soql, code := range map[string]string{
		"SELECT Nope FROM Lead":           "INVALID_FIELD",
		"SELECT Id FROM Nope":             "INVALID_TYPE",
		"SELECT Id Lead":                  "MALFORMED_QUERY",
		"SELECT MailingAddress FROM Lead": "INVALID_FIELD",
	} {
		_, err := c.QueryAll(ctx, soql)
		var e *salesforce.Error
		if !errors.As(err, &e) || e.Kind != salesforce.KindOther || e.Code != code || e.Status != 400 {
			t.Errorf("%s: %v", soql, err)
		}
		s.check(t, err)
	}

	// nextRecordsUrl never leads the token elsewhere.
	for _, next := range []string{"https://evil.example/services/data/v58.0/query/x-1", "//evil.example/services/data/v58.0/query/x-1",
		"/services/data/../../x", "http://127.0.0.1:1/services/data/v58.0/query/x-1", "relative"} {
		if _, err := c.QueryMore(ctx, next); err == nil || salesforce.KindOf(err) != salesforce.KindOther {
			t.Errorf("%s: %v", next, err)
		}
	}
}

func TestNoRefreshConfigured(t *testing.T) {
	t.Parallel()
	f := sfake.New(t, sfake.Options{})
	s := &secretsSeen{}
	tok := connect(t, f, s)
	c, err := New(Config{InstanceURL: tok.InstanceURL, AccessToken: tok.AccessToken, HTTP: f.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	f.ExpireAccessTokens()
	_, err = c.Describe(context.Background(), "Lead")
	if !errors.Is(err, salesforce.ErrSessionExpired) {
		t.Errorf("got %v", err)
	}
	s.check(t, err)
	if _, err := New(Config{InstanceURL: "http://acme.my.salesforce.com", AccessToken: "x"}); err == nil {
		t.Error("http instance accepted")
	}
}

func TestStartFromRefreshTokenOnly(t *testing.T) {
	t.Parallel()
	f := sfake.New(t, sfake.Options{})
	s := &secretsSeen{}
	tok := connect(t, f, s)
	tok.AccessToken = ""
	c := newClient(t, f, tok, s, nil)
	if _, err := c.Describe(context.Background(), "Lead"); err != nil {
		t.Fatal(err)
	}
	if n := f.Counts(); n.TokenRefresh != 1 || n.Unauthorized != 0 {
		t.Errorf("counts %+v", n)
	}
}

func TestConcurrentExpiryRefreshesOnce(t *testing.T) {
	t.Parallel()
	f := sfake.New(t, sfake.Options{})
	s := &secretsSeen{}
	c := newClient(t, f, connect(t, f, s), s, nil)
	f.ExpireAccessTokens()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := c.Describe(context.Background(), "Account")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := f.Counts().TokenRefresh; n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
}

func TestDecodeAPIError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
		kind   salesforce.Kind
		code   string
	}{
		{"array", 403, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, salesforce.KindRateLimited, "REQUEST_LIMIT_EXCEEDED"},
		{"session", 401, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, salesforce.KindSessionExpired, "INVALID_SESSION_ID"},
		{"with fields", 400, `[{"message":"No such column","errorCode":"INVALID_FIELD","fields":["Nope"]}]`, salesforce.KindOther, "INVALID_FIELD"},
		{"single object", 403, `{"message":"insufficient access","errorCode":"INSUFFICIENT_ACCESS"}`, salesforce.KindPermission, "INSUFFICIENT_ACCESS"},
		{"oauth shape", 401, `{"error":"invalid_token","error_description":"x"}`, salesforce.KindSessionExpired, "invalid_token"},
		{"html", 503, `<html>down</html>`, salesforce.KindOther, ""},
		{"empty", 500, ``, salesforce.KindOther, ""},
		{"empty array", 403, `[]`, salesforce.KindPermission, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := decodeAPIError(tc.status, []byte(tc.body), "Contact")
			if e.Kind != tc.kind || e.Code != tc.code || e.Status != tc.status || e.Object != "Contact" {
				t.Errorf("got %+v", e)
			}
		})
	}
	e := decodeAPIError(401, []byte(`[{"message":"bad token SECRETTOKEN","errorCode":"INVALID_SESSION_ID"}]`), "", "SECRETTOKEN")
	if strings.Contains(e.Error(), "SECRETTOKEN") {
		t.Errorf("not scrubbed: %v", e)
	}
}

func FuzzDecodeAPIError(f *testing.F) {
	f.Add(403, []byte(`[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`))
	f.Add(401, []byte(`{"error":"invalid_grant","error_description":"expired access/refresh token"}`))
	f.Add(500, []byte(`[{"message":null,"errorCode":7}]`))
	f.Add(400, []byte(`x`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		const secret = "00Dxx!SECRET"
		e := decodeAPIError(status, body, "Obj", secret)
		if e == nil || e.Status != status {
			t.Fatalf("got %v", e)
		}
		msg := e.Error()
		if strings.Contains(msg, secret) {
			t.Errorf("secret in %q", msg)
		}
		if len(msg) > 2000 {
			t.Errorf("message of %d bytes", len(msg))
		}
		if o := decodeOAuthError(status, body, secret); strings.Contains(o.Error(), secret) {
			t.Errorf("secret in oauth error %q", o.Error())
		}
	})
}

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact"},"Id":"003","Amount":1.50,"Account":{"attributes":{},"Name":"x"}}]}`))
	f.Add([]byte(`{"totalSize":3,"done":false,"nextRecordsUrl":"/services/data/v58.0/query/01g-2","records":[]}`))
	f.Add([]byte(`{"done":false}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePage(body)
		if err != nil {
			return
		}
		if !p.Done && p.NextURL == "" {
			t.Error("not done without a next URL")
		}
		var check func(v any)
		check = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				if _, ok := v["attributes"]; ok {
					t.Error("attributes kept")
				}
				for _, x := range v {
					check(x)
				}
			case salesforce.Record:
				check(map[string]any(v))
			case []any:
				for _, x := range v {
					check(x)
				}
			}
		}
		for _, r := range p.Records {
			check(r)
		}
	})
}
