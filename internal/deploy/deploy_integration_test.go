package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// fixture is one api fraise on real parts: a bare git origin the test pushes
// to, a real systemd user manager running the test HTTP service from the
// release that current points at, and a SQLite state database.
type fixture struct {
	t       *testing.T
	repo    *testenv.Origin
	app     string
	port    int
	unit    string
	cfg     *config.Config
	db      *store.DB
	engine  *Engine
	collab  Collaborators
	log     *bytes.Buffer
	version int
	mgr     *tsystemd.Manager
}

func newFixture(t *testing.T, extraEnvYAML string) *fixture {
	t.Helper()
	return newLayoutFixture(t, "releases", extraEnvYAML)
}

// newLayoutFixture is newFixture for either layout: the unit runs the
// service from current (releases) or from app_path itself (inplace).
func newLayoutFixture(t *testing.T, layout, extraEnvYAML string) *fixture {
	t.Helper()
	return setUpFixture(t, layout, extraEnvYAML, nil)
}

// setUpFixture makes a fixture; beforeManager, when given, runs with
// app_path before the systemd manager starts (the manager sees only the
// mounts made before it).
func setUpFixture(t *testing.T, layout, extraEnvYAML string, beforeManager func(app string)) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{t: t, app: filepath.Join(root, "srv", "hello"), log: &bytes.Buffer{}}
	f.repo = testenv.NewOrigin(t, root)
	if beforeManager != nil {
		beforeManager(f.app)
	}
	f.mgr = tsystemd.UserManager(t)
	f.port = testenv.FreePort(t)
	f.unit = f.mgr.AppUnit(t, "hello.service", f.port, serviceDir(f.app, layout))
	f.cfg = parseConfig(t, root, f.yaml(layout, extraEnvYAML))
	f.db = openState(t, filepath.Join(root, "state.db"))
	f.engine = newEngine(t, f.db, f.log)
	f.collab = RealCollaborators(f.mgr.Env())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine output:\n%s\nmanager log:\n%s", f.log, f.mgr.LogTail(30))
		}
	})
	return f
}

// yaml is the fixture's fraises.yaml with extraEnvYAML added to the
// environment.
func (f *fixture) yaml(layout, extraEnvYAML string) string {
	return fmt.Sprintf(`
fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
        layout: %s
        scope: user
        keep_releases: 3
        systemd_service: %s
        health_check:
          url: http://127.0.0.1:%d/health
          timeout: 500ms
          retries: 4
          interval: 200ms
          deadline: 5s
%s`, f.repo.Dir, f.app, layout, f.unit, f.port, extraEnvYAML)
}

// push commits a version with the given behaviour (healthy, unhealthy,
// crash) and extra files, and returns its SHA.
func (f *fixture) push(behaviour string, files map[string]string) string {
	f.t.Helper()
	f.version++
	f.repo.Write("VERSION", fmt.Sprintf("v%d\n", f.version))
	f.repo.Write("behaviour", behaviour+"\n")
	for name, content := range files {
		f.repo.Write(name, content)
	}
	return f.repo.Commit(fmt.Sprintf("v%d %s", f.version, behaviour))
}

// deploy deploys the fixture's environment; by the command line unless
// req says.
func (f *fixture) deploy(req Request) Result {
	f.t.Helper()
	return f.deployEnv(lookup(f.t, f.cfg, "hello", "production"), req)
}

