package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
	pgtest "github.com/fraiseql/fraisier/internal/testenv/pg"
)

// pgServer is the test binary's PostgreSQL cluster, started by the first
// test that needs it and stopped by TestMain.
var pgServer pgtest.Server

// The rollout tests run three nodes (web-1, web-2, web-3) in this process,
// each with its own state connection, configuration (app_path and node by
// ${VAR}), runner and rollout loop, against one real PostgreSQL. The fraise
// has no systemd unit, and no health check unless fixtureOptions.health
// gives each host one: a rollout's coordination is under test, not the
// engine's steps. Its install fails on the host whose
// name a commit lists in fail-on-<host>; its migration tool is a script of
// the repository that logs each run to a file all three nodes share.

// migrateScript is the command migration tool: up counts the revision up,
// down sets it, current prints it; up and down log who ran them.
const migrateScript = `#!/bin/sh
set -e
rev="$MIGRATE_DIR/revision"
case "$1" in
up) n=$(cat "$rev" 2>/dev/null || echo 0); echo $((n+1)) > "$rev"; echo "up $2" >> "$MIGRATE_DIR/runs" ;;
down) echo "$3" > "$rev"; echo "down $2 $3" >> "$MIGRATE_DIR/runs" ;;
current) cat "$rev" 2>/dev/null || echo 0 ;;
esac
`

// fixtureOptions vary the fixture's fraises.yaml; the zero value is the
// plain rollout the tests above run.
type fixtureOptions struct {
	// rollout is appended to the rollout: map, after node_timeout
	// (", canary: true, canary_wait: 2s").
	rollout string
	// health gives each host its own HTTP health endpoint on loopback
	// (hostApp) and the environment a health_check of ${HEALTH_URL}.
	health bool
}

func rolloutYAML(origin, url string, o fixtureOptions) string {
	health := ""
	if o.health {
		health = "        health_check: {url: \"${HEALTH_URL}\", timeout: 1s}\n"
	}
	return fmt.Sprintf(`state:
  url: %s
fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: ${APP_ROOT}/hello
        hosts: [web-1, web-2, web-3]
        rollout: {node_timeout: 4s%s}
%s        install:
          command: [test, "!", -e, "fail-on-${NODE}"]
        database:
          tool: command
          url: postgres://unused@localhost/app
          up: [sh, migrate.sh, up, "${NODE}"]
          down: [sh, migrate.sh, down, "${NODE}", "{revision}"]
          current: [sh, migrate.sh, current]
          env:
            MIGRATE_DIR: ${MIGRATE_DIR}
`, url, origin, o.rollout, health)
}

type rolloutFixture struct {
	t       *testing.T
	root    string
	origin  string
	repo    *testenv.Origin
	url     string
	db      *store.DB
	migrate string
	nodes   []*testNode
	// apps are the hosts' health endpoints, by host (with health only).
	apps map[string]*hostApp
}

// testNode is one node: what fraisier node runs, in this process.
type testNode struct {
	name   string
	db     *store.DB
	runner *Runner
	loop   *RolloutLoop
	stop   func()
}

func newRolloutFixture(t *testing.T) *rolloutFixture {
	t.Helper()
	return newRolloutFixtureWith(t, fixtureOptions{})
}

// newRolloutFixtureWith is newRolloutFixture with a varied fraises.yaml.
func newRolloutFixtureWith(t *testing.T, o fixtureOptions) *rolloutFixture {
	t.Helper()
	url := pgServer.Database(t)
	root := t.TempDir()
	f := &rolloutFixture{t: t, root: root, url: url, migrate: filepath.Join(root, "migrate"), apps: map[string]*hostApp{}}
	f.repo = testenv.NewOrigin(t, root)
	f.origin = f.repo.Dir
	if err := os.MkdirAll(f.migrate, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(root, "fraises.yaml")
	if err := os.WriteFile(cfgPath, []byte(rolloutYAML(f.origin, url, o)), 0o644); err != nil {
		t.Fatal(err)
	}
	f.db = f.open()
	for _, name := range []string{"web-1", "web-2", "web-3"} {
		if o.health {
			f.apps[name] = newHostApp(t, filepath.Join(root, name, "hello"))
		}
		f.nodes = append(f.nodes, f.startNode(cfgPath, name))
	}
	return f
}

func (f *rolloutFixture) open() *store.DB {
	f.t.Helper()
	db, err := store.Open(context.Background(), store.Options{URL: f.url})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { db.Close() })
	return db
}

