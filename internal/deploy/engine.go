package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// Store is what the engine needs of the state database.
type Store interface {
	StepRecorder
	AcquireLock(ctx context.Context, l store.Lock, ttl time.Duration, holderDead func(store.Lock) bool) (store.Lock, error)
	RefreshLock(ctx context.Context, t store.Target, owner string, ttl time.Duration) error
	ReleaseLock(ctx context.Context, t store.Target, owner string) error
	StartDeployment(ctx context.Context, d store.Deployment) (int64, error)
	ClaimQueued(ctx context.Context, id int64, c store.Claim) (store.Deployment, error)
	FinishDeployment(ctx context.Context, id int64, f store.Finish) error
	SetDeploymentTarget(ctx context.Context, id int64, sha string) error
	RunningDeployments(ctx context.Context) ([]store.Deployment, error)
	MarkInterrupted(ctx context.Context, id int64, reason string) error
	FraiseStates(ctx context.Context, fraise, env string) ([]store.FraiseState, error)
	AddRelease(ctx context.Context, r store.Release) (int64, error)
	SetReleaseState(ctx context.Context, t store.Target, name, state string) error
	SetReleaseRevision(ctx context.Context, t store.Target, name, revision string) error
	Releases(ctx context.Context, fraise, env string) ([]store.Release, error)
	Release(ctx context.Context, t store.Target, name string) (store.Release, error)
	Deployment(ctx context.Context, id int64) (store.Deployment, error)
	Deployments(ctx context.Context, f store.DeploymentFilter) ([]store.Deployment, error)
}

// Request asks for one deployment.
type Request struct {
	Env *config.Environment
	// Ref is a branch, tag or commit; empty means the head of the
	// environment's branch.
	Ref   string
	Force bool
	// Trigger and Actor say who asked and how (store.Trigger*).
	Trigger store.Trigger
	Actor   string
	// WebhookID links the deployment to the delivery that caused it.
	WebhookID *int64
	// Wait is how long to wait for another deployment of the same target
	// to finish; zero refuses at once with the holder's name.
	Wait time.Duration
	// Queued is the queued deployment this request runs, once it holds the
	// target's lock; 0 records a new deployment. Running it fails with
	// ErrNotQueued when it was superseded or claimed meanwhile.
	Queued int64
	// NoMigrate deploys the code only: the migrate step is recorded as
	// skipped with NoMigrateWhy (a rollout's host that is not the one
	// that migrates the shared database).
	NoMigrate    bool
	NoMigrateWhy string
	// TipVerifiedBy, when set, says which earlier step already found the
	// commit at its ref's tip (a rollout's first host): this step does not
	// ask again, so a newer push waits for the rollout to end instead of
	// undoing it half-way. The commit must still descend from what runs.
	TipVerifiedBy string
}

// Result is how a deployment ended. Status is one of succeeded, failed,
// rolled_back, rollback_failed or skipped; Err says why for every status
// but succeeded, and for skipped only when the deployment was refused
// (ErrRefused: a queued push whose commit may not deploy).
type Result struct {
	DeploymentID    int64
	Status          store.Status
	OldSHA, NewSHA  string
	Release         string // the release serving when the deployment ended
	PreviousRelease string
	Err             error
	// Recovered is the lock taken over from a holder that had died, and
	// Interrupted the deployments it left running.
	Recovered   *store.Lock
	Interrupted []int64
	// drain is a blue/green colour left draining (bluegreen.go).
	drain *drainJob
}

// ErrLocked is returned (wrapped, with the holder) when another deployment
// holds the target and Request.Wait ran out.
var ErrLocked = store.ErrLocked

// ErrNotQueued is returned (wrapped) when Request.Queued is no longer
// waiting: a newer request superseded it, or another worker took it.
var ErrNotQueued = store.ErrNotQueued

// Engine runs deployments. Its fields are its collaborators; nothing in it
// is global, so tests build one per case.
type Engine struct {
	Store Store
	// Progress receives one line per step as it happens.
	Progress io.Writer
	Owner    Owner
	// LockTTL bounds how long a lock outlives a holder that stopped
	// refreshing it (a holder on another host that died).
	LockTTL time.Duration
	Now     func() time.Time
	// Fault is a test-only fault-injection point; the zero value, which
	// every production caller leaves, never fires.
	Fault Fault
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e *Engine) lockTTL() time.Duration {
	if e.LockTTL > 0 {
		return e.LockTTL
	}
	return 2 * time.Minute
}

func (e *Engine) progress() io.Writer {
	if e.Progress != nil {
		return e.Progress
	}
	return io.Discard
}

