package salesforce_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/salesforce"
	"github.com/unifiedprofiles/up/shared/salesforce/rest"
	"github.com/unifiedprofiles/up/shared/salesforce/sfake"
	"github.com/unifiedprofiles/up/shared/secrets/localkey"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

const cxOperatorToken = "up_op_connect_test_operator_token"

const cxRedirectURI = "http://127.0.0.1:8080/v1/salesforce/callback"

type connectEnv struct {
	t     *testing.T
	ctx   context.Context
	st    store.Store
	ws    *workspace.Service
	clock *testclock.Clock
	fake  *sfake.Fake
	app   *rest.OAuthApp
	conn  *salesforce.Connector
}

// cxTenant is a workspace with a salesforce source and a postgres source.
type cxTenant struct {
	workspacetest.Tenant
	sf, wh string
}

func newConnectEnv(t *testing.T) *connectEnv {
	t.Helper()
	clock := testclock.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"), bolt.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := make([]byte, localkey.KeySize)
	rand.Read(key)
	sealer, err := localkey.New(key)
	if err != nil {
		t.Fatal(err)
	}
	ws := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(cxOperatorToken), Now: clock.Now, Secrets: sealer})
	fake := sfake.New(t, sfake.Options{})
	app := &rest.OAuthApp{LoginURL: fake.LoginURL(), ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(), HTTP: fake.HTTPClient()}
	return &connectEnv{t: t, ctx: context.Background(), st: st, ws: ws, clock: clock, fake: fake, app: app,
		conn: salesforce.NewConnector(st, ws, sealer, app, salesforce.ConnectorOptions{Now: clock.Now})}
}

func (e *connectEnv) tenant() cxTenant {
	e.t.Helper()
	tn := workspacetest.New(e.t, e.ws, cxOperatorToken)
	return cxTenant{Tenant: tn, sf: tn.Source(e.t, "salesforce").ID, wh: tn.Source(e.t, "postgres").ID}
}

func (e *connectEnv) connect(tn cxTenant) string {
	e.t.Helper()
	u, err := e.conn.Connect(e.ctx, tn.Owner, tn.ID(), tn.sf, salesforce.ConnectRequest{WarehouseSourceID: tn.wh, RedirectURI: cxRedirectURI})
	if err != nil {
		e.t.Fatalf("Connect: %v", err)
	}
	return u
}

// authorize follows the authorize URL on the fake (which logs in and consents at once) and
// returns the code and state it redirects back with.
func cxAuthorize(t *testing.T, authorizeURL string) (code, state string) {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != cxRedirectURI {
		t.Fatalf("redirected to %s, want %s", got, cxRedirectURI)
	}
	return loc.Query().Get("code"), loc.Query().Get("state")
}

func cxWantCode(t *testing.T, err error, code, field string) {
	t.Helper()
	e := errcode.As(err)
	if e == nil || e.Code != code || e.Field != field {
		t.Fatalf("error %v, want code %s field %q", err, code, field)
	}
}

