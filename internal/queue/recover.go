package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
)

// recoverInterrupted finds the deployments this node was running when its
// process died (tb_deployment.host is the node's name, so several nodes on
// one machine recover only their own): the engine recovers their locks and
// records them interrupted, and each target is queued again once at its
// commit, unless it was a rollout's step.
func (r *Runner) recoverInterrupted(ctx context.Context) error {
	running, err := r.Store.RunningDeployments(ctx)
	if err != nil {
		return err
	}
	e := &deploy.Engine{Store: r.Store, Progress: &lineLogger{log: r.Log}, Owner: r.Owner}
	seen := map[store.Target]bool{}
	for _, d := range running {
		if d.Status != store.StatusRunning || d.Host != r.Owner.Host || seen[d.Target] {
			continue
		}
		seen[d.Target] = true
		interrupted, err := e.Recover(ctx, d.Target)
		if errors.Is(err, deploy.ErrLocked) {
			continue // a live process holds it: not ours to recover
		}
		if err != nil {
			return err
		}
		for _, id := range interrupted {
			d, err := r.Store.Deployment(ctx, id)
			if err != nil {
				return err
			}
			log := r.Log.With("fraise", d.Fraise, "environment", d.Environment, "deployment", d.ID)
			log.Warn("deployment was interrupted when fraisier died")
			r.reportEnded(d)
			switch {
			case d.NewSHA == "":
				log.Warn("not queued again: its commit was never resolved")
			case d.Trigger == store.TriggerRollout || d.RolloutID != nil:
				// One host's step of a rollout: the rollout decides what
				// follows (this host failed, the others roll back).
				log.Warn("not queued again: a rollout's step; its rollout decides what follows", "rollout", rolloutOf(d))
			case d.Trigger == store.TriggerRequeue:
				// Queued again once already: a commit that kills fraisier
				// must not do so forever.
				log.Warn("not queued again: it was itself a retry of an interrupted deployment")
			case d.Trigger == store.TriggerWebhook || d.Trigger == store.TriggerFollow:
				r.requeue(log, d, fmt.Sprintf("retry of interrupted deployment %d", d.ID))
			}
		}
	}
	return nil
}

// requeue queues d's commit again unless a newer request already waits.
func (r *Runner) requeue(log *slog.Logger, d store.Deployment, actor string) {
	ctx := context.WithoutCancel(r.workCtx)
	q, ok, err := r.Store.EnqueueIfIdle(ctx, store.QueueRequest{
		Target: d.Target, SHA: d.NewSHA, Ref: store.QueuedRef(d.RequestedRef), Trigger: store.TriggerRequeue, Actor: actor, WebhookID: d.WebhookID,
	})
	switch {
	case err != nil:
		log.Error("queue the commit again", "sha", d.NewSHA, "err", err)
	case ok:
		log.Info("queued again", "sha", d.NewSHA, "as", q.DeploymentID)
	default:
		log.Info("not queued again: a newer request waits")
	}
}

// recoverStalled looks, at most once per Poll for each, at the targets
// whose running deployment queued requests wait for and that no worker of
// this runner runs: a holder that died (on this host, or on another node
// whose lock expired) is recovered as the engine's next deployment of the
// target would, its deployment recorded interrupted, and the next
// dispatch decides what waited for it instead of letting it wait until
// that target is deployed again.
func (r *Runner) recoverStalled(ctx context.Context, waiting map[int64][]store.Wait) {
	now := time.Now()
	var stalled []store.Target
	r.mu.Lock()
	for _, ws := range waiting {
		for _, w := range ws {
			if w.Status != store.StatusRunning || r.active[w.Target] || now.Before(r.probed[w.Target]) {
				continue
			}
			r.probed[w.Target] = now.Add(r.Poll)
			stalled = append(stalled, w.Target)
		}
	}
	r.mu.Unlock()
	e := &deploy.Engine{Store: r.Store, Progress: &lineLogger{log: r.Log}, Owner: r.Owner}
	for _, t := range stalled {
		interrupted, err := e.Recover(ctx, t)
		switch {
		case errors.Is(err, deploy.ErrLocked):
			// A live holder: the deployment runs, and is waited for.
		case err != nil:
			r.Log.Error("recover a deployment others wait for", "fraise", t.Fraise, "environment", t.Environment, "err", err)
		case len(interrupted) > 0:
			r.Log.Warn("a deployment others wait for was interrupted: its holder died",
				"fraise", t.Fraise, "environment", t.Environment, "deployments", interrupted)
			r.Wake()
		}
	}
}

// rolloutOf is d's rollout id for the log, or 0.
func rolloutOf(d store.Deployment) int64 {
	if d.RolloutID == nil {
		return 0
	}
	return *d.RolloutID
}
