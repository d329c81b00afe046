package migrate

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	alembicRev1 = "a1b2c3d4e5f6"
	alembicRev2 = "b2c3d4e5f6a7"
)

// alembicProject is a minimal alembic project: its env.py reads the URL
// from FRAISIER_DATABASE_URL, the way this package documents, and runs
// each migration in its own transaction.
func alembicProject(t *testing.T, failInRev2 bool) string {
	t.Helper()
	raise := ""
	if failInRev2 {
		raise = "\n    raise RuntimeError(\"boom in revision 2\")"
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"alembic.ini": `[alembic]
script_location = migrations

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console
qualname =

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
`,
		"migrations/env.py": `import os
import sys
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

if os.environ.get("PREFIX_FILE"):
    with open(os.environ["PREFIX_FILE"], "a") as f:
        f.write(sys.prefix + "\n")

url = os.environ.get("FRAISIER_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
with create_engine(url).connect() as connection:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
`,
		"migrations/versions/a1_create_items.py": `"""create items"""
from alembic import op

revision = "` + alembicRev1 + `"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE TABLE items (id INTEGER PRIMARY KEY)")


def downgrade():
    op.execute("DROP TABLE items")
`,
		"migrations/versions/b2_add_name.py": `"""add name"""
from alembic import op

revision = "` + alembicRev2 + `"
down_revision = "` + alembicRev1 + `"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT)")` + raise + `


def downgrade():
    op.execute("DROP TABLE names")
`,
	})
	return dir
}

func alembicMigrator(t *testing.T, dir, url string) *Migrator {
	t.Helper()
	m, err := New(Config{Tool: ToolAlembic, Dir: dir, URL: url, Python: systemPython})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAlembic(t *testing.T) {
	needPython(t, "alembic", "sqlalchemy")
	t.Parallel()
	ctx := t.Context()
	url := sqliteURL(t)
	m := alembicMigrator(t, alembicProject(t, false), url)

	wantRevision(t, m, "")
	pend, err := m.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{alembicRev1 + ": create items", alembicRev2 + ": add name"}, pend); diff != "" {
		t.Errorf("Pending (-want +got):\n%s", diff)
	}

	head, err := m.Up(ctx)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if head != alembicRev2 {
		t.Fatalf("Up = %q, want the head %s", head, alembicRev2)
	}
	wantRevision(t, m, alembicRev2)
	if pend, err := m.Pending(ctx); err != nil || len(pend) != 0 {
		t.Errorf("Pending at head = %v, %v; want none", pend, err)
	}

	if err := m.Down(ctx, alembicRev1); err != nil {
		t.Fatalf("Down(%s): %v", alembicRev1, err)
	}
	wantRevision(t, m, alembicRev1)
	if tableExists(t, url, "names") {
		t.Error("revision 2's table survived Down to revision 1")
	}
	if err := m.Down(ctx, ""); err != nil {
		t.Fatalf("Down to base: %v", err)
	}
	wantRevision(t, m, "")
	if tableExists(t, url, "items") {
		t.Error("revision 1's table survived Down to base")
	}

	if err := m.Down(ctx, "--sql"); !errors.Is(err, ErrBadRevision) {
		t.Errorf("Down(--sql) = %v, want ErrBadRevision before alembic runs", err)
	}
}

func TestAlembicFailingRevision(t *testing.T) {
	needPython(t, "alembic", "sqlalchemy")
	t.Parallel()
	ctx := t.Context()
	m := alembicMigrator(t, alembicProject(t, true), sqliteURL(t))
	_, err := m.Up(ctx)
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("Up = %v, want a StepError", err)
	}
	if want := "upgrade " + alembicRev1 + " -> " + alembicRev2 + " (add name)"; se.Step != want {
		t.Errorf("failing step = %q, want %q", se.Step, want)
	}
	if !strings.Contains(err.Error(), "boom in revision 2") {
		t.Errorf("error %q lacks alembic's last line", err)
	}
	wantRevision(t, m, alembicRev1)
}

func TestAlembicRebuild(t *testing.T) {
	needPython(t, "alembic", "sqlalchemy")
	t.Parallel()
	ctx := t.Context()
	url := sqliteURL(t)
	m := alembicMigrator(t, alembicProject(t, false), url)
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	execSQL(t, url, `INSERT INTO items (id) VALUES (7)`)
	if err := m.Rebuild(ctx); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	wantRevision(t, m, alembicRev2)
	if n := queryInt(t, url, `SELECT count(*) FROM items`); n != 0 {
		t.Errorf("items holds %d rows after Rebuild, want 0", n)
	}
}
