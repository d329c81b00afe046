package queue

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// hostApp is one host's service as its health check sees it: an HTTP
// endpoint on loopback that answers for the release the host runs (the
// VERSION of app_path/current), healthy unless the test made that
// release bad. Only that host's node has its URL (${HEALTH_URL}).
type hostApp struct {
	*httptest.Server
	appPath string

	mu     sync.Mutex
	bad    string      // the VERSION that answers 503 ("" for none)
	checks []time.Time // when /health was asked
}

func newHostApp(t *testing.T, appPath string) *hostApp {
	t.Helper()
	a := &hostApp{appPath: appPath}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func (a *hostApp) serve(w http.ResponseWriter, _ *http.Request) {
	b, err := os.ReadFile(filepath.Join(a.appPath, "current", "VERSION"))
	version := strings.TrimSpace(string(b))
	a.mu.Lock()
	a.checks = append(a.checks, time.Now())
	bad := a.bad != "" && version == a.bad
	a.mu.Unlock()
	switch {
	case err != nil:
		http.Error(w, "no release: "+err.Error(), http.StatusServiceUnavailable)
	case bad:
		http.Error(w, "release "+version+" is broken", http.StatusServiceUnavailable)
	default:
		fmt.Fprintln(w, version)
	}
}

// breakRelease makes the release of that VERSION unhealthy from now on.
func (a *hostApp) breakRelease(version string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.bad = version
}

// checkedBetween says whether /health was asked in [from, to].
func (a *hostApp) checkedBetween(from, to time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.checks {
		if !c.Before(from) && !c.After(to) {
			return true
		}
	}
	return false
}

// canaryRun is what a canary case saw: the rollout of v2 when its canary
// had deployed and it waited (NextAt is the timed window's end), and at
// its end.
type canaryRun struct {
	f        *rolloutFixture
	id       int64
	v1, v2   string
	held     store.Rollout
	resumeAt time.Time
}

// TestRolloutCanary runs a canary rollout of v2 over three nodes, each
// host with a real health endpoint, after v1 went out without a canary:
// a timed window that ends healthy, one whose canary turns unhealthy
// during the window (checked by its own node at the window's end, then
// rolled back), and a manual canary that waits for a resume.
func TestRolloutCanary(t *testing.T) {
	tests := []struct {
		name   string
		wait   string              // canary_wait
		during func(*canaryRun)    // while the canary waits
		want   store.RolloutStatus // how the rollout of v2 ends
		hosts  map[string]store.HostStatus
		check  func(*canaryRun, store.Rollout)
	}{
		{"timed, healthy at the window's end", "2s", nil, store.RolloutSucceeded,
			map[string]store.HostStatus{"web-1": store.HostSucceeded, "web-2": store.HostSucceeded, "web-3": store.HostSucceeded},
			checkTimedHealthy},
		{"timed, unhealthy at the window's end", "2s",
			func(c *canaryRun) { c.f.apps["web-1"].breakRelease("v2") }, store.RolloutRolledBack,
			map[string]store.HostStatus{"web-1": store.HostRolledBack, "web-2": store.HostSkipped, "web-3": store.HostSkipped},
			checkTimedUnhealthy},
		{"manual, resumed", "manual", holdThenResume, store.RolloutSucceeded,
			map[string]store.HostStatus{"web-1": store.HostSucceeded, "web-2": store.HostSucceeded, "web-3": store.HostSucceeded},
			checkResumed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			f := newRolloutFixtureWith(t, fixtureOptions{rollout: ", canary: true, canary_wait: " + tc.wait, health: true})
			c := &canaryRun{f: f, v1: f.commit(1)}
			if ro := f.wait(f.push(c.v1, func(p *store.RolloutPolicy) { p.Canary = false })); ro.Status != store.RolloutSucceeded {
				t.Fatalf("rollout of v1 without a canary: %s (%s)", ro.Status, ro.Error)
			}
			c.v2 = f.commit(2)
			c.id = f.push(c.v2, nil)
			c.held = f.canaryHeld(c.id)
			if tc.during != nil {
				tc.during(c)
			}
			ro := f.wait(c.id)
			if ro.Status != tc.want {
				t.Fatalf("rollout of v2: %s (%s), want %s; hosts %+v", ro.Status, ro.Error, tc.want, ro.Hosts)
			}
			if got := hostStatuses(ro); fmt.Sprint(got) != fmt.Sprint(tc.hosts) {
				t.Errorf("hosts %v, want %v", got, tc.hosts)
			}
			tc.check(c, ro)
			t.Logf("case took %s", time.Since(start).Round(time.Millisecond))
		})
	}
}

