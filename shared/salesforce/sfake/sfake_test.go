package sfake

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/salesforce"
)

func TestParseSOQL(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		soql string
		want query
		err  string
	}{
		{"generated, no since", salesforce.IncrementalQuery("Contact", []string{"Email"}, time.Time{}),
			query{Fields: []string{"Id", "SystemModstamp", "IsDeleted", "Email"}, Object: "Contact",
				Order: []orderBy{{Field: "SystemModstamp"}, {Field: "Id"}}}, ""},
		{"generated, since", salesforce.IncrementalQuery("Lead", nil, since),
			query{Fields: []string{"Id", "SystemModstamp", "IsDeleted"}, Object: "Lead",
				Where: []cond{{"SystemModstamp", ">", since}}, Order: []orderBy{{Field: "SystemModstamp"}, {Field: "Id"}}}, ""},
		{"lower case, offset, desc, limit", "select id,name from account where LastModifiedDate>=2026-01-01T01:00:00+01:00 and Name != 'O\\'Brien' order by name desc nulls last limit 5",
			query{Fields: []string{"id", "name"}, Object: "account",
				Where: []cond{{"LastModifiedDate", ">=", since}, {"Name", "!=", "O'Brien"}}, Order: []orderBy{{Field: "name", Desc: true}}, Limit: 5}, ""},
		{"numbers, booleans, null", "SELECT Id FROM Lead WHERE NumberOfEmployees < 10 AND IsConverted = false AND Email = null",
			query{Fields: []string{"Id"}, Object: "Lead", Where: []cond{{"NumberOfEmployees", "<", 10.0}, {"IsConverted", "=", false}, {"Email", "=", nil}}}, ""},
		{"no SELECT", "Id FROM Contact", query{}, "expected SELECT"},
		{"no FROM", "SELECT Id Contact", query{}, "expected FROM"},
		{"trailing comma", "SELECT Id, FROM Contact", query{}, "SELECT list"},
		{"quoted datetime", "SELECT Id FROM Contact WHERE SystemModstamp > '2026-01-01T00:00:00Z'", query{Fields: []string{"Id"}, Object: "Contact", Where: []cond{{"SystemModstamp", ">", "2026-01-01T00:00:00Z"}}}, ""},
		{"datetime without zone", "SELECT Id FROM Contact WHERE SystemModstamp > 2026-01-01T00:00:00", query{}, "invalid date/time"},
		{"bad datetime", "SELECT Id FROM Contact WHERE SystemModstamp > 2026-13-01T00:00:00Z", query{}, "invalid date/time"},
		{"unterminated", "SELECT Id FROM Contact WHERE Name = 'x", query{}, "unterminated"},
		{"OR unsupported", "SELECT Id FROM Contact WHERE Name = 'a' OR Name = 'b'", query{}, "unexpected token"},
		{"injection", "SELECT Id FROM Contact; DELETE", query{}, "unexpected token"},
		{"empty", "", query{}, "expected SELECT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseSOQL(tc.soql)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tc.want)
			if string(g) != string(w) {
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
}

func FuzzParseSOQL(f *testing.F) {
	f.Add(salesforce.IncrementalQuery("Contact", []string{"Email"}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	f.Add("select id from x where a = 'b\\'c' and d >= 1.5 order by a desc nulls first limit 3")
	f.Add("SELECT Id FROM Contact WHERE SystemModstamp > 2026-01-01T00:00:00+0100")
	f.Add("'")
	f.Fuzz(func(t *testing.T, s string) {
		q, err := parseSOQL(s)
		if err != nil {
			return
		}
		if len(q.Fields) == 0 || !salesforce.ValidName(q.Object) {
			t.Errorf("accepted %q as %+v", s, q)
		}
		for _, c := range q.Where {
			c.match(nil)
			c.match("x")
			c.match(time.Now())
		}
	})
}

func TestRecordID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, n := range []int{1, 2, 61, 62, 3843, 25_000, 1 << 40} {
		id := recordID("003", n)
		if len(id) != 18 || !strings.HasPrefix(id, "003") || seen[strings.ToLower(id)] {
			t.Errorf("%d: %s", n, id)
		}
		seen[strings.ToLower(id)] = true
	}
	// The suffix tells ids apart that differ in case only.
	a, b := "003000000000aBc", "003000000000AbC"
	if idSuffix(a) == idSuffix(b) {
		t.Error("suffix ignores case")
	}
	if idSuffix("000000000000000") != "AAA" || idSuffix("AAAAAAAAAAAAAAA") != "555" {
		t.Errorf("suffix %s %s", idSuffix("000000000000000"), idSuffix("AAAAAAAAAAAAAAA"))
	}
}

func get(t *testing.T, f *Fake, u, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// token runs the flow by hand (no rest package: the fake is checked on its own).
func token(t *testing.T, f *Fake) map[string]string {
	t.Helper()
	verifier := strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(verifier))
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(f.LoginURL() + "/services/oauth2/authorize?" + url.Values{"response_type": {"code"}, "client_id": {f.ClientID()},
		"redirect_uri": {"http://localhost/cb"}, "state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	resp, err = http.PostForm(f.LoginURL()+"/services/oauth2/token", url.Values{"grant_type": {"authorization_code"},
		"code": {loc.Query().Get("code")}, "client_id": {f.ClientID()}, "client_secret": {f.ClientSecret()},
		"redirect_uri": {"http://localhost/cb"}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	return tok
}

func TestShapes(t *testing.T) {
	t.Parallel()
	f := New(t, Options{BatchSize: 2})
	tok := token(t, f)
	for _, k := range []string{"access_token", "refresh_token", "instance_url", "id", "issued_at", "signature", "token_type", "scope"} {
		if tok[k] == "" {
			t.Errorf("token has no %s", k)
		}
	}
	at := tok["access_token"]
	ids := f.InsertMany("Contact", []map[string]any{Contact(0), Contact(1), Contact(2)})
	if err := f.Delete("Contact", ids[1]); err != nil {
		t.Fatal(err)
	}
	base := f.InstanceURL() + "/services/data/v58.0"

	tests := []struct {
		name   string
		path   string
		token  string
		status int
		check  func(t *testing.T, body map[string]any)
		errc   string
	}{
		{"no token", "/sobjects/Contact/describe", "", 401, nil, "INVALID_SESSION_ID"},
		{"bad token", "/sobjects/Contact/describe", "x", 401, nil, "INVALID_SESSION_ID"},
		{"describe", "/sobjects/Contact/describe", at, 200, func(t *testing.T, b map[string]any) {
			if b["name"] != "Contact" || len(b["fields"].([]any)) < 10 {
				t.Errorf("describe %v", b["name"])
			}
		}, ""},
		{"queryAll pages and keeps deleted", "/queryAll?q=" + url.QueryEscape("SELECT Id, IsDeleted FROM Contact ORDER BY Id"), at, 200, func(t *testing.T, b map[string]any) {
			recs := b["records"].([]any)
			next, _ := b["nextRecordsUrl"].(string)
			if b["totalSize"].(float64) != 3 || b["done"] != false || len(recs) != 2 || !strings.HasPrefix(next, "/services/data/v58.0/query/01g") {
				t.Errorf("page %v", b)
			}
			attrs := recs[0].(map[string]any)["attributes"].(map[string]any)
			if attrs["type"] != "Contact" || !strings.HasPrefix(attrs["url"].(string), "/services/data/v58.0/sobjects/Contact/003") {
				t.Errorf("attributes %v", attrs)
			}
			if recs[1].(map[string]any)["IsDeleted"] != true {
				t.Errorf("deleted %v", recs[1])
			}
			_, b2 := get(t, f, f.InstanceURL()+next, at)
			var p2 map[string]any
			json.Unmarshal(b2, &p2)
			if p2["done"] != true || len(p2["records"].([]any)) != 1 || p2["nextRecordsUrl"] != nil {
				t.Errorf("page 2 %s", b2)
			}
		}, ""},
		{"query hides deleted", "/query?q=" + url.QueryEscape("SELECT Id FROM Contact"), at, 200, func(t *testing.T, b map[string]any) {
			if b["totalSize"].(float64) != 2 {
				t.Errorf("query %v", b)
			}
		}, ""},
		{"bad locator", "/query/01gnope-2", at, 400, nil, "INVALID_QUERY_LOCATOR"},
		{"other version", "/services/data/v57.0/sobjects/Contact/describe", at, 404, nil, "NOT_FOUND"},
		{"datetime compared to a string", "/queryAll?q=" + url.QueryEscape("SELECT Id FROM Contact WHERE SystemModstamp > 'x'"), at, 400, nil, "INVALID_FIELD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := base + tc.path
			if strings.HasPrefix(tc.path, "/services/") {
				u = f.InstanceURL() + tc.path
			}
			status, body := get(t, f, u, tc.token)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.errc != "" {
				var errs []map[string]string
				if err := json.Unmarshal(body, &errs); err != nil || len(errs) != 1 || errs[0]["errorCode"] != tc.errc || errs[0]["message"] == "" {
					t.Errorf("error body %s", body)
				}
				return
			}
			var b map[string]any
			if err := json.Unmarshal(body, &b); err != nil {
				t.Fatal(err)
			}
			tc.check(t, b)
		})
	}
	if c := f.Counts(); c.TokenCode != 1 || c.Authorize != 1 || c.Unauthorized != 2 || c.Describe != 1 {
		t.Errorf("counts %+v", c)
	}
}

func TestAuthorizeRequiresPKCE(t *testing.T) {
	t.Parallel()
	f := New(t, Options{})
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(f.LoginURL() + "/services/oauth2/authorize?" + url.Values{"response_type": {"code"}, "client_id": {f.ClientID()},
		"redirect_uri": {"http://localhost/cb"}, "state": {"s"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "s" || loc.Query().Get("code") != "" {
		t.Errorf("redirect %s", loc)
	}
}
