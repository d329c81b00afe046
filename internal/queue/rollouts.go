package queue

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
)

// RolloutStore is what the rollout loop needs of the state database.
type RolloutStore interface {
	Heartbeat(ctx context.Context, n store.Node) error
	AdvanceRollouts(ctx context.Context, now, liveSince time.Time) (store.AdvanceResult, error)
	Rollouts(ctx context.Context, f store.RolloutFilter) ([]store.Rollout, error)
	RolloutVerified(ctx context.Context, id int64, host string, healthy bool, why string) error
	Listen(ctx context.Context, wake func(topic string)) error
	HostHealthStore
}

// RolloutLoop is one node's part in coordinating rollouts: it heartbeats,
// advances every rollout (store.AdvanceRollouts) when woken, after a step
// this node finished and at the deadline the last pass returned, and
// checks the health of this node's host at the end of a timed canary
// window. Set the fields, then call Run once.
type RolloutLoop struct {
	Store RolloutStore
	// Node is this node as its heartbeat records it (HeartbeatAt is the
	// store's to set).
	Node store.Node
	// Config is the configuration in use (it changes on reload).
	Config func() *config.Config
	Collab deploy.Collaborators
	Log    *slog.Logger
	// Listen makes the loop LISTEN on the database (PostgreSQL) and call
	// OnWake, as well as advancing, on each notification: the runner then
	// reads the queue at once instead of at its next poll.
	Listen bool
	OnWake func()
	// Beat overrides the heartbeat period (default HeartbeatEvery of the
	// configuration).
	Beat time.Duration
	// Hosts, when set, probes the health of this node's host targets;
	// RunRolloutLoop runs it beside the loop.
	Hosts *HostProber

	initOnce sync.Once
	wake     chan struct{}
	// healthy and liveSince are the heartbeat's, under mu.
	mu        sync.Mutex
	healthy   bool
	liveSince time.Time
	// What follows is the Run goroutine's own.
	verified    map[int64]bool
	lastPassErr string
}

// init makes the loop's channel and map, once.
func (l *RolloutLoop) init() {
	l.initOnce.Do(func() {
		l.wake = make(chan struct{}, 1)
		l.verified = map[int64]bool{}
		if l.Log == nil {
			l.Log = slog.New(slog.DiscardHandler)
		}
	})
}

// Wake asks for a pass over the rollouts. It never blocks.
func (l *RolloutLoop) Wake() {
	l.init()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Run heartbeats and advances rollouts until ctx is done. The heartbeat
// has a goroutine of its own, so that a long pass (a canary's health
// check) never makes this node look dead to the others.
func (l *RolloutLoop) Run(ctx context.Context) error {
	l.init()
	if l.Listen {
		go l.listen(ctx)
	}
	l.heartbeat(ctx)
	var beating sync.WaitGroup
	beating.Add(1)
	go func() { defer beating.Done(); l.beat(ctx) }()
	// The heartbeat stops before Run returns: the caller may close the
	// store then.
	defer beating.Wait()
	for {
		timer := time.NewTimer(l.pass(ctx))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-l.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// period is the heartbeat period, read again at each beat so that a
// reload that shortens node_timeout shortens it too.
func (l *RolloutLoop) period() time.Duration {
	if l.Beat > 0 {
		return l.Beat
	}
	return HeartbeatEvery(l.Config())
}

// beat heartbeats every period until ctx ends; a beat that finds the
// database reachable again asks for a pass.
func (l *RolloutLoop) beat(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.period()):
		}
		if l.heartbeat(ctx) {
			l.Wake()
		}
	}
}

// listen wakes the loop and the runner on each notification, until ctx
// ends; the store reconnects by itself.
func (l *RolloutLoop) listen(ctx context.Context) {
	mine, anyNode := store.TopicNode(l.Node.Name), store.TopicNode("")
	err := l.Store.Listen(ctx, func(topic string) {
		if topic == store.TopicAll || topic == store.TopicRollout {
			l.Wake()
		}
		if l.OnWake != nil && (topic == store.TopicAll || topic == mine || topic == anyNode) {
			l.OnWake()
		}
	})
	if err != nil && ctx.Err() == nil {
		l.Log.Error("listen for queue notifications; the runner falls back to polling", "err", err)
	}
}

// heartbeat records this node alive, and tracks whether the database
// answers: liveSince is when it last became reachable after an error, so
// that a node that could not see the heartbeats of others for a while
// judges none dead until it has seen them again for a whole node_timeout.
// Only the heartbeat judges that: one rollout's failing pass says nothing
// of the database. It reports whether the database just became reachable
// again (a pass is then due). A beat that failed because ctx ended (the
// node stopping) says nothing either.
func (l *RolloutLoop) heartbeat(ctx context.Context) (recovered bool) {
	err := l.Store.Heartbeat(ctx, l.Node)
	if err != nil && ctx.Err() != nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if l.healthy || l.liveSince.IsZero() {
			l.Log.Error("rollout coordination failed: the state database did not answer; retried at each heartbeat", "err", err)
		}
		l.healthy = false
		return false
	}
	if l.healthy {
		return false
	}
	if !l.liveSince.IsZero() {
		l.Log.Info("state database reachable again")
	}
	l.healthy, l.liveSince = true, time.Now()
	return true
}

// live says whether the last heartbeat reached the database, and since
// when it has.
func (l *RolloutLoop) live() (healthy bool, since time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.healthy, l.liveSince
}

