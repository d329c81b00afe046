package deploy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// Faults from real parts (docs/reliability.md, "Faults from real parts"):
// each test breaks one real outside system the way it breaks in
// production (a git remote gone, a unit that cannot start, a health
// endpoint that hangs, a migration tool that is not installed; the disk,
// state database and PostgreSQL faults are in faults_*_test.go) and asserts
// the exact terminal state, the message, that what serves is what the
// record says, and that the next deployment, once the fault is gone,
// succeeds. A fault is given to the engine as a changed environment where
// fraises.yaml would change (f.envWith), never by a fake part.

// faultSnapshot is what a failed deployment that "changed nothing" must
// leave as it was.
type faultSnapshot struct {
	current  string
	onDisk   []string
	recorded map[string]string // release name → state
	state    store.FraiseState
	serving  string
}

func (f *fixture) snapshot() faultSnapshot {
	f.t.Helper()
	s := faultSnapshot{recorded: map[string]string{}}
	s.current, _ = currentRelease(f.app)
	s.onDisk, _ = listReleases(f.app)
	rels, err := f.db.Releases(context.Background(), "hello", "production")
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range rels {
		s.recorded[r.Name] = r.State
	}
	states, err := f.db.FraiseStates(context.Background(), "hello", "production")
	if err != nil {
		f.t.Fatal(err)
	}
	if len(states) == 1 {
		s.state = states[0]
	}
	s.serving = f.serving()
	return s
}

// assertUnchanged: current, what serves and the recorded current release
// and commit are as before; a release the failed deployment recorded is
// recorded bad. After failed (nothing switched) the releases on disk are
// exactly those of before; after rolled_back the bad release may stay on
// disk, kept for inspection until pruned.
func (f *fixture) assertUnchanged(before faultSnapshot, status store.Status) {
	f.t.Helper()
	after := f.snapshot()
	if after.current != before.current {
		f.t.Fatalf("current %q, want %q as before the fault", after.current, before.current)
	}
	for _, name := range after.onDisk {
		if !slices.Contains(before.onDisk, name) && (status == store.StatusFailed || after.recorded[name] != store.ReleaseBad) {
			f.t.Fatalf("releases on disk %v, want %v as before the fault (%s left, recorded %q)", after.onDisk, before.onDisk, name, after.recorded[name])
		}
	}
	for _, name := range before.onDisk {
		if !slices.Contains(after.onDisk, name) {
			f.t.Fatalf("release %s disappeared from disk", name)
		}
	}
	if after.serving != before.serving {
		f.t.Fatalf("service answers %q, want %q as before the fault", after.serving, before.serving)
	}
	if after.state.CurrentRelease != before.state.CurrentRelease || after.state.CurrentSHA != before.state.CurrentSHA {
		f.t.Fatalf("recorded current %s at %s, want %s at %s as before the fault",
			after.state.CurrentRelease, short(after.state.CurrentSHA), before.state.CurrentRelease, short(before.state.CurrentSHA))
	}
	for name, state := range after.recorded {
		was, ok := before.recorded[name]
		switch {
		case !ok && state != store.ReleaseBad:
			f.t.Fatalf("the failed deployment recorded release %s as %s, want bad", name, state)
		case ok && was != state:
			f.t.Fatalf("release %s went from %s to %s", name, was, state)
		}
	}
}

// assertRecorded: the record holds exactly the outcome the engine returned,
// with its message, and no step was left running.
func (f *fixture) assertRecorded(res Result) store.Deployment {
	f.t.Helper()
	ctx := context.Background()
	d, err := f.db.Deployment(ctx, res.DeploymentID)
	if err != nil {
		f.t.Fatal(err)
	}
	if d.Status != res.Status || d.FinishedAt == nil {
		f.t.Fatalf("recorded %s (finished %v), want %s, finished", d.Status, d.FinishedAt, res.Status)
	}
	if res.Err != nil && d.Error != res.Err.Error() {
		f.t.Fatalf("recorded error %q, want %q", d.Error, res.Err)
	}
	steps, err := f.db.Steps(ctx, res.DeploymentID)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, s := range steps {
		if s.Status == store.StepRunning || s.FinishedAt == nil {
			f.t.Fatalf("step %s left %s", s.Name, s.Status)
		}
	}
	return d
}

