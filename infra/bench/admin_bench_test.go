// Package bench holds the end-to-end benchmarks `make bench` runs: real HTTP on loopback
// against the local stack (embedded store, fsync on every commit), and the setup function's
// bootstrap under the Lambda Runtime Interface Emulator. Figures go to BENCHMARKS.md.
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/localstack"
	"github.com/unifiedprofiles/up/shared/token"
)

const operator = "upo_bench"

type server struct {
	base   string
	s3     string // the local S3 endpoint (CSV uploads)
	client *http.Client
	stack  *localstack.Stack // for seeding data through the ingest entry point
}

func newStack(b *testing.B) *server {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s3url := "http://" + ln.Addr().String()
	st, err := localstack.Open(localstack.Config{
		DataDir: b.TempDir(), OperatorTokenHash: token.Hash(operator),
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), S3URL: s3url,
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(st.Handler)
	s3srv := httptest.NewUnstartedServer(st.S3Handler)
	s3srv.Listener.Close()
	s3srv.Listener = ln
	s3srv.Start()
	b.Cleanup(func() { srv.Close(); s3srv.Close(); st.Close() })
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &server{base: srv.URL, s3: s3url, client: &http.Client{Transport: tr}, stack: st}
}

func (s *server) do(b *testing.B, method, path, tok, body string, want int) []byte {
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := s.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		b.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, out)
	}
	return out
}

var accounts struct {
	sync.Mutex
	n int
}

// workspace creates a fresh workspace and returns its id and token.
func (s *server) workspace(b *testing.B) (string, string) {
	accounts.Lock()
	accounts.n++
	sid := fmt.Sprintf("AC%032x", accounts.n)
	accounts.Unlock()
	s.do(b, "POST", "/v1/beta/accounts", operator, `{"account_sid":"`+sid+`"}`, 201)
	var ws struct{ ID, Token string }
	json.Unmarshal(s.do(b, "POST", "/v1/workspaces", operator, `{"name":"Bench","account_sid":"`+sid+`"}`, 201), &ws)
	return ws.ID, ws.Token
}

func (s *server) createDeleteSource(b *testing.B, ws, tok string) {
	var src struct{ ID string }
	json.Unmarshal(s.do(b, "POST", "/v1/workspaces/"+ws+"/sources", tok, `{"name":"Site","type":"javascript"}`, 201), &src)
	s.do(b, "DELETE", "/v1/workspaces/"+ws+"/sources/"+src.ID, tok, "", 204)
}

// latencies records one duration per operation and reports percentiles.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	slices.Sort(l.d)
	if len(l.d) == 0 {
		return
	}
	at := func(p float64) float64 {
		return float64(l.d[min(len(l.d)-1, int(float64(len(l.d))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.95), "p95-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// waitTurn paces a load: request i starts no earlier than start + i·interval.
func waitTurn(start time.Time, i int64, interval time.Duration) {
	if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
		time.Sleep(d)
	}
}

// Reading a workspace (one Get, two Queries) from one client.
func BenchmarkAdminGetWorkspace(b *testing.B) {
	s := newStack(b)
	ws, tok := s.workspace(b)
	var l latencies
	for b.Loop() {
		start := time.Now()
		s.do(b, "GET", "/v1/workspaces/"+ws, tok, "", 200)
		l.add(time.Since(start))
	}
	l.report(b)
}

// The same read from 16 concurrent clients.
func BenchmarkAdminGetWorkspaceParallel16(b *testing.B) {
	s := newStack(b)
	ws, tok := s.workspace(b)
	var l latencies
	b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 clients
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			s.do(b, "GET", "/v1/workspaces/"+ws, tok, "", 200)
			l.add(time.Since(start))
		}
	})
	l.report(b)
}

// Creating then deleting a source: two committed transactions (counter, source, write-key
// index, version check), each fsynced.
func BenchmarkAdminCreateDeleteSource(b *testing.B) {
	s := newStack(b)
	ws, tok := s.workspace(b)
	var l latencies
	for b.Loop() {
		start := time.Now()
		s.createDeleteSource(b, ws, tok)
		l.add(time.Since(start))
	}
	l.report(b)
}

// Writes from 16 concurrent clients, each on its own workspace: db.Batch groups the commits.
func BenchmarkAdminCreateDeleteSourceParallel16(b *testing.B) {
	s := newStack(b)
	var l latencies
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		ws, tok := s.workspace(b)
		for pb.Next() {
			start := time.Now()
			s.createDeleteSource(b, ws, tok)
			l.add(time.Since(start))
		}
	})
	l.report(b)
}

// The whole onboarding: accept, create workspace (one 10-item transaction), choose a data
// source, add a source.
func BenchmarkAdminOnboarding(b *testing.B) {
	s := newStack(b)
	var l latencies
	for b.Loop() {
		start := time.Now()
		ws, tok := s.workspace(b)
		s.do(b, "PUT", "/v1/workspaces/"+ws+"/setup/data-source", tok, `{"kind":"website"}`, 200)
		s.do(b, "POST", "/v1/workspaces/"+ws+"/sources", tok, `{"name":"Site","type":"javascript"}`, 201)
		l.add(time.Since(start))
	}
	l.report(b)
}
