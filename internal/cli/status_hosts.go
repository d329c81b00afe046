package cli

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

// The parts of status that show environments with hosts: one row per
// host (env@host) with whether its node is alive, and the progress of
// each active rollout. An environment without hosts shows as before.

// statusHostView is what status reads of nodes and rollouts for the
// environments with hosts it shows.
type statusHostView struct {
	node    string // this machine's node name: live checks run for its host only
	nodes   map[string]store.Node
	timeout time.Duration
	cfg     *config.Config
	// health is what each host's node recorded of its health.
	health server.HostHealths
}

// statusNodeName is this process's node name as serve would take it:
// $FRAISIER_NODE, server.node, else the machine's host name.
func (a *app) statusNodeName(cfg *config.Config) string {
	if n := a.env.get("FRAISIER_NODE"); n != "" {
		return n
	}
	if cfg.Server.Node != "" {
		return cfg.Server.Node
	}
	h, _ := os.Hostname()
	return h
}

// shownEnv is one configured environment status shows, with the host
// whose row it is ("" for an environment without hosts).
type shownEnv struct {
	fraise *config.Fraise
	env    *config.Environment // the per-host copy for a host row
	host   string
}

// shownEnvironments are the configured environments status shows for o,
// in order: fraise, environment, then hosts as configured.
func shownEnvironments(cfg *config.Config, o statusOptions) []shownEnv {
	var out []shownEnv
	for _, fname := range cfg.FraiseNames() {
		if o.fraise != "" && fname != o.fraise {
			continue
		}
		f := cfg.Fraises[fname]
		for _, ename := range f.EnvironmentNames() {
			e := f.Environments[ename]
			if !e.HasHosts() {
				if o.env == "" || o.env == ename {
					out = append(out, shownEnv{fraise: f, env: e})
				}
				continue
			}
			for _, h := range e.Hosts {
				name := e.HostTarget(h)
				if o.env != "" && o.env != ename && o.env != name {
					continue
				}
				if he, err := cfg.Lookup(fname, name); err == nil {
					out = append(out, shownEnv{fraise: f, env: he, host: h})
				}
			}
		}
	}
	return out
}

// anyHost says whether status shows a host row.
func anyHost(shown []shownEnv) bool {
	for _, s := range shown {
		if s.host != "" {
			return true
		}
	}
	return false
}

// wideEnv says whether o.env must be matched after reading every
// environment of the fraise: it names an environment with hosts, or one
// host of it, whose targets are env@host.
func wideEnv(cfg *config.Config, o statusOptions) bool {
	if o.env == "" {
		return false
	}
	base, host := config.SplitHost(o.env)
	if host != "" {
		return true
	}
	e, err := cfg.Lookup(o.fraise, base)
	return err == nil && e.HasHosts()
}

// keepEnv keeps the states whose environment is env, or one of its hosts.
func keepEnv(states []store.FraiseState, env string) []store.FraiseState {
	var out []store.FraiseState
	for _, s := range states {
		if s.Environment == env || baseEnv(s.Environment) == env {
			out = append(out, s)
		}
	}
	return out
}

// readHostView reads the nodes and the health their hosts' nodes
// recorded, for the NODE and HEALTH columns.
func (a *app) readHostView(ctx context.Context, cfg *config.Config, db *store.DB) (*statusHostView, error) {
	hh, err := server.ReadHostHealths(ctx, db, cfg.NodeTimeout())
	if err != nil {
		return nil, withCode(ExitState, err)
	}
	return &statusHostView{node: a.statusNodeName(cfg), nodes: hh.Nodes, timeout: cfg.NodeTimeout(), cfg: cfg, health: hh}, nil
}

// alive says whether host's node is alive; nil when it never reported.
func (v *statusHostView) alive(host string, now time.Time) *bool {
	n, ok := v.nodes[host]
	if !ok {
		return nil
	}
	alive := server.NodeView(n, now, v.timeout).Alive
	return &alive
}

