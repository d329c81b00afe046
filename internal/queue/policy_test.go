package queue

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// TestRolloutPolicy: an environment's hosts and rollout: become the
// policy the store keeps, the migration host first and defaults resolved;
// the heartbeat is a sixth of the shortest node_timeout, at least 1s.
func TestRolloutPolicy(t *testing.T) {
	hosts := []string{"web-1", "web-2", "web-3"}
	for _, tc := range []struct {
		name    string
		rollout *config.Rollout
		want    store.RolloutPolicy
		beat    time.Duration
	}{
		{"defaults", nil, store.RolloutPolicy{Hosts: hosts, Batch: 1, MigrateHost: "web-1",
			NodeTimeout: 30 * time.Second, ClaimTimeout: 2 * time.Minute}, 5 * time.Second},
		{"migrate_on moves its host first", &config.Rollout{MigrateOn: "web-2", Batch: 2, Pause: config.Duration(time.Second)},
			store.RolloutPolicy{Hosts: []string{"web-2", "web-1", "web-3"}, Batch: 2, Pause: time.Second, MigrateHost: "web-2",
				NodeTimeout: 30 * time.Second, ClaimTimeout: 2 * time.Minute}, 5 * time.Second},
		{"timed canary, short node timeout", &config.Rollout{Canary: true, CanaryWait: "30s", NodeTimeout: config.Duration(3 * time.Second),
			ClaimTimeout: config.Duration(time.Minute)},
			store.RolloutPolicy{Hosts: hosts, Canary: true, CanaryWait: 30 * time.Second, Batch: 1, MigrateHost: "web-1",
				NodeTimeout: 3 * time.Second, ClaimTimeout: time.Minute}, time.Second},
		{"manual canary", &config.Rollout{Canary: true, CanaryWait: "manual", NodeTimeout: config.Duration(12 * time.Second)},
			store.RolloutPolicy{Hosts: hosts, Canary: true, CanaryManual: true, Batch: 1, MigrateHost: "web-1",
				NodeTimeout: 12 * time.Second, ClaimTimeout: 2 * time.Minute}, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := &config.Environment{Name: "production", Hosts: hosts, Rollout: tc.rollout}
			got, ok := RolloutPolicy(env)
			if !ok {
				t.Fatal("no policy for an environment with hosts")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("policy (-want +got):\n%s", diff)
			}
			if !HasHosts(env) {
				t.Error("HasHosts false for an environment with hosts")
			}
			cfg := &config.Config{Fraises: map[string]*config.Fraise{"hello": {Name: "hello",
				Environments: map[string]*config.Environment{"production": env}}}}
			if got := HeartbeatEvery(cfg); got != tc.beat {
				t.Errorf("heartbeat every %s, want %s", got, tc.beat)
			}
			host := &config.Environment{Name: "production@web-2", Hosts: hosts, Host: "web-2", HostOf: env, Rollout: tc.rollout}
			if HasHosts(host) {
				t.Error("HasHosts true for one host's copy")
			}
		})
	}
	if _, ok := RolloutPolicy(&config.Environment{Name: "production"}); ok {
		t.Error("a policy for an environment without hosts")
	}
}
