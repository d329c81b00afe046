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
	// What follows is the Run goroutine's own.
	healthy   bool
	liveSince time.Time
	verified  map[int64]bool
}

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

// Run heartbeats and advances rollouts until ctx is done.
func (l *RolloutLoop) Run(ctx context.Context) error {
	l.init()
	if l.Listen {
		go l.listen(ctx)
	}
	beat := l.Beat
	if beat <= 0 {
		beat = HeartbeatEvery(l.Config())
	}
	l.heartbeat(ctx)
	hb := time.NewTicker(beat)
	defer hb.Stop()
	for {
		if !l.sleep(ctx, l.pass(ctx, beat), hb) {
			return nil
		}
	}
}

// sleep waits for a wake or for wait to pass, heartbeating meanwhile; a
// heartbeat that finds the database reachable again ends it too (a pass
// is due). False when ctx ended.
func (l *RolloutLoop) sleep(ctx context.Context, wait time.Duration, hb *time.Ticker) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-l.wake:
			return true
		case <-timer.C:
			return true
		case <-hb.C:
			if l.heartbeat(ctx) {
				return true
			}
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

// heartbeat records this node alive; it reports whether the database just
// became reachable again after an error (a pass is then due).
func (l *RolloutLoop) heartbeat(ctx context.Context) (recovered bool) {
	err := l.Store.Heartbeat(ctx, l.Node)
	return l.reached(ctx, err, "heartbeat")
}

// reached tracks whether the database answers: liveSince is when it last
// became reachable after an error, so that a node that could not see the
// heartbeats of others for a while judges none dead until it has seen
// them again for a whole node_timeout. A call that failed because ctx
// ended (the node stopping) says nothing of the database.
func (l *RolloutLoop) reached(ctx context.Context, err error, what string) (recovered bool) {
	if err != nil && ctx.Err() != nil {
		return false
	}
	if err != nil {
		if l.healthy || l.liveSince.IsZero() {
			l.Log.Error("rollout coordination failed: the state database did not answer; retried at each heartbeat", "during", what, "err", err)
		}
		l.healthy = false
		return false
	}
	if l.healthy {
		return false
	}
	if !l.liveSince.IsZero() {
		l.Log.Info("state database reachable again", "during", what)
	}
	l.healthy, l.liveSince = true, time.Now()
	return true
}

// pass advances the rollouts once and checks the canary windows this node
// closes; it returns how long to wait before the next pass.
func (l *RolloutLoop) pass(ctx context.Context, beat time.Duration) time.Duration {
	if !l.healthy {
		return beat
	}
	now := time.Now()
	res, err := l.Store.AdvanceRollouts(ctx, now, l.liveSince)
	if l.reached(ctx, err, "advance rollouts"); err != nil {
		return beat
	}
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
	if next.IsZero() {
		// Only wakes and the heartbeat's recovery call for a pass; the
		// timer still comes back now and then, as a backstop.
		return time.Hour
	}
	return max(time.Until(next), 0)
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
	if l.reached(ctx, err, "read rollouts"); err != nil {
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
		l.reached(ctx, err, "report a canary's health")
		if err != nil {
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
