package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
	pgtest "github.com/fraiseql/fraisier/internal/testenv/pg"
)

// pgServer is a throwaway cluster the test can stop and start again, as
// an operator or a crash would: pg_ctl on the cluster pgtest made (its
// data directory is beside its socket directory; see pgtest.Start).
type pgServer struct {
	*pgtest.Cluster
	t    *testing.T
	bin  string
	data string
	as   []string
}

func startPG(t *testing.T) *pgServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := pgtest.Start(ctx)
	if errors.Is(err, pgtest.ErrUnavailable) {
		testenv.Unavailable(t, "PostgreSQL: %v", err)
	}
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(c.Stop)
	s := &pgServer{Cluster: c, t: t, data: filepath.Join(filepath.Dir(c.SocketDir()), "data")}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	slices.SortFunc(bins, func(a, b string) int {
		v := func(p string) int { n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p)))); return n }
		return v(a) - v(b)
	})
	if len(bins) == 0 {
		t.Fatal("pgtest started a cluster but no pg_ctl found")
	}
	s.bin = bins[len(bins)-1]
	if os.Geteuid() == 0 {
		s.as = []string{"runuser", "-u", "postgres", "--"}
	}
	return s
}

func (s *pgServer) pgctl(args ...string) {
	s.t.Helper()
	argv := append(slices.Clone(s.as), s.bin, "-D", s.data)
	argv = append(argv, args...)
	if _, err := execx.Run(context.Background(), execx.Cmd{Argv: argv, Dir: filepath.Dir(s.data), Timeout: time.Minute}); err != nil {
		s.t.Fatalf("pg_ctl %s: %v", strings.Join(args, " "), err)
	}
}

// stop is pg_ctl stop -m fast: sessions are terminated, open transactions
// rolled back, the server gone until start.
func (s *pgServer) stop() { s.pgctl("-m", "fast", "-w", "stop") }

func (s *pgServer) start() {
	s.pgctl("-l", filepath.Join(filepath.Dir(s.data), "server.log"), "-w", "-t", "60", "start")
}

// TestFaultPostgresStopped: the application's PostgreSQL stops (pg_ctl
// stop -m fast) while the deployment installs, before it migrates. The
// migrate step cannot reach it: failed before the switch, the message says
// the database could not be reached, the new release removed and recorded
// bad, the database untouched; once PostgreSQL is back the same commit
// deploys and migrates.
func TestFaultPostgresStopped(t *testing.T) {
	pg := startPG(t)
	if err := pg.CreateDatabase(context.Background(), "app"); err != nil {
		t.Fatal(err)
	}
	gate := t.TempDir()
	f := newFixture(t, fmt.Sprintf(`        install:
          command: [sh, -c, 'if [ -e hold ]; then touch %[1]s/installing; while [ ! -e %[1]s/go ]; do sleep 0.05; done; fi']
        database:
          tool: sql
          dir: migrations
          url: %[2]s
`, gate, pg.URL("app", "")))
	f.push("healthy", map[string]string{
		"migrations/001_items.up.sql":   "CREATE TABLE items (id integer PRIMARY KEY);\n",
		"migrations/001_items.down.sql": "DROP TABLE items;\n",
	})
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")
	if rev := f.revision(); rev != "1" {
		t.Fatalf("revision after v1 = %q, want 1", rev)
	}

	sha := f.push("healthy", map[string]string{
		"hold":                          "the install step waits for the test\n",
		"migrations/002_names.up.sql":   "CREATE TABLE names (id integer PRIMARY KEY);\n",
		"migrations/002_names.down.sql": "DROP TABLE names;\n",
	})
	before := f.snapshot()
	done := make(chan Result, 1)
	go func() { done <- f.deploy(Request{}) }()
	testenv.WaitForFile(t, filepath.Join(gate, "installing"), 30*time.Second)
	pg.stop()
	writeFile(t, filepath.Join(gate, "go"), "")
	res := <-done

	if res.Status != store.StatusFailed {
		t.Fatalf("status %s (%v), want failed", res.Status, res.Err)
	}
	msg := res.Err.Error()
	if !strings.HasPrefix(msg, "migrate: read current revision:") || !strings.Contains(msg, pg.SocketDir()) {
		t.Fatalf("message %q: want the migrate step saying it could not read the revision from the server at %s", msg, pg.SocketDir())
	}
	if got, want := f.stepNames(res.DeploymentID), "fetch:succeeded release:succeeded install:succeeded migrate:failed"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
	f.assertRecorded(res)
	f.assertUnchanged(before, res.Status)
	assertReleaseState(t, f, res, store.ReleaseBad)
	t.Log(msg)

	pg.start()
	if rev := f.revision(); rev != "1" {
		t.Fatalf("revision after the failed deployment = %q, want 1 (untouched)", rev)
	}
	os.Remove(filepath.Join(gate, "installing"))
	res = f.deploy(Request{})
	f.expect(res, store.StatusSucceeded, "v2")
	if res.NewSHA != sha {
		t.Fatalf("deployed %s, want %s", short(res.NewSHA), short(sha))
	}
	if rev := f.revision(); rev != "2" {
		t.Fatalf("revision after PostgreSQL came back = %q, want 2", rev)
	}
}

