package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// fleet is a rollout test's database, clock and hosts. Host steps end
// through the calls the deploy engine makes (ClaimQueued, then
// FinishDeployment), as a node would run them.
type fleet struct {
	t   *testing.T
	db  *store.DB
	clk *clock
	ctx context.Context
}

func (s *suite) fleet(t *testing.T) *fleet {
	db, clk := s.fresh(t)
	return &fleet{t: t, db: db, clk: clk, ctx: context.Background()}
}

// hostOf is the per-host target of the rollouts' environment.
func hostOf(host string) store.Target {
	return store.Target{Fraise: api.Fraise, Environment: api.Environment + "@" + host}
}

// seed gives each host a first release, commit 1: what a rollback returns to.
func (f *fleet) seed(hosts ...string) {
	for _, h := range hosts {
		deploy(f.t, f.db, f.clk, hostOf(h), 1, time.Second, store.StatusSucceeded)
	}
}

// beat records a heartbeat of each node now.
func (f *fleet) beat(nodes ...string) {
	for _, n := range nodes {
		check(f.t, f.db.Heartbeat(f.ctx, store.Node{Name: n, Hostname: "test", PID: 1, Version: "test"}))
	}
}

// push queues a rollout of commit n.
func (f *fleet) push(n int, p store.RolloutPolicy) int64 {
	f.t.Helper()
	q := must(f.db.Enqueue(f.ctx, store.QueueRequest{Target: api, SHA: sha(n), Ref: "refs/heads/main",
		Trigger: store.TriggerWebhook, Actor: "push", Rollout: &p}))(f.t)
	if q.RolloutID == 0 || q.DeploymentID != 0 {
		f.t.Fatalf("push queued %+v, want a rollout", q)
	}
	return q.RolloutID
}

// advance runs AdvanceRollouts now, this node connected for an hour.
func (f *fleet) advance() store.AdvanceResult {
	f.t.Helper()
	now := f.clk.Now()
	return must(f.db.AdvanceRollouts(f.ctx, now, now.Add(-time.Hour)))(f.t)
}

// step is the deployment queued for host's node, or nil.
func (f *fleet) step(host string) *store.Deployment {
	f.t.Helper()
	for _, d := range must(f.db.QueuedDeploymentsFor(f.ctx, host))(f.t) {
		if d.Node == host {
			return &d
		}
	}
	return nil
}

// run claims host's queued step and ends it as status.
func (f *fleet) run(host string, status store.Status) store.Deployment {
	f.t.Helper()
	d := f.step(host)
	if d == nil {
		f.t.Fatalf("no step queued for %s", host)
	}
	if d.RolloutID == nil || d.Target != hostOf(host) {
		f.t.Fatalf("step %+v: not a rollout step of %s", d, host)
	}
	var old string
	if st := must(f.db.FraiseStates(f.ctx, d.Fraise, d.Environment))(f.t); len(st) == 1 {
		old = st[0].CurrentSHA
	}
	claimed := must(f.db.ClaimQueued(f.ctx, d.ID, store.Claim{Host: host, PID: 7, OldSHA: old}))(f.t)
	f.clk.Advance(time.Second)
	fin := store.Finish{Status: status, NewSHA: claimed.NewSHA}
	if status == store.StatusSucceeded {
		fin.Release = "r-" + claimed.NewSHA[:7]
	} else {
		fin.Error = "health check failed"
	}
	check(f.t, f.db.FinishDeployment(f.ctx, d.ID, fin))
	return claimed
}

// expect checks the rollout's status and its hosts'.
func (f *fleet) expect(id int64, status store.RolloutStatus, hosts map[string]store.HostStatus) store.Rollout {
	f.t.Helper()
	r := must(f.db.Rollout(f.ctx, id))(f.t)
	var got []string
	for _, h := range r.Hosts {
		got = append(got, fmt.Sprintf("%s=%s", h.Host, h.Status))
		if want, ok := hosts[h.Host]; ok && h.Status != want {
			f.t.Errorf("rollout %d host %s is %s (%s), want %s", id, h.Host, h.Status, h.Error, want)
		}
	}
	if r.Status != status {
		f.t.Errorf("rollout %d is %s (%s; %s), want %s", id, r.Status, r.Error, strings.Join(got, " "), status)
	}
	return r
}

