package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/localstack"
	"github.com/unifiedprofiles/up/shared/testclock"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

// Step 3 of the guided setup, black-box over HTTP against the local stack's handlers, with
// its S3 endpoint so that CSV uploads go the way a browser sends them.

// newStep3Stack is newTrackingStack with the local S3 endpoint served too.
func newStep3Stack(t *testing.T) *trEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	st, err := localstack.Open(localstack.Config{DataDir: t.TempDir(), OperatorTokenHash: token.Hash(trOperator), Now: c.Now,
		S3URL: "http://" + ln.Addr().String(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewServer(st.Handler)
	t.Cleanup(srv.Close)
	s3 := httptest.NewUnstartedServer(st.S3Handler)
	s3.Listener.Close()
	s3.Listener = ln // the address presigned POSTs name
	s3.Start()
	t.Cleanup(s3.Close)
	tn := workspacetest.New(t, st.Workspaces, trOperator)
	return &trEnv{t: t, base: srv.URL, clock: c, stack: st, tenant: tn, ws: tn.ID(), wsTok: tn.Token, space: tn.SpaceID()}
}

func step3Path(ws string) string { return "/v1/workspaces/" + ws + "/setup/identifiers-and-traits" }

// step3 is the body of GET …/setup/identifiers-and-traits.
type step3 struct {
	SpaceID     string `json:"space_id"`
	Status      string `json:"status"`
	Identifiers []struct {
		Type    string   `json:"type"`
		Custom  bool     `json:"custom"`
		Keys    []string `json:"keys"`
		Limit   int      `json:"limit"`
		Default *bool    `json:"default"` // a pointer: present on every identifier
	} `json:"identifiers"`
	Seen struct {
		Identifiers map[string]int `json:"identifiers"`
		Traits      map[string]int `json:"traits"`
	} `json:"seen"`
	ComputedTraits    []json.RawMessage `json:"computed_traits"`
	AvailableDefaults []string          `json:"available_defaults"`
}

func (e *trEnv) step3(query string) step3 {
	e.t.Helper()
	r := e.admin("GET", step3Path(e.ws)+query)
	if r.status != 200 {
		e.t.Fatalf("GET step 3: %d %s", r.status, r.raw)
	}
	var out step3
	if err := json.Unmarshal([]byte(r.raw), &out); err != nil {
		e.t.Fatal(err)
	}
	// The lists and maps are always there, never null: a page can render them as they are.
	for what, missing := range map[string]bool{
		"identifiers": out.Identifiers == nil, "seen.identifiers": out.Seen.Identifiers == nil,
		"seen.traits": out.Seen.Traits == nil, "computed_traits": out.ComputedTraits == nil,
	} {
		if missing {
			e.t.Fatalf("%s is null or absent: %s", what, r.raw)
		}
	}
	return out
}

// workspaceStep is step 3's status as GET /v1/workspaces/{ws} shows it.
func (e *trEnv) workspaceStep() string {
	e.t.Helper()
	r := e.admin("GET", "/v1/workspaces/"+e.ws)
	steps, _ := r.body["setup"].(map[string]any)["steps"].(map[string]any)
	st, _ := steps[workspace.StepIdentifiersAndTraits].(map[string]any)
	return fmt.Sprint(st["status"])
}

func (e *trEnv) putIdentity(space, body string) trResp {
	e.t.Helper()
	return e.do("PUT", "/v1/workspaces/"+e.ws+"/spaces/"+space+"/identity", []byte(body), map[string]string{"Authorization": "Bearer " + e.wsTok})
}

// The status goes not_started → in_progress (identifiers saved) → complete (traits saved),
// and the workspace's own view agrees at each point.
func TestStep3Status(t *testing.T) {
	t.Parallel()
	e := newStep3Stack(t)
	got := e.step3("")
	if got.Status != workspace.StatusNotStarted || got.SpaceID != e.space || len(got.Identifiers) != 11 ||
		len(got.Seen.Identifiers)+len(got.Seen.Traits)+len(got.ComputedTraits) != 0 {
		t.Fatalf("fresh workspace: %+v", got)
	}
	for _, id := range got.Identifiers {
		if id.Default == nil || !*id.Default || id.Custom {
			t.Fatalf("the defaults: %+v", got.Identifiers)
		}
	}
	if got.Identifiers[0].Type != "user_id" || got.Identifiers[1].Type != "email" {
		t.Errorf("not in priority order, as the identity GET shows them: %+v", got.Identifiers)
	}
	if ws := e.workspaceStep(); ws != workspace.StatusNotStarted {
		t.Fatalf("workspace view: %s", ws)
	}

	// A refused save is not a save.
	if r := e.putIdentity(e.space, `{"identifiers":[]}`); r.status != 400 {
		t.Fatalf("empty identifiers: %d %s", r.status, r.raw)
	}
	if got := e.step3(""); got.Status != workspace.StatusNotStarted {
		t.Fatalf("after a refused PUT: %s", got.Status)
	}

	if r := e.putIdentity(e.space, `{"identifiers":[{"type":"user_id","limit":1,"window":"ever","priority":1}]}`); r.status != 200 {
		t.Fatalf("PUT identity: %d %s", r.status, r.raw)
	}
	if got := e.step3(""); got.Status != workspace.StatusInProgress || len(got.Identifiers) != 1 {
		t.Fatalf("after PUT identity: %+v", got)
	}
	if ws := e.workspaceStep(); ws != workspace.StatusInProgress {
		t.Fatalf("workspace view after PUT identity: %s", ws)
	}

	if got := e.step3(""); len(got.AvailableDefaults) != 10 || slices.Contains(got.AvailableDefaults, "user_id") {
		t.Fatalf("available defaults with only user_id in use: %v", got.AvailableDefaults)
	}

	// A refused computed trait is not a save; a created one is.
	traitsPath := "/v1/workspaces/" + e.ws + "/spaces/" + e.space + "/computed-traits"
	auth := map[string]string{"Authorization": "Bearer " + e.wsTok}
	if r := e.do("POST", traitsPath, []byte(`{"preset":"nope"}`), auth); r.status != 400 {
		t.Fatalf("bad preset: %d %s", r.status, r.raw)
	}
	if got := e.step3(""); got.Status != workspace.StatusInProgress {
		t.Fatalf("after a refused trait: %s", got.Status)
	}
	if r := e.do("POST", traitsPath, []byte(`{"preset":"total_inbounds"}`), auth); r.status != 201 {
		t.Fatalf("create a trait: %d %s", r.status, r.raw)
	}
	if got := e.step3(""); got.Status != workspace.StatusComplete || len(got.ComputedTraits) != 1 {
		t.Fatalf("after traits: %+v", got)
	}
	if ws := e.workspaceStep(); ws != workspace.StatusComplete {
		t.Fatalf("workspace view after traits: %s", ws)
	}
}

// uploadCSV uploads file as a browser does (request, presigned POST) and waits for it.
func (e *trEnv) uploadCSV(file string) {
	e.t.Helper()
	r := e.do("POST", "/v1/workspaces/"+e.ws+"/csv/uploads", fmt.Appendf(nil, `{"filename":"people.csv","size":%d}`, len(file)),
		map[string]string{"Authorization": "Bearer " + e.wsTok})
	if r.status != 201 {
		e.t.Fatalf("request the upload: %d %s", r.status, r.raw)
	}
	post := r.body["upload"].(map[string]any)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range post["fields"].(map[string]any) {
		mw.WriteField(k, v.(string))
	}
	fw, _ := mw.CreateFormFile("file", "people.csv")
	io.WriteString(fw, file)
	mw.Close()
	res, err := http.Post(post["url"].(string), mw.FormDataContentType(), &body)
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		e.t.Fatalf("POST the file: %s", res.Status)
	}
	id := r.body["id"].(string)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		u := e.admin("GET", "/v1/workspaces/"+e.ws+"/csv/uploads/"+id)
		switch {
		case u.body["status"] == "completed":
			return
		case u.body["status"] == "failed" || time.Now().After(deadline):
			e.t.Fatalf("upload: %s", u.raw)
		}
	}
}

