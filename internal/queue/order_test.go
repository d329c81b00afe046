package queue

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// The example's shape on real parts: hello (an api whose install the test
// holds at a gate, and fails when told to), hello-etl (an etl that runs
// hello's code: its run_after_deploy appends the VERSION of the release it
// ran in to etl-runs) and worker (an api with after: [hello/production]).

const orderConfig = `fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %[1]s
        app_path: %[2]s/srv/hello
        install:
          command: [sh, %[2]s/install.sh, %[2]s]
  hello-etl:
    type: etl
    environments:
      production:
        branch: main
        shares_code_with: hello/production
        scripts: [etl.sh]
        run_after_deploy:
          command: [sh, etl.sh, %[2]s/etl-runs]
  worker:
    type: api
    environments:
      production:
        branch: main
        git_repo: %[1]s
        app_path: %[2]s/srv/worker
        after: [hello/production]
`

// orderInstall says it began, waits while the gate exists, then fails if
// told to.
const orderInstall = `touch "$1/installing"
while [ -e "$1/gate" ]; do sleep 0.02; done
[ ! -e "$1/fail" ]
`

var (
	hello  = store.Target{Fraise: "hello", Environment: "production"}
	helloE = store.Target{Fraise: "hello-etl", Environment: "production"}
	worker = store.Target{Fraise: "worker", Environment: "production"}
)

