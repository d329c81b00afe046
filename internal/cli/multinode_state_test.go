package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// What the multi-node test reads of the shared state: rollouts and
// deployments from the store directly (exact, and cheap to poll every
// 100 ms), nodes and a rollout's record also through the CLI's --json, as
// an operator reads them.

// production is the base environment every host deploys.
var production = store.Target{Fraise: "hello", Environment: "production"}

// hostTarget is host's per-host target (production@web-1).
func hostTarget(host string) store.Target {
	return store.Target{Fraise: "hello", Environment: "production@" + host}
}

// terminal reports whether a rollout in status s has ended.
func terminal(s store.RolloutStatus) bool {
	switch s {
	case store.RolloutSucceeded, store.RolloutFailed, store.RolloutRolledBack, store.RolloutRollbackFailed, store.RolloutSuperseded:
		return true
	}
	return false
}

// active reports whether a rollout in status s is deploying or undoing.
func active(s store.RolloutStatus) bool {
	return s == store.RolloutRunning || s == store.RolloutRollingBack
}

// waitRollout polls rollout id every 100 ms until cond holds and returns
// it; when d passes first it ends the test with the last state read.
func (f *multiNode) waitRollout(id int64, what string, d time.Duration, cond func(store.Rollout) bool) store.Rollout {
	f.t.Helper()
	var r store.Rollout
	var err error
	if testenv.Eventually(d, 100*time.Millisecond, func() bool {
		f.checkRunning()
		r, err = f.db.Rollout(context.Background(), id)
		return err == nil && cond(r)
	}) {
		return r
	}
	f.t.Fatalf("rollout %d: timed out after %s waiting for %s; last read: %v\n%s", id, d, what, err, show(r))
	return r
}

// waitTerminal waits for rollout id to end.
func (f *multiNode) waitTerminal(id int64, d time.Duration) store.Rollout {
	f.t.Helper()
	return f.waitRollout(id, "its end", d, func(r store.Rollout) bool { return terminal(r.Status) })
}

// rollouts lists production's rollouts, oldest first.
func (f *multiNode) rollouts() []store.Rollout {
	f.t.Helper()
	rs, err := f.db.Rollouts(context.Background(), store.RolloutFilter{Target: production, Limit: 1000})
	if err != nil {
		f.t.Fatalf("rollouts: %v", err)
	}
	slices.SortFunc(rs, func(a, b store.Rollout) int { return int(a.ID - b.ID) })
	return rs
}

