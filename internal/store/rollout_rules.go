package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// The rules a rollout moves by (AdvanceRollouts), in the order run
// applies them:
//
//  1. collect: a host step that ended decides its host: succeeded (or
//     skipped because the host already ran the commit) -> succeeded;
//     interrupted (its node died) -> lost; rollback_failed (its own
//     compensation failed) -> rollback_failed; anything else -> failed,
//     the step's own compensation having run. A rollback step that ended
//     decides rolled_back, lost or rollback_failed likewise.
//  2. checkLiveness: a host whose step waits on a node without a recent
//     heartbeat is lost (a step still queued is ended so that the node,
//     back, never runs it; a running one is left to its node's crash
//     recovery); a step no node claimed within the claim timeout fails.
//  3. stop: once a host failed or was lost the rollout rolls back:
//     pending hosts and steps not claimed yet are skipped, and each host
//     that switched gets a rollback step to the commit it ran before,
//     the migration host last (rollBack).
//  4. forward: when every host of the current batch succeeded, the
//     rollout ends succeeded, or waits (canary window or resume, pause),
//     or queues the next batch.
//  5. A rollout that ended starts the one queued behind it (startNext).

// collect applies rule 1.
func (a *advance) collect() {
	for i := range a.r.Hosts {
		h := &a.r.Hosts[i]
		id := h.activeStep()
		if id == nil {
			continue
		}
		s, ok := a.steps[*id]
		switch {
		case !ok:
			a.setHost(i, stepGone(h.Status), fmt.Sprintf("deployment %d is gone from the history", *id))
		case !terminal(s.status):
		case h.Status == HostDeploying:
			if s.oldSHA != "" {
				h.OldSHA = s.oldSHA
			}
			a.setHost(i, deployedHost(s, a.r.SHA), stepError(*id, s))
		default:
			a.setHost(i, rolledBackHost(s), stepError(*id, s))
		}
	}
}

// stepGone is what becomes of a host whose step's record vanished.
func stepGone(h HostStatus) HostStatus {
	if h == HostRollingBack {
		return HostRollbackFailed
	}
	return HostFailed
}

// deployedHost is the host's status once its step ended as s.
func deployedHost(s stepRow, sha string) HostStatus {
	switch {
	case s.status == StatusSucceeded:
		return HostSucceeded
	case s.status == StatusSkipped && s.oldSHA == sha:
		// Already current and healthy: the host runs the commit.
		return HostSucceeded
	case s.status == StatusInterrupted:
		return HostLost
	case s.status == StatusRollbackFailed:
		return HostRollbackFailed
	}
	return HostFailed
}

// rolledBackHost is the host's status once its rollback step ended as s.
func rolledBackHost(s stepRow) HostStatus {
	switch s.status {
	case StatusSucceeded, StatusSkipped:
		return HostRolledBack
	case StatusInterrupted:
		return HostLost
	}
	return HostRollbackFailed
}

// stepError is what the host records of its step's end: nothing for a
// success, else the status and the step's error.
func stepError(id int64, s stepRow) string {
	if s.status == StatusSucceeded || s.status == StatusSkipped && s.err == "" {
		return ""
	}
	why := fmt.Sprintf("deployment %d %s", id, s.status)
	if s.err != "" {
		why += ": " + s.err
	}
	return why
}

// checkLiveness applies rule 2.
func (a *advance) checkLiveness(ctx context.Context) error {
	p := a.r.Policy
	for i := range a.r.Hosts {
		h := &a.r.Hosts[i]
		id := h.activeStep()
		if id == nil {
			continue
		}
		s, ok := a.steps[*id]
		if !ok || terminal(s.status) {
			continue
		}
		if dead, why := a.nodeDead(h.Host); dead {
			if s.status == StatusQueued {
				if ended, err := a.endQueued(ctx, *id, why); err != nil || !ended {
					return err
				}
			}
			a.setHost(i, HostLost, why)
			continue
		}
		if s.status != StatusQueued || a.now.Before(laterOf(fromMS(s.started), a.liveSince).Add(p.ClaimTimeout)) {
			continue
		}
		why := fmt.Sprintf("no node claimed deployment %d within %s (node %s)", *id, p.ClaimTimeout, h.Host)
		ended, err := a.endQueued(ctx, *id, why)
		if err != nil {
			return err
		}
		if ended {
			a.setHost(i, stepGone(h.Status), why)
		}
	}
	return nil
}

