package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/queue"
	"github.com/fraiseql/fraisier/internal/store"
)

// counters are what every node reports to the benchmark: the store calls
// a rollout is made of, and the errors that must not happen.
type counters struct {
	claims, claimsExpected, claimErrors atomic.Int64
	advances, advanceErrors             atomic.Int64
	beats                               atomic.Int64
	errorLogs, warnLogs                 atomic.Int64
	mu                                  sync.Mutex
	firstErrors                         []string
}

// noteError keeps the first few unexpected errors for the report.
func (c *counters) noteError(what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.firstErrors) < 5 {
		c.firstErrors = append(c.firstErrors, what)
	}
}

// countingStore is a node's *store.DB as the node uses it, counting the
// claims and rollout passes it makes and the errors they return; every
// call goes through to the real store.
type countingStore struct {
	*store.DB
	c *counters
}

func (s countingStore) ClaimQueued(ctx context.Context, id int64, cl store.Claim) (store.Deployment, error) {
	s.c.claims.Add(1)
	d, err := s.DB.ClaimQueued(ctx, id, cl)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotQueued), errors.Is(err, store.ErrNotReady):
		s.c.claimsExpected.Add(1)
	default:
		s.c.claimErrors.Add(1)
		s.c.noteError(fmt.Sprintf("claim of deployment %d by %s: %v", id, cl.Host, err))
	}
	return d, err
}

func (s countingStore) AdvanceRollouts(ctx context.Context, now, liveSince time.Time) (store.AdvanceResult, error) {
	s.c.advances.Add(1)
	res, err := s.DB.AdvanceRollouts(ctx, now, liveSince)
	if err != nil && ctx.Err() == nil {
		s.c.advanceErrors.Add(1)
		s.c.noteError("advance rollouts: " + err.Error())
	}
	return res, err
}

func (s countingStore) Heartbeat(ctx context.Context, n store.Node) error {
	s.c.beats.Add(1)
	return s.DB.Heartbeat(ctx, n)
}

// countingHandler counts the log records of warning and error level of
// every node and drops them all (100 nodes' info lines would be the
// benchmark's own load).
type countingHandler struct {
	c     *counters
	attrs []slog.Attr
}

func (h countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		h.c.warnLogs.Add(1)
		return nil
	}
	h.c.errorLogs.Add(1)
	msg := r.Message
	for _, a := range h.attrs {
		msg += " " + a.String()
	}
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	h.c.noteError("log: " + msg)
	return nil
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{c: h.c, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h countingHandler) WithGroup(string) slog.Handler { return h }

// node is one simulated host: what fraisier node runs, in this process,
// with a connection pool of its own.
type node struct {
	name   string
	db     *store.DB
	runner *queue.Runner
	stop   context.CancelFunc
	done   chan struct{}
}

// startNode loads the configuration as host name's node would (its own
// APP_ROOT) and runs its runner and rollout loop as fraisier node does:
// the runner over its own pool polling as a node woken by LISTEN does,
// the loop from queue.NewRolloutLoop and queue.RunRolloutLoop.
func (w *world) startNode(name string, c *counters) (*node, error) {
	appRoot := filepath.Join(w.hostsDir, name)
	cfg, err := config.Load(w.cfgPath, config.Options{LookupEnv: func(k string) (string, bool) {
		if k == "APP_ROOT" {
			return appRoot, true
		}
		return "", false
	}})
	if err != nil {
		return nil, err
	}
	db, err := store.Open(w.ctx, store.Options{URL: w.url})
	if err != nil {
		return nil, err
	}
	owner, err := deploy.CurrentOwner()
	if err != nil {
		db.Close()
		return nil, err
	}
	owner.Host = name
	log := slog.New(countingHandler{c: c}).With("node", name)
	st := countingStore{DB: db, c: c}
	r := &queue.Runner{
		Store: st, Config: cfg, Collab: deploy.RealCollaborators(nil), Owner: owner, Node: name,
		Log: log.With("component", "queue"), MaxConcurrent: cfg.Server.MaxConcurrent, Grace: cfg.Server.ShutdownGrace.D(),
		Poll: queue.ListenedPoll,
	}
	host, _ := os.Hostname()
	loop := queue.NewRolloutLoop(r, st, store.Node{Name: name, Hostname: host, Version: "rolloutbench", PID: os.Getpid(), StartedAt: time.Now().UTC()},
		true, log.With("component", "rollouts"))
	ctx, cancel := context.WithCancel(context.WithoutCancel(w.ctx))
	n := &node{name: name, db: db, runner: r, stop: cancel, done: make(chan struct{})}
	workDone := make(chan struct{})
	go func() { defer close(workDone); r.Run(ctx) }()
	loopDone := queue.RunRolloutLoop(ctx, loop, r, log)
	go func() { <-workDone; <-loopDone; close(n.done) }()
	return n, nil
}

// startNodes starts a node per host and waits until every one has
// recovered and heartbeat.
func (w *world) startNodes(c *counters) ([]*node, error) {
	var nodes []*node
	for _, h := range w.hosts {
		n, err := w.startNode(h, c)
		if err != nil {
			stopNodes(nodes)
			return nil, fmt.Errorf("start node %s: %w", h, err)
		}
		nodes = append(nodes, n)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		ns, err := w.db.Nodes(w.ctx)
		if err != nil {
			stopNodes(nodes)
			return nil, err
		}
		alive := 0
		for _, n := range ns {
			if time.Since(n.HeartbeatAt) < 10*time.Second {
				alive++
			}
		}
		if alive >= len(w.hosts) {
			return nodes, nil
		}
		if time.Now().After(deadline) {
			stopNodes(nodes)
			return nil, fmt.Errorf("%d of %d nodes heartbeat within a minute", alive, len(w.hosts))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopNodes stops every node as SIGTERM stops fraisier node (nothing runs
// by then) and closes its pool.
func stopNodes(nodes []*node) {
	for _, n := range nodes {
		n.runner.StopDispatch()
		n.stop()
	}
	for _, n := range nodes {
		<-n.done
		n.db.Close()
	}
}
