package queue

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
)

// HostHealthStore is what the host health prober needs of the state
// database.
type HostHealthStore interface {
	RecordHostHealth(ctx context.Context, h store.HostHealth) error
}

// hostProbeTimeout bounds one probe of one target.
const hostProbeTimeout = 5 * time.Second

// HostProber records the health of this node's own host targets (every
// env@host whose host is this node, with a health check) so that the
// other nodes can show it: every Every, and right after a deployment of
// one of them ends (After). It probes one target at a time, each within
// Timeout, with the health check a deployment runs (deploy.CheckHealth:
// one try, its error scrubbed of the configuration's secrets). Set the
// fields, then call Run once.
type HostProber struct {
	Store HostHealthStore
	// Node is this node's name: the host whose targets it probes.
	Node string
	// Config is the configuration in use (it changes on reload).
	Config func() *config.Config
	Collab deploy.Collaborators
	Log    *slog.Logger
	// Every is the period of the probes (default store.HostHealthEvery);
	// Timeout bounds each (default 5 s).
	Every, Timeout time.Duration
	// Busy, when set, says whether this node deploys t now: the periodic
	// probe passes it by (a restart under way is no news), and the probe
	// after its end (After) says how it ended.
	Busy func(t store.Target) bool

	initOnce sync.Once
	wake     chan struct{}
	mu       sync.Mutex
	due      []store.Target
}

func (p *HostProber) init() {
	p.initOnce.Do(func() {
		p.wake = make(chan struct{}, 1)
		if p.Log == nil {
			p.Log = slog.New(slog.DiscardHandler)
		}
		if p.Every <= 0 {
			p.Every = store.HostHealthEvery
		}
		if p.Timeout <= 0 {
			p.Timeout = hostProbeTimeout
		}
	})
}

// After asks for a probe of t, a deployment of which just ended, when t is
// one of this node's host targets. It never blocks.
func (p *HostProber) After(t store.Target) {
	p.init()
	if _, host := splitHost(t.Environment); host == "" || host != p.Node {
		return
	}
	p.mu.Lock()
	if !slices.Contains(p.due, t) {
		p.due = append(p.due, t)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run probes at once, then every Every and after each deployment's end,
// until ctx is done.
func (p *HostProber) Run(ctx context.Context) {
	p.init()
	tick := time.NewTicker(p.Every)
	defer tick.Stop()
	p.probeAll(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			p.probeAll(ctx)
		case <-p.wake:
			p.probeDue(ctx)
		}
	}
}

// targets are this node's host targets that have a health check, in the
// configuration's order.
func (p *HostProber) targets(cfg *config.Config) []*config.Environment {
	var out []*config.Environment
	for _, e := range cfg.Environments() {
		if !e.HasHosts() || !slices.Contains(e.Hosts, p.Node) {
			continue
		}
		f, _ := e.Target()
		he, err := cfg.Lookup(f, e.HostTarget(p.Node))
		if err == nil && he.HealthCheck != nil {
			out = append(out, he)
		}
	}
	return out
}

// probeAll probes every target of this node's host not being deployed.
func (p *HostProber) probeAll(ctx context.Context) {
	for _, env := range p.targets(p.Config()) {
		if ctx.Err() != nil {
			return
		}
		f, e := env.Target()
		if p.Busy != nil && p.Busy(store.Target{Fraise: f, Environment: e}) {
			continue
		}
		p.probe(ctx, env)
	}
}

// probeDue probes the targets whose deployment ended since the last call.
func (p *HostProber) probeDue(ctx context.Context) {
	p.mu.Lock()
	due := p.due
	p.due = nil
	p.mu.Unlock()
	cfg := p.Config()
	for _, t := range due {
		if ctx.Err() != nil {
			return
		}
		if env, err := cfg.Lookup(t.Fraise, t.Environment); err == nil && env.HealthCheck != nil {
			p.probe(ctx, env)
		}
	}
}

// probe runs env's health check once, within Timeout, and records it.
func (p *HostProber) probe(ctx context.Context, env *config.Environment) {
	f, e := env.Target()
	pctx, cancel := context.WithTimeout(ctx, p.Timeout)
	err := deploy.CheckHealth(pctx, p.Collab, env)
	cancel()
	if ctx.Err() != nil {
		return
	}
	h := store.HostHealth{Target: store.Target{Fraise: f, Environment: e}, Node: p.Node, Healthy: err == nil}
	if err != nil {
		// CheckHealth's error is already scrubbed of the configuration's
		// secrets; the store caps its length.
		h.Detail = err.Error()
	}
	if err := p.Store.RecordHostHealth(ctx, h); err != nil && ctx.Err() == nil {
		p.Log.Warn("record the health of this node's host", "fraise", f, "environment", e, "err", err)
	}
}
