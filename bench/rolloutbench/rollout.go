package main

import (
	"fmt"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// rollout rolls a new commit out across every host in batches of batch
// (the environment's policy otherwise: the migration host alone first),
// queued as a push to the environment queues it, and waits for its end.
// With c set, it returns the figures of the rollout: its time from
// queueing to its recorded end, its steps' own time (per batch the
// longest step's duration_ms, summed), and what coordinating it took.
func (w *world) rollout(policy store.RolloutPolicy, batch int, c *counters) (rolloutFigures, error) {
	var f rolloutFigures
	sha, err := w.commit()
	if err != nil {
		return f, err
	}
	policy.Batch = batch
	var notes0, adv0, claims0 int64
	var cpu0 cpuTimes
	if c != nil {
		notes0, adv0, claims0 = w.watcher.notifications.Load(), c.advances.Load(), c.claims.Load()
		cpu0 = cpuNow(w.watcher.postmaster)
	}
	q, err := w.db.Enqueue(w.ctx, store.QueueRequest{Target: store.Target{Fraise: "hello", Environment: "production"},
		SHA: sha, Ref: "refs/heads/main", Trigger: store.TriggerCLI, Actor: "rolloutbench", Rollout: &policy})
	if err != nil {
		return f, err
	}
	if q.RolloutID == 0 {
		return f, fmt.Errorf("queued %+v: no rollout", q)
	}
	ro, err := w.waitRollout(q.RolloutID, 3*time.Minute)
	if err != nil {
		return f, err
	}
	if c != nil {
		f.notifications = w.watcher.notifications.Load() - notes0
		f.advances, f.claims = c.advances.Load()-adv0, c.claims.Load()-claims0
		f.cpu = cpuNow(w.watcher.postmaster).sub(cpu0)
	}
	if ro.Status != store.RolloutSucceeded {
		return f, fmt.Errorf("rollout %d (batch %d) ended %s: %s", ro.ID, batch, ro.Status, ro.Error)
	}
	f.wall = ro.FinishedAt.Sub(ro.CreatedAt)
	longest := map[int]time.Duration{}
	for _, h := range ro.Hosts {
		if h.DeploymentID == nil {
			return f, fmt.Errorf("rollout %d: host %s has no deployment", ro.ID, h.Host)
		}
		d, err := w.db.Deployment(w.ctx, *h.DeploymentID)
		if err != nil {
			return f, err
		}
		longest[h.Batch] = max(longest[h.Batch], time.Duration(d.DurationMS)*time.Millisecond)
	}
	for _, d := range longest {
		f.steps += d
	}
	f.batches = len(longest)
	return f, nil
}

// waitRollout waits for rollout id to end, reading its status (one row by
// its key) every 10 ms, and returns it whole.
func (w *world) waitRollout(id int64, limit time.Duration) (store.Rollout, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		var status string
		err := w.db.SQL().QueryRowContext(w.ctx, "SELECT status FROM tb_rollout WHERE id = $1", id).Scan(&status)
		if err != nil {
			return store.Rollout{}, err
		}
		switch store.RolloutStatus(status) {
		case store.RolloutQueued, store.RolloutRunning, store.RolloutRollingBack:
			time.Sleep(10 * time.Millisecond)
			continue
		}
		return w.db.Rollout(w.ctx, id)
	}
	return store.Rollout{}, fmt.Errorf("rollout %d did not end within %s", id, limit)
}
