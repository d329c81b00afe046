package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/systemd"
	"github.com/fraiseql/fraisier/internal/testenv"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// schedFixture is a scheduled fraise on real parts: a bare git origin, a
// real systemd user manager whose timers run the jobs, and a SQLite state
// database. Each deployment is given its jobs as YAML, since changing them
// is what these tests are about.
type schedFixture struct {
	t       *testing.T
	mgr     *tsystemd.Manager
	root    string
	repo    *testenv.Origin
	ticks   string // the file the tick job appends to, outside any release
	db      *store.DB
	engine  *Engine
	collab  Collaborators
	log     *bytes.Buffer
	version int
}

func newSchedFixture(t *testing.T) *schedFixture {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		testenv.Unavailable(t, "systemd-analyze not installed")
	}
	mgr := tsystemd.UserManager(t)
	root := t.TempDir()
	f := &schedFixture{t: t, mgr: mgr, root: root, repo: testenv.NewOrigin(t, root),
		ticks: filepath.Join(root, "ticks"), log: &bytes.Buffer{}}

	f.collab = RealCollaborators(mgr.Env())
	if mgr.Private {
		// The engine's default user unit directory must be the one this
		// manager reads, or every test below would pass for wrong reasons.
		u, err := f.collab.JobUnits("user")
		if err != nil {
			t.Fatal(err)
		}
		if u.UnitDir() != mgr.UnitDir {
			t.Fatalf("user scope writes units to %s, the manager reads %s", u.UnitDir(), mgr.UnitDir)
		}
	} else {
		// A borrowed session manager: keep out of the real ~/.config.
		f.collab.JobUnits = func(scope string) (JobUnits, error) {
			m, err := systemd.New(systemd.Options{Scope: systemd.Scope(scope), Env: mgr.Env(), UnitDir: mgr.UnitDir})
			if err != nil {
				return nil, err
			}
			return m, nil
		}
	}
	f.db = openState(t, filepath.Join(root, "state.db"))
	f.engine = newEngine(t, f.db, f.log)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine output:\n%s\nmanager log:\n%s", f.log, mgr.LogTail(4<<10))
		}
	})
	return f
}

// app is the app_path of an environment of the fraise.
func (f *schedFixture) app(env string) string { return filepath.Join(f.root, "srv", env) }

// job renders one job's YAML; its units are named with the manager's
// prefix so that a borrowed manager's other units are never touched.
func (f *schedFixture) job(env, name, schedule string, command ...string) string {
	quoted := make([]string, len(command))
	for i, c := range command {
		quoted[i] = fmt.Sprintf("%q", c)
	}
	return fmt.Sprintf(`
          - name: %s
            %s
            command: [%s]
            systemd_service: %s
            systemd_timer: %s`, name, schedule, strings.Join(quoted, ", "),
		f.mgr.Unit(env+"-"+name+".service"), f.mgr.Unit(env+"-"+name+".timer"))
}

func (f *schedFixture) tick(env, schedule string) string {
	return f.job(env, "tick", schedule, "bin/tick", f.ticks)
}

func (f *schedFixture) nightly(env string) string {
	return f.job(env, "nightly", `schedule: "0 3 * * *"`, "bin/nightly")
}

// env parses a configuration in which env has the given jobs.
func (f *schedFixture) env(env string, jobs ...string) *config.Environment {
	f.t.Helper()
	yaml := fmt.Sprintf(`
fraises:
  cron:
    type: scheduled
    environments:
      %s:
        branch: main
        git_repo: %s
        app_path: %s
        scope: user
        keep_releases: 3
        jobs:%s
`, env, f.repo.Dir, f.app(env), strings.Join(jobs, ""))
	return lookup(f.t, parseConfig(f.t, f.root, yaml), "cron", env)
}