// nodeDead reports whether node (a host's) has not heartbeaten within
// the node timeout, and says so; never before this node itself has been
// connected that long.
func (a *advance) nodeDead(node string) (bool, string) {
	timeout := a.r.Policy.NodeTimeout
	if a.now.Sub(a.liveSince) < timeout {
		return false, ""
	}
	hb, ok := a.nodes[node]
	if !ok {
		return true, fmt.Sprintf("node %s is not alive (it never sent a heartbeat)", node)
	}
	if age := a.now.Sub(hb); age >= timeout {
		return true, fmt.Sprintf("node %s is not alive (last heartbeat %s ago)", node, age.Round(time.Second))
	}
	return false, ""
}

// endQueued ends deployment id, skipped with why, if it is still queued
// (ended false when a node claimed it meanwhile: the next pass sees it
// run). Its target's row is locked first, as everywhere.
func (a *advance) endQueued(ctx context.Context, id int64, why string) (ended bool, err error) {
	var t Target
	var status Status
	if err := a.db.queryRowTx(ctx, a.tx, "SELECT fraise, environment FROM tb_deployment WHERE id = ?", id).
		Scan(&t.Fraise, &t.Environment); err != nil {
		return false, fmt.Errorf("read deployment %d: %w", id, err)
	}
	if err := a.db.lockTarget(ctx, a.tx, t); err != nil {
		return false, err
	}
	if err := a.db.queryRowTx(ctx, a.tx, "SELECT status FROM tb_deployment WHERE id = ?"+a.db.d.forUpdate, id).
		Scan(&status); err != nil {
		return false, fmt.Errorf("read deployment %d: %w", id, err)
	}
	if status != StatusQueued {
		return false, nil
	}
	if err := a.db.finishTx(ctx, a.tx, id, Finish{Status: StatusSkipped, Error: why}, ""); err != nil {
		return false, fmt.Errorf("end deployment %d: %w", id, err)
	}
	a.queued = true
	return true, nil
}

// settle applies rules 3 and 4 to the rollout as collected.
func (a *advance) settle(ctx context.Context) error {
	if a.r.Status == RolloutRunning {
		if why := a.failure(); why != "" {
			if err := a.stop(ctx, why); err != nil {
				return err
			}
		} else if err := a.forward(ctx); err != nil {
			return err
		}
	}
	if a.r.Status == RolloutRollingBack {
		return a.rollBack(ctx)
	}
	return nil
}

// failure names the first host that failed or was lost, "" if none.
func (a *advance) failure() string {
	for _, h := range a.r.Hosts {
		switch h.Status {
		case HostFailed, HostLost, HostRollbackFailed:
			return fmt.Sprintf("host %s %s: %s", h.Host, h.Status, h.Error)
		}
	}
	return ""
}

// stop applies rule 3's first half: the rollout rolls back, and nothing
// that has not started yet will.
func (a *advance) stop(ctx context.Context, why string) error {
	a.r.Status = RolloutRollingBack
	a.r.NextAt, a.r.WaitingResume = nil, false
	if a.r.Error == "" {
		a.r.Error = why
	}
	a.dirty = true
	a.change("", "stopped, rolling back: "+why)
	skip := fmt.Sprintf("rollout %d stopped before this host's step ran", a.r.ID)
	for i := range a.r.Hosts {
		h := &a.r.Hosts[i]
		switch {
		case h.Status == HostPending:
			a.setHost(i, HostSkipped, "")
		case h.Status == HostDeploying && h.DeploymentID != nil && a.steps[*h.DeploymentID].status == StatusQueued:
			ended, err := a.endQueued(ctx, *h.DeploymentID, skip)
			if err != nil {
				return err
			}
			if ended {
				a.setHost(i, HostSkipped, "")
			}
		}
	}
	return nil
}