// What the space's sources sent and its CSV uploads carried, summed; another space's apart.
func TestStep3Seen(t *testing.T) {
	t.Parallel()
	e := newStep3Stack(t)
	ctx := context.Background()
	// A custom identifier, defined through the identity API: read from a trait key.
	if r := e.putIdentity(e.space, `{"identifiers":[
		{"type":"user_id","limit":1,"window":"ever","priority":1},
		{"type":"email","limit":5,"window":"weekly","priority":2},
		{"type":"anonymous_id","limit":5,"window":"weekly","priority":3},
		{"type":"phone","custom":true,"keys":["phone"],"limit":5,"window":"weekly","priority":4}]}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	key := e.tenant.Sources[0].WriteKey // flex-unify-server-source, in the first space
	for _, m := range []struct {
		call string
		body map[string]any
	}{
		{"identify", map[string]any{"userId": "u1", "traits": map[string]any{"email": "ada@example.com", "plan": "pro", "phone": "+15550100"}}},
		{"identify", map[string]any{"anonymousId": "a1", "traits": map[string]any{"plan": "free"}, "context": map[string]any{"traits": map[string]any{"company": "Acme"}}}},
		{"track", map[string]any{"userId": "u1", "event": "Order Completed", "properties": map[string]any{"total": 42}}},
	} {
		if r := e.send(key, m.call, m.body); r.status != 200 {
			t.Fatalf("%s: %d %s", m.call, r.status, r.raw)
		}
		e.clock.Add(time.Millisecond)
	}
	got := e.step3("")
	want := struct{ ids, traits map[string]int }{
		map[string]int{"user_id": 2, "email": 1, "anonymous_id": 1, "phone": 1},
		map[string]int{"plan": 2, "company": 1},
	}
	if !maps.Equal(got.Seen.Identifiers, want.ids) || !maps.Equal(got.Seen.Traits, want.traits) {
		t.Fatalf("after tracking: %+v, want %+v", got.Seen, want)
	}

	// A CSV upload adds its summary's rows: phone is the custom identifier's key column.
	e.uploadCSV("user_id,email,phone,plan,first_name\nc1,c1@example.com,+15550200,pro,Ada\nc2,,+15550201,,Grace\n")
	got = e.step3("?space_id=" + e.space) // named explicitly: the same space
	want.ids = map[string]int{"user_id": 4, "email": 2, "anonymous_id": 1, "phone": 3}
	want.traits = map[string]int{"plan": 3, "company": 1, "first_name": 2}
	if !maps.Equal(got.Seen.Identifiers, want.ids) || !maps.Equal(got.Seen.Traits, want.traits) {
		t.Fatalf("after the upload: %+v, want %+v", got.Seen, want)
	}

	// A second space: its own source and identifiers, none of the first space's data.
	sp, err := e.stack.Workspaces.CreateSpace(ctx, e.tenant.Owner, e.ws, "EU")
	if err != nil {
		t.Fatal(err)
	}
	eu, err := e.stack.Workspaces.CreateSource(ctx, e.tenant.Owner, e.ws, workspace.NewSource{Name: "EU", Type: "http", SpaceID: sp.ID})
	if err != nil {
		t.Fatal(err)
	}
	if r := e.send(eu.WriteKey, "identify", map[string]any{"userId": "e1", "traits": map[string]any{"locale": "de"}}); r.status != 200 {
		t.Fatal(r.raw)
	}
	got = e.step3("?space_id=" + sp.ID)
	if got.SpaceID != sp.ID || len(got.Identifiers) != 11 ||
		!maps.Equal(got.Seen.Identifiers, map[string]int{"user_id": 1}) || !maps.Equal(got.Seen.Traits, map[string]int{"locale": 1}) {
		t.Fatalf("second space: %+v", got)
	}
	if first := e.step3(""); first.SpaceID != e.space || first.Seen.Traits["locale"] != 0 {
		t.Fatalf("the second space's message shows in the first: %+v", first.Seen)
	}
}

// Another workspace's token gets 403 on this workspace's step 3; this workspace's token
// naming another workspace's space gets 404; neither answer holds the other's data.
func TestStep3Isolation(t *testing.T) {
	t.Parallel()
	a := newStep3Stack(t)
	b := workspacetest.New(t, a.stack.Workspaces, trOperator)
	if r := a.send(b.Sources[0].WriteKey, "identify", map[string]any{"userId": "b-secret", "traits": map[string]any{"b_only_trait": 1}}); r.status != 200 {
		t.Fatal(r.raw)
	}
	tests := []struct {
		name, path, token string
		status            int
	}{
		{"B's token on A's step", step3Path(a.ws), b.Token, 403},
		{"B's token on A's step, naming A's space", step3Path(a.ws) + "?space_id=" + a.space, b.Token, 403},
		{"A's token naming B's space", step3Path(a.ws) + "?space_id=" + b.SpaceID(), a.wsTok, 404},
		{"A's token on B's step", step3Path(b.ID()), a.wsTok, 403},
		{"an unknown space", step3Path(a.ws) + "?space_id=sp_nope", a.wsTok, 404},
		{"the operator", step3Path(a.ws), trOperator, 403},
		{"no token", step3Path(a.ws), "", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.token != "" {
				hdr["Authorization"] = "Bearer " + tc.token
			}
			r := a.do("GET", tc.path, nil, hdr)
			if r.status != tc.status || errCode(r) == "" {
				t.Fatalf("status %d, want %d with an error envelope: %s", r.status, tc.status, r.raw)
			}
			if strings.Contains(r.raw, "b_only_trait") || strings.Contains(r.raw, "b-secret") {
				t.Fatalf("leaked B's data: %s", r.raw)
			}
		})
	}
	if r := a.do("POST", step3Path(a.ws), nil, map[string]string{"Authorization": "Bearer " + a.wsTok}); r.status != 405 {
		t.Errorf("POST: %d, the step only reads", r.status)
	}
}

// Custom identifiers are created, edited and deleted with PUT …/identity (a full
// replacement), and step 3 shows each state; defaults may be left out (deleted) but not
// redefined as custom.
func TestStep3CustomIdentifierLifecycle(t *testing.T) {
	t.Parallel()
	e := newStep3Stack(t)
	const (
		userID = `{"type":"user_id","limit":1,"window":"ever","priority":1}`
		email  = `{"type":"email","limit":5,"window":"weekly","priority":2}`
	)
	phone := func(limit int) string {
		return fmt.Sprintf(`{"type":"phone","custom":true,"keys":["phone","mobile"],"limit":%d,"window":"annually","priority":3}`, limit)
	}
	steps := []struct {
		name    string
		body    string
		status  int
		types   string // the identifiers step 3 shows afterwards, type:default:limit
		errCode string
	}{
		{"create a custom identifier", `{"identifiers":[` + userID + `,` + email + `,` + phone(5) + `]}`, 200,
			"user_id:true:1 email:true:5 phone:false:5", ""},
		{"edit its limit", `{"identifiers":[` + userID + `,` + email + `,` + phone(20) + `]}`, 200,
			"user_id:true:1 email:true:5 phone:false:20", ""},
		{"delete it", `{"identifiers":[` + userID + `,` + email + `]}`, 200,
			"user_id:true:1 email:true:5", ""},
		// The identity package defines deleting a default as leaving it out: allowed, as long
		// as one identifier remains; it is no longer read from messages.
		{"delete a default (email)", `{"identifiers":[` + userID + `]}`, 200,
			"user_id:true:1", ""},
		{"a default cannot come back as custom", `{"identifiers":[` + userID + `,{"type":"email","custom":true,"keys":["mail"],"limit":5,"window":"weekly","priority":2}]}`, 400,
			"user_id:true:1", "invalid_field"},
		{"nor can an unknown type be a default", `{"identifiers":[` + userID + `,{"type":"phone","limit":5,"window":"weekly","priority":2}]}`, 400,
			"user_id:true:1", "invalid_field"},
		{"deleting every identifier is refused", `{"identifiers":[]}`, 400,
			"user_id:true:1", "invalid_field"},
		{"a default comes back by sending it again", `{"identifiers":[` + userID + `,` + email + `]}`, 200,
			"user_id:true:1 email:true:5", ""},
	}
	for _, s := range steps {
		r := e.putIdentity(e.space, s.body)
		if r.status != s.status || errCode(r) != s.errCode {
			t.Fatalf("%s: %d %s, want %d %s: %s", s.name, r.status, errCode(r), s.status, s.errCode, r.raw)
		}
		var shown []string
		for _, id := range e.step3("").Identifiers {
			shown = append(shown, fmt.Sprintf("%s:%t:%d", id.Type, *id.Default, id.Limit))
		}
		if got := strings.Join(shown, " "); got != s.types {
			t.Fatalf("%s: step 3 shows %q, want %q", s.name, got, s.types)
		}
	}
}
