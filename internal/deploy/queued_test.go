package deploy

import (
	"context"
	"errors"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestDeployQueued: a queued request runs as its own deployment row once
// claimed; a request superseded while it waited runs nothing.
func TestDeployQueued(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	target := store.Target{Fraise: "hello", Environment: "production"}
	v1 := f.push("healthy", nil)
	v2 := f.push("healthy", nil)

	old, err := f.db.Enqueue(ctx, store.QueueRequest{Target: target, SHA: v1, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := f.db.Enqueue(ctx, store.QueueRequest{Target: target, SHA: v2, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}

	env, err := f.cfg.Lookup("hello", "production")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.engine.Deploy(ctx, f.collab, Request{Env: env, Ref: v1, Trigger: store.TriggerWebhook, Queued: old.DeploymentID})
	if !errors.Is(err, ErrNotQueued) {
		t.Fatalf("running a superseded request: %v, want ErrNotQueued", err)
	}
	if rels, err := f.db.Releases(ctx, "hello", "production"); err != nil || len(rels) != 0 {
		t.Fatalf("a superseded request created releases: %v %v", rels, err)
	}

	res := f.deploy(Request{Ref: v2, Trigger: store.TriggerWebhook, Actor: "alice", Queued: cur.DeploymentID})
	if res.Status != store.StatusSucceeded || res.DeploymentID != cur.DeploymentID || res.NewSHA != v2 {
		t.Fatalf("queued deployment: %+v (err %v), want succeeded as deployment %d at %s", res, res.Err, cur.DeploymentID, v2)
	}
	d, err := f.db.Deployment(ctx, cur.DeploymentID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != store.StatusSucceeded || d.Trigger != store.TriggerWebhook || d.PID != f.engine.Owner.PID {
		t.Errorf("recorded: %+v", d)
	}
	if q, err := f.db.QueuedDeployments(ctx); err != nil || len(q) != 0 {
		t.Errorf("queue after the run: %v %v", q, err)
	}
}