// stepNames is "name:status ..." of a deployment's steps.
func (f *fixture) stepNames(id int64) string {
	f.t.Helper()
	return stepNames(f.t, f.db, id)
}

// envWith is the environment as a changed fraises.yaml would give it.
func (f *fixture) envWith(change func(*config.Environment)) *config.Environment {
	f.t.Helper()
	c := *lookup(f.t, f.cfg, "hello", "production")
	if change != nil {
		change(&c)
	}
	return &c
}

// deployEnv deploys env; by the command line unless req says.
func (f *fixture) deployEnv(env *config.Environment, req Request) Result {
	f.t.Helper()
	req.Env = env
	if req.Trigger == "" {
		req.Trigger, req.Actor = store.TriggerCLI, "test"
	}
	res, err := f.engine.Deploy(context.Background(), f.collab, req)
	if err != nil {
		f.t.Fatalf("Deploy: %v", err)
	}
	return res
}

// TestFaultGitRemote: the remote cannot be reached (its directory gone, a
// file:// URL of a directory that does not exist, a loopback port nothing
// listens on), or the requested commit is not in the repository. Each ends
// failed at the fetch with a message naming the remote or the commit;
// nothing changed; the next deployment once the remote is back succeeds.
func TestFaultGitRemote(t *testing.T) {
	f := newFixture(t, "")
	f.push("healthy", nil)
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")
	sha2 := f.push("healthy", nil) // what every faulty deployment asks for

	root := filepath.Dir(f.repo.Dir)
	port := testenv.FreePort(t)
	// A remote that accepts connections and never answers (a hung server,
	// a firewall that swallows packets): only the fetch timeout ends it.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	hungURL := "https://" + hung.Addr().String() + "/hello.git"
	for _, tc := range []struct {
		name    string
		remote  string        // git_repo for this deployment; "" keeps it
		timeout time.Duration // timeouts.fetch; 0 keeps it
		break_  func() func() // breaks the part, returns the repair
		want    []string      // in the message
		within  time.Duration
	}{
		{
			name: "origin directory removed",
			break_: func() func() {
				gone := f.repo.Dir + ".gone"
				if err := os.Rename(f.repo.Dir, gone); err != nil {
					t.Fatal(err)
				}
				return func() {
					if err := os.Rename(gone, f.repo.Dir); err != nil {
						t.Fatal(err)
					}
				}
			},
			want:   []string{"fetch " + f.repo.Dir + ": remote unreachable", "does not appear to be a git repository"},
			within: 5 * time.Second,
		},
		{
			name:   "file URL of a missing directory",
			remote: "file://" + filepath.Join(root, "missing.git"),
			want:   []string{"fetch file://" + filepath.Join(root, "missing.git") + ": remote unreachable", "does not appear to be a git repository"},
			within: 5 * time.Second,
		},
		{
			name:   "loopback port with nothing listening",
			remote: fmt.Sprintf("https://127.0.0.1:%d/hello.git", port),
			want:   []string{fmt.Sprintf("fetch https://127.0.0.1:%d/hello.git: remote unreachable", port), "Couldn't connect to server"},
			within: 5 * time.Second,
		},
		{
			name:    "remote accepts and never answers",
			remote:  hungURL,
			timeout: 2 * time.Second,
			want:    []string{"fetch: timed out after 2s", "fetch " + hungURL},
			within:  8 * time.Second,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot()
			env := f.envWith(func(e *config.Environment) {
				if tc.remote != "" {
					e.GitRepo = tc.remote
				}
				if tc.timeout != 0 {
					e.Timeouts.Fetch = config.Duration(tc.timeout)
				}
			})
			if tc.break_ != nil {
				defer tc.break_()()
			}
			start := time.Now()
			res := f.deployEnv(env, Request{})
			took := time.Since(start)
			if res.Status != store.StatusFailed {
				t.Fatalf("status %s (%v), want failed", res.Status, res.Err)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Err.Error(), w) {
					t.Fatalf("message %q does not say %q", res.Err, w)
				}
			}
			if got := f.stepNames(res.DeploymentID); got != "fetch:failed" {
				t.Fatalf("steps %s, want only a failed fetch", got)
			}
			if took > tc.within {
				t.Fatalf("failed after %s, want within %s", took, tc.within)
			}
			f.assertRecorded(res)
			f.assertUnchanged(before, res.Status)
			t.Logf("%s: failed in %s: %v", tc.name, took.Round(time.Millisecond), res.Err)
		})
	}

	t.Run("remote back: the deployment succeeds", func(t *testing.T) {
		res := f.deploy(Request{})
		f.expect(res, store.StatusSucceeded, "v2")
		if res.NewSHA != sha2 {
			t.Fatalf("deployed %s, want %s", res.NewSHA, sha2)
		}
	})

	// A commit that exists only in a developer's clone (never pushed):
	// named in full or abbreviated, it is not in the repository.
	f.repo.Write("VERSION", "unpushed\n")
	f.repo.Git("commit", "-q", "-am", "never pushed")
	unpushed := f.repo.Git("rev-parse", "HEAD")
	for _, ref := range []string{unpushed, unpushed[:10]} {
		t.Run("commit not in the repository "+ref[:10]+fmt.Sprintf(" (%d digits)", len(ref)), func(t *testing.T) {
			before := f.snapshot()
			res := f.deploy(Request{Ref: ref})
			if res.Status != store.StatusFailed {
				t.Fatalf("status %s (%v), want failed", res.Status, res.Err)
			}
			// A full SHA is only ever a commit's name.
			want := "fetch: resolve " + ref + ": no such branch, tag or commit"
			if len(ref) == 40 {
				want = "fetch: resolve " + ref + ": no such commit"
			}
			if !strings.HasPrefix(res.Err.Error(), want) {
				t.Fatalf("message %q, want it to start %q", res.Err, want)
			}
			if got := f.stepNames(res.DeploymentID); got != "fetch:failed" {
				t.Fatalf("steps %s, want only a failed fetch", got)
			}
			d := f.assertRecorded(res)
			if d.RequestedRef != ref || d.NewSHA != "" {
				t.Fatalf("recorded ref %q → %q, want %q → nothing", d.RequestedRef, d.NewSHA, ref)
			}
			f.assertUnchanged(before, res.Status)
		})
	}
}

