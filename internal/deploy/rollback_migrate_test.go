package deploy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/migrate"
	"github.com/fraiseql/fraisier/internal/store"
)

// migrationFiles are the sql tool's files for migration n, with a down file
// unless irreversible.
func migrationFiles(n int, irreversible bool) map[string]string {
	name := fmt.Sprintf("migrations/%03d_t%d", n, n)
	files := map[string]string{name + ".up.sql": fmt.Sprintf("CREATE TABLE t%d (id INTEGER PRIMARY KEY);\n", n)}
	if !irreversible {
		files[name+".down.sql"] = fmt.Sprintf("DROP TABLE t%d;\n", n)
	}
	return files
}

// applied reads the sql tool's tracking table itself: the versions the
// application's database holds, whatever fraisier believes.
func applied(t *testing.T, dbPath string) []int64 {
	t.Helper()
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT version FROM fraisier_schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

// failingUp makes Up fail, as a database that went away would: the fault
// the real sql tool cannot produce on demand.
type failingUp struct{ Migrator }

func (failingUp) Up(context.Context) (string, error) {
	return "", errors.New("migrate up (sql): connection refused")
}

// TestRollbackMigrations: fraisier rollback across migrations on the real
// sql tool and SQLite. Each release records the revision its migrations
// reached; a rollback migrates down to it with the current release's down
// files before the switch; --no-migrate and an unknown revision leave the
// database and say at which revision; an irreversible migration refuses the
// rollback before anything changes; a target that fails its health check
// is left for the release that was current, with its migrations applied
// again (or rollback_failed, exactly, when they cannot be).
func TestRollbackMigrations(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "app.db")
	f := newFixture(t, fmt.Sprintf(`        database:
          tool: sql
          dir: migrations
          url: sqlite:///%s
`, dbPath))
	env, err := f.cfg.Lookup("hello", "production")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rollback := func(req RollbackRequest, collab Collaborators) Result {
		t.Helper()
		req.Env, req.Actor = env, "test"
		res, err := f.engine.Rollback(ctx, collab, req)
		if err != nil {
			t.Fatalf("Rollback: %v", err)
		}
		return res
	}
	steps := func(res Result) map[string]store.Step {
		t.Helper()
		ss, err := f.db.Steps(ctx, res.DeploymentID)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]store.Step{}
		for _, s := range ss {
			m[s.Name] = s
		}
		return m
	}
	stepNames := func(res Result) string {
		t.Helper()
		ss, _ := f.db.Steps(ctx, res.DeploymentID)
		var names []string
		for _, s := range ss {
			names = append(names, s.Name+":"+s.Status)
		}
		return strings.Join(names, " ")
	}
	wantApplied := func(want ...int64) {
		t.Helper()
		if got := applied(t, dbPath); !slices.Equal(got, want) {
			t.Fatalf("tracking table holds %v, want %v", got, want)
		}
	}
	current := func() string {
		t.Helper()
		cur, err := currentRelease(f.app)
		if err != nil {
			t.Fatal(err)
		}
		return cur
	}
	revisions := func() map[string]string {
		t.Helper()
		rels, err := f.db.Releases(ctx, "hello", "production")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, r := range rels {
			m[r.Name] = r.MigrationRevision
		}
		return m
	}

	f.push("healthy", migrationFiles(1, false))
	res := f.deploy(Request{})
	f.expect(res, store.StatusSucceeded, "v1")
	r1 := res.Release
	f.push("healthy", migrationFiles(2, false))
	res = f.deploy(Request{})
	f.expect(res, store.StatusSucceeded, "v2")
	r2 := res.Release
	wantApplied(1, 2)
	if got := revisions(); got[r1] != "1" || got[r2] != "2" {
		t.Fatalf("recorded revisions %v: want %s at 1 and %s at 2", got, r1, r2)
	}

	t.Run("across a migration migrates down before the switch", func(t *testing.T) {
		res := rollback(RollbackRequest{}, f.collab)
		f.expect(res, store.StatusSucceeded, "v1")
		wantApplied(1)
		if want := "choose release:succeeded migrate down:succeeded switch:succeeded restart:succeeded health:succeeded"; stepNames(res) != want {
			t.Fatalf("steps %s, want %s", stepNames(res), want)
		}
		if d := steps(res)["migrate down"].Detail; d != "2 → 1 (down with release "+r2+")" {
			t.Fatalf("migrate down detail %q", d)
		}
		// Forward again by deploying: a new release, migrated up.
		res = f.deploy(Request{})
		f.expect(res, store.StatusSucceeded, "v2")
		r2 = res.Release
		wantApplied(1, 2)
	})

	t.Run("failed health: back on the current release with the database up again", func(t *testing.T) {
		behaviour := filepath.Join(f.app, releasesDir, r1, "behaviour")
		if err := os.WriteFile(behaviour, []byte("unhealthy\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(behaviour, []byte("healthy\n"), 0o644)
		res := rollback(RollbackRequest{To: r1}, f.collab)
		f.expect(res, store.StatusRolledBack, "v2")
		if current() != r2 {
			t.Fatalf("current %s, want %s back", current(), r2)
		}
		wantApplied(1, 2)
		want := "choose release:succeeded migrate down:succeeded switch:succeeded restart:succeeded health:failed " +
			"rollback migrate:succeeded rollback switch:succeeded rollback restart:succeeded rollback health:succeeded"
		if stepNames(res) != want {
			t.Fatalf("steps:\n%s\nwant:\n%s", stepNames(res), want)
		}
		if d := steps(res)["rollback migrate"].Detail; d != "up again to 2" {
			t.Fatalf("rollback migrate detail %q", d)
		}
	})

	t.Run("failed health and the database cannot go up again: rollback_failed", func(t *testing.T) {
		behaviour := filepath.Join(f.app, releasesDir, r1, "behaviour")
		if err := os.WriteFile(behaviour, []byte("unhealthy\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(behaviour, []byte("healthy\n"), 0o644)
		collab := f.collab
		collab.NewMigrator = func(env *config.Environment, dir string, out io.Writer) (Migrator, error) {
			m, err := f.collab.NewMigrator(env, dir, out)
			return failingUp{m}, err
		}
		res := rollback(RollbackRequest{To: r1}, collab)
		if res.Status != store.StatusRollbackFailed {
			t.Fatalf("status %s (%v), want rollback_failed", res.Status, res.Err)
		}
		if current() != r2 {
			t.Fatalf("current %s, want %s back", current(), r2)
		}
		wantApplied(1)
		wantTail := fmt.Sprintf("; rollback to %s failed: the database is not back at 2, the revision release %s needs (rollback migrate: migrate up (sql): connection refused); operator needed: see fraisier status hello production", r2, r2)
		if got := res.Err.Error(); !strings.HasPrefix(got, "health: ") || !strings.HasSuffix(got, wantTail) {
			t.Fatalf("error:\n%s\nwant health: …%s", got, wantTail)
		}
		if s := steps(res)["rollback migrate"]; s.Status != store.StepFailed {
			t.Fatalf("rollback migrate %s %q, want failed", s.Status, s.Detail)
		}
		// What the operator would do: migrate up from the release that
		// serves. No deploy, which would prune r1.
		m, err := RealCollaborators(nil).NewMigrator(env, filepath.Join(f.app, releasesDir, r2), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Up(ctx); err != nil {
			t.Fatal(err)
		}
		wantApplied(1, 2)
	})

	t.Run("--no-migrate switches the code only", func(t *testing.T) {
		res := rollback(RollbackRequest{To: r1, NoMigrate: true}, f.collab)
		f.expect(res, store.StatusSucceeded, "v1")
		wantApplied(1, 2)
		s := steps(res)["migrate down"]
		if s.Status != store.StepSkipped || s.Detail != "--no-migrate: database left at revision 2" {
			t.Fatalf("migrate down %s %q", s.Status, s.Detail)
		}
		if !strings.Contains(f.log.String(), "migrate down … skipped (--no-migrate: database left at revision 2)") {
			t.Fatalf("the output does not say where the database was left:\n%s", f.log)
		}
		// Back to r2: the database is already where it recorded.
		res = rollback(RollbackRequest{To: r2}, f.collab)
		f.expect(res, store.StatusSucceeded, "v2")
		if d := steps(res)["migrate down"].Detail; d != "already at 2" {
			t.Fatalf("migrate down detail %q", d)
		}
	})

	t.Run("an unknown revision: not migrated, and the step says so", func(t *testing.T) {
		if err := f.db.SetReleaseRevision(ctx, store.Target{Fraise: "hello", Environment: "production"}, r1, ""); err != nil {
			t.Fatal(err)
		}
		defer f.db.SetReleaseRevision(ctx, store.Target{Fraise: "hello", Environment: "production"}, r1, "1")
		res := rollback(RollbackRequest{To: r1}, f.collab)
		f.expect(res, store.StatusSucceeded, "v1")
		wantApplied(1, 2)
		s := steps(res)["migrate down"]
		if want := "release " + r1 + " has no recorded migration revision: database left at revision 2"; s.Status != store.StepSkipped || s.Detail != want {
			t.Fatalf("migrate down %s %q, want skipped %q", s.Status, s.Detail, want)
		}
		f.expect(rollback(RollbackRequest{To: r2}, f.collab), store.StatusSucceeded, "v2")
	})

	t.Run("irreversible: refused before anything changes", func(t *testing.T) {
		f.push("healthy", migrationFiles(3, true))
		res := f.deploy(Request{})
		f.expect(res, store.StatusSucceeded, "v3")
		r3 := res.Release
		wantApplied(1, 2, 3)
		res = rollback(RollbackRequest{}, f.collab)
		f.expect(res, store.StatusFailed, "v3")
		if current() != r3 {
			t.Fatalf("current %s, want %s unchanged", current(), r3)
		}
		wantApplied(1, 2, 3)
		if want := "choose release:succeeded migrate down:failed"; stepNames(res) != want {
			t.Fatalf("steps %s, want %s", stepNames(res), want)
		}
		var irr *migrate.IrreversibleError
		if !errors.As(res.Err, &irr) {
			t.Fatalf("error %v: want a migrate.IrreversibleError", res.Err)
		}
		for _, want := range []string{"refused", "from 3 to 2", "--no-migrate", "nothing was changed"} {
			if !strings.Contains(res.Err.Error(), want) {
				t.Fatalf("error %q does not say %q", res.Err, want)
			}
		}
		if got := revisions()[r2]; got != "2" {
			t.Fatalf("%s's revision %q changed", r2, got)
		}
	})
}

// TestTargetRecordedWhileRunning: the commit a deployment goes to is in the
// record from the fetch on, so history and show name it while it runs (and
// after it dies), not only once it has finished.
func TestTargetRecordedWhileRunning(t *testing.T) {
	f := newFixture(t, "")
	sha1 := f.push("healthy", nil)
	var seen []store.Deployment
	collab := f.collab
	collab.Units = func(scope string) Units {
		return observingUnits{Units: f.collab.Units(scope), restart: func() {
			running, err := f.db.RunningDeployments(context.Background())
			if err != nil {
				t.Error(err)
			}
			seen = append(seen, running...)
		}}
	}
	env, _ := f.cfg.Lookup("hello", "production")
	res, err := f.engine.Deploy(context.Background(), collab, Request{Env: env, Trigger: store.TriggerCLI, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f.expect(res, store.StatusSucceeded, "v1")
	if len(seen) != 1 || seen[0].ID != res.DeploymentID || seen[0].NewSHA != sha1 || seen[0].Status != store.StatusRunning {
		t.Fatalf("while restarting, running deployments were %+v; want %d going to %s", seen, res.DeploymentID, sha1)
	}

	// A rollback records the commit of the release it chose.
	sha2 := f.push("healthy", nil)
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v2")
	seen = nil
	res, err = f.engine.Rollback(context.Background(), collab, RollbackRequest{Env: env, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f.expect(res, store.StatusSucceeded, "v1")
	if len(seen) != 1 || seen[0].NewSHA != sha1 || seen[0].OldSHA != sha2 {
		t.Fatalf("while the rollback restarted, running deployments were %+v; want %s → %s", seen, sha2, sha1)
	}
}

// observingUnits calls restart before each restart: a look at the record
// in the middle of a deployment.
type observingUnits struct {
	Units
	restart func()
}

func (u observingUnits) Restart(ctx context.Context, units ...string) error {
	u.restart()
	return u.Units.Restart(ctx, units...)
}