func newOrderFixture(t *testing.T) *fixture {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Unavailable(t, "git not installed")
	}
	root := t.TempDir()
	f := &fixture{t: t, root: root, origin: filepath.Join(root, "origin.git"), work: filepath.Join(root, "work"),
		dbPath: filepath.Join(root, "state.db")}
	testenv.Git(t, root, "init", "-q", "--bare", "-b", "main", f.origin)
	testenv.Git(t, root, "clone", "-q", f.origin, f.work)
	for name, body := range map[string]string{
		filepath.Join(root, "install.sh"):   orderInstall,
		filepath.Join(root, "fraises.yaml"): fmt.Sprintf(orderConfig, f.origin, root),
		filepath.Join(f.work, "etl.sh"):     "cat VERSION >> \"$1\"\n",
	} {
		if err := os.WriteFile(name, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	f.cfg, err = config.Load(filepath.Join(root, "fraises.yaml"), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	f.cfg.State.Dir = filepath.Join(root, "state")
	f.db, err = store.Open(context.Background(), store.Options{Path: f.dbPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	return f
}

// touch creates or removes one of the fixture's control files.
func (f *fixture) touch(name string, on bool) {
	f.t.Helper()
	p := filepath.Join(f.root, name)
	var err error
	if on {
		err = os.WriteFile(p, nil, 0o644)
	} else {
		err = os.Remove(p)
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

// pushTo records one push of sha routed to targets, as fraisier serve
// does: each request waits for what its environment runs after.
func (f *fixture) pushTo(delivery, sha string, targets ...store.Target) store.IntakeResult {
	f.t.Helper()
	var reqs []store.QueueRequest
	for _, t := range targets {
		env, err := f.cfg.Lookup(t.Fraise, t.Environment)
		if err != nil {
			f.t.Fatal(err)
		}
		r := store.QueueRequest{Target: t, SHA: sha, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "bob via github"}
		for _, a := range env.RunsAfter() {
			af, ae := a.Target()
			r.After = append(r.After, store.Target{Fraise: af, Environment: ae})
		}
		reqs = append(reqs, r)
	}
	res, err := f.db.RecordIntake(context.Background(), []store.Intake{{
		Event: store.WebhookEvent{Forge: "github", DeliveryID: delivery, EventType: "push", Repository: "acme/hello",
			Ref: "refs/heads/main", SHA: sha, Sender: "bob", Outcome: store.OutcomeAccepted},
		Requests: reqs,
	}})
	if err != nil {
		f.t.Fatal(err)
	}
	return res[0]
}

func idOf(t *testing.T, res store.IntakeResult, target store.Target) int64 {
	t.Helper()
	for _, q := range res.Queued {
		if q.Target == target {
			return q.DeploymentID
		}
	}
	t.Fatalf("nothing queued for %s", target)
	return 0
}

func (f *fixture) deployment(id int64) store.Deployment {
	f.t.Helper()
	d, err := f.db.Deployment(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// etlRuns is what the etl's run_after_deploy wrote: the VERSION of each
// release it ran in.
func (f *fixture) etlRuns() string {
	b, _ := os.ReadFile(filepath.Join(f.root, "etl-runs"))
	return string(b)
}

// listings counts the queue's readings, so that a test can let the
// runner look at the queue a few times.
type listings struct {
	*store.DB
	n atomic.Int64
}

func (s *listings) QueuedDeploymentsFor(ctx context.Context, node string) ([]store.Deployment, error) {
	s.n.Add(1)
	return s.DB.QueuedDeploymentsFor(ctx, node)
}

// TestOrderRunsAfterItsPush: one push queues hello, hello-etl and worker.
// While hello deploys (held at its install), the runner, free to run all
// three at once, runs neither of the others. Once hello succeeded, both
// run, the etl on the release hello made current; when hello fails, both
// end skipped naming hello's deployment, and the push's event says so.
func TestOrderRunsAfterItsPush(t *testing.T) {
	for _, fails := range []bool{false, true} {
		t.Run(map[bool]string{false: "succeeded", true: "failed"}[fails], func(t *testing.T) {
			f := newOrderFixture(t)
			ctx := context.Background()
			v1 := f.commit()
			f.touch("gate", true)
			res := f.pushTo("d-1", v1, hello, helloE, worker)
			a, e, w := idOf(t, res, hello), idOf(t, res, helloE), idOf(t, res, worker)
			s := &listings{DB: f.db}
			f.startWith(&Runner{MaxConcurrent: 3, Grace: 100 * time.Millisecond}, s)
			waitFor(t, "hello to deploy", 20*time.Second, func() bool { return f.deployment(a).Status == store.StatusRunning })
			seen := s.n.Load()
			waitFor(t, "the runner to read the queue again", 20*time.Second, func() bool { return s.n.Load() >= seen+5 })
			for _, id := range []int64{e, w} {
				if d := f.deployment(id); d.Status != store.StatusQueued {
					t.Fatalf("deployment %d of %s is %s while hello deploys; want queued", id, d.Target, d.Status)
				}
			}
			if fails {
				f.touch("fail", true)
			}
			f.touch("gate", false)
			waitFor(t, "the queue to empty", 30*time.Second, f.idle)

			api := f.deployment(a)
			if !fails {
				for _, id := range []int64{e, w} {
					d := f.deployment(id)
					if d.Status != store.StatusSucceeded || d.StartedAt.Before(*api.FinishedAt) {
						t.Errorf("%s: %s, started %s; want succeeded, started after hello finished (%s)", d.Target, d.Status, d.StartedAt, api.FinishedAt)
					}
				}
				if got := f.etlRuns(); got != "v1\n" {
					t.Errorf("the etl ran in releases of %q; want v1's", got)
				}
				return
			}
			if api.Status != store.StatusFailed {
				t.Fatalf("hello: %s, want failed", api.Status)
			}
			for _, id := range []int64{e, w} {
				d := f.deployment(id)
				if d.Status != store.StatusSkipped || !strings.Contains(d.Error, fmt.Sprintf("deployment %d of hello/production", a)) {
					t.Errorf("%s: %s %q; want skipped, naming hello's deployment %d", d.Target, d.Status, d.Error, a)
				}
			}
			if got := f.etlRuns(); got != "" {
				t.Errorf("the etl ran (%q) though hello failed", got)
			}
			evs, err := f.db.Webhooks(ctx, store.WebhookFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if r := evs[0].Reason; !strings.Contains(r, "for hello-etl/production: not run") || !strings.Contains(r, "for worker/production: not run") {
				t.Errorf("the push's reason %q; want what did not run, and why", r)
			}
		})
	}
}

// TestOrderAfterCrash: fraisier serve is killed while hello deploys and
// the etl waits for it. The next start records hello's deployment
// interrupted and queues its commit again; the etl's request, which
// waited for the interrupted deployment, is decided: skipped, naming it.
// Nothing waits forever, and the etl follows the retry once it succeeds.
func TestOrderAfterCrash(t *testing.T) {
	f := newOrderFixture(t)
	v1 := f.commit()
	f.touch("gate", true)
	res := f.pushTo("d-1", v1, hello, helloE)
	a, e := idOf(t, res, hello), idOf(t, res, helloE)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"="+filepath.Join(f.root, "fraises.yaml"), childEnv+"_DB="+f.dbPath)
	var stderr strings.Builder
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	waitFor(t, "the child to install hello", 20*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(f.root, "installing"))
		return err == nil
	})
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	t.Logf("child log:\n%s", stderr.String())
	f.touch("gate", false)

	f.start(&Runner{Grace: 100 * time.Millisecond})
	waitFor(t, "recovery and the retry", 30*time.Second, func() bool { return f.idle() && f.state("hello").CurrentSHA == v1 })
	if d := f.deployment(a); d.Status != store.StatusInterrupted {
		t.Errorf("killed deployment: %s, want interrupted", d.Status)
	}
	if d := f.deployment(e); d.Status != store.StatusSkipped || !strings.Contains(d.Error, fmt.Sprintf("deployment %d of hello/production", a)) ||
		!strings.Contains(d.Error, string(store.StatusInterrupted)) {
		t.Errorf("the etl's request: %s %q; want skipped, naming interrupted deployment %d", d.Status, d.Error, a)
	}
	if got := f.etlRuns(); got != "v1\n" {
		t.Errorf("the etl ran in %q; want v1's release, following the retry", got)
	}
}

// TestOrderRecoversAStalledDependency: the etl waits for hello's
// deployment, which a node that died runs: its lock has expired and that
// node never comes back. The runner does not wait for hello's next
// deployment to recover it: it records it interrupted and decides the
// etl's request.
func TestOrderRecoversAStalledDependency(t *testing.T) {
	f := newOrderFixture(t)
	ctx := context.Background()
	v1 := f.commit()
	res := f.pushTo("d-1", v1, hello, helloE)
	a, e := idOf(t, res, hello), idOf(t, res, helloE)
	if _, err := f.db.AcquireLock(ctx, store.Lock{Target: hello, Owner: "node-b/4242/1/x", Host: "node-b", PID: 4242, Reason: "webhook"},
		time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.ClaimQueued(ctx, a, store.Claim{Host: "node-b", PID: 4242}); err != nil {
		t.Fatal(err)
	}
	f.start(&Runner{Grace: 100 * time.Millisecond})
	waitFor(t, "the etl's request to be decided", 20*time.Second, func() bool { return f.deployment(e).Status != store.StatusQueued })
	if d := f.deployment(a); d.Status != store.StatusInterrupted {
		t.Errorf("node-b's deployment: %s, want interrupted", d.Status)
	}
	if d := f.deployment(e); d.Status != store.StatusSkipped || !strings.Contains(d.Error, fmt.Sprintf("deployment %d of hello/production", a)) {
		t.Errorf("the etl's request: %s %q; want skipped, naming deployment %d", d.Status, d.Error, a)
	}
}
