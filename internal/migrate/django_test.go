package migrate

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// djangoProject is a minimal Django project: settings take the SQLite file
// from FRAISIER_DATABASE_URL; app shop has two migrations, app blog one
// that depends on shop's first.
func djangoProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"manage.py": `import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
`,
		"proj/__init__.py": "",
		"proj/settings.py": `import os
import sys

if os.environ.get("PREFIX_FILE"):
    with open(os.environ["PREFIX_FILE"], "a") as f:
        f.write(sys.prefix + "\n")

SECRET_KEY = "test-only"
INSTALLED_APPS = ["shop", "blog"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

url = os.environ["FRAISIER_DATABASE_URL"]
assert url.startswith("sqlite:////"), url
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": url[len("sqlite:///"):]}}
`,
		"shop/__init__.py":            "",
		"shop/migrations/__init__.py": "",
		"shop/migrations/0001_initial.py": `from django.db import migrations


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.RunSQL("CREATE TABLE shop_item (id integer primary key)", "DROP TABLE shop_item")]
`,
		"shop/migrations/0002_price.py": `from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.RunSQL("ALTER TABLE shop_item ADD COLUMN price integer", "ALTER TABLE shop_item DROP COLUMN price")]
`,
		"blog/__init__.py":            "",
		"blog/migrations/__init__.py": "",
		"blog/migrations/0001_initial.py": `from django.db import migrations


class Migration(migrations.Migration):
    initial = True
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.RunSQL("CREATE TABLE blog_post (id integer primary key)", "DROP TABLE blog_post")]
`,
	})
	return dir
}

func TestDjango(t *testing.T) {
	needPython(t, "django")
	t.Parallel()
	ctx := t.Context()
	url := sqliteURL(t)
	dir := djangoProject(t)
	m, err := New(Config{Tool: ToolDjango, Dir: dir, URL: url, Python: systemPython, Settings: "proj.settings"})
	if err != nil {
		t.Fatal(err)
	}

	wantRevision(t, m, "")
	pend, err := m.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"shop.0001_initial", "blog.0001_initial", "shop.0002_price"}, pend); diff != "" {
		t.Errorf("Pending (-want +got):\n%s", diff)
	}

	recorded, err := m.Up(ctx)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	const want = `{"blog":"0001_initial","shop":"0002_price"}`
	if recorded != want {
		t.Fatalf("Up = %s, want %s", recorded, want)
	}
	wantRevision(t, m, want)
	state, err := ParseDjangoRevision(recorded)
	if err != nil {
		t.Fatal(err)
	}
	if DjangoRevision(state) != recorded {
		t.Errorf("%s does not round-trip: %s", recorded, DjangoRevision(state))
	}

	// The next release adds a third shop migration and a blog one.
	writeFiles(t, dir, map[string]string{
		"shop/migrations/0003_stock.py": `from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_price")]
    operations = [migrations.RunSQL("CREATE TABLE shop_stock (id integer primary key)", "DROP TABLE shop_stock")]
`,
		"blog/migrations/0002_tags.py": `from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("blog", "0001_initial"), ("shop", "0003_stock")]
    operations = [migrations.RunSQL("CREATE TABLE blog_tag (id integer primary key)", "DROP TABLE blog_tag")]
`,
	})
	if rev, err := m.Up(ctx); err != nil || rev != `{"blog":"0002_tags","shop":"0003_stock"}` {
		t.Fatalf("Up of the next release = %s, %v", rev, err)
	}

	if err := m.Down(ctx, recorded); err != nil {
		t.Fatalf("Down(%s): %v", recorded, err)
	}
	wantRevision(t, m, recorded)
	for _, table := range []string{"shop_stock", "blog_tag"} {
		if tableExists(t, url, table) {
			t.Errorf("%s survived Down to the recorded state", table)
		}
	}

	if err := m.Down(ctx, ""); err != nil {
		t.Fatalf("Down to the empty database: %v", err)
	}
	wantRevision(t, m, "")
	if err := m.Down(ctx, `{"shop":"0001; rm -rf /"}`); !errors.Is(err, ErrBadRevision) {
		t.Errorf("Down with a crafted revision = %v, want ErrBadRevision", err)
	}
}

func TestDjangoFailingMigration(t *testing.T) {
	needPython(t, "django")
	t.Parallel()
	ctx := t.Context()
	dir := djangoProject(t)
	writeFiles(t, dir, map[string]string{
		"shop/migrations/0003_broken.py": `from django.db import migrations


def boom(apps, schema_editor):
    raise RuntimeError("boom in shop 0003")


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_price")]
    operations = [migrations.RunPython(boom)]
`,
	})
	m, err := New(Config{Tool: ToolDjango, Dir: dir, URL: sqliteURL(t), Python: systemPython})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Up(ctx)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "applying shop.0003_broken" {
		t.Fatalf("Up = %v, want a StepError for shop.0003_broken", err)
	}
	if !strings.Contains(err.Error(), "boom in shop 0003") {
		t.Errorf("error %q lacks Django's last line", err)
	}
	wantRevision(t, m, `{"blog":"0001_initial","shop":"0002_price"}`)
}
