package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// The crash tests kill the real fraisier (this test binary run as
// "fraisier", as the scripts run it: testscript.Main put it on PATH) with
// SIGKILL at an exact point of a deployment, through the engine's
// test-only fault point (FRAISIER_FAULT, see internal/deploy/doc.go; this
// test binary has it when built with -tags fraisier_faults), then
// run it again, on real parts: a bare git origin, a private systemd user
// manager running the test HTTP service from current, the sql migration
// tool on a SQLite database, and a SQLite state database. After every
// crash they check that the lock is recovered, the killed
// deployment is recorded interrupted, the service ends healthy on a
// release the record names truthfully (the record's current release is
// what current points at), and the next deployment succeeds.

// crashPoint is one place to kill fraisier. Rollback points are reached by
// deploying an unhealthy version, whose health check fails and whose
// compensation runs the rollback steps.
type crashPoint struct {
	fault    string // FRAISIER_FAULT
	rollback bool
}

var deployPoints = []string{"fetch", "release", "install", "migrate", "switch", "restart", "health"}
var rollbackPoints = []string{"rollback migrate", "rollback switch", "rollback restart", "rollback health"}

func allCrashPoints() []crashPoint {
	var ps []crashPoint
	for _, s := range deployPoints {
		ps = append(ps, crashPoint{fault: "kill:" + s + ":before"}, crashPoint{fault: "kill:" + s + ":after"})
	}
	ps = append(ps, crashPoint{fault: "kill:record"})
	for _, s := range rollbackPoints {
		ps = append(ps, crashPoint{fault: "kill:" + s + ":before", rollback: true}, crashPoint{fault: "kill:" + s + ":after", rollback: true})
	}
	return ps
}

// TestCrashAtStep is the part of the matrix make test runs: a crash before
// anything changed, after the migration (database ahead of the code),
// after the switch (current ahead of the record), after the outcome was
// decided but not written, and in the middle of a rollback.
func TestCrashAtStep(t *testing.T) {
	for _, p := range []crashPoint{
		{fault: "kill:fetch:before"},
		{fault: "kill:migrate:after"},
		{fault: "kill:switch:after"},
		{fault: "kill:record"},
		{fault: "kill:rollback switch:before", rollback: true},
	} {
		t.Run(strings.ReplaceAll(p.fault, " ", "_"), func(t *testing.T) { crashAt(t, p) })
	}
}

// TestReliabilityCrashAtEveryStep is the whole matrix: before and after
// every step of an api deployment and of its rollback, and before the
// outcome is recorded.
func TestReliabilityCrashAtEveryStep(t *testing.T) {
	testenv.Reliability(t)
	for _, p := range allCrashPoints() {
		t.Run(strings.ReplaceAll(p.fault, " ", "_"), func(t *testing.T) { crashAt(t, p) })
	}
}

