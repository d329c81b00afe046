package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestLockLostStopsTheDeployment: when the lock is broken under a running
// deployment (fraisier unlock), the deployment stops at once and undoes
// what it did, rather than run beside whoever takes the lock next.
func TestLockLostStopsTheDeployment(t *testing.T) {
	root := t.TempDir()
	repo := testenv.NewOrigin(t, root)
	repo.Write("install.sh", "touch \"$1\"; exec sleep 20\n")
	repo.Commit("slow install")
	started := filepath.Join(root, "install-started")
	cfg := parseConfig(t, root, fmt.Sprintf(`
fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s/srv/hello
        install:
          command: [sh, install.sh, %s]
`, repo.Dir, root, started))
	env := lookup(t, cfg, "hello", "production")
	db := openState(t, filepath.Join(root, "state.db"))
	var log strings.Builder
	e := newEngine(t, db, &log)
	e.LockTTL = 300 * time.Millisecond

	go func() {
		for i := 0; i < 500; i++ {
			if _, err := os.Stat(started); err == nil {
				db.ForceUnlock(context.Background(), store.Target{Fraise: "hello", Environment: "production"}, "test breaks the lock")
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	begin := time.Now()
	res, err := e.Deploy(context.Background(), RealCollaborators(nil), Request{Env: env, Trigger: store.TriggerCLI, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != store.StatusFailed || !strings.Contains(res.Err.Error(), "lost the lock") {
		t.Fatalf("status %s, error %v; want failed, lost the lock\n%s", res.Status, res.Err, log.String())
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Fatalf("took %s to notice", d)
	}
	if cur, _ := currentRelease(env.AppPath); cur != "" {
		t.Fatalf("current is %s after a stopped first deployment", cur)
	}
}

// TestWaitForLock: --wait queues behind a held lock and runs once it is
// released; without it, or past it, the deploy is refused naming the holder.
func TestWaitForLock(t *testing.T) {
	root := t.TempDir()
	repo := testenv.NewOrigin(t, root)
	repo.Write("app.txt", "v1\n")
	repo.Commit("v1")
	cfg := parseConfig(t, root, fmt.Sprintf(`
fraises:
  hello:
    type: api
    environments:
      production: {branch: main, git_repo: %s, app_path: %s/srv/hello}
`, repo.Dir, root))
	env := lookup(t, cfg, "hello", "production")
	db := openState(t, filepath.Join(root, "state.db"))
	target := store.Target{Fraise: "hello", Environment: "production"}
	hold := func() {
		t.Helper()
		if _, err := db.AcquireLock(context.Background(), store.Lock{Target: target, Owner: "operator:alice", Host: "elsewhere", Reason: "maintenance"},
			time.Hour, func(store.Lock) bool { return false }); err != nil {
			t.Fatal(err)
		}
	}
	e := newEngine(t, db, nil)
	req := Request{Env: env, Trigger: store.TriggerCLI, Actor: "test"}

	hold()
	_, err := e.Deploy(context.Background(), RealCollaborators(nil), req)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "operator:alice") {
		t.Fatalf("deploy against a held lock: %v, want ErrLocked naming operator:alice", err)
	}
	req.Wait = 300 * time.Millisecond
	start := time.Now()
	if _, err = e.Deploy(context.Background(), RealCollaborators(nil), req); !errors.Is(err, ErrLocked) {
		t.Fatalf("deploy waiting past the wait: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("gave up after %s, before --wait ran out", d)
	}

	req.Wait = 10 * time.Second
	time.AfterFunc(400*time.Millisecond, func() { db.ForceUnlock(context.Background(), target, "maintenance done") })
	res, err := e.Deploy(context.Background(), RealCollaborators(nil), req)
	if err != nil || res.Status != store.StatusSucceeded {
		t.Fatalf("deploy queued behind the lock: %s, %v", res.Status, err)
	}
}
