package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
	pgtest "github.com/fraiseql/fraisier/internal/testenv/pg"
)

// TestDeploySQLOnPostgreSQL: the built-in sql tool through the engine
// against a real PostgreSQL (initdb in a temp dir, unix socket only): a
// migration applied with the deployment, and a failing one undone so that
// the database is back at the recorded revision and nothing else changed.
func TestDeploySQLOnPostgreSQL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cluster, err := pgtest.Start(ctx)
	if errors.Is(err, pgtest.ErrUnavailable) {
		testenv.Unavailable(t, "PostgreSQL: %v", err)
	}
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	defer cluster.Stop()
	if err := cluster.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	const secret = "Pg-Secret-42"
	url := cluster.URL("app", secret)

	root := t.TempDir()
	repo := testenv.NewOrigin(t, root)
	repo.Write("migrations/001_items.up.sql", "CREATE TABLE items (id integer PRIMARY KEY);\n")
	repo.Write("migrations/001_items.down.sql", "DROP TABLE items;\n")
	repo.Commit("v1")

	cfg := parseConfigEnv(t, root, fmt.Sprintf(`
fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s/srv/hello
        database: {tool: sql, dir: migrations, url: "${DB_URL}"}
`, repo.Dir, root), func(k string) (string, bool) {
		if k == "DB_URL" {
			return url, true
		}
		return "", false
	})
	env := lookup(t, cfg, "hello", "production")
	db := openState(t, filepath.Join(root, "state.db"))
	var log strings.Builder
	e := newEngine(t, db, &log)
	deploy := func() Result {
		t.Helper()
		res, err := e.Deploy(ctx, RealCollaborators(nil), Request{Env: env, Trigger: store.TriggerCLI, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	revision := func() string {
		t.Helper()
		m, err := RealCollaborators(nil).NewMigrator(env, filepath.Join(env.AppPath, currentLink), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		rev, err := m.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}

	if res := deploy(); res.Status != store.StatusSucceeded {
		t.Fatalf("v1: %s %v\n%s", res.Status, res.Err, log.String())
	}
	if rev := revision(); rev != "1" {
		t.Fatalf("revision after v1 = %q, want 1", rev)
	}

	repo.Write("migrations/002_names.up.sql", "CREATE TABLE names (id integer PRIMARY KEY);\n")
	repo.Write("migrations/002_names.down.sql", "DROP TABLE names;\n")
	repo.Write("migrations/003_bad.up.sql", "THIS IS NOT SQL;\n")
	repo.Write("migrations/003_bad.down.sql", "SELECT 1;\n")
	repo.Commit("v2 with a broken migration")
	res := deploy()
	if res.Status != store.StatusFailed || !strings.Contains(res.Err.Error(), "migrate") {
		t.Fatalf("v2: %s %v", res.Status, res.Err)
	}
	if rev := revision(); rev != "1" {
		t.Fatalf("revision after the failed migration = %q, want 1 (002 undone)", rev)
	}
	// The database URL carries a password: it must not reach the record.
	steps, _ := db.Steps(ctx, res.DeploymentID)
	d, _ := db.Deployment(ctx, res.DeploymentID)
	for _, s := range steps {
		if strings.Contains(s.Output+s.Detail, secret) {
			t.Fatalf("step %s recorded the database password", s.Name)
		}
	}
	if strings.Contains(d.Error+log.String(), secret) {
		t.Fatal("the database password reached the deployment's error or output")
	}
}
