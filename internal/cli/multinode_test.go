package cli_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestMultiNode runs rollouts across three hosts end to end: three
// fraisier nodes as three processes on this machine (see multiNode), one
// real PostgreSQL, and rollouts of signed GitHub pushes across them, in
// order, stopped at the first failure, through a node killed with SIGKILL,
// a PostgreSQL restart and racing pushes. The steps share one installation
// and run in order, each starting from where the last left the hosts
// (f.live); the first that fails stops the rest.
func TestMultiNode(t *testing.T) {
	f := newMultiNode(t)
	for _, step := range []struct {
		name string
		run  func(*testing.T, *multiNode)
	}{
		{"rollout_in_order", mnInOrder},
		{"unhealthy_on_web-2", mnUnhealthyOnSecond},
		{"postgres_restart", mnPostgresRestart},
		{"node_killed", mnNodeKilled},
		{"racing_pushes", mnRacingPushes},
		{"graceful_stop", mnGracefulStop},
	} {
		ok := t.Run(step.name, func(t *testing.T) {
			f.t = t
			defer func() { f.t = f.top }()
			step.run(t, f)
		})
		if !ok {
			return
		}
	}
}

// mnInOrder: a push becomes one rollout; the hosts deploy one by one in
// order, web-1 (which migrates) first; it succeeds and every host serves
// the new version, migrated once.
func mnInOrder(t *testing.T, f *multiNode) {
	sha, v := f.commit()
	id := f.push("", sha)
	r := f.waitTerminal(id, 60*time.Second)
	if r.Status != store.RolloutSucceeded || r.SHA != sha {
		t.Fatalf("rollout %d: %s at %.8s, want succeeded at %.8s\n%s", id, r.Status, r.SHA, sha, show(r))
	}
	if !slices.Equal(r.Policy.Hosts, mnHostNames) || r.Policy.MigrateHost != "web-1" || r.Policy.Batch != 1 {
		t.Errorf("rollout %d policy %+v, want hosts %v, migrate_host web-1, batch 1", id, r.Policy, mnHostNames)
	}
	hosts := slices.Clone(r.Hosts)
	slices.SortFunc(hosts, func(a, b store.RolloutHost) int { return a.Position - b.Position })
	var prev *store.Deployment
	for i, h := range hosts {
		if h.Host != mnHostNames[i] || h.Status != store.HostSucceeded || h.DeploymentID == nil {
			t.Fatalf("rollout %d host at position %d: %+v, want %s succeeded with its deployment", id, h.Position, h, mnHostNames[i])
		}
		d := f.deployment(*h.DeploymentID)
		if d.Target != hostTarget(h.Host) || d.Status != store.StatusSucceeded || d.NewSHA != sha ||
			d.Trigger != store.TriggerRollout || d.FinishedAt == nil || d.RolloutID == nil || *d.RolloutID != id {
			t.Fatalf("%s's step: %+v, want a succeeded rollout deployment of %s at %.8s", h.Host, d, hostTarget(h.Host), sha)
		}
		if prev != nil && d.StartedAt.Before(*prev.FinishedAt) {
			t.Errorf("%s started at %s, before %s finished at %s: batch 1 deploys one host at a time",
				h.Host, d.StartedAt.Format(time.RFC3339Nano), prev.Environment, prev.FinishedAt.Format(time.RFC3339Nano))
		}
		prev = &d
	}
	f.checkOn(v)
	f.checkMigratedOnce(v)
	f.checkCLIRollout(r)
	f.checkStatusRows(sha)
	f.checkHostHealth()
	f.live = v
}

