package queue

import (
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// HasHosts says whether env deploys through rollouts across hosts: it
// lists hosts and is not itself one host's copy (env@host).
func HasHosts(env *config.Environment) bool { return env.HasHosts() }

// RolloutPolicy is the policy a push to env rolls out with: config's
// RolloutSettings (the migration host first, every default resolved) in
// the store's shape. ok is false for an environment without hosts.
func RolloutPolicy(env *config.Environment) (p store.RolloutPolicy, ok bool) {
	s, ok := env.RolloutSettings()
	if !ok {
		return store.RolloutPolicy{}, false
	}
	return store.RolloutPolicy(s), true
}

// HeartbeatEvery is how often a node heartbeats under cfg: a sixth of the
// shortest node_timeout of an environment with hosts (the default when
// none has), at least a second, so that a live node is never judged dead
// between two beats.
func HeartbeatEvery(cfg *config.Config) time.Duration {
	shortest := config.DefaultNodeTimeout.D()
	for _, env := range cfg.Environments() {
		if p, ok := RolloutPolicy(env); ok {
			shortest = min(shortest, p.NodeTimeout)
		}
	}
	return max(time.Second, shortest/6)
}

// splitHost splits a per-host target's environment name (production@web-1).
func splitHost(env string) (base, host string) { return config.SplitHost(env) }
