package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
)

// Store is what the runner needs of the state database: the engine's needs
// and the queue's.
type Store interface {
	deploy.Store
	QueuedDeploymentsFor(ctx context.Context, node string) ([]store.Deployment, error)
	Rollout(ctx context.Context, id int64) (store.Rollout, error)
	SettleQueue(ctx context.Context) (store.QueueOrder, error)
	EnqueueIfIdle(ctx context.Context, r store.QueueRequest) (store.Queued, bool, error)
	Deployment(ctx context.Context, id int64) (store.Deployment, error)
}

// Finished describes one deployment a worker ran, for metrics.
type Finished struct {
	Target   store.Target
	Result   deploy.Result
	Duration time.Duration
}

// Runner is the pool of queue workers. Set the fields, then call Run once.
type Runner struct {
	Store Store
	// Config is the configuration the workers start with; SetConfig
	// replaces it while they run.
	Config *config.Config
	Collab deploy.Collaborators
	Owner  deploy.Owner
	Log    *slog.Logger
	// Node is this node's name among the nodes sharing the state
	// database: the runner takes the requests of any node and the
	// rollout steps of this node's host (Owner.Host is the same name).
	Node string

	// MaxConcurrent bounds the deployments running at once across all
	// targets (default 2).
	MaxConcurrent int
	// Grace is how long shutdown lets running deployments finish before
	// cancelling them (default 5m).
	Grace time.Duration
	// Poll is how often the queue is read without a Wake: requests queued
	// by another node sharing the database, and targets whose lock another
	// process held (default 2s). With PostgreSQL's LISTEN waking the
	// runner (RolloutLoop), serve makes it a backstop of 30s.
	Poll time.Duration
	// LockedRetry is how long a target whose lock another process holds
	// (fraisier deploy on the command line, say) is left alone before the
	// worker tries again (default 1s). Its request keeps waiting, and a
	// newer push still takes it over.
	LockedRetry time.Duration
	// OnFinish, when set, is called after each deployment a worker ran.
	OnFinish func(Finished)
	// OnRolloutStep, when set, is called after a worker ended one host's
	// step of a rollout (a deployment or a rollback with a RolloutID):
	// the rollout loop advances the rollout at once.
	OnRolloutStep func(rolloutID int64)
	// OnEnd, when set, is called after a worker ended a deployment it
	// took, however it ended: the host prober checks the target's health.
	OnEnd func(store.Target)
	// OnStart, when set, is called by the worker as it takes a deployment,
	// before it runs: what it does delays the deployment.
	OnStart func(store.Deployment)
	// Fault is handed to every deployment's engine: a test-only fault
	// point (see deploy.Fault); the zero value never fires.
	Fault deploy.Fault

	// reloaded is the configuration SetConfig gave, when it did.
	reloaded  atomic.Pointer[config.Config]
	wake      chan struct{}
	done      chan struct{}
	initOnce  sync.Once
	stopping  atomic.Bool
	startedCh chan struct{}
	started   atomic.Bool
	mu        sync.Mutex
	active    map[store.Target]bool
	blocked   map[store.Target]time.Time
	// probed is when the lock of a target whose deployment others wait
	// for may next be checked for a dead holder (see recoverStalled).
	probed    map[store.Target]time.Time
	running   int
	workCtx   context.Context
	workStop  context.CancelCauseFunc
	workers   sync.WaitGroup
	workerEnd chan struct{}
}

// errShutdown is the cause given to deployments cancelled when the grace
// period of a shutdown ran out.
var errShutdown = errors.New("fraisier serve is shutting down and the grace period ran out")

// init is run once, by whichever of Run, Wake, Started and Ready comes
// first: the intake may wake the runner before Run has begun.
func (r *Runner) init() { r.initOnce.Do(r.setup) }

