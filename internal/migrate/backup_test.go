package migrate

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
	"github.com/fraiseql/fraisier/internal/testenv"
)

var backupTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func fixedClock() time.Time { return backupTime }

func TestBackupSQLite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := sqliteURL(t)
	p := newSQLProject(t, url, twoMigrations)
	if _, err := p.migrator().Up(ctx); err != nil {
		t.Fatal(err)
	}
	execSQL(t, url, `INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b')`)

	m := p.migrator(func(c *Config) { c.Now = fixedClock })
	// A quote in the directory would break a VACUUM INTO spliced into SQL.
	dest := filepath.Join(t.TempDir(), "it's backups")
	path, err := m.Backup(ctx, dest)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if want := filepath.Join(dest, "app-20260304T050607Z.db"); path != want {
		t.Errorf("Backup wrote %s, want %s", path, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v, mode %v; want 0600", err, fi)
	}
	if n := queryInt(t, "sqlite:///"+path, `SELECT count(*) FROM items`); n != 2 {
		t.Errorf("the copy holds %d items, want 2", n)
	}
	if _, err := m.Backup(ctx, dest); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second Backup in the same second = %v, want a refusal to overwrite", err)
	}

	missing := newSQLProject(t, "sqlite:///"+filepath.Join(t.TempDir(), "none.db"), twoMigrations).migrator()
	if path, err := missing.Backup(ctx, dest); err != nil || path != "" {
		t.Errorf("Backup of a database not created yet = %q, %v; want nothing to back up", path, err)
	}
}

func TestBackupPostgres(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, prog := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(prog); err != nil {
			testenv.Unavailable(t, "%s: %v", prog, err)
		}
	}
	url := newPGDatabase(t)
	p := newSQLProject(t, url, twoMigrations)
	m := p.migrator(func(c *Config) { c.Now = fixedClock })
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	path, err := m.Backup(ctx, dest)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	u, _ := parseDBURL(url)
	if want := filepath.Join(dest, u.dbname+"-20260304T050607Z.dump"); path != want {
		t.Errorf("Backup wrote %s, want %s", path, want)
	}
	out, err := execx.Output(ctx, execx.Cmd{Argv: []string{"pg_restore", "--list", path}})
	if err != nil {
		t.Fatalf("pg_restore --list: %v", err)
	}
	for _, table := range []string{"TABLE public items", "TABLE public fraisier_schema_migrations"} {
		if !strings.Contains(out, table) {
			t.Errorf("the dump's table of contents lacks %q:\n%s", table, out)
		}
	}
}

func TestBackupCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fake := fakeTool(t, dir, "backup-tool")
	m, err := New(Config{Tool: ToolSQL, Dir: dir, SQLDir: "db", URL: "sqlite:///" + dir + "/shop.sqlite3",
		Backup: []string{fake, "backup", "{path}"}, Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	path, err := m.Backup(t.Context(), filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "b", "shop-20260304T050607Z.backup"); path != want {
		t.Errorf("Backup = %s, want %s", path, want)
	}
	if _, err := os.Stat(path); err != nil {
		t.Error(err)
	}
}

// TestSecretStaysOut runs every tool with a URL holding a password through
// the fake, once succeeding and once failing with the URL in its output,
// and looks for the password in every argv, error and streamed line.
func TestSecretStaysOut(t *testing.T) {
	// A fake pg_dump on PATH: exec resolves the program with this
	// process's PATH, so the test cannot run in parallel.
	bin := t.TempDir()
	fakeTool(t, bin, "pg_dump")
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	const secret = "Pa55-w0rd!s3cret"
	// A unix socket directory that does not exist: Rebuild's own
	// connection fails at once, with no network traffic.
	url := "postgresql://app:" + strings.ReplaceAll(secret, "!", "%21") + "@/shop?host=/nonexistent/fraisier"
	for _, tool := range []string{ToolAlembic, ToolDjango, ToolConfiture, ToolCommand} {
		for _, fail := range []bool{false, true} {
			name := tool
			if fail {
				name += "/failing"
			}
			t.Run(name, func(t *testing.T) {
				ctx := t.Context()
				dir := t.TempDir()
				fake := fakeTool(t, dir, "tool")
				conf, log, state := fakeConfiture(t)
				env := []string{"FAKE_LOG=" + log, "FAKE_STATE=" + state}
				if fail {
					env = append(env, "FAKE_FAIL=1")
				}
				var out strings.Builder
				cfg := Config{Tool: tool, Dir: dir, URL: url, Env: env, Python: fake, Output: &out, Config: "cfg.yaml"}
				if tool == ToolConfiture {
					cfg.Program = conf
				}
				if tool == ToolCommand {
					cfg.Up, cfg.Down, cfg.Current = []string{fake, "up"}, []string{fake, "down", "{revision}"}, []string{fake, "current"}
				}
				m, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				rev, err := m.Current(ctx)
				var errs []error
				errs = append(errs, err)
				_, err = m.Up(ctx)
				errs = append(errs, err)
				errs = append(errs, m.Down(ctx, rev))
				_, err = m.Pending(ctx)
				errs = append(errs, err)
				errs = append(errs, m.Rebuild(ctx))
				_, err = m.Backup(ctx, t.TempDir())
				errs = append(errs, err)

				failed := 0
				for _, err := range errs {
					if err == nil {
						continue
					}
					failed++
					noSecret(t, "error", err.Error(), secret)
					noSecret(t, "error", err.Error(), strings.ReplaceAll(secret, "!", "%21"))
					var ee *execx.ExitError
					if errors.As(err, &ee) {
						noSecret(t, "captured output", ee.Output, secret)
					}
				}
				if fail && failed < 5 {
					t.Errorf("only %d of 6 calls failed with FAKE_FAIL set", failed)
				}
				noSecret(t, "streamed output", out.String(), secret)
				if fail {
					// The fake printed the URL: it must have been there to
					// redact, or this test proves nothing.
					if !strings.Contains(errs[1].Error(), "app:xxxxx@") {
						t.Errorf("Up error %q does not show the redacted URL", errs[1])
					}
					if !strings.Contains(out.String(), "app:xxxxx@") {
						t.Errorf("streamed output does not show the redacted URL:\n%s", out.String())
					}
				}
				calls := readFakeLog(t, log)
				if len(calls) == 0 {
					t.Fatal("the fake recorded no calls")
				}
				for _, c := range calls {
					noSecret(t, "argv", strings.Join(c.Argv, " "), secret)
					noSecret(t, "argv", strings.Join(c.Argv, " "), strings.ReplaceAll(secret, "!", "%21"))
					if filepath.Base(c.Argv[0]) == "pg_dump" {
						if c.Env["PGPASSWORD"] != secret || c.Env["PGHOST"] != "/nonexistent/fraisier" || c.Env["PGDATABASE"] != "shop" {
							t.Errorf("pg_dump got connection env %v", c.Env)
						}
						if _, ok := c.Env[URLEnv]; ok {
							t.Errorf("pg_dump got %s too", URLEnv)
						}
					}
				}
			})
		}
	}
}
