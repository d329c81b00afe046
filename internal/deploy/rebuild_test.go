package deploy

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"

	_ "modernc.org/sqlite" // to look into the application's database
)

// TestDeployRebuild: strategy rebuild drops and recreates the database from
// the release's migrations (allowed on an unprotected environment only;
// config validation refuses it elsewhere).
func TestDeployRebuild(t *testing.T) {
	root := t.TempDir()
	repo := testenv.NewOrigin(t, root)
	repo.Write("migrations/001_items.up.sql", "CREATE TABLE items (id INTEGER PRIMARY KEY);\n")
	repo.Write("migrations/001_items.down.sql", "DROP TABLE items;\n")
	repo.Commit("v1")
	dbPath := filepath.Join(root, "app.db")
	cfg := parseConfig(t, root, fmt.Sprintf(`
fraises:
  hello:
    type: api
    environments:
      dev:
        branch: main
        git_repo: %s
        app_path: %s/srv/hello
        database: {tool: sql, dir: migrations, strategy: rebuild, url: "sqlite:///%s"}
`, repo.Dir, root, dbPath))
	env := lookup(t, cfg, "hello", "dev")
	db := openState(t, filepath.Join(root, "state.db"))
	var log strings.Builder
	e := newEngine(t, db, &log)
	deploy := func(force bool) Result {
		t.Helper()
		res, err := e.Deploy(context.Background(), RealCollaborators(nil), Request{Env: env, Force: force, Trigger: store.TriggerCLI, Actor: "test"})
		if err != nil || res.Status != store.StatusSucceeded {
			t.Fatalf("deploy: %s %v %v\n%s", res.Status, res.Err, err, log.String())
		}
		return res
	}
	deploy(false)
	app, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if _, err := app.Exec("INSERT INTO items (id) VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	res := deploy(true)
	var n int
	if err := app.QueryRow("SELECT count(*) FROM items").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d rows survived a rebuild", n)
	}
	steps, _ := db.Steps(context.Background(), res.DeploymentID)
	for _, s := range steps {
		if s.Name == "migrate" && !strings.HasPrefix(s.Detail, "rebuilt from scratch") {
			t.Fatalf("migrate step detail %q", s.Detail)
		}
	}
}
