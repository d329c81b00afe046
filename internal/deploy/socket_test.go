package deploy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// socketFixture is the api fixture with restart: socket and its service
// behind a socket unit: the test HTTP service takes its listening socket
// from systemd and drains requests in flight on SIGTERM.
func socketFixture(t *testing.T, unitExtra string) (*fixture, tsystemd.SocketApp) {
	t.Helper()
	f := newFixture(t, "        restart: socket\n")
	app := f.mgr.SocketAppUnits(t, "hello", f.port, serviceDir(f.app, "releases"), 30*time.Second, unitExtra, "")
	if app.Service != f.unit {
		t.Fatalf("socket app's service %s, want the fixture's %s", app.Service, f.unit)
	}
	return f, app
}

// activeState is what systemd says of unit's ActiveState now.
func activeState(t *testing.T, f *fixture, unit string) string {
	t.Helper()
	return f.mgr.MustSystemctl(t, "show", "--property=ActiveState", "--value", unit)
}

// recordedOutput is the output recorded of res's step name.
func recordedOutput(t *testing.T, f *fixture, res Result, name string) string {
	t.Helper()
	steps, err := f.db.Steps(context.Background(), res.DeploymentID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.Name == name {
			return s.Output
		}
	}
	t.Fatalf("deployment %d has no step %s", res.DeploymentID, name)
	return ""
}

// loadClient sends requests to the app while deployments run: short ones
// to / back to back from two clients, and every 200ms one to /slow that
// takes seconds.
// Every answer must be a 200.
type loadClient struct {
	port    int
	client  *http.Client
	stop    chan struct{}
	wg      sync.WaitGroup
	short   atomic.Int64
	slow    atomic.Int64
	drained atomic.Int64 // slow answers let finish by a stopping process

	mu       sync.Mutex
	failures []string
}

func startSocketLoad(port int) *loadClient {
	l := &loadClient{port: port, stop: make(chan struct{}),
		// Generous: a request waits in the socket's queue while the old
		// process drains and the new one starts. A connection per request:
		// the client retries a request that failed on a reused connection,
		// which would hide a cut one.
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}}
	for range 2 {
		l.wg.Go(func() {
			for !l.stopped(0) {
				l.get("/", &l.short)
			}
		})
	}
	l.wg.Go(func() {
		for !l.stopped(200 * time.Millisecond) {
			l.wg.Go(func() { l.get("/slow?d=2s", &l.slow) })
		}
	})
	return l
}

// stopped waits d, and reports whether the load is to stop.
func (l *loadClient) stopped(d time.Duration) bool {
	select {
	case <-l.stop:
		return true
	case <-time.After(d):
		return false
	}
}

func (l *loadClient) get(path string, count *atomic.Int64) {
	resp, err := l.client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", l.port, path))
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %s", resp.Status)
		}
		if err == nil && resp.Header.Get("X-Httpapp-Drained") == "1" {
			l.drained.Add(1)
		}
	}
	if err != nil {
		l.mu.Lock()
		l.failures = append(l.failures, fmt.Sprintf("%s GET %s: %v", time.Now().Format("15:04:05.000000"), path, err))
		l.mu.Unlock()
		return
	}
	count.Add(1)
}

// finish stops the load, waits for the requests in flight and returns the
// failures.
func (l *loadClient) finish() []string {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures
}