// canaryHeld waits until rollout id's canary, web-1, has deployed and the
// rollout waits (a window's end set, or a resume awaited), and checks
// that no other host has started.
func (f *rolloutFixture) canaryHeld(id int64) store.Rollout {
	f.t.Helper()
	var ro store.Rollout
	waitFor(f.t, "the canary to deploy and the rollout to wait", 30*time.Second, func() bool {
		var err error
		if ro, err = f.db.Rollout(context.Background(), id); err != nil {
			f.t.Fatal(err)
		}
		if ro.Status.Terminal() {
			f.t.Fatalf("rollout ended %s (%s) before its canary window", ro.Status, ro.Error)
		}
		return ro.Hosts[0].Status == store.HostSucceeded && (ro.NextAt != nil || ro.WaitingResume)
	})
	f.expectHeld(ro)
	return ro
}

// expectHeld checks that ro waits after its canary: web-1 deployed alone.
func (f *rolloutFixture) expectHeld(ro store.Rollout) {
	f.t.Helper()
	want := map[string]store.HostStatus{"web-1": store.HostSucceeded, "web-2": store.HostPending, "web-3": store.HostPending}
	if got := hostStatuses(ro); ro.Status != store.RolloutRunning || fmt.Sprint(got) != fmt.Sprint(want) {
		f.t.Fatalf("during the canary window: %s, hosts %v, want running, %v", ro.Status, got, want)
	}
	for _, h := range ro.Hosts[1:] {
		if h.DeploymentID != nil {
			f.t.Fatalf("%s's step queued during the canary window", h.Host)
		}
	}
}

