package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/delivery"
	"github.com/unifiedprofiles/up/shared/delivery/webhook"
)

// received is one request a test receiver saw.
type received struct {
	header http.Header
	body   []byte
}

// receiver is an httptest server that records requests and answers with status and body.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newReceiver(t *testing.T, status int, answer string) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, received{req.Header.Clone(), b})
		r.mu.Unlock()
		if status >= 300 && status < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

func job(id, payload string) delivery.Job {
	return delivery.Job{WorkspaceID: "ws_1", DestinationID: "dst_1", SourceID: "src_1", MessageID: id,
		Type: "track", Payload: json.RawMessage(payload), AcceptedAt: time.Now()}
}

func target(settings map[string]any) delivery.Target { return delivery.Target{Settings: settings} }

// hmacSHA1 is the signature computed independently of the package.
func hmacSHA1(secret string, body []byte) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestSendBodiesHeadersAndSignature(t *testing.T) {
	t.Parallel()
	p1 := `{"messageId":"m1","type":"track","event":"A",  "properties":{"x": 1}}`
	p2 := `{"messageId":"m2","type":"identify"}`
	p3 := `{"messageId":"m3","type":"page","name":"Home"}`
	tests := []struct {
		name     string
		jobs     []delivery.Job
		secret   any // nil: no secret setting
		headers  any
		wantBody string
		wantHdr  map[string]string
	}{
		{name: "single, signed, headers as object",
			jobs: []delivery.Job{job("m1", p1)}, secret: "whsec-top-secret",
			headers:  map[string]any{"Authorization": "Bearer tok-123456", "x-tenant": "acme-tenant"},
			wantBody: p1,
			wantHdr:  map[string]string{"Authorization": "Bearer tok-123456", "X-Tenant": "acme-tenant"}},
		{name: "batch, signed, headers as JSON string",
			jobs: []delivery.Job{job("m1", p1), job("m2", p2), job("m3", p3)}, secret: "whsec-top-secret",
			headers:  `{"Authorization":"Bearer tok-123456"}`,
			wantBody: `{"batch":[` + p1 + `,` + p2 + `,` + p3 + `]}`,
			wantHdr:  map[string]string{"Authorization": "Bearer tok-123456"}},
		{name: "single, no secret",
			jobs: []delivery.Job{job("m2", p2)}, wantBody: p2},
		{name: "empty secret means unsigned",
			jobs: []delivery.Job{job("m2", p2)}, secret: "", wantBody: p2},
		{name: "custom headers cannot override Content-Type or X-Signature",
			jobs: []delivery.Job{job("m1", p1)}, secret: "k",
			headers:  map[string]any{"content-type": "text/plain", "X-SIGNATURE": "forged", "User-Agent": "custom-agent/2"},
			wantBody: p1,
			wantHdr:  map[string]string{"User-Agent": "custom-agent/2"}},
		{name: "no X-Signature forged without a secret",
			jobs: []delivery.Job{job("m2", p2)}, headers: map[string]any{"X-Signature": "forged"}, wantBody: p2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, http.StatusOK, "ok")
			settings := map[string]any{"url": rcv.URL + "/hook?token=abc", "batch_size": 10.0}
			if tc.secret != nil {
				settings["secret"] = tc.secret
			}
			if tc.headers != nil {
				settings["headers"] = tc.headers
			}
			if err := webhook.New(webhook.Options{}).Send(context.Background(), target(settings), tc.jobs); err != nil {
				t.Fatalf("Send: %v", err)
			}
			reqs := rcv.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			got := reqs[0]
			if string(got.body) != tc.wantBody {
				t.Errorf("body = %s\nwant   %s", got.body, tc.wantBody)
			}
			if len(tc.jobs) > 1 {
				var b struct{ Batch []json.RawMessage }
				if err := json.Unmarshal(got.body, &b); err != nil || len(b.Batch) != len(tc.jobs) {
					t.Errorf("batch body does not decode to %d payloads: %v", len(tc.jobs), err)
				}
			}
			if ct := got.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			wantUA := webhook.UserAgent
			if ua, ok := tc.wantHdr["User-Agent"]; ok {
				wantUA = ua
			}
			if ua := got.header.Get("User-Agent"); ua != wantUA {
				t.Errorf("User-Agent = %q, want %q", ua, wantUA)
			}
			for k, v := range tc.wantHdr {
				if g := got.header.Get(k); g != v {
					t.Errorf("header %s = %q, want %q", k, g, v)
				}
			}
			sigs := got.header.Values("X-Signature")
			secret, _ := tc.secret.(string)
			switch {
			case secret == "" && len(sigs) != 0:
				t.Errorf("X-Signature %q sent without a secret", sigs)
			case secret != "" && (len(sigs) != 1 || sigs[0] != hmacSHA1(secret, got.body)):
				t.Errorf("X-Signature = %q, want [%s]", sigs, hmacSHA1(secret, got.body))
			}
		})
	}
}