// stepsOf counts the deployments of host with trigger tr.
func (f *fleet) stepsOf(host string, tr store.Trigger) int {
	n := 0
	for _, d := range must(f.db.Deployments(f.ctx, store.DeploymentFilter{Fraise: api.Fraise, Environment: hostOf(host).Environment, Limit: 1000}))(f.t) {
		if d.Trigger == tr {
			n++
		}
	}
	return n
}

const (
	hp = store.HostPending
	hd = store.HostDeploying
	hs = store.HostSucceeded
)

// three are the hosts of most rollout tests.
var three = []string{"a", "b", "c"}

func (s *suite) testRollouts(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(f *fleet)
	}{
		{"batches with a pause", rolloutBatchesWithAPause},
		{"failure rolls the switched hosts back", rolloutFailureRollsTheSwitchedHostsBack},
		{"a failed rollback", rolloutAFailedRollback},
		{"a dead node", rolloutADeadNode},
		{"an outage of this node's database does not kill nodes", rolloutAnOutageOfThisNodesDatabaseDoesNotKillNodes},
		{"a step nobody claims", rolloutAStepNobodyClaims},
		{"manual canary, resumed", rolloutManualCanaryResumed},
		{"timed canary, healthy", rolloutTimedCanaryHealthy},
		{"timed canary, unhealthy", rolloutTimedCanaryUnhealthy},
		{"a newer push supersedes the queued rollout", rolloutANewerPushSupersedesTheQueuedRollout},
		{"a pass that queues a batch gives its deadlines", rolloutQueuedBatchHasDeadlines},
		{"a host deployed by hand during a pause fails it", rolloutHandDeployDuringPause},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(s.fleet(t)) })
	}
}

func rolloutBatchesWithAPause(f *fleet) {
	f.beat("a", "b", "c", "d", "e")
	id := f.push(2, store.RolloutPolicy{Hosts: []string{"a", "b", "c", "d", "e"}, Canary: true, Batch: 2, Pause: 10 * time.Second})
	f.expect(id, store.RolloutRunning, map[string]store.HostStatus{"a": hd, "b": hp})
	f.run("a", store.StatusSucceeded)
	res := f.advance()
	if want := f.clk.Now().Add(10 * time.Second); !res.Next.Equal(want) {
		f.t.Errorf("next %v, want the pause's end %v", res.Next, want)
	}
	f.clk.Advance(9 * time.Second)
	f.advance()
	if f.step("b") != nil {
		f.t.Fatal("batch 1 queued before the pause ended")
	}
	f.clk.Advance(time.Second)
	f.beat("a", "b", "c", "d", "e")
	f.advance()
	f.expect(id, store.RolloutRunning, map[string]store.HostStatus{"a": hs, "b": hd, "c": hd, "d": hp})
	f.run("b", store.StatusSucceeded)
	f.advance()
	f.expect(id, store.RolloutRunning, map[string]store.HostStatus{"c": hd, "d": hp})
	f.run("c", store.StatusSucceeded)
	f.advance()
	f.clk.Advance(10 * time.Second)
	f.beat("d", "e")
	f.advance()
	f.run("d", store.StatusSucceeded)
	f.run("e", store.StatusSucceeded)
	if res := f.advance(); !res.Next.IsZero() || len(res.Changed) == 0 {
		f.t.Errorf("last pass: %+v", res)
	}
	r := f.expect(id, store.RolloutSucceeded, map[string]store.HostStatus{"a": hs, "b": hs, "c": hs, "d": hs, "e": hs})
	if r.Batch != 2 || r.FinishedAt == nil {
		f.t.Errorf("ended at batch %d, finished %v", r.Batch, r.FinishedAt)
	}
}