// step is the deployment of host h of ro.
func (f *rolloutFixture) step(ro store.Rollout, i int) store.Deployment {
	f.t.Helper()
	h := ro.Hosts[i]
	if h.DeploymentID == nil {
		f.t.Fatalf("host %s has no deployment", h.Host)
	}
	d, err := f.db.Deployment(context.Background(), *h.DeploymentID)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// checkTimedHealthy: the window lasted canary_wait from web-1's end, web-1's
// own endpoint was asked at its end, and web-2 started only after that.
func checkTimedHealthy(c *canaryRun, ro store.Rollout) {
	f, t, end := c.f, c.f.t, *c.held.NextAt
	d1, d2, d3 := f.step(ro, 0), f.step(ro, 1), f.step(ro, 2)
	if end.Before(d1.FinishedAt.Add(2 * time.Second)) {
		t.Errorf("window ends %s, less than 2s after web-1's step ended (%s)", end, *d1.FinishedAt)
	}
	if d2.StartedAt.Before(end) || ro.Hosts[1].StartedAt.Before(end) {
		t.Errorf("web-2's step queued %s, started %s: before the window's end %s", *ro.Hosts[1].StartedAt, d2.StartedAt, end)
	}
	if !f.apps["web-1"].checkedBetween(end, d2.StartedAt) {
		t.Errorf("web-1's health endpoint was not asked between the window's end %s and web-2's start %s", end, d2.StartedAt)
	}
	if d3.StartedAt.Before(*d2.FinishedAt) {
		t.Errorf("web-3 started %s, before web-2 finished %s", d3.StartedAt, *d2.FinishedAt)
	}
	want := map[string]string{"web-1": c.v2, "web-2": c.v2, "web-3": c.v2}
	if got := f.current(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hosts run %v, want %v", got, want)
	}
	t.Logf("window %s after web-1's step ended; web-2 started %s after the window's end",
		end.Sub(*d1.FinishedAt).Round(time.Millisecond), d2.StartedAt.Sub(end).Round(time.Millisecond))
}

// checkTimedUnhealthy: the health check failed at the window's end, a
// rollback deployment switched web-1 back to v1 (its database down
// again), and neither other host ran anything.
func checkTimedUnhealthy(c *canaryRun, ro store.Rollout) {
	f, t := c.f, c.f.t
	if !strings.Contains(ro.Error, "health check") || !strings.Contains(ro.Error, "503") {
		t.Errorf("rollout error %q: want the health check's failure", ro.Error)
	}
	w1 := ro.Hosts[0]
	if w1.RollbackID == nil {
		t.Fatalf("web-1 has no rollback deployment: %+v", w1)
	}
	rb, err := f.db.Deployment(context.Background(), *w1.RollbackID)
	if err != nil {
		t.Fatal(err)
	}
	if rb.Host != "web-1" || rb.Trigger != store.TriggerRollback || rb.Status != store.StatusSucceeded || rb.NewSHA != c.v1 {
		t.Errorf("web-1's rollback: on %s by %s to %.8s, %s (%s); want a succeeded rollback to v1 on web-1",
			rb.Host, rb.Trigger, rb.NewSHA, rb.Status, rb.Error)
	}
	if rb.StartedAt.Before(*c.held.NextAt) {
		t.Errorf("rollback started %s, before the window's end %s", rb.StartedAt, *c.held.NextAt)
	}
	for _, h := range ro.Hosts[1:] {
		if h.DeploymentID != nil {
			t.Errorf("%s's step was queued (%d)", h.Host, *h.DeploymentID)
		}
	}
	want := map[string]string{"web-1": c.v1, "web-2": c.v1, "web-3": c.v1}
	if got := f.current(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hosts run %v, want all on v1 %v", got, want)
	}
	if got := f.runs(); fmt.Sprint(got) != "[up_web-1 up_web-1 down_web-1_1]" {
		t.Errorf("migration runs %v: want v1's and v2's up and the rollback's down, on web-1", got)
	}
	if rb.FinishedAt != nil {
		t.Logf("web-1 rolled back %s after the window's end: %s", rb.FinishedAt.Sub(*c.held.NextAt).Round(time.Millisecond), ro.Error)
	}
}

// holdThenResume checks that a manual canary holds the rollout for 2 s,
// then resumes it as fraisier rollout resume does, and nothing else: no
// node is woken by the test.
func holdThenResume(c *canaryRun) {
	f, t := c.f, c.f.t
	ctx := context.Background()
	if !c.held.WaitingResume || c.held.NextAt != nil {
		t.Fatalf("manual canary: waiting_resume %v, next_at %v", c.held.WaitingResume, c.held.NextAt)
	}
	for until := time.Now().Add(2 * time.Second); time.Now().Before(until); time.Sleep(100 * time.Millisecond) {
		ro, err := f.db.Rollout(ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		f.expectHeld(ro)
		if !ro.WaitingResume {
			t.Fatalf("rollout stopped waiting for its resume by itself")
		}
	}
	c.resumeAt = time.Now()
	if err := f.db.ResumeRollout(ctx, c.id, "test"); err != nil {
		t.Fatal(err)
	}
}

// checkResumed: the others deployed at once after the resume. The runners
// poll every 30 s and the loops' backstop is 3 s: only the resume's
// notifications make web-2 start within a second or so.
func checkResumed(c *canaryRun, ro store.Rollout) {
	f, t := c.f, c.f.t
	d2 := f.step(ro, 1)
	if d2.StartedAt.Before(c.resumeAt.Truncate(time.Millisecond)) {
		t.Errorf("web-2 started %s, before the resume %s", d2.StartedAt, c.resumeAt)
	}
	if lag := d2.StartedAt.Sub(c.resumeAt); lag > 1500*time.Millisecond {
		t.Errorf("web-2 started %s after the resume: not woken by its notification", lag)
	}
	want := map[string]string{"web-1": c.v2, "web-2": c.v2, "web-3": c.v2}
	if got := f.current(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hosts run %v, want %v", got, want)
	}
	t.Logf("web-2 started %s after the resume; the rollout ended %s after it",
		d2.StartedAt.Sub(c.resumeAt).Round(time.Millisecond), ro.FinishedAt.Sub(c.resumeAt).Round(time.Millisecond))
}