// pushTree commits what prepare leaves in the work tree (after writing
// VERSION and behaviour as push does) and returns its SHA; for modes and
// deletions push cannot express.
func (f *fixture) pushTree(behaviour string, prepare func(work string)) string {
	f.t.Helper()
	f.version++
	f.repo.Write("VERSION", fmt.Sprintf("v%d\n", f.version))
	f.repo.Write("behaviour", behaviour+"\n")
	prepare(f.repo.Work)
	return f.repo.Commit(fmt.Sprintf("v%d %s", f.version, behaviour))
}

// TestFaultUnits: the unit the configuration names does not exist, and a
// release whose unit cannot start (its program missing from the release,
// or exiting at once).
func TestFaultUnits(t *testing.T) {
	f := newFixture(t, "")
	// The unit runs the release's own start script (Type=exec: the start
	// job fails when the program cannot be executed), so that what fails
	// to start is the new release, and the previous one can start again.
	bin := testenv.BuildHTTPApp(t)
	f.mgr.WriteUnit(t, f.unit, fmt.Sprintf("[Unit]\nDescription=fraisier fault test app\n[Service]\nType=exec\nExecStart=%s\nRestart=no\n",
		filepath.Join(f.app, currentLink, "run")))
	run := fmt.Sprintf("#!/bin/sh\nexec %s -addr 127.0.0.1:%d -dir %s\n", bin, f.port, filepath.Join(f.app, currentLink))
	withRun := func(script string) func(string) {
		return func(work string) {
			p := filepath.Join(work, "run")
			if script == "" {
				os.Remove(p)
				return
			}
			if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, 0o755)
		}
	}
	f.pushTree("healthy", withRun(run))
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")
	good, _ := currentRelease(f.app)

	// The units are checked before the switch: a unit that does not
	// exist fails the deployment while the previous release still serves,
	// untouched, instead of calling the operator after a switch.
	t.Run("unit named in the configuration does not exist", func(t *testing.T) {
		missing := strings.TrimSuffix(f.unit, "hello.service") + "nosuch.service"
		f.pushTree("healthy", withRun(run))
		before := f.snapshot()
		env := f.envWith(func(e *config.Environment) { e.SystemdService = config.StringList{missing} })
		res := f.deployEnv(env, Request{})
		if res.Status != store.StatusFailed {
			t.Fatalf("status %s (%v), want failed", res.Status, res.Err)
		}
		msg := res.Err.Error()
		for _, w := range []string{"switch: unit " + missing + " not found: no unit file defines it"} {
			if !strings.Contains(msg, w) {
				t.Fatalf("message %q does not say %q", msg, w)
			}
		}
		want := "fetch:succeeded release:succeeded install:skipped migrate:skipped switch:failed"
		if got := f.stepNames(res.DeploymentID); got != want {
			t.Fatalf("steps %s, want %s", got, want)
		}
		f.assertRecorded(res)
		f.assertUnchanged(before, res.Status)
		states, _ := f.db.FraiseStates(context.Background(), "hello", "production")
		if len(states) != 1 || states[0].BrokenSince != nil {
			t.Fatalf("state %+v: want broken_since unset (nothing was broken)", states)
		}
	})

	for _, tc := range []struct {
		name   string
		script string // the new release's run; "" leaves it out
		want   []string
	}{
		{"the release's program is missing", "", []string{"restart: unit " + f.unit + " restart failed", "exit status 203", "rolled back to " + good}},
		{"the release's program exits at once", "#!/bin/sh\necho failing as told >&2\nexit 1\n", []string{"rolled back to " + good}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.pushTree("healthy", withRun(tc.script))
			before := f.snapshot()
			res := f.deploy(Request{})
			f.expect(res, store.StatusRolledBack, "v1")
			msg := res.Err.Error()
			if !strings.HasPrefix(msg, "restart:") && !strings.HasPrefix(msg, "health:") {
				t.Fatalf("message %q names neither the restart nor the health check", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Fatalf("message %q does not say %q", msg, w)
				}
			}
			f.assertRecorded(res)
			f.assertUnchanged(before, res.Status)
			t.Logf("%s: %s", f.stepNames(res.DeploymentID), msg)
		})
	}
	t.Run("a release that starts: succeeds", func(t *testing.T) {
		f.pushTree("healthy", withRun(run))
		f.expect(f.deploy(Request{}), store.StatusSucceeded, fmt.Sprintf("v%d", f.version))
	})
}

