package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// ErrNotReady is returned (wrapped, naming what it waits for) when
// Request.Queued waits for a deployment that the same push queued and
// that has not deployed yet: it stays queued, for the queue to run once
// that one has deployed, or to end skipped if it does not.
var ErrNotReady = store.ErrNotReady

// followers are the environments that run env's code (shares_code_with):
// once env's current release changes, each verifies its scripts again and
// runs its run_after_deploy there, as a deployment of its own. Scheduled
// environments are left out: they cannot share code yet, and would only
// fail each time.
func followers(env *config.Environment) []*config.Environment {
	if env.Fraise == nil || env.Fraise.Config == nil {
		return nil
	}
	var out []*config.Environment
	for _, e := range env.Fraise.Config.Environments() {
		if e != nil && e != env && e.Code == env && e.Fraise.Type != config.TypeScheduled {
			out = append(out, e)
		}
	}
	return out
}

// followStore is what queueing follow-ups with a deployment's outcome
// needs of the store.
type followStore interface {
	FinishFollowed(ctx context.Context, id int64, f store.Finish, follow []store.QueueRequest) ([]store.Queued, error)
}

// finishRecord records the deployment's outcome. One that made a release
// current queues, in the same transaction, a follow-up deployment of each
// environment that runs its code (trigger follow), unless a request
// already waits there: no crash can then leave a release current that
// what runs its code never followed.
func (d *deployment) finishRecord(ctx context.Context, fin store.Finish) error {
	envs := followers(d.env)
	fs, ok := d.e.Store.(followStore)
	if fin.Status != store.StatusSucceeded || len(envs) == 0 || d.sha == "" {
		return d.e.Store.FinishDeployment(ctx, d.id, fin)
	}
	if !ok {
		fmt.Fprintf(d.e.progress(), "  warning: this state database cannot queue the environments that run %s's code: deploy them by hand\n", d.t)
		return d.e.Store.FinishDeployment(ctx, d.id, fin)
	}
	reqs := make([]store.QueueRequest, len(envs))
	for i, e := range envs {
		f, n := e.Target()
		reqs[i] = store.QueueRequest{Target: store.Target{Fraise: f, Environment: n}, SHA: d.sha, Trigger: store.TriggerFollow,
			Actor: fmt.Sprintf("%s deployment %d", d.t, d.id)}
	}
	queued, err := fs.FinishFollowed(ctx, d.id, fin, reqs)
	for _, q := range queued {
		fmt.Fprintf(d.e.progress(), "  queued deployment %d: %s runs this code and follows it\n", q.DeploymentID, q.Target)
	}
	return err
}

// followUp runs, after a deployment or rollback asked for directly (on
// the command line: not one taken from the queue) that made a release
// current, what waits in the queue for the environments that run its
// code: the follow-ups its finish queued, or an earlier request still
// waiting there. The command completes what it changed rather than leave
// it to a fraisier serve that may not run on this host; what fraisier
// serve took first, or what waits for another deployment, is left to the
// queue, and said so. The result and error are the deployment's own.
func (e *Engine) followUp(ctx context.Context, c Collaborators, req Request, res Result, err error) (Result, error) {
	if err != nil || req.Queued != 0 || res.Status != store.StatusSucceeded {
		return res, err
	}
	for _, env := range followers(req.Env) {
		e.runFollower(ctx, c, env, req.Wait)
	}
	return res, err
}

// runFollower runs the request waiting for env, if any.
func (e *Engine) runFollower(ctx context.Context, c Collaborators, env *config.Environment, wait time.Duration) {
	out := e.progress()
	f, n := env.Target()
	ds, err := e.Store.Deployments(ctx, store.DeploymentFilter{Fraise: f, Environment: n, Status: store.StatusQueued, Limit: 1})
	if err != nil {
		fmt.Fprintf(out, "  warning: find the deployment of %s that follows: %v\n", env.ID(), err)
		return
	}
	if len(ds) == 0 {
		return // fraisier serve has taken it already
	}
	q := ds[0]
	fmt.Fprintf(out, "%s runs this code: deployment %d follows\n", env.ID(), q.ID)
	_, err = e.Deploy(ctx, c, Request{Env: env, Queued: q.ID, Trigger: q.Trigger, Actor: q.Actor, Wait: wait})
	switch {
	case err == nil:
	case errors.Is(err, ErrNotReady):
		fmt.Fprintf(out, "  deployment %d stays queued for fraisier serve: %v\n", q.ID, err)
	case errors.Is(err, ErrNotQueued):
		fmt.Fprintf(out, "  deployment %d was taken by fraisier serve, or replaced by a newer request\n", q.ID)
	case errors.Is(err, ErrLocked):
		fmt.Fprintf(out, "  deployment %d stays queued: %s is being deployed (%v); fraisier serve, or the next deployment of %s, runs it\n",
			q.ID, env.ID(), err, env.Code.ID())
	default:
		fmt.Fprintf(out, "  warning: deployment %d of %s: %v\n", q.ID, env.ID(), err)
	}
}
