package queue

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// The rollout defaults of the design (issue 18); config resolves the same
// ones once its RolloutSettings lands, and this file then converts that.
const (
	defaultNodeTimeout  = 30 * time.Second
	minNodeTimeout      = 3 * time.Second
	defaultClaimTimeout = 2 * time.Minute
)

// HasHosts says whether env deploys through rollouts across hosts: it
// lists hosts and is not itself one host's copy (env@host).
func HasHosts(env *config.Environment) bool { return len(env.Hosts) > 0 && env.Host == "" }

// RolloutPolicy is the policy a push to env rolls out with: its hosts in
// order with the migration host moved first, and every default resolved.
// ok is false for an environment without hosts.
func RolloutPolicy(env *config.Environment) (p store.RolloutPolicy, ok bool) {
	if env.HostOf != nil {
		env = env.HostOf
	}
	if len(env.Hosts) == 0 {
		return store.RolloutPolicy{}, false
	}
	r := config.Rollout{}
	if env.Rollout != nil {
		r = *env.Rollout
	}
	p = store.RolloutPolicy{Canary: r.Canary, Batch: max(r.Batch, 1), Pause: r.Pause.D(), MigrateHost: r.MigrateOn,
		NodeTimeout: r.NodeTimeout.D(), ClaimTimeout: r.ClaimTimeout.D()}
	p.CanaryWait, p.CanaryManual = canaryWait(r.CanaryWait)
	if p.MigrateHost == "" || !slices.Contains(env.Hosts, p.MigrateHost) {
		p.MigrateHost = env.Hosts[0]
	}
	if p.NodeTimeout == 0 {
		p.NodeTimeout = defaultNodeTimeout
	}
	p.NodeTimeout = max(p.NodeTimeout, minNodeTimeout)
	if p.ClaimTimeout == 0 {
		p.ClaimTimeout = defaultClaimTimeout
	}
	others := slices.DeleteFunc(slices.Clone(env.Hosts), func(h string) bool { return h == p.MigrateHost })
	p.Hosts = append([]string{p.MigrateHost}, others...)
	return p, true
}

// canaryWait reads canary_wait, which config validation has checked:
// empty, manual, a Go duration or a bare number of seconds.
func canaryWait(s string) (time.Duration, bool) {
	switch s = strings.TrimSpace(s); s {
	case "":
		return 0, false
	case "manual":
		return 0, true
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d, false
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(n * float64(time.Second)), false
	}
	return 0, false
}

// HeartbeatEvery is how often a node heartbeats under cfg: a sixth of the
// shortest node_timeout of an environment with hosts, at least a second,
// so that a live node is never judged dead between two beats.
func HeartbeatEvery(cfg *config.Config) time.Duration {
	shortest := defaultNodeTimeout
	for _, env := range cfg.Environments() {
		if p, ok := RolloutPolicy(env); ok {
			shortest = min(shortest, p.NodeTimeout)
		}
	}
	return max(time.Second, shortest/6)
}

// splitHost splits a per-host target's environment name (production@web-1).
func splitHost(env string) (base, host string) {
	base, host, _ = strings.Cut(env, config.HostSep)
	return base, host
}