// TestFaultHealthHangs: the new release's health endpoint accepts requests
// and never answers (httpapp's hang). Each try is cut by its timeout, and
// the check by its retries or its deadline, whichever comes first; the
// deployment rolls back to the previous release, which answers healthy,
// in a bounded time.
func TestFaultHealthHangs(t *testing.T) {
	f := newFixture(t, "")
	f.push("healthy", nil)
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")
	good, _ := currentRelease(f.app)

	for _, tc := range []struct {
		name  string
		check func(*config.HealthCheck) // nil: the fixture's (500ms a try, 4 retries, 200ms apart, 5s deadline)
		want  []string
		// bound is what the health step may take: the tries' timeouts and
		// pauses, or the deadline, plus scheduling slack.
		bound time.Duration
	}{
		{
			name:  "per-try timeout, retries spent",
			want:  []string{"health: GET http://127.0.0.1:", "no answer within 500ms (5 tries in"},
			bound: 5*500*time.Millisecond + 4*200*time.Millisecond + time.Second,
		},
		{
			name: "deadline before the retries",
			check: func(hc *config.HealthCheck) {
				hc.Timeout = config.Duration(time.Second)
				hc.Retries = 100
				hc.Interval = config.Duration(100 * time.Millisecond)
				hc.Deadline = config.Duration(2500 * time.Millisecond)
			},
			want:  []string{"health: GET http://127.0.0.1:", "no answer within", "deadline passed"},
			bound: 2500*time.Millisecond + time.Second,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.push("hang", nil)
			before := f.snapshot()
			env := f.envWith(func(e *config.Environment) {
				if tc.check != nil {
					hc := *e.HealthCheck
					tc.check(&hc)
					e.HealthCheck = &hc
				}
			})
			start := time.Now()
			res := f.deployEnv(env, Request{})
			took := time.Since(start)
			f.expect(res, store.StatusRolledBack, "v1")
			msg := res.Err.Error()
			for _, w := range append(tc.want, "rolled back to "+good) {
				if !strings.Contains(msg, w) {
					t.Fatalf("message %q does not say %q", msg, w)
				}
			}
			want := "fetch:succeeded release:succeeded install:skipped migrate:skipped switch:succeeded restart:succeeded health:failed rollback switch:succeeded rollback restart:succeeded rollback health:succeeded"
			if got := f.stepNames(res.DeploymentID); got != want {
				t.Fatalf("steps %s, want %s", got, want)
			}
			steps, _ := f.db.Steps(context.Background(), res.DeploymentID)
			for _, s := range steps {
				if s.Name == "health" {
					if d := s.FinishedAt.Sub(s.StartedAt); d > tc.bound {
						t.Fatalf("the health step took %s, want at most %s", d, tc.bound)
					}
				}
			}
			f.assertRecorded(res)
			f.assertUnchanged(before, res.Status)
			if got := f.get("/health"); got != "ok v1" {
				t.Fatalf("/health after the rollback answers %q, want ok v1", got)
			}
			t.Logf("rolled back in %s: %s", took.Round(time.Millisecond), msg)
		})
	}
}