// push commits a version whose tick job appends "v<N> <job name>" to the
// file named by its argument.
func (f *schedFixture) push() string {
	f.t.Helper()
	f.version++
	files := map[string]string{
		"VERSION":     fmt.Sprintf("v%d\n", f.version),
		"bin/tick":    "#!/bin/sh\necho \"$(cat VERSION) $FRAISIER_JOB\" >> \"$1\"\n",
		"bin/nightly": "#!/bin/sh\nexit 0\n",
	}
	for name, content := range files {
		f.repo.WriteMode(name, content, 0o755)
	}
	return f.repo.Commit(fmt.Sprintf("v%d", f.version))
}

func (f *schedFixture) deploy(c Collaborators, env *config.Environment) Result {
	f.t.Helper()
	res, err := f.engine.Deploy(context.Background(), c, Request{Env: env, Trigger: store.TriggerCLI, Actor: "test"})
	if err != nil {
		f.t.Fatalf("Deploy: %v", err)
	}
	return res
}

func (f *schedFixture) expect(res Result, status store.Status) {
	f.t.Helper()
	if res.Status != status {
		f.t.Fatalf("status %s (%v), want %s", res.Status, res.Err, status)
	}
}

// steps returns the deployment's steps as name:status.
func (f *schedFixture) steps(id int64) string {
	f.t.Helper()
	return stepNames(f.t, f.db, id)
}

// unitFiles returns the unit files in the manager's unit directory.
func (f *schedFixture) unitFiles() map[string]string {
	f.t.Helper()
	entries, err := os.ReadDir(f.mgr.UnitDir)
	if err != nil {
		f.t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), f.mgr.Prefix) {
			b, err := os.ReadFile(filepath.Join(f.mgr.UnitDir, e.Name()))
			if err != nil {
				f.t.Fatal(err)
			}
			files[e.Name()] = string(b)
		}
	}
	return files
}

func (f *schedFixture) timer(name string) (systemd.TimerStatus, error) {
	u, err := f.collab.JobUnits("user")
	if err != nil {
		f.t.Fatal(err)
	}
	return u.TimerStatus(context.Background(), name)
}

// expectArmed fails unless the timer is active with a next elapse.
func (f *schedFixture) expectArmed(name string) {
	f.t.Helper()
	st, err := f.timer(name)
	if err != nil || !st.Active || (st.NextElapse.IsZero() && !st.Running) {
		f.t.Fatalf("timer %s: %+v, %v; want active with a next elapse", name, st, err)
	}
}

func (f *schedFixture) expectGone(name string) {
	f.t.Helper()
	if st, err := f.timer(name); !errors.Is(err, systemd.ErrUnitNotFound) {
		f.t.Fatalf("timer %s: %+v, %v; want it gone", name, st, err)
	}
}

// waitTick waits until the tick job has appended line, which proves that
// the timer fires and that its service runs the current release.
func (f *schedFixture) waitTick(line string) {
	f.t.Helper()
	var b []byte
	if !testenv.Eventually(15*time.Second, 100*time.Millisecond, func() bool {
		b, _ = os.ReadFile(f.ticks)
		return slices.Contains(strings.Split(string(b), "\n"), line)
	}) {
		f.t.Fatalf("no line %q from the tick job within 15s; the file holds:\n%s", line, b)
	}
}

// failingEnable is the real JobUnits except that its first Enable fails.
// It exists only because the real part cannot be made to fail on demand
// after the switch; the calls after the first (the restoration's) are
// real.
type failingEnable struct {
	JobUnits
	failed bool
}

func (f *failingEnable) Enable(ctx context.Context, now bool, units ...string) error {
	if !f.failed {
		f.failed = true
		return errors.New("enable: injected failure")
	}
	return f.JobUnits.Enable(ctx, now, units...)
}

func withFailingEnable(c Collaborators) Collaborators {
	inner := c.JobUnits
	c.JobUnits = func(scope string) (JobUnits, error) {
		u, err := inner(scope)
		if err != nil {
			return nil, err
		}
		return &failingEnable{JobUnits: u}, nil
	}
	return c
}