func crashAt(t *testing.T, p crashPoint) {
	f := newCrashFixture(t)
	f.push("healthy")
	f.mustDeploy(0)
	v2 := f.push("healthy")
	r1 := f.readlink()

	want, wantRev := v2, 2
	if p.rollback {
		f.mustDeploy(0)
		want = f.push("unhealthy")
	}
	before := f.readlink()
	out := f.fraisierKilled(p.fault, "deploy", "hello", "production")
	if !strings.Contains(out, deploy.FaultEnv+"="+mustParse(t, p.fault).String()) {
		t.Fatalf("killed without saying where:\n%s", out)
	}

	// The dead holder's record: running, its lock standing. The record
	// still names the release it started from; status also says, live,
	// what current points at, whatever the dead deployment left.
	st := f.status()
	if st.Status != store.StatusRunning || st.Lock == nil {
		t.Fatalf("after the crash: status %s, lock %v; want running and the dead holder's lock", st.Status, st.Lock)
	}
	if st.CurrentRelease != before {
		t.Fatalf("after the crash the record names %s, want %s (nothing was recorded finished)", st.CurrentRelease, before)
	}
	if st.Live == nil || st.Live.CurrentRelease != f.readlink() {
		t.Fatalf("status live current %+v, current on disk %s", st.Live, f.readlink())
	}
	killed := f.lastDeployment()

	if p.rollback {
		// The head is still the unhealthy version: the recovering
		// deployment rolls it back again, to the recorded release.
		out := f.mustDeploy(11)
		if !strings.Contains(out, fmt.Sprintf("deployment %d was interrupted", killed.ID)) {
			t.Fatalf("the recovering run did not say it recovered deployment %d:\n%s", killed.ID, out)
		}
		f.checkTruthful("v2", 2)
		want, wantRev = f.push("healthy"), 4
	} else {
		out := f.mustDeploy(0)
		if !strings.Contains(out, fmt.Sprintf("deployment %d was interrupted", killed.ID)) {
			t.Fatalf("the recovering run did not say it recovered deployment %d:\n%s", killed.ID, out)
		}
	}
	if d := f.deployment(killed.ID); d.Status != store.StatusInterrupted {
		t.Fatalf("killed deployment %d: %s, want interrupted", killed.ID, d.Status)
	}
	if p.rollback {
		f.mustDeploy(0)
	}
	last := f.lastDeployment()
	if last.Status != store.StatusSucceeded || last.NewSHA != want {
		t.Fatalf("next deployment: %s at %s, want succeeded at %s", last.Status, last.NewSHA, want)
	}
	f.checkTruthful(fmt.Sprintf("v%d", f.version), wantRev)
	if f.readlink() == r1 {
		t.Fatalf("current is still the first release %s", r1)
	}
}

func mustParse(t *testing.T, s string) deploy.Fault {
	t.Helper()
	fault, err := deploy.ParseFault(s)
	if err != nil {
		t.Fatal(err)
	}
	return fault
}