// pass advances the rollouts once and checks the canary windows this node
// closes; it returns how long to wait before the next pass. Without a
// deadline it still comes back after about the shortest node_timeout, as
// a backstop: a rollout whose steps all ran elsewhere must not wait for
// a wake that may never come.
func (l *RolloutLoop) pass(ctx context.Context) time.Duration {
	period := l.period()
	healthy, liveSince := l.live()
	if !healthy {
		return period
	}
	now := time.Now()
	res, err := l.Store.AdvanceRollouts(ctx, now, liveSince)
	l.logPassError(ctx, err)
	for _, c := range res.Changed {
		l.Log.Info("rollout "+c.What, "rollout", c.RolloutID, "fraise", c.Fraise, "environment", c.Environment,
			"host", c.Host, "status", c.Status)
	}
	if len(res.Changed) > 0 && l.OnWake != nil {
		// Steps this node must run may have been queued.
		l.OnWake()
	}
	next, checked := l.closeCanaries(ctx, now)
	if checked {
		return 0
	}
	if !res.Next.IsZero() && (next.IsZero() || res.Next.Before(next)) {
		next = res.Next
	}
	wait := backstopPeriods * period
	if err != nil {
		wait = period
	}
	if !next.IsZero() {
		wait = min(wait, max(time.Until(next), 0))
	}
	return wait
}

// backstopPeriods heartbeat periods (about the shortest node_timeout) is
// the longest a pass waits.
const backstopPeriods = 6

// logPassError logs a failed pass once, and again when it changes or
// passes clear; the next pass retries after a heartbeat period.
func (l *RolloutLoop) logPassError(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	switch {
	case msg == l.lastPassErr:
	case err != nil:
		l.Log.Error("advance rollouts; retried at the next heartbeat", "err", err)
	default:
		l.Log.Info("rollouts advance again")
	}
	l.lastPassErr = msg
}

// closeCanaries runs, for each rollout whose timed canary window on this
// node's host has passed, the host's health check and reports it. It
// returns the nearest window still open, and whether it reported one.
func (l *RolloutLoop) closeCanaries(ctx context.Context, now time.Time) (next time.Time, checked bool) {
	cfg := l.Config()
	if !l.leadsTimedCanary(cfg) {
		return time.Time{}, false
	}
	active, err := l.Store.Rollouts(ctx, store.RolloutFilter{Active: true})
	if err != nil {
		if ctx.Err() == nil {
			l.Log.Error("read the active rollouts to close canary windows", "err", err)
		}
		return time.Time{}, false
	}
	l.forgetEnded(active)
	for _, ro := range active {
		host, at, ok := l.canaryWindow(ro)
		switch {
		case !ok:
			continue
		case at.After(now):
			if next.IsZero() || at.Before(next) {
				next = at
			}
			continue
		}
		l.verified[ro.ID] = true
		healthy, why := l.checkCanary(ctx, cfg, ro, host)
		err := l.Store.RolloutVerified(ctx, ro.ID, host, healthy, why)
		if err != nil {
			if ctx.Err() == nil {
				l.Log.Error("report a canary's health", "rollout", ro.ID, "err", err)
			}
			delete(l.verified, ro.ID)
			continue
		}
		checked = true
		l.Log.Info("canary window closed", "rollout", ro.ID, "fraise", ro.Fraise, "environment", ro.Environment,
			"host", host, "healthy", healthy, "why", why)
	}
	return next, checked
}

// forgetEnded drops the canaries checked of rollouts no longer active.
func (l *RolloutLoop) forgetEnded(active []store.Rollout) {
	ids := make(map[int64]bool, len(active))
	for _, ro := range active {
		ids[ro.ID] = true
	}
	for id := range l.verified {
		if !ids[id] {
			delete(l.verified, id)
		}
	}
}

// canaryWindow says whether ro waits for this node to close its timed
// canary window, on which host and when.
func (l *RolloutLoop) canaryWindow(ro store.Rollout) (host string, at time.Time, ok bool) {
	p := ro.Policy
	if ro.Status != store.RolloutRunning || !p.Canary || p.CanaryManual || p.CanaryWait <= 0 || ro.Batch != 0 ||
		ro.NextAt == nil || len(ro.Hosts) == 0 || l.verified[ro.ID] {
		return "", time.Time{}, false
	}
	canary := ro.Hosts[0]
	for _, h := range ro.Hosts {
		if h.Position < canary.Position {
			canary = h
		}
	}
	if canary.Host != l.Node.Name || canary.Status != store.HostSucceeded {
		return "", time.Time{}, false
	}
	return canary.Host, *ro.NextAt, true
}

// checkCanary runs the health check of ro's environment on host once.
func (l *RolloutLoop) checkCanary(ctx context.Context, cfg *config.Config, ro store.Rollout, host string) (bool, string) {
	env, err := cfg.Lookup(ro.Fraise, ro.Environment+config.HostSep+host)
	if err != nil {
		return false, "not in the configuration any more: " + err.Error()
	}
	if env.HealthCheck == nil {
		return true, fmt.Sprintf("canary window of %s passed; no health_check to run", ro.Policy.CanaryWait)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := deploy.CheckHealth(ctx, l.Collab, env); err != nil {
		return false, fmt.Sprintf("health check after the %s canary window: %v", ro.Policy.CanaryWait, err)
	}
	return true, fmt.Sprintf("healthy after the %s canary window", ro.Policy.CanaryWait)
}

// leadsTimedCanary says whether some environment of cfg has this node's
// host as the canary of a timed window: only then does a pass read the
// active rollouts.
func (l *RolloutLoop) leadsTimedCanary(cfg *config.Config) bool {
	for _, env := range cfg.Environments() {
		p, ok := RolloutPolicy(env)
		if ok && p.Canary && !p.CanaryManual && p.CanaryWait > 0 && p.Hosts[0] == l.Node.Name {
			return true
		}
	}
	return false
}