// rollBack applies rule 3's second half: each host that switched gets a
// rollback step, the migration host (position 0) once no other host is
// left to return; when none is left, the rollout ends.
func (a *advance) rollBack(ctx context.Context) error {
	hosts := a.r.Hosts
	busy := false
	for i := len(hosts) - 1; i >= 0; i-- { // the migration host, first, last
		h := &hosts[i]
		if i == 0 && busy {
			break
		}
		switch {
		case h.Status == HostDeploying || h.Status == HostRollingBack:
			busy = true
		case h.Status != HostSucceeded:
		case h.OldSHA == "":
			if h.Error == "" {
				h.Error = "no earlier release to roll back to: it still runs " + short12(a.r.SHA)
				a.hostDirty[i] = true
				a.change(h.Host, h.Error)
			}
		case h.OldSHA == a.r.SHA:
			a.setHost(i, HostRolledBack, "it ran "+short12(a.r.SHA)+" before the rollout")
		default:
			id, _, err := a.db.queueStep(ctx, a.tx, &a.r, h.Host, TriggerRollback, h.OldSHA, a.now.UnixMilli(), &a.marks)
			if err != nil {
				return err
			}
			h.RollbackID = &id
			a.noteQueued(id)
			a.queued, busy = true, true
			a.setHost(i, HostRollingBack, "")
		}
	}
	if busy {
		return nil
	}
	return a.end(a.rolledBackStatus())
}

// rolledBackStatus is how a rollout that rolled back ends: rollback_failed
// when a rollback failed, failed when a host's state is unknown or could
// not be restored, else rolled_back.
func (a *advance) rolledBackStatus() RolloutStatus {
	status := RolloutRolledBack
	for _, h := range a.r.Hosts {
		switch h.Status {
		case HostRollbackFailed:
			return RolloutRollbackFailed
		case HostLost, HostSucceeded:
			status = RolloutFailed
		}
	}
	return status
}

// end ends the rollout in status.
func (a *advance) end(status RolloutStatus) error {
	a.r.Status = status
	t := a.now
	a.r.FinishedAt, a.r.NextAt, a.r.WaitingResume = &t, nil, false
	a.dirty = true
	a.change("", "rollout "+string(status))
	return nil
}

// forward applies rule 4.
func (a *advance) forward(ctx context.Context) error {
	cur, last := a.r.Batch, 0
	for _, h := range a.r.Hosts {
		last = max(last, h.Batch)
		if h.Batch == cur && h.Status != HostSucceeded {
			return nil
		}
	}
	if cur >= last {
		why, err := a.hostsOffCommit(ctx)
		if err != nil {
			return err
		}
		if why != "" {
			// Never reported succeeded while a host runs something else.
			a.r.Error = why
			return a.end(RolloutFailed)
		}
		return a.end(RolloutSucceeded)
	}
	p := a.r.Policy
	canary := cur == 0 && p.Canary && (p.CanaryManual || p.CanaryWait > 0)
	switch {
	case canary && !a.canaryChecked:
		return a.waitCanary(ctx)
	case !canary && p.Pause > 0 && a.r.NextAt == nil:
		a.waitUntil(a.now.Add(p.Pause), fmt.Sprintf("batch %d deployed: pausing %s", cur, p.Pause))
		return nil
	case !canary && p.Pause > 0 && a.now.Before(*a.r.NextAt):
		return nil
	}
	a.r.Batch, a.r.NextAt = cur+1, nil
	a.dirty = true
	return a.queueBatch(ctx, cur+1, a.now)
}

// waitUntil makes the rollout wait until t.
func (a *advance) waitUntil(t time.Time, what string) {
	a.r.NextAt = &t
	a.dirty = true
	a.change("", what+" (until "+t.UTC().Format(time.RFC3339)+")")
}

