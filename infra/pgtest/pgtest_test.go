package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A cluster starts, takes a connection over its socket, keeps what is written, and two
// clusters (two tests at once) are apart.
func TestCluster(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b := Start(t), Start(t)
	conns := map[string]*pgx.Conn{}
	for name, c := range map[string]*Cluster{"a": a, "b": b} {
		conn, err := pgx.Connect(ctx, c.DSN)
		if err != nil {
			t.Fatalf("connect to %s: %v", name, err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		conns[name] = conn
	}
	var version string
	if err := conns["a"].QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil || version == "" {
		t.Fatalf("server_version: %q %v", version, err)
	}
	t.Logf("PostgreSQL %s", version)
	if _, err := conns["a"].Exec(ctx, "CREATE TABLE contacts (id text PRIMARY KEY, email text); INSERT INTO contacts VALUES ('c1', 'ada@example.com')"); err != nil {
		t.Fatal(err)
	}
	var email string
	if err := conns["a"].QueryRow(ctx, "SELECT email FROM contacts WHERE id = 'c1'").Scan(&email); err != nil || email != "ada@example.com" {
		t.Fatalf("read back: %q %v", email, err)
	}
	var n int
	if err := conns["b"].QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'contacts'").Scan(&n); err != nil || n != 0 {
		t.Errorf("cluster b sees cluster a's table: %d %v", n, err)
	}
}