func rolloutFailureRollsTheSwitchedHostsBack(f *fleet) {
	f.seed(three...)
	f.beat(three...)
	id := f.push(2, store.RolloutPolicy{Hosts: three})
	f.run("a", store.StatusSucceeded)
	f.advance()
	f.run("b", store.StatusRolledBack)
	f.advance()
	f.expect(id, store.RolloutRollingBack, map[string]store.HostStatus{"a": store.HostRollingBack, "b": store.HostFailed, "c": store.HostSkipped})
	rb := f.run("a", store.StatusSucceeded)
	if rb.Trigger != store.TriggerRollback || store.QueuedRef(rb.RequestedRef) != sha(1) || rb.NewSHA != sha(1) {
		f.t.Errorf("rollback step %+v: want trigger rollback to %s", rb, sha(1))
	}
	f.advance()
	f.expect(id, store.RolloutRolledBack, map[string]store.HostStatus{"a": store.HostRolledBack, "b": store.HostFailed, "c": store.HostSkipped})
	if n := f.stepsOf("c", store.TriggerRollout); n != 0 {
		f.t.Errorf("%d steps queued for the skipped host", n)
	}
}

func rolloutAFailedRollback(f *fleet) {
	f.seed(three...)
	f.beat(three...)
	id := f.push(2, store.RolloutPolicy{Hosts: three})
	f.run("a", store.StatusSucceeded)
	f.advance()
	f.run("b", store.StatusFailed)
	f.advance()
	f.run("a", store.StatusFailed)
	f.advance()
	f.expect(id, store.RolloutRollbackFailed, map[string]store.HostStatus{"a": store.HostRollbackFailed, "b": store.HostFailed})
}

func rolloutADeadNode(f *fleet) {
	f.seed("a", "b")
	f.beat("a", "b")
	id := f.push(2, store.RolloutPolicy{Hosts: []string{"a", "b"}, NodeTimeout: 30 * time.Second})
	f.run("a", store.StatusSucceeded)
	f.advance()
	f.clk.Advance(31 * time.Second)
	f.beat("a") // b's heartbeat is 31 s old
	queued := f.step("b")
	f.advance()
	f.expect(id, store.RolloutRollingBack, map[string]store.HostStatus{"a": store.HostRollingBack, "b": store.HostLost})
	d := must(f.db.Deployment(f.ctx, queued.ID))(f.t)
	if d.Status != store.StatusSkipped || !strings.Contains(d.Error, "node b is not alive (last heartbeat 32s ago)") {
		f.t.Errorf("b's step %s: %q", d.Status, d.Error)
	}
	if _, err := f.db.ClaimQueued(f.ctx, queued.ID, store.Claim{Host: "b"}); !errors.Is(err, store.ErrNotQueued) {
		f.t.Errorf("claim of the dead node's step: %v, want ErrNotQueued", err)
	}
	f.run("a", store.StatusSucceeded)
	f.advance()
	f.expect(id, store.RolloutFailed, map[string]store.HostStatus{"a": store.HostRolledBack, "b": store.HostLost})
}

func rolloutAnOutageOfThisNodesDatabaseDoesNotKillNodes(f *fleet) {
	f.beat("a")
	id := f.push(2, store.RolloutPolicy{Hosts: []string{"a"}, NodeTimeout: 30 * time.Second})
	f.clk.Advance(time.Minute)
	now := f.clk.Now()
	res := must(f.db.AdvanceRollouts(f.ctx, now, now.Add(-5*time.Second)))(f.t)
	f.expect(id, store.RolloutRunning, map[string]store.HostStatus{"a": hd})
	if want := now.Add(25 * time.Second); !res.Next.Equal(want) {
		f.t.Errorf("next %v, want %v (30 s after the connection came back)", res.Next, want)
	}
	f.advance()
	f.expect(id, store.RolloutFailed, map[string]store.HostStatus{"a": store.HostLost})
}