// get returns what the service answers on path, or why it did not.
func (f *fixture) get(path string) string {
	f.t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", f.port, path))
	if err != nil {
		return "down: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// parseDatabase is the database section of a fraises.yaml, defaults and
// validation applied as for a real file.
func parseDatabase(t *testing.T, yaml string) *config.Database {
	t.Helper()
	cfg, err := config.Parse("fraises.yaml", []byte(`
fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: /nonexistent/origin.git
        app_path: /nonexistent/srv/hello
        database:
`+yaml), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	env, err := cfg.Lookup("hello", "production")
	if err != nil {
		t.Fatal(err)
	}
	return env.Database
}

// TestFaultMigrationToolMissing: the migration tool cannot run: alembic's
// interpreter is not there, a virtualenv without alembic, a command tool's
// program that is not installed. The migrate step fails before the switch:
// failed, the new release removed (recorded bad), nothing changed.
func TestFaultMigrationToolMissing(t *testing.T) {
	f := newFixture(t, "")
	f.push("healthy", nil)
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")
	root := t.TempDir()
	venv := filepath.Join(root, "venv")
	if out, err := exec.Command(systemPython, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		testenv.Unavailable(t, "make a virtualenv with %s: %v %s", systemPython, err, out)
	}
	url := "sqlite:///" + filepath.Join(root, "app.db")

	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{
			name: "alembic's interpreter is not there",
			yaml: fmt.Sprintf("          tool: alembic\n          python: %s\n          url: %s\n", filepath.Join(root, "nonexistent", "python3"), url),
			want: []string{"migrate: read current revision:", filepath.Join(root, "nonexistent", "python3"), "no such file or directory"},
		},
		{
			name: "a virtualenv without alembic",
			yaml: fmt.Sprintf("          tool: alembic\n          python: %s\n          url: %s\n", filepath.Join(venv, "bin", "python3"), url),
			want: []string{"migrate: read current revision:", "No module named alembic"},
		},
		{
			name: "the command tool's program is not installed",
			yaml: fmt.Sprintf("          tool: command\n          up: [%[1]s, up]\n          down: [%[1]s, down, '{revision}']\n          current: [%[1]s, current]\n          url: %[2]s\n",
				filepath.Join(root, "nonexistent", "migrate-tool"), url),
			want: []string{"migrate: read current revision:", filepath.Join(root, "nonexistent", "migrate-tool"), "no such file or directory"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.push("healthy", nil)
			before := f.snapshot()
			db := parseDatabase(t, tc.yaml)
			res := f.deployEnv(f.envWith(func(e *config.Environment) { e.Database = db }), Request{})
			if res.Status != store.StatusFailed {
				t.Fatalf("status %s (%v), want failed", res.Status, res.Err)
			}
			msg := res.Err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Fatalf("message %q does not say %q", msg, w)
				}
			}
			if got, want := f.stepNames(res.DeploymentID), "fetch:succeeded release:succeeded install:skipped migrate:failed"; got != want {
				t.Fatalf("steps %s, want %s", got, want)
			}
			f.assertRecorded(res)
			f.assertUnchanged(before, res.Status)
			assertReleaseState(t, f, res, store.ReleaseBad)
			t.Log(msg)
		})
	}
	t.Run("tool back (no database): succeeds", func(t *testing.T) {
		f.expect(f.deploy(Request{}), store.StatusSucceeded, fmt.Sprintf("v%d", f.version))
	})
}
