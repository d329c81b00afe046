package queue

import (
	"context"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// web-3's node stops (as if killed) after v1: v2's rollout ends, failed,
// about node_timeout (4 s) after web-3's step is queued, although the
// nodes still alive ran the steps before it and nothing wakes them.
func TestRolloutLastHostsNodeDead(t *testing.T) {
	f := newRolloutFixture(t)
	v1 := f.commit(1)
	if ro := f.rollout(v1); ro.Status != store.RolloutSucceeded {
		t.Fatalf("v1: %s", ro.Status)
	}
	f.nodes[2].stop()
	v2 := f.commit(2)
	ctx := context.Background()
	cfg := f.nodes[0].runner.CurrentConfig()
	env, _ := cfg.Lookup("hello", "production")
	p, _ := RolloutPolicy(env)
	q, err := f.db.Enqueue(ctx, store.QueueRequest{Target: store.Target{Fraise: "hello", Environment: "production"},
		SHA: v2, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "test", Rollout: &p})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for time.Since(start) < 40*time.Second {
		ro, err := f.db.Rollout(ctx, q.RolloutID)
		if err != nil {
			t.Fatal(err)
		}
		if ro.Status.Terminal() {
			t.Logf("ended %s after %s: %+v", ro.Status, time.Since(start), hostStatuses(ro))
			if ro.Status != store.RolloutFailed {
				t.Errorf("ended %s, want failed: web-3's state is unknown", ro.Status)
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	ro, _ := f.db.Rollout(ctx, q.RolloutID)
	t.Fatalf("rollout %d still %s 40 s after push with web-3's node dead (node_timeout 4s): hosts %+v", q.RolloutID, ro.Status, hostStatuses(ro))
}
