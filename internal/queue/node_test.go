package queue

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestCrashRecoveryPerNode: two nodes on one machine (web-1, web-2). web-1
// is killed with SIGKILL in the middle of a deployment. web-2 starting
// does not touch it: the deployment is web-1's (tb_deployment.host is the
// node's name), and the process that owned it is gone but not web-2's to
// judge. web-1 starting again records it interrupted; it queues a push's
// commit again once, and never a rollout's step, which its rollout
// decides about.
func TestCrashRecoveryPerNode(t *testing.T) {
	for _, tc := range []struct {
		trigger store.Trigger
		requeue bool
	}{
		{store.TriggerWebhook, true},
		{store.TriggerRollout, false},
	} {
		t.Run(string(tc.trigger), func(t *testing.T) {
			f := newFixture(t, "2")
			ctx := context.Background()
			sha := f.commit()
			q, err := f.db.Enqueue(ctx, store.QueueRequest{Target: store.Target{Fraise: "api", Environment: "production"},
				SHA: sha, Ref: "refs/heads/main", Trigger: tc.trigger, Actor: "test"})
			if err != nil {
				t.Fatal(err)
			}
			child := exec.Command(os.Args[0], "-test.run=^$")
			child.Env = append(os.Environ(), childEnv+"="+filepath.Join(f.root, "fraises.yaml"), childEnv+"_DB="+f.dbPath,
				childEnv+"_NODE=web-1")
			var stderr strings.Builder
			child.Stderr = &stderr
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { child.Process.Kill(); child.Wait() })
			waitFor(t, "web-1 to start deploying", 20*time.Second, func() bool {
				d, err := f.db.Deployment(ctx, q.DeploymentID)
				return err == nil && d.Status == store.StatusRunning
			})
			if err := child.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			child.Wait()
			t.Logf("web-1's log:\n%s", stderr.String())
			if d, _ := f.db.Deployment(ctx, q.DeploymentID); d.Host != "web-1" {
				t.Fatalf("deployment recorded on host %q, want the node's name web-1", d.Host)
			}

			web2 := &Runner{Node: "web-2"}
			stop2 := f.start(web2)
			<-web2.Started()
			if d, _ := f.db.Deployment(ctx, q.DeploymentID); d.Status != store.StatusRunning {
				t.Fatalf("after web-2 started: web-1's deployment is %s, want still running (not web-2's to recover)", d.Status)
			}
			stop2()

			web1 := &Runner{Node: "web-1"}
			f.start(web1)
			<-web1.Started()
			waitFor(t, "web-1 to settle", 30*time.Second, func() bool { return f.idle() })
			if d, _ := f.db.Deployment(ctx, q.DeploymentID); d.Status != store.StatusInterrupted {
				t.Fatalf("killed deployment: %s, want interrupted", d.Status)
			}
			var retries []store.Deployment
			for _, d := range f.deployments("api") {
				if d.Trigger == store.TriggerRequeue {
					retries = append(retries, d)
				}
			}
			switch {
			case tc.requeue && (len(retries) != 1 || retries[0].NewSHA != sha):
				t.Fatalf("retries %+v, want one at %s", retries, sha)
			case !tc.requeue && len(retries) != 0:
				t.Fatalf("a rollout's step was queued again: %+v", retries)
			case tc.requeue:
				waitFor(t, "the retry to deploy", 30*time.Second, func() bool { return f.state("api").CurrentSHA == sha })
			}
		})
	}
}