func rolloutAStepNobodyClaims(f *fleet) {
	f.beat("a", "b")
	id := f.push(2, store.RolloutPolicy{Hosts: []string{"a", "b"}, NodeTimeout: time.Hour, ClaimTimeout: time.Minute})
	f.clk.Advance(59 * time.Second)
	if res := f.advance(); !res.Next.Equal(f.clk.Now().Add(time.Second)) {
		f.t.Errorf("next %v, want the claim deadline", res.Next)
	}
	f.clk.Advance(time.Second)
	f.advance()
	r := f.expect(id, store.RolloutRolledBack, map[string]store.HostStatus{"a": store.HostFailed, "b": store.HostSkipped})
	if !strings.Contains(r.Hosts[0].Error, "no node claimed") {
		f.t.Errorf("a's error %q", r.Hosts[0].Error)
	}
}

func rolloutManualCanaryResumed(f *fleet) {
	t := f.t
	f.beat(three...)
	id := f.push(2, store.RolloutPolicy{Hosts: three, Canary: true, CanaryManual: true, Batch: 2, MigrateHost: "b"})
	f.run("b", store.StatusSucceeded)
	f.advance()
	r := f.expect(id, store.RolloutRunning, map[string]store.HostStatus{"b": hs, "a": hp, "c": hp})
	if !r.WaitingResume || r.Hosts[0].Host != "b" {
		f.t.Fatalf("waiting_resume %v, first host %s", r.WaitingResume, r.Hosts[0].Host)
	}
	f.clk.Advance(time.Hour)
	f.beat(three...)
	f.advance()
	f.expect(id, store.RolloutRunning, map[string]store.HostStatus{"a": hp})
	check(t, f.db.ResumeRollout(f.ctx, id, "alice"))
	if err := f.db.ResumeRollout(f.ctx, id, "alice"); !errors.Is(err, store.ErrNotWaiting) {
		f.t.Errorf("second resume: %v", err)
	}
	f.run("a", store.StatusSucceeded)
	f.run("c", store.StatusSucceeded)
	f.advance()
	f.expect(id, store.RolloutSucceeded, nil)
}

func rolloutTimedCanaryHealthy(f *fleet) {
	t := f.t
	f.beat("a", "b")
	id := f.push(2, store.RolloutPolicy{Hosts: []string{"a", "b"}, Canary: true, CanaryWait: 20 * time.Second})
	f.run("a", store.StatusSucceeded)
	if res := f.advance(); !res.Next.Equal(f.clk.Now().Add(20 * time.Second)) {
		f.t.Errorf("next %v, want the window's end", res.Next)
	}
	if f.step("b") != nil {
		f.t.Fatal("b queued during the canary window")
	}
	if err := f.db.RolloutVerified(f.ctx, id, "b", true, ""); !errors.Is(err, store.ErrNotWaiting) {
		f.t.Errorf("check reported by another host: %v", err)
	}
	f.clk.Advance(20 * time.Second)
	check(t, f.db.RolloutVerified(f.ctx, id, "a", true, ""))
	f.run("b", store.StatusSucceeded)
	f.advance()
	f.expect(id, store.RolloutSucceeded, nil)
}

func rolloutTimedCanaryUnhealthy(f *fleet) {
	t := f.t
	f.seed("a", "b")
	f.beat("a", "b")
	id := f.push(2, store.RolloutPolicy{Hosts: []string{"a", "b"}, Canary: true, CanaryWait: 20 * time.Second})
	f.run("a", store.StatusSucceeded)
	f.advance()
	f.clk.Advance(20 * time.Second)
	check(t, f.db.RolloutVerified(f.ctx, id, "a", false, "HTTP 502"))
	f.expect(id, store.RolloutRollingBack, map[string]store.HostStatus{"a": store.HostRollingBack, "b": store.HostSkipped})
	f.run("a", store.StatusSucceeded)
	f.advance()
	r := f.expect(id, store.RolloutRolledBack, map[string]store.HostStatus{"a": store.HostRolledBack})
	if !strings.Contains(r.Error, "HTTP 502") {
		f.t.Errorf("error %q", r.Error)
	}
}