// closedAddr is an address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestSendClassification(t *testing.T) {
	t.Parallel()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // only then does the server notice the client leaving
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	refused := "http://" + closedAddr(t) + "/hook"

	const (
		ok = iota
		retry
		permanent
	)
	tests := []struct {
		name   string
		status int    // answered by a receiver, when url is empty
		url    string // used as is when set
		want   int
	}{
		{name: "200", status: 200, want: ok},
		{name: "204", status: 204, want: ok},
		{name: "301 not followed", status: 301, want: permanent},
		{name: "400", status: 400, want: permanent},
		{name: "404", status: 404, want: permanent},
		{name: "408", status: 408, want: retry},
		{name: "429", status: 429, want: retry},
		{name: "500", status: 500, want: retry},
		{name: "503", status: 503, want: retry},
		{name: "timeout", url: slow.URL, want: retry},
		{name: "connection refused", url: refused, want: retry},
		{name: "link-local metadata IPv4", url: "http://169.254.169.254/latest/meta-data/", want: permanent},
		{name: "link-local IPv6", url: "http://[fe80::1]:8080/", want: permanent},
		{name: "EC2 metadata IPv6", url: "http://[fd00:ec2::254]/latest/", want: permanent},
		{name: "IPv4-mapped link-local", url: "http://[::ffff:169.254.169.254]/", want: permanent},
		{name: "not a URL", url: "::not a url", want: permanent},
		{name: "not http", url: "ftp://example.com/x", want: permanent},
		{name: "no host", url: "http:///path", want: permanent},
	}
	s := webhook.New(webhook.Options{Timeout: 300 * time.Millisecond})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := tc.url
			var rcv *receiver
			if u == "" {
				rcv = newReceiver(t, tc.status, "answer body")
				u = rcv.URL
			}
			err := s.Send(context.Background(), target(map[string]any{"url": u}), []delivery.Job{job("m1", `{"a":1}`)})
			switch tc.want {
			case ok:
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
			case retry:
				if err == nil || delivery.IsPermanent(err) {
					t.Fatalf("err = %v, want a retryable error", err)
				}
			case permanent:
				if err == nil || !delivery.IsPermanent(err) {
					t.Fatalf("err = %v, want a permanent error", err)
				}
			}
			if rcv != nil {
				if n := len(rcv.requests()); n != 1 {
					t.Errorf("receiver saw %d requests, want 1 (redirects must not be followed)", n)
				}
				if tc.want != ok && !strings.Contains(err.Error(), http.StatusText(tc.status)) {
					t.Errorf("error %q does not name the status", err)
				}
			}
		})
	}
}

func TestSendMissingURL(t *testing.T) {
	t.Parallel()
	for _, settings := range []map[string]any{nil, {}, {"url": ""}, {"url": 42.0}} {
		err := webhook.New(webhook.Options{}).Send(context.Background(), target(settings), []delivery.Job{job("m1", `{}`)})
		if !delivery.IsPermanent(err) {
			t.Errorf("settings %v: err = %v, want permanent", settings, err)
		}
	}
}

