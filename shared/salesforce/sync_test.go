package salesforce_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/unifiedprofiles/up/infra/pgtest"
	"github.com/unifiedprofiles/up/shared/salesforce"
	"github.com/unifiedprofiles/up/shared/salesforce/rest"
	"github.com/unifiedprofiles/up/shared/salesforce/sfake"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/postgres"
	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
)

// The sync engine against the fake Salesforce (through the real REST client) and a real
// PostgreSQL, one acceptance behaviour of issue 15 a subtest, each in a database of its own on
// one cluster.

const syRedirectURI = "https://up.example/v1/salesforce/callback"

var syDBSeq atomic.Int64

// syncEnv is a fake org connected through OAuth, a warehouse database the role retl (SCRAM
// password) owns, and the checkpoints saved.
type syncEnv struct {
	t     *testing.T
	ctx   context.Context
	f     *sfake.Fake
	c     *rest.Client
	db    warehouse.DB
	admin *pgx.Conn
	now   time.Time
	saves []salesforce.Checkpoint
	// onSave runs before a checkpoint is stored (n counts from 1); an error refuses it.
	onSave func(n int, cp salesforce.Checkpoint) error
}

func newSyncEnv(t *testing.T, pg *pgtest.Cluster, opts sfake.Options) *syncEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	name := fmt.Sprintf("sf_%d", syDBSeq.Add(1))
	pg.Exec(t, "CREATE DATABASE "+name+" OWNER retl")
	db, err := postgres.Open(ctx, warehouse.Credentials{Host: pg.Socket, Port: 5432, Database: name, User: "retl", Password: "right-password", SSLMode: "disable"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	admin, err := pgx.Connect(ctx, fmt.Sprintf("host=%s user=postgres dbname=%s sslmode=disable", pg.Socket, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	f := sfake.New(t, opts)
	tok := syConnect(t, f)
	c, err := rest.New(rest.Config{InstanceURL: tok.InstanceURL, AccessToken: tok.AccessToken, HTTP: f.HTTPClient(),
		Refresh: rest.RefreshFunc(f.LoginURL(), f.ClientID(), f.ClientSecret(), tok.RefreshToken, nil), BatchSize: 2000})
	if err != nil {
		t.Fatal(err)
	}
	return &syncEnv{t: t, ctx: ctx, f: f, c: c, db: db, admin: admin, now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
}

// syConnect runs the OAuth web-server flow with PKCE against the fake.
func syConnect(t *testing.T, f *sfake.Fake) rest.Token {
	t.Helper()
	verifier := rest.NewVerifier()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(rest.AuthorizeURL(f.LoginURL(), f.ClientID(), syRedirectURI, "st", rest.Challenge(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	tok, err := rest.Exchange(rest.WithHTTPClient(context.Background(), f.HTTPClient()), f.LoginURL(), f.ClientID(), f.ClientSecret(), syRedirectURI, loc.Query().Get("code"), verifier)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// seed inserts n contacts (sfake.Contact(0…n-1)): n-1 in one load, then, two minutes later, the
// last one, with a birthdate and the email opt-out set. The last one is the high-water mark:
// the load lies beyond the safety margin, so the next incremental sync re-reads the last one
// only, which keeps its counts exact.
func (e *syncEnv) seed(n int) []string {
	ids := e.f.SeedContacts(n - 1)
	e.f.Advance(2 * time.Minute)
	last := sfake.Contact(n - 1)
	last["Birthdate"] = time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC)
	last["HasOptedOutOfEmail"] = true
	return append(ids, e.f.Insert("Contact", last))
}

// sync runs SyncObject on Contact from cp, storing each checkpoint as JSON (as a caller does)
// and returning the stored one.
func (e *syncEnv) sync(cp salesforce.Checkpoint) (salesforce.Checkpoint, salesforce.Result, error) {
	e.now = e.now.Add(time.Hour)
	save := func(_ context.Context, cp salesforce.Checkpoint) error {
		if e.onSave != nil {
			if err := e.onSave(len(e.saves)+1, cp); err != nil {
				return err
			}
		}
		b, err := json.Marshal(cp)
		if err != nil {
			return err
		}
		var back salesforce.Checkpoint
		if err := json.Unmarshal(b, &back); err != nil {
			return err
		}
		e.saves = append(e.saves, back)
		return nil
	}
	now := e.now
	out, res, err := salesforce.SyncObject(e.ctx, e.c, e.db, sqlgen.Postgres, "Contact", cp, save, func() time.Time { return now })
	if err == nil && len(e.saves) > 0 && out != e.saves[len(e.saves)-1] {
		e.t.Errorf("returned checkpoint %+v, last saved %+v", out, e.saves[len(e.saves)-1])
	}
	return out, res, err
}

// lastSaved is the checkpoint a caller would hold: the last saved, or the zero one.
func (e *syncEnv) lastSaved() salesforce.Checkpoint {
	if len(e.saves) == 0 {
		return salesforce.Checkpoint{}
	}
	return e.saves[len(e.saves)-1]
}

func (e *syncEnv) count(where string) int {
	e.t.Helper()
	q := "SELECT count(*) FROM salesforce.contact"
	if where != "" {
		q += " WHERE " + where
	}
	var n int
	if err := e.admin.QueryRow(e.ctx, q).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (e *syncEnv) columnTypes() map[string]string {
	e.t.Helper()
	rows, err := e.admin.Query(e.ctx, "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'salesforce' AND table_name = 'contact'")
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var n, ty string
		if err := rows.Scan(&n, &ty); err != nil {
			e.t.Fatal(err)
		}
		out[n] = ty
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// checkAll compares every row with the fake's record: exactly the fake's contacts, each once,
// with its values.
func (e *syncEnv) checkAll(ids []string) {
	e.t.Helper()
	rows, err := e.admin.Query(e.ctx, "SELECT id, firstname, email, phone, mailingcity, is_deleted, systemmodstamp FROM salesforce.contact")
	if err != nil {
		e.t.Fatal(err)
	}
	seen := map[string]bool{}
	for rows.Next() {
		var id, first, email, phone, city string
		var deleted bool
		var stamp time.Time
		if err := rows.Scan(&id, &first, &email, &phone, &city, &deleted, &stamp); err != nil {
			e.t.Fatal(err)
		}
		if seen[id] {
			e.t.Fatalf("%s twice", id)
		}
		seen[id] = true
		rec, ok := e.f.Record("Contact", id)
		if !ok {
			e.t.Fatalf("%s is no contact of the fake", id)
		}
		want, _ := salesforce.ParseDatetime(rec["SystemModstamp"].(string))
		if first != rec["FirstName"] || email != rec["Email"] || phone != rec["Phone"] || city != rec["MailingCity"] || deleted != rec["IsDeleted"] || !stamp.Equal(want) {
			e.t.Fatalf("%s: row (%s, %s, %s, %s, %v, %s), fake %v", id, first, email, phone, city, deleted, stamp, rec)
		}
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	if len(seen) != len(ids) {
		e.t.Fatalf("%d rows, want %d", len(seen), len(ids))
	}
}

func syStamp(t *testing.T, f *sfake.Fake, id string) time.Time {
	t.Helper()
	rec, ok := f.Record("Contact", id)
	if !ok {
		t.Fatalf("no contact %s", id)
	}
	ts, err := salesforce.ParseDatetime(rec["SystemModstamp"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestSyncObject(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(t, "CREATE ROLE retl LOGIN PASSWORD 'right-password'")

	// 25,000 contacts land in pages with typed columns; a second sync moves only the changed
	// records; a deletion arrives as is_deleted, the row kept.
	t.Run("incremental", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t, pg, sfake.Options{})
		ids := e.seed(25000)
		began := time.Now()
		cp, res, err := e.sync(salesforce.Checkpoint{})
		t.Logf("first sync of 25,000 contacts: %s", time.Since(began))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Done || !res.TableCreated || res.Pages != 13 || res.Records != 25000 || res.Deleted != 0 {
			t.Errorf("result %+v", res)
		}
		if len(e.saves) != 13 {
			t.Fatalf("%d checkpoints saved, want one a page (13)", len(e.saves))
		}
		for i, s := range e.saves {
			last := i == len(e.saves)-1
			if s.Pages != i+1 || s.Records != min(2000*(i+1), 25000) || (s.NextURL == "") != last || s.Object != "Contact" {
				t.Errorf("save %d: %+v", i+1, s)
			}
			if !last && !s.Since.IsZero() {
				t.Errorf("save %d moved Since before the query was done: %+v", i+1, s)
			}
		}
		if want := syStamp(t, e.f, ids[len(ids)-1]); !cp.Since.Equal(want) || cp.NextURL != "" || cp.InFlight() {
			t.Errorf("checkpoint %+v, want Since %s", cp, want)
		}
		if n := e.count(""); n != 25000 {
			t.Fatalf("%d rows", n)
		}
		types := e.columnTypes()
		for col, ty := range map[string]string{"id": "text", "email": "text", "birthdate": "date", "hasoptedoutofemail": "boolean",
			"systemmodstamp": "timestamp with time zone", "is_deleted": "boolean", "mailingcity": "text", "_synced_at": "timestamp with time zone"} {
			if types[col] != ty {
				t.Errorf("column %s: %q, want %s", col, types[col], ty)
			}
		}
		if _, ok := types["mailingaddress"]; ok {
			t.Error("the compound MailingAddress has a column")
		}
		var (
			email, name string
			birth       time.Time
			optOut      bool
			modstamp    time.Time
			synced      time.Time
		)
		if err := e.admin.QueryRow(e.ctx, "SELECT email, name, birthdate, hasoptedoutofemail, systemmodstamp, _synced_at FROM salesforce.contact WHERE id = $1", ids[24999]).
			Scan(&email, &name, &birth, &optOut, &modstamp, &synced); err != nil {
			t.Fatal(err)
		}
		want := sfake.Contact(24999)
		if email != want["Email"] || name != want["FirstName"].(string)+" "+want["LastName"].(string) ||
			!birth.Equal(time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC)) || !optOut || !modstamp.Equal(cp.Since) || !synced.Equal(e.now) {
			t.Errorf("last contact: %s %s %s %v %s %s", email, name, birth, optOut, modstamp, synced)
		}
		var nullBirth, nullOpt bool
		if err := e.admin.QueryRow(e.ctx, "SELECT birthdate IS NULL, hasoptedoutofemail IS NULL FROM salesforce.contact WHERE id = $1", ids[7]).Scan(&nullBirth, &nullOpt); err != nil || !nullBirth || !nullOpt {
			t.Errorf("contact 7: birthdate null %v, opt-out null %v, %v", nullBirth, nullOpt, err)
		}
		e.checkAll(ids)

		// Second sync: three updated, two inserted, an hour later.
		e.f.Advance(time.Hour)
		changed := map[string]bool{}
		for i, k := range []int{3, 12000, 24000} {
			if err := e.f.Update("Contact", ids[k], map[string]any{"Email": fmt.Sprintf("changed%d@example.com", i), "Title": "CTO"}); err != nil {
				t.Fatal(err)
			}
			changed[ids[k]] = true
		}
		for _, id := range e.f.InsertMany("Contact", []map[string]any{sfake.Contact(25000), sfake.Contact(25001)}) {
			ids = append(ids, id)
			changed[id] = true
		}
		before := e.f.Counts()
		e.saves = nil
		cp2, res, err := e.sync(cp)
		if err != nil {
			t.Fatal(err)
		}
		// The five changed records, and the previous high-water mark's record, re-read within
		// the safety margin.
		if res.Records != 6 || res.Pages != 1 || res.TableCreated || res.ColumnsAdded != 0 || len(e.saves) != 1 {
			t.Errorf("second sync: %+v, %d saves", res, len(e.saves))
		}
		if n := e.f.Counts(); n.Query-before.Query != 1 || n.QueryMore != before.QueryMore {
			t.Errorf("second sync queries: %+v then %+v", before, n)
		}
		if n := e.count(""); n != 25002 {
			t.Errorf("%d rows after the second sync", n)
		}
		rows, err := e.admin.Query(e.ctx, "SELECT id FROM salesforce.contact WHERE _synced_at = $1", e.now)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		changed[ids[24999]] = true // re-read: the margin
		if len(got) != len(changed) {
			t.Errorf("second sync wrote %v, want %v", got, changed)
		}
		for _, id := range got {
			if !changed[id] {
				t.Errorf("second sync wrote unchanged %s", id)
			}
		}
		var title string
		if err := e.admin.QueryRow(e.ctx, "SELECT email, title FROM salesforce.contact WHERE id = $1", ids[12000]).Scan(&email, &title); err != nil || email != "changed1@example.com" || title != "CTO" {
			t.Errorf("updated contact: %s %s %v", email, title, err)
		}
		if want := syStamp(t, e.f, ids[len(ids)-1]); !cp2.Since.Equal(want) {
			t.Errorf("Since %s, want %s", cp2.Since, want)
		}
		e.checkAll(ids)

		// Third sync: a deletion.
		e.f.Advance(time.Hour)
		if err := e.f.Delete("Contact", ids[100]); err != nil {
			t.Fatal(err)
		}
		_, res, err = e.sync(cp2)
		if err != nil {
			t.Fatal(err)
		}
		// The deletion, and the second sync's five changes (within a minute of its high-water
		// mark), re-read.
		if res.Deleted != 1 || res.Records != 6 {
			t.Errorf("third sync: %+v", res)
		}
		var deleted bool
		if err := e.admin.QueryRow(e.ctx, "SELECT is_deleted, email FROM salesforce.contact WHERE id = $1", ids[100]).Scan(&deleted, &email); err != nil || !deleted || email != sfake.Contact(100)["Email"] {
			t.Errorf("deleted contact: is_deleted %v, email %s, %v", deleted, email, err)
		}
		if n, d := e.count(""), e.count("is_deleted"); n != 25002 || d != 1 {
			t.Errorf("%d rows, %d deleted", n, d)
		}
	})

	// A rate-limit answer mid-sync stops with the last saved checkpoint; the next run resumes
	// from it (queryMore on the saved locator, no new query) and ends with every row once.
	t.Run("rate_limit_resumes", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t, pg, sfake.Options{})
		ids := e.seed(25000)
		// API calls: 1 describe, 2 queryAll (page 1), 3 and 4 queryMore (pages 2, 3), 5 refused.
		e.f.RateLimitCall(5)
		cp, res, err := e.sync(salesforce.Checkpoint{})
		if !errors.Is(err, salesforce.ErrRateLimited) {
			t.Fatalf("got %v, want ErrRateLimited", err)
		}
		if !strings.Contains(err.Error(), "resumes from its checkpoint") {
			t.Errorf("message: %v", err)
		}
		if len(e.saves) != 3 || cp != e.lastSaved() || cp.Pages != 3 || cp.Records != 6000 || !cp.InFlight() || !cp.Since.IsZero() || res.Done || res.Pages != 3 {
			t.Fatalf("after the rate limit: checkpoint %+v, result %+v, %d saves", cp, res, len(e.saves))
		}
		if n := e.count(""); n != 6000 {
			t.Errorf("%d rows after three pages", n)
		}
		before := e.f.Counts()
		began := time.Now()
		cp, res, err = e.sync(cp)
		t.Logf("resumed sync of 10 pages: %s", time.Since(began))
		if err != nil {
			t.Fatal(err)
		}
		after := e.f.Counts()
		if after.Query != before.Query || after.QueryMore-before.QueryMore != 10 {
			t.Errorf("the resumed run made %d queries and %d queryMore calls, want 0 and 10", after.Query-before.Query, after.QueryMore-before.QueryMore)
		}
		if !res.Resumed || res.Restarted || res.Pages != 10 || res.Records != 19000 || cp.Pages != 13 || cp.Records != 25000 || cp.InFlight() {
			t.Errorf("resumed: checkpoint %+v, result %+v", cp, res)
		}
		if want := syStamp(t, e.f, ids[len(ids)-1]); !cp.Since.Equal(want) {
			t.Errorf("Since %s, want %s", cp.Since, want)
		}
		e.checkAll(ids)
	})

	// A process dying after writing page 4 but before its checkpoint is stored: the rerun from
	// the last stored checkpoint writes page 4 again and ends with every row once, right.
	t.Run("crash_between_page_and_checkpoint", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t, pg, sfake.Options{})
		ids := e.seed(25000)
		crash := errors.New("the process died")
		e.onSave = func(n int, _ salesforce.Checkpoint) error {
			if n == 4 {
				return crash
			}
			return nil
		}
		cp, res, err := e.sync(salesforce.Checkpoint{})
		if !errors.Is(err, crash) || res.Pages != 4 {
			t.Fatalf("got %v", err)
		}
		if cp != e.lastSaved() || cp.Pages != 3 || len(e.saves) != 3 {
			t.Fatalf("checkpoint %+v, %d saves", cp, len(e.saves))
		}
		if n := e.count(""); n != 8000 {
			t.Errorf("%d rows: page 4 should have landed", n)
		}
		e.onSave = nil
		cp, res, err = e.sync(cp)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Resumed || res.Pages != 10 || cp.Pages != 13 || cp.Records != 25000 {
			t.Errorf("rerun: checkpoint %+v, result %+v", cp, res)
		}
		e.checkAll(ids)
		// Page 4 was written again by the rerun.
		var synced time.Time
		if err := e.admin.QueryRow(e.ctx, "SELECT _synced_at FROM salesforce.contact WHERE id = $1", ids[7000]).Scan(&synced); err != nil || !synced.Equal(e.now) {
			t.Errorf("page 4's contact synced at %s, want %s (%v)", synced, e.now, err)
		}
		e.f.Advance(time.Hour)
		if _, res, err = e.sync(cp); err != nil || res.Records != 1 {
			t.Fatalf("next sync: %+v %v", res, err)
		}
		e.checkAll(ids)
	})

	// An expired session refreshes once and the sync goes on.
	t.Run("expired_session_refreshes_once", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t, pg, sfake.Options{BatchSize: 200})
		ids := e.seed(1000)
		e.onSave = func(n int, _ salesforce.Checkpoint) error {
			if n == 2 {
				e.f.ExpireAccessTokens()
			}
			return nil
		}
		cp, res, err := e.sync(salesforce.Checkpoint{})
		if err != nil {
			t.Fatal(err)
		}
		if n := e.f.Counts(); n.TokenRefresh != 1 || n.Unauthorized != 1 {
			t.Errorf("counts %+v: want one refresh", n)
		}
		if !res.Done || res.Pages != 5 || cp.Records != 1000 {
			t.Errorf("checkpoint %+v, result %+v", cp, res)
		}
		e.checkAll(ids)
	})

	// A revoked grant stops the sync with ErrReauthorize and writes nothing more.
	t.Run("revoked_grant_reauthorize", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t, pg, sfake.Options{BatchSize: 200})
		e.seed(1000)
		e.onSave = func(n int, _ salesforce.Checkpoint) error {
			if n == 2 {
				e.f.RevokeRefreshTokens()
			}
			return nil
		}
		cp, _, err := e.sync(salesforce.Checkpoint{})
		if !errors.Is(err, salesforce.ErrReauthorize) || salesforce.KindOf(err) != salesforce.KindReauthorize {
			t.Fatalf("got %v, want ErrReauthorize", err)
		}
		if len(e.saves) != 2 || cp != e.lastSaved() || cp.Pages != 2 {
			t.Errorf("checkpoint %+v, %d saves", cp, len(e.saves))
		}
		if n := e.count(""); n != 400 {
			t.Errorf("%d rows, want the two pages before the revocation", n)
		}
		// A later run fails at once (describe) and writes nothing either.
		if _, _, err := e.sync(cp); !errors.Is(err, salesforce.ErrReauthorize) {
			t.Errorf("rerun: %v", err)
		}
		if n := e.count(""); n != 400 || len(e.saves) != 2 {
			t.Errorf("rerun wrote: %d rows, %d saves", n, len(e.saves))
		}
	})

	// A field added in Salesforce adds a column on the next sync; rows already there have NULL
	// in it.
	t.Run("new_field_adds_column", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t, pg, sfake.Options{BatchSize: 200})
		ids := e.seed(500)
		cp, _, err := e.sync(salesforce.Checkpoint{})
		if err != nil {
			t.Fatal(err)
		}
		for _, fl := range []salesforce.Field{
			{Name: "Loyalty_Tier__c", Type: "picklist", Custom: true, Nillable: true},
			{Name: "Lifetime_Value__c", Type: "currency", Custom: true, Nillable: true},
			{Name: "Photo__c", Type: "base64", Custom: true, Nillable: true},
		} {
			if err := e.f.AddField("Contact", fl); err != nil {
				t.Fatal(err)
			}
		}
		e.f.Advance(time.Hour)
		if err := e.f.Update("Contact", ids[42], map[string]any{"Loyalty_Tier__c": "Gold", "Lifetime_Value__c": 1234.5}); err != nil {
			t.Fatal(err)
		}
		_, res, err := e.sync(cp)
		if err != nil {
			t.Fatal(err)
		}
		if res.ColumnsAdded != 2 || res.Records != 2 {
			t.Errorf("result %+v", res)
		}
		types := e.columnTypes()
		if types["loyalty_tier__c"] != "text" || types["lifetime_value__c"] != "double precision" {
			t.Errorf("new columns: %v", types)
		}
		if _, ok := types["photo__c"]; ok {
			t.Error("a base64 field got a column")
		}
		if n := e.count("loyalty_tier__c IS NULL AND lifetime_value__c IS NULL"); n != 499 {
			t.Errorf("%d rows with NULL in the new columns, want 499", n)
		}
		var tier string
		var value float64
		if err := e.admin.QueryRow(e.ctx, "SELECT loyalty_tier__c, lifetime_value__c FROM salesforce.contact WHERE id = $1", ids[42]).Scan(&tier, &value); err != nil || tier != "Gold" || value != 1234.5 {
			t.Errorf("updated contact: %s %v %v", tier, value, err)
		}
	})

	// A query refused for permissions says the user needs View All Records.
	t.Run("permission", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t, pg, sfake.Options{BatchSize: 200})
		e.seed(10)
		e.f.DenyQueries("Contact")
		cp, _, err := e.sync(salesforce.Checkpoint{})
		if !errors.Is(err, salesforce.ErrPermission) || !strings.Contains(err.Error(), "View All Records") || !strings.Contains(err.Error(), "Contact") {
			t.Fatalf("got %v", err)
		}
		if len(e.saves) != 0 || cp != (salesforce.Checkpoint{Object: "Contact"}) {
			t.Errorf("checkpoint %+v, %d saves", cp, len(e.saves))
		}
		if n := e.count(""); n != 0 {
			t.Errorf("%d rows", n)
		}
	})

	// A query locator Salesforce no longer knows (INVALID_QUERY_LOCATOR): the query runs again
	// from Since, and the rows land once.
	t.Run("expired_locator_restarts", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t, pg, sfake.Options{BatchSize: 200})
		ids := e.seed(1000)
		e.f.RateLimitCall(4) // describe, page 1, page 2, refused
		cp, _, err := e.sync(salesforce.Checkpoint{})
		if !errors.Is(err, salesforce.ErrRateLimited) || cp.Pages != 2 || !cp.InFlight() {
			t.Fatalf("%+v %v", cp, err)
		}
		e.f.ExpireQueryLocators()
		before := e.f.Counts()
		cp, res, err := e.sync(cp)
		if err != nil {
			t.Fatal(err)
		}
		after := e.f.Counts()
		if !res.Restarted || !res.Done || res.Pages != 5 || cp.Pages != 5 || cp.Records != 1000 || after.Query-before.Query != 1 {
			t.Errorf("checkpoint %+v, result %+v, counts %+v → %+v", cp, res, before, after)
		}
		if want := syStamp(t, e.f, ids[len(ids)-1]); !cp.Since.Equal(want) {
			t.Errorf("Since %s, want %s", cp.Since, want)
		}
		e.checkAll(ids)
	})
}

