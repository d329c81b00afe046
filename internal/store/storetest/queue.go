package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/store"
)

func push(forge, delivery, sha string, outcome string, reqs ...store.QueueRequest) store.Intake {
	return store.Intake{
		Event: store.WebhookEvent{Forge: forge, DeliveryID: delivery, EventType: "push",
			Repository: "acme/api", Ref: "refs/heads/main", SHA: sha, Outcome: outcome},
		Requests: reqs,
	}
}

func queueReq(t store.Target, sha string) store.QueueRequest {
	return store.QueueRequest{Target: t, SHA: sha, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "alice"}
}

// testQueueSupersedes: per target one request waits; a newer push replaces
// it, the replaced one is recorded superseded with its webhook, and other
// targets are untouched.
func (s *suite) testQueueSupersedes(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	res, err := db.RecordIntake(ctx, []store.Intake{
		push("github", "d1", sha(1), store.OutcomeAccepted, queueReq(api, sha(1)), queueReq(web, sha(1))),
		push("github", "d2", sha(2), store.OutcomeAccepted, queueReq(api, sha(2))),
		push("github", "d3", sha(3), store.OutcomeIgnored),
	})
	if err != nil {
		t.Fatalf("RecordIntake: %v", err)
	}
	if len(res) != 3 {
		t.Fatalf("got %d results, want 3", len(res))
	}
	first, second := res[0].Queued, res[1].Queued
	if len(first) != 2 || len(second) != 1 || len(res[2].Queued) != 0 {
		t.Fatalf("queued %v / %v / %v", first, second, res[2].Queued)
	}
	if second[0].Superseded != first[0].DeploymentID {
		t.Errorf("second push superseded %d, want %d", second[0].Superseded, first[0].DeploymentID)
	}

	old, err := db.Deployment(ctx, first[0].DeploymentID)
	if err != nil {
		t.Fatal(err)
	}
	if old.Status != store.StatusSuperseded || old.FinishedAt == nil {
		t.Errorf("replaced request: status %s finished %v, want superseded and finished", old.Status, old.FinishedAt)
	}
	// d1 also queued web, which still stands: the delivery stays accepted.
	evs, err := db.Webhooks(ctx, store.WebhookFilter{})
	if err != nil {
		t.Fatal(err)
	}
	outcome := map[string]string{}
	for _, e := range evs {
		outcome[e.DeliveryID] = e.Outcome
	}
	if diff := cmp.Diff(map[string]string{"d1": store.OutcomeAccepted, "d2": store.OutcomeAccepted, "d3": store.OutcomeIgnored}, outcome); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}

	// A third push for api replaces d2's request: d2 led to nothing else,
	// so d2 itself is now superseded.
	res, err = db.RecordIntake(ctx, []store.Intake{push("github", "d4", sha(4), store.OutcomeAccepted, queueReq(api, sha(4)))})
	if err != nil {
		t.Fatal(err)
	}
	evs, err = db.Webhooks(ctx, store.WebhookFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.DeliveryID == "d2" && e.Outcome != store.OutcomeSuperseded {
			t.Errorf("d2 outcome %q, want superseded", e.Outcome)
		}
	}
	queued, err := db.QueuedDeployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[store.Target]string{}
	for _, d := range queued {
		if _, dup := got[d.Target]; dup {
			t.Errorf("two requests wait for %s", d.Target)
		}
		got[d.Target] = d.NewSHA
	}
	if diff := cmp.Diff(map[store.Target]string{api: sha(4), web: sha(1)}, got); diff != "" {
		t.Errorf("waiting (-want +got):\n%s", diff)
	}
	if res[0].Queued[0].DeploymentID == 0 {
		t.Fatal("no deployment id")
	}
}

