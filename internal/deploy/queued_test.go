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

// TestDeployQueuedReplacedInPlace: a push that replaces the waiting request
// in place after the queue listed it (and before the claim) is what runs:
// the commit the claimed row names, not the one the listing did.
func TestDeployQueuedReplacedInPlace(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	target := store.Target{Fraise: "hello", Environment: "production"}
	v1 := f.push("healthy", nil)
	v2 := f.push("healthy", nil)
	intake := func(delivery, sha string) store.Queued {
		t.Helper()
		res, err := f.db.RecordIntake(ctx, []store.Intake{{
			Event: store.WebhookEvent{Forge: "github", DeliveryID: delivery, EventType: "push", Repository: "acme/hello",
				Ref: "refs/heads/main", SHA: sha, Sender: "bob", Outcome: store.OutcomeAccepted},
			Requests: []store.QueueRequest{{Target: target, SHA: sha, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "bob via github"}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Queued[0]
	}
	first := intake("d-1", v1)
	listed, err := f.db.QueuedDeployments(ctx)
	if err != nil || len(listed) != 1 || listed[0].NewSHA != v1 {
		t.Fatalf("queue: %+v %v", listed, err)
	}
	second := intake("d-2", v2)
	if second.DeploymentID != first.DeploymentID || second.Replaced == 0 {
		t.Fatalf("second push: %+v; want deployment %d replaced in place", second, first.DeploymentID)
	}

	// What the queue listed before the second push.
	res := f.deploy(Request{Ref: listed[0].NewSHA, Trigger: store.TriggerWebhook, Actor: "bob via github", Queued: listed[0].ID})
	if res.Status != store.StatusSucceeded || res.NewSHA != v2 {
		t.Fatalf("ran %+v (err %v), want succeeded at %s, the commit the row names when claimed", res, res.Err, v2)
	}
	d, err := f.db.Deployment(ctx, first.DeploymentID)
	if err != nil {
		t.Fatal(err)
	}
	if d.NewSHA != v2 || d.WebhookID == nil || *d.WebhookID == second.Replaced {
		t.Errorf("recorded %+v; want %s, linked to the second push", d, v2)
	}
}