func (r *Runner) setup() {
	if r.MaxConcurrent <= 0 {
		r.MaxConcurrent = 2
	}
	if r.Grace <= 0 {
		r.Grace = 5 * time.Minute
	}
	if r.Poll <= 0 {
		r.Poll = 2 * time.Second
	}
	if r.LockedRetry <= 0 {
		r.LockedRetry = time.Second
	}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	r.wake = make(chan struct{}, 1)
	r.workerEnd = make(chan struct{}, 1)
	r.done = make(chan struct{})
	r.active = map[store.Target]bool{}
	r.blocked = map[store.Target]time.Time{}
	r.probed = map[store.Target]time.Time{}
	r.startedCh = make(chan struct{})
}

// Started is closed once Run has recovered what a previous process left
// and the workers take requests: the moment to tell systemd READY=1.
func (r *Runner) Started() <-chan struct{} {
	r.init()
	return r.startedCh
}

// Wake tells the runner that a request was queued. It never blocks.
func (r *Runner) Wake() {
	r.init()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Ready reports whether the workers are running: Run has recovered and is
// dispatching, and has not begun shutting down.
func (r *Runner) Ready() bool {
	if !r.started.Load() {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// StopDispatch stops starting deployments at once, while Run goes on
// until its context ends: fraisier serve calls it as soon as SIGTERM
// arrives, so that nothing new starts during the HTTP shutdown. What waits
// stays queued in the database for the next start.
func (r *Runner) StopDispatch() { r.stopping.Store(true) }

// SetConfig makes cfg the configuration deployments started from now on
// run with. A deployment already running finishes with the one it started
// with; a queued request whose target cfg no longer has fails when its
// turn comes, as not in the configuration any more.
func (r *Runner) SetConfig(cfg *config.Config) { r.reloaded.Store(cfg) }

// CurrentConfig is the configuration a deployment starting now runs
// with: Config, or what SetConfig gave since.
func (r *Runner) CurrentConfig() *config.Config { return r.config() }

// config is the configuration a deployment starting now runs with.
func (r *Runner) config() *config.Config {
	if cfg := r.reloaded.Load(); cfg != nil {
		return cfg
	}
	return r.Config
}

// Deploying says whether a worker of this runner deploys t now.
func (r *Runner) Deploying(t store.Target) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.active[t]
}

// Running returns how many deployments the workers are running now.
func (r *Runner) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// Run recovers what a previous process left, then runs queued requests
// until ctx is done. It then stops taking requests, gives running
// deployments Grace to finish, cancels the rest (the engine rolls them
// back) and queues their commits again, and returns once every worker has
// ended.
func (r *Runner) Run(ctx context.Context) error {
	r.init()
	r.workCtx, r.workStop = context.WithCancelCause(context.WithoutCancel(ctx))
	defer r.workStop(nil)

	if err := r.recoverInterrupted(ctx); err != nil {
		// Not fatal: the engine recovers a dead holder's lock at the next
		// deployment of the target anyway.
		r.Log.Error("recover interrupted deployments", "err", err)
	}
	r.started.Store(true)
	close(r.startedCh)
	tick := time.NewTicker(r.Poll)
	defer tick.Stop()
	var last time.Time
	for {
		r.dispatch(ctx)
		last = time.Now()
		select {
		case <-ctx.Done():
			close(r.done)
			r.drain()
			return nil
		case <-r.wake:
			// Under a burst every recorded batch wakes the runner; reading
			// the queue once per wakeGap is enough, and a request waits at
			// most that long for a worker. A lone request is read at once.
			select {
			case <-ctx.Done():
			case <-time.After(wakeGap - time.Since(last)):
			}
		case <-r.workerEnd:
		case <-tick.C:
		}
	}
}

// wakeGap is how long the runner lets wakes gather before it reads the
// queue again.
const wakeGap = 20 * time.Millisecond

func (r *Runner) drain() {
	idle := make(chan struct{})
	go func() { r.workers.Wait(); close(idle) }()
	if n := r.Running(); n > 0 {
		r.Log.Info("shutdown: waiting for running deployments", "running", n, "grace", r.Grace.String())
	}
	select {
	case <-idle:
		return
	case <-time.After(r.Grace):
	}
	r.Log.Warn("shutdown: grace period over, cancelling running deployments; they roll back and are queued again",
		"running", r.Running())
	r.workStop(errShutdown)
	<-idle
}

// dispatch starts a worker for each waiting request whose target is idle,
// oldest first, while the global limit allows. A request that waits for
// another deployment of its push is left waiting; one whose such
// deployment finished without deploying is ended skipped first
// (store.SettleQueue), whichever node ran that deployment.
func (r *Runner) dispatch(ctx context.Context) {
	if ctx.Err() != nil || r.stopping.Load() {
		return
	}
	order, err := r.Store.SettleQueue(ctx)
	if err != nil {
		r.logUnlessStopped(ctx, "settle the deploy queue's order", err)
		return
	}
	for _, d := range order.Skipped {
		r.Log.Info("deployment not run: a deployment of its push it runs after did not deploy",
			"fraise", d.Fraise, "environment", d.Environment, "deployment", d.ID, "reason", d.Error)
		if r.OnFinish != nil {
			r.OnFinish(Finished{Target: d.Target, Result: deploy.Result{DeploymentID: d.ID, Status: d.Status, Err: errors.New(d.Error)}})
		}
	}
	queued, err := r.Store.QueuedDeploymentsFor(ctx, r.Node)
	if err != nil {
		r.logUnlessStopped(ctx, "read the deploy queue", err)
		return
	}
	r.start(queued, order.Waiting)
	r.recoverStalled(ctx, order.Waiting)
}

// logUnlessStopped logs a failed read of the queue as an error, unless Run
// is stopping: a read that shutdown cancelled failed for no fault.
func (r *Runner) logUnlessStopped(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	r.Log.Error(what, "err", err)
}

// start starts the workers of dispatch.
func (r *Runner) start(queued []store.Deployment, waiting map[int64][]store.Wait) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range queued {
		if r.running >= r.MaxConcurrent {
			return
		}
		if r.active[d.Target] || now.Before(r.blocked[d.Target]) || len(waiting[d.ID]) > 0 || !r.mine(d) {
			continue
		}
		r.active[d.Target] = true
		r.running++
		r.workers.Add(1)
		go r.work(d)
	}
}

// mine says whether this node may run d: a request of one host's target
// (env@host: a rollout's step, or one queued for that host by the API)
// runs on that host's node only, whatever node the store lists it for.
func (r *Runner) mine(d store.Deployment) bool {
	if d.Node != "" {
		return d.Node == r.Node
	}
	_, host := splitHost(d.Environment)
	return host == "" || host == r.Node
}

func (r *Runner) work(d store.Deployment) {
	defer func() {
		r.mu.Lock()
		delete(r.active, d.Target)
		r.running--
		r.mu.Unlock()
		r.workers.Done()
		select {
		case r.workerEnd <- struct{}{}:
		default:
		}
	}()
	if d.RolloutID != nil && r.OnRolloutStep != nil {
		// However the step ended, even unrecorded, its rollout has news.
		defer r.OnRolloutStep(*d.RolloutID)
	}
	if r.OnEnd != nil {
		defer r.OnEnd(d.Target)
	}
	log := r.Log.With("fraise", d.Fraise, "environment", d.Environment, "deployment", d.ID)
	ctx := r.workCtx

	cfg := r.config()
	env, err := cfg.Lookup(d.Fraise, d.Environment)
	if err != nil {
		r.fail(ctx, log, d, fmt.Errorf("not in the configuration any more: %w", err))
		return
	}
	progress := &lineLogger{log: log}
	// The engine's lines can quote what deployed code printed.
	scrubbed := deploy.NewScrubber(cfg.SecretValues()).Writer(progress)
	e := &deploy.Engine{Store: r.Store, Progress: scrubbed, Owner: r.Owner, Fault: r.Fault}
	start := time.Now()
	// The listed commit: a newer push may take the request over before the
	// engine claims it, and then what runs (logged when it finishes) is
	// that push's commit.
	log.Info("deployment starting", "listed_sha", d.NewSHA, "trigger", d.Trigger)
	if r.OnStart != nil {
		r.OnStart(d)
	}
	res, err := r.run(ctx, e, env, d)
	scrubbed.Close()
	progress.Flush()
	switch {
	case errors.Is(err, store.ErrNotReady):
		// Listed before a newer push ordered it after a deployment that has
		// not deployed yet: it waits for that one.
		r.retryLater(d.Target)
		log.Info("request waits for another deployment of its push", "why", err.Error())
		return
	case errors.Is(err, deploy.ErrNotQueued):
		log.Info("request superseded before it ran")
		return
	case errors.Is(err, deploy.ErrLocked):
		// Another process deploys the target; the request keeps waiting.
		r.retryLater(d.Target)
		log.Info("target locked by another deployment; the request waits", "holder", err.Error())
		return
	case err != nil:
		r.fail(ctx, log, d, err)
		return
	}
	log.Info("deployment finished", "status", res.Status, "sha", res.NewSHA, "duration_ms", time.Since(start).Milliseconds(),
		"error", errString(res.Err))
	if r.OnFinish != nil {
		r.OnFinish(Finished{Target: d.Target, Result: res, Duration: time.Since(start)})
	}
	if context.Cause(ctx) == errShutdown && res.Status != store.StatusSucceeded && res.Status != store.StatusSkipped {
		// What ran is what the row names now, not what was listed: a
		// newer push may have taken the request over before the claim.
		ran, err := r.Store.Deployment(context.WithoutCancel(ctx), d.ID)
		if err != nil {
			log.Error("read the parked deployment to queue it again", "err", err)
			return
		}
		r.requeue(log, ran, fmt.Sprintf("parked at shutdown (deployment %d)", d.ID))
	}
}

// retryLater leaves t's request waiting, untried, for LockedRetry.
func (r *Runner) retryLater(t store.Target) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blocked[t] = time.Now().Add(r.LockedRetry)
}