// TestReliabilityStatePostgresGone: the state database is PostgreSQL and
// its server stops in the middle of a deployment run by the real CLI, and
// stays down past the retries of the outcome's write. The deployment stops
// at the first record it cannot write, undoes what it did (nothing was
// switched), and the CLI says the outcome could not be recorded. The record
// is left "running", which the next run, once the server is back, recovers
// from the dead process's lock as interrupted before it deploys.
func TestReliabilityStatePostgresGone(t *testing.T) {
	testenv.Reliability(t)
	pg := startPG(t)
	ctx := context.Background()
	if err := pg.CreateDatabase(ctx, "state"); err != nil {
		t.Fatal(err)
	}
	stateURL := pg.URL("state", "")
	gate := t.TempDir()
	f := newFixture(t, "")
	cfgPath := f.writeConfigWith(t, fmt.Sprintf(`        install:
          command: [sh, -c, 'if [ -e hold ]; then touch %[1]s/installing; while [ ! -e %[1]s/go ]; do sleep 0.05; done; fi']
`, gate))
	bin := testenv.BuildFraisier(t)
	deploy := func() (string, int) {
		t.Helper()
		return runCLI(t, bin, f.mgr.Env(), "--config", cfgPath, "--state", stateURL, "deploy", "hello", "production")
	}
	f.push("healthy", nil)
	if out, code := deploy(); code != 0 {
		t.Fatalf("v1: exit %d\n%s", code, out)
	}
	good, _ := currentRelease(f.app)
	f.push("healthy", map[string]string{"hold": "the install step waits for the test\n"})

	type ran struct {
		out  string
		code int
	}
	done := make(chan ran, 1)
	start := time.Now()
	go func() {
		out, code := deploy()
		done <- ran{out, code}
	}()
	testenv.WaitForFile(t, filepath.Join(gate, "installing"), 60*time.Second)
	pg.stop()
	writeFile(t, filepath.Join(gate, "go"), "")
	r := <-done
	t.Logf("with the state database gone: exit %d after %s\n%s", r.code, time.Since(start).Round(time.Millisecond), r.out)
	// docs/exit-codes.md: 4 when the state database cannot be used.
	if r.code != 4 {
		t.Fatalf("exit %d, want 4 (state database unreachable)", r.code)
	}
	if !strings.Contains(r.out, "record the outcome (failed)") {
		t.Fatalf("output does not say the outcome could not be recorded:\n%s", r.out)
	}
	if cur, _ := currentRelease(f.app); cur != good {
		t.Fatalf("current %s, want %s: nothing was to be switched", cur, good)
	}
	if names, _ := listReleases(f.app); len(names) != 1 || names[0] != good {
		t.Fatalf("releases on disk %v, want only %s", names, good)
	}
	if got := f.serving(); got != "v1" {
		t.Fatalf("service answers %q, want v1", got)
	}

	pg.start()
	db, err := store.Open(ctx, store.Options{URL: stateURL})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	running, err := db.RunningDeployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(running) != 1 {
		t.Fatalf("%d deployments recorded running after the server came back, want the one it could not finish", len(running))
	}
	lost := running[0].ID

	out, code := deploy()
	t.Logf("after the server came back: exit %d\n%s", code, out)
	if code != 0 {
		t.Fatalf("exit %d, want the deployment to succeed\n%s", code, out)
	}
	d, err := db.Deployment(ctx, lost)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != store.StatusInterrupted || d.FinishedAt == nil {
		t.Fatalf("the deployment whose outcome was lost is recorded %s, want interrupted", d.Status)
	}
	t.Logf("deployment %d recorded: %s: %s", lost, d.Status, d.Error)
	steps, _ := db.Steps(ctx, lost)
	for _, s := range steps {
		if s.Status == store.StepRunning {
			t.Errorf("step %s of the interrupted deployment still running", s.Name)
		}
	}
	states, err := db.FraiseStates(ctx, "hello", "production")
	if err != nil || len(states) != 1 {
		t.Fatalf("states %+v %v", states, err)
	}
	cur, _ := currentRelease(f.app)
	if states[0].CurrentRelease != cur || states[0].Status != store.StatusSucceeded {
		t.Fatalf("recorded %s %s, current is %s", states[0].Status, states[0].CurrentRelease, cur)
	}
	if got := f.serving(); got != "v2" {
		t.Fatalf("service answers %q, want v2", got)
	}
}