func TestConnectRoundTrip(t *testing.T) {
	e := newConnectEnv(t)
	tn := e.tenant()
	au := e.connect(tn)
	q := cxURL(t, au).Query()
	if !strings.HasPrefix(au, e.fake.LoginURL()+"/services/oauth2/authorize?") || q.Get("code_challenge_method") != "S256" ||
		q.Get("redirect_uri") != cxRedirectURI || q.Get("client_id") != e.fake.ClientID() || len(q.Get("state")) < 22 {
		t.Fatalf("authorize URL %s", au)
	}
	if got, _ := e.conn.Get(e.ctx, tn.Owner, tn.ID(), tn.sf); got.Connected || got.Status() != salesforce.StatusNotConnected {
		t.Fatalf("before the callback: %+v", got)
	}
	code, state := cxAuthorize(t, au)
	conn, err := e.conn.Callback(e.ctx, state, code)
	if err != nil {
		t.Fatalf("Callback: %v", err)
	}
	got, err := e.conn.Get(e.ctx, tn.Owner, tn.ID(), tn.sf)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	if !got.Connected || got.Status() != salesforce.StatusConnected || got.Username != e.fake.Username() ||
		got.InstanceURL != e.fake.InstanceURL() || got.Environment != "production" || got.WarehouseSourceID != tn.wh ||
		fmt.Sprint(got.Objects) != "[Contact Lead Account]" || got.NextSyncAt == nil || !got.NextSyncAt.Equal(now) ||
		got.ConnectedAt == nil || got.RefreshToken != "" {
		t.Fatalf("after the callback: %+v (callback answered %+v)", got, conn)
	}
	// Step 2 counts the source as connected.
	src, err := e.ws.GetSource(e.ctx, tn.Owner, tn.ID(), tn.sf)
	if err != nil || src.ConnectedAt == nil {
		t.Fatalf("source not marked connected: %+v %v", src, err)
	}
	// The first sync is due now, not before.
	if due, err := e.conn.Due(e.ctx, now.Add(-time.Second), 0); err != nil || len(due) != 0 {
		t.Fatalf("due before now: %v %v", due, err)
	}
	due, err := e.conn.Due(e.ctx, now, 0)
	if err != nil || len(due) != 1 || due[0].WorkspaceID != tn.ID() || due[0].SourceID != tn.sf {
		t.Fatalf("due: %v %v", due, err)
	}
	// The sync side gets the refresh token, and it works.
	creds, err := e.conn.Credentials(e.ctx, tn.ID(), tn.sf)
	if err != nil || creds.RefreshToken == "" {
		t.Fatalf("Credentials: %+v %v", creds, err)
	}
	client, err := e.app.Client(creds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Describe(e.ctx, "Contact"); err != nil {
		t.Fatalf("describe with the stored grant: %v", err)
	}
	// The refresh token is nowhere but sealed: not in the stored items, not in any printed
	// or marshalled form of the connection.
	secret := creds.RefreshToken.Reveal()
	raw := cxRawItems(t, e.st, "WS#"+tn.ID()+"#SF", "SFDUE")
	if len(raw) == 0 || bytes.Contains(raw, []byte(secret)) || !bytes.Contains(raw, []byte("sealed_refresh_token")) {
		t.Fatalf("stored items hold the refresh token or no sealed one: %s", raw)
	}
	js, _ := json.Marshal(creds)
	for _, s := range []string{fmt.Sprint(creds), fmt.Sprintf("%+v", creds), fmt.Sprintf("%#v", creds), string(js), fmt.Sprint(conn)} {
		if strings.Contains(s, secret) {
			t.Fatalf("the refresh token shows in %q", s)
		}
	}
	// A sync recorded: the next one is due in 3 hours.
	fin := now.Add(time.Minute)
	if err := e.conn.RecordSync(e.ctx, tn.ID(), tn.sf, salesforce.LastSync{Status: "succeeded", StartedAt: now, FinishedAt: &fin, Records: map[string]int{"Contact": 3}}, now.Add(salesforce.SyncInterval)); err != nil {
		t.Fatal(err)
	}
	if due, _ := e.conn.Due(e.ctx, now.Add(time.Hour), 0); len(due) != 0 {
		t.Fatalf("due after the sync: %v", due)
	}
	if due, _ := e.conn.Due(e.ctx, now.Add(salesforce.SyncInterval), 0); len(due) != 1 {
		t.Fatalf("not due 3 hours later: %v", due)
	}
	got, _ = e.conn.Get(e.ctx, tn.Owner, tn.ID(), tn.sf)
	if got.LastSync == nil || got.LastSync.Records["Contact"] != 3 || !got.NextSyncAt.Equal(now.Add(salesforce.SyncInterval)) {
		t.Fatalf("after RecordSync: %+v", got)
	}
}

func cxURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// cxRawItems returns every stored item of the partitions, concatenated.
func cxRawItems(t *testing.T, st store.Store, pks ...string) []byte {
	t.Helper()
	var out []byte
	for _, pk := range pks {
		items, err := st.Query(context.Background(), pk, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			out = append(out, it.Data...)
		}
	}
	return out
}

func TestCallbackRefusals(t *testing.T) {
	e := newConnectEnv(t)
	notConnected := func(t *testing.T, tn cxTenant) {
		t.Helper()
		got, err := e.conn.Get(e.ctx, tn.Owner, tn.ID(), tn.sf)
		if err != nil || got.Connected {
			t.Fatalf("connected: %+v %v", got, err)
		}
		due, _ := e.conn.Due(e.ctx, e.clock.Now().Add(time.Hour), 0)
		for _, d := range due {
			if d.SourceID == tn.sf {
				t.Fatalf("due: %v", d)
			}
		}
	}

	t.Run("PKCE: a code issued for another challenge", func(t *testing.T) {
		tn := e.tenant()
		u := cxURL(t, e.connect(tn))
		q := u.Query()
		q.Set("code_challenge", strings.Repeat("A", 43)) // as if the code were obtained by someone else's flow
		u.RawQuery = q.Encode()
		code, state := cxAuthorize(t, u.String())
		_, err := e.conn.Callback(e.ctx, state, code)
		cxWantCode(t, err, "authorization_failed", "")
		if !strings.Contains(err.Error(), "invalid code verifier") {
			t.Fatalf("not refused for the verifier: %v", err)
		}
		notConnected(t, tn)
	})

	t.Run("state is single use", func(t *testing.T) {
		tn := e.tenant()
		code, state := cxAuthorize(t, e.connect(tn))
		first, err := e.conn.Callback(e.ctx, state, code)
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Minute)
		_, err = e.conn.Callback(e.ctx, state, code)
		cxWantCode(t, err, "invalid_state", "")
		got, _ := e.conn.Get(e.ctx, tn.Owner, tn.ID(), tn.sf)
		if !got.ConnectedAt.Equal(*first.ConnectedAt) {
			t.Fatalf("the replay changed the connection: %+v", got)
		}
	})

	t.Run("two callbacks at once: one connects", func(t *testing.T) {
		tn := e.tenant()
		code, state := cxAuthorize(t, e.connect(tn))
		errs := make(chan error, 4)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); _, err := e.conn.Callback(e.ctx, state, code); errs <- err }()
		}
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			if err == nil {
				ok++
			} else if !errcode.Is(err, "invalid_state") {
				t.Errorf("a losing callback: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d callbacks succeeded", ok)
		}
	})

	t.Run("expired state", func(t *testing.T) {
		tn := e.tenant()
		code, state := cxAuthorize(t, e.connect(tn))
		e.clock.Add(salesforce.StateTTL + time.Second)
		before := e.fake.Counts().TokenCode
		_, err := e.conn.Callback(e.ctx, state, code)
		cxWantCode(t, err, "invalid_state", "")
		if n := e.fake.Counts().TokenCode - before; n != 0 {
			t.Fatalf("the code was exchanged %d times", n)
		}
		notConnected(t, tn)
	})

	t.Run("unknown state", func(t *testing.T) {
		_, err := e.conn.Callback(e.ctx, "made-up", "code")
		cxWantCode(t, err, "invalid_state", "")
		_, err = e.conn.Callback(e.ctx, "", "code")
		cxWantCode(t, err, "invalid_state", "")
	})

	t.Run("another workspace's state cannot connect this one", func(t *testing.T) {
		a, b := e.tenant(), e.tenant()
		codeA, _ := cxAuthorize(t, e.connect(a))
		_, stateB := cxAuthorize(t, e.connect(b))
		// A's code with B's state: B's verifier does not match A's challenge.
		_, err := e.conn.Callback(e.ctx, stateB, codeA)
		cxWantCode(t, err, "authorization_failed", "")
		notConnected(t, a)
		notConnected(t, b)
	})
}