// checkHostHealth checks that fraisier status --json on web-1 shows web-2
// and web-3 healthy, as their own nodes probed them right after their
// deployment ended (web-1 cannot reach their health endpoints' ports).
func (f *multiNode) checkHostHealth() {
	f.t.Helper()
	got := map[string]string{}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var rows []struct {
			Host         string `json:"host"`
			Health       string `json:"health"`
			HealthByNode string `json:"health_by_node"`
		}
		f.cliJSON(&rows, "targets", "status", "hello", "production", "--json", "--offline")
		for _, r := range rows {
			got[r.Host] = r.Health + " by " + r.HealthByNode
		}
		if got["web-2"] == "healthy by web-2" && got["web-3"] == "healthy by web-3" {
			f.t.Logf("fraisier status --json on web-1: health %v", got)
			return
		}
		if time.Now().After(deadline) {
			f.t.Errorf("fraisier status --json on web-1: health %v, want web-2 and web-3 healthy by their own nodes", got)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkStatusRows checks that fraisier status hello production --json
// has one row per host, each on commit sha.
func (f *multiNode) checkStatusRows(sha string) {
	f.t.Helper()
	var rows []struct {
		Environment string `json:"environment"`
		CurrentSHA  string `json:"current_sha"`
	}
	f.cliJSON(&rows, "targets", "status", "hello", "production", "--json")
	got := map[string]string{}
	for _, r := range rows {
		got[r.Environment] = r.CurrentSHA
	}
	for _, h := range mnHostNames {
		if got[hostTarget(h).Environment] != sha {
			f.t.Errorf("fraisier status hello production --json: %v, want a row per host, each at %.8s", got, sha)
			return
		}
	}
}

// mnUnhealthyOnSecond: a commit that fails its health check on web-2
// only stops the rollout there; web-1, already switched, rolls back,
// web-2 undoes its own switch, web-3 never deploys it, and all three
// serve the previous version.
func mnUnhealthyOnSecond(t *testing.T, f *multiNode) {
	old := f.live
	sha, v := f.commit("web-2")
	id := f.push(f.shas[old], sha)
	r := f.waitTerminal(id, 60*time.Second)
	if r.Status != store.RolloutRolledBack {
		t.Fatalf("rollout %d: %s, want rolled_back\n%s", id, r.Status, show(r))
	}
	f.checkHosts(r, map[string][]store.HostStatus{
		"web-1": {store.HostRolledBack},
		"web-2": {store.HostFailed, store.HostRolledBack},
		"web-3": {store.HostSkipped},
	})
	hosts := byHost(r)
	if d := hosts["web-2"].DeploymentID; d == nil || f.deployment(*d).Status != store.StatusRolledBack {
		t.Errorf("web-2's step %v: want its deployment rolled back by its own compensation", d)
	}
	if rb := hosts["web-1"].RollbackID; rb == nil || f.deployment(*rb).Status != store.StatusSucceeded {
		t.Errorf("web-1's rollback %v: want a succeeded rollback deployment", rb)
	}
	if hosts["web-3"].DeploymentID != nil || len(f.deploymentsOf("web-3", sha)) != 0 {
		t.Errorf("web-3 ran a deployment of %s: %+v", v, f.deploymentsOf("web-3", sha))
	}
	if got := f.installStarted("web-3", v); got {
		t.Errorf("web-3 installed %s", v)
	}
	f.checkOn(old)
	f.checkMigratedOnce(v)
	f.checkCLIRollout(r)
}

// mnPostgresRestart: PostgreSQL stopped for longer than the nodes'
// heartbeat timeout while web-2 installs, then started again; the
// rollout goes on and succeeds, and no node crashed or was judged dead.
func mnPostgresRestart(t *testing.T, f *multiNode) {
	old := f.live
	f.hold("web-2")
	sha, v := f.commit()
	id := f.push(f.shas[old], sha)
	f.waitFor("web-2 to start installing "+v, 60*time.Second, func() bool {
		return f.installStarted("web-2", v)
	})
	ctx := context.Background()
	if err := f.pg.StopServer(ctx, false); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	// Longer than rollout.node_timeout (4s): an outage of the database
	// must not make the nodes look dead to each other.
	time.Sleep(5 * time.Second)
	f.checkRunning()
	if err := f.pg.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL was down for %s", time.Since(down).Round(time.Millisecond))
	f.release("web-2")
	r := f.waitTerminal(id, 90*time.Second)
	f.checkRunning()
	if r.Status != store.RolloutSucceeded {
		t.Fatalf("rollout %d: %s, want succeeded (hosts answer %s, %s, %s)\n%s",
			id, r.Status, f.serving("web-1"), f.serving("web-2"), f.serving("web-3"), show(r))
	}
	f.checkHosts(r, map[string][]store.HostStatus{"web-1": {store.HostSucceeded}, "web-2": {store.HostSucceeded}, "web-3": {store.HostSucceeded}})
	f.checkOn(v)
	f.checkMigratedOnce(v)
	f.waitNodes("the three nodes to be alive after the outage", 15*time.Second, map[string]bool{"web-1": true, "web-2": true, "web-3": true})
	f.live = v
}

// mnNodeKilled: web-2's node killed with SIGKILL while it installs. The
// rollout waits out the node's heartbeat, then fails honestly (web-2
// lost, never succeeded) and rolls web-1 back; fraisier nodes says web-2
// is dead. Started again, web-2's node records its deployment interrupted
// and its service is on the previous release.
func mnNodeKilled(t *testing.T, f *multiNode) {
	old := f.live
	web2 := f.host("web-2")
	f.hold("web-2")
	sha, v := f.commit()
	id := f.push(f.shas[old], sha)
	f.waitFor("web-2 to start installing "+v, 60*time.Second, func() bool {
		return f.installStarted("web-2", v)
	})
	if got := f.serving("web-1"); got != v {
		t.Fatalf("web-1 answers %q while web-2 installs, want %s: web-1 deploys first", got, v)
	}
	web2.down = true
	web2.proc.Signal(t, syscall.SIGKILL)
	web2.proc.Wait(t, 10*time.Second)
	killedAt := time.Now()

	r := f.waitTerminal(id, 60*time.Second)
	t.Logf("rollout %d ended %s %s after the kill", id, r.Status, time.Since(killedAt).Round(time.Millisecond))
	if r.Status != store.RolloutFailed {
		t.Fatalf("rollout %d: %s, want failed (web-2's state is unknown)\n%s", id, r.Status, show(r))
	}
	f.checkHosts(r, map[string][]store.HostStatus{
		"web-1": {store.HostRolledBack}, "web-2": {store.HostLost}, "web-3": {store.HostSkipped},
	})
	if len(f.deploymentsOf("web-3", sha)) != 0 {
		t.Errorf("web-3 ran a deployment of %s: %+v", v, f.deploymentsOf("web-3", sha))
	}
	for _, h := range []string{"web-1", "web-2", "web-3"} {
		if got := f.serving(h); got != old {
			t.Errorf("%s answers %q, want %s", h, got, old)
		}
	}
	f.checkMigratedOnce(v)
	f.checkCLIRollout(r)
	f.waitNodes("web-2 to be dead", 45*time.Second, map[string]bool{"web-1": true, "web-2": false, "web-3": true})

	step := byHost(r)["web-2"].DeploymentID
	if step == nil {
		t.Fatalf("web-2 lost without a deployment\n%s", show(r))
	}
	f.release("web-2")
	f.startNode(web2)
	web2.down = false
	var d store.Deployment
	f.waitFor(fmt.Sprintf("web-2 to recover its deployment %d", *step), 30*time.Second, func() bool {
		d = f.deployment(*step)
		return d.Status == store.StatusInterrupted
	})
	f.waitNodes("web-2 to be alive again", 30*time.Second, map[string]bool{"web-1": true, "web-2": true, "web-3": true})
	f.checkOn(old)
	if again := f.rollout(id); again.Status != store.RolloutFailed {
		t.Errorf("rollout %d is %s after web-2 came back, want still failed", id, again.Status)
	}
	if ds := f.deploymentsOf("web-2", sha); len(ds) != 1 {
		t.Errorf("web-2's deployments of %s after its recovery: %+v, want only the interrupted one", v, ds)
	}
}

// rollout reads rollout id.
func (f *multiNode) rollout(id int64) store.Rollout {
	f.t.Helper()
	r, err := f.db.Rollout(context.Background(), id)
	if err != nil {
		f.t.Fatalf("rollout %d: %v", id, err)
	}
	return r
}

// mnGracefulStop: every node stops on SIGTERM with exit 0.
func mnGracefulStop(t *testing.T, f *multiNode) {
	var wg sync.WaitGroup
	codes := make([]int, len(f.hosts))
	for i, h := range f.hosts {
		h.down = true
		h.proc.Signal(t, syscall.SIGTERM)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-h.proc.Done():
				codes[i] = h.proc.Cmd.ProcessState.ExitCode()
			case <-time.After(40 * time.Second):
				codes[i] = -2
			}
		}()
	}
	wg.Wait()
	for i, h := range f.hosts {
		if codes[i] != 0 {
			t.Errorf("%s ended with exit %d on SIGTERM (-2: not within 40s)", h.proc.Name, codes[i])
		}
	}
}

// sendBoth sends the pushes of a and b (each after its parent) at once
// and insists that both were accepted.
func (f *multiNode) sendBoth(pushes [2][2]string) [2]mnAnswer {
	f.t.Helper()
	var wg sync.WaitGroup
	var answers [2]mnAnswer
	var statuses [2]int
	var errs [2]error
	for i, p := range pushes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], answers[i], errs[i] = f.send(p[0], p[1])
		}()
	}
	wg.Wait()
	// serve records deliveries that arrive together in one transaction and
	// keeps the newest request per target: one of the two may come back
	// superseded by the other, never both.
	folded := 0
	for i := range pushes {
		ok := errs[i] == nil && statuses[i] == http.StatusAccepted
		switch {
		case ok && answers[i].Outcome == store.OutcomeAccepted:
		case ok && answers[i].Outcome == store.OutcomeSuperseded && strings.Contains(answers[i].Reason, "same recording batch"):
			folded++
		default:
			f.t.Fatalf("racing push of %.8s: %d %+v %v; want 202 accepted (or superseded in the same batch)", pushes[i][1], statuses[i], answers[i], errs[i])
		}
	}
	if folded > 1 {
		f.t.Fatalf("both racing pushes came back superseded: %+v", answers)
	}
	return answers
}