// fail ends a request the engine could not run (it never claimed it, or
// failed before recording an outcome) so that it does not wait forever.
func (r *Runner) fail(ctx context.Context, log *slog.Logger, d store.Deployment, cause error) {
	log.Error("deployment could not run", "err", cause)
	rec := context.WithoutCancel(ctx)
	cur, err := r.Store.Deployment(rec, d.ID)
	if err != nil {
		log.Error("read the request", "err", err)
		return
	}
	switch {
	case cur.Status == store.StatusQueued && (cur.NewSHA != d.NewSHA || !sameWebhook(cur.WebhookID, d.WebhookID)):
		// A newer push took the request over after it was listed: that
		// one has not been tried, and waits for its turn.
		log.Info("request taken over by a newer push; it stays queued", "sha", cur.NewSHA)
	case cur.Status == store.StatusQueued:
		// Never started: it failed, and nothing changed.
		if err := r.Store.FinishDeployment(rec, d.ID, store.Finish{Status: store.StatusFailed, Error: cause.Error()}); err != nil {
			log.Error("record the failure", "err", err)
		} else if ended, err := r.Store.Deployment(rec, d.ID); err == nil {
			r.reportEnded(ended)
		}
	case cur.Status == store.StatusRunning:
		// It ran but its outcome could not be recorded: "failed" could be
		// a lie, so it is recorded as what it is, an outcome unknown.
		if err := r.Store.MarkInterrupted(rec, d.ID, "outcome not recorded: "+cause.Error()); err != nil {
			log.Error("record the interruption", "err", err)
		}
	}
}

// reportEnded tells OnFinish of a deployment that ended without a worker
// running it: failed before it could run, or found interrupted.
func (r *Runner) reportEnded(d store.Deployment) {
	if r.OnFinish != nil {
		r.OnFinish(Finished{Target: d.Target, Result: deploy.Result{DeploymentID: d.ID, Status: d.Status, Err: errors.New(d.Error)}})
	}
}

func sameWebhook(a, b *int64) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
