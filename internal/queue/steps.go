package queue

import (
	"context"
	"fmt"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
)

// run runs one queued request through the engine: a rollback (queued by
// the deploy API, or one host's rollback in a rollout that stopped), or a
// deployment (a push, or one host's step of a rollout).
func (r *Runner) run(ctx context.Context, e *deploy.Engine, env *config.Environment, d store.Deployment) (deploy.Result, error) {
	noMigrate, why, err := r.stepMigrates(ctx, d)
	if err != nil {
		return deploy.Result{}, err
	}
	var tipBy string
	if noMigrate && d.Trigger == store.TriggerRollout {
		// The migration host deploys first and alone; its step checked
		// that the commit was its ref's tip.
		tipBy = fmt.Sprintf("rollout %d's first host", *d.RolloutID)
	}
	if d.Trigger == store.TriggerRollback {
		to := store.QueuedRef(d.RequestedRef)
		if to == "" && d.RolloutID != nil {
			// A rollout's rollback returns the host to the commit it ran.
			to = d.NewSHA
		}
		return e.Rollback(ctx, r.Collab, deploy.RollbackRequest{Env: env, To: to, Actor: d.Actor, Queued: d.ID, NoMigrate: noMigrate})
	}
	return e.Deploy(ctx, r.Collab, deploy.Request{
		Env: env, Ref: d.NewSHA, Trigger: d.Trigger, Actor: d.Actor, WebhookID: d.WebhookID, Queued: d.ID,
		NoMigrate: noMigrate, NoMigrateWhy: why, TipVerifiedBy: tipBy,
	})
}

// stepMigrates decides whether one host's step of a rollout leaves the
// database alone: migrations run once per rollout, on its migration host,
// which also deploys first and rolls back last; every other host deploys
// and rolls back its code only. A request of no rollout migrates as
// always.
func (r *Runner) stepMigrates(ctx context.Context, d store.Deployment) (noMigrate bool, why string, err error) {
	if d.RolloutID == nil {
		return false, "", nil
	}
	ro, err := r.Store.Rollout(ctx, *d.RolloutID)
	if err != nil {
		return false, "", fmt.Errorf("read rollout %d of this step: %w", *d.RolloutID, err)
	}
	if stepHost(d) == ro.Policy.MigrateHost {
		return false, "", nil
	}
	return true, "migrations run once per rollout, on " + ro.Policy.MigrateHost, nil
}

// stepHost is the host a rollout's step runs on: the node that must claim
// it, which is the host's name, else the host its target names.
func stepHost(d store.Deployment) string {
	if d.Node != "" {
		return d.Node
	}
	_, host := splitHost(d.Environment)
	return host
}