// startNode loads the configuration as node name would, with its own
// APP_ROOT, and runs its runner and rollout loop until the test ends.
func (f *rolloutFixture) startNode(cfgPath, name string) *testNode {
	f.t.Helper()
	vars := map[string]string{"APP_ROOT": filepath.Join(f.root, name), "NODE": name, "MIGRATE_DIR": f.migrate}
	if app := f.apps[name]; app != nil {
		vars["HEALTH_URL"] = app.URL + "/health"
	}
	cfg, err := config.Load(cfgPath, config.Options{LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }})
	if err != nil {
		f.t.Fatal(err)
	}
	cfg.State.Dir = filepath.Join(f.root, name, "state")
	owner, err := deploy.CurrentOwner()
	if err != nil {
		f.t.Fatal(err)
	}
	owner.Host = name
	n := &testNode{name: name, db: f.open()}
	log := testLogger(f.t).With("node", name)
	n.runner = &Runner{Store: n.db, Config: cfg, Collab: deploy.RealCollaborators(nil), Owner: owner, Node: name,
		Log: log, Poll: 30 * time.Second}
	n.loop = &RolloutLoop{Store: n.db, Node: store.Node{Name: name, Hostname: "test", Version: "test", PID: os.Getpid(), StartedAt: time.Now()},
		Config: n.runner.CurrentConfig, Collab: n.runner.Collab, Log: log, Listen: true, OnWake: n.runner.Wake,
		Beat: 500 * time.Millisecond}
	n.runner.OnRolloutStep = func(int64) { n.loop.Wake() }
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.runner.Run(ctx) }()
	go func() {
		defer wg.Done()
		<-n.runner.Started()
		if err := n.loop.Run(ctx); err != nil {
			f.t.Errorf("%s's rollout loop: %v", name, err)
		}
	}()
	n.stop = func() { cancel(); wg.Wait() }
	f.t.Cleanup(func() { cancel(); wg.Wait() })
	return n
}

// commit pushes a commit to main with the migration script and the given
// extra files, and returns its SHA.
func (f *rolloutFixture) commit(n int, files ...string) string {
	f.t.Helper()
	f.repo.Write("migrate.sh", migrateScript)
	f.repo.Write("VERSION", fmt.Sprintf("v%d\n", n))
	for _, name := range files {
		f.repo.Write(name, "\n")
	}
	return f.repo.Commit(fmt.Sprintf("v%d", n))
}

// rollout queues a rollout of sha as the intake does for a push, and
// waits for its end.
func (f *rolloutFixture) rollout(sha string) store.Rollout {
	f.t.Helper()
	return f.wait(f.push(sha, nil))
}

// push queues a rollout of sha as the intake does for a push, with the
// configuration's policy as edit changes it (when not nil), and returns
// its id.
func (f *rolloutFixture) push(sha string, edit func(*store.RolloutPolicy)) int64 {
	f.t.Helper()
	ctx := context.Background()
	cfg := f.nodes[0].runner.CurrentConfig()
	env, err := cfg.Lookup("hello", "production")
	if err != nil {
		f.t.Fatal(err)
	}
	p, ok := RolloutPolicy(env)
	if !ok {
		f.t.Fatal("no rollout policy for an environment with hosts")
	}
	if edit != nil {
		edit(&p)
	}
	q, err := f.db.Enqueue(ctx, store.QueueRequest{Target: store.Target{Fraise: "hello", Environment: "production"},
		SHA: sha, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "test", Rollout: &p})
	if err != nil {
		f.t.Fatal(err)
	}
	if q.RolloutID == 0 {
		f.t.Fatalf("queued %+v: no rollout", q)
	}
	return q.RolloutID
}