func rolloutANewerPushSupersedesTheQueuedRollout(f *fleet) {
	f.beat("a", "b")
	p := store.RolloutPolicy{Hosts: []string{"a", "b"}}
	first := f.push(2, p)
	second := f.push(3, p)
	third := f.push(4, p)
	f.expect(first, store.RolloutRunning, nil)
	r := f.expect(second, store.RolloutSuperseded, map[string]store.HostStatus{"a": store.HostSkipped, "b": store.HostSkipped})
	if r.SupersededBy == nil || *r.SupersededBy != third {
		f.t.Errorf("superseded by %v, want %d", r.SupersededBy, third)
	}
	f.expect(third, store.RolloutQueued, map[string]store.HostStatus{"a": hp})
	f.run("a", store.StatusSucceeded)
	f.advance()
	f.run("b", store.StatusSucceeded)
	f.advance()
	f.expect(first, store.RolloutSucceeded, nil)
	f.expect(third, store.RolloutRunning, map[string]store.HostStatus{"a": hd, "b": hp})
	if d := f.step("a"); d == nil || d.NewSHA != sha(4) {
		f.t.Errorf("a's step %+v, want commit 4", d)
	}
	if rs := must(f.db.Rollouts(f.ctx, store.RolloutFilter{Target: api, Active: true}))(f.t); len(rs) != 1 || rs[0].ID != third {
		f.t.Errorf("active rollouts %+v", rs)
	}
	if rs := must(f.db.Rollouts(f.ctx, store.RolloutFilter{Target: api, Limit: 2}))(f.t); len(rs) != 2 || rs[0].ID != third || rs[1].ID != second {
		f.t.Errorf("the newest two rollouts: %+v", rs)
	}
}

// testNodes: heartbeats are upserts, listed by name.
func (s *suite) testNodes(t *testing.T) {
	f := s.fleet(t)
	f.beat("web-2", "web-1")
	f.clk.Advance(time.Minute)
	check(t, f.db.Heartbeat(f.ctx, store.Node{Name: "web-1", Hostname: "h", PID: 9, Version: "v2"}))
	ns := must(f.db.Nodes(f.ctx))(t)
	if len(ns) != 2 || ns[0].Name != "web-1" || ns[0].PID != 9 || ns[0].Version != "v2" ||
		!ns[0].HeartbeatAt.Equal(epoch.Add(time.Minute)) || !ns[1].HeartbeatAt.Before(ns[0].HeartbeatAt) {
		t.Errorf("nodes %+v", ns)
	}
}

// The pass that queues the next batch returns its steps' deadlines: the
// node that ran the last step may be the only one looking, and the next
// host's node may die before it claims.
func rolloutQueuedBatchHasDeadlines(f *fleet) {
	f.beat("a", "b")
	id := f.push(2, store.RolloutPolicy{Hosts: []string{"a", "b"}, NodeTimeout: 30 * time.Second})
	f.run("a", store.StatusSucceeded)
	res := f.advance()
	f.expect(id, store.RolloutRunning, map[string]store.HostStatus{"a": hs, "b": hd})
	if res.Next.IsZero() {
		f.t.Errorf("the pass that queued b's step returned no deadline (Next zero): its node would sleep until woken")
	}
	// b's node dies before claiming: a pass 31 s later fails it.
	f.clk.Advance(31 * time.Second)
	f.beat("a")
	f.advance()
	f.expect(id, store.RolloutFailed, map[string]store.HostStatus{"b": store.HostLost})
}

// A host deployed by hand to another commit during a pause: every step
// succeeded, but the rollout is not reported succeeded.
func rolloutHandDeployDuringPause(f *fleet) {
	f.beat("a", "b")
	id := f.push(2, store.RolloutPolicy{Hosts: []string{"a", "b"}, Pause: 10 * time.Second})
	f.run("a", store.StatusSucceeded)
	f.advance()
	deploy(f.t, f.db, f.clk, hostOf("a"), 1, time.Second, store.StatusSucceeded)
	f.clk.Advance(10 * time.Second)
	f.beat("a", "b")
	f.advance()
	f.run("b", store.StatusSucceeded)
	f.advance()
	r := f.expect(id, store.RolloutFailed, map[string]store.HostStatus{"a": hs, "b": hs})
	if !strings.Contains(r.Error, "a runs "+sha(1)[:12]) {
		f.t.Errorf("error %q, want it to name host a and what it runs", r.Error)
	}
}