// activeRollouts are the active rollouts of the environments with hosts
// status shows, with their progress.
func activeRollouts(ctx context.Context, db *store.DB, shown []shownEnv, v *statusHostView) ([]server.RolloutJSON, error) {
	seen := map[store.Target]bool{}
	out := []server.RolloutJSON{}
	now := time.Now()
	for _, s := range shown {
		if s.host == "" {
			continue
		}
		t := store.Target{Fraise: s.fraise.Name, Environment: s.env.Base().Name}
		if seen[t] {
			continue
		}
		seen[t] = true
		rs, err := db.Rollouts(ctx, store.RolloutFilter{Target: t, Active: true, Limit: 10})
		if err != nil {
			return nil, withCode(ExitState, err)
		}
		for _, r := range rs {
			out = append(out, server.RolloutView(r, v.nodes, now, v.timeout))
		}
	}
	return out, nil
}

// nodeCell is a row's NODE cell: alive, dead, or unknown (the node never
// reported) for a host row, - else.
func nodeCell(r targetStatusJSON) string {
	if r.Host == "" {
		return "-"
	}
	return nodeWord(r.NodeAlive)
}

// healthCell is a row's HEALTH cell: healthy or unhealthy with the age
// of the probe that says so, else unknown, for a host row; - else.
func healthCell(r targetStatusJSON, now time.Time) string {
	switch {
	case r.Host == "":
		return "-"
	case r.Health == "":
		return store.HealthUnknown
	case r.Health != store.HealthUnknown && r.HealthCheckedAt != nil:
		return r.Health + " " + store.Ago(max(now.Sub(*r.HealthCheckedAt), 0)) + " ago"
	}
	return r.Health
}

// healthNote is what the NOTE column says of a host's health: why it is
// unhealthy, or when it was last checked when that is too old to believe.
func healthNote(r targetStatusJSON) string {
	if r.Health == store.HealthUnhealthy || r.Health == store.HealthUnknown && r.HealthCheckedAt != nil {
		return "health: " + oneLine(r.HealthDetail, 60)
	}
	return ""
}

// printRolloutLines writes one progress line per active rollout, after
// the status table.
func (a *app) printRolloutLines(rs []server.RolloutJSON) {
	for _, r := range rs {
		fmt.Fprintf(a.streams.Out, "%s/%s %s\n", a.shown(r.Fraise), a.shown(r.Environment), a.shown(r.Progress))
	}
}

// withNode puts the NODE and HEALTH cells after ENVIRONMENT when the
// table has host rows, and leaves the cells as they are otherwise.
func withNode(hosts bool, cells []string, node, health string) []string {
	if !hosts {
		return cells
	}
	return slices.Insert(cells, 2, node, health)
}

// hostDeployments is history's query: f as is without host; with host,
// only the deployments of env@host targets: one query when f names the
// environment, else one per target of that host, merged newest first.
func hostDeployments(ctx context.Context, db *store.DB, f store.DeploymentFilter, host string) ([]store.Deployment, error) {
	if host == "" {
		return db.Deployments(ctx, f)
	}
	if f.Environment != "" {
		f.Environment = baseEnv(f.Environment) + config.HostSep + host
		return db.Deployments(ctx, f)
	}
	// The host's targets are those the state records (one row each):
	// each is read through the history's target index, then merged,
	// rather than paging through every deployment of every target.
	states, err := db.FraiseStates(ctx, f.Fraise, "")
	if err != nil {
		return nil, err
	}
	var out []store.Deployment
	for _, st := range states {
		if hostOfEnv(st.Environment) != host {
			continue
		}
		one := f
		one.Fraise, one.Environment = st.Fraise, st.Environment
		ds, err := db.Deployments(ctx, one)
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
	}
	slices.SortFunc(out, func(x, y store.Deployment) int { return cmp.Compare(y.ID, x.ID) })
	return out[:min(len(out), max(f.Limit, 1))], nil
}