// testQueueDuplicateDelivery: a redelivery gets the original deployments
// and queues nothing.
func (s *suite) testQueueDuplicateDelivery(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	res, err := db.RecordIntake(ctx, []store.Intake{push("gitlab", "uuid-1", sha(1), store.OutcomeAccepted, queueReq(api, sha(1)))})
	if err != nil {
		t.Fatal(err)
	}
	again, err := db.RecordIntake(ctx, []store.Intake{push("gitlab", "uuid-1", sha(1), store.OutcomeAccepted, queueReq(api, sha(1)))})
	if err != nil {
		t.Fatal(err)
	}
	if !again[0].Duplicate {
		t.Fatal("redelivery not recognised")
	}
	if diff := cmp.Diff(res[0].Queued, again[0].Queued); diff != "" {
		t.Errorf("redelivery answer (-first +again):\n%s", diff)
	}
	if again[0].Event.ID != res[0].Event.ID {
		t.Errorf("redelivery event %d, want the first, %d", again[0].Event.ID, res[0].Event.ID)
	}
	queued, err := db.QueuedDeployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 1 || queued[0].ID != res[0].Queued[0].DeploymentID {
		t.Errorf("queue after a redelivery: %v", queued)
	}
	// The same id from another forge is another delivery.
	other, err := db.RecordIntake(ctx, []store.Intake{push("github", "uuid-1", sha(2), store.OutcomeIgnored)})
	if err != nil {
		t.Fatal(err)
	}
	if other[0].Duplicate {
		t.Error("a GitHub delivery was taken for a GitLab one")
	}
}

// testQueueClaim: a claim runs the request once; a superseded or claimed
// request cannot be claimed; EnqueueIfIdle never replaces a waiting one.
func (s *suite) testQueueClaim(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	q1, err := db.Enqueue(ctx, queueReq(api, sha(1)))
	if err != nil {
		t.Fatal(err)
	}
	q2, err := db.Enqueue(ctx, queueReq(api, sha(2)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClaimQueued(ctx, q1.DeploymentID, store.Claim{Host: "h", PID: 1}); !errors.Is(err, store.ErrNotQueued) {
		t.Fatalf("claim of a superseded request: %v, want ErrNotQueued", err)
	}
	d, err := db.ClaimQueued(ctx, q2.DeploymentID, store.Claim{Host: "h", PID: 2, OldSHA: sha(9)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != store.StatusRunning || d.Host != "h" || d.PID != 2 || d.OldSHA != sha(9) || d.NewSHA != sha(2) {
		t.Errorf("claimed: %+v", d)
	}
	if _, err := db.ClaimQueued(ctx, q2.DeploymentID, store.Claim{Host: "h", PID: 3}); !errors.Is(err, store.ErrNotQueued) {
		t.Errorf("second claim: %v, want ErrNotQueued", err)
	}
	if _, err := db.ClaimQueued(ctx, 999999, store.Claim{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("claim of an unknown deployment: %v, want ErrNotFound", err)
	}
	// Running, one may wait.
	q3, ok, err := db.EnqueueIfIdle(ctx, queueReq(api, sha(3)))
	if err != nil || !ok {
		t.Fatalf("EnqueueIfIdle while one runs: %v %v", ok, err)
	}
	if _, ok, err := db.EnqueueIfIdle(ctx, queueReq(api, sha(4))); err != nil || ok {
		t.Fatalf("EnqueueIfIdle while one waits: queued=%v %v", ok, err)
	}
	queued, err := db.QueuedDeployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 1 || queued[0].ID != q3.DeploymentID {
		t.Errorf("queue: %v", queued)
	}
	for _, bad := range []store.QueueRequest{
		{Target: api},
		{Target: api, SHA: "not-a-sha"},
		{Target: store.Target{Fraise: "api"}, SHA: sha(1)},
	} {
		if _, err := db.Enqueue(ctx, bad); err == nil {
			t.Errorf("Enqueue(%+v) accepted", bad)
		}
	}
}

// testQueueConcurrentIntake: many deliveries for one target from several
// goroutines leave exactly one waiting, every one recorded, and every
// request but the last superseded.
func (s *suite) testQueueConcurrentIntake(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.RecordIntake(ctx, []store.Intake{push("github", fmt.Sprint("c", i), sha(i+1), store.OutcomeAccepted, queueReq(api, sha(i+1)))})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	queued, err := db.QueuedDeployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 1 {
		t.Fatalf("%d requests wait, want 1", len(queued))
	}
	all, err := db.Deployments(ctx, store.DeploymentFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	superseded := 0
	for _, d := range all {
		if d.Status == store.StatusSuperseded {
			superseded++
		}
	}
	if len(all) != n || superseded != n-1 {
		t.Errorf("%d deployments, %d superseded; want %d and %d", len(all), superseded, n, n-1)
	}
	evs, err := db.Webhooks(ctx, store.WebhookFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != n {
		t.Errorf("%d webhook events recorded, want %d", len(evs), n)
	}
}