// TestDeployScheduled takes a scheduled fraise through its life on a real
// systemd user manager: first deployment, a timer that really fires, the
// skip, jobs stop and the deployment that restarts them, a job removed,
// a command that cannot run (refused before the switch), and a failure
// after the switch that puts the previous unit files and timers back.
func TestDeployScheduled(t *testing.T) {
	f := newSchedFixture(t)
	const env = "production"
	tick, nightly := f.mgr.Unit(env+"-tick.timer"), f.mgr.Unit(env+"-nightly.timer")
	both := f.env(env, f.tick(env, `on_calendar: "*:*:0/5"`), f.nightly(env))

	f.push()
	res := f.deploy(f.collab, both)
	f.expect(res, store.StatusSucceeded)
	want := "fetch:succeeded release:succeeded install:skipped render units:succeeded migrate:skipped switch:succeeded install units:succeeded health:succeeded"
	if got := f.steps(res.DeploymentID); got != want {
		t.Fatalf("steps:\n%s\nwant:\n%s", got, want)
	}
	units := f.unitFiles()
	if len(units) != 4 {
		t.Fatalf("unit files %v, want a service and a timer per job", keys(units))
	}
	svc := units[f.mgr.Unit(env+"-tick.service")]
	for _, want := range []string{
		"WorkingDirectory=" + filepath.Join(f.app(env), currentLink) + "\n",
		"ExecStart=" + filepath.Join(f.app(env), currentLink, "bin", "tick") + " " + f.ticks + "\n",
		`Environment="FRAISIER_JOB=tick"`,
	} {
		if !strings.Contains(svc, want) {
			t.Fatalf("tick service lacks %q:\n%s", want, svc)
		}
	}
	f.waitTick("v1 tick")
	f.expectArmed(tick)
	f.expectArmed(nightly)
	states, err := f.db.JobStates(context.Background(), "cron", env)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 || states[0].Job != "nightly" || states[0].UnitHash == "" || states[1].Job != "tick" || states[1].UnitHash == "" {
		t.Fatalf("job states %+v, want nightly and tick with their unit hashes", states)
	}

	t.Run("same commit is skipped", func(t *testing.T) {
		res := f.deploy(f.collab, both)
		f.expect(res, store.StatusSkipped)
	})

	t.Run("jobs stop, and a deployment restarts them", func(t *testing.T) {
		stopped, err := f.engine.StopJobs(context.Background(), f.collab, both)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{tick, nightly}, stopped); diff != "" {
			t.Fatalf("stopped (-want +got):\n%s", diff)
		}
		if st, err := f.timer(tick); err != nil || st.Active {
			t.Fatalf("tick after stop: %+v, %v", st, err)
		}
		res := f.deploy(f.collab, both)
		f.expect(res, store.StatusSucceeded)
		if !strings.Contains(f.log.String(), "is current but timer "+tick+" is not active: redeploying") {
			t.Fatalf("the redeployment does not say why:\n%s", f.log)
		}
		f.expectArmed(tick)
		f.expectArmed(nightly)
	})

	onlyTick := f.env(env, f.tick(env, `on_calendar: "*:*:0/5"`))
	t.Run("a removed job loses its units", func(t *testing.T) {
		f.push()
		res := f.deploy(f.collab, onlyTick)
		f.expect(res, store.StatusSucceeded)
		if diff := cmp.Diff([]string{f.mgr.Unit(env + "-tick.service"), tick}, keys(f.unitFiles())); diff != "" {
			t.Fatalf("unit files (-want +got):\n%s", diff)
		}
		f.expectGone(nightly)
		f.expectArmed(tick)
		f.waitTick("v2 tick")
		states, _ := f.db.JobStates(context.Background(), "cron", env)
		if len(states) != 2 || states[0].Job != "nightly" || states[0].UnitHash != "" || states[1].UnitHash == "" {
			t.Fatalf("job states %+v, want nightly without units and tick with", states)
		}
	})

	t.Run("a command that cannot run fails before the switch", func(t *testing.T) {
		before, _ := currentRelease(f.app(env))
		units := f.unitFiles()
		broken := f.env(env, f.tick(env, `on_calendar: "*:*:0/5"`),
			f.job(env, "broken", `on_calendar: "daily"`, "no-such-program-fraisier-test"))
		res := f.deploy(f.collab, broken)
		f.expect(res, store.StatusFailed)
		if !strings.Contains(res.Err.Error(), "job broken: program no-such-program-fraisier-test") {
			t.Fatalf("error does not name the job and program: %v", res.Err)
		}
		if got := f.steps(res.DeploymentID); !strings.HasSuffix(got, "render units:failed") {
			t.Fatalf("steps %s, want the last to be a failed render units", got)
		}
		if cur, _ := currentRelease(f.app(env)); cur != before {
			t.Fatalf("current %s, want %s", cur, before)
		}
		if diff := cmp.Diff(units, f.unitFiles()); diff != "" {
			t.Fatalf("unit files changed (-before +after):\n%s", diff)
		}
		f.expectArmed(tick)
	})

	t.Run("a failure after the switch restores units and timers", func(t *testing.T) {
		before, _ := currentRelease(f.app(env))
		units := f.unitFiles()
		f.push()
		changed := f.env(env, f.tick(env, `on_calendar: "*:*:0/7"`), f.nightly(env))
		res := f.deploy(withFailingEnable(f.collab), changed)
		f.expect(res, store.StatusRolledBack)
		if !strings.Contains(res.Err.Error(), "injected failure") {
			t.Fatalf("error %v does not carry the cause", res.Err)
		}
		want := "fetch:succeeded release:succeeded install:skipped render units:succeeded migrate:skipped switch:succeeded install units:failed rollback switch:succeeded rollback units:succeeded"
		if got := f.steps(res.DeploymentID); got != want {
			t.Fatalf("steps:\n%s\nwant:\n%s", got, want)
		}
		if cur, _ := currentRelease(f.app(env)); cur != before {
			t.Fatalf("current %s, want %s", cur, before)
		}
		if diff := cmp.Diff(units, f.unitFiles()); diff != "" {
			t.Fatalf("unit files not restored (-before +after):\n%s", diff)
		}
		f.expectArmed(tick)
		f.expectGone(nightly)
	})
}