// TestCrashServe: fraisier serve killed at the switch of a queued
// deployment while another request waits behind it (max_concurrent 1).
// The restarted serve records it interrupted, queues its commit again
// once and deploys it, and deploys the request that waited.
func TestCrashServe(t *testing.T) {
	f := newCrashFixture(t)
	f.push("healthy")
	f.mustDeploy(0)
	v2 := f.push("healthy")
	ctx := context.Background()
	db := f.openState()
	first, err := db.Enqueue(ctx, store.QueueRequest{Target: store.Target{Fraise: "hello", Environment: "production"},
		SHA: v2, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	waiting, err := db.Enqueue(ctx, store.QueueRequest{Target: store.Target{Fraise: "hello", Environment: "staging"},
		SHA: v2, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}

	f.fraisierKilled("kill:switch:after", "serve")
	if d := f.deployment(first.DeploymentID); d.Status != store.StatusRunning {
		t.Fatalf("killed deployment: %s, want still recorded running", d.Status)
	}
	if d := f.deployment(waiting.DeploymentID); d.Status != store.StatusQueued {
		t.Fatalf("waiting request: %s, want still queued", d.Status)
	}

	serve := f.start("serve")
	var retries, all []store.Deployment
	if !testenv.Eventually(90*time.Second, 200*time.Millisecond, func() bool {
		retries, all = retries[:0], all[:0]
		for _, d := range f.history() {
			all = append(all, d)
			if d.Environment == "production" && d.Trigger == store.TriggerRequeue {
				retries = append(retries, d)
			}
		}
		idle := !strings.Contains(fmt.Sprint(statuses(all)), string(store.StatusQueued)) && !strings.Contains(fmt.Sprint(statuses(all)), string(store.StatusRunning))
		return idle && len(retries) > 0
	}) {
		t.Fatalf("serve did not recover and drain the queue in 90s: %v\nserve:\n%s", statuses(all), serve.Out.String())
	}
	stop(t, serve)
	if d := f.deployment(first.DeploymentID); d.Status != store.StatusInterrupted {
		t.Fatalf("killed deployment: %s, want interrupted", d.Status)
	}
	if len(retries) != 1 || retries[0].Status != store.StatusSucceeded || retries[0].NewSHA != v2 {
		t.Fatalf("retries %+v: want one, succeeded at %s\nserve:\n%s", retries, v2, serve.Out.String())
	}
	if d := f.deployment(waiting.DeploymentID); d.Status != store.StatusSucceeded {
		t.Fatalf("the request that waited: %s, want succeeded\nserve:\n%s", d.Status, serve.Out.String())
	}
	f.checkTruthful("v2", 2)
}

func statuses(ds []store.Deployment) []string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%d:%s:%s", d.ID, d.Environment, d.Status))
	}
	return s
}

// crashFixture is one fraisier installation: fraise hello, environment
// production (a unit running the test HTTP service from current, a health
// check, sql migrations on SQLite) and staging (releases only).
type crashFixture struct {
	t                 *testing.T
	root, app         string
	repo              *testenv.Origin
	appDB, cfg, state string
	staging           string
	port, servePort   int
	env               []string
	version           int
	mgr               *tsystemd.Manager
	stateDB           *store.DB
	fraisier          string
	unit              string
	lastOut           string
}

// newCrashFixture is a crashFixture whose fraisier is this test binary,
// which can kill itself at a fault point.
func newCrashFixture(t *testing.T) *crashFixture {
	t.Helper()
	if !deploy.FaultInjection {
		testenv.Unavailable(t, "fault injection is compiled only with -tags fraisier_faults (make test passes it)")
	}
	bin, err := exec.LookPath("fraisier")
	if err != nil {
		t.Fatalf("fraisier is not on PATH (testscript.Main puts it there): %v", err)
	}
	return newFixture(t, bin)
}

// newFixture sets up the installation for the fraisier binary bin.
func newFixture(t *testing.T, bin string) *crashFixture {
	t.Helper()
	root := t.TempDir()
	repo := testenv.NewOrigin(t, root)
	mgr := tsystemd.UserManager(t)
	f := &crashFixture{
		t: t, root: root, repo: repo, app: filepath.Join(root, "srv", "hello"),
		appDB: filepath.Join(root, "app.db"), cfg: filepath.Join(root, "fraises.yaml"),
		state: filepath.Join(root, "state", "fraisier.db"), port: testenv.FreePort(t), servePort: testenv.FreePort(t),
		mgr: mgr, fraisier: bin, staging: filepath.Join(root, "srv", "staging"),
	}
	f.unit = mgr.AppUnit(t, "hello.service", f.port, filepath.Join(f.app, "current"))
	origin := repo.Dir
	cfg := fmt.Sprintf(`git:
  github:
    secret: crash-test-secret-0123456789
server:
  listen: 127.0.0.1:%d
  max_concurrent_deploys: 1
  shutdown_grace: 30s
fraises:
  hello:
    type: api
    repository: acme/hello
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
        scope: user
        systemd_service: %s
        install:
          command: [cat, VERSION]
        database:
          tool: sql
          dir: migrations
          url: sqlite:///%s
        health_check:
          url: http://127.0.0.1:%d/health
          timeout: 500ms
          retries: 3
          interval: 200ms
          deadline: 5s
      staging:
        branch: main
        auto_deploy: false
        git_repo: %s
        app_path: %s
`, f.servePort, origin, f.app, f.unit, f.appDB, f.port, origin, f.staging)
	if err := os.WriteFile(f.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	f.env = append([]string{"PATH=" + os.Getenv("PATH"), "FRAISIER_CONFIG=" + f.cfg, "FRAISIER_STATE=" + f.state, "NO_COLOR=1",
		"HOME=" + filepath.Join(root, "home"), "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com"}, mgr.Env()...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last fraisier output:\n%s\nmanager log:\n%s", f.lastOut, mgr.LogTail(3000))
		}
		if f.stateDB != nil {
			f.stateDB.Close()
		}
	})
	return f
}

