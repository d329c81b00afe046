package deploy

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestPlanListsMigrationsAsUser: deploy --plan lists pending migrations
// with the tool run as the environment's user:, as a deployment runs it,
// in a scratch export that user can enter (a root-only one would leave the
// tool, as nobody, unable to list anything).
func TestPlanListsMigrationsAsUser(t *testing.T) {
	if _, err := user.LookupId("65534"); err != nil {
		testenv.Unavailable(t, "no user 65534 on this host")
	}
	requireAlembic(t)
	f := newTreeFixture(t)
	for _, dir := range []string{filepath.Dir(f.root), f.root} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range alembicFiles {
		f.repo.Write(name, content)
	}
	// A message of its own: alembic history ends a revision without one
	// in ", ", which the listing does not read.
	f.repo.Write("migrations/versions/a1_items.py", `"""items"""
`+alembicFiles["migrations/versions/a1_items.py"])
	f.repo.Commit("migrations")
	mkdirOwned(t, f.app, 0, 0o755)
	// The database's directory is the user's: its migrations write there.
	dbDir := filepath.Join(f.root, "db")
	mkdirOwned(t, dbDir, nobody, 0o755)
	env := f.env("", fmt.Sprintf(`        user: nobody
        database:
          tool: alembic
          python: %s
          url: sqlite:///%s
`, systemPython, filepath.Join(dbDir, "app.db")))
	p, err := f.engine().Plan(context.Background(), RealCollaborators(nil), Request{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.PendingMigrations) != 1 || !strings.HasPrefix(p.PendingMigrations[0], "a1") || p.MigrationsNote != "" {
		t.Fatalf("pending migrations %q (%s), want a1", p.PendingMigrations, p.MigrationsNote)
	}
	if left, _ := filepath.Glob(filepath.Join(f.app, ".plan-*")); len(left) > 0 {
		t.Errorf("the plan left %v", left)
	}
}
