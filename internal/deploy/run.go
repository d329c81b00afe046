package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/execx"
	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/store"
)

// Default step timeouts, used where the configuration sets none.
const (
	defaultFetchTimeout   = 5 * time.Minute
	defaultInstallTimeout = 15 * time.Minute
	defaultMigrateTimeout = 15 * time.Minute
	defaultRestartTimeout = 2 * time.Minute
	defaultDeployTimeout  = 45 * time.Minute
	// rollbackTimeout bounds the whole compensation, which runs even after
	// the deployment's own context was cancelled.
	rollbackTimeout = 5 * time.Minute
	// settle is how long a restarted unit must stay up before it counts as
	// started: a service that crashes right after exec must not pass. With
	// a health check the probe is the stronger witness (a crashed service
	// fails it), so the unit only has to be active; a settle there would
	// only slow every deploy and rollback.
	settle           = time.Second
	settleWithHealth = 0
)

func orDefault(d config.Duration, def time.Duration) time.Duration {
	if d > 0 {
		return d.D()
	}
	return def
}

// deployment is the state of one deployment, whatever its flow: what it
// found, and what it changed (done), so that a failure knows exactly what
// to undo.
type deployment struct {
	e   *Engine
	c   Collaborators
	req Request
	env *config.Environment
	t   store.Target
	rec *recorder
	id  int64

	src Source
	// fetchRef is a pull request head to fetch besides the branches and
	// tags (git.PullRequestRefOf): a fork's commits are reachable only
	// through it.
	fetchRef string
	// queued: the deployment was taken from the queue (a push, or a push
	// queued again), so verifyPush decides whether its commit may deploy;
	// pushedRef is the ref the push moved ("" when the request names
	// only a commit).
	queued    bool
	pushedRef string
	appPath   string
	// gitDir is fraisier's git directory for the environment, under its
	// state directory (mirrorPath); as is who its commands run as.
	gitDir      string
	as          account
	oldSHA      string
	prevRelease string // current before the switch; "" on a first deployment
	sha         string
	release     string
	releasePath string

	// unitsPrepared: prepareUnits reloaded and checked the units before
	// the switch (once per deployment).
	unitsPrepared bool
	// unitFilesInApp: a unit's file or drop-in lives under app_path (or
	// the layout is inplace), so the restart must ask systemd again.
	unitFilesInApp bool
	// unrecorded is the release current pointed at, unverified, when this
	// deployment took over an unfinished switch (adoptUnrecorded).
	unrecorded string
	// afterInterrupt: the target's last deployment was interrupted.
	afterInterrupt bool
	// bg is a blue/green deployment's state (bluegreen.go).
	bg *bgRun

	// done is what the deployment changed so far, for compensate.
	done changes
}

// Deploy takes req.Env to the requested commit, or leaves it as it was, and
// says which. The error is for what went wrong outside the deployment's
// own story (the lock was held, the state database failed); a deployment
// that failed, rolled back or could not roll back is a Result with its
// Status and Err.
func (e *Engine) Deploy(ctx context.Context, c Collaborators, req Request) (Result, error) {
	res, err := e.execute(ctx, c, req, orBranch(req.Ref, req.Env.Branch), (*deployment).flow)
	e.drainOld(ctx, c, res)
	return e.followUp(ctx, c, req, res, err)
}

// flow is the deployment's flow, chosen by what the environment is. It
// returns the terminal status and, for every status but succeeded and
// skipped, the error that decided it.
func (d *deployment) flow(ctx context.Context) (store.Status, error) {
	env := d.env
	switch {
	case env.Fraise.Type == config.TypeScheduled && env.SharesCodeWith != "":
		// Its timers would have to follow another environment's releases;
		// until that exists, refuse rather than "succeed" installing nothing.
		return store.StatusFailed, d.rec.step(ctx, "check", 0, func(context.Context, io.Writer) (string, error) {
			return "", fmt.Errorf("scheduled environments with shares_code_with cannot be deployed yet")
		})
	case env.SharesCodeWith != "":
		return d.runShared(ctx)
	case env.Fraise.Type == config.TypeScheduled:
		return d.runScheduled(ctx)
	}
	return d.runAPI(ctx)
}