// TestDeployScheduledFirstFailure: a first deployment that fails after the
// switch has no previous units to restore: the ones it installed go, with
// its current link, rather than fire into a release that is gone.
func TestDeployScheduledFirstFailure(t *testing.T) {
	f := newSchedFixture(t)
	const env = "staging"
	f.push()
	res := f.deploy(withFailingEnable(f.collab), f.env(env, f.tick(env, `on_calendar: "*:*:0/5"`)))
	f.expect(res, store.StatusFailed)
	want := "fetch:succeeded release:succeeded install:skipped render units:succeeded migrate:skipped switch:succeeded install units:failed rollback switch:succeeded rollback units:succeeded"
	if got := f.steps(res.DeploymentID); got != want {
		t.Fatalf("steps:\n%s\nwant:\n%s", got, want)
	}
	if cur, _ := currentRelease(f.app(env)); cur != "" {
		t.Fatalf("current %s after a failed first deployment", cur)
	}
	if files := f.unitFiles(); len(files) != 0 {
		t.Fatalf("unit files left: %v", keys(files))
	}
	f.expectGone(f.mgr.Unit(env + "-tick.timer"))
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestOwnedUnits: a target owns the rendered units whose service names it,
// whatever their names, and not those of a target whose name starts like
// its own.
func TestOwnedUnits(t *testing.T) {
	dir := t.TempDir()
	m, err := systemd.New(systemd.Options{Scope: systemd.ScopeUser, UnitDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, text []byte) {
		t.Helper()
		if _, err := m.WriteUnit(name, text); err != nil {
			t.Fatal(err)
		}
	}
	render := func(name, target string) {
		t.Helper()
		j := systemd.JobUnit{Name: name, ExecStart: []string{"/bin/true"}, OnCalendar: "daily",
			Environment: map[string]string{targetVar: target}}
		svc, err := systemd.RenderService(j)
		if err != nil {
			t.Fatal(err)
		}
		tmr, err := systemd.RenderTimer(j)
		if err != nil {
			t.Fatal(err)
		}
		write(name+".service", svc)
		write(name+".timer", tmr)
	}
	render("fraisier-shop-prod-backup", "shop/prod")
	render("custom-name", "shop/prod")
	render("fraisier-shop-prod-eu-backup", "shop/prod-eu")
	// Hand-written, though it claims the target: not fraisier's to remove.
	write("handmade.service", []byte("[Service]\nEnvironment=\"FRAISIER_TARGET=shop/prod\"\nExecStart=/bin/true\n"))

	got, err := ownedUnits(m, store.Target{Fraise: "shop", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"custom-name.service", "custom-name.timer", "fraisier-shop-prod-backup.service", "fraisier-shop-prod-backup.timer"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("owned (-want +got):\n%s", diff)
	}
}

func TestJobArgv(t *testing.T) {
	release := t.TempDir()
	if err := os.MkdirAll(filepath.Join(release, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"job": 0o755, "plain": 0o644} {
		if err := os.WriteFile(filepath.Join(release, "bin", name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		testenv.Unavailable(t, "no sh in PATH: %v", err)
	}
	sh, _ = filepath.Abs(sh)
	const current = "/srv/app/current"
	for _, tc := range []struct {
		cmd     []string
		want    []string
		wantErr string
	}{
		{cmd: []string{"bin/job", "a b", "rel/arg"}, want: []string{"/srv/app/current/bin/job", "a b", "rel/arg"}},
		{cmd: []string{"./bin/job"}, want: []string{"/srv/app/current/bin/job"}},
		{cmd: []string{"sh", "-c", "x"}, want: []string{sh, "-c", "x"}},
		{cmd: []string{sh}, want: []string{sh}},
		{cmd: []string{"bin/missing"}, wantErr: "no such file"},
		{cmd: []string{"bin/plain"}, wantErr: "not executable"},
		{cmd: []string{"../other/bin/job"}, wantErr: "leaves the release"},
		{cmd: []string{"no-such-program-fraisier-test"}, wantErr: "executable file not found"},
	} {
		got, err := jobArgv(tc.cmd, current, release)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.cmd, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.cmd, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.cmd, diff)
		}
	}
}

func TestTimerProblem(t *testing.T) {
	enabled := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	next := enabled.Add(time.Hour)
	for _, tc := range []struct {
		name string
		st   systemd.TimerStatus
		err  error
		want string
	}{
		{"armed, never fired", systemd.TimerStatus{Timer: "j.timer", Active: true, NextElapse: next}, nil, ""},
		{"running now", systemd.TimerStatus{Timer: "j.timer", Active: true, Running: true}, nil, ""},
		{"inactive", systemd.TimerStatus{Timer: "j.timer", NextElapse: next}, nil, "timer j.timer is not active"},
		{"nothing next", systemd.TimerStatus{Timer: "j.timer", Active: true}, nil, "timer j.timer has no next elapse"},
		{"failed before the deployment", systemd.TimerStatus{Timer: "j.timer", Unit: "j.service", Active: true, NextElapse: next,
			LastTrigger: enabled.Add(-time.Minute), LastResult: "exit-code", LastExitStatus: 1}, nil, ""},
		{"failed since", systemd.TimerStatus{Timer: "j.timer", Unit: "j.service", Active: true, NextElapse: next,
			LastTrigger: enabled.Add(time.Second), LastResult: "exit-code", LastExitStatus: 2}, nil, "job j.service failed (result exit-code, exit status 2)"},
		{"succeeded since", systemd.TimerStatus{Timer: "j.timer", Active: true, NextElapse: next,
			LastTrigger: enabled.Add(time.Second), LastResult: "success"}, nil, ""},
		{"status unknown", systemd.TimerStatus{}, errors.New("boom"), "boom"},
	} {
		if got := timerProblem(tc.st, tc.err, enabled); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// The zero time ignores results, as the skip decision does.
	failed := systemd.TimerStatus{Timer: "j.timer", Active: true, NextElapse: next, LastTrigger: next, LastResult: "exit-code"}
	if got := timerProblem(failed, nil, time.Time{}); got != "" {
		t.Errorf("zero since: %q", got)
	}
}