// push commits version N with the given behaviour and migration N (so the
// database revision names the version that migrated it) and returns its
// SHA.
func (f *crashFixture) push(behaviour string) string {
	f.t.Helper()
	f.version++
	n := f.version
	files := map[string]string{
		"VERSION":   fmt.Sprintf("v%d\n", n),
		"behaviour": behaviour + "\n",
		fmt.Sprintf("migrations/%03d_v%d.up.sql", n, n):   fmt.Sprintf("CREATE TABLE t%d (id INTEGER PRIMARY KEY);\n", n),
		fmt.Sprintf("migrations/%03d_v%d.down.sql", n, n): fmt.Sprintf("DROP TABLE t%d;\n", n),
	}
	for name, content := range files {
		f.repo.Write(name, content)
	}
	return f.repo.Commit(fmt.Sprintf("v%d %s", n, behaviour))
}

// run runs fraisier to its end and returns its combined output and how it
// ended.
func (f *crashFixture) run(fault string, args ...string) (string, *os.ProcessState) {
	f.t.Helper()
	cmd := exec.Command(f.fraisier, args...)
	cmd.Env = f.env
	if fault != "" {
		cmd.Env = append(cmd.Env[:len(cmd.Env):len(cmd.Env)], deploy.FaultEnv+"="+fault)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	ps := testenv.Run(f.t, cmd, 3*time.Minute)
	f.lastOut = fmt.Sprintf("$ %s fraisier %s\n%s", fault, strings.Join(args, " "), out.String())
	return out.String(), ps
}

// mustDeploy runs fraisier deploy and checks its exit code.
func (f *crashFixture) mustDeploy(code int) string {
	f.t.Helper()
	out, ps := f.run("", "deploy", "hello", "production")
	if ps.ExitCode() != code {
		f.t.Fatalf("fraisier deploy: exit %d, want %d\n%s", ps.ExitCode(), code, out)
	}
	return out
}

// fraisierKilled runs fraisier with the fault and checks that it died of
// SIGKILL, not by exiting.
func (f *crashFixture) fraisierKilled(fault string, args ...string) string {
	f.t.Helper()
	out, ps := f.run(fault, args...)
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		f.t.Fatalf("%s fraisier %s: ended %v, want killed by SIGKILL\n%s", fault, strings.Join(args, " "), ps, out)
	}
	return out
}

// start starts fraisier in the background (serve).
func (f *crashFixture) start(args ...string) *testenv.Proc {
	f.t.Helper()
	return testenv.StartProc(f.t, "fraisier "+strings.Join(args, " "), f.env, append([]string{f.fraisier}, args...)...)
}

// stop asks the process to shut down and waits for it to exit 0.
func stop(t *testing.T, p *testenv.Proc) {
	t.Helper()
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, 60*time.Second); code != 0 {
		t.Fatalf("%s ended with exit %d\n%s", p.Name, code, p.Out.String())
	}
}

// readlink is the release current points at.
func (f *crashFixture) readlink() string {
	f.t.Helper()
	target, err := os.Readlink(filepath.Join(f.app, "current"))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return filepath.Base(target)
}

type crashStatus struct {
	Status         store.Status    `json:"status"`
	CurrentSHA     string          `json:"current_sha"`
	CurrentRelease string          `json:"current_release"`
	Lock           json.RawMessage `json:"lock"`
	Live           *deploy.Live    `json:"live"`
}