// revision is the application database's migration revision, as the
// environment's migration tool reads it from the current release.
func (f *fixture) revision() string {
	f.t.Helper()
	env, err := f.cfg.Lookup("hello", "production")
	if err != nil {
		f.t.Fatal(err)
	}
	m, err := RealCollaborators(nil).NewMigrator(env, filepath.Join(f.app, currentLink), io.Discard)
	if err != nil {
		f.t.Fatal(err)
	}
	rev, err := m.Current(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return rev
}

// serving returns what the service answers on / now.
func (f *fixture) serving() string { return testenv.AppAnswer(f.port) }

func (f *fixture) expect(res Result, status store.Status, servingVersion string) {
	f.t.Helper()
	if res.Status != status {
		f.t.Fatalf("status %s (%v), want %s", res.Status, res.Err, status)
	}
	if got := f.serving(); !strings.Contains(got, servingVersion) {
		f.t.Fatalf("service answers %q, want %s", got, servingVersion)
	}
	d, err := f.db.Deployment(context.Background(), res.DeploymentID)
	if err != nil {
		f.t.Fatal(err)
	}
	if d.Status != status {
		f.t.Fatalf("recorded status %s, want %s", d.Status, status)
	}
	if (status == store.StatusSucceeded || status == store.StatusSkipped) != (res.Err == nil) {
		f.t.Fatalf("status %s with error %v", status, res.Err)
	}
}

func TestDeployAPI(t *testing.T) {
	f := newFixture(t, `        install:
          command: [cat, install-ok]
`)
	ok := map[string]string{"install-ok": "yes\n"}

	sha1 := f.push("healthy", ok)
	res := f.deploy(Request{})
	f.expect(res, store.StatusSucceeded, "v1")
	if res.NewSHA != sha1 || res.OldSHA != "" {
		t.Fatalf("first deploy %s → %s, want - → %s", res.OldSHA, res.NewSHA, sha1)
	}
	first := res.Release

	sha2 := f.push("healthy", ok)
	res = f.deploy(Request{})
	f.expect(res, store.StatusSucceeded, "v2")
	if res.OldSHA != sha1 || res.NewSHA != sha2 || res.PreviousRelease != first {
		t.Fatalf("upgrade %s → %s from %s, want %s → %s from %s", res.OldSHA, res.NewSHA, res.PreviousRelease, sha1, sha2, first)
	}
	good := res.Release

	t.Run("no-op", func(t *testing.T) {
		res := f.deploy(Request{})
		f.expect(res, store.StatusSkipped, "v2")
	})
	t.Run("force", func(t *testing.T) {
		res := f.deploy(Request{Force: true})
		f.expect(res, store.StatusSucceeded, "v2")
		if res.Release == good {
			t.Fatal("--force reused the release")
		}
		good = res.Release
	})
	t.Run("unhealthy rolls back", func(t *testing.T) {
		f.push("unhealthy", ok)
		res := f.deploy(Request{})
		f.expect(res, store.StatusRolledBack, "v2")
		if cur, _ := currentRelease(f.app); cur != good {
			t.Fatalf("current %s, want %s", cur, good)
		}
		if !strings.Contains(res.Err.Error(), "health") {
			t.Fatalf("error does not name the health check: %v", res.Err)
		}
		assertReleaseState(t, f, res, store.ReleaseBad)
	})
	t.Run("crash at start rolls back", func(t *testing.T) {
		f.push("crash", ok)
		res := f.deploy(Request{})
		f.expect(res, store.StatusRolledBack, "v2")
		// With a health check the unit need not outlive a settle window:
		// the crash is caught at the restart (already failed when polled)
		// or by the health check (exited just after), both honestly.
		if msg := res.Err.Error(); !strings.HasPrefix(msg, "restart:") && !strings.HasPrefix(msg, "health:") {
			t.Fatalf("error names neither the restart nor the health check: %v", res.Err)
		}
	})
	t.Run("install failure changes nothing", func(t *testing.T) {
		f.push("healthy", nil)
		f.repo.Git("rm", "-q", "install-ok")
		f.repo.Commit("no install-ok")
		res := f.deploy(Request{})
		f.expect(res, store.StatusFailed, "v2")
		if cur, _ := currentRelease(f.app); cur != good {
			t.Fatalf("current %s, want %s", cur, good)
		}
		names, _ := listReleases(f.app)
		for _, n := range names {
			if n == releaseName(time.Now(), res.NewSHA) {
				t.Fatalf("failed release %s left on disk", n)
			}
		}
	})
	t.Run("unknown ref fails at fetch", func(t *testing.T) {
		res := f.deploy(Request{Ref: "no-such-branch"})
		f.expect(res, store.StatusFailed, "v2")
		steps, _ := f.db.Steps(context.Background(), res.DeploymentID)
		if len(steps) != 1 || steps[0].Name != "fetch" || steps[0].Status != store.StepFailed {
			t.Fatalf("steps %+v, want one failed fetch", steps)
		}
	})
	t.Run("deploy a tag by ref", func(t *testing.T) {
		f.repo.Git("tag", "v1.0", sha1)
		f.repo.Git("push", "-q", "origin", "v1.0")
		res := f.deploy(Request{Ref: "v1.0"})
		f.expect(res, store.StatusSucceeded, "v1")
		if res.NewSHA != sha1 {
			t.Fatalf("deployed %s, want %s", res.NewSHA, sha1)
		}
	})
	t.Run("rollback command returns to the previous good release", func(t *testing.T) {
		env, _ := f.cfg.Lookup("hello", "production")
		before, _ := currentRelease(f.app)
		res, err := f.engine.Rollback(context.Background(), f.collab, RollbackRequest{Env: env, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		f.expect(res, store.StatusSucceeded, "v2")
		if res.Release != good || res.PreviousRelease != before {
			t.Fatalf("rollback %s → %s, want %s → %s", res.PreviousRelease, res.Release, before, good)
		}
		d, _ := f.db.Deployment(context.Background(), res.DeploymentID)
		if d.Trigger != store.TriggerRollback {
			t.Fatalf("trigger %s, want rollback", d.Trigger)
		}
		// Nothing older is good any more on disk: a second rollback refuses
		// rather than flip back to the release just left.
		res, err = f.engine.Rollback(context.Background(), f.collab, RollbackRequest{Env: env, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status == store.StatusSucceeded && res.Release == before {
			t.Fatalf("second rollback flipped back to %s", before)
		}
		// --to a release by name works in both directions.
		res, err = f.engine.Rollback(context.Background(), f.collab, RollbackRequest{Env: env, To: before, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		f.expect(res, store.StatusSucceeded, "v1")
	})
	t.Run("live status", func(t *testing.T) {
		env, _ := f.cfg.Lookup("hello", "production")
		l := Inspect(context.Background(), f.collab, env, 5*time.Second)
		cur, _ := currentRelease(f.app)
		if l.CurrentRelease != cur || l.BranchHead == "" || l.BranchError != "" {
			t.Fatalf("live %+v, current %s", l, cur)
		}
		if !l.Units[f.unit] || l.Healthy == nil || !*l.Healthy {
			t.Fatalf("live %+v: want the unit active and healthy", l)
		}
		f.mgr.MustSystemctl(t, "stop", f.unit)
		l = Inspect(context.Background(), f.collab, env, 5*time.Second)
		if l.Units[f.unit] || l.Healthy == nil || *l.Healthy {
			t.Fatalf("live after stop %+v: want the unit inactive and unhealthy", l)
		}
		// Put it back for the subtests that follow.
		f.mgr.MustSystemctl(t, "start", f.unit)
	})
	t.Run("releases are pruned", func(t *testing.T) {
		names, _ := listReleases(f.app)
		if len(names) > 3 {
			t.Fatalf("%d releases kept, keep_releases is 3: %v", len(names), names)
		}
	})
	t.Run("a unit that cannot start: restart and rollback fail, operator needed", func(t *testing.T) {
		// A unit whose program cannot be executed fails its restart
		// deterministically with Type=exec (the start job waits for the
		// exec). The rollback cannot restart the old release either, and
		// must say so.
		good, err := os.ReadFile(filepath.Join(f.mgr.UnitDir, f.unit))
		if err != nil {
			t.Fatal(err)
		}
		f.mgr.WriteUnit(t, f.unit, "[Service]\nType=exec\nExecStart=/nonexistent/fraisier-test-app\n")
		defer f.mgr.WriteUnit(t, f.unit, string(good))
		before, _ := currentRelease(f.app)
		f.push("healthy", ok)
		res := f.deploy(Request{})
		if res.Status != store.StatusRollbackFailed {
			t.Fatalf("status %s (%v), want rollback_failed", res.Status, res.Err)
		}
		msg := res.Err.Error()
		if !strings.HasPrefix(msg, "restart:") || !strings.Contains(msg, "operator needed") {
			t.Fatalf("error %q: want the restart named and the operator called", msg)
		}
		if cur, _ := currentRelease(f.app); cur != before {
			t.Fatalf("current %s, want the previous release %s back", cur, before)
		}
		states, _ := f.db.FraiseStates(context.Background(), "hello", "production")
		if len(states) != 1 || states[0].BrokenSince == nil {
			t.Fatalf("state %+v: want broken_since set", states)
		}
	})
}

func assertReleaseState(t *testing.T, f *fixture, res Result, state string) {
	t.Helper()
	rels, err := f.db.Releases(context.Background(), "hello", "production")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rels {
		if r.SHA == res.NewSHA && r.State != state {
			t.Fatalf("release %s is %s, want %s", r.Name, r.State, state)
		}
	}
}

// TestConcurrentDeploysOfOneTarget: of two deployments started together,
// one runs and the other is refused naming the holder (or, with Wait,
// runs after it).
func TestConcurrentDeploysOfOneTarget(t *testing.T) {
	f := newFixture(t, "")
	f.push("healthy", nil)
	env, _ := f.cfg.Lookup("hello", "production")
	var wg sync.WaitGroup
	results := make([]error, 2)
	statuses := make([]store.Status, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner, _ := CurrentOwner()
			e := &Engine{Store: f.db, Progress: io.Discard, Owner: owner}
			res, err := e.Deploy(context.Background(), f.collab, Request{Env: env, Trigger: store.TriggerCLI, Actor: "test"})
			results[i], statuses[i] = err, res.Status
		}()
	}
	wg.Wait()
	var locked, ran int
	for i, err := range results {
		switch {
		case errors.Is(err, ErrLocked):
			locked++
			if !strings.Contains(err.Error(), "pid") && !strings.Contains(err.Error(), "/") {
				t.Errorf("lock error does not name the holder: %v", err)
			}
		case err == nil && statuses[i] == store.StatusSucceeded:
			ran++
		default:
			t.Errorf("deploy %d: %s, %v", i, statuses[i], err)
		}
	}
	if locked != 1 || ran != 1 {
		t.Fatalf("%d ran and %d were refused, want 1 and 1", ran, locked)
	}
}

// TestDeployMigrations: migrations run from the new release before the
// switch; when the release then fails its health check, the rollback
// migrates the database back down to the recorded revision.
func TestDeployMigrations(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "app.db")
	f := newFixture(t, fmt.Sprintf(`        database:
          tool: sql
          dir: migrations
          url: sqlite:///%s
          backup_before_deploy: true
`, dbPath))
	v1 := map[string]string{
		"migrations/001_init.up.sql":   "CREATE TABLE greeting (id INTEGER PRIMARY KEY, text TEXT);\n",
		"migrations/001_init.down.sql": "DROP TABLE greeting;\n",
	}
	f.push("healthy", v1)
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")
	if rev := f.revision(); rev != "1" {
		t.Fatalf("revision after v1: %q, want 1", rev)
	}

	v2 := map[string]string{
		"migrations/002_lang.up.sql":   "ALTER TABLE greeting ADD COLUMN lang TEXT;\n",
		"migrations/002_lang.down.sql": "ALTER TABLE greeting DROP COLUMN lang;\n",
	}
	f.push("unhealthy", v2)
	env, _ := f.cfg.Lookup("hello", "production")
	plan, err := f.engine.Plan(context.Background(), f.collab, Request{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.PendingMigrations) != 1 || !strings.Contains(plan.PendingMigrations[0], "002") || len(plan.Commits) != 1 {
		t.Fatalf("plan: pending %q (%s), commits %d; want 002 pending and 1 commit", plan.PendingMigrations, plan.MigrationsNote, len(plan.Commits))
	}
	if rev := f.revision(); rev != "1" {
		t.Fatalf("the plan changed the database: revision %q", rev)
	}
	res := f.deploy(Request{})
	f.expect(res, store.StatusRolledBack, "v1")
	if rev := f.revision(); rev != "1" {
		t.Fatalf("revision after the rolled back v2: %q, want 1", rev)
	}
	steps, _ := f.db.Steps(context.Background(), res.DeploymentID)
	var names []string
	for _, s := range steps {
		names = append(names, s.Name+":"+s.Status)
	}
	backups, _ := filepath.Glob(filepath.Join(f.app, "backups", "*"))
	// The first deployment had no database file yet, so nothing to back up.
	if len(backups) != 1 {
		t.Fatalf("backups before migrating: %v, want the one v2 made", backups)
	}
	for _, s := range steps {
		if s.Name == "migrate" && !strings.Contains(s.Detail, "; backup "+filepath.Join(f.app, "backups")) {
			t.Fatalf("migrate step does not say where the backup went: %q", s.Detail)
		}
	}
	want := "fetch:succeeded release:succeeded install:skipped migrate:succeeded switch:succeeded restart:succeeded health:failed rollback migrate:succeeded rollback switch:succeeded rollback restart:succeeded rollback health:succeeded"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("steps:\n%s\nwant:\n%s", got, want)
	}

	// A failing migration is undone before anything else changes.
	f.push("healthy", map[string]string{
		"migrations/002_lang.up.sql":  "ALTER TABLE greeting ADD COLUMN lang TEXT;\n",
		"migrations/003_bad.up.sql":   "THIS IS NOT SQL;\n",
		"migrations/003_bad.down.sql": "SELECT 1;\n",
	})
	res = f.deploy(Request{})
	f.expect(res, store.StatusFailed, "v1")
	if rev := f.revision(); rev != "1" {
		t.Fatalf("revision after the failed migration: %q, want 1", rev)
	}
}

// TestCancelAfterSwitchRollsBack: Ctrl-C or SIGTERM during the health
// check (after the switch) still rolls back, with the same guarantees.
func TestCancelAfterSwitchRollsBack(t *testing.T) {
	f := newFixture(t, "")
	f.push("healthy", nil)
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")
	before, _ := currentRelease(f.app)

	f.push("unhealthy", nil)
	env, _ := f.cfg.Lookup("hello", "production")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if cur, _ := currentRelease(f.app); cur != before {
				time.Sleep(100 * time.Millisecond)
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	res, err := f.engine.Deploy(ctx, f.collab, Request{Env: env, Trigger: store.TriggerCLI, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f.expect(res, store.StatusRolledBack, "v1")
	if !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("error %v does not say it was cancelled", res.Err)
	}
	if cur, _ := currentRelease(f.app); cur != before {
		t.Fatalf("current %s, want %s", cur, before)
	}
}

func serviceDir(app, layout string) string {
	if layout == "inplace" {
		return app
	}
	return filepath.Join(app, currentLink)
}

// TestInplaceTakesOverAnOldCheckout: an inplace checkout made before the
// git directory moved to the state directory (app_path/.git, HEAD
// detached at the commit it runs) is taken over: its .git is never read
// through git, but the commit it left is what a failed deployment returns
// to, as before the move.
func TestInplaceTakesOverAnOldCheckout(t *testing.T) {
	f := newLayoutFixture(t, "inplace", "")
	sha1 := f.push("healthy", nil)
	if err := os.MkdirAll(filepath.Dir(f.app), 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, filepath.Dir(f.app), "clone", "-q", f.repo.Dir, f.app)
	testenv.Git(t, f.app, "checkout", "-q", "--detach", sha1)
	f.mgr.MustSystemctl(t, "restart", f.unit)

	f.push("unhealthy", nil)
	res := f.deploy(Request{})
	f.expect(res, store.StatusRolledBack, "v1")
	if res.OldSHA != sha1 {
		t.Fatalf("deployed from %q, want the old checkout's %s", res.OldSHA, sha1)
	}
}

// TestDeployInplace: the first fraisier's layout, one checkout in
// app_path: deploy, upgrade, a failing release checked back out to the
// previous commit, untracked files (.env) kept throughout.
func TestDeployInplace(t *testing.T) {
	f := newLayoutFixture(t, "inplace", "")
	sha1 := f.push("healthy", nil)
	res := f.deploy(Request{})
	f.expect(res, store.StatusSucceeded, "v1")
	if err := os.WriteFile(filepath.Join(f.app, ".env"), []byte("SECRET=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sha2 := f.push("healthy", nil)
	res = f.deploy(Request{})
	f.expect(res, store.StatusSucceeded, "v2")
	if res.OldSHA != sha1 || res.NewSHA != sha2 {
		t.Fatalf("upgrade %s → %s, want %s → %s", res.OldSHA, res.NewSHA, sha1, sha2)
	}
	f.expect(f.deploy(Request{}), store.StatusSkipped, "v2")

	// The checkout's git directory is fraisier's, in its state directory:
	// app_path, where the service's user may write, holds no .git.
	gitDir := filepath.Join(f.cfg.State.Dir, "mirrors", "hello", "production")
	if _, err := os.Lstat(filepath.Join(f.app, ".git")); !os.IsNotExist(err) {
		t.Fatalf("app_path holds a .git (%v)", err)
	}
	f.push("unhealthy", nil)
	res = f.deploy(Request{})
	f.expect(res, store.StatusRolledBack, "v2")
	if head, err := git.InPlaceHead(context.Background(), gitDir); err != nil || head != sha2 {
		t.Fatalf("checkout at %s (%v) after the rollback, want %s", head, err, sha2)
	}
	if b, err := os.ReadFile(filepath.Join(f.app, ".env")); err != nil || string(b) != "SECRET=1\n" {
		t.Fatalf(".env after the rollback: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(f.app, releasesDir)); err == nil {
		t.Fatal("an inplace deployment made a releases directory")
	}

	// A pull request head has no branch to check out in place: refused
	// before the lock is taken, so nothing is recorded or touched.
	before, err := f.db.Deployments(context.Background(), store.DeploymentFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	// Another holds the lock: refused at once all the same, not "locked".
	ctx := context.Background()
	held := store.Lock{Target: store.Target{Fraise: "hello", Environment: "production"}, Owner: "another", Host: "elsewhere", PID: 1, Reason: "test"}
	if _, err := f.db.AcquireLock(ctx, held, time.Minute, func(store.Lock) bool { return false }); err != nil {
		t.Fatal(err)
	}
	defer f.db.ReleaseLock(ctx, held.Target, held.Owner)
	env, _ := f.cfg.Lookup("hello", "production")
	_, err = f.engine.Deploy(ctx, f.collab, Request{Env: env, Ref: "refs/pull/7/head", Trigger: store.TriggerCLI, Actor: "test"})
	if err == nil || !strings.Contains(err.Error(), "refs/pull/7/head: pull request heads deploy only with the releases layout") {
		t.Fatalf("deploy of a pull request head in place: %v, want it refused", err)
	}
	after, err := f.db.Deployments(context.Background(), store.DeploymentFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("the refused deploy recorded %d deployments", len(after)-len(before))
	}
	if head, err := git.InPlaceHead(context.Background(), gitDir); err != nil || head != sha2 {
		t.Fatalf("checkout at %s (%v) after the refusal, want %s", head, err, sha2)
	}
}