// lock takes the target's lock, waiting up to wait for a live holder, and
// recovers it from a dead one: the deployments the dead holder left running
// are recorded as interrupted. The returned release function gives the lock
// back and stops its refresher.
func (e *Engine) lock(ctx context.Context, t store.Target, reason string, wait time.Duration, lost func(error)) (release func(), recovered *store.Lock, interrupted []int64, err error) {
	owner := e.Owner.String()
	l := store.Lock{Target: t, Owner: owner, Host: e.Owner.Host, PID: e.Owner.PID, Reason: reason}
	dead := func(h store.Lock) bool { return HolderDead(h.Owner, e.Owner.Host) }
	deadline := time.Now().Add(wait)
	for {
		prev, err := e.Store.AcquireLock(ctx, l, e.lockTTL(), dead)
		if err == nil {
			// A holder whose lock merely expired but which still runs on this
			// host will find its lock gone at its next refresh and stop; its
			// deployment is its own to finish. Only a holder known dead, or
			// one on another host that stopped refreshing, leaves orphans.
			if prev.Owner != "" && prev.Owner != owner && (prev.Host != e.Owner.Host || dead(prev)) {
				recovered = &prev
				interrupted, err = e.interruptOrphans(ctx, t, prev)
				if err != nil {
					_ = e.Store.ReleaseLock(context.WithoutCancel(ctx), t, owner)
					return nil, nil, nil, err
				}
			}
			break
		}
		if !errors.Is(err, store.ErrLocked) || time.Now().After(deadline) {
			return nil, nil, nil, err
		}
		select {
		case <-ctx.Done():
			return nil, nil, nil, fmt.Errorf("wait for lock on %s: %w", t, context.Cause(ctx))
		case <-time.After(250 * time.Millisecond):
		}
	}

	refreshCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(e.lockTTL() / 3)
		defer tick.Stop()
		lastOK := time.Now()
		for {
			select {
			case <-refreshCtx.Done():
				return
			case <-tick.C:
				err := e.Store.RefreshLock(refreshCtx, t, owner, e.lockTTL())
				switch {
				case err == nil:
					lastOK = time.Now()
				case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrLocked):
					lost(fmt.Errorf("lost the lock on %s: %w", t, err))
					return
				case time.Since(lastOK) > e.lockTTL():
					lost(fmt.Errorf("lost the lock on %s: not refreshed for %s: %w", t, e.lockTTL(), err))
					return
				}
			}
		}
	}()
	release = func() {
		stop()
		<-done
		// Bounded: a state database that stopped answering must not hold
		// the process; the lock then expires by itself after its TTL.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := e.Store.ReleaseLock(rctx, t, owner); err != nil {
			fmt.Fprintf(e.progress(), "  warning: %v (it expires by itself in %s)\n", err, e.lockTTL())
		}
	}
	return release, recovered, interrupted, nil
}

// interruptOrphans records as interrupted the running deployments of t that
// belonged to the dead holder prev.
func (e *Engine) interruptOrphans(ctx context.Context, t store.Target, prev store.Lock) ([]int64, error) {
	running, err := e.Store.RunningDeployments(ctx)
	if err != nil {
		return nil, fmt.Errorf("find deployments interrupted on %s: %w", t, err)
	}
	var ids []int64
	for _, d := range running {
		// Queued requests are waiting, not orphaned: they have no holder
		// yet and must survive the crash to run.
		if d.Target != t || d.Status != store.StatusRunning {
			continue
		}
		if d.Host != "" && (d.Host != prev.Host || d.PID != prev.PID) {
			continue // not the dead holder's
		}
		// Either the process died, or it ended without reaching the state
		// database to record its outcome (it said which on its own output):
		// from here the two look alike, and the reason must not pretend
		// to know which.
		reason := fmt.Sprintf("interrupted: fraisier (pid %d on %s) ended without recording an outcome (it died, or could not reach the state database); lock recovered by pid %d",
			prev.PID, prev.Host, e.Owner.PID)
		if err := e.Store.MarkInterrupted(ctx, d.ID, reason); err != nil {
			return ids, fmt.Errorf("record deployment %d as interrupted: %w", d.ID, err)
		}
		fmt.Fprintf(e.progress(), "! deployment %d was interrupted (pid %d ended without recording an outcome); recorded as interrupted\n", d.ID, prev.PID)
		ids = append(ids, d.ID)
	}
	// Releases the dead deployments created but never switched to are
	// nobody's: mark them bad so no rollback picks them.
	if len(ids) > 0 {
		rels, err := e.Store.Releases(ctx, t.Fraise, t.Environment)
		if err != nil {
			return ids, fmt.Errorf("find releases of interrupted deployments on %s: %w", t, err)
		}
		for _, r := range rels {
			if r.State == store.ReleaseNew && slices.Contains(ids, r.DeploymentID) {
				if err := e.Store.SetReleaseState(ctx, t, r.Name, store.ReleaseBad); err != nil {
					return ids, err
				}
			}
		}
	}
	return ids, nil
}

// Recover takes and gives back t's lock so that a lock left by a holder
// that died is recovered now, and the deployments it left running are
// recorded as interrupted, rather than at the next deployment of t. It
// returns those deployments. A live holder keeps its lock: Recover then
// returns ErrLocked (wrapped).
func (e *Engine) Recover(ctx context.Context, t store.Target) ([]int64, error) {
	release, _, interrupted, err := e.lock(ctx, t, "recover after a restart", 0, func(error) {})
	if err != nil {
		return nil, fmt.Errorf("recover %s: %w", t, err)
	}
	release()
	return interrupted, nil
}
