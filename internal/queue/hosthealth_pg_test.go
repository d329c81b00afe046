package queue

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// healthSecret is a database password: a health command's output that
// quotes it must be recorded scrubbed.
const healthSecret = "s3cret-pw-4242"

// hostHealthYAML: api (hosts web-1, web-2) is checked by URL on the test's
// HTTP endpoint; worker (web-1) by a command that prints the database URL
// and fails; quiet (web-1) has no health check.
func hostHealthYAML(stateURL, origin, healthURL string) string {
	dbURL := "postgres://app:" + healthSecret + "@db.invalid/app"
	return fmt.Sprintf(`state:
  url: %[1]s
fraises:
  api:
    type: api
    environments:
      production:
        branch: main
        git_repo: %[2]s
        app_path: ${APP_ROOT}/api
        hosts: [web-1, web-2]
        health_check: {url: "%[3]s", timeout: 1s}
  worker:
    type: api
    environments:
      production:
        branch: main
        git_repo: %[2]s
        app_path: ${APP_ROOT}/worker
        hosts: [web-1]
        database:
          tool: command
          url: %[4]s
          up: ["true"]
          down: ["true"]
          current: [echo, "0"]
        health_check: {command: [sh, -c, 'echo "cannot reach $1"; exit 3', sh, "%[4]s"]}
  quiet:
    type: api
    environments:
      production:
        branch: main
        git_repo: %[2]s
        app_path: ${APP_ROOT}/quiet
        hosts: [web-1]
`, stateURL, origin, healthURL, dbURL)
}

// TestHostHealthProbes: a node started as fraisier node starts one
// (NewRolloutLoop, RunRolloutLoop) records at once the health of its own
// host's targets that have a health check, and of no other host's;
// again right after a deployment of one ends, long before its period;
// each probe is bounded by its timeout; a detail that quotes a secret of
// the configuration is recorded scrubbed.
func TestHostHealthProbes(t *testing.T) {
	var mode atomic.Value // "ok", "down" or "hang"
	mode.Store("ok")
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case "down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "hang":
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(srv.Close)

	db, loop, sha := startHealthNode(t, srv.URL+"/health")
	ctx := context.Background()

	api := store.Target{Fraise: "api", Environment: "production@web-1"}
	worker := store.Target{Fraise: "worker", Environment: "production@web-1"}
	read := func() map[store.Target]store.HostHealth { return recordedHealth(t, db) }
	waitFor(t, "the first probes", 10*time.Second, func() bool { return len(read()) == 2 })
	got := read()
	if h := got[api]; !h.Healthy || h.Node != "web-1" || h.Detail != "" {
		t.Errorf("api on web-1: %+v, want healthy by web-1", h)
	}
	if h := got[worker]; h.Healthy || !strings.Contains(h.Detail, deploy.Redacted) || strings.Contains(h.Detail, healthSecret) {
		t.Errorf("worker on web-1: %+v, want unhealthy, its output scrubbed", h)
	}
	for t2 := range got {
		if t2 != api && t2 != worker {
			t.Errorf("web-1 recorded %s, not one of its own targets with a health check", t2)
		}
	}

	tests := []struct {
		name   string
		mode   string
		deploy bool // a deployment of api on web-1 ends first (else After alone)
		want   func(store.HostHealth) bool
		within time.Duration
	}{
		{"a deployment ended", "ok", true, func(h store.HostHealth) bool { return h.Healthy }, 30 * time.Second},
		{"down after it", "down", false, func(h store.HostHealth) bool { return !h.Healthy && strings.Contains(h.Detail, "503") }, 3 * time.Second},
		{"hanging: bounded by the timeout", "hang", false, func(h store.HostHealth) bool { return !h.Healthy }, 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := read()[api].CheckedAt
			mode.Store(tc.mode)
			start := time.Now()
			if tc.deploy {
				q, err := db.Enqueue(ctx, store.QueueRequest{Target: api, SHA: sha, Ref: "refs/heads/main", Trigger: store.TriggerCLI, Actor: "test"})
				if err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the deployment to end", tc.within, func() bool {
					d, err := db.Deployment(ctx, q.DeploymentID)
					return err == nil && d.FinishedAt != nil
				})
				if d, _ := db.Deployment(ctx, q.DeploymentID); d.Status != store.StatusSucceeded {
					t.Fatalf("deployment %s: %s", d.Status, d.Error)
				}
			} else {
				loop.Hosts.After(api)
			}
			waitFor(t, "a new probe of api on web-1", tc.within, func() bool { return read()[api].CheckedAt.After(before) })
			if h := read()[api]; !tc.want(h) {
				t.Errorf("recorded %+v", h)
			}
			t.Logf("recorded %s after the request", time.Since(start).Round(time.Millisecond))
		})
	}
}

// startHealthNode starts node web-1 over a fresh PostgreSQL database as
// fraisier node starts one, with hostHealthYAML probing healthURL, and
// returns its store, its rollout loop and a commit of the origin.
func startHealthNode(t *testing.T, healthURL string) (*store.DB, *RolloutLoop, string) {
	t.Helper()
	root := t.TempDir()
	repo := testenv.NewOrigin(t, root)
	repo.Write("VERSION", "v1\n")
	sha := repo.Commit("v1")
	cfgPath := filepath.Join(root, "fraises.yaml")
	stateURL := pgServer.Database(t)
	if err := os.WriteFile(cfgPath, []byte(hostHealthYAML(stateURL, repo.Dir, healthURL)), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"APP_ROOT": filepath.Join(root, "web-1")}
	cfg, err := config.Load(cfgPath, config.Options{LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	cfg.State.Dir = filepath.Join(root, "web-1", "state")
	db, err := store.Open(context.Background(), store.Options{URL: stateURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	owner, err := deploy.CurrentOwner()
	if err != nil {
		t.Fatal(err)
	}
	owner.Host = "web-1"
	log := testLogger(t)
	runner := &Runner{Store: db, Config: cfg, Collab: deploy.RealCollaborators(nil), Owner: owner, Node: "web-1", Log: log, Poll: ListenedPoll}
	loop := NewRolloutLoop(runner, db, store.Node{Name: "web-1", Hostname: "test", Version: "test", PID: os.Getpid()}, true, log)
	// Only the start and deployments' ends may probe within the test.
	loop.Hosts.Every, loop.Hosts.Timeout = time.Hour, time.Second
	ctx, cancel := context.WithCancel(context.Background())
	workDone := make(chan struct{})
	go func() { defer close(workDone); runner.Run(ctx) }()
	loopDone := RunRolloutLoop(ctx, loop, runner, log)
	t.Cleanup(func() { cancel(); <-workDone; <-loopDone })

	return db, loop, sha
}

// recordedHealth is the health recorded in db, by target.
func recordedHealth(t *testing.T, db *store.DB) map[store.Target]store.HostHealth {
	t.Helper()
	hs, err := db.HostHealth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[store.Target]store.HostHealth{}
	for _, h := range hs {
		m[h.Target] = h
	}
	return m
}
