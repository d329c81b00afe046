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
	w := newRaceWatch(f)
	f.hold("web-1")
	shaA, _ := f.commit()
	shaB, _ := f.commit()
	f.sendBoth([2][2]string{{f.shas[old], shaA}, {shaA, shaB}})
	var held store.Rollout
	f.waitFor("a rollout of the racing pushes to run, held in web-1's install", 60*time.Second, func() bool {
		for _, r := range w.read() {
			if active(r.Status) && f.installStarted("web-1", f.versionOf(r.SHA)) {
				held = r
				return true
			}
		}
		return false
	})
	t.Logf("running while the third push arrives: rollout %d of %s", held.ID, f.versionOf(held.SHA))

	w.noteWaiting()
	shaC, _ := f.commit()
	idC := f.push(shaB, shaC)
	w.noteWaiting()
	if _, ok := w.waited[idC]; !ok {
		t.Fatalf("the third push's rollout %d does not wait behind the held rollout %d:\n%s", idC, held.ID, show(w.read()))
	}
	shaD, vD := f.commit()
	idD := f.push(shaC, shaD)
	w.read()
	f.release("web-1")
	last := w.untilAllEnded(120 * time.Second)
	for _, r := range last {
		t.Logf("rollout %d of %s: %s", r.ID, f.versionOf(r.SHA), r.Status)
	}
	if w.maxActive > 1 {
		t.Errorf("%d rollouts of production ran at once, want one at a time", w.maxActive)
	}
	for _, r := range last {
		// A running rollout is never undone by a newer push: its first
		// host found its commit at the tip, the others do not ask again.
		if r.ID == held.ID && r.Status != store.RolloutSucceeded {
			t.Errorf("the held rollout %d of %s ended %s, want succeeded: a newer push must wait for it\n%s", r.ID, f.versionOf(r.SHA), r.Status, show(r))
		}
	}
	checkOneAtATime(t, last)
	f.checkCLIRollouts(last)
	checkWaitersSuperseded(t, f, last, w.waited, idD, shaD)

	r := f.rollout(idD)
	if r.Status != store.RolloutSucceeded || r.SHA != shaD {
		t.Fatalf("the newest push's rollout %d: %s at %.8s, want succeeded at %.8s\n%s", idD, r.Status, r.SHA, shaD, show(r))
	}
	f.checkOn(vD)
	f.checkMigratedOnce(vD)
	f.live = vD
}

// raceWatch follows the rollouts a step makes (those not seen before it),
// counting how many run at once.
type raceWatch struct {
	f         *multiNode
	seen      map[int64]bool
	maxActive int
	// waited: the rollouts that waited when a newer push arrived, and the
	// commit each waited for. While the held rollout runs nothing else can
	// start, so each must give way to that push.
	waited map[int64]string
}

func newRaceWatch(f *multiNode) *raceWatch {
	w := &raceWatch{f: f, seen: map[int64]bool{}, waited: map[int64]string{}}
	for _, r := range f.rollouts() {
		w.seen[r.ID] = true
	}
	return w
}

// read lists the step's rollouts, oldest first.
func (w *raceWatch) read() []store.Rollout {
	var rs []store.Rollout
	n := 0
	for _, r := range w.f.rollouts() {
		if w.seen[r.ID] {
			continue
		}
		rs = append(rs, r)
		if active(r.Status) {
			n++
		}
	}
	w.maxActive = max(w.maxActive, n)
	return rs
}

// noteWaiting records the rollouts waiting now, before a newer push.
func (w *raceWatch) noteWaiting() {
	for _, r := range w.read() {
		if _, ok := w.waited[r.ID]; !ok && r.Status == store.RolloutQueued {
			w.waited[r.ID] = r.SHA
		}
	}
}

// untilAllEnded polls every 100 ms until every rollout of the step has
// ended, and returns them.
func (w *raceWatch) untilAllEnded(d time.Duration) []store.Rollout {
	w.f.t.Helper()
	var last []store.Rollout
	if !testenv.Eventually(d, 100*time.Millisecond, func() bool {
		w.f.checkRunning()
		last = w.read()
		for _, r := range last {
			if !terminal(r.Status) {
				return false
			}
		}
		return len(last) > 0
	}) {
		w.f.t.Fatalf("the racing pushes' rollouts did not all end within %s:\n%s", d, show(last))
	}
	return last
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
