package cli_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraiseql/fraisier/internal/cli"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
	pgtest "github.com/fraiseql/fraisier/internal/testenv/pg"
)

// stateHost is a configuration with no fraises: doctor checks the
// configuration, the secrets, the state database and serve's listen
// address, and nothing needs a systemd manager.
func stateHost(t *testing.T, state string) *doctorHost {
	t.Helper()
	h := &doctorHost{root: t.TempDir()}
	h.cfg = filepath.Join(h.root, "fraises.yaml")
	cfg := fmt.Sprintf("server:\n  listen: 127.0.0.1:%d\nstate:\n  %s\nfraises: {}\n", testenv.FreePort(t), state)
	if err := os.WriteFile(h.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// pgCluster starts a throwaway PostgreSQL cluster for t.
func pgCluster(t *testing.T) *pgtest.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := pgtest.Start(ctx)
	if errors.Is(err, pgtest.ErrUnavailable) {
		testenv.Unavailable(t, "PostgreSQL: %v", err)
	}
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// pgExec runs statements as the cluster's superuser in database db.
func pgExec(t *testing.T, c *pgtest.Cluster, db string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL(db, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// asRole is rawURL with role as its user.
func asRole(t *testing.T, rawURL, role string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "role-pw-never-shown")
	return u.String()
}

// doctorStateLine runs doctor on h, wants exit code and the state line to
// match re after its result, and that password appears nowhere.
func doctorStateLine(t *testing.T, h *doctorHost, code int, re, password string, args ...string) {
	t.Helper()
	got, out := h.doctor(t, args...)
	if got != code {
		t.Errorf("exit %d, want %d", got, code)
	}
	wantLine(t, out, `^`+re)
	if password != "" && strings.Contains(out, password) {
		t.Errorf("the password %q is in doctor's output", password)
	}
}

// TestDoctorStatePostgres: the state line for a PostgreSQL state database,
// each verdict produced for real on a real cluster.
func TestDoctorStatePostgres(t *testing.T) {
	c := pgCluster(t)
	ctx := context.Background()
	if err := c.CreateDatabase(ctx, "state"); err != nil {
		t.Fatal(err)
	}
	const password = "Doctor-Pg-Secret-7"
	owner := c.URL("state", password)
	db, err := store.Open(ctx, store.Options{URL: owner})
	if err != nil {
		t.Fatal(err)
	}
	_, known, err := db.SchemaVersion(ctx)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	subject := `state +- +postgres \(state\.url\) +`
	pgExec(t, c, "state", "CREATE ROLE writer LOGIN", "CREATE ROLE reader LOGIN",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO writer",
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")

	t.Run("owner", func(t *testing.T) {
		h := stateHost(t, fmt.Sprintf("url: %q", owner))
		doctorStateLine(t, h, cli.ExitOK, fmt.Sprintf(`ok +%sreachable, schema version %d of %d, writable$`, subject, known, known), password)
	})
	t.Run("writable role", func(t *testing.T) {
		h := stateHost(t, fmt.Sprintf("url: %q", asRole(t, owner, "writer")))
		doctorStateLine(t, h, cli.ExitOK, `ok +`+subject+`reachable, schema version \d+ of \d+, writable$`, "role-pw-never-shown")
	})
	t.Run("select only", func(t *testing.T) {
		h := stateHost(t, fmt.Sprintf("url: %q", asRole(t, owner, "reader")))
		doctorStateLine(t, h, cli.ExitCheckFailed, `fail +`+subject+`not writable: role reader lacks INSERT, UPDATE, DELETE on tb_\S+, .* in schema public `+
			regexp.QuoteMeta(`→ fix: as the tables' owner (postgres): GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO reader`)+`$`, "role-pw-never-shown")
	})
	t.Run("state given by --state", func(t *testing.T) {
		h := stateHost(t, "path: /nonexistent/never/used.db")
		doctorStateLine(t, h, cli.ExitCheckFailed, `fail +state +- +postgres \(--state\) +not writable: role reader lacks `, "role-pw-never-shown",
			"--state", asRole(t, owner, "reader"))
	})
	t.Run("older schema", func(t *testing.T) {
		if err := c.CreateDatabase(ctx, "older"); err != nil {
			t.Fatal(err)
		}
		applyOlderSchema(t, c, "older", known-1)
		h := stateHost(t, fmt.Sprintf("url: %q", c.URL("older", password)))
		doctorStateLine(t, h, cli.ExitOK, fmt.Sprintf(`warn +%sreachable, schema version %d of %d \(older than this fraisier\), writable → fix: the next fraisier command that writes \(deploy, serve, prune\) migrates it$`, subject, known-1, known), password)
	})
	t.Run("newer schema", func(t *testing.T) {
		if err := c.CreateDatabase(ctx, "newer"); err != nil {
			t.Fatal(err)
		}
		applyOlderSchema(t, c, "newer", known)
		pgExec(t, c, "newer", fmt.Sprintf("INSERT INTO tb_schema_migrations VALUES (%d, 0)", known+1))
		h := stateHost(t, fmt.Sprintf("url: %q", c.URL("newer", password)))
		doctorStateLine(t, h, cli.ExitCheckFailed, fmt.Sprintf(`fail +%sreachable, schema version %d of %d \(newer than this fraisier\) → fix: upgrade fraisier to the version that wrote it, or point state\.url at another database$`, subject, known+1, known), password)
	})
	t.Run("unreachable", func(t *testing.T) { doctorStateUnreachable(t, subject, password) })
}

// doctorStateUnreachable: nothing listens on the port, which fails at
// once; a server that accepts and never answers, which fails at --timeout.
func doctorStateUnreachable(t *testing.T, subject, password string) {
	fix := regexp.QuoteMeta(`→ fix: check state.url (host, port, database, user, password) and that PostgreSQL runs there and lets this host in (pg_hba.conf)`) + `$`
	t.Run("nobody listens", func(t *testing.T) {
		h := stateHost(t, fmt.Sprintf(`url: "postgres://fraisier:%s@127.0.0.1:%d/fraisier"`, password, testenv.FreePort(t)))
		start := time.Now()
		doctorStateLine(t, h, cli.ExitCheckFailed, `fail +`+subject+`.*connection refused.* `+fix, password)
		// Under the 5 s default --timeout: a refusal is not waited out.
		if took := time.Since(start); took > 4*time.Second {
			t.Errorf("doctor took %s on a refused connection", took)
		}
	})
	t.Run("never answers", func(t *testing.T) {
		// A fault the real server cannot produce on demand: a TCP listener
		// that accepts and then says nothing, as a server behind a dead
		// proxy or a stopped process would.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				held = append(held, c)
			}
		}()
		h := stateHost(t, fmt.Sprintf(`url: "postgres://fraisier:%s@%s/fraisier"`, password, l.Addr()))
		start := time.Now()
		doctorStateLine(t, h, cli.ExitCheckFailed, `fail +`+subject+`no answer within 300ms: .* `+fix, password, "--timeout", "300ms")
		// Under the 5 s default: --timeout, not the default, ended the wait.
		if took := time.Since(start); took > 4*time.Second {
			t.Errorf("doctor took %s with --timeout 300ms", took)
		}
	})
}

// applyOlderSchema applies the store's first n PostgreSQL migrations to
// database db, as a fraisier that knew only those would have.
func applyOlderSchema(t *testing.T, c *pgtest.Cluster, db string, n int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "store", "migrations", "postgres", "*.sql"))
	if err != nil || len(files) < n {
		t.Fatalf("migrations: %v (%d files)", err, len(files))
	}
	sort.Strings(files)
	stmts := []string{"CREATE TABLE tb_schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"}
	for i, f := range files[:n] {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, string(body), fmt.Sprintf("INSERT INTO tb_schema_migrations VALUES (%d, 0)", i+1))
	}
	pgExec(t, c, db, stmts...)
}

// TestDoctorStateSQLiteReadOnly: a state file, or its directory, this user
// cannot write (for root, whom mode bits do not stop, a read-only bind
// mount: see testenv.ReadOnly) fails the state line with a fix.
func TestDoctorStateSQLiteReadOnly(t *testing.T) {
	for _, which := range []string{"file", "directory"} {
		t.Run(which, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state", "fraisier.db")
			db, err := store.Open(context.Background(), store.Options{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			h := stateHost(t, "path: "+path)
			doctorStateLine(t, h, cli.ExitOK, `ok +state +- +\S+ +reachable, schema version \d+ of \d+, writable$`, "")
			ro := path
			if which == "directory" {
				ro = filepath.Dir(path)
			}
			testenv.ReadOnly(t, ro)
			doctorStateLine(t, h, cli.ExitCheckFailed, `fail +state +- +`+regexp.QuoteMeta(path)+` +.*not writable: `+regexp.QuoteMeta(ro)+
				` is not writable by uid \d+: (permission denied|read-only file system) → fix: `, "")
		})
	}
}