func TestConnectValidation(t *testing.T) {
	e := newConnectEnv(t)
	tn, other := e.tenant(), e.tenant()
	js := tn.Source(t, "javascript").ID
	tests := []struct {
		name       string
		p          workspace.Principal
		src        string
		req        salesforce.ConnectRequest
		code, fild string
	}{
		{"another workspace's token", other.Owner, tn.sf, salesforce.ConnectRequest{WarehouseSourceID: tn.wh}, "forbidden", ""},
		{"not a salesforce source", tn.Owner, tn.wh, salesforce.ConnectRequest{WarehouseSourceID: tn.wh}, "not_salesforce", "source_id"},
		{"another workspace's source", tn.Owner, other.sf, salesforce.ConnectRequest{WarehouseSourceID: tn.wh}, "not_found", ""},
		{"no warehouse", tn.Owner, tn.sf, salesforce.ConnectRequest{}, "invalid_field", "warehouse_source_id"},
		{"not a warehouse", tn.Owner, tn.sf, salesforce.ConnectRequest{WarehouseSourceID: js}, "invalid_field", "warehouse_source_id"},
		{"another workspace's warehouse", tn.Owner, tn.sf, salesforce.ConnectRequest{WarehouseSourceID: other.wh}, "invalid_field", "warehouse_source_id"},
		{"environment", tn.Owner, tn.sf, salesforce.ConnectRequest{WarehouseSourceID: tn.wh, Environment: "staging"}, "invalid_field", "environment"},
		{"object name", tn.Owner, tn.sf, salesforce.ConnectRequest{WarehouseSourceID: tn.wh, Objects: []string{"Contact", "Lead; DROP"}}, "invalid_field", "objects"},
		{"too many objects", tn.Owner, tn.sf, salesforce.ConnectRequest{WarehouseSourceID: tn.wh, Objects: make([]string, 21)}, "invalid_field", "objects"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.RedirectURI = cxRedirectURI
			_, err := e.conn.Connect(e.ctx, tc.p, tn.ID(), tc.src, tc.req)
			cxWantCode(t, err, tc.code, tc.fild)
		})
	}
	// Objects: deduplicated, case kept; sandbox accepted.
	u, err := e.conn.Connect(e.ctx, tn.Owner, tn.ID(), tn.sf, salesforce.ConnectRequest{WarehouseSourceID: tn.wh, Environment: "sandbox",
		Objects: []string{"Contact", "contact", "Invoice__c"}, RedirectURI: cxRedirectURI})
	if err != nil {
		t.Fatal(err)
	}
	code, state := cxAuthorize(t, u)
	c, err := e.conn.Callback(e.ctx, state, code)
	if err != nil || fmt.Sprint(c.Objects) != "[Contact Invoice__c]" || c.Environment != "sandbox" {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestReauthorize(t *testing.T) {
	e := newConnectEnv(t)
	tn := e.tenant()
	if err := e.conn.MarkReauthorize(e.ctx, tn.ID(), tn.sf, "x"); !errcode.Is(err, "not_connected") {
		t.Fatalf("MarkReauthorize before connecting: %v", err)
	}
	code, state := cxAuthorize(t, e.connect(tn))
	if _, err := e.conn.Callback(e.ctx, state, code); err != nil {
		t.Fatal(err)
	}
	// The sync finds the grant revoked.
	e.fake.RevokeRefreshTokens()
	creds, _ := e.conn.Credentials(e.ctx, tn.ID(), tn.sf)
	client, _ := e.app.Client(creds)
	_, err := client.Describe(e.ctx, "Contact")
	if salesforce.KindOf(err) != salesforce.KindReauthorize {
		t.Fatalf("describe after revocation: %v", err)
	}
	if err := e.conn.MarkReauthorize(e.ctx, tn.ID(), tn.sf, err.Error()); err != nil {
		t.Fatal(err)
	}
	got, _ := e.conn.Get(e.ctx, tn.Owner, tn.ID(), tn.sf)
	if got.Status() != salesforce.StatusReauthorize || !strings.Contains(got.ReauthorizeReason, "invalid_grant") || got.NextSyncAt != nil {
		t.Fatalf("after MarkReauthorize: %+v", got)
	}
	if due, _ := e.conn.Due(e.ctx, e.clock.Now().Add(24*time.Hour), 0); len(due) != 0 {
		t.Fatalf("due while reauthorize: %v", due)
	}
	if _, err := e.conn.Credentials(e.ctx, tn.ID(), tn.sf); !errcode.Is(err, "reauthorize_required") {
		t.Fatalf("Credentials while reauthorize: %v", err)
	}
	// Connecting again clears it and keeps nothing of the old grant.
	e.clock.Add(time.Hour)
	code, state = cxAuthorize(t, e.connect(tn))
	if _, err := e.conn.Callback(e.ctx, state, code); err != nil {
		t.Fatal(err)
	}
	got, _ = e.conn.Get(e.ctx, tn.Owner, tn.ID(), tn.sf)
	if got.Status() != salesforce.StatusConnected || got.ReauthorizeReason != "" || got.NextSyncAt == nil {
		t.Fatalf("after reconnecting: %+v", got)
	}
	if due, _ := e.conn.Due(e.ctx, e.clock.Now(), 0); len(due) != 1 {
		t.Fatalf("due after reconnecting: %v", due)
	}
}

func TestNotConfigured(t *testing.T) {
	e := newConnectEnv(t)
	tn := e.tenant()
	t.Setenv(rest.EnvClientID, "")
	t.Setenv(rest.EnvClientSecret, "")
	_, err := rest.FromEnv()
	if err != rest.ErrNotConfigured {
		t.Fatalf("FromEnv without a client id: %v", err)
	}
	c := salesforce.NewConnector(e.st, e.ws, nil, nil, salesforce.ConnectorOptions{NotConfigured: err})
	_, err = c.Connect(e.ctx, tn.Owner, tn.ID(), tn.sf, salesforce.ConnectRequest{WarehouseSourceID: tn.wh, RedirectURI: cxRedirectURI})
	cxWantCode(t, err, "salesforce_not_configured", "")
	if !strings.Contains(err.Error(), "Salesforce is not configured on this deployment") {
		t.Fatalf("message: %v", err)
	}
	_, err = c.Callback(e.ctx, "s", "c")
	cxWantCode(t, err, "salesforce_not_configured", "")
	// Reading a source's status still works.
	if got, err := c.Get(e.ctx, tn.Owner, tn.ID(), tn.sf); err != nil || got.Status() != salesforce.StatusNotConnected {
		t.Fatalf("Get: %+v %v", got, err)
	}
}

func TestSecretRedacts(t *testing.T) {
	s := salesforce.Secret("5Aep-very-secret")
	tok := salesforce.OAuthToken{AccessToken: s, RefreshToken: s}
	js, _ := json.Marshal(tok)
	for _, out := range []string{fmt.Sprint(tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", tok), string(js)} {
		if strings.Contains(out, "very-secret") {
			t.Fatalf("leaked: %s", out)
		}
	}
	if s.Reveal() != "5Aep-very-secret" {
		t.Fatal("Reveal")
	}
}
