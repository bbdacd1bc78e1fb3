package zz

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/unifiedprofiles/up/infra/pgtest"
	"github.com/unifiedprofiles/up/shared/warehouse/sqlgen"
)

func TestBench(t *testing.T) {
	ctx := context.Background()
	c := pgtest.Start(t)
	conn, err := pgx.Connect(ctx, c.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	d := sqlgen.Postgres
	must := func(s string) {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%v: %s", err, s)
		}
	}
	must("CREATE TABLE src AS SELECT 'id' || g AS id, 'user' || g || '@example.com' AS email, g AS n, md5(g::text) AS note FROM generate_series(1,1000000) g")
	must("ANALYZE src")
	must(d.CreateSchema())
	must(d.CreateState("m"))
	cols := []string{"id", "email", "n", "note"}
	old := os.Getenv("OLD") != ""
	_ = old
	for i := 0; i < 3; i++ {
		must(d.DropTable("diff"))
		st := time.Now()
		must(d.Diff("diff", "SELECT * FROM src", "id", sqlgen.StateTable("m"), cols))
		t.Logf("diff vs empty state: %v", time.Since(st))
	}
	must(`INSERT INTO "__unify_retl"."state_m" (record_id, checksum, attempts) SELECT __unify_id, __unify_checksum, 0 FROM "__unify_retl"."diff"`)
	must(`ANALYZE "__unify_retl"."state_m"`)
	for i := 0; i < 3; i++ {
		must(d.DropTable("diff"))
		st := time.Now()
		must(d.Diff("diff", "SELECT * FROM src", "id", sqlgen.StateTable("m"), cols))
		t.Logf("diff vs full state (nothing changed): %v", time.Since(st))
	}
}
