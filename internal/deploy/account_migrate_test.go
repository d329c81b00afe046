package deploy

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestMigrateAndHealthRunAsUser: with user: set, the migration tool, the
// backup command and a health check command run as that user, like
// install: the code they run comes from the repository.
func TestMigrateAndHealthRunAsUser(t *testing.T) {
	f := newTreeFixture(t)
	if _, err := user.LookupId("65534"); err != nil {
		testenv.Unavailable(t, "no user 65534 on this host")
	}
	for _, dir := range []string{filepath.Dir(f.root), f.root} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := f.env("", `        user: nobody
        database:
          tool: command
          backup_before_deploy: true
          backup:
            command: [sh, -c, 'id -u > "$$FRAISIER_BACKUP_PATH"']
          up: [sh, -c, 'id -u > migrated-as; echo 1 > revision']
          down: [sh, -c, 'rm -f revision']
          current: [sh, -c, 'cat revision 2>/dev/null; true']
        health_check:
          command: [sh, -c, 'test "$$(id -u)" = 65534']
          retries: 0
`)
	res := f.deploy(env)
	if res.Status != store.StatusSucceeded {
		t.Fatalf("status %s (%v); the health check passes only as uid 65534", res.Status, res.Err)
	}
	rel := filepath.Join(f.app, "releases", res.Release)
	if b, err := os.ReadFile(filepath.Join(rel, "migrated-as")); err != nil || strings.TrimSpace(string(b)) != "65534" {
		t.Errorf("the migration ran as %q (%v), want uid 65534", b, err)
	}
	backups, _ := filepath.Glob(filepath.Join(f.app, "backups", "*"))
	if len(backups) != 1 {
		t.Fatalf("backups %v, want one", backups)
	}
	if b, err := os.ReadFile(backups[0]); err != nil || strings.TrimSpace(string(b)) != "65534" {
		t.Errorf("the backup command ran as %q (%v), want uid 65534", b, err)
	}
}

// TestUserRefusesInProcessSQLite: what fraisier does to a SQLite database
// itself (the sql tool, the built-in backup) cannot run as user:, so an
// environment that asks for both is refused before anything changes.
func TestUserRefusesInProcessSQLite(t *testing.T) {
	for name, db := range map[string]string{
		"sql tool": `          tool: sql
          dir: migrations
`,
		"built-in backup": `          tool: command
          up: [sh, -c, 'true']
          backup_before_deploy: true
`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newTreeFixture(t)
			url := "sqlite:///" + filepath.Join(f.root, "app.db")
			res := f.deploy(f.env("", "        user: nobody\n        database:\n          url: "+url+"\n"+db))
			f.refused(res, "user: nobody: the sql tool and the built-in backup work on a SQLite database from inside fraisier")
		})
	}
}
