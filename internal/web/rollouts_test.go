package web_test

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
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

// TestOverviewHostHealth: the overview shows the health each host's own
// node recorded, with its age and that node's name, and never a stale
// record or one whose node is dead as healthy.
func TestOverviewHostHealth(t *testing.T) {
	const yaml = `state: {url: "postgres://unused@127.0.0.1:1/fraisier"}
fraises:
  shop:
    type: api
    repository: acme/shop
    environments:
      production:
        branch: main
        git_repo: /srv/git/shop.git
        app_path: /srv/shop
        hosts: [web-1, web-2, web-3, web-4, web-5]
        health_check: {url: "http://127.0.0.1:9/health"}
      staging: {branch: dev, git_repo: /srv/git/shop.git, app_path: /srv/shop-staging}
`
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := store.Open(ctx, store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	past, err := store.Open(ctx, store.Options{Path: path, Now: func() time.Time { return time.Now().Add(-10 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { past.Close() })
	for _, n := range []string{"web-1", "web-2", "web-3"} {
		if err := db.Heartbeat(ctx, store.Node{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	if err := past.Heartbeat(ctx, store.Node{Name: "web-4"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, h := range []store.HostHealth{
		{Node: "web-1", Healthy: true, CheckedAt: now.Add(-8 * time.Second)},
		{Node: "web-2", Healthy: false, CheckedAt: now.Add(-3 * time.Second), Detail: "GET http://127.0.0.1:9/health: status 503, want 200"},
		{Node: "web-3", Healthy: true, CheckedAt: now.Add(-2 * time.Minute)},
		{Node: "web-4", Healthy: true, CheckedAt: now.Add(-10 * time.Minute)},
	} {
		h.Target = store.Target{Fraise: "shop", Environment: "production@" + h.Node}
		if err := db.RecordHostHealth(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	_, body := dashboard(t, db, yaml, nil)("/ui/")
	row := func(env string) string {
		return regexp.MustCompile(`(?s)<tr id="target-shop-` + env + `".*?</tr>`).FindString(body)
	}
	for _, tc := range []struct {
		name, env string
		want      []string
		not       []string
	}{
		{"fresh and healthy", "production@web-1", []string{`h-healthy s-succeeded">healthy</span>`, `checked <time datetime="`, `>8 s ago</time> by node web-1`}, nil},
		{"fresh and unhealthy", "production@web-2", []string{`>unhealthy</span>: GET http://127.0.0.1:9/health: status 503, want 200`, ` by node web-2`}, nil},
		{"stale", "production@web-3", []string{`>unknown</span>: last checked 2m ago`}, []string{"healthy</span>", "checked <time"}},
		{"node dead", "production@web-4", []string{`>unknown</span>: last checked 10m ago; node web-4 is not alive`}, []string{"healthy</span>"}},
		{"never checked", "production@web-5", []string{`>unknown</span>: not checked yet`}, nil},
		{"no hosts: as before", "staging", []string{`<td data-label="Health now" class="health">—</td>`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := row(tc.env)
			for _, w := range tc.want {
				if !strings.Contains(r, w) {
					t.Errorf("row lacks %q:\n%s", w, r)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(r, w) {
					t.Errorf("row has %q:\n%s", w, r)
				}
			}
		})
	}
}