// TestDeploySocketNoFailedRequest: with restart: socket, deployments and
// rollbacks while clients send short requests and requests that take
// seconds fail none of them: new connections wait in the socket's queue during the
// restart, and those in flight when it begins finish in the old process,
// which systemd lets drain (SIGTERM, then TimeoutStopSec) before the new
// one starts. The first deployment finds the socket not listening and
// starts it: a service started without it would get no socket.
func TestDeploySocketNoFailedRequest(t *testing.T) {
	f, app := socketFixture(t, "")
	if got := activeState(t, f, app.Socket); got != "inactive" {
		t.Fatalf("socket %s before the first deployment, want inactive", got)
	}
	f.push("healthy", nil)
	res := f.deploy(Request{})
	f.expect(res, store.StatusSucceeded, "v1")
	if out := recordedOutput(t, f, res, "switch"); !strings.Contains(out, app.Socket+" was not listening: started") {
		t.Fatalf("the first deployment's switch does not say it started %s:\n%s", app.Socket, out)
	}

	load := startSocketLoad(f.port)
	const deploys = 3
	for i := range deploys {
		f.push("healthy", nil)
		f.expect(f.deploy(Request{}), store.StatusSucceeded, fmt.Sprintf("v%d", i+2))
	}
	// A rollback, and a release that fails its health check and is rolled
	// back: two more restarts each way.
	res, err := f.engine.Rollback(context.Background(), f.collab, RollbackRequest{Env: lookup(t, f.cfg, "hello", "production"), Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f.expect(res, store.StatusSucceeded, fmt.Sprintf("v%d", deploys))
	f.push("unhealthy", nil)
	f.expect(f.deploy(Request{}), store.StatusRolledBack, fmt.Sprintf("v%d", deploys))
	failures := load.finish()
	t.Logf("%d short and %d slow requests (%d of them drained by a stopping process) over %d deployments, a rollback and a rolled back deployment",
		load.short.Load(), load.slow.Load(), load.drained.Load(), deploys)
	if len(failures) > 0 {
		t.Fatalf("%d requests failed, want none; first: %s", len(failures), strings.Join(failures[:min(5, len(failures))], "; "))
	}
	if load.drained.Load() == 0 {
		t.Fatal("no slow request was in flight when a restart began: the test proved nothing about draining")
	}
	if load.short.Load() == 0 {
		t.Fatal("no short request was answered")
	}
}

// TestDeploySocketMissing: restart: socket for a service no socket unit
// starts fails the deployment before the switch, saying what to write;
// nothing was switched or started. A NAME.socket that starts another
// unit (Service=) is refused alike.
func TestDeploySocketMissing(t *testing.T) {
	f := newFixture(t, "        restart: socket\n")
	f.push("healthy", nil)
	res := f.deploy(Request{})
	if res.Status != store.StatusFailed {
		t.Fatalf("status %s (%v), want failed", res.Status, res.Err)
	}
	socket := strings.TrimSuffix(f.unit, ".service") + ".socket"
	for _, want := range []string{"switch: restart: socket: no socket unit starts " + f.unit + ", and there is no " + socket, "fix: write " + socket, "docs/zero-downtime.md"} {
		if !strings.Contains(res.Err.Error(), want) {
			t.Fatalf("error %q does not say %q", res.Err, want)
		}
	}
	if got := f.stepNames(res.DeploymentID); got != "fetch:succeeded release:succeeded install:skipped migrate:skipped switch:failed" {
		t.Fatalf("steps %s, want a failed switch", got)
	}
	if cur, _ := currentRelease(f.app); cur != "" {
		t.Fatalf("current is %s: switched", cur)
	}
	if got := activeState(t, f, f.unit); got != "inactive" {
		t.Fatalf("%s is %s, want inactive: nothing started", f.unit, got)
	}
	p, err := f.engine.Plan(context.Background(), f.collab, Request{Env: lookup(t, f.cfg, "hello", "production")})
	if err != nil || !strings.HasPrefix(p.SocketHandoff, f.unit+": no socket unit starts") || !strings.Contains(p.SocketHandoff, "fix: write "+socket) {
		t.Fatalf("plan's socket hand-off %q (%v), want it missing, with the fix", p.SocketHandoff, err)
	}

	t.Run("a socket that starts another unit", func(t *testing.T) {
		other := f.mgr.Unit("other.service")
		f.mgr.WriteUnit(t, other, "[Service]\nExecStart=/bin/true\n")
		f.mgr.WriteUnit(t, socket, fmt.Sprintf("[Socket]\nListenStream=127.0.0.1:%d\nService=%s\n", f.port, other))
		res := f.deploy(Request{})
		if res.Status != store.StatusFailed || !strings.Contains(res.Err.Error(), socket+" does not start "+f.unit) {
			t.Fatalf("status %s (%v), want failed: %s does not start %s", res.Status, res.Err, socket, f.unit)
		}
		if cur, _ := currentRelease(f.app); cur != "" {
			t.Fatalf("current is %s: switched", cur)
		}
	})
	// systemd starts no socket whose service runs: a service started
	// without its socket (by hand, or before restart: socket) must be
	// stopped once, and the error says so before anything switched.
	t.Run("the service runs without its socket", func(t *testing.T) {
		f.mgr.WriteUnit(t, socket, fmt.Sprintf("[Socket]\nListenStream=127.0.0.1:%d\n", testenv.FreePort(t)))
		f.mgr.MustSystemctl(t, "start", f.unit)
		defer f.mgr.MustSystemctl(t, "stop", f.unit)
		res := f.deploy(Request{})
		want := fmt.Sprintf("%s runs without %s, and systemd starts no socket whose service runs (fix: once: systemctl --user stop %s && systemctl --user start %s",
			f.unit, socket, f.unit, socket)
		if res.Status != store.StatusFailed || !strings.Contains(res.Err.Error(), want) {
			t.Fatalf("status %s (%v), want failed: %s", res.Status, res.Err, want)
		}
		if cur, _ := currentRelease(f.app); cur != "" {
			t.Fatalf("current is %s: switched", cur)
		}
	})
}

// TestDeploySocketStartLimit: quick successive deployments do not trip
// the service's start limit, which would take its socket down with it
// (systemd fails the socket with service-start-limit-hit): the limit is
// set to two starts an hour, and five deployments restart it.
func TestDeploySocketStartLimit(t *testing.T) {
	f, app := socketFixture(t, "StartLimitIntervalSec=1h\nStartLimitBurst=2\n")
	for i := range 5 {
		f.push("healthy", nil)
		f.expect(f.deploy(Request{}), store.StatusSucceeded, fmt.Sprintf("v%d", i+1))
		if got := activeState(t, f, app.Socket); got != "active" {
			t.Fatalf("after deployment %d, %s is %s, want active", i+1, app.Socket, got)
		}
	}
	if out := f.mgr.MustSystemctl(t, "show", "--property=Result", "--value", app.Socket); out != "success" {
		t.Fatalf("%s result %s, want success", app.Socket, out)
	}
}

// TestSocketHandoffs: what doctor and --plan report, asking systemd and
// changing nothing: the socket found and not listening, then listening.
func TestSocketHandoffs(t *testing.T) {
	f, app := socketFixture(t, "")
	env := lookup(t, f.cfg, "hello", "production")
	hs, err := SocketHandoffs(context.Background(), f.collab, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].Problem != "" || hs[0].Ready() || hs[0].StopTimeout <= 0 {
		t.Fatalf("hand-offs %+v, want %s found, not listening, with a stop timeout", hs, app.Socket)
	}
	if got := activeState(t, f, app.Socket); got != "inactive" {
		t.Fatalf("socket %s after the question, want inactive: asking starts nothing", got)
	}
	f.mgr.MustSystemctl(t, "start", app.Socket)
	hs, err = SocketHandoffs(context.Background(), f.collab, env)
	if err != nil || len(hs) != 1 || !hs[0].Ready() || hs[0].Describe() != app.Socket+" listening" {
		t.Fatalf("hand-offs %+v (%v), want %s listening", hs, err, app.Socket)
	}
	f.push("healthy", nil)
	p, err := f.engine.Plan(context.Background(), f.collab, Request{Env: env})
	if err != nil || p.SocketHandoff != f.unit+": "+app.Socket+" listening" {
		t.Fatalf("plan's socket hand-off %q (%v), want %s listening", p.SocketHandoff, err, app.Socket)
	}
}

// TestStopTimeoutWarning: the restart step warns when a service may
// drain as long as the step waits, or longer, or forever.
func TestStopTimeoutWarning(t *testing.T) {
	cfg := parseConfig(t, t.TempDir(), `
fraises:
  hello:
    type: api
    environments:
      production: {branch: main, git_repo: /srv/git/hello.git, app_path: /srv/hello, systemd_service: hello, restart: socket}
      staging: {branch: dev, git_repo: /srv/git/hello.git, app_path: /srv/hello-staging, systemd_service: hello-staging, restart: socket, timeouts: {restart: 10m}}
`)
	prod, staging := lookup(t, cfg, "hello", "production"), lookup(t, cfg, "hello", "staging")
	for _, tc := range []struct {
		env  *config.Environment
		stop time.Duration
		want string
	}{
		{prod, 90 * time.Second, ""},
		{prod, 2 * time.Minute, "hello.service may drain for up to 2m0s (TimeoutStopSec), and the restart step gives up after 2m0s"},
		{prod, 0, "hello.service may drain for forever (TimeoutStopSec=infinity), and the restart step gives up after 2m0s"},
		{staging, 5 * time.Minute, ""},
	} {
		got := stopTimeoutWarning(tc.env, SocketHandoff{Service: "hello.service", StopTimeout: tc.stop})
		if !strings.HasPrefix(got, tc.want) || (tc.want == "") != (got == "") {
			t.Errorf("%s, TimeoutStopSec %s: warning %q, want %q…", tc.env.Name, tc.stop, got, tc.want)
		}
	}
}
