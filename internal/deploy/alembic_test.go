package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// Debian's alembic is installed for the system interpreter.
const systemPython = "/usr/bin/python3"

var alembicFiles = map[string]string{
	"alembic.ini": "[alembic]\nscript_location = migrations\n",
	// env.py reads the URL where fraisier puts it, never from argv.
	"migrations/env.py": `import os
from alembic import context
from sqlalchemy import create_engine

with create_engine(os.environ["FRAISIER_DATABASE_URL"]).connect() as connection:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
`,
	"migrations/versions/a1_items.py": `from alembic import op
revision = "a1"
down_revision = None
branch_labels = None
depends_on = None
def upgrade():
    op.execute("CREATE TABLE items (id INTEGER PRIMARY KEY)")
def downgrade():
    op.execute("DROP TABLE items")
`,
}

// alembicB2 is the migration after alembicFiles' a1.
var alembicB2 = map[string]string{"migrations/versions/b2_names.py": `from alembic import op
revision = "b2"
down_revision = "a1"
branch_labels = None
depends_on = None
def upgrade():
    op.execute("CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT)")
def downgrade():
    op.execute("DROP TABLE names")
`}

// requireAlembic ends the test as testenv.Unavailable says unless the
// system's python has alembic.
func requireAlembic(t *testing.T) {
	t.Helper()
	if err := exec.Command(systemPython, "-c", "import alembic, sqlalchemy").Run(); err != nil {
		testenv.Unavailable(t, "alembic for %s not installed (apt-get install alembic): %v", systemPython, err)
	}
}

// newAlembicFixture is newFixture with alembic, run by the system's
// python, migrating the SQLite database at dbPath.
func newAlembicFixture(t *testing.T) (f *fixture, dbPath string) {
	t.Helper()
	requireAlembic(t)
	dbPath = filepath.Join(t.TempDir(), "app.db")
	return newFixture(t, fmt.Sprintf(`        database:
          tool: alembic
          python: %s
          url: sqlite:///%s
`, systemPython, dbPath)), dbPath
}

// TestDeployAlembic: real alembic from Debian's packages, run by the deploy
// engine from the new release: upgraded before the switch, downgraded to
// the recorded revision when the release then fails its health check.
func TestDeployAlembic(t *testing.T) {
	f, _ := newAlembicFixture(t)

	f.push("healthy", alembicFiles)
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")
	if rev := f.revision(); rev != "a1" {
		t.Fatalf("revision after v1 = %q, want a1", rev)
	}

	f.push("unhealthy", alembicB2)
	res := f.deploy(Request{})
	f.expect(res, store.StatusRolledBack, "v1")
	if rev := f.revision(); rev != "a1" {
		t.Fatalf("revision after the rolled back v2 = %q, want a1", rev)
	}
	steps, _ := f.db.Steps(context.Background(), res.DeploymentID)
	var sawUp, sawDown bool
	for _, s := range steps {
		sawUp = sawUp || (s.Name == "migrate" && s.Detail == "a1 → b2")
		sawDown = sawDown || (s.Name == "rollback migrate" && s.Status == store.StepSucceeded)
	}
	if !sawUp || !sawDown {
		t.Fatalf("steps %+v: want migrate a1 → b2 and a successful rollback migrate", steps)
	}
}

// TestDeployAlembicProgram: database.program is the program a deployment
// runs its migrations with, found in the release when relative.
func TestDeployAlembicProgram(t *testing.T) {
	requireAlembic(t)
	dbPath := filepath.Join(t.TempDir(), "app.db")
	f := newFixture(t, fmt.Sprintf(`        database:
          tool: alembic
          program: bin/migrate-with-alembic
          url: sqlite:///%s
`, dbPath))
	script := "#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/../program-used\"\nexec " + systemPython + " -m alembic \"$@\"\n"
	f.repo.WriteMode("bin/migrate-with-alembic", script, 0o755)
	f.push("healthy", alembicFiles)
	res := f.deploy(Request{})
	f.expect(res, store.StatusSucceeded, "v1")
	b, err := os.ReadFile(filepath.Join(f.app, releasesDir, res.Release, "program-used"))
	if err != nil || !strings.Contains(string(b), "upgrade") {
		t.Fatalf("the release's program ran with %q (%v), want it to have run the upgrade", b, err)
	}
}