func (f *crashFixture) status() crashStatus {
	f.t.Helper()
	out, ps := f.run("", "status", "hello", "production", "--json")
	if ps.ExitCode() != 0 {
		f.t.Fatalf("fraisier status: exit %d\n%s", ps.ExitCode(), out)
	}
	var s struct {
		Targets []crashStatus `json:"targets"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil || len(s.Targets) != 1 {
		f.t.Fatalf("fraisier status --json: %v\n%s", err, out)
	}
	st := s.Targets[0]
	if string(st.Lock) == "null" {
		st.Lock = nil
	}
	return st
}

func (f *crashFixture) history() []store.Deployment {
	f.t.Helper()
	out, ps := f.run("", "history", "--json", "--limit", "100")
	if ps.ExitCode() != 0 {
		f.t.Fatalf("fraisier history: exit %d\n%s", ps.ExitCode(), out)
	}
	var h struct {
		Deployments []struct {
			ID          int64         `json:"id"`
			Environment string        `json:"environment"`
			Status      store.Status  `json:"status"`
			Trigger     store.Trigger `json:"trigger"`
			NewSHA      string        `json:"new_sha"`
			Release     string        `json:"release"`
		} `json:"deployments"`
	}
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		f.t.Fatalf("fraisier history --json: %v\n%s", err, out)
	}
	var ds []store.Deployment
	for _, d := range h.Deployments {
		ds = append(ds, store.Deployment{ID: d.ID, Target: store.Target{Fraise: "hello", Environment: d.Environment},
			Status: d.Status, Trigger: d.Trigger, NewSHA: d.NewSHA, Release: d.Release})
	}
	return ds
}

func (f *crashFixture) lastDeployment() store.Deployment {
	f.t.Helper()
	h := f.history()
	if len(h) == 0 {
		f.t.Fatal("no deployments in history")
	}
	return h[0] // newest first
}

func (f *crashFixture) deployment(id int64) store.Deployment {
	f.t.Helper()
	for _, d := range f.history() {
		if d.ID == id {
			return d
		}
	}
	f.t.Fatalf("no deployment %d in history", id)
	return store.Deployment{}
}

func (f *crashFixture) openState() *store.DB {
	f.t.Helper()
	if f.stateDB == nil {
		db, err := store.Open(context.Background(), store.Options{Path: f.state})
		if err != nil {
			f.t.Fatal(err)
		}
		f.stateDB = db
	}
	return f.stateDB
}

// checkTruthful checks the end state after a crash: nothing holds the
// lock, the service answers version and is healthy, the record's current
// release is what current points at, and the application database is at
// the revision that release migrated it to.
func (f *crashFixture) checkTruthful(version string, revision int) {
	f.t.Helper()
	st := f.status()
	if st.Lock != nil {
		f.t.Fatalf("lock still held: %s", st.Lock)
	}
	if cur := f.readlink(); st.CurrentRelease != cur || cur == "" {
		f.t.Fatalf("the record names release %s, current points at %s", st.CurrentRelease, cur)
	}
	if st.Live == nil || st.Live.Healthy == nil || !*st.Live.Healthy {
		f.t.Fatalf("live: %+v, want healthy", st.Live)
	}
	if got := f.serving(); got != version {
		f.t.Fatalf("the service answers %q, want %s", got, version)
	}
	if !strings.HasSuffix(st.CurrentRelease, "-"+st.CurrentSHA[:8]) {
		f.t.Fatalf("recorded release %s is not of the recorded commit %s", st.CurrentRelease, st.CurrentSHA)
	}
	if got := f.revision(); got != revision {
		f.t.Fatalf("application database at revision %d, want %d", got, revision)
	}
}

func (f *crashFixture) serving() string { return testenv.AppAnswer(f.port) }

// revision reads the application database's migration revision as the
// sql tool tracks it.
func (f *crashFixture) revision() int {
	f.t.Helper()
	db, err := sql.Open("sqlite", "file:"+f.appDB+"?mode=ro")
	if err != nil {
		f.t.Fatal(err)
	}
	defer db.Close()
	var v sql.NullInt64
	if err := db.QueryRow("SELECT MAX(version) FROM fraisier_schema_migrations").Scan(&v); err != nil {
		f.t.Fatalf("read the application database's revision: %v", err)
	}
	return int(v.Int64)
}