// execute holds what every kind of deployment shares: the lock, the record
// that opens and closes it, and the timeout; flow is the kind's own steps.
func (e *Engine) execute(ctx context.Context, c Collaborators, req Request, requested string, flow func(*deployment, context.Context) (store.Status, error)) (Result, error) {
	env := req.Env
	fraise, envName := env.Target()
	t := store.Target{Fraise: fraise, Environment: envName}
	if err := cannotRun(req, t); err != nil {
		return Result{}, err
	}
	// Losing the lock mid-deployment (fraisier unlock, or a state
	// database unreachable past the lock's TTL) means another deployment
	// may start: this one stops and undoes what it did.
	lockCtx, lockLost := context.WithCancelCause(ctx)
	defer lockLost(nil)
	why := string(req.Trigger) + " " + requested
	if req.Queued != 0 {
		// Not the commit: a newer push may take the request over until
		// the claim, after the lock is taken.
		why = fmt.Sprintf("%s deployment %d", req.Trigger, req.Queued)
	}
	release, recovered, interrupted, err := e.lock(lockCtx, t, why, req.Wait, lockLost)
	if err != nil {
		return Result{}, fmt.Errorf("%s %s: %w", req.Trigger, t, err)
	}
	defer release()

	// CodePath: an etl sharing another fraise's checkout has no app_path of
	// its own; what it runs is that checkout's current release.
	d := &deployment{e: e, c: c, req: req, env: env, t: t, appPath: env.CodePath(), fetchRef: git.PullRequestRefOf(req.Ref)}
	res := Result{Recovered: recovered, Interrupted: interrupted}
	// Nothing in the tree is read, let alone trusted, before it is
	// checked; a refusal is recorded below as the deployment's one step.
	refusal := d.checkTree()
	if refusal == nil {
		if err := d.findCurrent(ctx); err != nil {
			return res, fmt.Errorf("deploy %s: %w", t, err)
		}
	}

	deployCtx, cancel := context.WithTimeoutCause(lockCtx, orDefault(env.Timeouts.Deploy, defaultDeployTimeout),
		fmt.Errorf("deployment: %w after %s", execx.ErrTimeout, orDefault(env.Timeouts.Deploy, defaultDeployTimeout)))
	defer cancel()
	record := context.WithoutCancel(ctx)
	if err := d.open(record, requested); err != nil {
		return res, fmt.Errorf("deploy %s: %w", t, err)
	}
	res.DeploymentID, res.OldSHA, res.PreviousRelease = d.id, d.oldSHA, d.prevRelease
	// Every step's output, detail and error is recorded and shown with the
	// configuration's secrets replaced: the deployed code prints what it
	// likes.
	d.rec = &recorder{db: e.Store, deploymentID: d.id, progress: e.progress(), now: e.now, record: record, fault: e.Fault,
		scrub: scrubberFor(env)}
	fmt.Fprintf(e.progress(), "deployment %d: %s from %s\n", d.id, t, orDash(short(d.oldSHA)))

	var status store.Status
	var runErr error
	if refusal != nil {
		status, runErr = store.StatusFailed, d.rec.step(deployCtx, "check", 0, func(context.Context, io.Writer) (string, error) {
			return "", refusal
		})
	} else {
		status, runErr = flow(d, deployCtx)
	}
	// Errors that no step recorded (and so none scrubbed) are stored and
	// shown too.
	runErr = d.rec.scrub.Error(runErr)
	res.Status, res.Err, res.NewSHA, res.Release = status, runErr, d.sha, d.prevRelease
	if status == store.StatusSucceeded {
		res.Release = d.release
	}
	res.drain = d.finishRestart(record)
	if err := d.close(record, status, runErr); err != nil {
		return res, fmt.Errorf("%s %s: record the outcome (%s): %w", req.Trigger, t, status, err)
	}
	fmt.Fprintf(e.progress(), "deployment %d: %s\n", d.id, status)
	return res, nil
}

// cannotRun refuses, before the lock, a request that cannot run: nothing
// waits for it, and no dead holder's deployment is recovered for it.
func cannotRun(req Request, t store.Target) error {
	env := req.Env
	if env.Layout == config.LayoutInplace && env.Fraise.Type == config.TypeScheduled {
		return fmt.Errorf("deploy %s: scheduled fraises need the releases layout", t)
	}
	if pr := git.PullRequestRefOf(req.Ref); pr != "" && env.Layout == config.LayoutInplace {
		return fmt.Errorf("deploy %s: %s: pull request heads deploy only with the releases layout", t, pr)
	}
	return nil
}

// findCurrent reads, once checkTree has passed, what runs before the
// deployment changes anything: the commit, and the release, a failure
// returns to.
func (d *deployment) findCurrent(ctx context.Context) error {
	if d.inplace() {
		// The checkout is the release: what to return to is a commit. It
		// is the one fraisier's git directory last checked out, else the
		// one a checkout of the layout that kept its git directory in
		// app_path left there (git.WorkTreeHead), when fraisier's user
		// wrote it.
		var err error
		if d.oldSHA, err = git.InPlaceHead(ctx, d.gitDir); err != nil {
			d.oldSHA = git.WorkTreeHead(d.appPath)
		}
		d.prevRelease = d.oldSHA
		return nil
	}
	var err error
	if d.prevRelease, err = currentRelease(d.appPath); err != nil {
		return err
	}
	if err := d.adoptUnrecorded(ctx); err != nil {
		return err
	}
	d.oldSHA = d.e.currentSHA(ctx, d.t, d.prevRelease)
	return nil
}

