package deploy

import (
	"database/sql"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"

	_ "modernc.org/sqlite" // to look into the application's database
)

func djangoSettings(apps string) string {
	return `import os
SECRET_KEY = "test-only"
INSTALLED_APPS = [` + apps + `]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
url = os.environ["FRAISIER_DATABASE_URL"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": url[len("sqlite:///"):]}}
`
}

const djangoMigration = `from django.db import migrations
class Migration(migrations.Migration):
    dependencies = [%s]
    operations = [migrations.RunSQL(%q, %q)]
`

// TestDeployDjango: real Django from Debian's packages, through the
// engine. The rolled-back deployment returns every app to the migration it
// was at, including an app that the failed release introduced.
func TestDeployDjango(t *testing.T) {
	if err := exec.Command(systemPython, "-c", "import django").Run(); err != nil {
		testenv.Unavailable(t, "Django for %s not installed (apt-get install python3-django): %v", systemPython, err)
	}
	dbPath := filepath.Join(t.TempDir(), "app.db")
	f := newFixture(t, fmt.Sprintf(`        database:
          tool: django
          python: %s
          settings: proj.settings
          url: sqlite:///%s
`, systemPython, dbPath))

	f.push("healthy", map[string]string{
		"manage.py":                   "import sys\nfrom django.core.management import execute_from_command_line\nexecute_from_command_line(sys.argv)\n",
		"proj/__init__.py":            "",
		"proj/settings.py":            djangoSettings(`"shop"`),
		"shop/__init__.py":            "",
		"shop/migrations/__init__.py": "",
		"shop/migrations/0001_initial.py": fmt.Sprintf(djangoMigration, "",
			"CREATE TABLE shop_item (id integer primary key)", "DROP TABLE shop_item"),
	})
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")
	before := f.revision()
	if before != `{"shop":"0001_initial"}` {
		t.Fatalf("revision after v1 = %s", before)
	}

	f.push("unhealthy", map[string]string{
		"proj/settings.py": djangoSettings(`"shop", "blog"`),
		"shop/migrations/0002_price.py": fmt.Sprintf(djangoMigration, `("shop", "0001_initial")`,
			"ALTER TABLE shop_item ADD COLUMN price integer", "ALTER TABLE shop_item DROP COLUMN price"),
		"blog/__init__.py":            "",
		"blog/migrations/__init__.py": "",
		"blog/migrations/0001_initial.py": fmt.Sprintf(djangoMigration, `("shop", "0001_initial")`,
			"CREATE TABLE blog_post (id integer primary key)", "DROP TABLE blog_post"),
	})
	res := f.deploy(Request{})
	f.expect(res, store.StatusRolledBack, "v1")
	if got := f.revision(); got != before {
		t.Fatalf("revision after the rolled back v2 = %s, want %s", got, before)
	}
	// Ask the database itself: v1's settings do not list blog, so
	// showmigrations from v1 could not see a blog migration left applied.
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var applied int
	if err := db.QueryRow(`SELECT count(*) FROM django_migrations WHERE app = 'blog' OR name = '0002_price'`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'blog_post'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if applied != 0 || tables != 0 {
		t.Fatalf("after the rollback: %d v2 migrations still recorded, blog_post tables: %d", applied, tables)
	}
}