func TestSendNoJobsSendsNothing(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 200, "")
	if err := webhook.New(webhook.Options{}).Send(context.Background(), target(map[string]any{"url": rcv.URL}), nil); err != nil {
		t.Fatal(err)
	}
	if n := len(rcv.requests()); n != 0 {
		t.Errorf("%d requests for no jobs", n)
	}
}

// TestErrorsHideSecrets: a receiver that echoes everything it got (headers, signature, URL)
// into its error answer must not make the secret or a header value appear in the error,
// which is shown to users and stored with dead-lettered jobs.
func TestErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	const (
		secret   = "whsec-do-not-show"
		token    = "Bearer tok-do-not-show"
		tenant   = "tenant-value-do-not-show"
		urlToken = "querytoken-do-not-show"
	)
	for _, status := range []int{400, 401, 500, 503} {
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			// The secret first, so a 200-byte cut of the raw answer would keep it.
			io.WriteString(w, secret+" "+r.Header.Get("Authorization")+" "+r.Header.Get("X-Tenant")+" "+r.URL.String())
		}))
		defer echo.Close()
		for _, u := range []string{echo.URL + "/hook?key=" + urlToken, "http://" + closedAddr(t) + "/hook?key=" + urlToken} {
			settings := map[string]any{"url": u, "secret": secret,
				"headers": map[string]any{"Authorization": token, "X-Tenant": tenant}}
			err := webhook.New(webhook.Options{}).Send(context.Background(), target(settings), []delivery.Job{job("m1", `{"a":1}`)})
			if err == nil {
				t.Fatalf("status %d: no error", status)
			}
			for _, s := range []string{secret, token, "tok-do-not-show", tenant, urlToken} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("status %d: error %q contains %q", status, err, s)
				}
			}
		}
	}
}

// TestLongAnswerIsCut: an error answer of a megabyte gives a short message, and the sender
// does not wait for the whole of it.
func TestLongAnswerIsCut(t *testing.T) {
	t.Parallel()
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		w.Write([]byte(strings.Repeat("x", 1<<20)))
	}))
	t.Cleanup(big.Close)
	err := webhook.New(webhook.Options{}).Send(context.Background(), target(map[string]any{"url": big.URL}), []delivery.Job{job("m1", `{}`)})
	if err == nil || delivery.IsPermanent(err) {
		t.Fatalf("err = %v, want retryable", err)
	}
	if n := strings.Count(err.Error(), "x"); n > 200 {
		t.Errorf("error quotes %d bytes of the answer, want at most 200", n)
	}
}

