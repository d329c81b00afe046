package cli_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// mnRacingPushes: two pushes of different commits sent at once, then,
// while a rollout of one of them runs (held in web-1's install), a third
// and a fourth: the third waits behind the running rollout and the fourth
// arrives while it waits. One rollout runs at a time; a rollout that
// waited never starts for its commit, a newer push superseding it (or
// taking it over in place for the newer commit); the fourth commit ends
// on every host, migrated once.
func mnRacingPushes(t *testing.T, f *multiNode) {
	old := f.live
	seen := map[int64]bool{}
	for _, r := range f.rollouts() {
		seen[r.ID] = true
	}
	f.hold("web-1")
	shaA, _ := f.commit()
	shaB, _ := f.commit()
	f.sendBoth([2][2]string{{f.shas[old], shaA}, {shaA, shaB}})

	maxActive, waited := 0, map[int64]string{}
	// watch reads this step's rollouts, counting those that run at once.
	watch := func() []store.Rollout {
		var rs []store.Rollout
		n := 0
		for _, r := range f.rollouts() {
			if seen[r.ID] {
				continue
			}
			rs = append(rs, r)
			if active(r.Status) {
				n++
			}
		}
		maxActive = max(maxActive, n)
		return rs
	}
	var held store.Rollout
	f.waitFor("a rollout of the racing pushes to run, held in web-1's install", 60*time.Second, func() bool {
		for _, r := range watch() {
			if active(r.Status) && f.installStarted("web-1", f.versionOf(r.SHA)) {
				held = r
				return true
			}
		}
		return false
	})
	t.Logf("running while the third push arrives: rollout %d of %s", held.ID, f.versionOf(held.SHA))

	// While the held rollout runs nothing else can start: a rollout that
	// waits when a newer push arrives must give way to it.
	wait := func() {
		for _, r := range watch() {
			if _, ok := waited[r.ID]; !ok && r.Status == store.RolloutQueued {
				waited[r.ID] = r.SHA
			}
		}
	}
	wait()
	shaC, _ := f.commit()
	idC := f.push(shaB, shaC)
	wait()
	if _, ok := waited[idC]; !ok {
		t.Fatalf("the third push's rollout %d does not wait behind the held rollout %d:\n%s", idC, held.ID, show(watch()))
	}
	shaD, vD := f.commit()
	idD := f.push(shaC, shaD)
	watch()
	f.release("web-1")
	var last []store.Rollout
	if !testenv.Eventually(120*time.Second, 100*time.Millisecond, func() bool {
		f.checkRunning()
		last = watch()
		for _, r := range last {
			if !terminal(r.Status) {
				return false
			}
		}
		return len(last) > 0
	}) {
		t.Fatalf("the racing pushes' rollouts did not all end within 120s:\n%s", show(last))
	}
	for _, r := range last {
		t.Logf("rollout %d of %s: %s", r.ID, f.versionOf(r.SHA), r.Status)
	}
	if maxActive > 1 {
		t.Errorf("%d rollouts of production ran at once, want one at a time", maxActive)
	}
	checkOneAtATime(t, last)
	f.checkCLIRollouts(last)
	checkWaitersSuperseded(t, f, last, waited, idD, shaD)

	r := f.rollout(idD)
	if r.Status != store.RolloutSucceeded || r.SHA != shaD {
		t.Fatalf("the newest push's rollout %d: %s at %.8s, want succeeded at %.8s\n%s", idD, r.Status, r.SHA, shaD, show(r))
	}
	f.checkOn(vD)
	f.checkMigratedOnce(vD)
	f.live = vD
}

// checkOneAtATime checks, from the record, that no two rollouts that
// started overlapped.
func checkOneAtATime(t *testing.T, rs []store.Rollout) {
	t.Helper()
	var ran []store.Rollout
	for _, r := range rs {
		if r.StartedAt != nil {
			ran = append(ran, r)
		}
	}
	slices.SortFunc(ran, func(a, b store.Rollout) int { return a.StartedAt.Compare(*b.StartedAt) })
	for i := 1; i < len(ran); i++ {
		prev, next := ran[i-1], ran[i]
		if prev.FinishedAt == nil || next.StartedAt.Before(*prev.FinishedAt) {
			t.Errorf("rollout %d started at %s while rollout %d ran (finished %v)", next.ID, next.StartedAt.Format(time.RFC3339Nano), prev.ID, prev.FinishedAt)
		}
	}
}

// checkWaitersSuperseded checks that every rollout waiting when a newer
// push arrived (waited: its id and the commit it waited for) never
// started for its commit: it ended superseded by a newer rollout, or was
// taken over in place by the newest push (idD, now at shaD). A rollout
// superseded without being seen waiting (the race decided at intake)
// must name its newer rollout too.
func checkWaitersSuperseded(t *testing.T, f *multiNode, rs []store.Rollout, waited map[int64]string, idD int64, shaD string) {
	t.Helper()
	var story []string
	for _, r := range rs {
		sha, didWait := waited[r.ID]
		switch {
		case r.Status == store.RolloutSuperseded:
			if r.SupersededBy == nil || *r.SupersededBy <= r.ID || r.StartedAt != nil {
				t.Errorf("rollout %d superseded by %v (started %v): want by a newer rollout, before it started", r.ID, r.SupersededBy, r.StartedAt)
				continue
			}
			story = append(story, fmt.Sprintf("%d (%s) superseded by %d", r.ID, f.versionOf(r.SHA), *r.SupersededBy))
		case didWait && r.ID == idD && r.SHA == shaD && sha != shaD:
			story = append(story, fmt.Sprintf("%d (%s) taken over for %s", r.ID, f.versionOf(sha), f.versionOf(shaD)))
		case didWait && sha != r.SHA:
			t.Errorf("rollout %d waited for %s and now deploys %s, %s", r.ID, f.versionOf(sha), f.versionOf(r.SHA), r.Status)
		case didWait && r.ID != idD:
			t.Errorf("rollout %d waited for %s and was not superseded: %s", r.ID, f.versionOf(sha), r.Status)
		}
	}
	t.Logf("waiting rollouts: %s", strings.Join(story, ", "))
}

// versionOf is the version commit sha carries.
func (f *multiNode) versionOf(sha string) string {
	for v, s := range f.shas {
		if s == sha {
			return v
		}
	}
	return sha
}