func TestSyncObjectRefusesBadInput(t *testing.T) {
	f := sfake.New(t, sfake.Options{})
	c, err := rest.New(rest.Config{InstanceURL: f.InstanceURL(), AccessToken: "x", HTTP: f.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := salesforce.SyncObject(context.Background(), c, nil, sqlgen.Postgres, "Contact; DROP", salesforce.Checkpoint{}, nil, nil); err == nil {
		t.Error("an invalid object name was accepted")
	}
	if _, _, err := salesforce.SyncObject(context.Background(), c, nil, sqlgen.Postgres, "Contact", salesforce.Checkpoint{Object: "Lead"}, nil, nil); err == nil {
		t.Error("a Lead checkpoint was accepted for Contact")
	}
	if f.Counts().API != 0 {
		t.Error("Salesforce was called")
	}
}

func TestCheckpointJSON(t *testing.T) {
	cp := salesforce.Checkpoint{Object: "Contact", Since: time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC),
		NextURL: "/services/data/v58.0/query/01gX-2000", QueryStarted: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), Pages: 1, Records: 2000}
	b, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	var back salesforce.Checkpoint
	if err := json.Unmarshal(b, &back); err != nil || back != cp {
		t.Fatalf("%s → %+v %v", b, back, err)
	}
	if strings.Contains(string(b), `"seen"`) {
		t.Errorf("a zero Seen is written: %s", b)
	}
	b, _ = json.Marshal(salesforce.Checkpoint{Object: "Lead"})
	if string(b) != `{"object":"Lead","pages":0,"records":0,"deleted":0}` {
		t.Errorf("zero checkpoint: %s", b)
	}
}
