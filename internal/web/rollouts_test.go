package web_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// hostsConfig has an environment on two hosts beside one without hosts.
// Its state.url only satisfies validation: the dashboard reads the store
// it is given.
const hostsConfig = `state: {url: "postgres://unused@127.0.0.1:1/fraisier"}
fraises:
  shop:
    type: api
    repository: acme/shop
    environments:
      production: {branch: main, git_repo: /srv/git/shop.git, app_path: /srv/shop, hosts: [web-1, web-2]}
      staging: {branch: dev, git_repo: /srv/git/shop.git, app_path: /srv/shop-staging}
`

// TestRolloutPages checks the overview's host rows with their node's
// liveness, the rollouts page and one rollout's page, over a rollout
// started for real: web-1 deploying (its node alive), web-2 pending (its
// node never reported).
func TestRolloutPages(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg, err := config.Parse("fraises.yaml", []byte(hostsConfig), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Heartbeat(ctx, store.Node{Name: "web-1", Hostname: "h1", Version: "v1"}); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	settings, _ := cfg.Fraises["shop"].Environments["production"].RolloutSettings()
	policy := store.RolloutPolicy(settings)
	q, err := db.Enqueue(ctx, store.QueueRequest{Target: store.Target{Fraise: "shop", Environment: "production"},
		SHA: shaOK, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "alice", Rollout: &policy})
	if err != nil {
		t.Fatalf("enqueue the rollout: %v", err)
	}
	now := time.Now()
	if _, err := db.AdvanceRollouts(ctx, now, now.Add(-time.Hour)); err != nil {
		t.Fatalf("advance: %v", err)
	}
	get := dashboard(t, db, hostsConfig, nil)
	id := fmt.Sprint(q.RolloutID)
	for _, tc := range []struct {
		path   string
		status int
		want   []string
	}{
		{"/ui/", 200, []string{`id="target-shop-production@web-1"`, `<span class="node node-alive" title="this host's node">node alive</span>`,
			`id="target-shop-production@web-2"`, "node unknown", `id="target-shop-staging"`, `href="/ui/rollouts"`}},
		{"/ui/rollouts", 200, []string{`id="rollout-` + id + `"`, "shop", "production", shaOK[:12], "0/2", "1 of 2", "running"}},
		{"/ui/rollouts/" + id, 200, []string{`id="host-web-1"`, "deploying", `<span class="node node-alive">alive</span>`,
			`id="host-web-2"`, "pending", `<span class="node node-unknown">unknown</span>`, "0/2 hosts, batch 1 of 2"}},
		{"/ui/rollouts/999999", 404, nil},
		{"/ui/rollouts/x", 400, nil},
	} {
		status, body := get(tc.path)
		if status != tc.status {
			t.Errorf("GET %s: %d, want %d\n%s", tc.path, status, tc.status, body)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %q", tc.path, w)
			}
		}
	}
}
