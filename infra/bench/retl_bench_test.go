package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/unifiedprofiles/up/infra/pgtest"
)

// The Reverse ETL goals (issue 14): the first sync of a 100,000-row model in ≤ 10 s, and an
// incremental sync of 1,000 changed rows among 1,000,000 in ≤ 3 s, on the local stack with
// the test PostgreSQL, from "sync now" to the sync's end (every record applied). Each
// iteration's rows are made before the timer runs.

// retlWarehouse starts PostgreSQL with a role for us and a people table of n rows.
func retlWarehouse(b *testing.B, n int) (*pgtest.Cluster, *pgx.Conn) {
	b.Helper()
	pg := pgtest.Start(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(ctx) })
	for _, s := range []string{
		"CREATE ROLE retl LOGIN PASSWORD 'bench-password'", "GRANT CREATE ON DATABASE postgres TO retl",
		"CREATE TABLE people (id bigint, email text, first_name text, last_name text, plan text, city text, visits integer)",
		fmt.Sprintf("INSERT INTO people SELECT i, 'p' || i || '@example.com', 'Ada', 'Lovelace', 'free', 'London', i %% 50 FROM generate_series(1, %d) i", n),
		"GRANT SELECT ON people TO retl", "ANALYZE people",
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			b.Fatalf("%s: %v", s, err)
		}
	}
	return pg, conn
}

// retlMapping connects a new workspace to the warehouse and maps people into its space,
// synced manually; it returns the path of the mapping and the workspace token.
func retlMapping(b *testing.B, s *server, pg *pgtest.Cluster) (string, string) {
	ws, tok := s.workspace(b)
	var src struct{ ID string }
	json.Unmarshal(s.do(b, "POST", "/v1/workspaces/"+ws+"/sources", tok, `{"name":"Warehouse","type":"postgres"}`, 201), &src)
	base := "/v1/workspaces/" + ws + "/sources/" + src.ID
	var put struct {
		Test struct{ OK bool } `json:"test"`
	}
	json.Unmarshal(s.do(b, "PUT", base+"/warehouse", tok, fmt.Sprintf(`{"host":%q,"port":5432,"database":"postgres","user":"retl","password":"bench-password","ssl_mode":"disable"}`, pg.Socket), 200), &put)
	if !put.Test.OK {
		b.Fatal("the connection test failed")
	}
	var model struct{ ID string }
	json.Unmarshal(s.do(b, "POST", base+"/models", tok, `{"name":"People","sql":"SELECT id, email, first_name, last_name, plan, city, visits FROM people","id_column":"id"}`, 201), &model)
	var mp struct{ ID string }
	json.Unmarshal(s.do(b, "POST", base+"/models/"+model.ID+"/mappings", tok, `{"records":"all","identifiers":{"user_id":"id","email":"email"},
		"traits":{"first_name":"first_name","last_name":"last_name","plan":"plan","city":"city","visits":"visits"},"schedule":{"manual":true}}`, 201), &mp)
	return base + "/models/" + model.ID + "/mappings/" + mp.ID, tok
}

type retlSync struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Failure   string `json:"failure"`
	Extracted struct{ Added, Updated, Deleted int }
	Loaded    struct{ Succeeded, Failed int }
}

// syncNow starts a sync and waits for its end.
func syncNow(b *testing.B, s *server, mapping, tok string) retlSync {
	var sy retlSync
	json.Unmarshal(s.do(b, "POST", mapping+"/syncs", tok, "", 202), &sy)
	for {
		json.Unmarshal(s.do(b, "GET", mapping+"/syncs/"+sy.ID, tok, "", 200), &sy)
		if sy.Status != "in_progress" {
			if sy.Status != "succeeded" {
				b.Fatalf("sync %+v", sy)
			}
			return sy
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func BenchmarkRETLFirstSync100k(b *testing.B) {
	const rows = 100_000
	pg, _ := retlWarehouse(b, rows)
	s := newStack(b)
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		mapping, tok := retlMapping(b, s, pg) // a new workspace: every record is new
		b.StartTimer()
		start := time.Now()
		sy := syncNow(b, s, mapping, tok)
		total += time.Since(start)
		if sy.Loaded.Succeeded != rows {
			b.Fatalf("loaded %+v of %d", sy.Loaded, rows)
		}
	}
	sec := total.Seconds() / float64(b.N)
	b.ReportMetric(sec, "s/sync")
	b.ReportMetric(rows/sec, "rows/s")
}

func BenchmarkRETLIncremental1kOf1M(b *testing.B) {
	const rows, changed = 1_000_000, 1000
	pg, conn := retlWarehouse(b, rows)
	s := newStack(b)
	mapping, tok := retlMapping(b, s, pg)
	first := time.Now()
	syncNow(b, s, mapping, tok)
	b.Logf("first sync of %d rows: %.1f s", rows, time.Since(first).Seconds())
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		if _, err := conn.Exec(context.Background(), fmt.Sprintf("UPDATE people SET visits = visits + 1 WHERE id %% 1000 = %d", i%1000)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		sy := syncNow(b, s, mapping, tok)
		total += time.Since(start)
		if sy.Extracted.Updated != changed || sy.Loaded.Succeeded != changed {
			b.Fatalf("sync %+v, want %d updated", sy, changed)
		}
	}
	sec := total.Seconds() / float64(b.N)
	b.ReportMetric(sec, "s/sync")
	b.ReportMetric(changed/sec, "rows/s")
}