// waitCanary holds the rollout after its canary deployed: until resumed,
// or for the window, at whose end the canary's node checks its health
// again (RolloutVerified). No check in time, or no node to make it,
// stops the rollout.
func (a *advance) waitCanary(ctx context.Context) error {
	p, canary := a.r.Policy, a.r.Hosts[0].Host
	switch {
	case p.CanaryManual:
		if !a.r.WaitingResume {
			a.r.WaitingResume, a.dirty = true, true
			a.change(canary, "canary deployed: waiting for fraisier rollout resume "+fmt.Sprint(a.r.ID))
		}
	case a.r.NextAt == nil:
		a.waitUntil(a.now.Add(p.CanaryWait), fmt.Sprintf("canary deployed: its health is checked again after %s", p.CanaryWait))
	case a.now.Before(*a.r.NextAt):
	default:
		if dead, why := a.nodeDead(canary); dead {
			return a.stop(ctx, "canary "+canary+" not checked: "+why)
		}
		if !a.now.Before(a.r.NextAt.Add(p.ClaimTimeout)) {
			return a.stop(ctx, fmt.Sprintf("canary %s: its health was not checked within %s of the window's end", canary, p.ClaimTimeout))
		}
	}
	return nil
}

// canaryWaiting reports whether the rollout waits for its canary's
// health check.
func (a *advance) canaryWaiting() bool {
	p := a.r.Policy
	return a.r.Status == RolloutRunning && a.r.Batch == 0 && p.Canary && !p.CanaryManual && p.CanaryWait > 0 && !a.canaryChecked
}

// queueBatch queues the step of every pending host of batch b (rule 5).
func (a *advance) queueBatch(ctx context.Context, b int, now time.Time) error {
	var names []string
	for i := range a.r.Hosts {
		h := &a.r.Hosts[i]
		if h.Batch != b || h.Status != HostPending {
			continue
		}
		id, current, err := a.db.queueStep(ctx, a.tx, &a.r, h.Host, TriggerRollout, a.r.SHA, now.UnixMilli(), &a.marks)
		if err != nil {
			return err
		}
		t := now
		a.noteQueued(id)
		h.DeploymentID, h.OldSHA, h.StartedAt = &id, current, &t
		h.Status = HostDeploying
		a.hostDirty[i], a.queued = true, true
		names = append(names, h.Host)
	}
	a.change("", fmt.Sprintf("batch %d queued: %s", b, strings.Join(names, ", ")))
	return nil
}

// noteQueued records a step this pass queued, so that next() gives it its
// claim and liveness deadlines.
func (a *advance) noteQueued(id int64) {
	if a.steps == nil {
		a.steps = make(map[int64]stepRow)
	}
	a.steps[id] = stepRow{status: StatusQueued, started: a.now.UnixMilli()}
}

// hostsOffCommit says which hosts run another commit than the rollout's
// now that every step succeeded ("" when none): a deploy or rollback by
// hand of one host during a pause or canary window.
func (a *advance) hostsOffCommit(ctx context.Context) (string, error) {
	var off []string
	for _, h := range a.r.Hosts {
		t := hostTarget(a.r.Target, h.Host)
		var current string
		err := a.db.queryRowTx(ctx, a.tx, "SELECT current_sha FROM tb_fraise_state WHERE fraise = ? AND environment = ?",
			t.Fraise, t.Environment).Scan(&current)
		if err != nil && !notFound(err) {
			return "", fmt.Errorf("read state of %s: %w", t, err)
		}
		switch {
		case current == "":
			off = append(off, h.Host+" runs nothing recorded")
		case current != a.r.SHA:
			off = append(off, fmt.Sprintf("%s runs %s", h.Host, short12(current)))
		}
	}
	if len(off) == 0 {
		return "", nil
	}
	return "every step succeeded, but " + strings.Join(off, ", ") + ", not " + short12(a.r.SHA) +
		" (deployed or rolled back by hand during the rollout)", nil
}
