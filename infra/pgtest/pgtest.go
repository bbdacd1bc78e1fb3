// Package pgtest runs a throwaway PostgreSQL cluster for Go tests: the real warehouse the
// Reverse ETL tests run against (ARCHITECTURE.md section 4). initdb and pg_ctl run as the
// postgres user (when the tests run as root, as in CI), with data, socket and log in a
// postgres-owned temporary folder. The server listens on its Unix socket only, so there is
// no TCP port to race other tests for.
//
// The PostgreSQL 15 binaries come with this kind of machine; without them a test skips with
// a message, except under CI=true, where it fails.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinEnv names the folder of initdb and pg_ctl when they are not found by themselves.
const BinEnv = "UP_PG_BIN"

// Cluster is a running server.
type Cluster struct {
	// DSN connects as the superuser postgres to the postgres database, over the socket.
	DSN    string
	Socket string // the socket's folder
	dir    string
}

// findBin returns the folder holding initdb and pg_ctl, or "".
func findBin() string {
	if d := os.Getenv(BinEnv); d != "" {
		return d
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.Sort(dirs) // the newest version last (single-digit majors sort fine from 10 on)
	for _, d := range slices.Backward(dirs) {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d
		}
	}
	return ""
}

// Start initialises and starts a cluster for t, stopped and removed when t ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := findBin()
	if bin == "" {
		msg := "pgtest: no PostgreSQL binaries (pg_ctl on the PATH, /usr/lib/postgresql/*/bin or $" + BinEnv + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIP: " + msg)
	}
	// Not t.TempDir(): its parents are the test user's, closed to the postgres user.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{dir: dir, Socket: dir}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// chown gives a path to the postgres user when the test runs as root (PostgreSQL refuses
	// to run as root).
	chown := func(string) {}
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("pgtest: running as root needs a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		chown = func(path string) {
			if err := os.Chown(path, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	chown(dir)
	data := filepath.Join(dir, "data")
	c.run(t, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	// The superuser connects without a password; every other role needs its own (SCRAM), so
	// tests can give a warehouse connection a wrong password and see it refused.
	hba := "local all postgres trust\nlocal all all scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	chown(filepath.Join(data, "pg_hba.conf"))
	c.run(t, filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60",
		"-o", fmt.Sprintf("-k %s -c listen_addresses='' -c fsync=off -c full_page_writes=off", dir), "start")
	t.Cleanup(func() {
		out, err := c.command(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop").CombinedOutput()
		if err != nil {
			t.Logf("pgtest: stop: %v\n%s", err, out)
		}
	})
	c.DSN = fmt.Sprintf("host=%s user=postgres dbname=postgres sslmode=disable", dir)
	return c
}

// command runs name as the postgres user when the test runs as root.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

func (c *Cluster) run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := c.command(name, args...).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		t.Fatalf("pgtest: %s: %v\n%s\nserver log:\n%s", filepath.Base(name), err, out, log)
	}
}

// Exec runs statements as the superuser, one after the other, and fails t on the first error:
// a test warehouse's roles, tables, grants and rows.
func (c *Cluster) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("pgtest: %s: %v", s, err)
		}
	}
}
