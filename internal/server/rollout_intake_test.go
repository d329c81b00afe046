package server

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// rolloutIntakeConfig has one environment on three hosts, web-2 the
// migration host, and one on this machine only.
const rolloutIntakeConfig = `
git:
  github: {secret: gh-secret-0123456789}
state:
  url: postgres://unused@localhost/state
fraises:
  hello:
    type: api
    repository: Codertocat/Hello-World
    environments:
      production:
        branch: main
        git_repo: /srv/git/hello.git
        app_path: /srv/hello
        hosts: [web-1, web-2, web-3]
        rollout: {migrate_on: web-2, batch: 2}
  worker:
    type: api
    repository: Codertocat/Hello-World
    environments:
      production: {branch: main, git_repo: /srv/git/hello.git, app_path: /srv/worker}
`

// TestIntakeQueuesARollout: a push to an environment with hosts is
// accepted as one rollout across them, the migration host first, and the
// answer names it; an environment without hosts still gets a deployment.
// (PostgreSQL: a rollout needs the shared state.)
func TestIntakeQueuesARollout(t *testing.T) {
	cfg, err := config.Parse("fraises.yaml", []byte(rolloutIntakeConfig),
		config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	db, err := store.Open(context.Background(), store.Options{URL: pgServer.Database(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv, err := New(Options{Config: cfg, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	f := &intakeFixture{t: t, db: db, srv: srv, url: hs.URL}

	status, a := f.send(githubDelivery("push", "gh-rollout-1", "gh-secret-0123456789", pushing(payload(t, "github_push"), 1)))
	if status != 202 || len(a.Deployments) != 2 {
		t.Fatalf("push: %d %+v", status, a)
	}
	byTarget := map[string]queuedAnswer{}
	for _, q := range a.Deployments {
		byTarget[q.Fraise+"/"+q.Environment] = q
	}
	hello, worker := byTarget["hello/production"], byTarget["worker/production"]
	if hello.RolloutID == 0 || hello.DeploymentID != 0 {
		t.Fatalf("hello/production answered %+v, want a rollout and no deployment", hello)
	}
	if worker.RolloutID != 0 || worker.DeploymentID == 0 {
		t.Fatalf("worker/production answered %+v, want a deployment", worker)
	}
	ro, err := db.Rollout(context.Background(), hello.RolloutID)
	if err != nil {
		t.Fatal(err)
	}
	want := store.RolloutPolicy{Hosts: []string{"web-2", "web-1", "web-3"}, Batch: 2, MigrateHost: "web-2",
		NodeTimeout: ro.Policy.NodeTimeout, ClaimTimeout: ro.Policy.ClaimTimeout}
	if diff := cmp.Diff(want, ro.Policy); diff != "" || ro.WebhookID == nil || *ro.WebhookID != a.WebhookEventID {
		t.Errorf("rollout %+v: policy (-want +got):\n%s", ro, diff)
	}
}