// currentSHA is the commit the target serves: the recorded state when it
// agrees with the current symlink, else what the releases table says of
// the release current points at.
func (e *Engine) currentSHA(ctx context.Context, t store.Target, current string) string {
	if current == "" {
		return ""
	}
	states, err := e.Store.FraiseStates(ctx, t.Fraise, t.Environment)
	if err == nil && len(states) == 1 && states[0].CurrentRelease == current {
		return states[0].CurrentSHA
	}
	if r, err := e.Store.Release(ctx, t, current); err == nil {
		return r.SHA
	}
	return ""
}

// open records the deployment as started, or claims the queued one it
// runs. A queued request is claimed only now that the lock is held: while
// this waited for the lock, a newer push may have superseded the request,
// and then the newer one is what must run. A newer push may also have
// replaced the request in place: what runs is the commit the claimed row
// names now, not the one it named when the queue listed it.
func (d *deployment) open(record context.Context, requested string) error {
	e, req := d.e, d.req
	if req.Queued == 0 {
		var err error
		d.id, err = e.Store.StartDeployment(record, store.Deployment{
			Target: d.t, Trigger: req.Trigger, Actor: req.Actor, RequestedRef: requested,
			OldSHA: d.oldSHA, WebhookID: req.WebhookID, Host: e.Owner.Host, PID: e.Owner.PID,
		})
		return err
	}
	d.id = req.Queued
	claimed, err := e.Store.ClaimQueued(record, req.Queued, store.Claim{Host: e.Owner.Host, PID: e.Owner.PID, OldSHA: d.oldSHA})
	if err != nil {
		return err
	}
	if claimed.NewSHA != "" {
		d.req.Ref, d.req.Actor, d.req.WebhookID = claimed.NewSHA, claimed.Actor, claimed.WebhookID
		d.fetchRef = git.PullRequestRefOf(claimed.RequestedRef)
		d.queued, d.pushedRef = true, store.QueuedRef(claimed.RequestedRef)
	}
	return nil
}

// close records the deployment's outcome. It must reach the record: a
// deployment left "running" would be a lie. A busy or briefly unreachable
// database gets retries.
func (d *deployment) close(record context.Context, status store.Status, runErr error) error {
	fin := store.Finish{Status: status, NewSHA: d.sha}
	if status == store.StatusSucceeded {
		fin.Release = d.release
	}
	if runErr != nil {
		fin.Error = runErr.Error()
	}
	d.e.Fault.at(d.e.progress(), FaultRecord, true)
	for attempt := 1; ; attempt++ {
		err := d.finishRecord(record, fin)
		if err == nil {
			return nil
		}
		if attempt == 5 || errors.Is(err, store.ErrFinished) || errors.Is(err, store.ErrNotFound) {
			return err
		}
		time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
	}
}

// plannedStep is one step of a flow; a non-empty skip says why it does not
// apply to this environment.
type plannedStep struct {
	name    string
	timeout time.Duration
	fn      stepFunc
	skip    string
}

// apply runs the steps in order and compensates at the first failure.
func (d *deployment) apply(ctx context.Context, steps []plannedStep) (store.Status, error) {
	steps = d.blueGreenSteps(steps)
	for _, s := range steps {
		if s.skip != "" {
			if err := d.rec.skip(s.name, s.skip); err != nil {
				return d.compensate(err)
			}
			continue
		}
		if err := d.rec.step(ctx, s.name, s.timeout, s.fn); err != nil {
			return d.compensate(err)
		}
	}
	d.finishReleases(ctx)
	return store.StatusSucceeded, nil
}

// migrateSkip is why the migrate step does not run, or "" when it runs.
func (d *deployment) migrateSkip() string {
	switch {
	case d.env.Database == nil:
		return "no database"
	case d.req.NoMigrate && d.req.NoMigrateWhy != "":
		return d.req.NoMigrateWhy
	case d.req.NoMigrate:
		return "--no-migrate"
	}
	return ""
}

func skipUnless(cond bool, why string) string {
	if cond {
		return ""
	}
	return why
}

// inplace says whether the environment is one checkout in app_path (the
// first fraisier's way) rather than releases and a current link.
func (d *deployment) inplace() bool { return d.env.Layout == config.LayoutInplace }

func orBranch(ref, branch string) string {
	if ref != "" {
		return ref
	}
	return branch
}
