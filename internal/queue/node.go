package queue

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// ListenedPoll is the runner's backstop poll when PostgreSQL's LISTEN
// wakes it (RolloutLoop.Listen): a notification lost with a dropped
// connection is made up for at the reconnect, so the poll only covers
// what nothing announced.
const ListenedPoll = 30 * time.Second

// NewRolloutLoop is node's heartbeat and rollout coordinator over st,
// wired to runner as fraisier serve and fraisier node wire them: it wakes
// the runner on each notification (listen: PostgreSQL) and whenever a
// pass changed a rollout, and the runner wakes it after each rollout step.
// Its host prober (loop.Hosts) probes the health of node's host targets
// that have a health check, and again after each deployment of one ends;
// with none (rolloutbench's hosts) it probes nothing. Set loop.Hosts to
// nil before RunRolloutLoop to run no prober.
func NewRolloutLoop(runner *Runner, st RolloutStore, node store.Node, listen bool, log *slog.Logger) *RolloutLoop {
	loop := &RolloutLoop{
		Store: st, Node: node, Config: runner.CurrentConfig, Collab: runner.Collab, Log: log,
		Listen: listen, OnWake: runner.Wake,
	}
	runner.OnRolloutStep = func(int64) { loop.Wake() }
	loop.Hosts = &HostProber{
		Store: st, Node: node.Name, Config: runner.CurrentConfig, Collab: runner.Collab,
		Log: log.With("part", "host health"), Busy: runner.Deploying,
	}
	runner.OnEnd = func(t store.Target) {
		if p := loop.Hosts; p != nil {
			p.After(t)
		}
	}
	return loop
}

// RunRolloutLoop runs loop, and its host prober when it has one, from the
// moment runner has recovered what a crash left (a rollout must see those
// steps ended) until ctx is done; the channel it returns is closed once
// both ended.
func RunRolloutLoop(ctx context.Context, loop *RolloutLoop, runner *Runner, log *slog.Logger) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-runner.Started():
		case <-ctx.Done():
			return
		}
		var probing sync.WaitGroup
		if p := loop.Hosts; p != nil {
			probing.Go(func() { p.Run(ctx) })
		}
		defer probing.Wait()
		if err := loop.Run(ctx); err != nil {
			log.Error("rollout loop", "err", err)
		}
	}()
	return done
}
