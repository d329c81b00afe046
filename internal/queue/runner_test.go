package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// The queue is tested on real parts: a bare git origin, the real deploy
// engine and a real SQLite state database. The fraises have no systemd
// unit (the deploy engine's own tests cover restarts); an install command
// that sleeps makes a deployment take as long as a test needs.

type fixture struct {
	t      *testing.T
	root   string
	origin string
	work   string
	dbPath string
	cfg    *config.Config
	db     *store.DB
	n      int
}

// configYAML has three targets of one repository; install sleeps for the
// given time in each.
func configYAML(origin, root, sleep string) string {
	var b strings.Builder
	b.WriteString("fraises:\n")
	for _, name := range []string{"api", "web", "worker"} {
		fmt.Fprintf(&b, `  %s:
    type: api
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
        install:
          command: [sleep, "%s"]
`, name, origin, filepath.Join(root, "srv", name), sleep)
	}
	return b.String()
}

func newFixture(t *testing.T, sleep string) *fixture {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Unavailable(t, "git not installed")
	}
	root := t.TempDir()
	f := &fixture{t: t, root: root, origin: filepath.Join(root, "origin.git"), work: filepath.Join(root, "work"),
		dbPath: filepath.Join(root, "state.db")}
	testenv.Git(t, root, "init", "-q", "--bare", "-b", "main", f.origin)
	testenv.Git(t, root, "clone", "-q", f.origin, f.work)
	cfgPath := filepath.Join(root, "fraises.yaml")
	if err := os.WriteFile(cfgPath, []byte(configYAML(f.origin, root, sleep)), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	f.cfg, err = config.Load(cfgPath, config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	// The CLI fills it; here, fraisier's own directory (the mirrors) is the test's.
	f.cfg.State.Dir = filepath.Join(root, "state")
	f.db, err = store.Open(context.Background(), store.Options{Path: f.dbPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	return f
}

// commit pushes a new commit to main and returns its SHA.
func (f *fixture) commit() string {
	f.t.Helper()
	f.n++
	if err := os.WriteFile(filepath.Join(f.work, "VERSION"), []byte(fmt.Sprintf("v%d\n", f.n)), 0o644); err != nil {
		f.t.Fatal(err)
	}
	testenv.Git(f.t, f.work, "add", "-A")
	testenv.Git(f.t, f.work, "commit", "-q", "-m", fmt.Sprintf("v%d", f.n))
	testenv.Git(f.t, f.work, "push", "-q", "origin", "HEAD:main")
	return testenv.Git(f.t, f.work, "rev-parse", "HEAD")
}

func (f *fixture) enqueue(fraise, sha string) store.Queued {
	f.t.Helper()
	q, err := f.db.Enqueue(context.Background(), store.QueueRequest{
		Target: store.Target{Fraise: fraise, Environment: "production"}, SHA: sha, Ref: "refs/heads/main",
		Trigger: store.TriggerWebhook, Actor: "test",
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return q
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// start runs a Runner in the background; the returned stop cancels it and
// waits for Run to return.
func (f *fixture) start(r *Runner) (stop func()) {
	f.t.Helper()
	return f.startWith(r, f.db)
}

// startWith is start over s, the fixture's store or a wrapper of it.
func (f *fixture) startWith(r *Runner, s Store) (stop func()) {
	f.t.Helper()
	owner, err := deploy.CurrentOwner()
	if err != nil {
		f.t.Fatal(err)
	}
	if r.Node != "" {
		owner.Host = r.Node
	}
	r.Store, r.Config, r.Collab, r.Owner = s, f.cfg, deploy.RealCollaborators(nil), owner
	if r.Log == nil {
		r.Log = testLogger(f.t)
	}
	if r.Poll == 0 {
		r.Poll = 50 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			f.t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	f.t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *fixture) state(fraise string) store.FraiseState {
	f.t.Helper()
	st, err := f.db.FraiseStates(context.Background(), fraise, "production")
	if err != nil {
		f.t.Fatal(err)
	}
	if len(st) == 0 {
		return store.FraiseState{}
	}
	return st[0]
}

func (f *fixture) deployments(fraise string) []store.Deployment {
	f.t.Helper()
	ds, err := f.db.Deployments(context.Background(), store.DeploymentFilter{Fraise: fraise, Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	return ds
}

func (f *fixture) idle() bool {
	f.t.Helper()
	ds, err := f.db.RunningDeployments(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return len(ds) == 0
}

// TestNewestPushWins: pushes arriving while a deployment runs collapse into
// one waiting request; the newest commit is what ends up deployed, with at
// most two deployments run.
func TestNewestPushWins(t *testing.T) {
	f := newFixture(t, "2")
	r := &Runner{}
	f.start(r)
	first := f.commit()
	f.enqueue("api", first)
	r.Wake()
	// Past its check that the commit is the branch's tip: a commit pushed
	// before that check would make it refuse the first one, rightly.
	waitFor(t, "the first deployment to make its release", 10*time.Second, func() bool {
		if f.state("api").Status != store.StatusRunning {
			return false
		}
		ds := f.deployments("api")
		if len(ds) == 0 {
			return false
		}
		steps, err := f.db.Steps(context.Background(), ds[len(ds)-1].ID)
		return err == nil && slices.ContainsFunc(steps, func(s store.Step) bool { return s.Name == "release" })
	})
	var last string
	for range 5 {
		last = f.commit()
		f.enqueue("api", last)
		r.Wake()
	}
	waitFor(t, "the queue to drain", 30*time.Second, func() bool {
		st := f.state("api")
		return f.idle() && st.CurrentSHA == last
	})
	ran, superseded := 0, 0
	for _, d := range f.deployments("api") {
		switch d.Status {
		case store.StatusSucceeded:
			ran++
		case store.StatusSuperseded:
			superseded++
		default:
			t.Errorf("deployment %d: %s (%s)", d.ID, d.Status, d.Error)
		}
	}
	if ran != 2 || superseded != 4 {
		t.Errorf("%d deployments ran and %d were superseded; want 2 and 4", ran, superseded)
	}
}

// TestGlobalLimit: with MaxConcurrent 1, requests for three targets run
// one at a time, all of them.
func TestGlobalLimit(t *testing.T) {
	f := newFixture(t, "0.3")
	sha := f.commit()
	for _, name := range []string{"api", "web", "worker"} {
		f.enqueue(name, sha)
	}
	r := &Runner{MaxConcurrent: 1}
	most := 0 // the most deployments seen running at once
	f.start(r)
	waitFor(t, "every target to deploy", 30*time.Second, func() bool {
		most = max(most, r.Running())
		return f.idle() && f.state("api").CurrentSHA == sha && f.state("web").CurrentSHA == sha && f.state("worker").CurrentSHA == sha
	})
	// The database's own record: no two deployments overlap in time.
	var all []store.Deployment
	for _, name := range []string{"api", "web", "worker"} {
		all = append(all, f.deployments(name)...)
	}
	for i, a := range all {
		for _, b := range all[i+1:] {
			if a.StartedAt.Before(*b.FinishedAt) && b.StartedAt.Before(*a.FinishedAt) {
				t.Errorf("deployments %d and %d overlap with MaxConcurrent 1", a.ID, b.ID)
			}
		}
	}
	if most > 1 {
		t.Errorf("%d deployments ran at once, want at most 1", most)
	}
}

// TestWaitsForTheCLI: while another process holds the target's lock (a
// fraisier deploy on the command line), the request waits, a newer push
// still supersedes it, and it runs once the lock is free.
func TestWaitsForTheCLI(t *testing.T) {
	f := newFixture(t, "0")
	ctx := context.Background()
	target := store.Target{Fraise: "api", Environment: "production"}
	cli, err := deploy.CurrentOwner()
	if err != nil {
		t.Fatal(err)
	}
	cli.Nonce = "cli"
	if _, err := f.db.AcquireLock(ctx, store.Lock{Target: target, Owner: cli.String(), Host: cli.Host, PID: cli.PID, Reason: "cli deploy"}, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	r := &Runner{LockedRetry: 100 * time.Millisecond}
	f.start(r)
	old := f.enqueue("api", f.commit())
	time.Sleep(300 * time.Millisecond)
	if d, err := f.db.Deployment(ctx, old.DeploymentID); err != nil || d.Status != store.StatusQueued {
		t.Fatalf("request while the CLI holds the lock: %+v %v, want still queued", d, err)
	}
	newest := f.commit()
	f.enqueue("api", newest)
	if err := f.db.ReleaseLock(ctx, target, cli.String()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the newest push to deploy", 20*time.Second, func() bool { return f.idle() && f.state("api").CurrentSHA == newest })
	if d, _ := f.db.Deployment(ctx, old.DeploymentID); d.Status != store.StatusSuperseded {
		t.Errorf("older request: %s, want superseded", d.Status)
	}
}

// TestUnknownTarget: a request for a target that left the configuration
// fails with a reason instead of waiting forever.
func TestUnknownTarget(t *testing.T) {
	f := newFixture(t, "0")
	q, err := f.db.Enqueue(context.Background(), store.QueueRequest{
		Target: store.Target{Fraise: "gone", Environment: "production"}, SHA: f.commit(), Trigger: store.TriggerWebhook,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.start(&Runner{})
	waitFor(t, "the request to fail", 10*time.Second, func() bool { return f.idle() })
	d, err := f.db.Deployment(context.Background(), q.DeploymentID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != store.StatusFailed || !strings.Contains(d.Error, "not in the configuration") {
		t.Errorf("got %s %q", d.Status, d.Error)
	}
}

// TestShutdownParks: a deployment still running when the grace period
// ends is cancelled (nothing changed: it had not switched) and its commit
// waits again for the next start, which deploys it.
func TestShutdownParks(t *testing.T) {
	f := newFixture(t, "30")
	first := f.commit()
	q := f.enqueue("api", first)
	stop := f.start(&Runner{Grace: 300 * time.Millisecond})
	waitFor(t, "the deployment to start", 10*time.Second, func() bool { return f.state("api").Status == store.StatusRunning })
	begun := time.Now()
	stop()
	if took := time.Since(begun); took > 10*time.Second {
		t.Errorf("shutdown took %s with a grace of 300ms", took)
	}
	d, err := f.db.Deployment(context.Background(), q.DeploymentID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != store.StatusFailed {
		t.Errorf("cancelled deployment: %s, want failed (it had not switched)", d.Status)
	}
	queued, err := f.db.QueuedDeployments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 1 || queued[0].NewSHA != first || queued[0].Trigger != store.TriggerRequeue {
		t.Fatalf("queue after shutdown: %+v, want %s queued again", queued, first)
	}
}

// The crash test runs a Runner in a child process (this test binary again)
// and kills it with SIGKILL in the middle of a deployment.
const childEnv = "FRAISIER_QUEUE_TEST_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	code := m.Run()
	pgServer.Stop()
	os.Exit(code)
}

func runChild(spec string) int {
	cfgPath, dbPath := spec, os.Getenv(childEnv+"_DB")
	cfg, err := config.Load(cfgPath, config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.State.Dir = filepath.Join(filepath.Dir(dbPath), "state")
	db, err := store.Open(context.Background(), store.Options{Path: dbPath})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	owner, err := deploy.CurrentOwner()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// A node name, when the test gives one, names the child's lock owner
	// as fraisier serve --node does.
	node := os.Getenv(childEnv + "_NODE")
	if node != "" {
		owner.Host = node
	}
	r := &Runner{Store: db, Config: cfg, Collab: deploy.RealCollaborators(nil), Owner: owner, Node: node, Poll: 50 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	_ = r.Run(context.Background())
	return 0
}

// TestCrashRecovery: fraisier serve killed with SIGKILL in the middle of a
// deployment. The next start records it interrupted, recovers the lock,
// queues the commit again once, and deploys it; the request that was
// waiting behind it is not lost.
func TestCrashRecovery(t *testing.T) {
	f := newFixture(t, "1")
	ctx := context.Background()
	first := f.commit()
	q := f.enqueue("api", first)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"="+filepath.Join(f.root, "fraises.yaml"), childEnv+"_DB="+f.dbPath)
	var stderr strings.Builder
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	waitFor(t, "the child to start deploying", 20*time.Second, func() bool {
		d, err := f.db.Deployment(ctx, q.DeploymentID)
		return err == nil && d.Status == store.StatusRunning
	})
	// A push arrives while it runs: it must survive the crash.
	waiting := f.enqueue("web", first)
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	t.Logf("child log:\n%s", stderr.String())

	f.start(&Runner{})
	waitFor(t, "recovery and the retried deployment", 30*time.Second, func() bool {
		return f.idle() && f.state("api").CurrentSHA == first && f.state("web").CurrentSHA == first
	})
	d, err := f.db.Deployment(ctx, q.DeploymentID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != store.StatusInterrupted {
		t.Errorf("killed deployment: %s, want interrupted", d.Status)
	}
	var retries []store.Deployment
	for _, d := range f.deployments("api") {
		if d.Trigger == store.TriggerRequeue {
			retries = append(retries, d)
		}
	}
	if len(retries) != 1 || retries[0].Status != store.StatusSucceeded || retries[0].NewSHA != first {
		t.Errorf("retries: %+v, want one, succeeded at %s", retries, first)
	}
	if w, _ := f.db.Deployment(ctx, waiting.DeploymentID); w.Status != store.StatusSucceeded {
		t.Errorf("request that waited during the crash: %s, want succeeded", w.Status)
	}
}

// push records a signed push of sha for fraise's production through the
// intake, as fraisier serve does.
func (f *fixture) push(fraise, delivery, sha string) store.IntakeResult {
	f.t.Helper()
	t := store.Target{Fraise: fraise, Environment: "production"}
	res, err := f.db.RecordIntake(context.Background(), []store.Intake{{
		Event: store.WebhookEvent{Forge: "github", DeliveryID: delivery, EventType: "push", Repository: "acme/" + fraise,
			Ref: "refs/heads/main", SHA: sha, Sender: "bob", Outcome: store.OutcomeAccepted},
		Requests: []store.QueueRequest{{Target: t, SHA: sha, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "bob via github"}},
	}})
	if err != nil {
		f.t.Fatal(err)
	}
	return res[0]
}

// pushOnList is the store with a push landing right after the first
// listing that shows a request: between the queue listing the request
// and the engine claiming it.
type pushOnList struct {
	*store.DB
	once sync.Once
	push func()
}

func (s *pushOnList) QueuedDeploymentsFor(ctx context.Context, node string) ([]store.Deployment, error) {
	ds, err := s.DB.QueuedDeploymentsFor(ctx, node)
	if len(ds) > 0 {
		s.once.Do(s.push)
	}
	return ds, err
}

// TestShutdownRequeuesWhatRan: a request taken over by a newer push after
// the queue listed it runs the newer commit; parked at shutdown, it is
// queued again at that commit, not at the one listed. (Found in review:
// the requeue used the listing, and the newest push was lost.)
func TestShutdownRequeuesWhatRan(t *testing.T) {
	f := newFixture(t, "30")
	ctx := context.Background()
	v1, v2 := f.commit(), f.commit()
	first := f.push("api", "d-1", v1)
	stop := f.startWith(&Runner{Grace: 300 * time.Millisecond}, &pushOnList{DB: f.db, push: func() { f.push("api", "d-2", v2) }})
	id := first.Queued[0].DeploymentID
	waitFor(t, "the deployment to run", 20*time.Second, func() bool {
		d, err := f.db.Deployment(ctx, id)
		return err == nil && d.Status == store.StatusRunning
	})
	if d, _ := f.db.Deployment(ctx, id); d.NewSHA != v2 {
		t.Fatalf("running %s, want %s, the push that took the request over", d.NewSHA, v2)
	}
	stop()
	queued, err := f.db.QueuedDeployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 1 || queued[0].NewSHA != v2 || queued[0].Trigger != store.TriggerRequeue {
		t.Fatalf("queued after shutdown: %+v; want one request again at %s", queued, v2)
	}
}

// failingClaim fails the first claim for a reason of its own (the database
// briefly unusable) after a push took the request over.
type failingClaim struct {
	*store.DB
	once sync.Once
	push func()
}

func (s *failingClaim) ClaimQueued(ctx context.Context, id int64, c store.Claim) (store.Deployment, error) {
	failed := false
	s.once.Do(func() { s.push(); failed = true })
	if failed {
		return store.Deployment{}, errors.New("database is locked (injected fault)")
	}
	return s.DB.ClaimQueued(ctx, id, c)
}

// TestFailedClaimKeepsNewerPush: when a run fails before its claim, a
// push that took the request over meanwhile is not finished with that
// failure: it stays queued, and deploys. (Found in review.)
func TestFailedClaimKeepsNewerPush(t *testing.T) {
	f := newFixture(t, "0")
	ctx := context.Background()
	v1, v2 := f.commit(), f.commit()
	first := f.push("api", "d-1", v1)
	f.startWith(&Runner{}, &failingClaim{DB: f.db, push: func() { f.push("api", "d-2", v2) }})
	id := first.Queued[0].DeploymentID
	waitFor(t, "the newer push to deploy", 30*time.Second, func() bool {
		d, err := f.db.Deployment(ctx, id)
		return err == nil && d.Status == store.StatusSucceeded
	})
	if d, _ := f.db.Deployment(ctx, id); d.NewSHA != v2 || d.Error != "" {
		t.Errorf("deployment %+v; want succeeded at %s", d, v2)
	}
}
