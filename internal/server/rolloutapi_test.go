package server

import (
	"net/http"
	"testing"
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
