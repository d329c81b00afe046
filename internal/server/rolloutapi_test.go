package server

import (
	"net/http"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestRolloutAPIAccess: the nodes and rollouts API reads like the read
// API (a read token or server.api_token, never a deploy-only token), and
// resuming needs a deploy token; ids are checked before the store is read.
func TestRolloutAPIAccess(t *testing.T) {
	f := newAPIFixture(t, "1000", "1000")
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
	}{
		{"nodes without a token", "GET", "/api/nodes", "", http.StatusUnauthorized},
		{"rollouts with a deploy-only token", "GET", "/api/rollouts", f.tokens["deployer"], http.StatusUnauthorized},
		{"one rollout with a wrong token", "GET", "/api/rollouts/1", "wrong", http.StatusUnauthorized},
		{"a bad id", "GET", "/api/rollouts/x", f.tokens["reader"], http.StatusBadRequest},
		{"a bad limit", "GET", "/api/rollouts?limit=0", f.tokens["reader"], http.StatusBadRequest},
		{"a bad active", "GET", "/api/rollouts?active=maybe", f.tokens["reader"], http.StatusBadRequest},
		{"resume without a token", "POST", "/api/rollouts/1/resume", "", http.StatusUnauthorized},
		{"resume with server.api_token", "POST", "/api/rollouts/1/resume", "read-only-token-0123456789", http.StatusForbidden},
		{"resume a bad id", "POST", "/api/rollouts/0/resume", f.tokens["deployer"], http.StatusBadRequest},
		{"resume with a revoked token", "POST", "/api/rollouts/1/resume", f.tokens["revoked"], http.StatusUnauthorized},
	} {
		var status int
		var body string
		if tc.method == "GET" {
			status, body = f.get(tc.path, tc.token)
		} else {
			status, _, body = f.post(tc.path, tc.token, "{}")
		}
		if status != tc.status {
			t.Errorf("%s: %s %s: %d %s, want %d", tc.name, tc.method, tc.path, status, body, tc.status)
		}
	}
}

// TestRolloutViewJudgesNodesByTheRolloutsTimeout: a rollout's hosts are
// alive or dead as the rollout itself judges them, by its node_timeout,
// not by the largest one configured.
func TestRolloutViewJudgesNodesByTheRolloutsTimeout(t *testing.T) {
	now := time.Now()
	nodes := map[string]store.Node{"web-1": {Name: "web-1", HeartbeatAt: now.Add(-10 * time.Second)}}
	for _, tc := range []struct {
		policy time.Duration
		alive  bool
	}{
		{policy: 5 * time.Second, alive: false},
		{policy: time.Minute, alive: true},
		{policy: 0, alive: true}, // no policy timeout recorded: the one given (30 s)
	} {
		r := store.Rollout{ID: 1, Policy: store.RolloutPolicy{NodeTimeout: tc.policy}, Hosts: []store.RolloutHost{{Host: "web-1"}}}
		v := RolloutView(r, nodes, now, 30*time.Second)
		if got := v.Hosts[0].NodeAlive; got == nil || *got != tc.alive {
			t.Errorf("node_timeout %s: alive %v, want %v", tc.policy, got, tc.alive)
		}
	}
}