// wait waits for the end of rollout id.
func (f *rolloutFixture) wait(id int64) store.Rollout {
	f.t.Helper()
	var ro store.Rollout
	waitFor(f.t, fmt.Sprintf("rollout %d to end", id), 90*time.Second, func() bool {
		var err error
		ro, err = f.db.Rollout(context.Background(), id)
		if err != nil {
			f.t.Fatal(err)
		}
		switch ro.Status {
		case store.RolloutQueued, store.RolloutRunning, store.RolloutRollingBack:
			return false
		}
		return true
	})
	return ro
}

// current is the commit each host runs, as its node recorded it.
func (f *rolloutFixture) current() map[string]string {
	f.t.Helper()
	out := map[string]string{}
	for _, n := range f.nodes {
		st, err := f.db.FraiseStates(context.Background(), "hello", "production"+config.HostSep+n.name)
		if err != nil {
			f.t.Fatal(err)
		}
		if len(st) > 0 {
			out[n.name] = st[0].CurrentSHA
		}
	}
	return out
}

// runs is what the migration tool logged, one run a line.
func (f *rolloutFixture) runs() []string {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.migrate, "runs"))
	if err != nil && !os.IsNotExist(err) {
		f.t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
}

func hostStatuses(ro store.Rollout) map[string]store.HostStatus {
	out := map[string]store.HostStatus{}
	for _, h := range ro.Hosts {
		out[h.Host] = h.Status
	}
	return out
}

// TestRolloutThreeNodes: a rollout across web-1..3 deploys them in order
// (web-1, the migration host, first and alone), migrating once, on web-1.
// The next commit fails its install on web-2: web-3 is never started,
// web-1 is rolled back (its database down again, by web-1 alone) and the
// rollout ends rolled_back with every host on the first commit.
func TestRolloutThreeNodes(t *testing.T) {
	f := newRolloutFixture(t)
	ctx := context.Background()
	v1 := f.commit(1)

	ro := f.rollout(v1)
	if ro.Status != store.RolloutSucceeded {
		t.Fatalf("rollout of v1: %s (%s), hosts %+v", ro.Status, ro.Error, ro.Hosts)
	}
	want := map[string]string{"web-1": v1, "web-2": v1, "web-3": v1}
	if got := f.current(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after v1: hosts run %v, want %v", got, want)
	}
	if got := f.runs(); fmt.Sprint(got) != "[up_web-1]" {
		t.Fatalf("migration runs %v, want one, on web-1", got)
	}
	// In order: each host started after the one before it finished.
	var prev *time.Time
	for _, h := range ro.Hosts {
		if h.DeploymentID == nil {
			t.Fatalf("host %s has no deployment", h.Host)
		}
		d, err := f.db.Deployment(ctx, *h.DeploymentID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Host != h.Host || d.Environment != "production@"+h.Host || d.Trigger != store.TriggerRollout {
			t.Errorf("host %s's step: ran on %s for %s by %s", h.Host, d.Host, d.Environment, d.Trigger)
		}
		if prev != nil && d.StartedAt.Before(*prev) {
			t.Errorf("host %s started at %s, before the host before it finished (%s)", h.Host, d.StartedAt, *prev)
		}
		prev = d.FinishedAt
	}

	v2 := f.commit(2, "fail-on-web-2")
	ro = f.rollout(v2)
	if ro.Status != store.RolloutRolledBack {
		t.Fatalf("rollout of v2: %s (%s), want rolled_back; hosts %+v", ro.Status, ro.Error, ro.Hosts)
	}
	wantHosts := map[string]store.HostStatus{"web-1": store.HostRolledBack, "web-2": store.HostFailed, "web-3": store.HostSkipped}
	if got := hostStatuses(ro); fmt.Sprint(got) != fmt.Sprint(wantHosts) {
		t.Errorf("hosts %v, want %v", got, wantHosts)
	}
	if got := f.current(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the failed v2: hosts run %v, want all back on v1 %v", got, want)
	}
	if got := f.runs(); fmt.Sprint(got) != "[up_web-1 up_web-1 down_web-1_1]" {
		t.Errorf("migration runs %v: want up once per rollout and the rollback's down, all on web-1", got)
	}
}
