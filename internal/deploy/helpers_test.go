package deploy

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// noEnv is a configuration's LookupEnv that finds no variable.
func noEnv(string) (string, bool) { return "", false }

// parseConfig parses yaml as a fraises.yaml in an environment with no
// variable set, its state directory root/state.
func parseConfig(t testing.TB, root, yaml string) *config.Config {
	t.Helper()
	return parseConfigEnv(t, root, yaml, noEnv)
}

// parseConfigEnv is parseConfig with the variables lookup finds.
func parseConfigEnv(t testing.TB, root, yaml string, lookup func(string) (string, bool)) *config.Config {
	t.Helper()
	cfg, err := config.Parse("fraises.yaml", []byte(yaml), config.Options{LookupEnv: lookup})
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	cfg.State.Dir = filepath.Join(root, "state")
	return cfg
}

// lookup is cfg's environment env of fraise.
func lookup(t testing.TB, cfg *config.Config, fraise, env string) *config.Environment {
	t.Helper()
	e, err := cfg.Lookup(fraise, env)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// openState opens a SQLite state database at path, closed when the test
// ends.
func openState(t testing.TB, path string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newEngine is an Engine on db, run as the current user, that writes its
// progress to progress.
func newEngine(t testing.TB, db *store.DB, progress io.Writer) *Engine {
	t.Helper()
	owner, err := CurrentOwner()
	if err != nil {
		t.Fatal(err)
	}
	return &Engine{Store: db, Progress: progress, Owner: owner}
}

// writeFile writes path (mode 0644), making its directory.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// stepNames is "name:status ..." of a deployment's steps.
func stepNames(t testing.TB, db *store.DB, id int64) string {
	t.Helper()
	steps, err := db.Steps(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range steps {
		names = append(names, s.Name+":"+s.Status)
	}
	return strings.Join(names, " ")
}