// TestClientOptionNoRedirects: a client handed in still does not follow redirects.
func TestClientOptionNoRedirects(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, http.StatusFound, "")
	s := webhook.New(webhook.Options{Client: &http.Client{}})
	err := s.Send(context.Background(), target(map[string]any{"url": rcv.URL}), []delivery.Job{job("m1", `{}`)})
	if !delivery.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestParseSettings(t *testing.T) {
	t.Parallel()
	base := func(kv ...any) map[string]any {
		m := map[string]any{"url": "https://hooks.example.com/in"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name      string
		settings  map[string]any
		wantErr   bool
		wantBatch int
		wantHdrs  map[string]string
	}{
		{name: "defaults", settings: base(), wantBatch: 1},
		{name: "batch 100", settings: base("batch_size", 100.0), wantBatch: 100},
		{name: "batch int", settings: base("batch_size", 7), wantBatch: 7},
		{name: "batch json.Number", settings: base("batch_size", json.Number("5")), wantBatch: 5},
		{name: "batch 0", settings: base("batch_size", 0.0), wantErr: true},
		{name: "batch 101", settings: base("batch_size", 101.0), wantErr: true},
		{name: "batch fraction", settings: base("batch_size", 2.5), wantErr: true},
		{name: "batch string", settings: base("batch_size", "10"), wantErr: true},
		{name: "secret not string", settings: base("secret", 12.0), wantErr: true},
		{name: "headers object", settings: base("headers", map[string]any{"x-a": "1"}), wantBatch: 1,
			wantHdrs: map[string]string{"X-A": "1"}},
		{name: "headers JSON", settings: base("headers", `{"x-a":"1","X-B":"two"}`), wantBatch: 1,
			wantHdrs: map[string]string{"X-A": "1", "X-B": "two"}},
		{name: "headers empty string", settings: base("headers", ""), wantBatch: 1, wantHdrs: nil},
		{name: "reserved headers dropped", settings: base("headers", map[string]any{"Host": "evil", "Content-Length": "1", "X-Signature": "f"}),
			wantBatch: 1, wantHdrs: map[string]string{}},
		{name: "headers JSON array", settings: base("headers", `["a"]`), wantErr: true},
		{name: "headers bad JSON", settings: base("headers", `{"a":`), wantErr: true},
		{name: "header number value", settings: base("headers", map[string]any{"X-A": 1.0}), wantErr: true},
		{name: "header CRLF value", settings: base("headers", map[string]any{"X-A": "a\r\nX-Evil: 1"}), wantErr: true},
		{name: "header bad name", settings: base("headers", map[string]any{"X A": "1"}), wantErr: true},
		{name: "headers list", settings: base("headers", []any{"a"}), wantErr: true},
		{name: "link-local literal", settings: map[string]any{"url": "http://169.254.169.254/"}, wantErr: true},
		{name: "loopback allowed", settings: map[string]any{"url": "http://127.0.0.1:8080/"}, wantBatch: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := webhook.ParseSettings(tc.settings)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), "X-Evil") || strings.Contains(err.Error(), "evil") {
					t.Errorf("error %q quotes a header value", err)
				}
				return
			}
			if got.BatchSize != tc.wantBatch {
				t.Errorf("BatchSize = %d, want %d", got.BatchSize, tc.wantBatch)
			}
			if tc.wantHdrs != nil || got.Headers != nil {
				if len(got.Headers) != len(tc.wantHdrs) {
					t.Errorf("Headers = %v, want %v", got.Headers, tc.wantHdrs)
				}
				for k, v := range tc.wantHdrs {
					if got.Headers[k] != v {
						t.Errorf("Headers[%s] = %q, want %q", k, got.Headers[k], v)
					}
				}
			}
		})
	}
}

func TestSignMatchesHMAC(t *testing.T) {
	t.Parallel()
	body := []byte(`{"batch":[{"a":1}]}`)
	if got, want := webhook.Sign("key", body), hmacSHA1("key", body); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	// A published HMAC-SHA1 test vector (RFC 2202 case 2).
	if got := webhook.Sign("Jefe", []byte("what do ya want for nothing?")); got != "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79" {
		t.Errorf("Sign(RFC 2202 #2) = %s", got)
	}
}

// FuzzParseHeaders: the "headers" JSON string never panics the parser, and whatever it
// accepts is safe to send: valid names, no control characters in values, nothing reserved.
func FuzzParseHeaders(f *testing.F) {
	for _, s := range []string{`{}`, `{"X-A":"1"}`, `{"a b":"1"}`, `{"X":"a\r\nb"}`, `{"X":1}`, `[]`, `null`, `""`, `{"content-type":"x","x-signature":"y"}`, "{\"X\":\"\\u0000\"}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		set, err := webhook.ParseSettings(map[string]any{"url": "http://127.0.0.1/", "headers": s})
		if err != nil {
			return
		}
		for k, v := range set.Headers {
			if k == "" || k != http.CanonicalHeaderKey(k) || strings.ContainsAny(k, " \t\r\n:\x00") {
				t.Errorf("accepted header name %q", k)
			}
			if strings.ContainsAny(v, "\r\n\x00") {
				t.Errorf("accepted header value %q", v)
			}
			if k == "Content-Type" || k == "X-Signature" || k == "Host" {
				t.Errorf("reserved header %q kept", k)
			}
		}
		req, _ := http.NewRequest("POST", "http://127.0.0.1/", nil)
		for k, v := range set.Headers {
			req.Header.Set(k, v)
		}
		if err := req.Header.Write(io.Discard); err != nil {
			t.Errorf("accepted headers net/http cannot write: %v", err)
		}
	})
}