// show is a rollout as JSON, for a failure message.
func show(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// byHost is a rollout's hosts by name.
func byHost(r store.Rollout) map[string]store.RolloutHost {
	m := map[string]store.RolloutHost{}
	for _, h := range r.Hosts {
		m[h.Host] = h
	}
	return m
}

// checkHosts checks each host's status in rollout r.
func (f *multiNode) checkHosts(r store.Rollout, want map[string][]store.HostStatus) {
	f.t.Helper()
	hosts := byHost(r)
	for name, statuses := range want {
		if h, ok := hosts[name]; !ok || !slices.Contains(statuses, h.Status) {
			f.t.Errorf("rollout %d: host %s %q, want one of %v\n%s", r.ID, name, h.Status, statuses, show(r))
		}
	}
}

// deployment reads one deployment.
func (f *multiNode) deployment(id int64) store.Deployment {
	f.t.Helper()
	d, err := f.db.Deployment(context.Background(), id)
	if err != nil {
		f.t.Fatalf("deployment %d: %v", id, err)
	}
	return d
}

// deploymentsOf lists host's deployments of commit sha (any, when "").
func (f *multiNode) deploymentsOf(host, sha string) []store.Deployment {
	f.t.Helper()
	t := hostTarget(host)
	ds, err := f.db.Deployments(context.Background(), store.DeploymentFilter{Fraise: t.Fraise, Environment: t.Environment, Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []store.Deployment
	for _, d := range ds {
		if sha == "" || d.NewSHA == sha {
			out = append(out, d)
		}
	}
	return out
}

// state is host's record: its current commit and release.
func (f *multiNode) state(host string) store.FraiseState {
	f.t.Helper()
	t := hostTarget(host)
	st, err := f.db.FraiseStates(context.Background(), t.Fraise, t.Environment)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(st) != 1 {
		f.t.Fatalf("%s: %d state rows, want 1: %+v", t, len(st), st)
	}
	return st[0]
}

// readlink is the release host's current points at.
func (f *multiNode) readlink(host string) string {
	f.t.Helper()
	target, err := os.Readlink(filepath.Join(f.host(host).dir, "app", "current"))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return filepath.Base(target)
}

// serving is what host's service answers on / now.
func (f *multiNode) serving(host string) string { return testenv.AppAnswer(f.host(host).port) }

// checkOn checks that every host is truthfully on version: its service
// answers it, its record names its commit, and the record's release is
// what current points at.
func (f *multiNode) checkOn(version string) {
	f.t.Helper()
	for _, h := range mnHostNames {
		st := f.state(h)
		if got := f.serving(h); got != version {
			f.t.Errorf("%s answers %q, want %s", h, got, version)
		}
		if st.CurrentSHA != f.shas[version] {
			f.t.Errorf("%s: the record's current commit is %.8s, want %s's %.8s", h, st.CurrentSHA, version, f.shas[version])
		}
		if cur := f.readlink(h); cur == "" || cur != st.CurrentRelease {
			f.t.Errorf("%s: the record names release %q, current points at %q", h, st.CurrentRelease, cur)
		}
	}
}

// checkMigratedOnce checks that version migrated exactly once, on web-1.
func (f *multiNode) checkMigratedOnce(version string) {
	f.t.Helper()
	if runs := f.migrations(version); len(runs) != 1 || runs["web-1"] != 1 {
		f.t.Errorf("migrations up to %s by host: %v, want once on web-1\nmigrations.log:\n%s", version, runs, f.migrationsLog())
	}
}

// mnNode is one row of fraisier nodes --json.
type mnNode struct {
	Name        string    `json:"name"`
	Alive       bool      `json:"alive"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
}

// nodes is fraisier nodes --json: whether each node is alive.
func (f *multiNode) nodes() map[string]bool {
	f.t.Helper()
	var rows []mnNode
	f.cliJSON(&rows, "nodes", "nodes", "--json")
	alive := map[string]bool{}
	for _, n := range rows {
		alive[n.Name] = n.Alive
	}
	return alive
}

// waitNodes polls fraisier nodes --json every 100 ms until it says
// exactly want (name -> alive), or ends the test after d.
func (f *multiNode) waitNodes(what string, d time.Duration, want map[string]bool) {
	f.t.Helper()
	var got map[string]bool
	if !testenv.Eventually(d, 100*time.Millisecond, func() bool {
		f.checkRunning()
		got = f.nodes()
		return fmt.Sprint(got) == fmt.Sprint(want)
	}) {
		f.t.Fatalf("timed out after %s waiting for %s: fraisier nodes says %v, want %v", d, what, got, want)
	}
}

// checkCLIRollout checks that fraisier rollout show ID --json says what
// the store says of the rollout: its status and each host's.
func (f *multiNode) checkCLIRollout(r store.Rollout) {
	f.t.Helper()
	var got store.Rollout
	f.cliJSON(&got, "rollout", "rollout", "show", fmt.Sprint(r.ID), "--json")
	hosts := func(r store.Rollout) string {
		var s []string
		for _, h := range r.Hosts {
			s = append(s, fmt.Sprintf("%s:%s", h.Host, h.Status))
		}
		return strings.Join(s, " ")
	}
	if got.ID != r.ID || got.Status != r.Status || got.SHA != r.SHA || hosts(got) != hosts(r) {
		f.t.Errorf("fraisier rollout show %d --json:\n%s\nthe store:\n%s", r.ID, show(got), show(r))
	}
}

// checkCLIRollouts checks that fraisier rollouts hello production --json
// lists each of rs with the status the store gives it.
func (f *multiNode) checkCLIRollouts(rs []store.Rollout) {
	f.t.Helper()
	var listed []store.Rollout
	f.cliJSON(&listed, "rollouts", "rollouts", "hello", "production", "--json")
	got := map[int64]store.RolloutStatus{}
	for _, r := range listed {
		got[r.ID] = r.Status
	}
	for _, r := range rs {
		if got[r.ID] != r.Status {
			f.t.Errorf("fraisier rollouts hello production --json: rollout %d %q, the store says %q", r.ID, got[r.ID], r.Status)
		}
	}
}

// waitFor polls cond every 100 ms, ending the test if a node it did not
// stop has exited, or if d passes first.
func (f *multiNode) waitFor(what string, d time.Duration, cond func() bool) {
	f.t.Helper()
	if !testenv.Eventually(d, 100*time.Millisecond, func() bool {
		f.checkRunning()
		return cond()
	}) {
		rs, err := f.db.Rollouts(context.Background(), store.RolloutFilter{Limit: 5})
		f.t.Fatalf("timed out after %s waiting for %s; the newest rollouts (%v):\n%s", d, what, err, show(rs))
	}
}
