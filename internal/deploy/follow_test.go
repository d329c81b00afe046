package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestFollowUps: hello-etl runs hello's code (shares_code_with). Each
// deployment or rollback of hello on the command line that makes another
// release current queues, with its outcome, a follow-up deployment of
// the etl (trigger follow), and runs it: the etl verifies its scripts and
// runs run_after_deploy in the new release. A deployment that changes
// nothing current (skipped, failed) queues none. A follow-up that cannot
// run now (the etl is being deployed) stays queued, and the next
// deployment of hello runs it rather than queue another. Real git and
// SQLite; no systemd unit.
func TestFollowUps(t *testing.T) {
	root := t.TempDir()
	repo := testenv.NewOrigin(t, root)
	yaml := fmt.Sprintf(`
fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %[1]s
        app_path: %[2]s/srv/hello
        install: {command: [sh, install.sh]}
  hello-etl:
    type: etl
    environments:
      production:
        branch: main
        shares_code_with: hello/production
        scripts: [etl.sh]
        run_after_deploy: {command: [sh, etl.sh, %[2]s/etl-runs]}
`, repo.Dir, root)
	cfg := parseConfig(t, root, yaml)
	db := openState(t, filepath.Join(root, "state.db"))
	var log strings.Builder
	e := newEngine(t, db, &log)
	hello := lookup(t, cfg, "hello", "production")
	etl := store.Target{Fraise: "hello-etl", Environment: "production"}
	ctx := context.Background()

	n := 0
	commit := func(install string) {
		n++
		for name, body := range map[string]string{"VERSION": fmt.Sprintf("v%d\n", n), "install.sh": install, "etl.sh": "cat VERSION >> \"$1\"\n"} {
			repo.WriteMode(name, body, 0o755)
		}
		repo.Commit(fmt.Sprint("v", n))
	}
	deploy := func() Result {
		res, err := e.Deploy(ctx, RealCollaborators(nil), Request{Env: hello, Trigger: store.TriggerCLI, Actor: "alice"})
		if err != nil {
			t.Fatalf("deploy: %v\n%s", err, log.String())
		}
		return res
	}
	rollback := func() Result {
		res, err := e.Rollback(ctx, RealCollaborators(nil), RollbackRequest{Env: hello, Actor: "alice"})
		if err != nil {
			t.Fatalf("rollback: %v\n%s", err, log.String())
		}
		return res
	}
	// lockETL holds the etl's lock as a live process would, until the
	// returned function gives it back.
	lockETL := func() func() {
		l := store.Lock{Target: etl, Owner: e.Owner.String() + "-other", Host: e.Owner.Host, PID: e.Owner.PID, Reason: "test"}
		if _, err := db.AcquireLock(ctx, l, time.Minute, nil); err != nil {
			t.Fatal(err)
		}
		return func() {
			if err := db.ReleaseLock(ctx, etl, l.Owner); err != nil {
				t.Fatal(err)
			}
		}
	}

	var unlock func()
	steps := []struct {
		name   string
		do     func() Result
		status store.Status
		// runs is etl-runs after the step; follows is the number of
		// follow-up deployments of the etl recorded so far, and waiting
		// whether one is still queued.
		runs    []string
		follows int
		waiting bool
	}{
		{"first deployment", func() Result { commit("true\n"); return deploy() }, store.StatusSucceeded, []string{"v1"}, 1, false},
		{"already current", deploy, store.StatusSkipped, []string{"v1"}, 1, false},
		{"a new commit", func() Result { commit("true\n"); return deploy() }, store.StatusSucceeded, []string{"v1", "v2"}, 2, false},
		{"rollback", rollback, store.StatusSucceeded, []string{"v1", "v2", "v1"}, 3, false},
		{"install fails", func() Result { commit("exit 1\n"); return deploy() }, store.StatusFailed, []string{"v1", "v2", "v1"}, 3, false},
		{"the etl is being deployed", func() Result { commit("true\n"); unlock = lockETL(); return deploy() },
			store.StatusSucceeded, []string{"v1", "v2", "v1"}, 4, true},
		{"the next deployment runs what waits", func() Result { unlock(); commit("true\n"); return deploy() },
			store.StatusSucceeded, []string{"v1", "v2", "v1", "v5"}, 4, false},
	}
	for _, s := range steps {
		log.Reset()
		res := s.do()
		if res.Status != s.status {
			t.Fatalf("%s: hello %s %v; want %s\n%s", s.name, res.Status, res.Err, s.status, log.String())
		}
		b, _ := os.ReadFile(filepath.Join(root, "etl-runs"))
		if got := strings.Fields(string(b)); !slices.Equal(got, s.runs) {
			t.Errorf("%s: the etl ran in %v; want %v\n%s", s.name, got, s.runs, log.String())
		}
		ds, err := db.Deployments(ctx, store.DeploymentFilter{Fraise: etl.Fraise, Environment: etl.Environment, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		follows, waiting := 0, false
		for _, d := range ds {
			if d.Trigger != store.TriggerFollow || !strings.HasPrefix(d.Actor, "hello/production deployment ") {
				t.Errorf("%s: etl deployment %+v; want follow-ups of hello's deployments only", s.name, d)
			}
			follows++
			waiting = waiting || d.Status == store.StatusQueued
		}
		if follows != s.follows || waiting != s.waiting {
			t.Errorf("%s: %d follow-ups, one waiting: %v; want %d, %v\n%s", s.name, follows, waiting, s.follows, s.waiting, log.String())
		}
	}
}
